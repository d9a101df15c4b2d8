// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connection-table evictions in steps: the walk (batched, and key by key)
 * deletes exactly the service's entries of the color asked, across steps and
 * with the table changing between them; the loop's jobs (analysis/evict.c)
 * go a chunk per turn, one job per turn, stop when the latch is lifted, hold
 * a removed service's id until done, and count what they evicted; a rollback
 * starts its eviction without walking the table itself. On real BPF LRU hash
 * maps (skipped where they cannot be made).
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
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <cmocka.h>

#include <shift/maps.h>

#include "agent.h"
#include "analysis/evict.h"
#include "analysis/rollback.h"

#define N4 20000
#define N6 600

struct fix {
	struct agent *a;
	struct service_rt *s[3];
	struct conf_service cs[3];
	struct shift_conf *conf;
	char dir[64];
};

static int mk(enum bpf_map_type t, const char *name, size_t k, size_t v, __u32 n)
{
	return bpf_map_create(t, name, k, v, n, NULL);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	int i, fd4, fd6, fdw;

	assert_non_null(f);
	fd4 = mk(BPF_MAP_TYPE_LRU_HASH, "test_flows4", sizeof(struct shift_flow_key4),
		 sizeof(struct shift_flow), 65536);
	fd6 = mk(BPF_MAP_TYPE_LRU_HASH, "test_flows6", sizeof(struct shift_flow_key6),
		 sizeof(struct shift_flow), 4096);
	fdw = mk(BPF_MAP_TYPE_ARRAY, "test_weights", sizeof(__u32), sizeof(__u32),
		 SHIFT_MAX_SERVICES);
	if (fd4 < 0 || fd6 < 0 || fdw < 0) {
		print_message("BPF maps: %s: skipping\n", strerror(-(fd4 < 0 ? fd4 : fd6)));
		if (fd4 >= 0)
			close(fd4);
		if (fd6 >= 0)
			close(fd6);
		if (fdw >= 0)
			close(fdw);
		free(f);
		*state = NULL;
		return 0;
	}
	f->a = calloc(1, sizeof(*f->a));
	f->conf = calloc(1, sizeof(*f->conf));
	assert_non_null(f->a);
	assert_non_null(f->conf);
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		f->a->maps.fd[i] = -1;
	f->a->maps.weight_cas_fd = -1;
	f->a->maps.fd[SHIFT_MAP_FLOWS4] = fd4;
	f->a->maps.fd[SHIFT_MAP_FLOWS6] = fd6;
	f->a->maps.fd[SHIFT_MAP_WEIGHTS] = fdw;
	f->a->conf = f->conf;
	snprintf(f->a->node, sizeof(f->a->node), "test");
	snprintf(f->dir, sizeof(f->dir), "/tmp/shift-test-evict.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->a->state_path, sizeof(f->a->state_path), "%s/state", f->dir);
	for (i = 1; i < 3; i++) {
		f->s[i] = calloc(1, sizeof(*f->s[i]));
		assert_non_null(f->s[i]);
		snprintf(f->cs[i].name, sizeof(f->cs[i].name), "svc%d", i);
		f->cs[i].rollback_evict = true;
		f->s[i]->id = i;
		f->s[i]->conf = &f->cs[i];
		f->s[i]->latched = true;
		f->a->svc[i] = f->s[i];
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char p[128];
	int i;

	if (!f)
		return 0;
	close(f->a->maps.fd[SHIFT_MAP_FLOWS4]);
	close(f->a->maps.fd[SHIFT_MAP_FLOWS6]);
	close(f->a->maps.fd[SHIFT_MAP_WEIGHTS]);
	snprintf(p, sizeof(p), "%s/state", f->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/state.lock", f->dir);
	unlink(p);
	rmdir(f->dir);
	for (i = 1; i < 3; i++)
		free(f->s[i]);
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

/* Entry i: service 1 + i % 2, green when i % 3 == 0 (blue otherwise). */
static void entry(__u32 i, struct shift_flow *v)
{
	memset(v, 0, sizeof(*v));
	v->service_id = 1 + i % 2;
	v->color = i % 3 == 0 ? SHIFT_GREEN : SHIFT_BLUE;
	v->backend_id = 10 + v->color;
	v->hash = i * 2654435761u;
}

static void key4(__u32 i, struct shift_flow_key4 *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr = htonl(0x0a000000u | i);
	k->daddr = htonl(0xc6126414u);
	k->sport = htons(1024 + i % 50000);
	k->dport = htons(80);
}

static void key6(__u32 i, struct shift_flow_key6 *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr[0] = htonl(0x20010db8u);
	k->saddr[3] = htonl(i);
	k->sport = htons(1024 + i);
	k->dport = htons(80);
}

static void fill(struct fix *f, __u32 from, __u32 n4, __u32 n6)
{
	struct shift_flow_key4 k4;
	struct shift_flow_key6 k6;
	struct shift_flow v;
	__u32 i;

	for (i = from; i < from + n4; i++) {
		key4(i, &k4);
		entry(i, &v);
		assert_int_equal(
			bpf_map_update_elem(f->a->maps.fd[SHIFT_MAP_FLOWS4], &k4, &v, BPF_ANY), 0);
	}
	for (i = from; i < from + n6; i++) {
		key6(i, &k6);
		entry(i, &v);
		assert_int_equal(
			bpf_map_update_elem(f->a->maps.fd[SHIFT_MAP_FLOWS6], &k6, &v, BPF_ANY), 0);
	}
}

/* Entries of (sid, color) in both tables (color < 0: any; sid 0: any). */
static __u64 count(struct fix *f, __u32 sid, int color)
{
	unsigned char key[sizeof(struct shift_flow_key6)], next[sizeof(key)];
	struct shift_flow v;
	__u64 n = 0;
	int t, fd;

	for (t = 0; t < 2; t++) {
		fd = f->a->maps.fd[t ? SHIFT_MAP_FLOWS6 : SHIFT_MAP_FLOWS4];
		if (bpf_map_get_next_key(fd, NULL, key))
			continue;
		for (;;) {
			if (bpf_map_lookup_elem(fd, key, &v) == 0 &&
			    (!sid || v.service_id == sid) && (color < 0 || v.color == color))
				n++;
			if (bpf_map_get_next_key(fd, key, next))
				break;
			memcpy(key, next, sizeof(key));
		}
	}
	return n;
}

/* Matching entries of 0..n: service 1, green. */
static __u64 want_green1(__u32 n4, __u32 n6)
{
	__u64 w = 0;
	__u32 i;

	for (i = 0; i < n4; i++)
		w += i % 2 == 0 && i % 3 == 0;
	for (i = 0; i < n6; i++)
		w += i % 2 == 0 && i % 3 == 0;
	return w;
}

static void walk_in_steps(void **state, bool key_walk)
{
	struct fix *f = fix_of(state);
	__u64 all = N4 + N6, green1 = want_green1(N4, N6), gone = 0;
	struct shift_flow_key4 k4;
	struct dp_evict e;
	int rc, steps = 0;
	__u32 i;

	fill(f, 0, N4, N6);
	assert_int_equal(count(f, 1, SHIFT_GREEN), green1);
	dp_evict_init(&e, 1, SHIFT_GREEN);
	e.key_walk = key_walk;
	do {
		rc = dp_evict_step(&f->a->maps, &e, 500);
		assert_true(rc >= 0);
		if (steps == 3) {
			/* The datapath meanwhile: a matching entry closes, new blue
			 * flows of service 1 arrive (weight 0: no new green one). */
			for (i = N4 - 60; i < N4; i++) {
				key4(i, &k4);
				if (i % 6 == 0 &&
				    !bpf_map_delete_elem(f->a->maps.fd[SHIFT_MAP_FLOWS4], &k4))
					gone++;
			}
		}
		steps++;
	} while (!rc && steps < 10000);
	assert_int_equal(rc, 1);
	/* The batched walk ran as such (every kernel since 5.6 has it). */
	assert_int_equal(e.key_walk, key_walk);
	/* In steps (a batch of 1024 at least, 500 asked): never all in one. */
	assert_true(steps > 10);
	assert_int_equal(e.evicted, green1 - gone);
	assert_int_equal(count(f, 1, SHIFT_GREEN), 0);
	assert_int_equal(count(f, 0, -1), all - green1);
	assert_int_equal(count(f, 1, SHIFT_BLUE), (N4 + 1) / 2 + (N6 + 1) / 2 - green1);
}

static void test_walk_batched(void **state)
{
	walk_in_steps(state, false);
}

static void test_walk_key_by_key(void **state)
{
	walk_in_steps(state, true);
}

static void test_flows_evict_whole(void **state)
{
	struct fix *f = fix_of(state);
	__u64 n = 0;

	fill(f, 0, N4, N6);
	assert_int_equal(dp_flows_evict(&f->a->maps, 2, -1, &n), 0);
	assert_int_equal(n, N4 / 2 + N6 / 2);
	assert_int_equal(count(f, 2, -1), 0);
	assert_int_equal(count(f, 1, -1), N4 / 2 + N6 / 2);
}

/* The loop's job: a chunk per turn; the counts; done, nothing left. */
static void test_job_chunks(void **state)
{
	struct fix *f = fix_of(state);
	__u64 green1 = want_green1(N4, N6);
	int turns = 0;

	fill(f, 0, N4, N6);
	evict_green_start(f->a, f->s[1]);
	assert_true(evict_pending(f->a));
	assert_false(evict_holds_id(f->a, 1));
	/* Started, not walked: the rollback's caller goes on at once. */
	assert_int_equal(count(f, 1, SHIFT_GREEN), green1);
	while (evict_pending(f->a) && turns < 1000) {
		/* 1 ns: one step of a turn, whatever this machine's speed. */
		evict_run(f->a, 1);
		turns++;
		if (turns == 1) {
			assert_true(evict_pending(f->a));
			assert_true(f->s[1]->last_evicted > 0);
			assert_true(f->s[1]->last_evicted < green1);
		}
	}
	assert_false(evict_pending(f->a));
	assert_true(turns > 1);
	assert_int_equal(f->s[1]->last_evicted, green1);
	assert_int_equal(count(f, 1, SHIFT_GREEN), 0);
	assert_int_equal(count(f, 0, -1), N4 + N6 - green1);
}

/* Two services rolled back: their chunks take turns, one per loop turn. */
static void test_job_turns(void **state)
{
	struct fix *f = fix_of(state);
	__u64 a1, a2, green;
	int turns = 0;

	fill(f, 0, N4, N6);
	green = count(f, 0, SHIFT_GREEN);
	evict_green_start(f->a, f->s[1]);
	evict_green_start(f->a, f->s[2]);
	evict_run(f->a, 1);
	a1 = f->s[1]->last_evicted;
	a2 = f->s[2]->last_evicted;
	assert_true((a1 > 0) != (a2 > 0));
	evict_run(f->a, 1);
	assert_true(f->s[1]->last_evicted > 0 && f->s[2]->last_evicted > 0);
	assert_true(f->s[1]->last_evicted == a1 || f->s[2]->last_evicted == a2);
	while (evict_pending(f->a) && turns++ < 1000)
		evict_run(f->a, 1);
	assert_int_equal(count(f, 0, SHIFT_GREEN), 0);
	assert_int_equal(f->s[1]->last_evicted + f->s[2]->last_evicted, green);
}

/* The latch lifted mid-walk: green takes connections again, the walk stops. */
static void test_job_latch_lifted(void **state)
{
	struct fix *f = fix_of(state);
	__u64 green1 = want_green1(N4, N6), done;

	fill(f, 0, N4, N6);
	evict_green_start(f->a, f->s[1]);
	evict_run(f->a, 1);
	done = f->s[1]->last_evicted;
	assert_true(done > 0 && done < green1);
	f->s[1]->latched = false;
	evict_run(f->a, 1);
	assert_false(evict_pending(f->a));
	assert_int_equal(f->s[1]->last_evicted, done);
	assert_int_equal(count(f, 1, SHIFT_GREEN), green1 - done);
}

/* A removed service: every color goes, its id held until then; a green walk
 * running for it becomes that. */
static void test_job_removed(void **state)
{
	struct fix *f = fix_of(state);
	int turns = 0;

	fill(f, 0, N4, N6);
	evict_green_start(f->a, f->s[2]);
	evict_run(f->a, 1);
	f->a->svc[2] = NULL;
	evict_removed_start(f->a, 2, "svc2");
	assert_true(evict_holds_id(f->a, 2));
	assert_false(evict_holds_id(f->a, 1));
	while (evict_pending(f->a) && turns++ < 1000)
		evict_run(f->a, 1);
	assert_false(evict_holds_id(f->a, 2));
	assert_int_equal(count(f, 2, -1), 0);
	assert_int_equal(count(f, 1, -1), N4 / 2 + N6 / 2);
	f->a->svc[2] = f->s[2];
}

/* What is left at exit is done at once. */
static void test_job_finish(void **state)
{
	struct fix *f = fix_of(state);

	fill(f, 0, N4, N6);
	evict_green_start(f->a, f->s[1]);
	evict_removed_start(f->a, 2, "svc2");
	evict_finish(f->a);
	assert_false(evict_pending(f->a));
	assert_int_equal(count(f, 1, SHIFT_GREEN), 0);
	assert_int_equal(count(f, 2, -1), 0);
	assert_int_equal(f->s[1]->last_evicted, want_green1(N4, N6));
}

/* rollback_fire: the weight first, the eviction started, not walked. */
static void test_rollback_starts(void **state)
{
	struct fix *f = fix_of(state);
	__u64 green1 = want_green1(N4, N6);
	__u32 key = 1, word = 0;
	int turns = 0;

	fill(f, 0, N4, N6);
	f->s[1]->latched = false;
	assert_int_equal(rollback_fire(f->a, f->s[1], TRIGGER_CONSECUTIVE_ERRORS, "test", 0), 0);
	assert_int_equal(bpf_map_lookup_elem(f->a->maps.fd[SHIFT_MAP_WEIGHTS], &key, &word), 0);
	assert_int_equal(word, SHIFT_WEIGHT_LATCHED);
	assert_true(evict_pending(f->a));
	assert_int_equal(count(f, 1, SHIFT_GREEN), green1);
	while (evict_pending(f->a) && turns++ < 1000)
		evict_run(f->a, EVICT_CHUNK_NS);
	assert_int_equal(f->s[1]->last_evicted, green1);
	assert_int_equal(count(f, 1, SHIFT_GREEN), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walk_batched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_key_by_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flows_evict_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_turns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_latch_lifted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_starts, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
