// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shiftd's etcd session (agent/fleet/fleet.c) fed etcd's answers by hand: the
 * order of what it is told (a watch event, a failed publish's read-back, a
 * range after an outage) and what it then does to the service. fleet.c is
 * included for its static functions; the agent's map writers are stubs that
 * count. No etcd: the requests it starts are inspected, never performed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <time.h>

#include "../../agent/fleet/fleet.c"
#include "fleet/b64.h"

/* The clocks (ops/clock.h): the real ones, shifted by a test that steps them. */
static __s64 mono_shift, unix_shift;

static __u64 clock_ns(clockid_t id, __s64 shift)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(id, &ts), 0);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec + (__u64)shift;
}

__u64 now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC, mono_shift);
}

__u64 now_unix_ns(void)
{
	return clock_ns(CLOCK_REALTIME, unix_shift);
}

static struct agent ag;
static struct shift_conf conf;
static struct conf_service web_conf;
static struct service_rt web;
static unsigned weight_writes, adopts, clears;

/* --- the agent's side, stubbed ---------------------------------------------------- */

struct service_rt *agent_service(struct agent *a, const char *name)
{
	for (int i = 0; i < SHIFT_MAX_SERVICES; i++)
		if (a->svc[i] && !strcmp(a->svc[i]->conf->name, name))
			return a->svc[i];
	return NULL;
}

struct weight_state agent_weight_state(const struct service_rt *s)
{
	return (struct weight_state){ .weight = s->weight, .latched = s->latched };
}

int apply_weight(struct agent *a, struct service_rt *s)
{
	(void)a, (void)s;
	weight_writes++;
	return 0;
}

static int over_err; /* the next apply_weight_over()'s result, once */
static bool outside_pending;

int apply_weight_over(struct agent *a, struct service_rt *s, const struct weight_state *was)
{
	int err = over_err;

	if (err) {
		over_err = 0;
		s->weight = was->weight; /* as the real one: back to was */
		return err;
	}
	return apply_weight(a, s);
}

bool agent_outside_pending(const struct service_rt *s)
{
	(void)s;
	return outside_pending;
}

int agent_restore_word(struct agent *a, struct service_rt *s, const struct weight_state *before)
{
	s->weight = before->weight;
	s->latched = before->latched;
	return apply_weight(a, s);
}

int rollback_adopt(struct agent *a, struct service_rt *s, const char *reason, const char *origin)
{
	(void)a;
	adopts++;
	s->latched = true;
	s->rollback_unix_ns = now_unix_ns();
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	snprintf(s->rollback_origin, sizeof(s->rollback_origin), "%s", origin);
	return 0;
}

void rollback_clear(struct agent *a, struct service_rt *s)
{
	(void)a;
	clears++;
	s->latched = false;
	s->fleet_publish = false;
}

/* --- helpers ------------------------------------------------------------------------ */

#define KEY "/shift/F/svc/web"

/* A session that is UP (as after "created"), on an endpoint nothing listens on. */
static struct fleet *session(void)
{
	struct fleet *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	memset(&ag, 0, sizeof(ag));
	memset(&conf, 0, sizeof(conf));
	memset(&web, 0, sizeof(web));
	weight_writes = adopts = clears = 0;
	conf_fleet_defaults(&conf.fleet, 1);
	conf.fleet.n_endpoints = 1;
	strcpy(conf.fleet.endpoints[0], "http://127.0.0.1:9");
	strcpy(conf.fleet.fleet, "F");
	strcpy(conf.fleet.node, "n1");
	ag.conf = &conf;
	strcpy(ag.node, "n1");
	strcpy(web_conf.name, "web");
	web.conf = &web_conf;
	web.weight = 1000;
	ag.svc[0] = &web;
	assert_int_equal(etcd_curl_global(), 0);
	f->a = &ag;
	f->conf = conf.fleet;
	f->epfd = f->tfd = f->rampfd = -1;
	f->m = curl_multi_init();
	assert_non_null(f->m);
	fleet_key_prefix("F", FLEET_KEY_SVC, f->key_svc, sizeof(f->key_svc));
	f->alive_val = fleet_alive_encode(f->node_id); /* as fleet_open() */
	assert_non_null(f->alive_val);
	f->st = S_UP;
	f->lease = 0; /* fleet_close() revokes nothing */
	return f;
}

static char *value(__u32 bp, bool latched, const char *reason)
{
	struct fleet_svc_value v = { .weight_bp = bp, .latched = latched, .unix_ns = 1 };

	snprintf(v.reason, sizeof(v.reason), "%s", reason);
	snprintf(v.origin, sizeof(v.origin), "%s", "n2");
	return fleet_svc_encode(&v);
}

/* One kv as etcd's gateway writes it (key and value base64, int64 as strings). */
static json_t *kv_json(const char *val, __s64 rev)
{
	char k[B64_ENC_LEN(64)], *v = malloc(B64_ENC_LEN(strlen(val)));
	char r[24];
	json_t *o;

	assert_non_null(v);
	b64_encode(KEY, strlen(KEY), k);
	b64_encode(val, strlen(val), v);
	snprintf(r, sizeof(r), "%lld", (long long)rev);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "key", k, "value", v, "mod_revision", r,
		      "create_revision", "2", "version", "1");
	free(v);
	return o;
}

/* A watch event: PUT of val at rev. */
static void watch_put(struct fleet *f, __u32 bp, bool latched, const char *reason, __s64 rev)
{
	char *val = value(bp, latched, reason);
	json_t *msg = json_pack("{s:{s:{s:s},s:[{s:o}]}}", "result", "header", "revision", "1",
				"events", "kv", kv_json(val, rev));

	free(val);
	watch_message(f, msg);
	json_decref(msg);
}

/* Request r (one the session started, or NULL: a new one of kind k) answered
 * with body, handed to on_done() as drain_done() does. */
static void answer(struct fleet *f, struct req *r, enum req_kind k, const char *body)
{
	if (!r) {
		r = calloc(1, sizeof(*r));
		assert_non_null(r);
		r->f = f;
		r->kind = k;
		r->h = curl_easy_init();
		snprintf(r->svc, sizeof(r->svc), "%s", "web");
		r->next = f->reqs;
		f->reqs = r;
	}
	free(r->buf);
	r->buf = strdup(body);
	r->len = strlen(body);
	curl_multi_remove_handle(f->m, r->h);
	on_done(f, r, CURLE_OK);
	for (struct req *q = f->reqs; q; q = q->next)
		if (q == r) {
			req_free(f, r);
			break;
		}
}

/* The answer to publish p: failed, the txn's read-back holds val at kv_rev. */
static void publish_failed(struct fleet *f, struct req *p, __u32 bp, bool latched,
			   const char *reason, __s64 kv_rev, __s64 header_rev)
{
	char *val = value(bp, latched, reason), *txt, h[24];
	json_t *resp;

	snprintf(h, sizeof(h), "%lld", (long long)header_rev);
	resp = json_pack("{s:{s:s},s:b,s:[{s:{s:[o]}}]}", "header", "revision", h, "succeeded", 0,
			 "responses", "response_range", "kvs", kv_json(val, kv_rev));
	txt = json_dumps(resp, JSON_COMPACT);
	answer(f, p, R_PUBLISH, txt);
	free(txt);
	free(val);
	json_decref(resp);
}

static struct req *find_req(struct fleet *f, enum req_kind k)
{
	for (struct req *r = f->reqs; r; r = r->next)
		if (r->kind == k)
			return r;
	return NULL;
}

/* The mod_revision a publish compares on, from its txn body. */
static long long pub_compare_rev(const struct req *r)
{
	json_error_t je;
	json_t *b = json_loads(r->body, 0, &je);
	long long rev;

	assert_non_null(b);
	rev = atoll(json_string_value(
		json_object_get(json_array_get(json_object_get(b, "compare"), 0), "mod_revision")));
	json_decref(b);
	return rev;
}

/* --- tests ------------------------------------------------------------------------- */

/* A failed publish's read-back older than what the watch gave meanwhile (it came
 * on another connection) must not put the older value back. */
static void test_readback_older_than_watch(void **state)
{
	struct fleet *f = session();
	struct shared_svc *sh;

	(void)state;
	watch_put(f, 5000, false, "", 10);
	assert_int_equal(web.weight, 5000);
	publish_failed(f, NULL, 1000, false, "", 9, 9);
	sh = shared_get(f, "web", false);
	assert_non_null(sh);
	assert_int_equal(web.weight, 5000);
	assert_int_equal(sh->v.weight_bp, 5000);
	assert_int_equal(sh->mod_rev, 10);
	/* The same revision again (a range after an outage repeats it): nothing done. */
	weight_writes = 0;
	watch_put(f, 5000, false, "", 10);
	assert_int_equal(weight_writes, 0);
	fleet_close(f);
}

/* Our rollback's publish compares on 20; 21 and 22 are written meanwhile and the
 * watch gives both before the publish's answer: failed, read-back 21. The
 * rollback is published again, comparing on 22 (on 21 it would fail again, and
 * the fleet's word stays 22's, not the read-back's). */
static void test_pending_publish_after_stale_readback(void **state)
{
	struct fleet *f = session();
	struct shared_svc *sh;
	struct req *p;

	(void)state;
	watch_put(f, 2000, false, "", 20);
	web.latched = true;
	web.weight = 0;
	web.fleet_publish = true;
	snprintf(web.reason, sizeof(web.reason), "consecutive_errors: 5");
	web.rollback_unix_ns = now_unix_ns();
	fleet_kick(f);
	sh = shared_get(f, "web", false);
	p = sh->pub;
	assert_non_null(p);
	assert_int_equal(pub_compare_rev(p), 20);
	watch_put(f, 3000, false, "", 21);
	watch_put(f, 4000, false, "", 22);
	assert_ptr_equal(sh->pub, p); /* one publish at a time */
	publish_failed(f, p, 3000, false, "", 21, 22);
	sh = shared_get(f, "web", false);
	assert_true(web.latched);
	assert_true(web.fleet_publish);
	assert_int_equal(sh->v.weight_bp, 4000);
	assert_int_equal(sh->mod_rev, 22);
	assert_non_null(sh->pub);
	assert_int_equal(pub_compare_rev(sh->pub), 22);
	fleet_close(f);
}

/* A delete, then an older value read back: the key stays gone. A newer one counts. */
static void test_delete_then_older(void **state)
{
	struct fleet *f = session();
	struct shared_svc *sh;
	json_t *msg;
	char k[B64_ENC_LEN(64)];

	(void)state;
	watch_put(f, 4000, false, "", 30);
	b64_encode(KEY, strlen(KEY), k);
	msg = json_pack("{s:{s:[{s:s,s:{s:s,s:s}}]}}", "result", "events", "type", "DELETE", "kv",
			"key", k, "mod_revision", "31");
	watch_message(f, msg);
	json_decref(msg);
	sh = shared_get(f, "web", false);
	assert_false(sh->known);
	assert_int_equal(sh->mod_rev, 0);
	publish_failed(f, NULL, 4000, false, "", 30, 31);
	sh = shared_get(f, "web", false);
	assert_false(sh->known);
	assert_int_equal(sh->mod_rev, 0);
	watch_put(f, 6000, false, "", 32);
	assert_true(sh->known);
	assert_int_equal(web.weight, 6000);
	fleet_close(f);
}

/* Back after an outage: the lease granted, the session re-reads the fleet (a range)
 * rather than resume the watch, whose "created" etcd sends before the replay. */
static void test_rejoin_reads_before_watching(void **state)
{
	struct fleet *f = session();

	(void)state;
	watch_put(f, 1000, false, "", 40);
	session_fail(f, "test: cut");
	f->retry_mono = 0;
	fleet_tick(f); /* DOWN -> JOINING: the lease grant */
	assert_int_equal(f->st, S_JOINING);
	answer(f, find_req(f, R_GRANT), R_GRANT,
	       "{\"header\":{\"revision\":\"44\"},\"ID\":\"7\",\"TTL\":\"3\"}");
	assert_non_null(find_req(f, R_RANGE));
	assert_null(find_req(f, R_WATCH));
	fleet_close(f);
}

/* The range after an outage: the fleet's current values at once (a rollback made
 * while away), a key deleted while away is gone, and the watch starts after it. */
static void test_rejoin_range(void **state)
{
	struct fleet *f = session();
	struct shared_svc *sh;
	char *val = value(0, true, "latency_p99: n2"), *txt;
	json_t *resp;

	(void)state;
	watch_put(f, 5000, false, "", 50);
	sh = shared_get(f, "gone", true); /* a key of a service not configured here */
	sh->known = true;
	sh->mod_rev = 49;
	f->st = S_JOINING;
	resp = json_pack("{s:{s:s},s:[o]}", "header", "revision", "55", "kvs", kv_json(val, 53));
	txt = json_dumps(resp, JSON_COMPACT);
	answer(f, NULL, R_RANGE, txt);
	assert_true(web.latched);
	assert_int_equal(adopts, 1);
	sh = shared_get(f, "gone", false);
	assert_false(sh->known);
	assert_int_equal(sh->mod_rev, 0);
	assert_int_equal(f->watch_rev, 55);
	assert_non_null(find_req(f, R_WATCH));
	assert_non_null(strstr(find_req(f, R_WATCH)->body, "\"start_revision\":\"56\""));
	free(txt);
	free(val);
	json_decref(resp);
	fleet_close(f);
}

/* A restored or replaced etcd starts its revisions again: its values still count. */
static void test_range_from_new_cluster(void **state)
{
	struct fleet *f = session();
	char *val = value(7000, false, ""), *txt;
	json_t *resp;

	(void)state;
	watch_put(f, 5000, false, "", 900);
	f->st = S_JOINING;
	resp = json_pack("{s:{s:s},s:[o]}", "header", "revision", "6", "kvs", kv_json(val, 5));
	txt = json_dumps(resp, JSON_COMPACT);
	answer(f, NULL, R_RANGE, txt);
	assert_int_equal(web.weight, 7000);
	free(txt);
	free(val);
	json_decref(resp);
	fleet_close(f);
}

/* A rollback whose reason is not valid UTF-8 is published all the same. */
static void test_publish_reason_not_utf8(void **state)
{
	struct fleet *f = session();
	struct shared_svc *sh;
	struct fleet_svc_value v;
	json_error_t je;
	json_t *b;
	char *val, why[256];
	size_t n;

	(void)state;
	watch_put(f, 2000, false, "", 60);
	web.latched = true;
	web.weight = 0;
	web.fleet_publish = true;
	snprintf(web.reason, sizeof(web.reason),
		 "manual: d\xe9"
		 "faillance");
	web.rollback_unix_ns = now_unix_ns();
	fleet_kick(f);
	sh = shared_get(f, "web", false);
	assert_non_null(sh->pub);
	b = json_loads(sh->pub->body, 0, &je);
	assert_non_null(b);
	val = malloc(strlen(sh->pub->body));
	assert_non_null(val);
	n = (size_t)b64_decode(
		json_string_value(json_object_get(
			json_object_get(json_array_get(json_object_get(b, "success"), 0),
					"request_put"),
			"value")),
		val, strlen(sh->pub->body));
	assert_int_equal(fleet_svc_decode(val, n, &v, why, sizeof(why)), 0);
	assert_true(v.latched);
	assert_string_equal(v.reason, "manual: d?faillance");
	free(val);
	json_decref(b);
	fleet_close(f);
}

/*
 * A ramp's raising step by the clock waits for a word from etcd newer than
 * FLEET_FRESH_NS: a node cut off silently (its keepalive not yet timed out)
 * raised green by a step the fleet may have rolled back meanwhile. The step
 * asks for a keepalive, and takes place on its answer; a lowering one does
 * not wait.
 */
static void test_ramp_step_waits_for_etcd(void **state)
{
	struct fleet_svc_value v = { .weight_bp = 1000, .unix_ns = 1, .has_ramp = true };
	struct fleet *f = session();
	struct shared_svc *sh;
	json_t *msg;
	char *val;

	(void)state;
	strcpy(v.origin, "operator");
	v.ramp.n = 2;
	v.ramp.steps[0] = 1000;
	v.ramp.steps[1] = 5000;
	v.ramp.hold_ns = 3600ull * 1000000000ull;
	v.ramp.start_unix_ns = now_unix_ns();
	val = fleet_svc_encode(&v);
	msg = json_pack("{s:{s:{s:s},s:[{s:o}]}}", "result", "header", "revision", "1", "events",
			"kv", kv_json(val, 30));
	watch_message(f, msg);
	json_decref(msg);
	free(val);
	assert_int_equal(web.weight, 1000);
	/* An hour later by the plan, and etcd last heard from 2 s ago. */
	sh = shared_get(f, "web", false);
	assert_non_null(sh);
	sh->v.ramp.start_unix_ns -= v.ramp.hold_ns;
	f->heard_mono = now_mono_ns() - 2000000000ull;
	f->lease = 7;
	ramp_steps(f);
	assert_int_equal(web.weight, 1000);
	assert_non_null(f->keepalive);
	/* etcd answers: the step is taken. */
	answer(f, f->keepalive, R_KEEPALIVE, "{\"result\":{\"TTL\":\"5\"}}");
	assert_int_equal(web.weight, 5000);
	f->lease = 0;
	fleet_close(f);
}

/* etcd answered just now: a ramp's raising step need not wait for it. */
static void ramp_steps_fresh(struct fleet *f)
{
	f->heard_mono = now_mono_ns();
	ramp_steps(f);
}

/*
 * The wall clock is stepped mid-ramp (hold 10 s). Forward 35 s: the plan says
 * four steps on; the node takes none until a hold of its own time is over,
 * then one (green 10 % -> 20 %, not 10 % -> 40 %). Back 60 s: the plan says the
 * first step again; the node keeps the one it holds (no green -> blue -> green
 * for clients). A node restarting meets the plan afresh: its step by the clock.
 */
static void test_ramp_clock_steps(void **state)
{
	struct fleet_svc_value v = { .weight_bp = 1000, .unix_ns = 1, .has_ramp = true };
	struct fleet *f = session();
	const __u64 s = 1000000000ull;
	json_t *msg;
	char *val;

	(void)state;
	strcpy(v.origin, "operator");
	v.ramp.n = 5;
	for (__u32 i = 0; i < 5; i++)
		v.ramp.steps[i] = 1000 * (i + 1);
	v.ramp.hold_ns = 10 * s;
	v.ramp.start_unix_ns = now_unix_ns();
	val = fleet_svc_encode(&v);
	msg = json_pack("{s:{s:{s:s},s:[{s:o}]}}", "result", "header", "revision", "1", "events",
			"kv", kv_json(val, 30));
	watch_message(f, msg);
	json_decref(msg);
	assert_int_equal(web.weight, 1000);

	unix_shift += 35 * s;
	ramp_steps_fresh(f);
	assert_int_equal(web.weight, 1000);
	mono_shift += 10 * s;
	unix_shift += 10 * s;
	ramp_steps_fresh(f);
	assert_int_equal(web.weight, 2000);
	ramp_steps_fresh(f);
	assert_int_equal(web.weight, 2000);

	unix_shift -= 60 * s;
	ramp_steps_fresh(f);
	assert_int_equal(web.weight, 2000);
	mono_shift += 10 * s;
	ramp_steps_fresh(f);
	assert_int_equal(web.weight, 2000);

	/* A restart, the clock right again 25 s into the plan: its third step. */
	fleet_close(f);
	mono_shift = 0;
	unix_shift = 25 * s;
	f = session();
	web.weight = 2000;
	msg = json_pack("{s:{s:{s:s},s:[{s:o}]}}", "result", "header", "revision", "1", "events",
			"kv", kv_json(val, 30));
	watch_message(f, msg);
	json_decref(msg);
	free(val);
	assert_int_equal(web.weight, 3000);
	unix_shift = 0;
	fleet_close(f);
}

/*
 * A fleet weight met an outside write (shiftctl's, its sync to come): not
 * applied. If that sync never comes (shiftctl killed in between), the fleet's
 * word is applied once the wait for it is over, not left until the key's next
 * change.
 */
static void test_fleet_weight_retried_after_outside_write(void **state)
{
	struct fleet *f = session();

	(void)state;
	over_err = -EAGAIN;
	outside_pending = true;
	watch_put(f, 4000, false, "", 40);
	assert_int_equal(web.weight, 1000);
	/* The sync is still expected: nothing yet. */
	fleet_kick(f);
	assert_int_equal(web.weight, 1000);
	/* No sync came: the fleet's weight. */
	outside_pending = false;
	fleet_kick(f);
	assert_int_equal(web.weight, 4000);
	fleet_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readback_older_than_watch),
		cmocka_unit_test(test_pending_publish_after_stale_readback),
		cmocka_unit_test(test_delete_then_older),
		cmocka_unit_test(test_rejoin_reads_before_watching),
		cmocka_unit_test(test_rejoin_range),
		cmocka_unit_test(test_range_from_new_cluster),
		cmocka_unit_test(test_publish_reason_not_utf8),
		cmocka_unit_test(test_ramp_step_waits_for_etcd),
		cmocka_unit_test(test_ramp_clock_steps),
		cmocka_unit_test(test_fleet_weight_retried_after_outside_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
