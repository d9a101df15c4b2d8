// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A status off the loop (control/status_snap.c, status_worker.c) says byte
 * for byte what the whole status on the loop says (status_agent_render())
 * for the same state: every form, every service or one, an unknown one. The
 * snapshot is the loop's state when it was taken, the maps are read when it
 * is rendered; a cancel ends a render early; the worker shares a job not yet
 * started between requests of the same status, answers them all, and frees
 * everything at a stop (ASan). On real BPF maps (skipped where they cannot be
 * made).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include <shift/maps.h>
#include <shift/sample.h>
#include <shift/shadow.h>

#include "agent.h"
#include "control/status.h"
#include "control/status_snap.h"
#include "control/status_worker.h"
#include "ops/log.h"
#include "shadow/shadow.h"

#define SEC 1000000000ull
#define MS 1000000ull

/* Agent services: id, name, blue and green backends, their first slot. */
static const struct {
	__u32 id;
	const char *name;
	__u32 blue, green, first;
} svcs[] = {
	{ 0, "web", 3, 2, 10 },
	{ 2, "api", 4, 4, 40 },
	{ 5, "db", 1, 0, 90 },
};
#define NSVC (sizeof(svcs) / sizeof(svcs[0]))
/* A service the maps hold that this agent does not run (a leftover). */
#define ORPHAN_ID 7

struct fix {
	struct agent *a;
	struct shift_conf *conf;
	struct conf_service cs[NSVC];
	struct service_rt *s[NSVC];
};

static int mk(enum bpf_map_type t, const char *name, size_t v, __u32 n)
{
	return bpf_map_create(t, name, sizeof(__u32), v, n, NULL);
}

static void put_svc(struct fix *f, __u32 id, const char *name, __u32 word)
{
	struct shift_svc_info info = { 0 };

	info.vip[0] = htonl(0x0a000000u | (10 + id));
	info.vport = htons(80);
	info.proto = IPPROTO_TCP;
	info.family = SHIFT_AF_INET;
	info.flags = SHIFT_SVC_F_IN_USE;
	snprintf(info.name, sizeof(info.name), "%s", name);
	assert_int_equal(bpf_map_update_elem(f->a->maps.fd[SHIFT_MAP_SVC_INFO], &id, &info, 0), 0);
	assert_int_equal(bpf_map_update_elem(f->a->maps.fd[SHIFT_MAP_WEIGHTS], &id, &word, 0), 0);
}

/* Per-CPU values: CPU c holds base * (c + 1) in every word. */
static void put_percpu(int fd, __u32 key, size_t words, __u64 base)
{
	int ncpu = libbpf_num_possible_cpus(), c;
	__u64 *v = calloc((size_t)ncpu * words, sizeof(*v));
	size_t i;

	assert_non_null(v);
	for (c = 0; c < ncpu; c++)
		for (i = 0; i < words; i++)
			v[(size_t)c * words + i] = base * (__u64)(c + 1) + i;
	assert_int_equal(bpf_map_update_elem(fd, &key, v, 0), 0);
	free(v);
}

static void add_backend(struct fix *f, struct service_rt *s, __u32 sid, int color, __u32 id,
			bool healthy, bool active)
{
	struct backend_rt *b = &s->pool[color][s->n[color]++];
	struct shift_backend e = { 0 };

	b->id = id;
	b->healthy = healthy;
	b->addr.family = SHIFT_AF_INET;
	b->addr.port = htons((uint16_t)(8080 + color));
	b->addr.proto = IPPROTO_TCP;
	b->addr.addr[0] = htonl(0x0a010000u | id);
	memcpy(e.addr, b->addr.addr, sizeof(e.addr));
	e.port = b->addr.port;
	e.family = SHIFT_AF_INET;
	e.flags = active ? SHIFT_BE_F_ACTIVE | (id % 2 ? SHIFT_BE_F_NH_VALID : 0) : 0;
	e.service_id = (__u16)sid;
	e.color = (__u8)color;
	assert_int_equal(bpf_map_update_elem(f->a->maps.fd[SHIFT_MAP_BACKENDS], &id, &e, 0), 0);
	put_percpu(f->a->maps.fd[SHIFT_MAP_BE_STATS], id,
		   sizeof(struct shift_backend_stats) / sizeof(__u64), 100 * id);
	/* Latency: response histograms for odd ids, connect ones for even ids. */
	put_percpu(f->a->maps.fd[SHIFT_MAP_LAT_HIST],
		   id * SHIFT_LAT_KINDS + (id % 2 ? SHIFT_LAT_RESPONSE : SHIFT_LAT_CONNECT),
		   sizeof(struct shift_lat_hist) / sizeof(__u64), id);
}

static void feed(struct service_rt *s, int color, int n, bool error, __u64 lat)
{
	struct shift_sample x = { 0 };
	char detail[160];
	int i;

	for (i = 0; i < n; i++) {
		x.ts_ns = now_mono_ns();
		x.value_ns = lat * (__u64)(i + 1);
		x.backend_id = s->pool[color][0].id;
		x.service_id = (__u16)s->id;
		x.color = (__u8)color;
		x.kind = SHIFT_SAMPLE_RESPONSE;
		x.status = error ? 503 : 200;
		x.err = error ? SHIFT_ERR_HTTP5XX : 0;
		analysis_feed(&s->an, &s->limits, &x, detail, sizeof(detail));
	}
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	int fds[SHIFT_MAP__COUNT], i;
	__u32 k, j;

	assert_non_null(f);
	shift_log_init("test_status", SHIFT_LOG_ERROR - 1);
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		fds[i] = -1;
	fds[SHIFT_MAP_SVC_INFO] = mk(BPF_MAP_TYPE_ARRAY, "t_svc_info",
				     sizeof(struct shift_svc_info), SHIFT_MAX_SERVICES);
	fds[SHIFT_MAP_WEIGHTS] =
		mk(BPF_MAP_TYPE_ARRAY, "t_weights", sizeof(__u32), SHIFT_MAX_SERVICES);
	fds[SHIFT_MAP_BACKENDS] = mk(BPF_MAP_TYPE_ARRAY, "t_backends", sizeof(struct shift_backend),
				     SHIFT_MAX_BACKENDS);
	fds[SHIFT_MAP_BE_STATS] = mk(BPF_MAP_TYPE_PERCPU_ARRAY, "t_be_stats",
				     sizeof(struct shift_backend_stats), SHIFT_MAX_BACKENDS);
	fds[SHIFT_MAP_STATS] =
		mk(BPF_MAP_TYPE_PERCPU_ARRAY, "t_stats", sizeof(__u64), SHIFT_STAT_MAX);
	fds[SHIFT_MAP_LAT_HIST] = mk(BPF_MAP_TYPE_PERCPU_ARRAY, "t_lat_hist",
				     sizeof(struct shift_lat_hist),
				     SHIFT_MAX_BACKENDS * SHIFT_LAT_KINDS);
	fds[SHIFT_MAP_SHADOW_STATS] = mk(BPF_MAP_TYPE_PERCPU_ARRAY, "t_shadow_st", sizeof(__u64),
					 SHIFT_MAX_SERVICES * SHIFT_SHADOW_STAT_MAX);
	for (i = 0; i < SHIFT_MAP__COUNT; i++) {
		if (fds[i] >= 0 ||
		    !(i == SHIFT_MAP_SVC_INFO || i == SHIFT_MAP_WEIGHTS ||
		      i == SHIFT_MAP_BACKENDS || i == SHIFT_MAP_BE_STATS || i == SHIFT_MAP_STATS ||
		      i == SHIFT_MAP_LAT_HIST || i == SHIFT_MAP_SHADOW_STATS))
			continue;
		print_message("BPF maps: %s: skipping\n", strerror(-fds[i]));
		for (j = 0; j < SHIFT_MAP__COUNT; j++)
			if (fds[j] >= 0)
				close(fds[j]);
		free(f);
		*state = NULL;
		return 0;
	}
	f->a = calloc(1, sizeof(*f->a));
	f->conf = calloc(1, sizeof(*f->conf));
	assert_non_null(f->a);
	assert_non_null(f->conf);
	memcpy(f->a->maps.fd, fds, sizeof(fds));
	f->a->maps.weight_cas_fd = -1;
	f->a->conf = f->conf;

	for (k = 0; k < SHIFT_STAT_MAX; k++)
		put_percpu(fds[SHIFT_MAP_STATS], k, 1, k % 3 ? 7 * k : 0);
	for (k = 0; k < SHIFT_SHADOW_STAT_MAX; k++)
		put_percpu(fds[SHIFT_MAP_SHADOW_STATS], 2 * SHIFT_SHADOW_STAT_MAX + k, 1, k + 1);
	put_svc(f, ORPHAN_ID, "orphan", 300);
	for (k = 0; k < NSVC; k++) {
		struct conf_service *cs = &f->cs[k];
		struct service_rt *s = calloc(1, sizeof(*s));

		assert_non_null(s);
		snprintf(cs->name, sizeof(cs->name), "%s", svcs[k].name);
		cs->window_ns = 10 * SEC;
		cs->shadow = k == 1;
		cs->shadow_sample_bp = 1000;
		cs->max_shadow_mismatch = 0.01;
		s->id = svcs[k].id;
		s->conf = cs;
		trigger_limits_disabled(&s->limits, 10 * SEC);
		assert_int_equal(analysis_init(&s->an, &s->limits), 0);
		put_svc(f, s->id, cs->name,
			k == 0 ? 2500 :
			k == 1 ? (SHIFT_WEIGHT_LATCHED | 700) :
				 10000);
		for (j = 0; j < svcs[k].blue; j++)
			add_backend(f, s, s->id, SHIFT_BLUE, svcs[k].first + j, j != 1, true);
		for (j = 0; j < svcs[k].green; j++)
			/* One green slot of api's is not active in the map: not shown. */
			add_backend(f, s, s->id, SHIFT_GREEN, svcs[k].first + 20 + j, j % 2,
				    !(k == 1 && j == 2));
		f->s[k] = s;
		f->a->svc[s->id] = s;
	}
	/* What the agent owns, every field status shows set. */
	f->s[0]->weight = 2500;
	f->s[0]->ramp.active = true;
	f->s[0]->ramp.n = 3;
	f->s[0]->ramp.steps[0] = 1000;
	f->s[0]->ramp.steps[1] = 2500;
	f->s[0]->ramp.steps[2] = 10000;
	f->s[0]->ramp.index = 1;
	f->s[0]->ramp.hold_ns = 30 * SEC;
	f->s[0]->ramp.step_due_mono_ns = now_mono_ns() + 12 * SEC;
	f->s[0]->rollbacks[TRIGGER_ERROR_RATE] = 2;
	f->s[0]->drill.last.result = DRILL_RESTORED;
	f->s[0]->drill.last.id = 4;
	f->s[0]->drill.last.started_unix_ns = 1700000000ull * SEC;
	f->s[0]->drill.last.ended_unix_ns = 1700000030ull * SEC;
	f->s[0]->drill.last.time_to_blue_ns = 3 * MS;
	f->s[1]->latched = true;
	snprintf(f->s[1]->reason, sizeof(f->s[1]->reason), "green error rate 12.5%% (5/40)");
	f->s[1]->rollback_unix_ns = 1700000100ull * SEC + 5;
	f->s[1]->reaction_ns = 41234;
	snprintf(f->s[1]->rollback_origin, sizeof(f->s[1]->rollback_origin), "edge-b");
	f->s[1]->fleet_lag_us = 3456;
	f->s[1]->rollbacks[TRIGGER_ERROR_RATE] = 1;
	f->s[1]->rollbacks[TRIGGER_HEALTH] = 3;
	f->s[2]->drill.holding = true;
	f->s[2]->drill.cur.id = 9;
	f->s[2]->drill.ends_unix_ns = 1700000200ull * SEC;
	feed(f->s[0], SHIFT_BLUE, 40, false, 2 * MS);
	feed(f->s[0], SHIFT_GREEN, 10, true, 5 * MS);
	feed(f->s[1], SHIFT_GREEN, 7, false, 9 * MS);
	assert_int_equal(shadow_apply(f->a), 0);
	/* Interfaces and the fleet. */
	f->a->n_ifaces = 2;
	snprintf(f->a->ifaces[0].name, CONF_IFNAMSIZ, "eth0");
	f->a->ifaces[0].role = XDP_ROLE_CLIENT;
	f->a->ifaces[0].attached = true;
	f->a->ifaces[0].hook = DP_HOOK_XDP;
	f->a->ifaces[0].mode = "native";
	f->a->ifaces[0].prog_id = 77;
	snprintf(f->a->ifaces[1].name, CONF_IFNAMSIZ, "veth1");
	f->a->ifaces[1].role = XDP_ROLE_BACKEND;
	f->a->fleet.enabled = true;
	f->a->fleet.connected = true;
	f->a->fleet.revision = 42;
	snprintf(f->a->node, sizeof(f->a->node), "edge-a");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	__u32 k;
	int i;

	if (!f)
		return 0;
	shadow_close(f->a);
	for (k = 0; k < NSVC; k++) {
		analysis_free(&f->s[k]->an);
		free(f->s[k]);
	}
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		if (f->a->maps.fd[i] >= 0)
			close(f->a->maps.fd[i]);
	free(f->a);
	free(f->conf);
	free(f);
	return 0;
}

static const enum status_form forms[] = {
	STATUS_TEXT, STATUS_JSON, STATUS_JSON_LINE, STATUS_BACKENDS_TEXT, STATUS_BACKENDS_JSON,
};
static const char *const onlys[] = { NULL, "web", "api", "db", "orphan", "nope" };

/* Render sn, or fail the test showing both answers when it differs from want. */
static void check_same(const char *want, size_t want_len, int want_err, const char *got,
		       size_t got_len, int got_err, int form, const char *only)
{
	if (want_err != got_err || want_len != got_len ||
	    (want_len && memcmp(want, got, want_len))) {
		print_message("form %d, only %s: on the loop (%d, %zu bytes):\n%.*s\n"
			      "split (%d, %zu bytes):\n%.*s\n",
			      form, only ? only : "(all)", want_err, want_len, (int)want_len,
			      want ? want : "", got_err, got_len, (int)got_len, got ? got : "");
		fail();
	}
}

/* Every form, for all services and each one (and an unknown one): the same bytes. */
static void test_split_is_whole(void **state)
{
	struct fix *f = *state;
	size_t i, k, wl, gl;
	char *w, *g;
	int we, ge;

	if (!f)
		skip();
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		for (k = 0; k < sizeof(onlys) / sizeof(onlys[0]); k++) {
			struct status_snap *sn;

			we = status_agent_render(f->a, onlys[k], forms[i], &w, &wl);
			sn = status_snap_take(f->a, onlys[k]);
			assert_non_null(sn);
			ge = status_snap_render(sn, forms[i], NULL, &g, &gl);
			check_same(w, wl, we, g, gl, ge, (int)forms[i], onlys[k]);
			/* A second render of the same snapshot says the same. */
			free(g);
			ge = status_snap_render(sn, forms[i], NULL, &g, &gl);
			check_same(w, wl, we, g, gl, ge, (int)forms[i], onlys[k]);
			status_snap_free(sn);
			if (!onlys[k] || strcmp(onlys[k], "nope"))
				assert_int_equal(we, 0);
			else
				assert_int_equal(we, -ENOENT);
			free(w);
			free(g);
		}
	}
	/* The state is shown: a few landmarks, so that "same" is not "both empty". */
	we = status_agent_render(f->a, NULL, STATUS_TEXT, &w, &wl);
	assert_int_equal(we, 0);
	assert_non_null(strstr(w, "agent: running; eth0 client (xdp native), veth1"));
	assert_non_null(strstr(w, "fleet: node edge-a, connected, revision 42"));
	assert_non_null(strstr(w, "service api  vip 10.0.0.12:80/tcp  green 0%  ROLLED BACK"));
	assert_non_null(strstr(w, "rolled back by edge-b"));
	assert_non_null(strstr(w, "ramp: step 2/3 (10%,25%,100%), hold 30s"));
	assert_non_null(strstr(w, "rollback DRILL 9 holding"));
	assert_non_null(strstr(w, "shadow on, sample 10%"));
	assert_non_null(strstr(w, "  10.1.0.11:8080"));
	assert_null(strstr(w, "10.1.0.62:8081")); /* api's inactive green slot */
	assert_non_null(strstr(w, "service orphan"));
	free(w);
}

/*
 * The snapshot is the loop's state when taken; the maps are read when it is
 * rendered: a weight written after the take shows, a rollback reason the
 * agent noted after it does not (the request came before it).
 */
static void test_snapshot_then_maps(void **state)
{
	struct fix *f = *state;
	struct status_snap *sn;
	__u32 id = 0, word = 4200;
	size_t len;
	char *g;

	if (!f)
		skip();
	sn = status_snap_take(f->a, "web");
	assert_non_null(sn);
	assert_string_equal(status_snap_only(sn), "web");
	snprintf(f->s[0]->reason, sizeof(f->s[0]->reason), "noted after the take");
	f->s[0]->rollback_unix_ns = 1700000300ull * SEC;
	f->s[0]->pool[SHIFT_BLUE][0].healthy = false;
	assert_int_equal(bpf_map_update_elem(f->a->maps.fd[SHIFT_MAP_WEIGHTS], &id, &word, 0), 0);
	assert_int_equal(status_snap_render(sn, STATUS_JSON, NULL, &g, &len), 0);
	assert_non_null(strstr(g, "\"green_weight_bp\":4200"));
	assert_null(strstr(g, "noted after the take"));
	assert_non_null(strstr(g, "\"backend\":\"10.1.0.10:8080\",\"id\":10,\"color\":\"blue\","
				  "\"healthy\":true"));
	free(g);
	status_snap_free(sn);
}

/* A cancel ends a render at its next backend: nothing rendered, nothing leaked. */
static void test_cancel(void **state)
{
	struct fix *f = *state;
	struct status_snap *sn;
	atomic_bool cancel;
	size_t len;
	char *g;

	if (!f)
		skip();
	atomic_init(&cancel, true);
	sn = status_snap_take(f->a, NULL);
	assert_non_null(sn);
	assert_int_equal(status_snap_render(sn, STATUS_JSON, &cancel, &g, &len), -ECANCELED);
	assert_null(g);
	assert_int_equal(len, 0);
	status_snap_free(sn);
}

/* The render half stops too: a model whose cancel is set renders nothing, in every form. */
static void test_cancel_render(void **state)
{
	struct fix *f = *state;
	struct st_model st;
	atomic_bool cancel;
	size_t i, len;
	char *g;

	if (!f)
		skip();
	atomic_init(&cancel, true);
	assert_int_equal(status_collect(&f->a->maps, NULL, &st, f->a), 0);
	status_add_agent(&st, f->a);
	st.cancel = &cancel;
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		assert_int_equal(status_render_form(&st, forms[i], &g, &len), -ECANCELED);
		assert_null(g);
	}
	st.cancel = NULL;
	assert_int_equal(status_render_form(&st, STATUS_TEXT, &g, &len), 0);
	free(g);
	status_free(&st);
}

/* Wait (bounded) until the worker's fd says a job is done. */
static void wait_done(struct status_worker *w)
{
	struct pollfd p = { .fd = status_worker_fd(w), .events = POLLIN };

	assert_true(p.fd >= 0);
	assert_int_equal(poll(&p, 1, 20000), 1);
}

/* 32 more services of 128 + 128 backends: a render of them all takes a while. */
#define BIG_FIRST_ID 10
#define BIG_N 32
static int setup_big(void **state)
{
	struct fix *f;
	__u32 k, j;

	setup(state);
	f = *state;
	if (!f)
		return 0;
	for (k = 0; k < BIG_N; k++) {
		struct service_rt *s = calloc(1, sizeof(*s));
		__u32 id = BIG_FIRST_ID + k, first = 1000 + k * 2 * SHIFT_MAX_POOL_BACKENDS;

		assert_non_null(s);
		s->id = id;
		s->conf = &f->cs[2];
		trigger_limits_disabled(&s->limits, 10 * SEC);
		assert_int_equal(analysis_init(&s->an, &s->limits), 0);
		put_svc(f, id, "big", 100);
		for (j = 0; j < SHIFT_MAX_POOL_BACKENDS; j++) {
			add_backend(f, s, id, SHIFT_BLUE, first + j, true, true);
			add_backend(f, s, id, SHIFT_GREEN, first + SHIFT_MAX_POOL_BACKENDS + j,
				    true, true);
		}
		f->a->svc[id] = s;
	}
	/* As a reload does: every service gets its shadow state. */
	assert_int_equal(shadow_apply(f->a), 0);
	return 0;
}

static int teardown_big(void **state)
{
	struct fix *f = *state;
	__u32 k;

	for (k = 0; f && k < BIG_N; k++) {
		analysis_free(&f->a->svc[BIG_FIRST_ID + k]->an);
		free(f->a->svc[BIG_FIRST_ID + k]);
	}
	return teardown(state);
}

/* Has the worker finished anything yet? */
static bool any_done(struct status_worker *w)
{
	bool done;

	pthread_mutex_lock(&w->lock);
	done = w->done != NULL;
	pthread_mutex_unlock(&w->lock);
	return done;
}

/*
 * The worker: while a big job runs, two requests of one status share one
 * queued job (one collection answers both), a third of another gets its own;
 * they are done in order, each answer the loop's bytes.
 */
static void test_worker(void **state)
{
	struct fix *f = *state;
	struct status_job *j1, *j2, *j3, *j4, *got[3];
	struct status_worker w;
	bool shared;
	size_t wl;
	char *want;
	int i, n = 0;

	if (!f)
		skip();
	assert_int_equal(status_worker_start(&w, "test-status"), 0);
	j1 = status_worker_submit(&w, status_snap_take(f->a, NULL), STATUS_JSON);
	j2 = status_worker_submit(&w, status_snap_take(f->a, "web"), STATUS_TEXT);
	j3 = status_worker_submit(&w, status_snap_take(f->a, "web"), STATUS_TEXT);
	j4 = status_worker_submit(&w, status_snap_take(f->a, "web"), STATUS_JSON);
	/* Unless the big job was done already (a descheduled test), j2 was queued. */
	shared = !any_done(&w);
	assert_non_null(j1);
	assert_non_null(j2);
	assert_non_null(j3);
	assert_non_null(j4);
	assert_ptr_not_equal(j4, j2);
	if (shared) {
		assert_ptr_equal(j3, j2);
		assert_int_equal(j2->refs, 3); /* two requests and the worker */
	} else {
		print_message("the first job was done before the others came: no sharing seen\n");
	}
	while (n < (j3 == j2 ? 3 : 4) && n < 3) {
		struct status_job *j = status_worker_collect(&w);

		if (!j) {
			wait_done(&w);
			continue;
		}
		got[n++] = j;
	}
	assert_ptr_equal(got[0], j1);
	assert_ptr_equal(got[1], j2);
	assert_ptr_equal(got[2], j3 == j2 ? j4 : j3);
	assert_int_equal(status_agent_render(f->a, NULL, STATUS_JSON, &want, &wl), 0);
	assert_int_equal(got[0]->err, 0);
	assert_int_equal(got[0]->len, wl);
	assert_memory_equal(got[0]->out, want, wl);
	free(want);
	assert_int_equal(status_agent_render(f->a, "web", STATUS_TEXT, &want, &wl), 0);
	assert_int_equal(got[1]->err, 0);
	assert_int_equal(got[1]->len, wl);
	assert_memory_equal(got[1]->out, want, wl);
	free(want);
	for (i = 0; i < n; i++)
		status_job_unref(&w, got[i]); /* the worker's */
	status_job_unref(&w, j1);
	status_job_unref(&w, j2);
	status_job_unref(&w, j3);
	/* Stopped with j4 perhaps not collected: the stop drops the worker's reference. */
	status_worker_stop(&w);
	status_job_unref(&w, j4);
}

/*
 * Stopped while a big job runs and another waits: the running one ends early
 * (cancelled), the waiting one is never started, and both are freed once
 * their holders let go (ASan).
 */
static void test_worker_stop(void **state)
{
	struct fix *f = *state;
	struct status_job *j1, *j2;
	struct status_worker w;
	bool early;
	__u64 t0;

	if (!f)
		skip();
	assert_int_equal(status_worker_start(&w, "test-status"), 0);
	j1 = status_worker_submit(&w, status_snap_take(f->a, NULL), STATUS_JSON);
	j2 = status_worker_submit(&w, status_snap_take(f->a, NULL), STATUS_TEXT);
	assert_non_null(j1);
	assert_non_null(j2);
	early = !any_done(&w);
	t0 = now_mono_ns();
	status_worker_stop(&w);
	print_message("stopped in %.1f ms\n", (double)(now_mono_ns() - t0) / 1e6);
	if (early) {
		assert_int_equal(j2->err, -ESHUTDOWN);
		assert_null(j2->out);
	}
	assert_true(j1->err == 0 || j1->err == -ECANCELED || j1->err == -ESHUTDOWN);
	status_job_unref(&w, j1);
	status_job_unref(&w, j2);
	/* Not started: a submit now is refused, its snapshot freed. */
	assert_null(status_worker_submit(&w, status_snap_take(f->a, NULL), STATUS_JSON));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_split_is_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_then_maps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_render, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker, setup_big, teardown_big),
		cmocka_unit_test_setup_teardown(test_worker_stop, setup_big, teardown_big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
