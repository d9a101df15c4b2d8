// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Health-check scheduling without sockets: per-backend deadlines, epoll
 * timeouts, rise/fall counting at 10-20 ms intervals, and the config rules for
 * health_interval/health_timeout.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/hc_sched.h"
#include "config/config.h"
#include "config/units.h"

#define MS 1000000ULL

static void test_due(void **state)
{
	(void)state;
	/* Idle: the next start. In flight: the probe's own deadline. */
	assert_int_equal(hc_due(false, 115 * MS, 120 * MS), 120 * MS);
	assert_int_equal(hc_due(true, 115 * MS, 120 * MS), 115 * MS);
}

static void test_extend(void **state)
{
	(void)state;
	/* Started at 100 ms, timeout 15 ms: the agent lost 4 ms -> 119 ms. */
	assert_int_equal(hc_extend(115 * MS, 100 * MS, 15 * MS, 4 * MS), 119 * MS);
	/* Never past started + 2 x timeout, however much the agent lost. */
	assert_int_equal(hc_extend(119 * MS, 100 * MS, 15 * MS, 40 * MS), 130 * MS);
	assert_int_equal(hc_extend(130 * MS, 100 * MS, 15 * MS, 1 * MS), 130 * MS);
	assert_int_equal(hc_extend(115 * MS, 100 * MS, 15 * MS, HC_NEVER), 130 * MS);
	assert_int_equal(hc_extend(115 * MS, 100 * MS, 15 * MS, 0), 115 * MS);
}

static void test_next_start(void **state)
{
	(void)state;
	/* On time: one interval after the scheduled start, not after the wake-up. */
	assert_int_equal(hc_next_start(100 * MS, 20 * MS, 100 * MS + 300000), 120 * MS);
	/* Late by less than an interval: same phase. */
	assert_int_equal(hc_next_start(100 * MS, 20 * MS, 119 * MS), 120 * MS);
	/* Exactly on the next slot: the one after (now is being used). */
	assert_int_equal(hc_next_start(100 * MS, 20 * MS, 120 * MS), 140 * MS);
	/* A 95 ms stall: the missed starts are skipped, phase kept. */
	assert_int_equal(hc_next_start(100 * MS, 20 * MS, 195 * MS), 200 * MS);
	assert_int_equal(hc_next_start(100 * MS, 20 * MS, 200 * MS), 220 * MS);
	assert_int_equal(hc_next_start(5, 0, 7), 7);
}

static void test_timeout_ms(void **state)
{
	(void)state;
	assert_int_equal(hc_timeout_ms(100 * MS, HC_NEVER, -1), -1);
	assert_int_equal(hc_timeout_ms(100 * MS, HC_NEVER, 250), 250);
	assert_int_equal(hc_timeout_ms(100 * MS, 90 * MS, 250), 0);
	assert_int_equal(hc_timeout_ms(100 * MS, 100 * MS, -1), 0);
	/* Rounded up: never woken before the deadline. */
	assert_int_equal(hc_timeout_ms(100 * MS, 100 * MS + 1, -1), 1);
	assert_int_equal(hc_timeout_ms(100 * MS, 115 * MS, -1), 15);
	assert_int_equal(hc_timeout_ms(100 * MS, 115 * MS + 1, -1), 16);
	/* The other deadline wins when earlier. */
	assert_int_equal(hc_timeout_ms(100 * MS, 115 * MS, 3), 3);
	assert_int_equal(hc_timeout_ms(100 * MS, 115 * MS, 0), 0);
	assert_int_equal(hc_timeout_ms(0, 3000000000ULL * MS, -1), INT32_MAX);
}

static void test_count(void **state)
{
	bool up = true;
	__u32 ok = 0, fail = 0;

	(void)state;
	/* fall 3: two failures and an ok change nothing. */
	assert_false(hc_count(&up, &ok, &fail, false, 2, 3));
	assert_false(hc_count(&up, &ok, &fail, false, 2, 3));
	assert_false(hc_count(&up, &ok, &fail, true, 2, 3));
	assert_true(up);
	assert_false(hc_count(&up, &ok, &fail, false, 2, 3));
	assert_false(hc_count(&up, &ok, &fail, false, 2, 3));
	assert_true(hc_count(&up, &ok, &fail, false, 2, 3));
	assert_false(up);
	/* Further failures: no more flips; counters saturate. */
	assert_false(hc_count(&up, &ok, &fail, false, 2, 3));
	assert_int_equal(fail, 3);
	/* rise 2 */
	assert_false(hc_count(&up, &ok, &fail, true, 2, 3));
	assert_true(hc_count(&up, &ok, &fail, true, 2, 3));
	assert_true(up);
	/* fall 1: the first failure. */
	assert_true(hc_count(&up, &ok, &fail, false, 1, 1));
	assert_false(up);
	assert_true(hc_count(&up, &ok, &fail, true, 1, 1));
}

/*
 * One backend on simulated time, the way health.c drives it: a probe starts at
 * its deadline, ends after `answer` (or at the timeout when the backend is dead
 * or slower than the timeout), the next starts on the interval's phase. The
 * loop is woken a little late each time (`late`), as a loaded host does.
 */
struct sim {
	__u64 interval, timeout, answer, late;
	__u64 dies_at; /* from then on probes get no answer */
	__u32 rise, fall;
};

/* Time at which the backend went DOWN (0: never before `until`); *probes counts starts. */
static __u64 simulate(const struct sim *p, __u64 until, __u32 *probes)
{
	bool up = true, in_flight = false;
	__u32 ok = 0, fail = 0;
	__u64 next = 0, started = 0, now = 0;

	*probes = 0;
	while (now < until) {
		__u64 done = started + p->answer;
		__u64 due = hc_due(in_flight, started + p->timeout, next);
		bool answered;

		/* The loop wakes at the earlier of the answer and the deadline. */
		if (in_flight && started < p->dies_at && p->answer < p->timeout && done < due)
			due = done;
		now = due + p->late;
		if (in_flight) {
			answered = started < p->dies_at && p->answer < p->timeout &&
				   now - started >= p->answer;
			in_flight = false;
			if (hc_count(&up, &ok, &fail, answered, p->rise, p->fall) && !up)
				return now;
		}
		if (now >= next) {
			next = hc_next_start(next ? next : now, p->interval, now);
			started = now;
			in_flight = true;
			(*probes)++;
		}
	}
	return 0;
}

static void test_small_intervals(void **state)
{
	struct sim p = { .interval = 20 * MS,
			 .timeout = 15 * MS,
			 .answer = MS / 5,
			 .late = MS / 10,
			 .dies_at = HC_NEVER,
			 .rise = 2,
			 .fall = 2 };
	__u64 down;
	__u32 probes;

	(void)state;
	/* Healthy at 20 ms / 15 ms: never down, one probe per interval. */
	assert_int_equal(simulate(&p, 10000 * MS, &probes), 0);
	assert_in_range(probes, 490, 501);
	/* A backend answering in 14 ms stays up; one needing 16 ms does not. */
	p.answer = 14 * MS;
	assert_int_equal(simulate(&p, 2000 * MS, &probes), 0);
	p.answer = 16 * MS;
	assert_true(simulate(&p, 2000 * MS, &probes) > 0);
	/* Dies at 1 s: down after `fall` probes, i.e. within fall intervals + timeout. */
	p.answer = MS / 5;
	p.dies_at = 1000 * MS;
	down = simulate(&p, 5000 * MS, &probes);
	assert_true(down > 1000 * MS);
	assert_true(down <= 1000 * MS + 2 * 20 * MS + 15 * MS + 2 * p.late);
	/* 10 ms interval, fall 1: within one interval + timeout. */
	p.interval = 10 * MS;
	p.timeout = 9 * MS;
	p.fall = 1;
	down = simulate(&p, 5000 * MS, &probes);
	assert_true(down > 1000 * MS && down <= 1000 * MS + 10 * MS + 9 * MS + 2 * p.late);
}

static struct shift_conf *parse(const char *text, char *err, size_t len)
{
	struct shift_conf *c = NULL;

	err[0] = '\0';
	if (conf_parse(text, strlen(text), "h.conf", &c, err, len))
		return NULL;
	return c;
}

/* An error in a backend's traffic probes it early, at most every eighth of an interval. */
static void test_early(void **state)
{
	(void)state;
	/* Up, idle, last probe 30 ms ago at a 50 ms interval: yes. */
	assert_true(hc_early_ok(true, false, 100 * MS, 50 * MS, 130 * MS));
	/* An eighth of an interval (80 ms: 10 ms) exactly: yes; just under: no. */
	assert_true(hc_early_ok(true, false, 100 * MS, 80 * MS, 110 * MS));
	assert_false(hc_early_ok(true, false, 100 * MS, 80 * MS, 109 * MS));
	/* A probe in flight already decides; a down backend waits for its interval. */
	assert_false(hc_early_ok(true, true, 100 * MS, 50 * MS, 200 * MS));
	assert_false(hc_early_ok(false, false, 100 * MS, 50 * MS, 200 * MS));
	/* Never probed yet, or a clock that went back: yes. */
	assert_true(hc_early_ok(true, false, 0, 50 * MS, 1 * MS));
	assert_true(hc_early_ok(true, false, 300 * MS, 50 * MS, 200 * MS));
}

static void test_config(void **state)
{
	static const char good[] = "[global]\ninterface = eth0\n"
				   "health_interval = 10ms\nhealth_timeout = 9ms\n"
				   "[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n"
				   "health_check = http:/readyz\n"
				   "[service fast]\nvip = 10.0.0.11:80\nblue = 10.1.0.12:8080\n"
				   "health_interval = 20ms\nhealth_timeout = 15ms\n";
	static const struct {
		const char *text;
		const char *why;
	} bad[] = {
		{ "[global]\ninterface = eth0\nhealth_interval = 9ms\n",
		  "h.conf:3: health_interval: '9ms' out of range 10ms..1h" },
		{ "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10:80\n"
		  "blue = 10.1.0.11:8080\nhealth_interval = 20ms\nhealth_timeout = 21ms\n",
		  "h.conf:7: health_timeout 21ms must be shorter than health_interval 20ms" },
		/* [global]'s timeout against a service's shorter interval. */
		{ "[global]\ninterface = eth0\nhealth_timeout = 50ms\n[service web]\n"
		  "vip = 10.0.0.10:80\nblue = 10.1.0.11:8080\nhealth_interval = 50ms\n",
		  "h.conf:7: health_timeout 50ms must be shorter than health_interval 50ms" },
	};
	struct shift_conf *c;
	char err[512];
	size_t i;

	(void)state;
	c = parse(good, err, sizeof(err));
	if (!c)
		fail_msg("good file refused: %s", err);
	assert_int_equal(c->services[0].health_interval_ns, 10 * MS);
	assert_int_equal(c->services[0].health_timeout_ns, 9 * MS);
	assert_int_equal(c->services[1].health_interval_ns, 20 * MS);
	assert_int_equal(c->services[1].health_timeout_ns, 15 * MS);
	conf_free(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = parse(bad[i].text, err, sizeof(err));
		if (c || strncmp(err, bad[i].why, strlen(bad[i].why)))
			fail_msg("case %zu: got '%s', want '%s'", i, err, bad[i].why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due),	   cmocka_unit_test(test_extend),
		cmocka_unit_test(test_next_start), cmocka_unit_test(test_timeout_ms),
		cmocka_unit_test(test_count),	   cmocka_unit_test(test_small_intervals),
		cmocka_unit_test(test_early),	   cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
