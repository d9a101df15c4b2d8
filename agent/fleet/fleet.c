// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One etcd session per shiftd, as a small state machine:
 *
 *   DOWN --(tick: retry due)--> JOINING: lease grant, then alive/NODE claimed
 *   (with the lease, unless another host holds the name) and a range of svc/ (on every join, a first one or after
 *   an outage); then the watch from the range's next revision
 *   --(watch created)--> UP.
 *   Any failure (an endpoint down, a keepalive timing out, the watch stream
 *   ending, the lease lost) --> DOWN, next endpoint, retry after a short
 *   back-off. While not UP this node applies nothing from the fleet (it never
 *   raises on its own) but still rolls back on its own triggers; those wait
 *   in service_rt.fleet_publish and go out once UP again.
 *
 * libcurl callbacks only buffer and (un)register sockets; everything that
 * starts or ends a transfer happens after curl_multi_socket_action returns.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <curl/curl.h>
#include <jansson.h>

#include "analysis/ramp.h"
#include "analysis/rollback.h"
#include "config/weight.h"
#include "fleet/etcd_curl.h"
#include "fleet/etcd_json.h"
#include "fleet/etcd_sync.h"
#include "fleet/fleet.h"
#include "fleet/node_id.h"
#include "fleet/value.h"
#include "ops/log.h"

#define MAX_RESPONSE (64u << 20)
#define RETRY_MIN_NS (200 * 1000000ull)
#define RETRY_MAX_NS (500 * 1000000ull)
/* A SYN lost in a partition is retried by the kernel 1 s, then 3 s later: past 1 s a
 * fresh attempt (after the heal, at once) beats waiting for the retransmit. */
#define CONNECT_MAX_MS 1000L

enum req_kind { R_GRANT, R_CLAIM, R_ALIVE, R_RANGE, R_WATCH, R_KEEPALIVE, R_PUBLISH, R_NODE };
static const char *const req_name[] = { "lease grant", "alive claim", "alive put", "range",
					"watch",       "keepalive",   "publish",   "node report" };

struct req {
	struct fleet *f;
	enum req_kind kind;
	CURL *h;
	char *body;
	char *buf;
	size_t len, cap;
	bool too_big;
	char svc[CONF_NAME_LEN]; /* R_PUBLISH */
	struct req *next;
};

struct shared_svc {
	char name[CONF_NAME_LEN];
	bool known; /* a good value seen */
	struct fleet_svc_value v; /* the last good value */
	__s64 v_rev; /* v's revision */
	__s64 mod_rev; /* the key's, good value or not: writes compare on it */
	__s64 seen_rev; /* the newest revision seen of the key, a deletion included */
	struct req *pub; /* our rollback being written */
	bool latch_acked; /* the fleet carried this node's current latch */
	bool in_range; /* in the range being read: a key missing from it is gone */
	struct fleet_ramp_pace pace; /* this node's way through v's ramp (value.h) */
	__u64 pace_logged; /* plan step and node step last logged apart, +1 (0: none) */
};

enum fl_state { S_DOWN, S_JOINING, S_UP };

struct fleet {
	struct agent *a;
	struct conf_fleet conf;
	CURLM *m;
	struct curl_slist *hdrs;
	int epfd, tfd;
	unsigned ep; /* endpoint in use */
	enum fl_state st;
	bool warned; /* the current outage was logged */
	bool ever_up;
	unsigned failures;
	__u64 retry_mono;
	__u64 join_mono; /* when the current join began */
	__s64 lease;
	__u64 keepalive_mono; /* next keepalive due */
	__u64 heard_mono; /* etcd's last answer (a request's, the watch's) */
	bool step_waits; /* a ramp's raising step waits for etcd's word (fleet_confirm()) */
	__s64 watch_rev; /* every svc/ event up to here was seen (0: none yet) */
	struct req *reqs;
	struct req *watch, *keepalive, *node;
	struct req *claim; /* alive/NODE being claimed (R_CLAIM, then R_ALIVE) */
	char node_id[FLEET_NODE_ID_LEN];
	char *alive_val; /* alive/NODE's value: node_id, encoded once */
	bool alive_ours; /* alive/NODE holds this host's id and lease */
	bool name_taken; /* alive/NODE is another host's (logged once) */
	size_t watch_parsed;
	int rampfd; /* fires at the next ramp step boundary */
	__u64 last_report_hash;
	bool report_forced;
	struct shared_svc *sh;
	size_t nsh, capsh;
	char key_svc[FLEET_KEY_LEN], key_alive[FLEET_KEY_LEN], key_node[FLEET_KEY_LEN];
};

static const char *ep_name(const struct fleet *f)
{
	return f->conf.endpoints[f->ep];
}

/* --- requests ----------------------------------------------------------------- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;

	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *nb;

		while (cap < r->len + n + 1)
			cap *= 2;
		if (cap > MAX_RESPONSE) {
			r->too_big = true;
			return 0;
		}
		nb = realloc(r->buf, cap);
		if (!nb)
			return 0;
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, ptr, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return n;
}

static void req_free(struct fleet *f, struct req *r)
{
	struct req **pp;

	for (pp = &f->reqs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	if (r->h) {
		curl_multi_remove_handle(f->m, r->h);
		curl_easy_cleanup(r->h);
	}
	if (f->watch == r)
		f->watch = NULL;
	if (f->keepalive == r)
		f->keepalive = NULL;
	if (f->node == r)
		f->node = NULL;
	if (f->claim == r)
		f->claim = NULL;
	for (size_t i = 0; i < f->nsh; i++)
		if (f->sh[i].pub == r)
			f->sh[i].pub = NULL;
	free(r->body);
	free(r->buf);
	free(r);
}

/* Takes body (free()d with the request). NULL when it could not start. */
static struct req *req_start(struct fleet *f, enum req_kind kind, const char *path, char *body)
{
	struct req *r = calloc(1, sizeof(*r));

	if (!r || !body)
		goto fail;
	r->f = f;
	r->kind = kind;
	r->body = body;
	r->h = curl_easy_init();
	if (!r->h ||
	    etcd_curl_setup(r->h, &f->conf, ep_name(f), path, body, kind == R_WATCH, &f->hdrs))
		goto fail;
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
	if (f->conf.timeout_ns / 1000000ull > (__u64)CONNECT_MAX_MS)
		curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_MAX_MS);
	if (curl_multi_add_handle(f->m, r->h) != CURLM_OK)
		goto fail;
	r->next = f->reqs;
	f->reqs = r;
	return r;
fail:
	log_err("fleet: cannot start a %s request (out of memory?)", req_name[kind]);
	if (r) {
		if (r->h)
			curl_easy_cleanup(r->h);
		free(r);
	}
	free(body);
	return NULL;
}

static void cancel_all(struct fleet *f)
{
	while (f->reqs)
		req_free(f, f->reqs);
	f->watch_parsed = 0;
}

/* --- session ------------------------------------------------------------------- */

static void set_connected(struct fleet *f, bool up)
{
	f->a->fleet.connected = up;
}

static void session_fail(struct fleet *f, const char *why)
{
	__u64 backoff = RETRY_MIN_NS << (f->failures < 3 ? f->failures : 3);

	if (f->st == S_UP || !f->warned)
		log_warn("fleet: etcd %s: %s; fail-static: keeping the last weights, local "
			 "triggers still act, retrying",
			 ep_name(f), why);
	else
		log_debug("fleet: etcd %s: %s", ep_name(f), why);
	f->warned = true;
	cancel_all(f);
	f->st = S_DOWN;
	set_connected(f, false);
	f->lease = 0;
	f->alive_ours = false;
	f->failures++;
	f->ep = (f->ep + 1) % f->conf.n_endpoints;
	f->retry_mono = now_mono_ns() + (backoff > RETRY_MAX_NS ? RETRY_MAX_NS : backoff);
}

static void join(struct fleet *f)
{
	f->st = S_JOINING;
	f->join_mono = now_mono_ns();
	if (!req_start(f, R_GRANT, ETCD_PATH_LEASE_GRANT,
		       etcd_req_lease_grant((__s64)(f->conf.lease_ns / 1000000000ull))))
		session_fail(f, "cannot start the lease grant");
}

/* alive/NODE with this node's lease, unless another host's id is there. */
static int claim_alive(struct fleet *f)
{
	if (f->claim)
		return 0;
	f->claim = req_start(f, R_CLAIM, ETCD_PATH_TXN,
			     etcd_req_txn_put(f->key_alive, 0, f->alive_val, f->lease));
	return f->claim ? 0 : -ENOMEM;
}

static void alive_claimed(struct fleet *f)
{
	if (f->name_taken)
		log_info("fleet: node name %s is this host's now (%s)", f->conf.node, f->key_alive);
	f->name_taken = false;
	f->a->fleet.name_taken = false;
	f->alive_ours = true;
	f->report_forced = true;
}

/* The claim found alive/NODE there (kvs: its read-back). */
static void claim_held(struct fleet *f, json_t *kvs)
{
	char id[FLEET_NODE_ID_LEN] = "", holder[96];
	struct etcd_kv kv;
	int rc;

	if (!kvs || !json_array_size(kvs) || etcd_kv_parse(json_array_get(kvs, 0), &kv))
		return; /* gone meanwhile: the next keepalive claims it */
	rc = fleet_alive_decode(kv.value, kv.value_len, id, sizeof(id));
	if (rc == 0 && !strcmp(id, f->node_id)) {
		/* This host's, from before a crash: its old lease ends by itself. */
		log_info("fleet: %s holds this host's node id under lease %llx (a shiftd before "
			 "this one): taken under lease %llx",
			 f->key_alive, (unsigned long long)kv.lease, (unsigned long long)f->lease);

		f->claim = req_start(f, R_ALIVE, ETCD_PATH_PUT,
				     etcd_req_put(f->key_alive, f->alive_val, f->lease));
		etcd_kv_free(&kv);
		return;
	}
	if (!f->name_taken) {
		if (rc == 0)
			snprintf(holder, sizeof(holder), "node id %.40s", id);
		else
			snprintf(holder, sizeof(holder), "%s",
				 rc == -ENOENT ? "a shiftd without a node id" : "a value not ours");
		log_err("fleet: node name %s is held in etcd by another host (%s, lease %llx); "
			"this host is node id %s (%s in state_dir). Each host of a fleet needs "
			"its own [fleet] node: this one follows and publishes the fleet's "
			"decisions but does not report as %s until the name is free",
			f->conf.node, holder, (unsigned long long)kv.lease, f->node_id,
			FLEET_NODE_ID_FILE, f->conf.node);
	}
	f->name_taken = true;
	f->a->fleet.name_taken = true;
	etcd_kv_free(&kv);
}

static void start_watch(struct fleet *f)
{
	char prefix[FLEET_KEY_LEN];

	fleet_key_prefix(f->conf.fleet, FLEET_KEY_SVC, prefix, sizeof(prefix));
	f->watch_parsed = 0;
	f->watch = req_start(f, R_WATCH, ETCD_PATH_WATCH, etcd_req_watch(prefix, f->watch_rev + 1));
	if (!f->watch)
		session_fail(f, "cannot start the watch");
}

static void start_range(struct fleet *f)
{
	char prefix[FLEET_KEY_LEN];

	fleet_key_prefix(f->conf.fleet, FLEET_KEY_SVC, prefix, sizeof(prefix));
	if (!req_start(f, R_RANGE, ETCD_PATH_RANGE, etcd_req_range(prefix, true)))
		session_fail(f, "cannot start the range");
}

/* --- the shared values and the reconciler ------------------------------------------ */

static struct shared_svc *shared_get(struct fleet *f, const char *name, bool add)
{
	size_t i;

	for (i = 0; i < f->nsh; i++)
		if (!strcmp(f->sh[i].name, name))
			return &f->sh[i];
	if (!add || strlen(name) >= CONF_NAME_LEN)
		return NULL;
	if (f->nsh == f->capsh) {
		size_t cap = f->capsh ? f->capsh * 2 : 16;
		struct shared_svc *n = realloc(f->sh, cap * sizeof(*n));

		if (!n)
			return NULL;
		/* The in-flight publishes point at requests, not entries: nothing moves. */
		f->sh = n;
		f->capsh = cap;
	}
	memset(&f->sh[f->nsh], 0, sizeof(f->sh[0]));
	strcpy(f->sh[f->nsh].name, name);
	return &f->sh[f->nsh++];
}

static void record_lag(struct fleet *f, __s64 lag_ns)
{
	struct fleet_stats *st = &f->a->fleet;
	int b = 0;

	if (lag_ns < 0)
		lag_ns = 0;
	while (b < FLEET_LAG_BUCKETS - 1 && (__s64)(1000000ll << b) < lag_ns)
		b++;
	st->lag_hist[b]++;
	st->lag_sum_s += (double)lag_ns / 1e9;
	st->lag_count++;
}

static void publish(struct fleet *f, struct service_rt *s, struct shared_svc *sh)
{
	struct fleet_svc_value v = { .latched = true };
	char key[FLEET_KEY_LEN], *val;

	if (sh->pub || f->st != S_UP)
		return;
	snprintf(v.reason, sizeof(v.reason), "%s", s->reason);
	snprintf(v.origin, sizeof(v.origin), "%s",
		 s->rollback_origin[0] ? s->rollback_origin : f->a->node);
	v.unix_ns = s->rollback_unix_ns;
	if (!fleet_utf8_valid(v.reason))
		/* Cut mid-character, or from a shiftctl that let it through: JSON cannot
		 * carry it as it is, and the rollback matters more than its wording. */
		log_warn("fleet: the rollback reason of %s is not valid UTF-8; published with "
			 "'?' for the bad bytes",
			 s->conf->name);
	if (fleet_key(f->conf.fleet, FLEET_KEY_SVC, s->conf->name, key, sizeof(key))) {
		log_err("fleet: %s: the service name is too long for an etcd key; its rollback "
			"cannot be published",
			s->conf->name);
		return;
	}
	val = fleet_svc_encode(&v);
	if (!val) {
		/* Still pending: fleet_tick() tries again. */
		log_err("fleet: cannot encode the rollback of %s (out of memory); not published "
			"yet",
			s->conf->name);
		return;
	}
	sh->pub =
		req_start(f, R_PUBLISH, ETCD_PATH_TXN, etcd_req_txn_put(key, sh->mod_rev, val, 0));
	free(val);
	if (sh->pub)
		snprintf(sh->pub->svc, sizeof(sh->pub->svc), "%s", s->conf->name);
}

/* The ramp as status shows it: the plan's steps, this node's step. */
static void ramp_view(struct service_rt *s, const struct shared_svc *sh, __u64 now, __u64 mono)
{
	const struct fleet_svc_value *v = &sh->v;
	bool done;
	__u32 idx;

	if (!v->has_ramp || v->latched || s->latched) {
		s->ramp.active = false;
		return;
	}
	fleet_ramp_paced(&v->ramp, &sh->pace, now, mono, &idx, &done);
	memcpy(s->ramp.steps, v->ramp.steps, sizeof(s->ramp.steps));
	s->ramp.n = v->ramp.n;
	s->ramp.index = idx;
	s->ramp.hold_ns = v->ramp.hold_ns;
	if (sh->pace.known && sh->pace.index == idx)
		s->ramp.step_due_mono_ns = sh->pace.step_mono_ns + v->ramp.hold_ns;
	else
		ramp_hold_from_unix(&s->ramp, v->ramp.start_unix_ns + (__u64)idx * v->ramp.hold_ns,
				    mono, now);
	s->ramp.active = !done;
}

/* Arm rampfd for the earliest next step of any ramp in progress. */
static void ramp_timer(struct fleet *f)
{
	__u64 now = now_unix_ns(), mono = now_mono_ns(), next = UINT64_MAX;
	struct itimerspec its = { 0 };
	size_t i;

	for (i = 0; i < f->nsh; i++) {
		const struct fleet_svc_value *v = &f->sh[i].v;
		__u64 d;

		if (!f->sh[i].known || !v->has_ramp || v->latched)
			continue;
		d = fleet_ramp_pace_wait(&v->ramp, &f->sh[i].pace, now, mono);
		/* 0: a step due now that waits for etcd's word; its answer or
		 * the next tick takes it, a timer firing at once would spin. */
		if (d && d < next)
			next = d;
	}
	/* A stepped wall clock moves neither this (monotonic, relative) nor a
	 * hold; where the plan stands is read again when it fires. */
	if (next != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(next / 1000000000ull);
		its.it_value.tv_nsec = (long)(next % 1000000000ull);
	}
	if (timerfd_settime(f->rampfd, 0, &its, NULL))
		log_warn("fleet: ramp timer: %s", strerror(errno));
}

/*
 * A ramp raises green by the clock, without a word from etcd: a node cut off
 * silently (no error until a keepalive times out, seconds later) must not take
 * a raising step the fleet may have rolled back meanwhile. The step waits for
 * an answer from etcd newer than this; fleet_confirm() asks for one.
 */
#define FLEET_FRESH_NS (300 * 1000000ull)

static bool fleet_fresh(const struct fleet *f)
{
	return f->heard_mono && now_mono_ns() - f->heard_mono <= FLEET_FRESH_NS;
}

/* A keepalive now (its answer runs the ramp steps again, on_done()). */
static void fleet_confirm(struct fleet *f)
{
	f->step_waits = true;
	if (f->keepalive || !f->lease)
		return;
	f->keepalive =
		req_start(f, R_KEEPALIVE, ETCD_PATH_LEASE_KEEPALIVE, etcd_req_lease_id(f->lease));
	f->keepalive_mono = now_mono_ns() + f->conf.lease_ns / 3;
}

/* Say once when this node's step and the plan's by its clock part by more
 * than a boundary's moment: the wall clock was stepped (or etcd was away). */
static void pace_note(struct fleet *f, const struct service_rt *s, struct shared_svc *sh, __u32 idx,
		      __u64 now)
{
	__u32 k;
	bool done;
	__u64 key;

	fleet_ramp_weight(&sh->v.ramp, now, &k, &done);
	if (k == idx || k == idx + 1) {
		sh->pace_logged = 0;
		return;
	}
	key = ((__u64)k << 32 | idx) + 1;
	if (sh->pace_logged == key)
		return;
	sh->pace_logged = key;
	if (k > idx)
		log_warn("fleet: %s%s: by this host's clock the ramp is at step %u/%u, this "
			 "node at %u: one step per hold of its own time (was the clock stepped "
			 "forward?)",
			 f->key_svc, s->conf->name, k + 1, sh->v.ramp.n, idx + 1);
	else
		log_warn("fleet: %s%s: by this host's clock the ramp is back at step %u/%u; this "
			 "node holds step %u (was the clock stepped back?)",
			 f->key_svc, s->conf->name, k + 1, sh->v.ramp.n, idx + 1);
}

/* rev: the revision this comes from (0: a tick, a ramp step by the clock). */
static void reconcile(struct fleet *f, struct service_rt *s, struct shared_svc *sh, __s64 rev)
{
	struct fleet_local l = {
		.weight = s->weight,
		.latched = s->latched,
		.publish_pending = s->fleet_publish,
		.acked = s->latched && sh->latch_acked,
		/* A drill's latch is this node's own (rollback_fire does not publish
		 * it either); a real fleet rollback still wins over it. */
		.local_only = s->latch_drill,
		.rollback_unix_ns = s->rollback_unix_ns,
	};
	struct agent *a = f->a;
	char w1[WEIGHT_STR_LEN], w2[WEIGHT_STR_LEN];
	enum fleet_action act;
	__u64 now = now_unix_ns(), mono = now_mono_ns();
	__u32 w;

	if (f->st != S_UP)
		return;
	if (!sh->known) {
		/* The fleet has no word on this service yet: ours creates it. */
		if (s->fleet_publish)
			publish(f, s, sh);
		return;
	}
	l.pace = &sh->pace;
	l.now_mono_ns = mono;
	act = fleet_decide(&sh->v, &l, now, &w);
	switch (act) {
	case FLEET_NONE:
		/* Written here first (shiftctl on this host), or our own publish: the
		 * node is at that revision all the same, and the log says so. */
		if (rev)
			log_info(
				"fleet: applied %s%s rev %lld: already in effect here (green %s%s)",
				f->key_svc, s->conf->name, (long long)rev,
				weight_format(s->weight, w1, sizeof(w1)),
				s->latched ? ", rolled back" : "");
		break;
	case FLEET_SET_WEIGHT: {
		struct weight_state was = agent_weight_state(s);
		int err;

		if (!rev && w > s->weight && !fleet_fresh(f)) {
			fleet_confirm(f);
			break;
		}
		s->weight = w;
		/* Not over a rollback shiftctl wrote here since shiftd's last look:
		 * shiftctl's own fleet write follows, and the fleet orders the two. */
		err = apply_weight_over(a, s, &was);
		if (err == -EAGAIN) {
			log_info("fleet: %s%s%s: not applied, the weight was changed here since "
				 "(shiftctl); its own fleet write follows",
				 f->key_svc, s->conf->name, rev ? "" : " ramp step");
			/* Decided again once that write's sync came, or is no longer
			 * expected (shiftctl killed between its map write and its
			 * sync): the fleet's word then wins, not the lone write. */
			s->fleet_recheck = true;
		}
		if (err)
			break;
		a->persist_dirty = true;
		a->fleet.applied++;
		if (rev) {
			record_lag(f, (__s64)(now_unix_ns() - sh->v.unix_ns));
			log_info("fleet: applied %s%s rev %lld: green %s (was %s, by %s)",
				 f->key_svc, s->conf->name, (long long)rev,
				 weight_format(w, w1, sizeof(w1)),
				 weight_format(l.weight, w2, sizeof(w2)), sh->v.origin);
		} else {
			log_info("fleet: %s: ramp step by the plan, green %s (was %s)",
				 s->conf->name, weight_format(w, w1, sizeof(w1)),
				 weight_format(l.weight, w2, sizeof(w2)));
		}
		break;
	}
	case FLEET_ROLLBACK: {
		__s64 lag;
		int rc = rollback_adopt(a, s, sh->v.reason, sh->v.origin);

		if (rc < 0)
			break;
		if (rc == 1) {
			/* shiftctl rollback on this host: its map write is the origin's. */
			s->rollback_unix_ns = sh->v.unix_ns;
			s->fleet_lag_us = 0;
			log_info("fleet: applied %s%s rev %lld: rollback (this host's operator)",
				 f->key_svc, s->conf->name, (long long)rev);
			break;
		}
		lag = (__s64)(s->rollback_unix_ns - sh->v.unix_ns);
		s->fleet_lag_us = lag / 1000;
		record_lag(f, lag);
		a->fleet.applied++;
		log_info("fleet: applied %s%s rev %lld: ROLLBACK (origin %s, %.1f ms after its "
			 "write)",
			 f->key_svc, s->conf->name, (long long)rev, sh->v.origin,
			 (double)lag / 1e6);
		break;
	}
	case FLEET_CLEAR:
		rollback_clear(a, s);
		s->weight = w;
		apply_weight(a, s);
		/* rollback_clear() saved the weight before this one. */
		a->persist_dirty = true;
		a->fleet.applied++;
		if (rev)
			record_lag(f, (__s64)(now_unix_ns() - sh->v.unix_ns));
		log_info("fleet: applied %s%s rev %lld: latch cleared (by %s), green %s",
			 f->key_svc, s->conf->name, (long long)rev, sh->v.origin,
			 weight_format(w, w1, sizeof(w1)));
		break;
	case FLEET_PUBLISH:
		publish(f, s, sh);
		break;
	case FLEET_PUBLISHED:
		s->fleet_publish = false;
		a->persist_dirty = true;
		if (sh->pub)
			break; /* our own write coming back: its answer logs it */
		log_info("fleet: %s is rolled back fleet-wide already (origin %s, rev %lld); our "
			 "rollback (%s) is covered",
			 s->conf->name, sh->v.origin, (long long)sh->mod_rev, s->reason);
		break;
	}
	/* From now on a fleet without the latch means a clear, whatever the clocks. */
	sh->latch_acked = s->latched && sh->v.latched;
	if (sh->v.has_ramp && !sh->v.latched && !s->latched && s->weight == w) {
		__u32 idx;
		bool done;

		/* The step is in the map: from here on it is the floor, and the
		 * next one a hold of this node's own time away. */
		fleet_ramp_paced(&sh->v.ramp, &sh->pace, now, mono, &idx, &done);
		fleet_ramp_pace_set(&sh->pace, &sh->v.ramp, idx, now, mono);
		pace_note(f, s, sh, idx, now);
	}
	ramp_view(s, sh, now, mono);
	if (sh->v.has_ramp)
		ramp_timer(f);
}

static void reconcile_all(struct fleet *f)
{
	__u32 i;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = f->a->svc[i];
		struct shared_svc *sh;

		if (!s)
			continue;
		sh = shared_get(f, s->conf->name, s->fleet_publish);
		if (sh)
			reconcile(f, s, sh, 0);
	}
}

/* One svc/ key from a range or a watch event. */
static void handle_kv(struct fleet *f, const struct etcd_kv *kv)
{
	const char *name = fleet_key_name(f->conf.fleet, FLEET_KEY_SVC, kv->key);
	struct shared_svc *sh;
	struct fleet_svc_value v;
	struct service_rt *s;
	char why[256];

	if (kv->mod_revision > f->a->fleet.revision)
		f->a->fleet.revision = kv->mod_revision;
	if (!name) {
		log_warn("fleet: unexpected key %s at revision %lld; ignored", kv->key,
			 (long long)kv->mod_revision);
		return;
	}
	sh = shared_get(f, name, true);
	if (!sh)
		return;
	sh->in_range = true;
	/* The watch and a failed publish's read-back come on different connections,
	 * so a read-back can be older than what the watch gave meanwhile; a range
	 * after an outage repeats what is held. Neither may undo a later word. */
	if (kv->mod_revision <= sh->seen_rev) {
		log_debug("fleet: %s at revision %lld: revision %lld is already here; ignored",
			  kv->key, (long long)kv->mod_revision, (long long)sh->seen_rev);
		return;
	}
	sh->seen_rev = kv->mod_revision;
	if (kv->deleted) {
		log_warn("fleet: %s deleted at revision %lld; this node keeps its state", kv->key,
			 (long long)kv->mod_revision);
		sh->known = false;
		sh->mod_rev = 0;
		return;
	}
	sh->mod_rev = kv->mod_revision;
	if (fleet_svc_decode(kv->value, kv->value_len, &v, why, sizeof(why))) {
		f->a->fleet.bad_values++;
		log_err("fleet: %s at revision %lld: %s; ignored, last good state kept", kv->key,
			(long long)kv->mod_revision, why);
		return;
	}
	sh->v = v;
	sh->v_rev = kv->mod_revision;
	sh->known = true;
	s = agent_service(f->a, name);
	if (!s) {
		log_debug("fleet: %s: no such service here; ignored", kv->key);
		return;
	}
	reconcile(f, s, sh, kv->mod_revision);
}

/* A range says nothing of a deleted key: what it does not hold is gone (the
 * watch's DELETE event was missed while away). */
static void forget_absent(struct fleet *f, __s64 rev)
{
	size_t i;

	for (i = 0; i < f->nsh; i++) {
		struct shared_svc *sh = &f->sh[i];

		if (sh->in_range || (!sh->known && !sh->mod_rev))
			continue;
		log_warn("fleet: %s%s deleted by revision %lld; this node keeps its state",
			 f->key_svc, sh->name, (long long)rev);
		sh->known = false;
		sh->mod_rev = 0;
		sh->seen_rev = rev;
	}
}

static void handle_kvs(struct fleet *f, json_t *kvs)
{
	json_t *x;
	size_t i;

	json_array_foreach(kvs, i, x)
	{
		struct etcd_kv kv;

		if (etcd_kv_parse(x, &kv)) {
			log_err("fleet: a kv etcd sent does not parse; ignored");
			continue;
		}
		handle_kv(f, &kv);
		etcd_kv_free(&kv);
	}
}

/* --- watch stream ---------------------------------------------------------------- */

static void watch_message(struct fleet *f, json_t *msg)
{
	json_t *res = json_object_get(msg, "result"), *events, *ev;
	const char *err = NULL;
	__s64 compact = 0;
	size_t i;

	if (!res) {
		err = etcd_resp_error(msg);
		session_fail(f, err ? err : "watch: a message without result");
		return;
	}
	f->heard_mono = now_mono_ns();
	etcd_i64(res, "compact_revision", &compact);
	if (compact) {
		log_warn("fleet: revision %lld is compacted (oldest now %lld): re-reading the "
			 "fleet's state",
			 (long long)f->watch_rev + 1, (long long)compact);
		req_free(f, f->watch);
		f->st = S_JOINING; /* no watch until the re-read is done */
		f->join_mono = now_mono_ns();
		start_range(f);
		return;
	}
	if (json_is_true(json_object_get(res, "canceled"))) {
		session_fail(f, "the watch was cancelled by etcd");
		return;
	}
	if (json_is_true(json_object_get(res, "created"))) {
		f->st = S_UP;
		set_connected(f, true);
		if (f->ever_up)
			log_info("fleet: in touch with etcd (%s), watching from revision %lld",
				 ep_name(f), (long long)f->watch_rev + 1);
		else
			log_info("fleet: joined fleet %s as %s via %s, watching from revision %lld",
				 f->conf.fleet, f->conf.node, ep_name(f),
				 (long long)f->watch_rev + 1);
		f->warned = false;
		f->ever_up = true;
		f->failures = 0;
		f->report_forced = true;
		f->keepalive_mono = now_mono_ns() + f->conf.lease_ns / 3;
		reconcile_all(f);
		return;
	}
	events = json_object_get(res, "events");
	json_array_foreach(events, i, ev)
	{
		json_t *type = json_object_get(ev, "type");
		struct etcd_kv kv;
		bool later = false;
		size_t k;

		/* A resumed watch replays what happened while we were away: only each
		 * key's last word counts (no stale raise applied for a moment). */
		for (k = i + 1; k < json_array_size(events) && !later; k++)
			later = json_equal(
				json_object_get(json_object_get(ev, "kv"), "key"),
				json_object_get(json_object_get(json_array_get(events, k), "kv"),
						"key"));
		if (later) {
			__s64 r = 0;

			etcd_i64(json_object_get(ev, "kv"), "mod_revision", &r);
			if (r > f->watch_rev)
				f->watch_rev = r;
			log_info("fleet: revision %lld superseded in the same batch; skipped",
				 (long long)r);
			continue;
		}

		if (etcd_kv_parse(json_object_get(ev, "kv"), &kv)) {
			log_err("fleet: a watch event does not parse; ignored");
			continue;
		}
		kv.deleted = json_is_string(type) && !strcmp(json_string_value(type), "DELETE");
		if (kv.mod_revision > f->watch_rev)
			f->watch_rev = kv.mod_revision;
		handle_kv(f, &kv);
		etcd_kv_free(&kv);
		if (!f->watch)
			return;
	}
}

/* The gateway streams one JSON object per message; take the complete ones. */
static void watch_drain(struct fleet *f)
{
	while (f->watch && f->watch_parsed < f->watch->len) {
		struct req *w = f->watch;
		const char *p = w->buf + f->watch_parsed;
		size_t left = w->len - f->watch_parsed;
		json_error_t je;
		json_t *msg;

		while (left && (*p == '\n' || *p == '\r' || *p == ' ')) {
			p++, left--, f->watch_parsed++;
		}
		if (!left)
			break;
		msg = json_loadb(p, left, JSON_DISABLE_EOF_CHECK, &je);
		if (!msg)
			break; /* incomplete: wait for more */
		f->watch_parsed += (size_t)je.position;
		watch_message(f, msg);
		json_decref(msg);
	}
	/* Keep the buffer small on a long-lived stream: drop what was parsed. */
	if (f->watch && f->watch_parsed) {
		struct req *w = f->watch;

		memmove(w->buf, w->buf + f->watch_parsed, w->len - f->watch_parsed);
		w->len -= f->watch_parsed;
		w->buf[w->len] = '\0';
		f->watch_parsed = 0;
	}
}

/* --- completions ----------------------------------------------------------------- */

static void node_report(struct fleet *f, bool force);
static void ramp_steps(struct fleet *f);

static void on_done(struct fleet *f, struct req *r, CURLcode cc)
{
	enum req_kind kind = r->kind;
	const char *eerr = NULL;
	json_error_t je;
	json_t *resp = NULL;
	long status = 0;
	char why[512];

	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	if (kind == R_WATCH) {
		watch_drain(f);
		if (f->watch == r)
			session_fail(f, cc == CURLE_OK ? "the watch stream ended" :
							 curl_easy_strerror(cc));
		return;
	}
	if (cc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s: %s", req_name[kind], curl_easy_strerror(cc));
		goto failed;
	}
	resp = r->len ? json_loadb(r->buf, r->len, 0, &je) : NULL;
	eerr = resp ? etcd_resp_error(resp) : "not JSON";
	if (eerr) {
		snprintf(why, sizeof(why), "%s: HTTP %ld: %s", req_name[kind], status, eerr);
		goto failed;
	}
	f->heard_mono = now_mono_ns();
	switch (kind) {
	case R_GRANT:
		if (etcd_i64(resp, "ID", &f->lease) || !f->lease) {
			snprintf(why, sizeof(why), "lease grant: no lease ID");
			goto failed;
		}
		if (claim_alive(f)) {
			snprintf(why, sizeof(why), "cannot start the alive claim");
			goto failed;
		}
		f->keepalive_mono = now_mono_ns() + f->conf.lease_ns / 3;
		/* A range even when the watch could resume from watch_rev: etcd confirms
		 * a resumed watch before it replays what was missed, and in between this
		 * node would act on its pre-outage values (raise green by a ramp step the
		 * fleet has since rolled back, count a rollback of ours as covered by a
		 * latch since cleared). A compacted revision does not matter then. */
		start_range(f);
		break;
	case R_CLAIM:
		f->claim = NULL;
		if (etcd_txn_succeeded(resp))
			alive_claimed(f);
		else
			claim_held(f, etcd_resp_kvs(resp));
		break;
	case R_ALIVE:
		alive_claimed(f);
		break;
	case R_RANGE: {
		json_t *kvs = etcd_resp_kvs(resp);
		__s64 rev = etcd_header_revision(resp);

		/* Every service's value as of rev; the watch takes over from rev + 1. */
		for (size_t i = 0; i < f->nsh; i++) {
			f->sh[i].in_range = false;
			/* Back from an outage: the plan's step is etcd's word now,
			 * taken at once if above the one held (never below it). */
			f->sh[i].pace.catch_up = true;
			/* An etcd cluster restored or replaced starts its revisions
			 * afresh: what was seen before orders nothing now. */
			if (f->sh[i].seen_rev > rev) {
				log_warn("fleet: etcd is at revision %lld, this node saw %lld of "
					 "%s%s: a new or restored cluster; taking its values",
					 (long long)rev, (long long)f->sh[i].seen_rev, f->key_svc,
					 f->sh[i].name);
				f->sh[i].seen_rev = 0;
			}
		}
		f->st = S_UP; /* reconcile applies only when up; the watch confirms below */
		if (kvs)
			handle_kvs(f, kvs);
		forget_absent(f, rev);
		f->st = S_JOINING;
		f->watch_rev = rev;
		start_watch(f);
		break;
	}
	case R_KEEPALIVE: {
		json_t *res = json_object_get(resp, "result");
		__s64 ttl = 0;

		etcd_i64(res, "TTL", &ttl);
		if (ttl <= 0) {
			snprintf(why, sizeof(why), "lease %llx expired",
				 (unsigned long long)f->lease);
			goto failed;
		}
		if (f->step_waits) {
			f->step_waits = false;
			ramp_steps(f);
		}
		/* Another host's name until its lease ends (or ours, lost meanwhile). */
		if (!f->alive_ours)
			claim_alive(f);
		break;
	}
	case R_PUBLISH: {
		struct shared_svc *sh = shared_get(f, r->svc, false);
		struct service_rt *s = agent_service(f->a, r->svc);
		__s64 rev = etcd_header_revision(resp);

		if (!sh)
			break;
		sh->pub = NULL;
		if (etcd_txn_succeeded(resp)) {
			f->a->fleet.publishes++;
			if (s) {
				/* No longer pending, after a restart too. */
				s->fleet_publish = false;
				f->a->persist_dirty = true;
				log_info(
					"fleet: published the rollback of %s at revision %lld (%s)",
					r->svc, (long long)rev, s->reason);
			}
			break;
		}
		/* Someone wrote first: decide again on what is there now. */
		if (etcd_resp_kvs(resp) && json_array_size(etcd_resp_kvs(resp))) {
			handle_kvs(f, etcd_resp_kvs(resp));
			sh = shared_get(f, r->svc, false); /* handle_kvs may move f->sh */
		} else if (rev > sh->seen_rev) {
			/* Gone as of rev; our rollback creates it. */
			sh->known = false;
			sh->mod_rev = 0;
			sh->seen_rev = rev;
		}
		/* Also when the read-back was older than the watch's word (ignored
		 * above): the rollback is still ours to publish, on that word. */
		if (s && sh && s->fleet_publish && !sh->pub)
			reconcile(f, s, sh, 0);
		break;
	}
	case R_NODE:
		break;
	case R_WATCH:
		break;
	}
	json_decref(resp);
	return;
failed:
	json_decref(resp);
	if (kind == R_NODE) {
		log_debug("fleet: %s", why);
		f->report_forced = true;
		return;
	}
	session_fail(f, why);
}

static void drain_done(struct fleet *f)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(f->m, &left))) {
		struct req *r = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (!r)
			continue;
		{
			CURLcode cc = msg->data.result;

			curl_multi_remove_handle(f->m, r->h);
			on_done(f, r, cc);
		}
		/* on_done may have failed the session, which frees every request. */
		for (struct req *q = f->reqs; q; q = q->next)
			if (q == r) {
				req_free(f, r);
				break;
			}
	}
}

/* --- libcurl <-> epoll ----------------------------------------------------------- */

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct fleet *f = userp;
	struct epoll_event ev = { .data.fd = s };

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (socketp && epoll_ctl(f->epfd, EPOLL_CTL_DEL, s, NULL) && errno != EBADF &&
		    errno != ENOENT)
			log_debug("fleet: epoll del: %s", strerror(errno));
		curl_multi_assign(f->m, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (socketp) {
		if (epoll_ctl(f->epfd, EPOLL_CTL_MOD, s, &ev))
			log_warn("fleet: epoll mod: %s", strerror(errno));
	} else {
		if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, s, &ev) &&
		    (errno != EEXIST || epoll_ctl(f->epfd, EPOLL_CTL_MOD, s, &ev)))
			log_warn("fleet: epoll add: %s", strerror(errno));
		curl_multi_assign(f->m, s, f);
	}
	return 0;
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
	struct fleet *f = userp;
	struct itimerspec its = { 0 };

	(void)m;
	if (ms >= 0) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (ms % 1000) * 1000000L;
		if (!ms)
			its.it_value.tv_nsec = 1; /* 0 would disarm */
	}
	if (timerfd_settime(f->tfd, 0, &its, NULL))
		log_warn("fleet: timerfd: %s", strerror(errno));
	return 0;
}

static void after_curl(struct fleet *f)
{
	watch_drain(f);
	drain_done(f);
}

void fleet_events(struct fleet *f)
{
	struct epoll_event evs[16];
	int n, i, running;

	n = epoll_wait(f->epfd, evs, 16, 0);
	for (i = 0; i < n; i++) {
		if (evs[i].data.fd == f->rampfd) {
			__u64 exp;

			if (read(f->rampfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
				log_debug("fleet: ramp timer read: %s", strerror(errno));
			/* Every node steps at the plan's boundary by its own clock, not at
			 * its next 100 ms tick: the fleet moves in step. */
			ramp_steps(f);
			continue;
		}
		if (evs[i].data.fd == f->tfd) {
			__u64 exp;

			if (read(f->tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
				log_debug("fleet: timerfd read: %s", strerror(errno));
			curl_multi_socket_action(f->m, CURL_SOCKET_TIMEOUT, 0, &running);
		} else {
			int fl = 0;

			if (evs[i].events & EPOLLIN)
				fl |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				fl |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				fl |= CURL_CSELECT_ERR;
			curl_multi_socket_action(f->m, evs[i].data.fd, fl, &running);
		}
		after_curl(f);
	}
	if (f->a->fleet_pending)
		fleet_kick(f);
}

/* --- node report, ticks ------------------------------------------------------------ */

/* Ramp steps by the clock; they happen only while in touch with the fleet. */
static void ramp_steps(struct fleet *f)
{
	size_t i;

	if (f->st != S_UP)
		return;
	for (i = 0; i < f->nsh; i++) {
		struct service_rt *s;

		if (!f->sh[i].known || !f->sh[i].v.has_ramp)
			continue;
		s = agent_service(f->a, f->sh[i].name);
		if (s)
			reconcile(f, s, &f->sh[i], 0);
	}
}

static __u64 report_hash(const struct agent *a)
{
	__u64 h = 1469598103934665603ull;
	__u32 i;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		const struct service_rt *s = a->svc[i];

		if (!s)
			continue;
		h = (h ^ (s->weight | (s->latched ? 1u << 31 : 0) | (__u64)i << 32)) *
		    1099511628211ull;
	}
	return (h ^ (__u64)a->fleet.revision) * 1099511628211ull;
}

static void node_report(struct fleet *f, bool force)
{
	struct fleet_node_value *v;
	struct agent *a = f->a;
	__u64 h = report_hash(a);
	char *val;
	__u32 i;

	/* nodes/NODE is the name holder's to write. */
	if (f->st != S_UP || f->node || !f->alive_ours || (!force && h == f->last_report_hash))
		return;
	v = calloc(1, sizeof(*v));
	if (!v)
		return;
	snprintf(v->node, sizeof(v->node), "%s", f->conf.node);
	v->applied_revision = a->fleet.revision;
	v->unix_ns = now_unix_ns();
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		const struct service_rt *s = a->svc[i];

		if (!s)
			continue;
		snprintf(v->svc[v->n].service, sizeof(v->svc[0].service), "%s", s->conf->name);
		v->svc[v->n].weight_bp = s->latched ? 0 : s->weight;
		v->svc[v->n].latched = s->latched;
		v->n++;
	}
	val = fleet_node_encode(v);
	free(v);
	if (!val)
		return;
	f->node = req_start(f, R_NODE, ETCD_PATH_PUT, etcd_req_put(f->key_node, val, 0));
	free(val);
	if (f->node) {
		f->last_report_hash = h;
		f->report_forced = false;
	}
}

void fleet_tick(struct fleet *f)
{
	__u64 now = now_mono_ns();

	if (f->st == S_DOWN) {
		if (now >= f->retry_mono)
			join(f);
		return;
	}
	if (f->lease && !f->keepalive && now >= f->keepalive_mono) {
		f->keepalive = req_start(f, R_KEEPALIVE, ETCD_PATH_LEASE_KEEPALIVE,
					 etcd_req_lease_id(f->lease));
		f->keepalive_mono = now + f->conf.lease_ns / 3;
	}
	/* Every step of a join is bounded by etcd_timeout but the watch's start
	 * (a stream): a join that has not completed by now never will. */
	if (f->st == S_JOINING && now > f->join_mono + 4 * f->conf.timeout_ns + 1000000000ull) {
		session_fail(f, "joining took too long");
		return;
	}
	if (f->st != S_UP)
		return;
	ramp_steps(f);
	/* A rollback whose publish could not start (out of memory) is not left
	 * waiting for the next event of its key. */
	fleet_kick(f);
	node_report(f, f->report_forced);
}

void fleet_kick(struct fleet *f)
{
	__u32 i;

	f->a->fleet_pending = false;
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = f->a->svc[i];
		struct shared_svc *sh;

		if (!s || (!s->fleet_publish && !s->fleet_recheck))
			continue;
		if (!s->fleet_publish && agent_outside_pending(s))
			continue;
		/* Not up: the range of the next join reconciles every service. */
		s->fleet_recheck = false;
		sh = shared_get(f, s->conf->name, s->fleet_publish);
		if (sh)
			reconcile(f, s, sh, 0);
	}
}

/* agent.on_rollback: a local rollback's map write is done; start the etcd
 * write now (before eviction and fsyncs), not at the end of the loop pass. */
static void on_rollback(struct agent *a, struct service_rt *s)
{
	struct fleet *f = a->fleet_ctx;
	struct shared_svc *sh;
	int running;

	if (!f || f->st != S_UP)
		return;
	sh = shared_get(f, s->conf->name, true);
	if (!sh)
		return;
	reconcile(f, s, sh, 0);
	if (sh->pub)
		/* Not inside a libcurl callback: drive the new transfer as far as it
		 * goes without blocking (on a kept-alive connection: sent). */
		curl_multi_socket_action(f->m, CURL_SOCKET_TIMEOUT, 0, &running);
}

int fleet_sync_stale(struct fleet *f, struct service_rt *s, __s64 rev,
		     const struct weight_state *before, char *msg, size_t len)
{
	struct shared_svc *sh;
	char w[WEIGHT_STR_LEN];

	if (!f || rev <= 0)
		return 0;
	sh = shared_get(f, s->conf->name, false);
	if (!sh || !sh->known || sh->v_rev <= rev)
		return 0;
	/* What shiftd had is the fleet's later word (or what it made of it). */
	agent_restore_word(f->a, s, before);
	reconcile(f, s, sh, 0);
	weight_format(s->weight, w, sizeof(w));
	log_warn("fleet: %s: shiftctl's write of revision %lld reached this host's map after "
		 "revision %lld (by %s); this host keeps the fleet's: green %s%s",
		 s->conf->name, (long long)rev, (long long)sh->v_rev, sh->v.origin, w,
		 s->latched ? ", rolled back" : "");
	snprintf(msg, len,
		 "warning: the fleet changed after this write (revision %lld, by %s); this "
		 "host follows the fleet: green %s%s\n",
		 (long long)sh->v_rev, sh->v.origin, w, s->latched ? ", rolled back" : "");
	return 1;
}

void fleet_reloaded(struct fleet *f)
{
	if (f->st == S_UP)
		reconcile_all(f);
	f->report_forced = true;
}

/* --- open / close ------------------------------------------------------------------ */

int fleet_fd(const struct fleet *f)
{
	return f->epfd;
}

struct fleet *fleet_open(struct agent *a)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct fleet *f;
	char why[640];
	int rc;

	a->fleet.enabled = a->conf->fleet.enabled;
	if (!a->conf->fleet.enabled)
		return NULL;
	if (etcd_curl_global())
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->epfd = f->tfd = f->rampfd = -1;
	f->a = a;
	f->conf = a->conf->fleet;
	rc = fleet_node_id_load(a->conf->state_dir, f->node_id, why, sizeof(why));
	if (rc < 0)
		log_warn("fleet: %s; node id %s is this run's only, so after a crash this host "
			 "waits up to fleet_lease to take its node name back",
			 why, f->node_id);
	else if (rc > 0)
		log_info("fleet: %s", why);
	f->alive_val = fleet_alive_encode(f->node_id);
	if (!f->alive_val) {
		log_err("fleet: out of memory");
		fleet_close(f);
		return NULL;
	}
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	/* Armed with relative times (ramp_timer()): where the plan stands is read
	 * again from the wall clock when it fires. */
	f->rampfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	f->m = curl_multi_init();
	ev.data.fd = f->tfd;
	if (f->epfd < 0 || f->tfd < 0 || f->rampfd < 0 || !f->m ||
	    epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->tfd, &ev) ||
	    (ev.data.fd = f->rampfd, epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->rampfd, &ev))) {
		log_err("fleet: event set-up: %s", strerror(errno));
		fleet_close(f);
		return NULL;
	}
	curl_multi_setopt(f->m, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(f->m, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->m, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(f->m, CURLMOPT_TIMERDATA, f);
	fleet_key_prefix(f->conf.fleet, FLEET_KEY_SVC, f->key_svc, sizeof(f->key_svc));
	fleet_key(f->conf.fleet, FLEET_KEY_ALIVE, f->conf.node, f->key_alive, sizeof(f->key_alive));
	fleet_key(f->conf.fleet, FLEET_KEY_NODES, f->conf.node, f->key_node, sizeof(f->key_node));
	a->fleet_ctx = f;
	a->on_rollback = on_rollback;
	log_info("fleet: node %s of fleet %s, etcd %s%s (%u endpoint%s)", f->conf.node,
		 f->conf.fleet, f->conf.endpoints[0], f->conf.n_endpoints > 1 ? ", ..." : "",
		 f->conf.n_endpoints, f->conf.n_endpoints == 1 ? "" : "s");
	for (__u32 i = 0; i < f->conf.n_endpoints; i++)
		if (!etcd_curl_detaches_resolver() &&
		    etcd_curl_url_has_hostname(f->conf.endpoints[i]))
			log_warn("fleet: etcd endpoint %s is a hostname and this libcurl (%s) "
				 "waits for its resolver when a request times out: a DNS server "
				 "that does not answer stalls shiftd for seconds. Give addresses "
				 "or use libcurl >= 7.87",
				 f->conf.endpoints[i], curl_version_info(CURLVERSION_NOW)->version);
	join(f);
	return f;
}

/* At exit: give the lease back so the node shows as gone at once, not after
 * fleet_lease. Bounded (300 ms, one endpoint): shiftd is on its way out. */
static void revoke_lease(struct fleet *f)
{
	struct conf_fleet c = f->conf;
	struct etcd_sync es;
	char err[256], *body;
	json_t *resp = NULL;

	c.timeout_ns = 300 * 1000000ull;
	c.n_endpoints = 1;
	memcpy(c.endpoints[0], f->conf.endpoints[f->ep], sizeof(c.endpoints[0]));
	body = etcd_req_lease_id(f->lease);
	if (!body || etcd_sync_open(&es, &c)) {
		free(body);
		return;
	}
	if (etcd_sync_call(&es, ETCD_PATH_LEASE_REVOKE, body, &resp, err, sizeof(err)))
		log_debug("fleet: lease revoke: %s", err);
	else
		log_info("fleet: left fleet %s (lease revoked)", f->conf.fleet);
	json_decref(resp);
	etcd_sync_close(&es);
	free(body);
}

void fleet_close(struct fleet *f)
{
	if (!f)
		return;
	if (f->st == S_UP && f->lease)
		revoke_lease(f);
	if (f->a && f->a->fleet_ctx == f) {
		f->a->fleet_ctx = NULL;
		f->a->on_rollback = NULL;
	}
	cancel_all(f);
	if (f->m)
		curl_multi_cleanup(f->m);
	curl_slist_free_all(f->hdrs);
	if (f->tfd >= 0)
		close(f->tfd);
	if (f->rampfd >= 0)
		close(f->rampfd);
	if (f->epfd >= 0)
		close(f->epfd);
	free(f->sh);
	free(f->alive_val);
	free(f);
}
