// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The fleet's pure parts: base64, the etcd gateway's request bodies and kv
 * parsing, the shared value's encoding and checks, the ramp step a plan gives
 * at a time, what a node does to match the fleet, and the [fleet] section.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"
#include "fleet/b64.h"
#include "fleet/etcd_curl.h"
#include "fleet/etcd_json.h"
#include "fleet/node_id.h"
#include "fleet/value.h"

static void test_b64(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		/* RFC 4648 section 10 */
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	char enc[64], dec[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		long n;

		b64_encode(v[i].in, strlen(v[i].in), enc);
		assert_string_equal(enc, v[i].out);
		n = b64_decode(v[i].out, dec, sizeof(dec));
		assert_int_equal(n, (long)strlen(v[i].in));
		assert_memory_equal(dec, v[i].in, (size_t)n);
	}
	/* Refused: bad length, bad character, padding in the middle, too small a buffer. */
	assert_int_equal(b64_decode("Zm9", dec, sizeof(dec)), -1);
	assert_int_equal(b64_decode("Zm9*", dec, sizeof(dec)), -1);
	assert_int_equal(b64_decode("Zg==Zm9v", dec, sizeof(dec)), -1);
	assert_int_equal(b64_decode("Zm9vYmFy", dec, 5), -1);
	/* Every byte value round-trips. */
	{
		unsigned char all[256], back[256];
		char e[B64_ENC_LEN(256)];

		for (i = 0; i < 256; i++)
			all[i] = (unsigned char)i;
		b64_encode(all, 256, e);
		assert_int_equal(b64_decode(e, back, sizeof(back)), 256);
		assert_memory_equal(all, back, 256);
	}
}

static void test_keys(void **state)
{
	char k[FLEET_KEY_LEN];

	(void)state;
	assert_int_equal(fleet_key("eu1", FLEET_KEY_SVC, "web", k, sizeof(k)), 0);
	assert_string_equal(k, "/shift/eu1/svc/web");
	assert_int_equal(fleet_key("eu1", FLEET_KEY_ALIVE, "n1", k, sizeof(k)), 0);
	assert_string_equal(k, "/shift/eu1/alive/n1");
	assert_int_equal(fleet_key_prefix("eu1", FLEET_KEY_NODES, k, sizeof(k)), 0);
	assert_string_equal(k, "/shift/eu1/nodes/");
	assert_string_equal(fleet_key_name("eu1", FLEET_KEY_SVC, "/shift/eu1/svc/web"), "web");
	assert_null(fleet_key_name("eu1", FLEET_KEY_SVC, "/shift/eu10/svc/web"));
	assert_null(fleet_key_name("eu1", FLEET_KEY_SVC, "/shift/eu1/nodes/web"));
	assert_null(fleet_key_name("eu1", FLEET_KEY_SVC, "/shift/eu1/svc/"));
	assert_null(fleet_key_name("eu1", FLEET_KEY_SVC, "/shift/eu1/svc/a/b"));
	assert_int_equal(fleet_key("eu1", FLEET_KEY_SVC, "web", k, 10), -ENAMETOOLONG);
}

static json_t *parse(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);

	if (!j)
		fail_msg("not JSON: %s: %s", je.text, s);
	return j;
}

static void test_requests(void **state)
{
	char *s;
	json_t *j;

	(void)state;
	/* A prefix range ends at the prefix with its last byte + 1: "/a/" -> "/a0". */
	s = etcd_req_range("/a/", true);
	j = parse(s);
	assert_string_equal(json_string_value(json_object_get(j, "key")), "L2Ev");
	assert_string_equal(json_string_value(json_object_get(j, "range_end")), "L2Ew");
	json_decref(j);
	free(s);

	s = etcd_req_txn_put("foo", 42, "bar", 0);
	j = parse(s);
	{
		json_t *c = json_array_get(json_object_get(j, "compare"), 0);
		json_t *p = json_object_get(json_array_get(json_object_get(j, "success"), 0),
					    "request_put");
		json_t *r = json_object_get(json_array_get(json_object_get(j, "failure"), 0),
					    "request_range");

		assert_string_equal(json_string_value(json_object_get(c, "target")), "MOD");
		assert_string_equal(json_string_value(json_object_get(c, "result")), "EQUAL");
		/* int64 as a string, as the gateway wants */
		assert_string_equal(json_string_value(json_object_get(c, "mod_revision")), "42");
		assert_string_equal(json_string_value(json_object_get(p, "key")), "Zm9v");
		assert_string_equal(json_string_value(json_object_get(p, "value")), "YmFy");
		assert_null(json_object_get(p, "lease"));
		assert_string_equal(json_string_value(json_object_get(r, "key")), "Zm9v");
	}
	json_decref(j);
	free(s);

	s = etcd_req_put("k", "v", 7587);
	j = parse(s);
	assert_string_equal(json_string_value(json_object_get(j, "lease")), "7587");
	json_decref(j);
	free(s);

	s = etcd_req_watch("/s/", 11);
	j = parse(s);
	{
		json_t *c = json_object_get(j, "create_request");

		assert_string_equal(json_string_value(json_object_get(c, "start_revision")), "11");
		assert_string_equal(json_string_value(json_object_get(c, "range_end")), "L3Mw");
	}
	json_decref(j);
	free(s);
}

static void test_responses(void **state)
{
	/* As etcd 3.4's gateway answers (trimmed): defaults left out, int64 as strings. */
	json_t *range = parse("{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"Zm9v\","
			      "\"create_revision\":\"2\",\"mod_revision\":\"8\",\"version\":\"3\","
			      "\"value\":\"YmFy\"}],\"count\":\"1\"}");
	json_t *failed =
		parse("{\"header\":{\"revision\":\"9\"},\"responses\":[{\"response_range\":"
		      "{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"Zm9v\","
		      "\"mod_revision\":\"8\",\"value\":\"\"}]}}]}");
	json_t *ok = parse("{\"header\":{\"revision\":\"10\"},\"succeeded\":true}");
	json_t *err = parse("{\"error\":\"etcdserver: mvcc: required revision has been "
			    "compacted\",\"code\":11,\"message\":\"x\"}");
	json_t *del = parse("{\"key\":\"Zm9v\",\"mod_revision\":\"12\"}");
	struct etcd_kv kv;

	(void)state;
	assert_int_equal(etcd_header_revision(range), 9);
	assert_int_equal(etcd_kv_parse(json_array_get(etcd_resp_kvs(range), 0), &kv), 0);
	assert_string_equal(kv.key, "foo");
	assert_string_equal(kv.value, "bar");
	assert_int_equal(kv.value_len, 3);
	assert_int_equal(kv.mod_revision, 8);
	assert_int_equal(kv.create_revision, 2);
	assert_int_equal(kv.lease, 0);
	etcd_kv_free(&kv);
	assert_false(etcd_txn_succeeded(failed));
	assert_int_equal(etcd_kv_parse(json_array_get(etcd_resp_kvs(failed), 0), &kv), 0);
	assert_string_equal(kv.value, "");
	etcd_kv_free(&kv);
	assert_true(etcd_txn_succeeded(ok));
	assert_null(etcd_resp_kvs(ok));
	assert_null(etcd_resp_error(ok));
	assert_non_null(strstr(etcd_resp_error(err), "compacted"));
	/* A DELETE event's kv has no value: an empty one. */
	assert_int_equal(etcd_kv_parse(del, &kv), 0);
	assert_int_equal(kv.value_len, 0);
	etcd_kv_free(&kv);
	{
		json_t *bad = parse("{\"key\":\"Zm9\",\"mod_revision\":\"1\"}");
		json_t *badrev = parse("{\"key\":\"Zm9v\",\"mod_revision\":\"1x\"}");

		assert_int_equal(etcd_kv_parse(bad, &kv), -EINVAL);
		assert_int_equal(etcd_kv_parse(badrev, &kv), -EINVAL);
		json_decref(bad);
		json_decref(badrev);
	}
	json_decref(range);
	json_decref(failed);
	json_decref(ok);
	json_decref(err);
	json_decref(del);
}

static void test_value_roundtrip(void **state)
{
	struct fleet_svc_value v = { .weight_bp = 100, .unix_ns = 1700000000123456789ull }, w;
	char why[256], *s;

	(void)state;
	strcpy(v.origin, "operator");
	v.has_ramp = true;
	v.ramp.n = 3;
	v.ramp.steps[0] = 100;
	v.ramp.steps[1] = 500;
	v.ramp.steps[2] = 10000;
	v.ramp.hold_ns = 30000000000ull;
	v.ramp.start_unix_ns = 1700000000000000000ull;
	s = fleet_svc_encode(&v);
	assert_non_null(s);
	assert_int_equal(fleet_svc_decode(s, strlen(s), &w, why, sizeof(why)), 0);
	assert_memory_equal(&v, &w, sizeof(v));
	free(s);

	memset(&v, 0, sizeof(v));
	v.latched = true;
	strcpy(v.reason, "error_rate: 9.1% > 5% \"quoted\"");
	strcpy(v.origin, "edge-2");
	v.unix_ns = 5;
	s = fleet_svc_encode(&v);
	assert_int_equal(fleet_svc_decode(s, strlen(s), &w, why, sizeof(why)), 0);
	assert_memory_equal(&v, &w, sizeof(v));
	free(s);
}

/* A reason that is not UTF-8 (cut mid-character, or from an older shiftctl):
 * JSON cannot carry it, yet the rollback must go out: '?' per bad byte. */
static void test_value_not_utf8(void **state)
{
	static const struct {
		const char *in, *out;
		bool valid;
	} v[] = {
		{ "manual: d\xc3\xa9"
		  "faillance",
		  "manual: d\xc3\xa9"
		  "faillance",
		  true },
		{ "\xe2\x82\xac \xf0\x9f\x94\xa5", "\xe2\x82\xac \xf0\x9f\x94\xa5", true },
		{ "manual: d\xe9"
		  "faillance",
		  "manual: d?faillance", false }, /* Latin-1 */
		{ "cut \xc3", "cut ?", false }, /* a character cut at the end */
		{ "cut \xe2\x82", "cut ??", false },
		{ "\xc0\xaf", "??", false }, /* overlong '/' */
		{ "\xed\xa0\x80", "???", false }, /* a surrogate */
		{ "\xf4\x90\x80\x80", "????", false }, /* past U+10FFFF */
		{ "\x80x\xff", "?x?", false },
	};
	struct fleet_svc_value sv = { .latched = true }, w;
	char why[256], *s;
	size_t i;

	(void)state;
	strcpy(sv.origin, "edge-1");
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(fleet_utf8_valid(v[i].in), v[i].valid);
		snprintf(sv.reason, sizeof(sv.reason), "%s", v[i].in);
		s = fleet_svc_encode(&sv);
		assert_non_null(s);
		assert_int_equal(fleet_svc_decode(s, strlen(s), &w, why, sizeof(why)), 0);
		assert_string_equal(w.reason, v[i].out);
		free(s);
	}
}

static void test_value_refused(void **state)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{ "not json", "not JSON" },
		{ "[1]", "not a JSON object" },
		{ "{\"weight_bp\":10001,\"latched\":false,\"reason\":\"\",\"origin\":\"o\","
		  "\"unix_ns\":1}",
		  "weight_bp: out of range" },
		{ "{\"weight_bp\":-1,\"latched\":false,\"reason\":\"\",\"origin\":\"o\","
		  "\"unix_ns\":1}",
		  "weight_bp: out of range" },
		{ "{\"weight_bp\":\"5\",\"latched\":false,\"reason\":\"\",\"origin\":\"o\","
		  "\"unix_ns\":1}",
		  "weight_bp: not an integer" },
		{ "{\"latched\":false,\"reason\":\"\",\"origin\":\"o\",\"unix_ns\":1}",
		  "weight_bp: missing" },
		{ "{\"weight_bp\":5,\"latched\":1,\"reason\":\"\",\"origin\":\"o\",\"unix_ns\":1}",
		  "latched: not true or false" },
		{ "{\"weight_bp\":5,\"latched\":true,\"reason\":\"\",\"origin\":\"o\","
		  "\"unix_ns\":1}",
		  "latched with weight_bp 5" },
		{ "{\"weight_bp\":5,\"weight_bp\":6,\"latched\":false,\"reason\":\"\","
		  "\"origin\":\"o\",\"unix_ns\":1}",
		  "not JSON" },
		{ "{\"weight_bp\":5,\"latched\":false,\"reason\":\"\",\"origin\":\"o\","
		  "\"unix_ns\":1,\"ramp\":{\"steps\":[5,5],\"hold_ns\":1000000000,"
		  "\"start_unix_ns\":1}}",
		  "does not go up" },
		{ "{\"weight_bp\":5,\"latched\":false,\"reason\":\"\",\"origin\":\"o\","
		  "\"unix_ns\":1,\"ramp\":{\"steps\":[],\"hold_ns\":1000000000,"
		  "\"start_unix_ns\":1}}",
		  "ramp.steps" },
		{ "{\"weight_bp\":5,\"latched\":false,\"reason\":\"\",\"origin\":\"o\","
		  "\"unix_ns\":1,\"ramp\":{\"steps\":[5],\"hold_ns\":0,\"start_unix_ns\":1}}",
		  "hold_ns" },
		{ "{\"weight_bp\":5,\"latched\":false,\"reason\":\"\",\"origin\":\"o\","
		  "\"unix_ns\":1,\"ramp\":7}",
		  "ramp: not an object" },
	};
	struct fleet_svc_value v;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (fleet_svc_decode(bad[i].json, strlen(bad[i].json), &v, why, sizeof(why)) !=
		    -EINVAL)
			fail_msg("accepted: %s", bad[i].json);
		if (!strstr(why, bad[i].why))
			fail_msg("%s: reason '%s', want '%s'", bad[i].json, why, bad[i].why);
	}
}

static void test_ramp_steps(void **state)
{
	struct fleet_ramp r = {
		.steps = { 100, 500, 1000, 2500 }, .n = 4, .hold_ns = 10, .start_unix_ns = 1000
	};
	static const struct {
		__u64 now;
		__u32 w, idx;
		bool done;
	} t[] = {
		{ 0, 100, 0, false }, /* a clock behind the writer's: the first step */
		{ 1000, 100, 0, false },  { 1009, 100, 0, false },  { 1010, 500, 1, false },
		{ 1035, 2500, 3, false }, { 1039, 2500, 3, false }, { 1040, 2500, 3, true },
		{ 99999, 2500, 3, true }, /* a node restarting long after: the last step */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		__u32 idx;
		bool done;
		__u32 w = fleet_ramp_weight(&r, t[i].now, &idx, &done);

		if (w != t[i].w || idx != t[i].idx || done != t[i].done)
			fail_msg("now %llu: weight %u step %u done %d, want %u %u %d",
				 (unsigned long long)t[i].now, w, idx, done, t[i].w, t[i].idx,
				 t[i].done);
	}
}

/*
 * A node's way through a plan: the plan's step when it meets the plan, then
 * never below the step it holds and one step per hold of its own monotonic
 * clock at most, whatever the wall clock does; after a (re)join the plan's
 * step at once, upwards only.
 */
static void test_ramp_paced(void **state)
{
	struct fleet_ramp r = { .steps = { 1000, 2000, 3000, 4000, 5000 },
				.n = 5,
				.hold_ns = 10,
				.start_unix_ns = 1000 };
	struct fleet_ramp other = r;
	struct fleet_ramp_pace p = { 0 };
	__u32 idx;
	bool done;

	(void)state;
	other.start_unix_ns = 2000;
	/* Met afresh (a start, a restart mid-ramp): the plan's step. */
	assert_int_equal(fleet_ramp_paced(&r, &p, 1015, 500, &idx, &done), 2000);
	assert_int_equal(idx, 1);
	fleet_ramp_pace_set(&p, &r, 1, 1015, 500);
	/* 5 of its 10 held already, by the plan: the next at the plan's boundary. */
	assert_true(p.step_mono_ns == 495);
	assert_true(fleet_ramp_pace_wait(&r, &p, 1015, 500) == 5);

	/* The wall clock jumps 35 forward: the plan says step 5, the node holds
	 * until a hold of its own time has passed, then takes one step. */
	assert_int_equal(fleet_ramp_paced(&r, &p, 1050, 500, &idx, &done), 2000);
	assert_false(done);
	assert_true(fleet_ramp_pace_wait(&r, &p, 1050, 500) == 5);
	assert_int_equal(fleet_ramp_paced(&r, &p, 1050, 505, &idx, &done), 3000);
	assert_int_equal(idx, 2);
	/* Due and not applied yet (it waits for etcd): no timer. */
	assert_true(fleet_ramp_pace_wait(&r, &p, 1050, 505) == 0);
	fleet_ramp_pace_set(&p, &r, 2, 1050, 505);
	assert_true(p.step_mono_ns == 505);
	assert_true(fleet_ramp_pace_wait(&r, &p, 1050, 506) == 9);
	assert_int_equal(fleet_ramp_paced(&r, &p, 1050, 514, &idx, &done), 3000);
	assert_int_equal(fleet_ramp_paced(&r, &p, 1050, 515, &idx, &done), 4000);

	/* Then back before the plan's start: the step held stays. */
	assert_int_equal(fleet_ramp_paced(&r, &p, 900, 515, &idx, &done), 3000);
	assert_int_equal(idx, 2);
	fleet_ramp_pace_set(&p, &r, 0, 900, 515);
	assert_int_equal(p.index, 2);
	assert_int_equal(fleet_ramp_paced(&r, &p, 900, 600, &idx, &done), 3000);

	/* Back from an outage: the plan's step at once when higher... */
	p.catch_up = true;
	assert_int_equal(fleet_ramp_paced(&r, &p, 1045, 516, &idx, &done), 5000);
	assert_false(done);
	fleet_ramp_pace_set(&p, &r, 4, 1045, 516);
	assert_false(p.catch_up);
	assert_true(p.step_mono_ns == 511);
	assert_int_equal(fleet_ramp_paced(&r, &p, 1060, 520, &idx, &done), 5000);
	assert_false(done);
	assert_int_equal(fleet_ramp_paced(&r, &p, 1060, 521, &idx, &done), 5000);
	assert_true(done);
	assert_true(fleet_ramp_pace_wait(&r, &p, 1060, 521) == UINT64_MAX);
	/* ...never lower. */
	p.catch_up = true;
	assert_int_equal(fleet_ramp_paced(&r, &p, 1005, 530, &idx, &done), 5000);

	/* Another plan is met afresh. */
	assert_int_equal(fleet_ramp_paced(&other, &p, 2012, 530, &idx, &done), 2000);
	/* No pace: the plan's step by the clock, as fleet_ramp_weight(). */
	assert_int_equal(fleet_ramp_paced(&r, NULL, 1035, 0, &idx, &done), 4000);
}

static void test_decide(void **state)
{
	struct fleet_svc_value open = { .weight_bp = 3000, .unix_ns = 100 };
	struct fleet_svc_value latched = { .latched = true, .unix_ns = 100 };
	struct fleet_svc_value ramp = {
		.weight_bp = 100,
		.unix_ns = 100,
		.has_ramp = true,
		.ramp = { .steps = { 100, 200 }, .n = 2, .hold_ns = 50, .start_unix_ns = 100 }
	};
	static struct fleet_ramp_pace pace = { .known = true, .index = 0, .step_mono_ns = 1000 };
	const struct {
		int shared; /* 0 open, 1 latched, 2 ramp */
		struct fleet_local l;
		__u64 now;
		enum fleet_action want;
		__u32 w;
	} t[] = {
		{ 0, { .weight = 3000 }, 200, FLEET_NONE, 3000 },
		{ 0, { .weight = 1000 }, 200, FLEET_SET_WEIGHT, 3000 },
		{ 1, { .weight = 1000 }, 200, FLEET_ROLLBACK, 0 },
		{ 1, { .latched = true }, 200, FLEET_NONE, 0 },
		/* Cleared fleet-wide after our latch: follow the clear. */
		{ 0, { .latched = true, .rollback_unix_ns = 50 }, 200, FLEET_CLEAR, 3000 },
		/* Our latch is newer than the fleet's word (taken while shiftd or etcd was
		 * away): publish it, never clear it. */
		{ 0, { .latched = true, .rollback_unix_ns = 150 }, 200, FLEET_PUBLISH, 3000 },
		/* A latch the fleet carried, now gone: a clear, even if this node's clock
		 * says its rollback is newer than the clear (clocks drift). */
		{ 0,
		  { .latched = true, .acked = true, .rollback_unix_ns = 150 },
		  200,
		  FLEET_CLEAR,
		  3000 },
		/* A local-only latch (a drill) is neither published nor cleared... */
		{ 0,
		  { .latched = true, .local_only = true, .rollback_unix_ns = 150 },
		  200,
		  FLEET_NONE,
		  3000 },
		/* ...but a real fleet rollback during it wins. */
		{ 1, { .latched = true, .local_only = true }, 200, FLEET_ROLLBACK, 0 },
		/* A rollback waiting to go out wins over the fleet's weight... */
		{ 0,
		  { .latched = true, .publish_pending = true, .rollback_unix_ns = 50 },
		  200,
		  FLEET_PUBLISH,
		  3000 },
		/* ...and is covered when the fleet is latched already. */
		{ 1, { .latched = true, .publish_pending = true }, 200, FLEET_PUBLISHED, 0 },
		/* Ramps: the plan's step at now. */
		{ 2, { .weight = 100 }, 120, FLEET_NONE, 100 },
		{ 2, { .weight = 100 }, 150, FLEET_SET_WEIGHT, 200 },
		{ 2, { .latched = true, .rollback_unix_ns = 200 }, 220, FLEET_PUBLISH, 200 },
		/* Paced: held at the node's step while its own clock has not held it
		 * for a hold, whatever the plan says by the wall clock. */
		{ 2, { .weight = 100, .pace = &pace, .now_mono_ns = 1049 }, 150, FLEET_NONE, 100 },
		{ 2,
		  { .weight = 100, .pace = &pace, .now_mono_ns = 1050 },
		  150,
		  FLEET_SET_WEIGHT,
		  200 },
	};
	size_t i;

	(void)state;
	pace.plan = ramp.ramp;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const struct fleet_svc_value *v = t[i].shared == 0 ? &open :
						  t[i].shared == 1 ? &latched :
								     &ramp;
		__u32 w = 0xdead;
		enum fleet_action a = fleet_decide(v, &t[i].l, t[i].now, &w);

		if (a != t[i].want || w != t[i].w)
			fail_msg("case %zu: %s weight %u, want %s weight %u", i,
				 fleet_action_name(a), w, fleet_action_name(t[i].want), t[i].w);
	}
}

static void test_node_roundtrip(void **state)
{
	struct fleet_node_value *v = calloc(1, sizeof(*v)), *w = calloc(1, sizeof(*w));
	char why[256], *s;

	(void)state;
	strcpy(v->node, "edge-1");
	v->applied_revision = 77;
	v->unix_ns = 12;
	v->n = 2;
	strcpy(v->svc[0].service, "web");
	v->svc[0].weight_bp = 2500;
	strcpy(v->svc[1].service, "api");
	v->svc[1].latched = true;
	s = fleet_node_encode(v);
	assert_int_equal(fleet_node_decode(s, strlen(s), w, why, sizeof(why)), 0);
	assert_memory_equal(v, w, sizeof(*v));
	free(s);
	free(v);
	free(w);
}

static const char base_conf[] = "[global]\ninterface = eth0\n\n"
				"[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n"
				"green = 10.1.0.21:8080\n\n";

static int conf_with(const char *fleet, struct shift_conf **c, char *err, size_t errlen)
{
	char text[2048];

	snprintf(text, sizeof(text), "%s%s", base_conf, fleet);
	return conf_parse(text, strlen(text), "t.conf", c, err, errlen);
}

/* A reload compares the sections, not where their lines are: a comment added
 * above [fleet] is no change (it used to warn on every reload). */
static void test_conf_equal(void **state)
{
	static const char *const f =
		"[fleet]\netcd_endpoints = http://127.0.0.1:2379\nfleet = eu1\nnode = n1\n";
	struct shift_conf *a, *b;
	char err[512], text[1024];

	(void)state;
	assert_int_equal(conf_with(f, &a, err, sizeof(err)), 0);
	snprintf(text, sizeof(text), "; moved down a line\n%s", f);
	assert_int_equal(conf_with(text, &b, err, sizeof(err)), 0);
	assert_int_not_equal(a->fleet.line, b->fleet.line);
	assert_true(conf_fleet_equal(&a->fleet, &b->fleet));
	conf_free(b);
	snprintf(text, sizeof(text), "%sfleet_lease = 6s\n", f);
	assert_int_equal(conf_with(text, &b, err, sizeof(err)), 0);
	assert_false(conf_fleet_equal(&a->fleet, &b->fleet));
	conf_free(b);
	snprintf(text, sizeof(text),
		 "[fleet]\netcd_endpoints = http://127.0.0.1:2379, http://127.0.0.2:2379\n"
		 "fleet = eu1\nnode = n1\n");
	assert_int_equal(conf_with(text, &b, err, sizeof(err)), 0);
	assert_false(conf_fleet_equal(&a->fleet, &b->fleet));
	conf_free(b);
	conf_free(a);
}

/* alive/NODE's value names the host holding the name; an older shiftd's "{}" none. */
static void test_alive_value(void **state)
{
	char id[FLEET_NODE_ID_LEN], *v;

	(void)state;
	v = fleet_alive_encode("0123456789abcdef0123456789abcdef");
	assert_non_null(v);
	assert_string_equal(v, "{\"node_id\":\"0123456789abcdef0123456789abcdef\"}");
	assert_int_equal(fleet_alive_decode(v, strlen(v), id, sizeof(id)), 0);
	assert_string_equal(id, "0123456789abcdef0123456789abcdef");
	free(v);
	assert_int_equal(fleet_alive_decode("{}", 2, id, sizeof(id)), -ENOENT);
	assert_int_equal(fleet_alive_decode("", 0, id, sizeof(id)), -EINVAL);
	assert_int_equal(fleet_alive_decode("[1]", 3, id, sizeof(id)), -EINVAL);
	assert_int_equal(fleet_alive_decode("{\"node_id\":7}", 13, id, sizeof(id)), -EINVAL);
	/* longer than any id: refused, not cut */
	v = "{\"node_id\":\"0123456789abcdef0123456789abcdef0\"}";
	assert_int_equal(fleet_alive_decode(v, strlen(v), id, sizeof(id)), -EINVAL);
	/* an embedded NUL is no id */
	v = "{\"node_id\":\"ab\\u0000cd\"}";
	assert_int_equal(fleet_alive_decode(v, strlen(v), id, sizeof(id)), -EINVAL);
}

/* <state_dir>/fleet-node-id: made once, then the same id on every start; a
 * damaged file is replaced, an unreadable one kept (this run gets its own id). */
static void test_node_id_file(void **state)
{
	char dir[] = "/tmp/test_fleet_XXXXXX", path[256], a[FLEET_NODE_ID_LEN],
	     b[FLEET_NODE_ID_LEN], why[600];
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, FLEET_NODE_ID_FILE);
	assert_int_equal(fleet_node_id_load(dir, a, why, sizeof(why)), 1);
	assert_true(fleet_node_id_valid(a));
	assert_non_null(strstr(why, "no node id yet"));
	assert_int_equal(fleet_node_id_load(dir, b, why, sizeof(why)), 0);
	assert_string_equal(a, b);

	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("not an id\n", fp);
	fclose(fp);
	assert_int_equal(fleet_node_id_load(dir, b, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "does not hold a node id"));
	assert_true(fleet_node_id_valid(b));
	assert_string_not_equal(a, b);
	assert_int_equal(fleet_node_id_load(dir, a, why, sizeof(why)), 0);
	assert_string_equal(a, b);

	if (geteuid() != 0) { /* root reads a 0000 file anyway */
		assert_int_equal(chmod(path, 0), 0);
		assert_int_equal(fleet_node_id_load(dir, a, why, sizeof(why)), -EACCES);
		assert_true(fleet_node_id_valid(a));
		assert_string_not_equal(a, b);
	}
	/* A state_dir that does not exist: an id for this run, the error named. */
	snprintf(path, sizeof(path), "%s/gone", dir);
	assert_true(fleet_node_id_load(path, a, why, sizeof(why)) < 0);
	assert_true(fleet_node_id_valid(a));
	assert_non_null(strstr(why, "gone"));

	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

/* Which endpoints go through libcurl's resolver (fleet_open() warns about
 * those when the resolver thread cannot be detached). */
static void test_endpoint_hostname(void **state)
{
	(void)state;
	assert_false(etcd_curl_url_has_hostname("http://10.0.0.1:2379"));
	assert_false(etcd_curl_url_has_hostname("https://[2001:db8::1]:2379"));
	assert_true(etcd_curl_url_has_hostname("http://etcd1:2379"));
	assert_true(etcd_curl_url_has_hostname("https://etcd.example.com"));
	assert_false(etcd_curl_url_has_hostname("not a url"));
}

static void test_conf(void **state)
{
	struct shift_conf *c;
	char err[512];

	(void)state;
	assert_int_equal(conf_with("", &c, err, sizeof(err)), 0);
	assert_false(c->fleet.enabled);
	conf_free(c);

	assert_int_equal(conf_with("[fleet]\netcd_endpoints = http://10.0.0.1:2379, "
				   "http://10.0.0.2:2379/ , https://e3:2379\n"
				   "fleet = edge-eu1\nnode = n1\netcd_timeout = 500ms\n",
				   &c, err, sizeof(err)),
			 0);
	assert_true(c->fleet.enabled);
	assert_int_equal(c->fleet.n_endpoints, 3);
	assert_string_equal(c->fleet.endpoints[1], "http://10.0.0.2:2379");
	assert_string_equal(c->fleet.endpoints[2], "https://e3:2379");
	assert_string_equal(c->fleet.fleet, "edge-eu1");
	assert_string_equal(c->fleet.node, "n1");
	assert_int_equal(c->fleet.timeout_ns, 500000000ull);
	assert_int_equal(c->fleet.lease_ns, 5000000000ull);
	conf_free(c);

	/* node defaults to %H: the short hostname. */
	assert_int_equal(conf_with("[fleet]\netcd_endpoints = http://a:1\nfleet = f\n", &c, err,
				   sizeof(err)),
			 0);
	assert_true(strlen(c->fleet.node) > 0 && !strchr(c->fleet.node, '.') &&
		    strcmp(c->fleet.node, "%H"));
	conf_free(c);

	{
		static const struct {
			const char *sec, *why;
		} bad[] = {
			{ "[fleet]\nfleet = f\n", "needs etcd_endpoints" },
			{ "[fleet]\netcd_endpoints = http://a:1\n", "needs fleet" },
			{ "[fleet]\netcd_endpoints = ftp://a:1\nfleet = f\n", "not an http" },
			{ "[fleet]\netcd_endpoints = http://a:1,\nfleet = f\n", "list of" },
			{ "[fleet]\netcd_endpoints = http://a:1\nfleet = a/b\n",
			  "not a fleet name" },
			{ "[fleet]\netcd_endpoints = http://a:1\nfleet = f\nnode = x y\n",
			  "not a node name" },
			{ "[fleet]\netcd_endpoints = http://a:1\nfleet = f\nfleet = g\n",
			  "duplicate key 'fleet'" },
			{ "[fleet]\netcd_endpoints = http://a:1\nfleet = f\nfleet_leas = 5s\n",
			  "unknown key 'fleet_leas' in [fleet]" },
			{ "[fleet]\netcd_endpoints = http://a:1\nfleet = f\ninterface = eth0\n",
			  "does not belong in [fleet]" },
			{ "[fleet]\netcd_endpoints = http://a:1\nfleet = f\netcd_timeout = 4s\n",
			  "at most half of fleet_lease" },
			{ "[fleet]\netcd_endpoints = http://a:1\nfleet = f\netcd_cert = /etc/hostname\n",
			  "go together" },
			{ "[fleet]\netcd_endpoints = http://a:1\nfleet = f\n[fleet]\n",
			  "duplicate [fleet]" },
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			err[0] = '\0';
			if (conf_with(bad[i].sec, &c, err, sizeof(err)) == 0) {
				conf_free(c);
				fail_msg("accepted: %s", bad[i].sec);
			}
			if (!strstr(err, bad[i].why))
				fail_msg("%s: '%s', want '%s'", bad[i].sec, err, bad[i].why);
		}
	}
	/* The TLS files are read where etcd is spoken to, not with the config:
	 * a reader of the config alone (shiftctl status) needs no key. */
	assert_int_equal(conf_with("[fleet]\netcd_endpoints = http://a:1\nfleet = f\n"
				   "etcd_cacert = /nonexistent\n",
				   &c, err, sizeof(err)),
			 0);
	assert_int_equal(conf_fleet_files_check(&c->fleet, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "etcd_cacert /nonexistent: No such file or directory");
	conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_value_roundtrip),
		cmocka_unit_test(test_value_not_utf8),
		cmocka_unit_test(test_value_refused),
		cmocka_unit_test(test_ramp_steps),
		cmocka_unit_test(test_ramp_paced),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_node_roundtrip),
		cmocka_unit_test(test_conf_equal),
		cmocka_unit_test(test_alive_value),
		cmocka_unit_test(test_node_id_file),
		cmocka_unit_test(test_endpoint_hostname),
		cmocka_unit_test(test_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
