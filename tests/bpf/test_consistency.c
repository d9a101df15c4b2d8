// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Consistent hashing through the real program: with 10 backends in the blue
 * pool, removing one (dp_pool_set with the other 9) must move every new flow
 * that was on it and at most 1 % of the others; putting it back must restore
 * the original choice of every flow (the ring depends on the set only).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define CONS_FLOWS 20000u
#define CONS_POOL 10u
#define CONS_REMOVED 3u

#define CONS_BE(id)                                                                     \
	{                                                                               \
		id, 0, SHIFT_BLUE, 4, IPPROTO_TCP, { 10, 1, 3, 1 + id }, 8080, true, 0, \
		{                                                                       \
			0x02, 0xbe, 0, 0, 3, id                                         \
		}                                                                       \
	}

static const struct topo_backend cons_bes[CONS_POOL] = {
	CONS_BE(0), CONS_BE(1), CONS_BE(2), CONS_BE(3), CONS_BE(4),
	CONS_BE(5), CONS_BE(6), CONS_BE(7), CONS_BE(8), CONS_BE(9),
};

static int cons_setup(struct tctx *t, struct fixture *f)
{
	static const struct topo_service svc = { 0, 4, IPPROTO_TCP, VIP4, 80, 0 };
	__u32 ids[CONS_POOL], i;

	if (!ASSERT_OK(t, harness_add_service(&f->h, &svc), "service"))
		return -1;
	for (i = 0; i < CONS_POOL; i++) {
		ids[i] = i;
		if (!ASSERT_OK(t, harness_add_backend(&f->h, &cons_bes[i]), "backend"))
			return -1;
	}
	if (!ASSERT_OK(t, harness_pool(&f->h, 0, SHIFT_BLUE, ids, CONS_POOL), "pool of 10"))
		return -1;
	return 0;
}

static void flow_spec(struct pkt_spec *s, __u32 i)
{
	static const struct pkt_spec base = PKT4(CL4, VIP4, IPPROTO_TCP, 1, 80, .payload = 0);
	__u32 a = (100u << 24 | 96u << 16) + i * 3;

	*s = base;
	s->saddr[0] = (__u8)(a >> 24);
	s->saddr[1] = (__u8)(a >> 16);
	s->saddr[2] = (__u8)(a >> 8);
	s->saddr[3] = (__u8)a;
	s->sport = (__u16)(30000 + i % 30000);
}

/* New flows: send every flow, record its backend, then forget the flows. */
static __u32 steer_all(struct tctx *t, struct harness *h, int *be)
{
	struct pkt_spec s;
	__u32 i, verdict, bad = 0;
	int err;

	for (i = 0; i < CONS_FLOWS; i++) {
		flow_spec(&s, i);
		err = harness_steer(h, H_CLIENT, &s, cons_bes, CONS_POOL, &be[i], &verdict);
		if (err || verdict != XDP_TX || be[i] < 0) {
			if (bad++ < 3)
				test_failf(t, __FILE__, __LINE__,
					   "flow %u: err %d verdict %u be %d", i, err, verdict,
					   be[i]);
			continue;
		}
		/* A bare SYN leaves no entry (it is steered statelessly); any other
		 * packet does, and it must go for the next round to be a new flow. */
		err = harness_flow_del(h, &s);
		if (err && err != -ENOENT && bad++ < 3)
			test_failf(t, __FILE__, __LINE__, "flow %u: deleting its entry: %s", i,
				   strerror(-err));
	}
	return bad;
}

TEST(consistency)
{
	static const char *const sub_remove = "removing 1 of 10 backends moves only its flows";
	static const char *const sub_restore = "putting it back restores every flow's backend";
	struct fixture f = {
		.seed = H_SEED, .flows4 = 1u << 16, .flows6 = 1024, .setup = cons_setup
	};
	int *before = NULL, *after = NULL, *again = NULL;
	__u32 ids[CONS_POOL], i, n = 0, on_removed = 0, others = 0, moved = 0, stayed_removed = 0;
	struct harness *h;

	if (!test_would_run(t, sub_remove) && !test_would_run(t, sub_restore))
		return;
	h = fixture_get(t, &f);
	before = calloc(CONS_FLOWS, sizeof(int));
	after = calloc(CONS_FLOWS, sizeof(int));
	again = calloc(CONS_FLOWS, sizeof(int));
	if (!h || !ASSERT_TRUE(t, before && after && again, "calloc"))
		goto out;
	if (!ASSERT_OK(t, dp_weight_set(&h->m, 0, 0), "weight 0") ||
	    !ASSERT_EQ(t, steer_all(t, h, before), 0, "flows on 10 backends"))
		goto out;

	if (test_sub(t, "%s", sub_remove)) {
		for (i = 0; i < CONS_POOL; i++)
			if (i != CONS_REMOVED)
				ids[n++] = i;
		if (!ASSERT_OK(t, harness_pool(h, 0, SHIFT_BLUE, ids, n), "pool of 9") ||
		    !ASSERT_EQ(t, steer_all(t, h, after), 0, "flows on 9 backends"))
			goto out;
		for (i = 0; i < CONS_FLOWS; i++) {
			if (before[i] == (int)CONS_REMOVED) {
				on_removed++;
				stayed_removed += after[i] == (int)CONS_REMOVED;
			} else {
				others++;
				moved += after[i] != before[i];
			}
		}
		test_note(t,
			  "consistency: %u of %u flows were on the removed backend (all must move: "
			  "%u did not); %u of the other %u moved = %.3f %% (limit 1 %%)",
			  on_removed, CONS_FLOWS, stayed_removed, moved, others,
			  100.0 * moved / (others ? others : 1));
		ASSERT_EQ(t, stayed_removed, 0, "flows still sent to the removed backend");
		ASSERT_TRUE(t, on_removed > CONS_FLOWS / 20,
			    "the removed backend had ~10 % of flows");
		ASSERT_LE(t, 100.0 * moved / (others ? others : 1), 1.0,
			  "% of other flows that moved");
	}
	if (test_sub(t, "%s", sub_restore)) {
		__u32 diff = 0;

		for (i = 0; i < CONS_POOL; i++)
			ids[i] = CONS_POOL - 1 - i; /* another order: the ring depends on the set */
		if (!ASSERT_OK(t, harness_pool(h, 0, SHIFT_BLUE, ids, CONS_POOL), "pool of 10") ||
		    !ASSERT_EQ(t, steer_all(t, h, again), 0, "flows on 10 backends again"))
			goto out;
		for (i = 0; i < CONS_FLOWS; i++)
			diff += again[i] != before[i];
		ASSERT_EQ(t, diff, 0, "flows whose backend differs from the original");
	}
out:
	free(before);
	free(after);
	free(again);
	fixture_put(&f);
}
