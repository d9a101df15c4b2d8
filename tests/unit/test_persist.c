// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The state file's writer thread (ops/persist_writer.c) as ops/persist.c uses
 * it: an asynchronous save returns while the file is locked (by this test,
 * as shiftctl would hold it), the notify command waits for the save and runs
 * after it, a newer state replaces one still waiting, a failed save is
 * retried as before, and a stop writes what waits and runs what waited.
 * Real files in a temporary directory, a real thread and a real child.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "agent.h"
#include "ops/persist_writer.h"
#include "ops/state.h"

struct fixture {
	char dir[64];
	char path[96]; /* the state file */
	char hook[96], hook_log[96];
	struct conf_service cs;
	struct shift_conf conf;
	struct service_rt *s;
	struct agent *a;
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	FILE *h;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/shift-test-persist.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state", f->dir);
	snprintf(f->hook, sizeof(f->hook), "%s/hook.sh", f->dir);
	snprintf(f->hook_log, sizeof(f->hook_log), "%s/hook.log", f->dir);
	/* The hook says what it was told, and whether the state file was there. */
	h = fopen(f->hook, "w");
	assert_non_null(h);
	fprintf(h,
		"#!/bin/sh\n[ -f %s ] && on=disk || on=none\n"
		"echo \"$SHIFT_SERVICE $SHIFT_REASON $on\" >> %s\n",
		f->path, f->hook_log);
	assert_int_equal(fclose(h), 0);
	assert_int_equal(chmod(f->hook, 0700), 0);

	f->a = calloc(1, sizeof(*f->a));
	f->s = calloc(1, sizeof(*f->s));
	assert_non_null(f->a);
	assert_non_null(f->s);
	snprintf(f->cs.name, sizeof(f->cs.name), "web");
	snprintf(f->conf.notify_command, sizeof(f->conf.notify_command), "%s", f->hook);
	f->s->id = 1;
	f->s->conf = &f->cs;
	f->s->weight = 1000;
	f->a->svc[1] = f->s;
	f->a->conf = &f->conf;
	snprintf(f->a->state_path, sizeof(f->a->state_path), "%s", f->path);
	*state = f;
	return 0;
}

static void rm_f(const char *dir, const char *name)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	persist_stop(f->a);
	rm_f(f->dir, "state");
	rm_f(f->dir, "state.lock");
	rm_f(f->dir, "hook.sh");
	rm_f(f->dir, "hook.log");
	rmdir(f->dir);
	free(f->s);
	free(f->a);
	free(f);
	return 0;
}

/* The weight the state file holds for web, or -1 without a file. */
static long file_weight(const struct fixture *f)
{
	struct shift_state st = { 0 };
	struct state_service *p;
	char err[256];
	long w = -1;

	if (state_load(f->path, &st, err, sizeof(err)))
		return -1;
	p = state_find(&st, "web");
	if (p)
		w = p->weight;
	state_free(&st);
	return w;
}

/* The hook's log, "" when it has not run; at most 2 s for it to appear. */
static void hook_log(const struct fixture *f, char *buf, size_t len, bool wait)
{
	FILE *in;
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < (wait ? 200 : 1); i++) {
		in = fopen(f->hook_log, "r");
		if (in) {
			n = fread(buf, 1, len - 1, in);
			fclose(in);
			buf[n] = '\0';
			if (n && buf[n - 1] == '\n')
				return;
		}
		if (wait)
			sleep_ms(10);
	}
}

/* The loop's side: collect outcomes until every save handed over is done (2 s at most). */
static void collect_all(struct agent *a)
{
	int i;

	for (i = 0; i < 200 && a->persist_seen < a->persist_gen; i++) {
		persist_collect(a);
		if (a->persist_seen < a->persist_gen)
			sleep_ms(10);
	}
	assert_true(a->persist_seen >= a->persist_gen);
}

static void hook(struct fixture *f, const char *reason)
{
	char svc[80], why[80];
	char *envp[] = { svc, why, NULL };

	snprintf(svc, sizeof(svc), "SHIFT_SERVICE=%s", f->cs.name);
	snprintf(why, sizeof(why), "SHIFT_REASON=%s", reason);
	persist_spawn_after(f->a, f->conf.notify_command, envp);
}

/* Without the thread (at start, in tools): written in place, the hook at once. */
static void test_inline(void **state)
{
	struct fixture *f = *state;
	char log[256];

	assert_int_equal(persist_save(f->a), 0);
	assert_int_equal(file_weight(f), 1000);
	f->s->weight = 2000;
	persist_save_async(f->a);
	assert_int_equal(file_weight(f), 2000);
	hook(f, "inline");
	hook_log(f, log, sizeof(log), true);
	assert_string_equal(log, "web inline disk\n");
}

/*
 * The save a rollback hands over returns while the file's lock is held (as
 * shiftctl may hold it for up to 2 s); the hook waits for the save; once the
 * lock goes, the file is written, then the hook runs.
 */
static void test_async_then_hook(void **state)
{
	struct fixture *f = *state;
	char err[256], log[256];
	struct timespec t0, t1;
	double ms;
	int lock = -1;

	assert_int_equal(persist_start(f->a), 0);
	assert_true(persist_fd(f->a) >= 0);
	assert_int_equal(state_lock(f->path, &lock, err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	persist_save_async(f->a);
	hook(f, "async");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	/* The writer waits on the lock; the loop does not (it would for 2 s). */
	assert_true(ms < 100.0);
	sleep_ms(100);
	persist_collect(f->a);
	assert_int_equal(file_weight(f), -1);
	hook_log(f, log, sizeof(log), false);
	assert_string_equal(log, "");
	assert_true(f->a->persist_seen < f->a->persist_gen);

	state_unlock(lock);
	collect_all(f->a);
	assert_false(f->a->persist_failing);
	assert_int_equal(file_weight(f), 1000);
	hook_log(f, log, sizeof(log), true);
	assert_string_equal(log, "web async disk\n");
}

/* States handed over while one is being written: only the newest waits, and is written. */
static void test_newest_wins(void **state)
{
	struct fixture *f = *state;
	__u64 written, superseded;
	char err[256];
	int lock = -1, i;

	assert_int_equal(persist_start(f->a), 0);
	assert_int_equal(state_lock(f->path, &lock, err, sizeof(err)), 0);
	for (i = 1; i <= 5; i++) {
		f->s->weight = (__u32)i * 1000;
		persist_save_async(f->a);
		if (i == 1)
			sleep_ms(50); /* the writer takes the first, and waits on the lock */
	}
	state_unlock(lock);
	collect_all(f->a);
	assert_int_equal(file_weight(f), 5000);
	persist_writer_counts(f->a->persist_w, &written, &superseded);
	/* The first (taken before the lock went), then the fifth; 2 to 4 never written. */
	assert_int_equal(written, 2);
	assert_int_equal(superseded, 3);
	/* An operator's save returns with the state on disk. */
	f->s->weight = 7000;
	assert_int_equal(persist_save(f->a), 0);
	assert_int_equal(file_weight(f), 7000);
}

/* A save that fails (no directory) is retried from the tick, as it was on the
 * loop; the hook still runs: the rollback it announces is in the maps. */
static void test_failure(void **state)
{
	struct fixture *f = *state;
	char log[256];

	snprintf(f->a->state_path, sizeof(f->a->state_path), "%s/gone/state", f->dir);
	assert_int_equal(persist_start(f->a), 0);
	persist_save_async(f->a);
	hook(f, "failed");
	collect_all(f->a);
	assert_true(f->a->persist_failing);
	assert_true(f->a->persist_dirty);
	hook_log(f, log, sizeof(log), true);
	assert_string_equal(log, "web failed none\n");
	/* The synchronous save reports it to its caller (shiftctl's warning). */
	assert_true(persist_save(f->a) < 0);
	/* The directory back: the next save recovers. */
	snprintf(f->a->state_path, sizeof(f->a->state_path), "%s", f->path);
	persist_stop(f->a);
	assert_int_equal(persist_start(f->a), 0);
	persist_save_async(f->a);
	collect_all(f->a);
	assert_false(f->a->persist_failing);
	assert_int_equal(file_weight(f), 1000);
}

/* shiftd's exit: what was handed over is written, and what waited for it runs. */
static void test_stop_writes(void **state)
{
	struct fixture *f = *state;
	char err[256], log[256];
	int lock = -1;

	assert_int_equal(persist_start(f->a), 0);
	assert_int_equal(state_lock(f->path, &lock, err, sizeof(err)), 0);
	f->s->weight = 4200;
	persist_save_async(f->a);
	hook(f, "stop");
	sleep_ms(50);
	state_unlock(lock);
	persist_stop(f->a);
	assert_null(f->a->persist_w);
	assert_int_equal(file_weight(f), 4200);
	hook_log(f, log, sizeof(log), true);
	assert_string_equal(log, "web stop disk\n");
	assert_null(f->a->persist_jobs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_then_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newest_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_writes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
