// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The sample consumer as a restart meets it: samples made while no shiftd
 * read the rings (older than a->start_mono_ns) feed the windows and the
 * streak but fire nothing themselves, and their age is never a reaction
 * time; green's fresh samples decide. And the rollback that fires is in the
 * state file when it returns. Through samples_handle() into rollback_fire(),
 * with a real BPF array as the weights map (skipped where BPF maps cannot be
 * made).
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

#include <shift/maps.h>
#include <shift/sample.h>

#include "agent.h"
#include "analysis/samples.h"
#include "ops/state.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define SID 3

struct fix {
	struct agent *a;
	struct service_rt *s;
	struct shift_conf *conf;
	struct conf_service cs;
	char dir[64];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	int i, fd;

	assert_non_null(f);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_weights", sizeof(__u32), sizeof(__u32),
			    SHIFT_MAX_SERVICES, NULL);
	if (fd < 0) {
		print_message("BPF array: %s: skipping\n", strerror(-fd));
		free(f);
		*state = NULL;
		return 0;
	}
	f->a = calloc(1, sizeof(*f->a));
	f->s = calloc(1, sizeof(*f->s));
	f->conf = calloc(1, sizeof(*f->conf));
	assert_non_null(f->a);
	assert_non_null(f->s);
	assert_non_null(f->conf);
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		f->a->maps.fd[i] = -1;
	f->a->maps.weight_cas_fd = -1;
	f->a->maps.fd[SHIFT_MAP_WEIGHTS] = fd;
	f->a->conf = f->conf;
	snprintf(f->a->node, sizeof(f->a->node), "test");
	snprintf(f->dir, sizeof(f->dir), "/tmp/shift-test-samples.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->a->state_path, sizeof(f->a->state_path), "%s/state", f->dir);

	snprintf(f->cs.name, sizeof(f->cs.name), "web");
	f->cs.health = CONF_HC_NONE;
	f->cs.rollback_evict = false;
	f->s->id = SID;
	f->s->conf = &f->cs;
	f->s->weight = SHIFT_WEIGHT_MAX;
	trigger_limits_disabled(&f->s->limits, 10 * SEC);
	f->s->limits.max_consecutive_errors = 3;
	assert_int_equal(analysis_init(&f->s->an, &f->s->limits), 0);
	f->a->svc[SID] = f->s;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char p[128];

	if (!f)
		return 0;
	close(f->a->maps.fd[SHIFT_MAP_WEIGHTS]);
	analysis_free(&f->s->an);
	snprintf(p, sizeof(p), "%s/state", f->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/state.lock", f->dir);
	unlink(p);
	rmdir(f->dir);
	free(f->s);
	free(f->conf);
	free(f->a);
	free(f);
	return 0;
}

static struct fix *fix_of(void **state)
{
	if (!*state)
		skip();
	return *state;
}

static void feed(struct fix *f, enum shift_sample_kind kind, __u64 ts)
{
	struct shift_sample smp;

	memset(&smp, 0, sizeof(smp));
	smp.ts_ns = ts;
	smp.service_id = SID;
	smp.color = SHIFT_GREEN;
	smp.kind = kind;
	smp.backend_id = 7;
	if (kind == SHIFT_SAMPLE_ERROR) {
		smp.err = SHIFT_ERR_HTTP5XX;
		smp.status = 500;
	} else {
		smp.value_ns = 2 * MS;
	}
	samples_handle(f->a, &smp, sizeof(smp));
}

static __u32 word_of(struct fix *f)
{
	__u32 key = SID, word = 0;

	assert_int_equal(bpf_map_lookup_elem(f->a->maps.fd[SHIFT_MAP_WEIGHTS], &key, &word), 0);
	return word;
}

/*
 * The reviewers' case: green answered 500 x4 then 200 x30 while shiftd was
 * down, read at the restart in the rings' order (errors first). No rollback;
 * green's next errors are counted from the successes on, and the third fresh
 * one rolls back with its own reaction time.
 */
static void test_backlog_then_healthy(void **state)
{
	struct fix *f = fix_of(state);
	__u64 start, t;
	int i;

	start = now_mono_ns();
	f->a->start_mono_ns = start;
	t = start - 20 * SEC;
	for (i = 0; i < 4; i++)
		feed(f, SHIFT_SAMPLE_ERROR, t + i * MS);
	for (i = 0; i < 30; i++)
		feed(f, SHIFT_SAMPLE_RESPONSE, t + (10 + i) * MS);
	assert_false(f->s->latched);
	assert_int_equal(word_of(f) & SHIFT_WEIGHT_LATCHED, 0);
	assert_int_equal(f->s->backlog_errors, 4);
	assert_int_equal(f->a->reaction_count, 0);

	/* Fresh errors: the backlog's successes broke its streak. */
	feed(f, SHIFT_SAMPLE_ERROR, now_mono_ns());
	feed(f, SHIFT_SAMPLE_ERROR, now_mono_ns());
	assert_false(f->s->latched);
	t = now_mono_ns();
	feed(f, SHIFT_SAMPLE_ERROR, t);
	assert_true(f->s->latched);
	assert_int_equal(word_of(f), SHIFT_WEIGHT_LATCHED);
	assert_int_equal(f->s->rollbacks[TRIGGER_CONSECUTIVE_ERRORS], 1);
	assert_int_equal(f->a->reaction_count, 1);
	assert_true(f->s->reaction_ns > 0 && f->s->reaction_ns < now_mono_ns() - t + 1);
	assert_int_equal(f->s->backlog_errors, 4);
}

/* Green failing before the restart and after it: its first fresh error fires. */
static void test_backlog_still_failing(void **state)
{
	struct fix *f = fix_of(state);
	__u64 start, t;
	int i;

	start = now_mono_ns();
	f->a->start_mono_ns = start;
	for (i = 0; i < 5; i++)
		feed(f, SHIFT_SAMPLE_ERROR, start - 3 * SEC + i * MS);
	assert_false(f->s->latched);
	assert_int_equal(f->a->reaction_count, 0);
	t = now_mono_ns();
	feed(f, SHIFT_SAMPLE_ERROR, t);
	assert_true(f->s->latched);
	assert_int_equal(word_of(f), SHIFT_WEIGHT_LATCHED);
	assert_int_equal(f->a->reaction_count, 1);
	/* The fresh error's reaction, not the backlog's 3 s. */
	assert_true(f->s->reaction_ns < now_mono_ns() - t + 1);
	assert_non_null(strstr(f->s->reason, "consecutive_errors: 6 consecutive"));
}

/* A rate trigger over a window the backlog filled fires on a fresh sample only. */
static void test_backlog_rate(void **state)
{
	struct fix *f = fix_of(state);
	__u64 start;
	int i;

	f->s->limits.max_consecutive_errors = 0;
	f->s->limits.max_error_rate = 0.2;
	f->s->limits.min_requests = 10;
	start = now_mono_ns();
	f->a->start_mono_ns = start;
	for (i = 0; i < 20; i++)
		feed(f, i % 2 ? SHIFT_SAMPLE_ERROR : SHIFT_SAMPLE_RESPONSE,
		     start - 2 * SEC + i * MS);
	assert_false(f->s->latched);
	assert_int_equal(f->s->backlog_errors, 10);
	/* Half of green's window is errors: green's next answer, a success, fires. */
	feed(f, SHIFT_SAMPLE_RESPONSE, now_mono_ns());
	assert_true(f->s->latched);
	assert_int_equal(f->s->rollbacks[TRIGGER_ERROR_RATE], 1);
	assert_int_equal(f->a->reaction_count, 1);
}

/* Without a start time (tests, benchmarks) every sample is a fresh one. */
static void test_no_start(void **state)
{
	struct fix *f = fix_of(state);
	int i;

	for (i = 0; i < 3; i++)
		feed(f, SHIFT_SAMPLE_ERROR, now_mono_ns());
	assert_true(f->s->latched);
	assert_int_equal(f->s->backlog_errors, 0);
}

/*
 * An automatic rollback is in the state file when rollback_fire() returns,
 * not at the next tick: a crash right after must not undo it at the reboot,
 * nor forget that the fleet has yet to hear of it.
 */
static void test_rollback_saved(void **state)
{
	struct fix *f = fix_of(state);
	struct shift_state st;
	char err[256];
	int i;

	for (i = 0; i < 3; i++)
		feed(f, SHIFT_SAMPLE_ERROR, now_mono_ns());
	assert_true(f->s->latched);
	memset(&st, 0, sizeof(st));
	assert_int_equal(state_load(f->a->state_path, &st, err, sizeof(err)), 0);
	assert_int_equal(st.n, 1);
	assert_string_equal(st.svc[0].name, "web");
	assert_true(st.svc[0].latched);
	assert_int_equal(st.svc[0].weight, 0);
	assert_true(st.svc[0].fleet_publish);
	assert_non_null(strstr(st.svc[0].reason, "consecutive_errors"));
	state_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_backlog_then_healthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_still_failing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_rate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_saved, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
