// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "config/errmsg.h"
#include "fleet/value.h"

static const char *const kind_dir[] = { "svc", "nodes", "alive" };

int fleet_key_prefix(const char *fleet, int kind, char *buf, size_t len)
{
	int n = kind < 0 ? snprintf(buf, len, "/shift/%s/", fleet) :
			   snprintf(buf, len, "/shift/%s/%s/", fleet, kind_dir[kind]);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int fleet_key(const char *fleet, enum fleet_key_kind kind, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "/shift/%s/%s/%s", fleet, kind_dir[kind], name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

const char *fleet_key_name(const char *fleet, enum fleet_key_kind kind, const char *key)
{
	char p[FLEET_KEY_LEN];
	size_t n;

	if (fleet_key_prefix(fleet, (int)kind, p, sizeof(p)))
		return NULL;
	n = strlen(p);
	if (strncmp(key, p, n) || !key[n] || strchr(key + n, '/'))
		return NULL;
	return key + n;
}

/* Bytes of the UTF-8 sequence at p, 0 if none starts there: what jansson takes
 * (no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *p)
{
	size_t n, i;
	__u32 c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* a NUL ends the string here too */
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

bool fleet_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	for (; *p; p += n)
		if (!(n = utf8_seq(p)))
			return false;
	return true;
}

/* A JSON string of s with '?' for every byte that is not part of valid UTF-8:
 * json_string() refuses such text, and a rollback whose reason came cut in
 * the middle of a character (or from an older shiftctl) must still go out. */
static json_t *text_json(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *t;
	json_t *j;
	size_t i, n;

	if (fleet_utf8_valid(s))
		return json_string(s);
	t = strdup(s);
	if (!t)
		return NULL;
	for (i = 0; p[i]; i += n)
		if (!(n = utf8_seq(p + i))) {
			t[i] = '?';
			n = 1;
		}
	j = json_string(t);
	free(t);
	return j;
}

char *fleet_svc_encode(const struct fleet_svc_value *v)
{
	json_t *o = json_object(), *ramp = NULL;
	char *s = NULL;
	__u32 i;

	if (!o)
		return NULL;
	if (v->has_ramp) {
		json_t *steps = json_array();

		ramp = json_object();
		for (i = 0; steps && i < v->ramp.n; i++)
			json_array_append_new(steps, json_integer(v->ramp.steps[i]));
		json_object_set_new(ramp, "steps", steps);
		json_object_set_new(ramp, "hold_ns", json_integer((json_int_t)v->ramp.hold_ns));
		json_object_set_new(ramp, "start_unix_ns",
				    json_integer((json_int_t)v->ramp.start_unix_ns));
	}
	if (json_object_set_new(o, "weight_bp", json_integer(v->weight_bp)) ||
	    json_object_set_new(o, "latched", json_boolean(v->latched)) ||
	    json_object_set_new(o, "reason", text_json(v->reason)) ||
	    json_object_set_new(o, "origin", text_json(v->origin)) ||
	    json_object_set_new(o, "unix_ns", json_integer((json_int_t)v->unix_ns)) ||
	    /* json_pack, not json_null(): control/json.c has a json_null of its own. */
	    json_object_set_new(o, "ramp", ramp ? ramp : json_pack("n")))
		goto out;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(o);
	return s;
}

static int get_u64(json_t *o, const char *k, __u64 max, __u64 *out, char *why, size_t wl)
{
	json_t *x = json_object_get(o, k);

	if (!json_is_integer(x) || json_integer_value(x) < 0 ||
	    (__u64)json_integer_value(x) > max) {
		seterr(why, wl, "%s: %s", k,
		       !x		  ? "missing" :
		       json_is_integer(x) ? "out of range" :
					    "not an integer");
		return -EINVAL;
	}
	*out = (__u64)json_integer_value(x);
	return 0;
}

static int get_str(json_t *o, const char *k, char *dst, size_t cap, char *why, size_t wl)
{
	json_t *x = json_object_get(o, k);

	if (!json_is_string(x) || json_string_length(x) >= cap ||
	    strlen(json_string_value(x)) != json_string_length(x)) {
		seterr(why, wl, "%s: %s", k,
		       !x		 ? "missing" :
		       json_is_string(x) ? "too long" :
					   "not a string");
		return -EINVAL;
	}
	strcpy(dst, json_string_value(x));
	return 0;
}

static int get_bool(json_t *o, const char *k, bool *out, char *why, size_t wl)
{
	json_t *x = json_object_get(o, k);

	if (!json_is_boolean(x)) {
		seterr(why, wl, "%s: %s", k, !x ? "missing" : "not true or false");
		return -EINVAL;
	}
	*out = json_is_true(x);
	return 0;
}

static int decode_ramp(json_t *r, struct fleet_ramp *p, char *why, size_t wl)
{
	json_t *steps = json_object_get(r, "steps"), *x;
	size_t i;

	if (!json_is_array(steps) || !json_array_size(steps) ||
	    json_array_size(steps) > RAMP_MAX_STEPS) {
		seterr(why, wl, "ramp.steps: 1 to %d weights expected", RAMP_MAX_STEPS);
		return -EINVAL;
	}
	json_array_foreach(steps, i, x)
	{
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > SHIFT_WEIGHT_MAX) {
			seterr(why, wl, "ramp.steps[%zu]: not a weight 0..%d", i, SHIFT_WEIGHT_MAX);
			return -EINVAL;
		}
		p->steps[i] = (__u32)json_integer_value(x);
		if (i && p->steps[i] <= p->steps[i - 1]) {
			seterr(why, wl, "ramp.steps[%zu]: does not go up", i);
			return -EINVAL;
		}
	}
	p->n = (__u32)json_array_size(steps);
	if (get_u64(r, "hold_ns", 86400ull * 1000000000ull, &p->hold_ns, why, wl) ||
	    get_u64(r, "start_unix_ns", (__u64)INT64_MAX, &p->start_unix_ns, why, wl))
		return -EINVAL;
	if (p->hold_ns < 1000000ull) {
		seterr(why, wl, "ramp.hold_ns: below 1ms");
		return -EINVAL;
	}
	return 0;
}

int fleet_svc_decode(const char *buf, size_t len, struct fleet_svc_value *v, char *why, size_t wl)
{
	json_error_t je;
	json_t *o, *r;
	__u64 w;
	int rc = -EINVAL;

	memset(v, 0, sizeof(*v));
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		seterr(why, wl, "not JSON: %s (at byte %d)", je.text, je.position);
		return -EINVAL;
	}
	if (!json_is_object(o)) {
		seterr(why, wl, "not a JSON object");
		goto out;
	}
	if (get_u64(o, "weight_bp", SHIFT_WEIGHT_MAX, &w, why, wl) ||
	    get_bool(o, "latched", &v->latched, why, wl) ||
	    get_str(o, "reason", v->reason, sizeof(v->reason), why, wl) ||
	    get_str(o, "origin", v->origin, sizeof(v->origin), why, wl) ||
	    get_u64(o, "unix_ns", (__u64)INT64_MAX, &v->unix_ns, why, wl))
		goto out;
	v->weight_bp = (__u32)w;
	if (v->latched && v->weight_bp) {
		seterr(why, wl, "latched with weight_bp %u (a rollback is weight 0)", v->weight_bp);
		goto out;
	}
	r = json_object_get(o, "ramp");
	if (r && !json_is_null(r)) {
		if (!json_is_object(r)) {
			seterr(why, wl, "ramp: not an object or null");
			goto out;
		}
		if (decode_ramp(r, &v->ramp, why, wl))
			goto out;
		v->has_ramp = !v->latched;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

char *fleet_node_encode(const struct fleet_node_value *v)
{
	json_t *o = json_object(), *arr = json_array();
	char *s = NULL;
	__u32 i;

	if (!o || !arr) {
		json_decref(o);
		json_decref(arr);
		return NULL;
	}
	for (i = 0; i < v->n; i++) {
		json_t *e = json_object();

		json_object_set_new(e, "service", text_json(v->svc[i].service));
		json_object_set_new(e, "green_weight_bp", json_integer(v->svc[i].weight_bp));
		json_object_set_new(e, "rolled_back", json_boolean(v->svc[i].latched));
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "node", text_json(v->node));
	json_object_set_new(o, "applied_revision", json_integer(v->applied_revision));
	json_object_set_new(o, "unix_ns", json_integer((json_int_t)v->unix_ns));
	json_object_set_new(o, "services", arr);
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

char *fleet_alive_encode(const char *node_id)
{
	json_t *o = json_pack("{s:s}", "node_id", node_id);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

int fleet_alive_decode(const char *buf, size_t len, char *id, size_t idlen)
{
	json_t *o = json_loadb(buf, len, 0, NULL), *v;
	int rc = -EINVAL;

	if (!json_is_object(o))
		goto out;
	v = json_object_get(o, "node_id");
	if (!v) {
		rc = -ENOENT;
		goto out;
	}
	if (json_is_string(v) && json_string_length(v) < idlen &&
	    strlen(json_string_value(v)) == json_string_length(v)) {
		memcpy(id, json_string_value(v), json_string_length(v) + 1);
		rc = 0;
	}
out:
	json_decref(o);
	return rc;
}

int fleet_node_decode(const char *buf, size_t len, struct fleet_node_value *v, char *why, size_t wl)
{
	json_t *o, *arr, *e;
	json_error_t je;
	__u64 rev, ns, w;
	int rc = -EINVAL;
	size_t i;

	memset(v, 0, sizeof(*v));
	o = json_loadb(buf, len, 0, &je);
	if (!o) {
		seterr(why, wl, "not JSON: %s", je.text);
		return -EINVAL;
	}
	arr = json_object_get(o, "services");
	if (get_str(o, "node", v->node, sizeof(v->node), why, wl) ||
	    get_u64(o, "applied_revision", (__u64)INT64_MAX, &rev, why, wl) ||
	    get_u64(o, "unix_ns", (__u64)INT64_MAX, &ns, why, wl))
		goto out;
	if (!json_is_array(arr) || json_array_size(arr) > SHIFT_MAX_SERVICES) {
		seterr(why, wl, "services: not an array of at most %d", SHIFT_MAX_SERVICES);
		goto out;
	}
	v->applied_revision = (__s64)rev;
	v->unix_ns = ns;
	json_array_foreach(arr, i, e)
	{
		struct fleet_node_svc *s = &v->svc[i];

		if (get_str(e, "service", s->service, sizeof(s->service), why, wl) ||
		    get_u64(e, "green_weight_bp", SHIFT_WEIGHT_MAX, &w, why, wl) ||
		    get_bool(e, "rolled_back", &s->latched, why, wl))
			goto out;
		s->weight_bp = (__u32)w;
		v->n++;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

__u32 fleet_ramp_weight(const struct fleet_ramp *r, __u64 now, __u32 *index, bool *done)
{
	__u64 k = 0;

	*done = false;
	if (!r->n) {
		*index = 0;
		return 0;
	}
	if (now > r->start_unix_ns && r->hold_ns)
		k = (now - r->start_unix_ns) / r->hold_ns;
	if (k >= r->n) {
		*done = true;
		k = r->n - 1;
	}
	*index = (__u32)k;
	return r->steps[k];
}

static bool same_plan(const struct fleet_ramp *a, const struct fleet_ramp *b)
{
	return a->n == b->n && a->hold_ns == b->hold_ns && a->start_unix_ns == b->start_unix_ns &&
	       !memcmp(a->steps, b->steps, a->n * sizeof(a->steps[0]));
}

static bool pace_holds(const struct fleet_ramp_pace *p, const struct fleet_ramp *r)
{
	return p && p->known && same_plan(&p->plan, r) && p->index < r->n;
}

__u32 fleet_ramp_paced(const struct fleet_ramp *r, const struct fleet_ramp_pace *p, __u64 now,
		       __u64 now_mono, __u32 *index, bool *done)
{
	__u32 k, idx;
	bool plan_done, held;
	__u32 w = fleet_ramp_weight(r, now, &k, &plan_done);

	*index = k;
	*done = plan_done;
	if (!r->n || !pace_holds(p, r))
		return w;
	idx = p->index;
	held = now_mono - p->step_mono_ns >= r->hold_ns;
	if (k > idx)
		idx = p->catch_up ? k : held ? idx + 1 : idx;
	*index = idx;
	*done = plan_done && idx == r->n - 1 && (idx == p->index ? held : p->catch_up);
	return r->steps[idx];
}

/* How far into step idx the plan is at now, at most a hold: what a node
 * meeting the plan there has already held of it. */
static __u64 plan_held(const struct fleet_ramp *r, __u32 idx, __u64 now)
{
	__u64 b = r->start_unix_ns + (__u64)idx * r->hold_ns;
	__u64 d = now > b ? now - b : 0;

	return d < r->hold_ns ? d : r->hold_ns;
}

void fleet_ramp_pace_set(struct fleet_ramp_pace *p, const struct fleet_ramp *r, __u32 index,
			 __u64 now, __u64 now_mono)
{
	bool afresh = !pace_holds(p, r) || p->catch_up;
	__u64 held, at;

	if (index >= r->n)
		return;
	if (!afresh && index <= p->index)
		return;
	if (afresh && pace_holds(p, r) && index <= p->index) {
		p->catch_up = false;
		return;
	}
	/* The step began when the plan says, as far as a hold back: a node in
	 * line with the plan keeps to its boundaries, late ticks or not. */
	held = plan_held(r, index, now);
	at = now_mono > held ? now_mono - held : 0;
	/* Paced: not before a hold after the last step, so a clock stepped
	 * forward costs this node's steps no hold. */
	if (!afresh && at < p->step_mono_ns + r->hold_ns)
		at = p->step_mono_ns + r->hold_ns;
	if (at > now_mono)
		at = now_mono;
	p->known = true;
	p->catch_up = false;
	p->plan = *r;
	p->index = index;
	p->step_mono_ns = at;
}

__u64 fleet_ramp_pace_wait(const struct fleet_ramp *r, const struct fleet_ramp_pace *p, __u64 now,
			   __u64 now_mono)
{
	bool paced = pace_holds(p, r), done;
	__u64 wall, mono = 0, b;
	__u32 idx;

	fleet_ramp_paced(r, p, now, now_mono, &idx, &done);
	if (done || idx + 1 >= r->n)
		return UINT64_MAX;
	/* A step due and not applied yet (it waits for etcd's word): now. */
	if (paced && idx > p->index)
		return 0;
	/* The plan's boundary of the next step, and, paced, a hold of this
	 * node's own time at this one. */
	b = r->start_unix_ns + (__u64)(idx + 1) * r->hold_ns;
	wall = b > now ? b - now : 0;
	if (paced && !p->catch_up && p->step_mono_ns + r->hold_ns > now_mono)
		mono = p->step_mono_ns + r->hold_ns - now_mono;
	return wall > mono ? wall : mono;
}

__u32 fleet_svc_weight(const struct fleet_svc_value *v, __u64 now)
{
	__u32 idx;
	bool done;

	if (v->latched)
		return 0;
	return v->has_ramp ? fleet_ramp_weight(&v->ramp, now, &idx, &done) : v->weight_bp;
}

enum fleet_action fleet_decide(const struct fleet_svc_value *shared, const struct fleet_local *l,
			       __u64 now, __u32 *weight)
{
	__u32 idx;
	bool done;

	*weight =
		shared->latched || !shared->has_ramp ?
			fleet_svc_weight(shared, now) :
			fleet_ramp_paced(&shared->ramp, l->pace, now, l->now_mono_ns, &idx, &done);
	if (l->publish_pending)
		return shared->latched ? FLEET_PUBLISHED : FLEET_PUBLISH;
	if (shared->latched)
		/* A real rollback during a local-only latch (a drill) wins over it. */
		return l->latched && !l->local_only ? FLEET_NONE : FLEET_ROLLBACK;
	if (l->latched && l->local_only)
		return FLEET_NONE; /* neither published nor cleared by the fleet */
	if (l->latched)
		/* Never carried by the fleet and newer than its last word (taken while
		 * shiftd was down and etcd too): publish it rather than lose it. Only
		 * then do clocks matter. */
		return !l->acked && l->rollback_unix_ns > shared->unix_ns ? FLEET_PUBLISH :
									    FLEET_CLEAR;
	return *weight != l->weight ? FLEET_SET_WEIGHT : FLEET_NONE;
}

const char *fleet_action_name(enum fleet_action a)
{
	static const char *const n[] = { "none",  "set-weight", "rollback",
					 "clear", "publish",	"published" };

	return (unsigned)a < sizeof(n) / sizeof(n[0]) ? n[a] : "unknown";
}
