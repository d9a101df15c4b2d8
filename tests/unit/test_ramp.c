// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ramps: a step whose weight write fails is not taken. The agent here has no
 * maps (every fd -1), so every weight write fails as a broken map's would.
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

#include "agent.h"
#include "analysis/ramp.h"

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
	s->ramp.step_started_unix_ns = 1;
	s->ramp.active = true;
	s->weight = 1000;
	ramp_tick(a);
	assert_false(s->ramp.active);
	assert_int_equal(s->ramp.index, 0);
	assert_int_equal(s->weight, 1000);
	free(s);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_not_written),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
