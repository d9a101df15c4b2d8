// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "agent.h"
#include "analysis/ramp.h"
#include "control/drill_ctl.h"
#include "control/json.h"
#include "ops/state.h"
#include "control/status.h"
#include "config/units.h"
#include "config/weight.h"

/* Upper bound of the log2 bucket holding quantile q (bucket i: < 2^i µs). */
static __u64 hist_quantile_ns(const struct shift_lat_hist *h, double q)
{
	__u64 rank, cum = 0;
	int i;

	if (!h->count)
		return 0;
	rank = (__u64)(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < SHIFT_LAT_BUCKETS; i++) {
		cum += h->bucket[i];
		if (cum >= rank)
			return (1ull << i) * 1000ull;
	}
	return (1ull << (SHIFT_LAT_BUCKETS - 1)) * 1000ull;
}

static void fill_backend(const struct shift_maps *m, struct st_backend *b, __u32 id,
			 const struct shift_backend *be)
{
	struct shift_addr_key k;
	struct shift_lat_hist h;

	memset(b, 0, sizeof(*b));
	b->id = id;
	b->color = be->color;
	b->healthy = -1;
	b->nexthop = be->flags & SHIFT_BE_F_NH_VALID;
	memset(&k, 0, sizeof(k));
	memcpy(k.addr, be->addr, sizeof(k.addr));
	k.port = be->port;
	k.family = be->family;
	addr_format_endpoint(&k, b->addr, sizeof(b->addr));
	dp_backend_stats(m, id, &b->s);
	/* Response latency when the service speaks HTTP, else connect latency. */
	if (dp_lat_hist(m, id, SHIFT_LAT_RESPONSE, &h) == 0 && h.count == 0)
		dp_lat_hist(m, id, SHIFT_LAT_CONNECT, &h);
	b->lat_count = h.count;
	b->p50_ns = hist_quantile_ns(&h, 0.50);
	b->p99_ns = hist_quantile_ns(&h, 0.99);
}

/* Every slot of the backend array in one syscall (32768 lookups took 40 ms). */
static struct shift_backend *read_backends(const struct shift_maps *m)
{
	struct shift_backend *all = calloc(SHIFT_MAX_BACKENDS, sizeof(*all));
	__u32 *keys = calloc(SHIFT_MAX_BACKENDS, sizeof(*keys));
	__u32 count = SHIFT_MAX_BACKENDS, out_batch = 0, i;
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int err;

	if (!all || !keys)
		goto fail;
	err = bpf_map_lookup_batch(m->fd[SHIFT_MAP_BACKENDS], NULL, &out_batch, keys, all, &count,
				   &opts);
	if (err && errno != ENOENT) {
		/* No batch support: one lookup per slot. */
		for (i = 0; i < SHIFT_MAX_BACKENDS; i++)
			if (dp_backend_get(m, i, &all[i]))
				memset(&all[i], 0, sizeof(all[i]));
	} else if (count < SHIFT_MAX_BACKENDS) {
		memset(&all[count], 0, (SHIFT_MAX_BACKENDS - count) * sizeof(*all));
	}
	free(keys);
	return all;
fail:
	free(all);
	free(keys);
	return NULL;
}

static void add_backend(const struct shift_maps *m, struct st_model *out, const __u32 *slot,
			__u32 id, const struct shift_backend *be)
{
	struct st_service *s;

	if (!(be->flags & SHIFT_BE_F_ACTIVE) || be->service_id >= SHIFT_MAX_SERVICES ||
	    slot[be->service_id] == (__u32)-1)
		return;
	s = &out->svc[slot[be->service_id]];
	if (s->n_be >= sizeof(s->be) / sizeof(s->be[0]))
		return;
	fill_backend(m, &s->be[s->n_be++], id, be);
}

/*
 * The model's services from the maps (only: that one), slot[] mapping service
 * ids to their place in out->svc ((__u32)-1: not shown). 0, -ENOENT (only is
 * no service) or -ENOMEM; on an error out holds nothing.
 */
static int collect_services(const struct shift_maps *m, const char *only, struct st_model *out,
			    __u32 *slot)
{
	struct shift_svc_info info;
	__u32 i;

	memset(out, 0, sizeof(*out));
	dp_stats(m, out->stats);
	out->svc = calloc(SHIFT_MAX_SERVICES, sizeof(*out->svc));
	if (!out->svc)
		return -ENOMEM;
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct st_service *s;
		struct shift_addr_key vip;
		__u32 word = 0;

		slot[i] = (__u32)-1;
		if (dp_svc_info_get(m, i, &info) || !(info.flags & SHIFT_SVC_F_IN_USE))
			continue;
		if (only && strncmp(info.name, only, sizeof(info.name)))
			continue;
		s = &out->svc[out->n];
		slot[i] = out->n++;
		s->id = i;
		memcpy(s->name, info.name, sizeof(s->name));
		s->name[sizeof(s->name) - 1] = '\0';
		memset(&vip, 0, sizeof(vip));
		memcpy(vip.addr, info.vip, sizeof(vip.addr));
		vip.port = info.vport;
		vip.family = info.family;
		addr_format_endpoint(&vip, s->vip, sizeof(s->vip));
		s->proto = info.proto;
		s->affinity_client = info.flags & SHIFT_SVC_F_CLIENT_AFFINITY;
		s->affinity_prefix = info.family == SHIFT_AF_INET ? SHIFT_SVC_PREFIX4(info.flags) :
								    SHIFT_SVC_PREFIX6(info.flags);
		dp_weight_get(m, i, &word);
		s->latched = word & SHIFT_WEIGHT_LATCHED;
		s->weight = s->latched ? 0 : word & SHIFT_WEIGHT_MASK;
	}
	if (only && out->n == 0) {
		status_free(out);
		return -ENOENT;
	}
	return 0;
}

int status_collect(const struct shift_maps *m, const char *only, struct st_model *out,
		   struct agent *a)
{
	struct shift_backend be;
	__u32 i, slot[SHIFT_MAX_SERVICES];
	int err;

	err = collect_services(m, only, out, slot);
	if (err)
		return err;
	if (a) {
		/* The agent knows its backends: no scan of the array (it runs in the
		 * event loop, where every millisecond delays a rollback). */
		for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
			struct service_rt *r = a->svc[i];
			__u32 k;
			int c;

			if (!r || slot[i] == (__u32)-1)
				continue;
			for (c = 0; c < SHIFT_COLORS; c++)
				for (k = 0; k < r->n[c]; k++)
					if (dp_backend_get(m, r->pool[c][k].id, &be) == 0)
						add_backend(m, out, slot, r->pool[c][k].id, &be);
		}
	} else {
		struct shift_backend *all = read_backends(m);

		if (!all) {
			status_free(out);
			return -ENOMEM;
		}
		for (i = 0; i < SHIFT_MAX_BACKENDS; i++)
			add_backend(m, out, slot, i, &all[i]);
		free(all);
	}
	return 0;
}

int status_collect_refs(const struct shift_maps *m, const char *only, struct st_model *out,
			const struct st_be_ref *refs, __u32 n, const atomic_bool *cancel)
{
	struct shift_backend be;
	__u32 i, slot[SHIFT_MAX_SERVICES];
	int err;

	err = collect_services(m, only, out, slot);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		const struct st_be_ref *r = &refs[i];

		/* A stop must not wait for the rest: seconds at full scale. */
		if (cancel && atomic_load_explicit(cancel, memory_order_relaxed)) {
			status_free(out);
			return -ECANCELED;
		}
		if (r->svc >= SHIFT_MAX_SERVICES || slot[r->svc] == (__u32)-1)
			continue;
		if (dp_backend_get(m, r->id, &be) == 0)
			add_backend(m, out, slot, r->id, &be);
	}
	return 0;
}

void status_add_state(struct st_model *st, const struct shift_state *state)
{
	__u32 i, j;

	for (i = 0; i < st->n; i++) {
		struct st_service *s = &st->svc[i];

		for (j = 0; j < state->n; j++) {
			const struct state_service *p = &state->svc[j];

			if (strcmp(p->name, s->name))
				continue;
			snprintf(s->reason, sizeof(s->reason), "%s", p->reason);
			s->rollback_unix_ns = p->rollback_unix_ns;
			s->reaction_ns = p->reaction_ns;
			s->ramp_active = p->ramp_active;
			s->ramp_n = p->ramp_n < 32 ? p->ramp_n : 32;
			memcpy(s->ramp_steps, p->ramp_steps, s->ramp_n * sizeof(__u32));
			s->ramp_index = p->ramp_index;
			s->ramp_hold_ns = p->ramp_hold_ns;
			s->ramp_step_started_unix_ns = p->ramp_step_started_unix_ns;
			s->drill_active = p->drill_weight != 0;
			s->drill_ends_unix_ns = p->drill_ends_unix_ns;
			/* The state file keeps the last drill's outcome, not its figures. */
			memset(&s->last_drill, 0, sizeof(s->last_drill));
			s->last_drill.result = drill_result_from_name(p->last_drill);
			s->last_drill.started_unix_ns = p->last_drill_unix_ns;
			s->last_drill.time_to_blue_ns = p->last_drill_ttb_ns;
		}
	}
}

void status_take_agent(struct st_model *st, struct agent *a)
{
	size_t off = 0;
	__u32 i;

	st->agent = true;
	st->fleet = a->fleet.enabled;
	snprintf(st->fleet_node, sizeof(st->fleet_node), "%s", a->node);
	st->fleet_connected = a->fleet.connected;
	st->fleet_name_taken = a->fleet.name_taken;
	st->fleet_revision = a->fleet.revision;
	for (i = 0; i < a->n_ifaces && off < sizeof(st->agent_info); i++) {
		const struct iface_rt *f = &a->ifaces[i];
		struct st_iface *si = &st->ifaces[st->n_ifaces];

		off += snprintf(st->agent_info + off, sizeof(st->agent_info) - off,
				"%s%s %s (%s%s%s)", i ? ", " : "", f->name, xdp_role_name(f->role),
				f->attached ? dp_hook_name(f->hook) : "", f->attached ? " " : "",
				f->attached ? f->mode : "not attached");
		if (st->n_ifaces >= ST_MAX_IFACES)
			continue;
		snprintf(si->name, sizeof(si->name), "%s", f->name);
		si->role = xdp_role_name(f->role);
		si->attached = f->attached;
		si->hook = f->attached ? dp_hook_name(f->hook) : "";
		si->mode = f->attached ? f->mode : "";
		si->prog_id = f->prog_id;
		st->n_ifaces++;
	}
}

void status_take_service(struct agent *a, __u32 id, __u64 now, struct st_agent_svc *v)
{
	struct service_rt *r = a->svc[id];
	__u32 k;

	memset(v, 0, sizeof(*v));
	snprintf(v->reason, sizeof(v->reason), "%s", r->reason);
	v->rollback_unix_ns = r->rollback_unix_ns;
	v->reaction_ns = r->reaction_ns;
	snprintf(v->origin, sizeof(v->origin), "%s", r->rollback_origin);
	v->fleet_lag_us = r->fleet_lag_us;
	for (k = 0; k < TRIGGER__COUNT; k++)
		v->rollbacks_total += r->rollbacks[k];
	v->ramp_active = r->ramp.active;
	v->ramp_n = r->ramp.n;
	memcpy(v->ramp_steps, r->ramp.steps, sizeof(v->ramp_steps));
	v->ramp_index = r->ramp.index;
	v->ramp_hold_ns = r->ramp.hold_ns;
	v->ramp_step_started_unix_ns =
		ramp_step_started_unix(&r->ramp, now_mono_ns(), now_unix_ns());
	v->drill_active = r->drill.holding || r->drill.interrupted;
	v->drill_id = r->drill.cur.id;
	v->drill_ends_unix_ns = r->drill.ends_unix_ns;
	v->last_drill = r->drill.last;
	v->have_shadow = shadow_report(a, id, &v->shadow) == 0;
	analysis_pool_summary(&r->an, SHIFT_BLUE, now, &v->pool[SHIFT_BLUE]);
	analysis_pool_summary(&r->an, SHIFT_GREEN, now, &v->pool[SHIFT_GREEN]);
}

void status_apply_service(const struct shift_maps *m, struct st_service *s,
			  const struct st_agent_svc *v)
{
	memcpy(s->reason, v->reason, sizeof(s->reason));
	s->rollback_unix_ns = v->rollback_unix_ns;
	s->reaction_ns = v->reaction_ns;
	memcpy(s->origin, v->origin, sizeof(s->origin));
	s->fleet_lag_us = v->fleet_lag_us;
	s->rollbacks_total = v->rollbacks_total;
	s->ramp_active = v->ramp_active;
	s->ramp_n = v->ramp_n;
	memcpy(s->ramp_steps, v->ramp_steps, sizeof(s->ramp_steps));
	s->ramp_index = v->ramp_index;
	s->ramp_hold_ns = v->ramp_hold_ns;
	s->ramp_step_started_unix_ns = v->ramp_step_started_unix_ns;
	s->drill_active = v->drill_active;
	s->drill_id = v->drill_id;
	s->drill_ends_unix_ns = v->drill_ends_unix_ns;
	s->last_drill = v->last_drill;
	s->have_window = true;
	s->have_shadow = v->have_shadow;
	s->shadow = v->shadow;
	/* The datapath's shadow counters, on top of the agent's (skipped[SPLIT]). */
	if (s->have_shadow)
		shadow_report_maps(m, s->id, &s->shadow);
	memcpy(s->pool, v->pool, sizeof(s->pool));
}

/*
 * The whole of it on the caller's thread, as shiftd did before status went
 * off the loop (status_snap.c); kept for a shiftd whose status thread did not
 * start, and as the reference the split one is tested against.
 */
void status_add_agent(struct st_model *st, struct agent *a)
{
	struct st_agent_svc v;
	__u64 now = now_mono_ns();
	__u32 i, j, k;

	status_take_agent(st, a);
	for (i = 0; i < st->n; i++) {
		struct st_service *s = &st->svc[i];
		struct service_rt *r = a->svc[s->id];

		if (!r)
			continue;
		status_take_service(a, s->id, now, &v);
		status_apply_service(&a->maps, s, &v);
		for (j = 0; j < s->n_be; j++) {
			struct st_backend *b = &s->be[j];

			for (k = 0; k < r->n[b->color]; k++)
				if (r->pool[b->color][k].id == b->id)
					b->healthy = r->pool[b->color][k].healthy;
		}
	}
}

void status_free(struct st_model *st)
{
	free(st->svc);
	memset(st, 0, sizeof(*st));
}

/* The renderers go service by service: a cancelled render stops at the next. */
static bool render_on(const struct st_model *st)
{
	return !st->cancel || !atomic_load_explicit(st->cancel, memory_order_relaxed);
}

int status_render_form(const struct st_model *st, enum status_form form, char **buf, size_t *len)
{
	struct json j;
	FILE *f;
	char *p;
	int err = 0;

	*buf = NULL;
	*len = 0;
	if (form == STATUS_TEXT || form == STATUS_BACKENDS_TEXT) {
		f = open_memstream(buf, len);
		if (!f)
			return -errno;
		if (form == STATUS_BACKENDS_TEXT)
			status_render_backends_text(st, f);
		else
			status_render_text(st, f);
		/* Out of memory mid-render: no half answer; nor a cancelled one. */
		if (fclose(f))
			err = errno ? -errno : -ENOMEM;
		else if (!render_on(st))
			err = -ECANCELED;
		if (err) {
			free(*buf);
			*buf = NULL;
			*len = 0;
		}
		return err;
	}
	json_init(&j);
	if (form == STATUS_BACKENDS_JSON)
		status_render_backends_json(st, &j);
	else
		status_render_json(st, &j);
	if (j.failed || !render_on(st)) {
		err = j.failed ? -ENOMEM : -ECANCELED;
		json_free(&j);
		return err;
	}
	*buf = j.buf;
	*len = j.len;
	if (form != STATUS_JSON_LINE)
		return 0;
	/* Byte for byte what `shiftctl status --json` prints: with its newline. */
	p = realloc(*buf, *len + 1);
	if (!p) {
		free(*buf);
		*buf = NULL;
		*len = 0;
		return -ENOMEM;
	}
	p[(*len)++] = '\n';
	*buf = p;
	return 0;
}

int status_agent_render(struct agent *a, const char *only, enum status_form form, char **buf,
			size_t *len)
{
	struct st_model st;
	int err;

	*buf = NULL;
	*len = 0;
	err = status_collect(&a->maps, only, &st, a);
	if (err)
		return err;
	status_add_agent(&st, a);
	err = status_render_form(&st, form, buf, len);
	status_free(&st);
	return err;
}

static const char *color_name(int c)
{
	return c == SHIFT_GREEN ? "green" : "blue";
}

static __u64 backend_errors(const struct st_backend *b)
{
	__u64 n = 0;
	int e;

	for (e = 1; e < SHIFT_ERR_MAX; e++)
		n += b->s.errors[e];
	return n;
}

/*
 * Errors over what the backend was asked, since the datapath's counters
 * started: answered requests (responses, 5xx included) and the errors that
 * came without an answer (RST, ICMP, timeouts); a service whose analysis
 * reads no responses asks once per connection. -1 when nothing was asked.
 */
static double backend_error_rate(const struct st_backend *b)
{
	__u64 errs = backend_errors(b), asked = 0;
	int e;

	for (e = 1; e <= 5; e++)
		asked += b->s.responses[e];
	if (asked)
		asked += errs - b->s.errors[SHIFT_ERR_HTTP5XX];
	else
		asked = b->s.new_flows > errs ? b->s.new_flows : errs;
	return asked ? (double)errs / (double)asked : -1.0;
}

static void render_backend_json(const struct st_backend *b, struct json *j)
{
	double rate = backend_error_rate(b);
	int e;

	json_obj_open(j, NULL);
	json_str(j, "backend", b->addr);
	json_u64(j, "id", b->id);
	json_str(j, "color", color_name(b->color));
	if (b->healthy < 0)
		json_null(j, "healthy");
	else
		json_bool(j, "healthy", b->healthy);
	json_bool(j, "nexthop_cached", b->nexthop);
	json_u64(j, "connections", b->s.new_flows);
	json_u64(j, "packets", b->s.packets);
	json_u64(j, "bytes", b->s.bytes);
	json_u64(j, "reply_packets", b->s.reply_packets);
	json_u64(j, "reply_bytes", b->s.reply_bytes);
	json_u64(j, "errors", backend_errors(b));
	if (rate < 0)
		json_null(j, "error_rate");
	else
		json_double(j, "error_rate", rate);
	json_obj_open(j, "errors_by_kind");
	for (e = 1; e < SHIFT_ERR_MAX; e++)
		json_u64(j, dp_err_name(e), b->s.errors[e]);
	json_obj_close(j);
	json_obj_open(j, "responses");
	for (e = 1; e <= 5; e++) {
		char k[4] = { (char)('0' + e), 'x', 'x', 0 };

		json_u64(j, k, b->s.responses[e]);
	}
	json_obj_close(j);
	json_u64(j, "latency_samples", b->lat_count);
	json_double(j, "latency_p50_seconds", (double)b->p50_ns / 1e9);
	json_double(j, "latency_p99_seconds", (double)b->p99_ns / 1e9);
	json_obj_close(j);
}

static void render_pool_json(const struct st_service *s, int c, struct json *j)
{
	__u64 conns = 0, errs = 0;
	__u32 i;

	for (i = 0; i < s->n_be; i++) {
		if (s->be[i].color != c)
			continue;
		conns += s->be[i].s.new_flows;
		errs += backend_errors(&s->be[i]);
	}
	json_obj_open(j, color_name(c));
	json_u64(j, "connections", conns);
	json_u64(j, "errors", errs);
	if (s->have_window) {
		const struct pool_summary *p = &s->pool[c];

		json_double(j, "window_seconds", (double)p->window_ns / 1e9);
		json_u64(j, "window_requests", p->requests);
		json_u64(j, "window_errors", p->errors);
		json_double(j, "error_rate", p->error_rate);
		json_double(j, "latency_p50_seconds", (double)p->p50_ns / 1e9);
		json_double(j, "latency_p95_seconds", (double)p->p95_ns / 1e9);
		json_double(j, "latency_p99_seconds", (double)p->p99_ns / 1e9);
	} else {
		json_null(j, "error_rate");
	}
	json_obj_close(j);
}

static char *fmt_lat(__u64 ns, char *buf, size_t len)
{
	if (!ns)
		snprintf(buf, len, "-");
	else if (ns < 1000000)
		snprintf(buf, len, "%.0fus", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", (double)ns / 1e9);
	return buf;
}

static const char *const shadow_skip_names[SHIFT_SHADOW_STAT_MAX] = {
	[SHIFT_SHADOW_COPIED] = "copied",
	[SHIFT_SHADOW_SKIP_METHOD] = "method",
	[SHIFT_SHADOW_SKIP_SPLIT] = "split",
	[SHIFT_SHADOW_SKIP_NOT_HTTP] = "not_http",
	[SHIFT_SHADOW_SKIP_TOO_LARGE] = "too_large",
	[SHIFT_SHADOW_RING_FULL] = "ring_full",
};

static void render_shadow_json(const struct shadow_report *r, struct json *j)
{
	char w[WEIGHT_STR_LEN];
	int k;

	json_obj_open(j, "shadow");
	json_bool(j, "enabled", r->enabled);
	json_str(j, "sample", weight_format(r->sample_bp, w, sizeof(w)));
	json_u64(j, "requests", r->requests);
	json_u64(j, "compared", r->compared);
	json_u64(j, "matches", r->kinds[SHADOW_MATCH]);
	json_u64(j, "mismatches_total", r->mismatches);
	json_obj_open(j, "mismatches");
	for (k = SHADOW_MATCH + 1; k < SHADOW_KINDS; k++)
		json_u64(j, shadow_kind_name(k), r->kinds[k]);
	json_obj_close(j);
	json_double(j, "window_seconds", (double)r->window_ns / 1e9);
	json_u64(j, "window_compared", r->window_compared);
	json_u64(j, "window_mismatches", r->window_mismatches);
	json_double(j, "mismatch_rate", r->mismatch_rate);
	json_double(j, "max_mismatch", r->max_mismatch);
	json_u64(j, "pending", r->pending);
	json_u64(j, "unpaired", r->unpaired);
	json_u64(j, "shed", r->shed);
	json_u64(j, "copied", r->skipped[SHIFT_SHADOW_COPIED]);
	json_obj_open(j, "skipped");
	for (k = SHIFT_SHADOW_SKIP_METHOD; k < SHIFT_SHADOW_STAT_MAX; k++)
		json_u64(j, shadow_skip_names[k], r->skipped[k]);
	json_obj_close(j);
	json_obj_open(j, "replay_latency");
	for (k = 0; k < SHIFT_COLORS; k++) {
		json_obj_open(j, color_name(k));
		json_u64(j, "count", r->lat_count[k]);
		json_double(j, "mean_seconds",
			    r->lat_count[k] ?
				    (double)r->lat_sum_ns[k] / (double)r->lat_count[k] / 1e9 :
				    0.0);
		json_double(j, "max_seconds", (double)r->lat_max_ns[k] / 1e9);
		json_obj_close(j);
	}
	json_obj_close(j);
	json_obj_close(j);
}

static void render_shadow_text(const struct shadow_report *r, FILE *f)
{
	char w[WEIGHT_STR_LEN], l1[16], l2[16];
	int k;

	if (!r->enabled && !r->requests)
		return;
	fprintf(f,
		"  shadow %s, sample %s: %llu requests, %llu compared, %llu mismatches "
		"(window %.2f%% of %llu, max %.2f%%), %llu pending\n",
		r->enabled ? "on" : "off", weight_format(r->sample_bp, w, sizeof(w)),
		(unsigned long long)r->requests, (unsigned long long)r->compared,
		(unsigned long long)r->mismatches, r->mismatch_rate * 100.0,
		(unsigned long long)r->window_compared, r->max_mismatch * 100.0,
		(unsigned long long)r->pending);
	fprintf(f, "    mismatches:");
	for (k = SHADOW_MATCH + 1; k < SHADOW_KINDS; k++)
		fprintf(f, " %s=%llu", shadow_kind_name(k), (unsigned long long)r->kinds[k]);
	fprintf(f, "  skipped:");
	for (k = SHIFT_SHADOW_SKIP_METHOD; k < SHIFT_SHADOW_STAT_MAX; k++)
		fprintf(f, " %s=%llu", shadow_skip_names[k], (unsigned long long)r->skipped[k]);
	fprintf(f, " unpaired=%llu shed=%llu\n", (unsigned long long)r->unpaired,
		(unsigned long long)r->shed);
	fprintf(f, "    replay latency: blue mean %s, green mean %s\n",
		fmt_lat(r->lat_count[0] ? r->lat_sum_ns[0] / r->lat_count[0] : 0, l1, sizeof(l1)),
		fmt_lat(r->lat_count[1] ? r->lat_sum_ns[1] / r->lat_count[1] : 0, l2, sizeof(l2)));
}

static void render_service_json(const struct st_service *s, struct json *j)
{
	char w[WEIGHT_STR_LEN];
	__u32 i;

	json_obj_open(j, NULL);
	json_str(j, "service", s->name);
	json_str(j, "vip", s->vip);
	json_str(j, "protocol", s->proto == IPPROTO_UDP ? "udp" : "tcp");
	json_u64(j, "green_weight_bp", s->weight);
	json_str(j, "green_weight", weight_format(s->weight, w, sizeof(w)));
	json_bool(j, "rolled_back", s->latched);
	json_str(j, "affinity", s->affinity_client ? "client" : "flow");
	if (s->affinity_client)
		json_u64(j, "affinity_prefix", s->affinity_prefix);
	json_obj_open(j, "last_rollback");
	if (s->rollback_unix_ns) {
		json_str(j, "reason", s->reason);
		json_u64(j, "unix_ns", s->rollback_unix_ns);
		json_double(j, "reaction_us", (double)s->reaction_ns / 1e3);
		if (s->origin[0]) {
			json_str(j, "origin", s->origin);
			json_double(j, "fleet_lag_us", (double)s->fleet_lag_us);
		}
	}
	json_obj_close(j);
	json_u64(j, "rollbacks_total", s->rollbacks_total);
	json_obj_open(j, "ramp");
	json_bool(j, "active", s->ramp_active);
	if (s->ramp_n) {
		json_arr_open(j, "steps");
		for (i = 0; i < s->ramp_n; i++)
			json_str(j, NULL, weight_format(s->ramp_steps[i], w, sizeof(w)));
		json_arr_close(j);
		json_u64(j, "step_index", s->ramp_index);
		json_double(j, "hold_seconds", (double)s->ramp_hold_ns / 1e9);
	}
	json_obj_close(j);
	json_obj_open(j, "drill");
	json_bool(j, "active", s->drill_active);
	if (s->drill_active) {
		if (s->drill_id)
			json_u64(j, "id", s->drill_id);
		json_u64(j, "ends_unix_ns", s->drill_ends_unix_ns);
	}
	json_obj_close(j);
	drill_report_json(j, "last_drill", NULL, &s->last_drill);
	json_obj_open(j, "pools");
	render_pool_json(s, SHIFT_BLUE, j);
	render_pool_json(s, SHIFT_GREEN, j);
	json_obj_close(j);
	if (s->have_shadow)
		render_shadow_json(&s->shadow, j);
	json_arr_open(j, "backends");
	for (i = 0; i < s->n_be; i++)
		render_backend_json(&s->be[i], j);
	json_arr_close(j);
	json_obj_close(j);
}

void status_render_json(const struct st_model *st, struct json *j)
{
	__u32 i;

	json_obj_open(j, NULL);
	json_bool(j, "agent_running", st->agent);
	if (st->agent_info[0])
		json_str(j, "interfaces", st->agent_info);
	if (st->fleet) {
		json_obj_open(j, "fleet");
		json_str(j, "node", st->fleet_node);
		json_bool(j, "connected", st->fleet_connected);
		json_bool(j, "node_name_taken", st->fleet_name_taken);
		json_u64(j, "revision", (__u64)st->fleet_revision);
		json_obj_close(j);
	}
	if (st->n_ifaces) {
		json_arr_open(j, "attach");
		for (i = 0; i < st->n_ifaces; i++) {
			const struct st_iface *si = &st->ifaces[i];

			json_obj_open(j, NULL);
			json_str(j, "interface", si->name);
			json_str(j, "role", si->role);
			json_bool(j, "attached", si->attached);
			json_str(j, "hook", si->hook);
			json_str(j, "mode", si->mode);
			json_u64(j, "prog_id", si->prog_id);
			json_obj_close(j);
		}
		json_arr_close(j);
	}
	json_obj_open(j, "datapath");
	for (i = 0; i < SHIFT_STAT_MAX; i++)
		json_u64(j, dp_stat_name(i), st->stats[i]);
	json_obj_close(j);
	json_arr_open(j, "services");
	for (i = 0; i < st->n && render_on(st); i++)
		render_service_json(&st->svc[i], j);
	json_arr_close(j);
	json_obj_close(j);
}

void status_render_backends_json(const struct st_model *st, struct json *j)
{
	__u32 i, k;

	json_arr_open(j, NULL);
	for (i = 0; i < st->n && render_on(st); i++)
		for (k = 0; k < st->svc[i].n_be; k++)
			render_backend_json(&st->svc[i].be[k], j);
	json_arr_close(j);
}

static void render_backends_text(const struct st_service *s, FILE *f)
{
	char l1[16], l2[16];
	__u32 i;

	fprintf(f, "  %-24s %-6s %-7s %10s %12s %8s %8s %8s\n", "BACKEND", "COLOR", "HEALTH",
		"CONNS", "PACKETS", "ERRORS", "P50", "P99");
	for (i = 0; i < s->n_be; i++) {
		const struct st_backend *b = &s->be[i];

		fprintf(f, "  %-24s %-6s %-7s %10llu %12llu %8llu %8s %8s\n", b->addr,
			color_name(b->color),
			b->healthy < 0 ? "?" :
			b->healthy     ? "up" :
					 "down",
			(unsigned long long)b->s.new_flows, (unsigned long long)b->s.packets,
			(unsigned long long)backend_errors(b), fmt_lat(b->p50_ns, l1, sizeof(l1)),
			fmt_lat(b->p99_ns, l2, sizeof(l2)));
	}
}

void status_render_backends_text(const struct st_model *st, FILE *f)
{
	__u32 i;

	for (i = 0; i < st->n && render_on(st); i++) {
		fprintf(f, "%s (%s)\n", st->svc[i].name, st->svc[i].vip);
		render_backends_text(&st->svc[i], f);
	}
}

void status_render_text(const struct st_model *st, FILE *f)
{
	char w[WEIGHT_STR_LEN], l1[16], l2[16];
	__u32 i, k;

	fprintf(f, "agent: %s%s%s\n", st->agent ? "running" : "not running (figures from the maps)",
		st->agent_info[0] ? "; " : "", st->agent_info);
	if (st->fleet)
		fprintf(f, "fleet: node %s, %s, revision %lld%s\n", st->fleet_node,
			st->fleet_connected ? "connected" : "NOT CONNECTED (fail-static)",
			(long long)st->fleet_revision,
			st->fleet_name_taken ? "; NODE NAME HELD BY ANOTHER HOST (see the log)" :
					       "");
	for (i = 0; i < st->n && render_on(st); i++) {
		const struct st_service *s = &st->svc[i];

		fprintf(f, "\nservice %s  vip %s/%s  green %s%s\n", s->name, s->vip,
			s->proto == IPPROTO_UDP ? "udp" : "tcp",
			weight_format(s->weight, w, sizeof(w)),
			s->latched ? "  ROLLED BACK (latched; 'shiftctl clear' to lift)" : "");
		if (s->affinity_client)
			fprintf(f,
				"  affinity client (source /%u: a client's connections share a color)\n",
				s->affinity_prefix);
		if (s->rollback_unix_ns) {
			time_t t = (time_t)(s->rollback_unix_ns / 1000000000ull);
			struct tm tm;
			char when[32];

			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			/* An operator's, a health check's or a fleet peer's rollback
			 * has no sample to time it from. */
			if (s->reaction_ns)
				fprintf(f, "  last rollback %s: %s (reaction %.1f us)\n", when,
					s->reason, (double)s->reaction_ns / 1e3);
			else
				fprintf(f, "  last rollback %s: %s\n", when, s->reason);
			/* On a lone host the origin is this host or the operator. */
			if (st->fleet && s->origin[0])
				fprintf(f,
					"  rolled back by %s, applied here %.1f ms after its write\n",
					s->origin, (double)s->fleet_lag_us / 1e3);
		}
		if (s->ramp_active && s->ramp_n) {
			fprintf(f, "  ramp: step %u/%u (", s->ramp_index + 1, s->ramp_n);
			for (k = 0; k < s->ramp_n; k++)
				fprintf(f, "%s%s", k ? "," : "",
					weight_format(s->ramp_steps[k], w, sizeof(w)));
			fprintf(f, "), hold %s\n",
				units_format_duration(s->ramp_hold_ns, l1, sizeof(l1)));
		}
		if (s->drill_active)
			fprintf(f, "  rollback DRILL %llu holding: green comes back when it ends\n",
				(unsigned long long)s->drill_id);
		if (s->last_drill.result != DRILL_NONE && s->last_drill.ended_unix_ns) {
			drill_report_text(f, "  ", s->name, &s->last_drill);
		} else if (s->last_drill.result != DRILL_NONE) {
			time_t t = (time_t)(s->last_drill.started_unix_ns / 1000000000ull);
			struct tm tm;
			char when[32];

			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			fprintf(f, "  last drill %s: %s, time to blue %s\n", when,
				drill_result_name(s->last_drill.result),
				fmt_lat(s->last_drill.time_to_blue_ns, l1, sizeof(l1)));
		}
		if (s->have_window) {
			int c;

			for (c = 0; c < SHIFT_COLORS; c++) {
				const struct pool_summary *p = &s->pool[c];

				fprintf(f,
					"  %-5s window %llu req, %llu err (%.2f%%), p50 %s p99 %s\n",
					color_name(c), (unsigned long long)p->requests,
					(unsigned long long)p->errors, p->error_rate * 100.0,
					fmt_lat(p->p50_ns, l1, sizeof(l1)),
					fmt_lat(p->p99_ns, l2, sizeof(l2)));
			}
		}
		if (s->have_shadow)
			render_shadow_text(&s->shadow, f);
		render_backends_text(s, f);
	}
	fprintf(f, "\ndatapath:");
	for (k = 0; k < SHIFT_STAT_MAX; k++)
		if (st->stats[k])
			fprintf(f, " %s=%llu", dp_stat_name(k), (unsigned long long)st->stats[k]);
	fprintf(f, "\n");
}
