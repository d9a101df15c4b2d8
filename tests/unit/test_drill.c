// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollback drills: the refusals, the state machine's decisions, the report's
 * math (time to blue, connections and errors by color, pass), its text and
 * JSON, and the state file's drill record.
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

#include "analysis/drill.h"
#include "control/drill_ctl.h"
#include "control/json.h"
#include "ops/state.h"

#define SEC 1000000000ull
#define MS 1000000ull
#define NOW (1800000000ull * SEC)

static struct drill_check ok_check(void)
{
	struct drill_check c = {
		.service = "web",
		.weight = 3000,
		.now_unix_ns = NOW,
		.hold_ns = 10 * SEC,
	};
	return c;
}

static void test_refusals(void **state)
{
	struct drill_check c;
	char err[512];

	(void)state;
	c = ok_check();
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), 0);

	c = ok_check();
	c.holding = true;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "already running"));

	c = ok_check();
	c.latched = true;
	c.reason = "consecutive_errors: 5 in a row";
	c.weight = 0;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "already rolled back (consecutive_errors: 5 in a row)"));

	c = ok_check();
	c.weight = 0;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "green weight is 0"));

	/* Step 2/3 due in 5 s, hold 10 s: refused, and the message says when. */
	c = ok_check();
	c.ramp_active = true;
	c.ramp_index = 0;
	c.ramp_n = 3;
	c.ramp_next_unix_ns = NOW + 5 * SEC;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "ramp step 2/3 is due in 5.0s"));
	assert_non_null(strstr(err, "hold of 10s"));

	/* Due within the margin after the hold: still refused. */
	c.ramp_next_unix_ns = NOW + 10 * SEC + DRILL_RAMP_MARGIN_NS - 1;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), -EPERM);
	/* Due after hold + margin: fine. */
	c.ramp_next_unix_ns = NOW + 10 * SEC + DRILL_RAMP_MARGIN_NS;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), 0);
	/* Overdue (the tick has not stepped yet): refused, "due in 0s". */
	c.ramp_next_unix_ns = NOW - SEC;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "due in 0.0s"));
	/* At its last step a ramp changes no weight any more. */
	c.ramp_index = 2;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), 0);
	/* An inactive ramp's plan does not matter. */
	c.ramp_index = 0;
	c.ramp_active = false;
	assert_int_equal(drill_refusal(&c, err, sizeof(err)), 0);
}

static struct drill_counts counts(__u64 blue, __u64 green, __u64 eblue, __u64 egreen)
{
	struct drill_counts c = { { 0 } };

	c.new_flows[SHIFT_BLUE] = blue;
	c.new_flows[SHIFT_GREEN] = green;
	c.errors[SHIFT_BLUE] = eblue;
	c.errors[SHIFT_GREEN] = egreen;
	return c;
}

/* A drill that started at mono t0 = 1000 s, its write took 4 µs. */
static void start(struct drill_rt *d, const struct drill_counts *base,
		  const struct drill_counts *at)
{
	memset(d, 0, sizeof(*d));
	drill_begin(d, 3000, false, 10 * SEC, NOW);
	drill_written(d, base, at, 1000 * SEC, 1000 * SEC + 4000, true, 77);
}

static void test_clean_drill(void **state)
{
	struct drill_counts b = counts(50, 100, 3, 1), c;
	struct drill_rt d;

	(void)state;
	start(&d, &b, &b);
	assert_true(d.holding);
	assert_int_equal(d.cur.id, 1);
	c = counts(80, 100, 5, 1);
	drill_observe(&d, &c, 1000 * SEC + 100 * MS);
	c = counts(90, 100, 12, 1);
	drill_observe(&d, &c, 1000 * SEC + 200 * MS);
	drill_finish(&d, DRILL_RESTORED, 3000, false, "", NOW + 10 * SEC);
	assert_false(d.holding);
	assert_int_equal(d.last.result, DRILL_RESTORED);
	assert_true(d.last.pass);
	/* No green after the write: time to blue is the write itself. */
	assert_int_equal(d.last.time_to_blue_ns, 4000);
	assert_int_equal(d.last.write_ns, 4000);
	assert_int_equal(d.last.green_after_write, 0);
	assert_int_equal(d.last.new_conns[SHIFT_BLUE], 40);
	assert_int_equal(d.last.new_conns[SHIFT_GREEN], 0);
	assert_int_equal(d.last.errors[SHIFT_BLUE], 9);
	assert_int_equal(d.last.errors[SHIFT_GREEN], 0);
	assert_int_equal(d.last.evicted, 77);
	assert_true(d.last.evict);
	assert_int_equal(d.last.weight_before, 3000);
	assert_int_equal(d.last.weight_after, 3000);
	assert_int_equal(d.last.resolution_ns, 100 * MS); /* the widest gap between looks */
	assert_int_equal(d.done[DRILL_RESTORED], 1);
	assert_int_equal(drill_exit_code(&d.last), 0);
	assert_int_equal(d.ttb_ns, 4000);

	/* Interrupted by a restart: nothing measured, the last figure stays. */
	d.interrupted = true;
	d.write_done_mono = 0;
	d.last_look_mono = 0;
	drill_finish(&d, DRILL_INTERRUPTED, 3000, false, "restart", NOW + 20 * SEC);
	assert_int_equal(d.last.result, DRILL_INTERRUPTED);
	assert_false(d.last.pass);
	assert_false(d.interrupted);
	assert_int_equal(d.ttb_ns, 4000);
	assert_int_equal(drill_exit_code(&d.last), 1);
}

static void test_green_after_write(void **state)
{
	struct drill_counts b = counts(50, 100, 0, 0), c;
	struct drill_rt d;

	(void)state;
	/* One green connection between the two reads: it raced the write. */
	c = counts(50, 101, 0, 0);
	start(&d, &b, &c);
	drill_observe(&d, &c, 1000 * SEC + 100 * MS);
	drill_finish(&d, DRILL_RESTORED, 3000, false, "", NOW);
	assert_true(d.last.pass);
	assert_int_equal(d.last.green_after_write, 0);
	assert_int_equal(d.last.time_to_blue_ns, 4000);

	/* Green seen at the first look only: SYNs in flight at the write. */
	start(&d, &b, &b);
	c = counts(60, 102, 0, 0);
	drill_observe(&d, &c, 1000 * SEC + 100 * MS);
	c = counts(70, 102, 0, 0);
	drill_observe(&d, &c, 1000 * SEC + 200 * MS);
	drill_finish(&d, DRILL_RESTORED, 3000, false, "", NOW);
	assert_true(d.last.pass);
	assert_int_equal(d.last.green_after_write, 2);
	assert_int_equal(d.last.time_to_blue_ns, 100 * MS);

	/* Green still growing later: the rollback did not stop green. */
	start(&d, &b, &b);
	c = counts(60, 100, 0, 0);
	drill_observe(&d, &c, 1000 * SEC + 100 * MS);
	c = counts(70, 103, 0, 0);
	drill_observe(&d, &c, 1000 * SEC + 300 * MS);
	c = counts(80, 103, 0, 0);
	drill_observe(&d, &c, 1000 * SEC + 400 * MS);
	drill_finish(&d, DRILL_RESTORED, 3000, false, "", NOW);
	assert_false(d.last.pass);
	assert_int_equal(d.last.green_after_write, 3);
	assert_int_equal(d.last.time_to_blue_ns, 300 * MS);
	assert_int_equal(d.last.resolution_ns, 200 * MS);
	assert_int_equal(drill_exit_code(&d.last), 1);
}

static void test_counters_reset(void **state)
{
	struct drill_counts b = counts(500, 100, 40, 30), c;
	struct drill_rt d;

	(void)state;
	/* A reload swapped backends: their counters restarted. Never a wrap. */
	start(&d, &b, &b);
	c = counts(20, 3, 1, 0);
	drill_observe(&d, &c, 1000 * SEC + 100 * MS);
	drill_finish(&d, DRILL_RESTORED, 3000, false, "", NOW);
	assert_int_equal(d.last.new_conns[SHIFT_BLUE], 0);
	assert_int_equal(d.last.new_conns[SHIFT_GREEN], 0);
	assert_int_equal(d.last.errors[SHIFT_BLUE], 0);
	assert_int_equal(d.last.errors[SHIFT_GREEN], 0);
}

static void test_decide(void **state)
{
	const __u32 mine = SHIFT_WEIGHT_LATCHED | SHIFT_WEIGHT_DRILL;
	struct drill_counts b = counts(0, 0, 0, 0);
	struct drill_rt d;
	__u64 end;

	(void)state;
	start(&d, &b, &b);
	end = d.ends_mono;
	assert_int_equal(end, 1000 * SEC + 4000 + 10 * SEC);
	assert_int_equal(drill_decide(&d, mine, end - 1), DRILL_WAIT);
	assert_int_equal(drill_decide(&d, mine, end), DRILL_RESTORE);
	/* Another writer replaced the drill's latch: a real rollback wins at once. */
	assert_int_equal(drill_decide(&d, SHIFT_WEIGHT_LATCHED, end - 1), DRILL_STOP_REAL);
	assert_int_equal(drill_decide(&d, SHIFT_WEIGHT_LATCHED, end), DRILL_STOP_REAL);
	/* Cleared, or set by hand: the operator took over. */
	assert_int_equal(drill_decide(&d, 0, end - 1), DRILL_STOP_OPERATOR);
	assert_int_equal(drill_decide(&d, 3000, end), DRILL_STOP_OPERATOR);
	/* rollback_fire noted a real trigger: it wins even before the word is read back. */
	d.real = true;
	assert_int_equal(drill_decide(&d, mine, end), DRILL_STOP_REAL);
	drill_finish(&d, DRILL_ABORTED, 0, false, "aborted by a real rollback (x)", NOW);
	assert_int_equal(d.last.result, DRILL_ABORTED);
	assert_int_equal(d.last.weight_after, 0);
	assert_int_equal(drill_exit_code(&d.last), 1);
	assert_int_equal(d.done[DRILL_ABORTED], 1);
	/* The next drill gets the next id and starts clean. */
	drill_begin(&d, 1000, true, 5 * SEC, NOW);
	assert_int_equal(d.cur.id, 2);
	assert_false(d.real);
	assert_true(d.saved_ramp);
	assert_int_equal(d.saved_weight, 1000);
}

static void test_names(void **state)
{
	int r;

	(void)state;
	for (r = DRILL_NONE + 1; r < DRILL__COUNT; r++)
		assert_int_equal(drill_result_from_name(drill_result_name((enum drill_result)r)),
				 r);
	assert_int_equal(drill_result_from_name(""), DRILL_NONE);
	assert_int_equal(drill_result_from_name("bogus"), DRILL_NONE);
	assert_string_equal(drill_result_name(DRILL__COUNT), "unknown");
}

static void test_render(void **state)
{
	struct drill_counts b = counts(50, 100, 3, 1), c = counts(90, 100, 12, 1);
	struct drill_rt d;
	struct json j;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	start(&d, &b, &b);
	drill_observe(&d, &c, 1000 * SEC + 100 * MS);
	drill_finish(&d, DRILL_RESTORED, 3000, false, "", NOW + 10 * SEC);
	json_init(&j);
	drill_report_json(&j, NULL, "web", &d.last);
	assert_false(j.failed);
	assert_non_null(strstr(j.buf, "\"result\":\"restored\""));
	assert_non_null(strstr(j.buf, "\"pass\":true"));
	assert_non_null(strstr(j.buf, "\"green_connections_after_write\":0"));
	assert_non_null(strstr(j.buf, "\"new_connections\":{\"blue\":40,\"green\":0}"));
	assert_non_null(strstr(j.buf, "\"green_connections_evicted\":77"));
	assert_non_null(strstr(j.buf, "\"errors\":{\"blue\":9,\"green\":0}"));
	assert_non_null(strstr(j.buf, "\"green_weight_after_bp\":3000"));
	json_free(&j);

	/* No drill yet: an empty object. */
	memset(&d, 0, sizeof(d));
	json_init(&j);
	drill_report_json(&j, NULL, "web", &d.last);
	assert_string_equal(j.buf, "{}");
	json_free(&j);

	start(&d, &b, &b);
	drill_observe(&d, &c, 1000 * SEC + 100 * MS);
	drill_finish(&d, DRILL_RESTORED, 3000, false, "", NOW + 10 * SEC);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	drill_report_text(f, "", "web", &d.last);
	fclose(f);
	assert_non_null(strstr(buf, "restored (pass)"));
	assert_non_null(strstr(buf, "green 30% -> 0% for 10s -> 30%"));
	assert_non_null(strstr(buf, "time to blue 4.0 us (the weight write"));
	assert_non_null(strstr(buf, "40 blue, 0 green"));
	assert_non_null(strstr(buf, "evicted (re-steered to blue): 77"));
	free(buf);
}

static void test_state_record(void **state)
{
	struct shift_state st = { 0 }, back = { 0 };
	struct state_service *p;
	char err[256], *text = NULL, *bad;
	size_t len = 0;

	(void)state;
	p = state_get_or_add(&st, "web");
	assert_non_null(p);
	p->latched = true;
	snprintf(p->reason, sizeof(p->reason), "drill: drill 3, hold 10s");
	p->drill_weight = 3000;
	p->drill_ramp = true;
	p->ramp_n = 2;
	p->ramp_steps[0] = 1000;
	p->ramp_steps[1] = 3000;
	p->ramp_index = 1;
	p->drill_started_unix_ns = NOW;
	p->drill_ends_unix_ns = NOW + 10 * SEC;
	snprintf(p->last_drill, sizeof(p->last_drill), "restored");
	p->last_drill_unix_ns = NOW - 3600 * SEC;
	p->last_drill_ttb_ns = 4000;
	assert_int_equal(state_format(&st, &text, &len, err, sizeof(err)), 0);
	assert_int_equal(state_parse(text, len, &back, err, sizeof(err)), 0);
	assert_int_equal(back.n, 1);
	assert_int_equal(back.svc[0].drill_weight, 3000);
	assert_true(back.svc[0].drill_ramp);
	assert_int_equal(back.svc[0].drill_started_unix_ns, NOW);
	assert_int_equal(back.svc[0].drill_ends_unix_ns, NOW + 10 * SEC);
	assert_string_equal(back.svc[0].last_drill, "restored");
	assert_int_equal(back.svc[0].last_drill_unix_ns, NOW - 3600 * SEC);
	assert_int_equal(back.svc[0].last_drill_ttb_ns, 4000);
	state_free(&back);
	free(text);

	/* A result that is not a word of ours is refused, as any bad field. */
	snprintf(p->last_drill, sizeof(p->last_drill), "Bad-1");
	assert_int_equal(state_format(&st, &text, &len, err, sizeof(err)), -EINVAL);
	snprintf(p->last_drill, sizeof(p->last_drill), "restored");
	p->drill_weight = 10001;
	assert_int_equal(state_format(&st, &text, &len, err, sizeof(err)), -EINVAL);
	p->drill_weight = 0;
	assert_int_equal(state_format(&st, &text, &len, err, sizeof(err)), 0);
	/* A hand-edited bad value is refused by the parser (checksum aside). */
	bad = strstr(text, "drill_weight=0");
	assert_non_null(bad);
	state_free(&st);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_clean_drill),
		cmocka_unit_test(test_green_after_write),
		cmocka_unit_test(test_counters_reset),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_state_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
