// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shiftd's side of the client-side next-hop table (agent/datapath/client_nh.c),
 * on a real BPF array of the datapath's layout: the entries of a deleted
 * interface are retired, stamped with the datapath's clock; everything else
 * stays (other interfaces', an entry a SYN is writing, one retired before,
 * the unused index 0), and a sweep asks only about published entries. Needs
 * root (a BPF map); skipped otherwise.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <cmocka.h>

#include <shift/maps.h>

#include "datapath/client_nh.h"
#include "ops/clock.h"

static int map_new(void)
{
	return bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_cl_nhs", sizeof(__u32),
			      sizeof(struct shift_client_nh), SHIFT_CLIENT_NHS, NULL);
}

static int setup(void **state)
{
	int fd = map_new();

	if (fd < 0) {
		print_message("BPF array: %s: skipping\n", strerror(-fd));
		*state = NULL;
		return 0;
	}
	*state = (void *)(intptr_t)(fd + 1);
	return 0;
}

static int teardown(void **state)
{
	if (*state)
		close((int)(intptr_t)*state - 1);
	return 0;
}

static int fd_of(void **state)
{
	if (!*state)
		skip();
	return (int)(intptr_t)*state - 1;
}

static void put(int fd, __u32 idx, __u32 ifindex, __u8 tag)
{
	struct shift_client_nh e = { .ifindex = ifindex };

	memset(e.dmac, tag, sizeof(e.dmac));
	memset(e.smac, tag + 1, sizeof(e.smac));
	assert_int_equal(bpf_map_update_elem(fd, &idx, &e, BPF_ANY), 0);
}

static __u32 ifindex_at(int fd, __u32 idx)
{
	struct shift_client_nh e;

	assert_int_equal(bpf_map_lookup_elem(fd, &idx, &e), 0);
	return e.ifindex;
}

/* idx 0: ifindex 7 (never a next hop's index, left alone), 1 and 200: 7,
 * 2: 9, 3: a SYN's claim, 4: retired before (at 0x40404040), 255: 11. */
static void fill(int fd)
{
	put(fd, 0, 7, 0x10);
	put(fd, 1, 7, 0x20);
	put(fd, 2, 9, 0x30);
	put(fd, 3, SHIFT_CLIENT_NH_BUSY, 0x40);
	put(fd, 4, SHIFT_CLIENT_NH_RETIRED, 0x40);
	put(fd, 200, 7, 0x50);
	put(fd, SHIFT_CLIENT_NHS - 1, 11, 0x60);
}

/* The datapath's retirement clock, now. */
static __u32 clock_units(void)
{
	return (__u32)(now_mono_ns() >> SHIFT_CLIENT_NH_CLOCK_SHIFT);
}

static void test_forget(void **state)
{
	int fd = fd_of(state);
	struct shift_client_nh e;
	__u32 retired = 99, idx = 1, t0, t1;

	fill(fd);
	t0 = clock_units();
	assert_int_equal(client_nhs_forget(fd, 7, &retired), 0);
	t1 = clock_units();
	assert_int_equal(retired, 2);
	/* Retired now, on the datapath's clock: no SYN claims it for a while. */
	assert_int_equal(bpf_map_lookup_elem(fd, &idx, &e), 0);
	assert_int_equal(e.ifindex, SHIFT_CLIENT_NH_RETIRED);
	assert_true(e.retired_at - t0 <= t1 - t0);
	assert_int_equal(ifindex_at(fd, 200), SHIFT_CLIENT_NH_RETIRED);
	assert_int_equal(ifindex_at(fd, 0), 7);
	assert_int_equal(ifindex_at(fd, 2), 9);
	assert_int_equal(ifindex_at(fd, 3), SHIFT_CLIENT_NH_BUSY);
	/* One retired before keeps its time. */
	idx = 4;
	assert_int_equal(bpf_map_lookup_elem(fd, &idx, &e), 0);
	assert_int_equal(e.ifindex, SHIFT_CLIENT_NH_RETIRED);
	assert_int_equal(e.retired_at, 0x40404040);
	assert_int_equal(ifindex_at(fd, SHIFT_CLIENT_NHS - 1), 11);
	/* Again: nothing left of 7. */
	assert_int_equal(client_nhs_forget(fd, 7, &retired), 0);
	assert_int_equal(retired, 0);
	/* Not an interface's index. */
	assert_int_equal(client_nhs_forget(fd, 0, &retired), -EINVAL);
	assert_int_equal(client_nhs_forget(fd, SHIFT_CLIENT_NH_BUSY, &retired), -EINVAL);
	assert_int_equal(client_nhs_forget(fd, SHIFT_CLIENT_NH_RETIRED, &retired), -EINVAL);
	assert_int_equal(ifindex_at(fd, 3), SHIFT_CLIENT_NH_BUSY);
}

struct alive_q {
	__u32 asked[SHIFT_CLIENT_NHS];
	unsigned int n;
	int answer_9; /* what alive() says of 9 */
};

/* 11 and 7 exist, 9 as answer_9 says. */
static int alive(void *arg, __u32 ifindex)
{
	struct alive_q *q = arg;

	if (q->n < SHIFT_CLIENT_NHS)
		q->asked[q->n++] = ifindex;
	return ifindex == 9 ? q->answer_9 : 1;
}

static void test_sweep(void **state)
{
	int fd = fd_of(state);
	struct alive_q q = { .answer_9 = 0 };
	__u32 retired = 99;
	unsigned int i;

	fill(fd);
	assert_int_equal(client_nhs_sweep(fd, alive, &q, &retired), 0);
	assert_int_equal(retired, 1);
	assert_int_equal(ifindex_at(fd, 2), SHIFT_CLIENT_NH_RETIRED);
	assert_int_equal(ifindex_at(fd, 1), 7);
	assert_int_equal(ifindex_at(fd, 3), SHIFT_CLIENT_NH_BUSY);
	/* Asked about the published entries only (1, 2, 200, 255), not about
	 * the free ones, the claim, the retired one or index 0. */
	assert_int_equal(q.n, 4);
	for (i = 0; i < q.n; i++)
		assert_true(q.asked[i] == 7 || q.asked[i] == 9 || q.asked[i] == 11);
	/* An interface netlink cannot vouch for either way is kept. */
	fill(fd);
	q.n = 0;
	q.answer_9 = -ETIMEDOUT;
	assert_int_equal(client_nhs_sweep(fd, alive, &q, &retired), 0);
	assert_int_equal(retired, 0);
	assert_int_equal(ifindex_at(fd, 2), 9);
	assert_int_equal(client_nhs_sweep(fd, NULL, NULL, &retired), -EINVAL);
}

/* What the metrics count: in use (published or being written), retired. */
static void test_count(void **state)
{
	int fd = fd_of(state);
	__u32 used = 99, retired = 99;

	fill(fd);
	assert_int_equal(client_nhs_count(fd, &used, &retired), 0);
	/* 1, 2, 3 (a claim), 200, 255; index 0 is not a next hop's */
	assert_int_equal(used, 5);
	assert_int_equal(retired, 1);
	assert_int_equal(client_nhs_forget(fd, 7, &retired), 0);
	assert_int_equal(client_nhs_count(fd, &used, &retired), 0);
	assert_int_equal(used, 3);
	assert_int_equal(retired, 3);
	assert_int_equal(client_nhs_count(-1, &used, &retired), -EBADF);
}

/* A map that is not there: the error, nothing retired. */
static void test_bad_fd(void **state)
{
	__u32 retired = 99;

	(void)state;
	assert_int_equal(client_nhs_forget(-1, 7, &retired), -EBADF);
	assert_int_equal(retired, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count, setup, teardown),
		cmocka_unit_test(test_bad_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
