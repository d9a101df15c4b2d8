// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ramps: a step whose weight write fails is not taken (an agent without maps,
 * every fd -1, so every weight write fails as a broken map's would); holds
 * are kept on the monotonic clock whatever the wall clock does, and survive
 * the state file (an agent with a real weights array; needs root, skipped
 * otherwise). Both clocks are this file's (ops/clock.h), set by the tests.
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
#include <bpf/bpf.h>
#include <cmocka.h>

#include "agent.h"
#include "analysis/ramp.h"
#include "ops/clock.h"

#define SEC 1000000000ull
#define HOLD (30 * SEC)

/* The clocks, ours to step: a wall clock an hour off is the point. */
static __u64 mono_ns = 1000 * SEC, unix_ns = 1800000000ull * SEC;

__u64 now_mono_ns(void)
{
	return mono_ns;
}

__u64 now_unix_ns(void)
{
	return unix_ns;
}

static void clocks_advance(__u64 ns)
{
	mono_ns += ns;
	unix_ns += ns;
}

static struct agent *agent_without_maps(struct conf_service *cs, struct service_rt **sp)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct service_rt *s = calloc(1, sizeof(*s));
	int i;

	assert_non_null(a);
	assert_non_null(s);
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		a->maps.fd[i] = -1;
	a->maps.weight_cas_fd = -1;
	/* A save would fail here, never write beside the test. */
	snprintf(a->state_path, sizeof(a->state_path), "/nonexistent/shift-test/state");
	memset(cs, 0, sizeof(*cs));
	snprintf(cs->name, sizeof(cs->name), "web");
	s->id = 1;
	s->conf = cs;
	s->n[SHIFT_GREEN] = 1;
	s->pool[SHIFT_GREEN][0].healthy = true;
	a->svc[1] = s;
	*sp = s;
	return a;
}

static void test_step_not_written(void **state)
{
	static const __u32 steps[] = { 1000, 2000, 5000 };
	struct conf_service cs;
	struct service_rt *s;
	struct agent *a = agent_without_maps(&cs, &s);
	char err[256] = "";

	(void)state;
	/* The first step: refused with the write's error, no ramp. */
	s->weight = 500;
	assert_int_not_equal(ramp_start(a, s, steps, 3, 1000000000ull, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "the first step's weight write failed"));
	assert_false(s->ramp.active);
	assert_int_equal(s->weight, 500);

	/* A later step, due now: the ramp stops on the step the map holds. */
	memcpy(s->ramp.steps, steps, sizeof(steps));
	s->ramp.n = 3;
	s->ramp.index = 0;
	s->ramp.hold_ns = 1;
	s->ramp.step_due_mono_ns = now_mono_ns();
	s->ramp.active = true;
	s->weight = 1000;
	ramp_tick(a);
	assert_false(s->ramp.active);
	assert_int_equal(s->ramp.index, 0);
	assert_int_equal(s->weight, 1000);
	free(s);
	free(a);
}

/* An agent whose weights map is a real BPF array (the datapath's layout). */
static struct agent *agent_with_weights(struct conf_service *cs, struct service_rt **sp,
					char *state_path)
{
	struct service_rt *s;
	struct agent *a = agent_without_maps(cs, &s);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_weights", sizeof(__u32), sizeof(__u32),
				SHIFT_MAX_SERVICES, NULL);

	if (fd < 0) {
		print_message("BPF array: %s: skipping\n", strerror(-fd));
		free(s);
		free(a);
		skip();
	}
	a->maps.fd[SHIFT_MAP_WEIGHTS] = fd;
	a->conf = calloc(1, sizeof(*a->conf));
	assert_non_null(a->conf);
	if (state_path)
		snprintf(a->state_path, sizeof(a->state_path), "%s", state_path);
	*sp = s;
	return a;
}

static void agent_free(struct agent *a, struct service_rt *s)
{
	close(a->maps.fd[SHIFT_MAP_WEIGHTS]);
	if (a->maps.weight_cas_fd >= 0)
		close(a->maps.weight_cas_fd);
	free(a->conf);
	free(s);
	free(a);
}

static const __u32 steps4[] = { 1000, 2000, 5000, 10000 };

/*
 * The wall clock goes back an hour during a hold (NTP, an operator): the step
 * still comes one hold after the last, not an hour later.
 */
static void test_hold_ignores_backward_step(void **state)
{
	struct conf_service cs;
	struct service_rt *s;
	struct agent *a = agent_with_weights(&cs, &s, NULL);
	char err[256] = "";

	(void)state;
	assert_int_equal(ramp_start(a, s, steps4, 4, HOLD, err, sizeof(err)), 0);
	assert_int_equal(s->weight, 1000);
	clocks_advance(10 * SEC);
	unix_ns -= 3600 * SEC;
	clocks_advance(HOLD - 10 * SEC - 1);
	ramp_tick(a);
	assert_int_equal(s->weight, 1000);
	clocks_advance(1);
	ramp_tick(a);
	assert_int_equal(s->weight, 2000);
	assert_int_equal(s->ramp.index, 1);
	agent_free(a, s);
}

/* Forward 35 s: no hold is cut short, none skipped. */
static void test_hold_ignores_forward_step(void **state)
{
	struct conf_service cs;
	struct service_rt *s;
	struct agent *a = agent_with_weights(&cs, &s, NULL);
	char err[256] = "";
	int i;

	(void)state;
	assert_int_equal(ramp_start(a, s, steps4, 4, HOLD, err, sizeof(err)), 0);
	clocks_advance(1 * SEC);
	unix_ns += 35 * SEC;
	for (i = 0; i < 20; i++) {
		ramp_tick(a);
		clocks_advance(SEC);
	}
	assert_int_equal(s->weight, 1000);
	clocks_advance(HOLD - 21 * SEC);
	ramp_tick(a);
	assert_int_equal(s->weight, 2000);
	ramp_tick(a);
	assert_int_equal(s->weight, 2000);
	agent_free(a, s);
}

/*
 * A restart or a reboot: the state file keeps the wall time the step began,
 * the monotonic clock starts over. The rest of the hold is what the wall clock
 * says, believed within one hold: a clock stepped meanwhile neither holds the
 * ramp past a hold nor skips steps.
 */
static void test_state_file_across_reboot(void **state)
{
	char dir[] = "/tmp/shift-test-ramp.XXXXXX", path[64];
	struct conf_service cs;
	struct service_rt *s;
	struct agent *a;
	char err[256] = "";

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state", dir);
	a = agent_with_weights(&cs, &s, path);
	assert_int_equal(ramp_start(a, s, steps4, 4, HOLD, err, sizeof(err)), 0);
	clocks_advance(10 * SEC);
	/* Status shows when the step began, on the wall clock. */
	assert_true(ramp_step_started_unix(&s->ramp, mono_ns, unix_ns) == unix_ns - 10 * SEC);
	assert_true(ramp_next_unix(&s->ramp, mono_ns, unix_ns) == unix_ns + 20 * SEC);
	assert_int_equal(persist_save(a), 0);

	/* Back 5 s later, on a new boot: 15 s of the hold left. */
	memset(&s->ramp, 0, sizeof(s->ramp));
	mono_ns = 7 * SEC;
	unix_ns += 5 * SEC;
	assert_int_equal(persist_restore(a, true), 0);
	assert_true(s->ramp.active);
	assert_int_equal(s->ramp.index, 0);
	assert_true(s->ramp.step_due_mono_ns == mono_ns + 15 * SEC);

	/* The same file read by a host whose clock is an hour behind: a full hold. */
	unix_ns -= 3600 * SEC;
	assert_int_equal(persist_restore(a, true), 0);
	assert_true(s->ramp.step_due_mono_ns == mono_ns + HOLD);

	/* Or a day ahead: the step is due at once, and only that one. */
	unix_ns += 3600 * SEC + 86400 * SEC;
	assert_int_equal(persist_restore(a, true), 0);
	assert_true(s->ramp.step_due_mono_ns == mono_ns);
	s->weight = 1000;
	ramp_tick(a);
	assert_int_equal(s->weight, 2000);
	ramp_tick(a);
	assert_int_equal(s->weight, 2000);
	assert_true(s->ramp.step_due_mono_ns == mono_ns + HOLD);

	unlink(path);
	snprintf(path, sizeof(path), "%s/state.lock", dir);
	unlink(path);
	rmdir(dir);
	agent_free(a, s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_not_written),
		cmocka_unit_test(test_hold_ignores_backward_step),
		cmocka_unit_test(test_hold_ignores_forward_step),
		cmocka_unit_test(test_state_file_across_reboot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
