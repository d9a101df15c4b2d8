// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollback triggers: the exact sample each trigger fires on, min_requests,
 * consecutive errors, blue-only errors, relative triggers and their blue
 * data requirement, expiry, reset.
 *
 * Most cases are rows of a table: limits + a sample script + the reason and
 * the index of the first sample that must fire (every earlier one must not).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/trigger.h"
#include "config/units.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (1000 * SEC)

/*
 * Script: an optional repeat count, then one letter per sample, 1 ms apart.
 *   s green response 10 ms   m green response 30 ms   l green response 1 s
 *   e green RST              x green 5xx after 1 s     c green connect 10 ms
 *   k green connect 30 ms
 *   S blue response 10 ms    L blue response 100 ms    E blue RST
 *   C blue connect 10 ms
 *   +  no sample: 11 s pass (more than the 10 s window)
 * Spaces are for reading.
 */
struct script {
	const char *p;
	int rep;
	__u64 ts;
};

static bool script_next(struct script *sc, struct shift_sample *s)
{
	for (;;) {
		int rep = 0;
		char ch;

		while (*sc->p == ' ')
			sc->p++;
		if (!*sc->p)
			return false;
		if (!sc->rep) {
			while (*sc->p >= '0' && *sc->p <= '9')
				rep = rep * 10 + (*sc->p++ - '0');
			sc->rep = rep ? rep : 1;
		}
		ch = *sc->p;
		if (!--sc->rep)
			sc->p++;
		if (ch == '+') {
			sc->ts += 11 * SEC;
			continue;
		}
		memset(s, 0, sizeof(*s));
		sc->ts += 1 * MS;
		s->ts_ns = sc->ts;
		s->service_id = 3;
		s->backend_id = ch >= 'a' ? 21 : 11;
		s->color = ch >= 'a' ? SHIFT_GREEN : SHIFT_BLUE;
		switch (ch | 0x20) { /* lower case */
		case 's':
			s->kind = SHIFT_SAMPLE_RESPONSE;
			s->value_ns = 10 * MS;
			s->status = 200;
			break;
		case 'm':
			s->kind = SHIFT_SAMPLE_RESPONSE;
			s->value_ns = 30 * MS;
			s->status = 200;
			break;
		case 'l':
			s->kind = SHIFT_SAMPLE_RESPONSE;
			s->value_ns = ch == 'l' ? 1 * SEC : 100 * MS;
			s->status = 200;
			break;
		case 'e':
			s->kind = SHIFT_SAMPLE_ERROR;
			s->err = SHIFT_ERR_RST;
			break;
		case 'x':
			s->kind = SHIFT_SAMPLE_ERROR;
			s->err = SHIFT_ERR_HTTP5XX;
			s->status = 503;
			s->value_ns = 1 * SEC;
			break;
		case 'c':
			s->kind = SHIFT_SAMPLE_CONNECT;
			s->value_ns = 10 * MS;
			break;
		case 'k':
			s->kind = SHIFT_SAMPLE_CONNECT;
			s->value_ns = 30 * MS;
			break;
		case 't': /* auto: a flow read as plain TCP */
			s->kind = SHIFT_SAMPLE_TCP;
			s->value_ns = 10 * MS;
			break;
		case 'a': /* auto: a TLS alert answering a request */
			s->kind = SHIFT_SAMPLE_ERROR;
			s->err = SHIFT_ERR_TLS_ALERT;
			s->value_ns = 1 * SEC;
			break;
		default:
			fail_msg("bad script letter '%c'", ch);
		}
		return true;
	}
}

enum { NEVER = -1 };

struct row {
	const char *what;
	struct trigger_limits l;
	const char *script;
	enum trigger_reason reason;
	int at; /* index of the first sample that fires, NEVER if none may */
};

/*
 * Every trigger off, then the row's own settings after it: left out, the rate
 * limits would be 0, which means "fire on any error". Overriding an earlier
 * designated initialiser is exactly the intent here, hence the pragma.
 */
#define OFF .max_error_rate = -1, .max_error_rate_increase = -1, .window_ns = 10 * SEC
#pragma GCC diagnostic ignored "-Woverride-init"

static const struct row rows[] = {
	/* Error rate: min_requests = 20, limit 5 %. */
	{ "rate: fires on the 20th request, not before",
	  { OFF, .min_requests = 20, .max_error_rate = 0.05 },
	  "17s 2e s",
	  TRIGGER_ERROR_RATE,
	  19 },
	{ "rate: 100% errors wait for min_requests",
	  { OFF, .min_requests = 20, .max_error_rate = 0.05 },
	  "19e e",
	  TRIGGER_ERROR_RATE,
	  19 },
	{ "rate: equal to the limit is not above it",
	  { OFF, .min_requests = 20, .max_error_rate = 0.10 },
	  "18s 2e e",
	  TRIGGER_ERROR_RATE,
	  20 },
	{ "rate: at or below the limit never fires",
	  { OFF, .min_requests = 20, .max_error_rate = 0.05 },
	  "19s e 40s",
	  TRIGGER_NONE,
	  NEVER },
	{ "rate: zero limit fires on the first error past min_requests",
	  { OFF, .min_requests = 5, .max_error_rate = 0 },
	  "5s e",
	  TRIGGER_ERROR_RATE,
	  5 },
	{ "rate: blue-only errors never fire",
	  { OFF, .min_requests = 1, .max_error_rate = 0, .max_error_rate_increase = 0,
	    .max_consecutive_errors = 1 },
	  "50E 20s 50E s",
	  TRIGGER_NONE,
	  NEVER },
	{ "rate: errors older than the window no longer count",
	  { OFF, .min_requests = 20, .max_error_rate = 0.05 },
	  "5e + 19s s",
	  TRIGGER_NONE,
	  NEVER },
	{ "rate: HTTP unit ignores connects",
	  { OFF, .min_requests = 5, .max_error_rate = 0.10 },
	  "20c e 3s s",
	  TRIGGER_ERROR_RATE,
	  24 },
	{ "rate: connection unit counts connects, ignores responses",
	  { OFF, .min_requests = 5, .max_error_rate = 0.10, .analysis_connect = true },
	  "2s 3c 2s c e",
	  TRIGGER_ERROR_RATE,
	  8 },
	{ "rate: auto counts responses and TCP flows, ignores connects",
	  { OFF, .min_requests = 5, .max_error_rate = 0.10, .analysis_auto = true },
	  "20c 2s 2t e",
	  TRIGGER_ERROR_RATE,
	  24 },
	{ "rate: HTTP and connection units ignore TCP-flow samples",
	  { OFF, .min_requests = 5, .max_error_rate = 0.10 },
	  "20t e 3s s",
	  TRIGGER_ERROR_RATE,
	  24 },
	{ "rate: connection unit ignores TCP-flow samples",
	  { OFF, .min_requests = 5, .max_error_rate = 0.10, .analysis_connect = true },
	  "20t 3c e c",
	  TRIGGER_ERROR_RATE,
	  24 },
	{ "consec: auto, TLS alerts in a row fire; connects do not reset",
	  { OFF, .max_consecutive_errors = 3, .analysis_auto = true },
	  "s a c a c a",
	  TRIGGER_CONSECUTIVE_ERRORS,
	  5 },
	{ "consec: auto, a TCP-flow success resets",
	  { OFF, .max_consecutive_errors = 3, .analysis_auto = true },
	  "2a t 2a t 2a",
	  TRIGGER_NONE,
	  NEVER },

	/* Consecutive errors: independent of min_requests. */
	{ "consec: the 3rd error in a row fires",
	  { OFF, .min_requests = 1000, .max_consecutive_errors = 3 },
	  "2s 3e",
	  TRIGGER_CONSECUTIVE_ERRORS,
	  4 },
	{ "consec: a green success resets the count",
	  { OFF, .min_requests = 1000, .max_consecutive_errors = 3 },
	  "2e s 2e s 2e e",
	  TRIGGER_CONSECUTIVE_ERRORS,
	  8 },
	{ "consec: blue successes do not reset it",
	  { OFF, .max_consecutive_errors = 3 },
	  "e S e S S e",
	  TRIGGER_CONSECUTIVE_ERRORS,
	  5 },
	{ "consec: an HTTP service's connects do not reset it",
	  { OFF, .max_consecutive_errors = 3 },
	  "e c e c e",
	  TRIGGER_CONSECUTIVE_ERRORS,
	  4 },
	{ "consec: a connection-level service's connects do",
	  { OFF, .max_consecutive_errors = 3, .analysis_connect = true },
	  "2e c 2e s c 2e",
	  TRIGGER_NONE,
	  NEVER },
	{ "consec: 5xx counts as an error",
	  { OFF, .max_consecutive_errors = 2 },
	  "s x x",
	  TRIGGER_CONSECUTIVE_ERRORS,
	  2 },
	{ "consec: N = 1 fires on the first green error",
	  { OFF, .max_consecutive_errors = 1 },
	  "10E 10s e",
	  TRIGGER_CONSECUTIVE_ERRORS,
	  20 },
	{ "consec: checked before the rate trigger",
	  { OFF, .min_requests = 2, .max_error_rate = 0.1, .max_consecutive_errors = 2 },
	  "2e",
	  TRIGGER_CONSECUTIVE_ERRORS,
	  1 },

	/* Error-rate increase over blue (blue at 5 %, 1/20). */
	{ "increase: green 20% vs blue 5% + 10% fires at green min_requests",
	  { OFF, .min_requests = 10, .max_error_rate_increase = 0.10 },
	  "19S E 2e 7s s",
	  TRIGGER_ERROR_RATE_INCREASE,
	  29 },
	{ "increase: within the margin never fires",
	  { OFF, .min_requests = 10, .max_error_rate_increase = 0.10 },
	  "19S E e 30s",
	  TRIGGER_NONE,
	  NEVER },
	{ "increase: not evaluated while blue lacks min_requests",
	  { OFF, .min_requests = 10, .max_error_rate_increase = 0.10 },
	  "9S 5e 5s",
	  TRIGGER_NONE,
	  NEVER },
	{ "increase: blue data from an older window does not count",
	  { OFF, .min_requests = 10, .max_error_rate_increase = 0.10 },
	  "20S + 5e 5s",
	  TRIGGER_NONE,
	  NEVER },
	{ "increase: blue's 10th request enables the comparison on the next green one",
	  { OFF, .min_requests = 10, .max_error_rate_increase = 0.10 },
	  "9S 5e 5s S s",
	  TRIGGER_ERROR_RATE_INCREASE,
	  20 },

	/* Absolute latency (p99 of <= 100 samples is the maximum). */
	{ "p99: one slow among 20 fires on the 20th",
	  { OFF, .min_requests = 20, .max_latency_p99_ns = 500 * MS },
	  "l 18s s",
	  TRIGGER_LATENCY_P99,
	  19 },
	{ "p99: all fast never fires",
	  { OFF, .min_requests = 20, .max_latency_p99_ns = 500 * MS },
	  "100s",
	  TRIGGER_NONE,
	  NEVER },
	{ "p99: fires on the first slow one past min_requests",
	  { OFF, .min_requests = 20, .max_latency_p99_ns = 500 * MS },
	  "30s l",
	  TRIGGER_LATENCY_P99,
	  30 },
	{ "p99: errors without latency do not make up min_requests",
	  { OFF, .min_requests = 5, .max_latency_p99_ns = 500 * MS },
	  "4e l 4l",
	  TRIGGER_LATENCY_P99,
	  8 },
	{ "p99: a 5xx's latency counts",
	  { OFF, .min_requests = 3, .max_latency_p99_ns = 500 * MS },
	  "2s x",
	  TRIGGER_LATENCY_P99,
	  2 },
	{ "p99: slow samples older than the window no longer count",
	  { OFF, .min_requests = 20, .max_latency_p99_ns = 500 * MS },
	  "19l + 30s",
	  TRIGGER_NONE,
	  NEVER },
	{ "p95: the 20th of 21 sorted samples is the first slow one",
	  { OFF, .min_requests = 20, .max_latency_p95_ns = 500 * MS },
	  "18s l s l",
	  TRIGGER_LATENCY_P95,
	  20 },
	{ "p95: 1 slow in 20 is below p95",
	  { OFF, .min_requests = 20, .max_latency_p95_ns = 500 * MS },
	  "18s l s",
	  TRIGGER_NONE,
	  NEVER },

	/* Latency ratio against blue (blue p99 ~10 ms; green 30 ms is 3x, 10 ms 1x). */
	{ "ratio: green p99 3x blue fires at green min_requests",
	  { OFF, .min_requests = 10, .max_latency_ratio = 2.0 },
	  "10S 9s m",
	  TRIGGER_LATENCY_RATIO,
	  19 },
	{ "ratio: same latency never fires",
	  { OFF, .min_requests = 10, .max_latency_ratio = 2.0 },
	  "10S 50s",
	  TRIGGER_NONE,
	  NEVER },
	{ "ratio: not evaluated while blue lacks min_requests",
	  { OFF, .min_requests = 10, .max_latency_ratio = 2.0 },
	  "9S 30m",
	  TRIGGER_NONE,
	  NEVER },
	{ "ratio: blue samples must be in the same window",
	  { OFF, .min_requests = 10, .max_latency_ratio = 2.0 },
	  "20S + 30m",
	  TRIGGER_NONE,
	  NEVER },
	{ "ratio: p95 compared too when a p95 limit is set",
	  { OFF, .min_requests = 20, .max_latency_ratio = 2.0, .max_latency_p95_ns = 10 * SEC },
	  "19S L 19m m",
	  TRIGGER_LATENCY_RATIO,
	  39 },
	{ "ratio: p99 only without a p95 limit",
	  { OFF, .min_requests = 20, .max_latency_ratio = 2.0 },
	  "19S L 19m m",
	  TRIGGER_NONE,
	  NEVER },
	{ "ratio: connection-level compares connect latency, not responses",
	  { OFF, .min_requests = 5, .max_latency_ratio = 2.0, .analysis_connect = true },
	  "5C 5m 4c k",
	  TRIGGER_LATENCY_RATIO,
	  14 },
	{ "ratio: connection-level, same connect latency never fires",
	  { OFF, .min_requests = 5, .max_latency_ratio = 2.0, .analysis_connect = true },
	  "5C 20m 20c",
	  TRIGGER_NONE,
	  NEVER },
};

/* Feed a script, checking every sample's result against the row. */
static void run_row(const struct row *r)
{
	struct shift_sample s;
	struct analysis a;
	struct script sc = { .p = r->script, .ts = T0 };
	char detail[160];
	int i = 0;

	assert_int_equal(analysis_init(&a, &r->l), 0);
	while (script_next(&sc, &s)) {
		enum trigger_reason got;

		detail[0] = '\0';
		got = analysis_feed(&a, &r->l, &s, detail, sizeof(detail));
		if (r->at == NEVER || i < r->at) {
			if (got != TRIGGER_NONE)
				fail_msg("%s: sample %d fired %s (%s), expected %s", r->what, i,
					 trigger_reason_name(got), detail,
					 r->at == NEVER ? "never" : "later");
		} else if (i == r->at) {
			if (got != r->reason)
				fail_msg("%s: sample %d returned %s, expected %s", r->what, i,
					 trigger_reason_name(got), trigger_reason_name(r->reason));
			assert_true(detail[0] != '\0');
			break;
		}
		i++;
	}
	if (r->at != NEVER && i != r->at)
		fail_msg("%s: script ended after %d samples, before sample %d", r->what, i, r->at);
	analysis_free(&a);
}

static void test_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i]);
}

static enum trigger_reason feed_script(struct analysis *a, const struct trigger_limits *l,
				       const char *script, __u64 *ts, char *detail, size_t len)
{
	struct script sc = { .p = script, .ts = *ts };
	struct shift_sample s;
	enum trigger_reason last = TRIGGER_NONE;

	while (script_next(&sc, &s))
		last = analysis_feed(a, l, &s, detail, len);
	*ts = sc.ts;
	return last;
}

static void test_reason_names(void **state)
{
	static const char *const want[TRIGGER__COUNT] = {
		"none",	       "error_rate",	"error_rate_increase", "latency_p99",
		"latency_p95", "latency_ratio", "consecutive_errors",  "health",
		"manual",      "drill",		"alertmanager",
	};
	int r;

	(void)state;
	for (r = 0; r < TRIGGER__COUNT; r++)
		assert_string_equal(trigger_reason_name((enum trigger_reason)r), want[r]);
	assert_string_equal(trigger_reason_name(TRIGGER__COUNT), "unknown");
}

static void test_details(void **state)
{
	static const struct {
		struct trigger_limits l;
		const char *script, *detail;
	} cases[] = {
		{ { OFF, .min_requests = 20, .max_error_rate = 0.05 },
		  "17s 2e e",
		  "green error rate 15% (3/20) > 5% over 10s" },
		{ { OFF, .max_consecutive_errors = 2 },
		  "s e e",
		  "2 consecutive green errors >= 2 (last: rst from backend 21)" },
		{ { OFF, .min_requests = 10, .max_error_rate_increase = 0.10 },
		  "19S E 2e 8s",
		  "green error rate 20% (2/10) > blue 5% (1/20) + 10% over 10s" },
		{ { OFF, .min_requests = 1, .max_latency_p99_ns = 500 * MS },
		  "l",
		  "green p99 latency 1.016s > 500ms over 10s (n=1)" },
		{ { OFF, .min_requests = 5, .max_latency_ratio = 2.0 },
		  "5S 5m",
		  "green p99 latency 30.72ms > 2 x blue p99 10.24ms over 10s" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct analysis a;
		char detail[160] = "";
		__u64 ts = T0;

		assert_int_equal(analysis_init(&a, &cases[i].l), 0);
		assert_int_not_equal(feed_script(&a, &cases[i].l, cases[i].script, &ts, detail,
						 sizeof(detail)),
				     TRIGGER_NONE);
		assert_string_equal(detail, cases[i].detail);
		analysis_free(&a);
	}
}

/* A short buffer truncates, a NULL one is allowed. */
static void test_detail_buffers(void **state)
{
	struct trigger_limits l = { OFF, .max_consecutive_errors = 1 };
	struct analysis a;
	char small[8];
	__u64 ts = T0;

	(void)state;
	assert_int_equal(analysis_init(&a, &l), 0);
	assert_int_equal(feed_script(&a, &l, "e", &ts, NULL, 0), TRIGGER_CONSECUTIVE_ERRORS);
	assert_int_equal(feed_script(&a, &l, "e", &ts, small, sizeof(small)),
			 TRIGGER_CONSECUTIVE_ERRORS);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	analysis_free(&a);
}

static void test_reset(void **state)
{
	struct trigger_limits l = { OFF, .min_requests = 10, .max_error_rate = 0.05,
				    .max_consecutive_errors = 3 };
	struct analysis a;
	__u64 ts = T0;
	char detail[160];

	(void)state;
	assert_int_equal(analysis_init(&a, &l), 0);
	assert_int_equal(feed_script(&a, &l, "8s 2e", &ts, detail, sizeof(detail)),
			 TRIGGER_ERROR_RATE);
	analysis_reset(&a);
	/* Both the window and the consecutive count start over. */
	assert_int_equal(window_requests(&a.pool[SHIFT_GREEN]), 0);
	assert_int_equal(feed_script(&a, &l, "e", &ts, detail, sizeof(detail)), TRIGGER_NONE);
	assert_int_equal(a.consecutive_errors, 1);
	assert_int_equal(feed_script(&a, &l, "8s", &ts, detail, sizeof(detail)), TRIGGER_NONE);
	assert_int_equal(feed_script(&a, &l, "s", &ts, detail, sizeof(detail)), TRIGGER_ERROR_RATE);
	analysis_free(&a);
}

static void test_init_and_ignored(void **state)
{
	struct trigger_limits l;
	struct analysis a;
	struct shift_sample s = { .ts_ns = T0, .color = 7, .kind = SHIFT_SAMPLE_ERROR };

	(void)state;
	trigger_limits_disabled(&l, 0);
	assert_int_equal(analysis_init(&a, &l), -EINVAL);
	analysis_free(&a);
	trigger_limits_disabled(&l, 10 * SEC);
	assert_true(l.max_error_rate < 0 && l.max_error_rate_increase < 0);
	l.max_consecutive_errors = 1;
	assert_int_equal(analysis_init(&a, &l), 0);
	/* Unknown color or kind: counted as ignored, never fire, never count. */
	assert_int_equal(analysis_feed(&a, &l, &s, NULL, 0), TRIGGER_NONE);
	s.color = SHIFT_GREEN;
	s.kind = 9;
	assert_int_equal(analysis_feed(&a, &l, &s, NULL, 0), TRIGGER_NONE);
	assert_int_equal(a.ignored, 2);
	assert_int_equal(window_requests(&a.pool[SHIFT_GREEN]), 0);
	/* A late green error (older than the window) is dropped, does not fire. */
	s.kind = SHIFT_SAMPLE_RESPONSE;
	s.value_ns = MS;
	s.ts_ns = T0 + 60 * SEC;
	assert_int_equal(analysis_feed(&a, &l, &s, NULL, 0), TRIGGER_NONE);
	s.kind = SHIFT_SAMPLE_ERROR;
	s.ts_ns = T0;
	assert_int_equal(analysis_feed(&a, &l, &s, NULL, 0), TRIGGER_NONE);
	assert_int_equal(window_late(&a.pool[SHIFT_GREEN]), 1);
	analysis_free(&a);
}

static void test_pool_summary(void **state)
{
	struct trigger_limits l;
	struct pool_summary ps;
	struct analysis a;
	__u64 ts = T0;

	(void)state;
	trigger_limits_disabled(&l, 10 * SEC);
	assert_int_equal(analysis_init(&a, &l), 0);
	feed_script(&a, &l, "90S 8L 2E 3s e", &ts, NULL, 0);
	analysis_pool_summary(&a, SHIFT_BLUE, 0, &ps);
	assert_int_equal(ps.window_ns, 10 * SEC);
	assert_int_equal(ps.requests, 100);
	assert_int_equal(ps.errors, 2);
	assert_true(ps.error_rate == 0.02);
	assert_int_equal(ps.latency_count, 98);
	assert_true(ps.p50_ns > 10 * MS && ps.p50_ns <= 10 * MS * 17 / 16);
	assert_true(ps.p95_ns > 100 * MS && ps.p95_ns <= 100 * MS * 17 / 16);
	assert_true(ps.p99_ns == ps.p95_ns);
	analysis_pool_summary(&a, SHIFT_GREEN, 0, &ps);
	assert_int_equal(ps.requests, 4);
	assert_int_equal(ps.errors, 1);
	/* Read at a later "now": everything has aged out. */
	analysis_pool_summary(&a, SHIFT_GREEN, ts + 11 * SEC, &ps);
	assert_int_equal(ps.requests, 0);
	assert_int_equal(ps.p99_ns, 0);
	analysis_free(&a);
}

/*
 * Feed green samples in the order given, each "e@T" (an error at T ms) or
 * "s@T" (a success): arrival order, as the two rings deliver them, not time
 * order. Returns the last result; *fired_at the index of the first that fired.
 */
static enum trigger_reason feed_timed(struct analysis *a, const struct trigger_limits *l,
				      const char *seq, int *fired_at)
{
	enum trigger_reason r, last = TRIGGER_NONE;
	struct shift_sample s;
	int i = 0, n;
	char k;
	unsigned int t;

	*fired_at = NEVER;
	while (sscanf(seq, " %c@%u%n", &k, &t, &n) == 2) {
		memset(&s, 0, sizeof(s));
		s.ts_ns = T0 + t * MS;
		s.service_id = 3;
		s.backend_id = 21;
		s.color = SHIFT_GREEN;
		if (k == 'e') {
			s.kind = SHIFT_SAMPLE_ERROR;
			s.err = SHIFT_ERR_HTTP5XX;
			s.status = 500;
		} else {
			s.kind = SHIFT_SAMPLE_RESPONSE;
			s.value_ns = 10 * MS;
			s.status = 200;
		}
		r = analysis_feed(a, l, &s, NULL, 0);
		if (r != TRIGGER_NONE && *fired_at == NEVER)
			*fired_at = i;
		last = r;
		seq += n;
		i++;
	}
	return last;
}

/* Consecutive errors by the samples' time: successes may arrive after newer errors. */
static void test_streak_order(void **state)
{
	static const struct {
		const char *what;
		__u32 limit;
		const char *seq;
		int fired_at;
		__u32 streak; /* after the last sample */
	} cases[] = {
		{ "each success arrives after the error that followed it", 3,
		  "e@2 e@4 s@3 e@6 s@5 e@8 s@7 e@10 s@9 e@12 s@11", NEVER, 1 },
		{ "a batch of successes after the errors breaks the run", 3, "e@2 e@4 s@1 s@3 s@5",
		  NEVER, 0 },
		{ "successes older than every error leave the run whole", 3, "s@1 e@2 e@4 s@1 e@6",
		  4, 3 },
		{ "an error older than a success already seen is no part of a run", 2,
		  "s@10 e@5 e@6 e@11", NEVER, 1 },
		{ "errors from two CPUs out of order still make a run", 3, "e@5 e@4 e@6", 2, 3 },
		{ "a success between two of them keeps only the newer", 3, "e@4 e@5 e@7 e@8 s@6", 2,
		  2 },
		{ "a run past the kept timestamps fires at its limit", 100,
		  "s@0 " /* filled below */, NEVER, 0 },
	};
	struct trigger_limits l;
	struct analysis a;
	char long_seq[2048];
	size_t i, off;
	int at, e;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *seq = cases[i].seq;
		int want_at = cases[i].fired_at;
		__u32 want_streak = cases[i].streak;

		trigger_limits_disabled(&l, 10 * SEC);
		l.max_consecutive_errors = cases[i].limit;
		if (cases[i].limit == 100) {
			/* 100 errors in a row (more than ANALYSIS_STREAK_KEEP), then a
			 * success older than the last 30 of them. */
			off = (size_t)snprintf(long_seq, sizeof(long_seq), "s@0");
			for (e = 1; e <= 100; e++)
				off += (size_t)snprintf(long_seq + off, sizeof(long_seq) - off,
							" e@%d", e * 2);
			snprintf(long_seq + off, sizeof(long_seq) - off, " s@141");
			seq = long_seq;
			want_at = 100;
			want_streak = 30;
		}
		assert_int_equal(analysis_init(&a, &l), 0);
		feed_timed(&a, &l, seq, &at);
		if (at != want_at || a.consecutive_errors != want_streak)
			fail_msg("%s: fired at %d (want %d), streak %u (want %u)", cases[i].what,
				 at, want_at, a.consecutive_errors, want_streak);
		analysis_free(&a);
	}
}

/* At a limit the config spells, the rate triggers hold: "more than" is strict. */
static void test_rate_at_limit(void **state)
{
	static const struct {
		const char *max, *increase, *script;
		enum trigger_reason want;
	} cases[] = {
		/* 7/1000 at 0.7 %; the 1000th sample is the 7th error */
		{ "0.7%", NULL, "142s e 142s e 142s e 142s e 142s e 142s e 141s e", TRIGGER_NONE },
		{ "0.7%", NULL, "142s e 142s e 142s e 142s e 142s e 142s e 140s e e",
		  TRIGGER_ERROR_RATE },
		/* blue 3/100, green 4/100, margin 1 % */
		{ NULL, "1%", "3E 97S 96s 4e", TRIGGER_NONE },
		{ NULL, "1%", "3E 97S 95s 5e", TRIGGER_ERROR_RATE_INCREASE },
		{ "5%", NULL, "19s e", TRIGGER_NONE },
		{ "5%", NULL, "18s 2e", TRIGGER_ERROR_RATE },
	};
	struct trigger_limits l;
	struct analysis a;
	char err[128], detail[256];
	size_t i;
	__u64 ts;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		trigger_limits_disabled(&l, 10 * SEC);
		l.min_requests = 20;
		if (cases[i].max)
			assert_int_equal(units_parse_percent(cases[i].max, &l.max_error_rate, err,
							     sizeof(err)),
					 0);
		if (cases[i].increase)
			assert_int_equal(units_parse_percent(cases[i].increase,
							     &l.max_error_rate_increase, err,
							     sizeof(err)),
					 0);
		assert_int_equal(analysis_init(&a, &l), 0);
		ts = T0;
		detail[0] = '\0';
		if (feed_script(&a, &l, cases[i].script, &ts, detail, sizeof(detail)) !=
		    cases[i].want)
			fail_msg("case %zu (%s): want %s, detail \"%s\"", i, cases[i].script,
				 trigger_reason_name(cases[i].want), detail);
		analysis_free(&a);
	}
}

/*
 * Samples a full ring lost, known by their number (analysis_lost()): counted
 * in their color's window as requests or errors of the service's kind, so the
 * error rate is what the traffic had; a lost green success ends a run of
 * errors; kinds that are not the service's requests are ignored.
 */
static void test_lost(void **state)
{
	struct trigger_limits l = { OFF, .min_requests = 20, .max_error_rate = 0.05,
				    .max_consecutive_errors = 3 };
	struct analysis a;
	__u64 ts = T0;
	char detail[160];

	(void)state;
	assert_int_equal(analysis_init(&a, &l), 0);
	/* 10 green responses arrived, 2 errors among them; 90 successes lost
	 * (what a full ring does under load): 2 %, under the 5 % limit. */
	assert_int_equal(feed_script(&a, &l, "8s 2e", &ts, detail, sizeof(detail)), TRIGGER_NONE);
	/* Counted when shiftd reads the counts: after the samples it read. */
	ts += MS / 2;
	analysis_lost(&a, &l, SHIFT_GREEN, SHIFT_SAMPLE_RESPONSE, 90, ts);
	assert_int_equal(window_requests(&a.pool[SHIFT_GREEN]), 100);
	assert_int_equal(window_errors(&a.pool[SHIFT_GREEN]), 2);
	assert_int_equal(a.lost, 90);
	/* The lost successes broke the run: one more error is a run of 1. */
	assert_int_equal(feed_script(&a, &l, "e", &ts, detail, sizeof(detail)), TRIGGER_NONE);
	assert_int_equal(a.consecutive_errors, 1);
	/* 3 errors lost (the error ring full too): 6 of 104, over 5 %. They
	 * fire nothing themselves; the next sample is judged with them. */
	analysis_lost(&a, &l, SHIFT_GREEN, SHIFT_SAMPLE_ERROR, 3, ts);
	assert_int_equal(window_errors(&a.pool[SHIFT_GREEN]), 6);
	assert_int_equal(a.consecutive_errors, 1);
	assert_int_equal(feed_script(&a, &l, "s", &ts, detail, sizeof(detail)), TRIGGER_ERROR_RATE);
	/* Handshakes are not an HTTP service's requests; blue's go to blue. */
	analysis_lost(&a, &l, SHIFT_GREEN, SHIFT_SAMPLE_CONNECT, 50, ts);
	analysis_lost(&a, &l, SHIFT_GREEN, SHIFT_SAMPLE_TCP, 5, ts);
	assert_int_equal(window_requests(&a.pool[SHIFT_GREEN]), 105);
	assert_int_equal(a.ignored, 55);
	analysis_lost(&a, &l, SHIFT_BLUE, SHIFT_SAMPLE_RESPONSE, 40, ts);
	assert_int_equal(window_requests(&a.pool[SHIFT_BLUE]), 40);
	assert_int_equal(window_errors(&a.pool[SHIFT_BLUE]), 0);
	analysis_free(&a);

	/* analysis = tcp: handshakes are the requests, responses are not. */
	l.analysis_connect = true;
	assert_int_equal(analysis_init(&a, &l), 0);
	analysis_lost(&a, &l, SHIFT_GREEN, SHIFT_SAMPLE_CONNECT, 50, ts);
	analysis_lost(&a, &l, SHIFT_GREEN, SHIFT_SAMPLE_RESPONSE, 7, ts);
	assert_int_equal(window_requests(&a.pool[SHIFT_GREEN]), 50);
	assert_int_equal(a.ignored, 7);
	/* Too old for the window: dropped as a late sample would be. */
	analysis_lost(&a, &l, SHIFT_GREEN, SHIFT_SAMPLE_CONNECT, 9, ts - 60 * SEC);
	assert_int_equal(window_requests(&a.pool[SHIFT_GREEN]), 50);
	assert_int_equal(window_late(&a.pool[SHIFT_GREEN]), 1);
	analysis_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lost),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_details),
		cmocka_unit_test(test_detail_buffers),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_init_and_ignored),
		cmocka_unit_test(test_pool_summary),
		cmocka_unit_test(test_streak_order),
		cmocka_unit_test(test_rate_at_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
