// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Stickiness: flows established at 10 % stay on their backend when the weight
 * goes to 90 % and then to 0; new flows follow the new weight; raising the
 * weight from a to b moves exactly the new flows whose hash slice lies in
 * [a, b), checked flow by flow against shift_flow_hash4() in userspace.
 * Pools of 4 blue and 4 green backends, so "same backend" is a real check.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <shift/flow_hash.h>
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define STICKY_FLOWS 20000u
#define POOL 4

#define B4(c, n)            \
	{                   \
		10, 1, c, n \
	}
#define STICKY_BE(id, color, c, n)                                     \
	{                                                              \
		id, 0, color, 4, IPPROTO_TCP, B4(c, n), 8080, true, 0, \
		{                                                      \
			0x02, 0xbe, 0, 0, c, n                         \
		}                                                      \
	}

static const struct topo_backend sticky_bes[2 * POOL] = {
	STICKY_BE(0, SHIFT_BLUE, 1, 1),	 STICKY_BE(1, SHIFT_BLUE, 1, 2),
	STICKY_BE(2, SHIFT_BLUE, 1, 3),	 STICKY_BE(3, SHIFT_BLUE, 1, 4),
	STICKY_BE(4, SHIFT_GREEN, 2, 1), STICKY_BE(5, SHIFT_GREEN, 2, 2),
	STICKY_BE(6, SHIFT_GREEN, 2, 3), STICKY_BE(7, SHIFT_GREEN, 2, 4),
};

static const struct topo_service sticky_svc = { 0, 4, IPPROTO_TCP, VIP4, 80, 0 };

static int sticky_topology(struct tctx *t, struct fixture *f)
{
	struct harness *h = &f->h;
	__u32 blue[POOL] = { 0, 1, 2, 3 }, green[POOL] = { 4, 5, 6, 7 }, i;

	if (!ASSERT_OK(t, harness_add_service(h, &sticky_svc), "service"))
		return -1;
	for (i = 0; i < 2 * POOL; i++)
		if (!ASSERT_OK(t, harness_add_backend(h, &sticky_bes[i]), "backend"))
			return -1;
	if (!ASSERT_OK(t, harness_pool(h, 0, SHIFT_BLUE, blue, POOL), "blue pool") ||
	    !ASSERT_OK(t, harness_pool(h, 0, SHIFT_GREEN, green, POOL), "green pool"))
		return -1;
	return 0;
}

/* Flow i of set `set`: distinct tuples across sets. */
static void flow_spec(struct pkt_spec *s, __u32 set, __u32 i, __u8 flags)
{
	static const struct pkt_spec base = PKT4(CL4, VIP4, IPPROTO_TCP, 1, 80, .payload = 0);
	__u32 a = (172u << 24 | 16u << 16) + set * 0x10000u + i;

	*s = base;
	s->saddr[0] = (__u8)(a >> 24);
	s->saddr[1] = (__u8)(a >> 16);
	s->saddr[2] = (__u8)(a >> 8);
	s->saddr[3] = (__u8)a;
	s->sport = (__u16)(20000 + i % 40000);
	s->tcp_flags = flags;
}

/* Send every flow of a set; fill be[i] (index into sticky_bes). Returns failures. */
static __u32 send_set(struct tctx *t, struct harness *h, __u32 set, __u8 flags, int *be)
{
	struct pkt_spec s;
	__u32 i, verdict, bad = 0;
	int err;

	for (i = 0; i < STICKY_FLOWS; i++) {
		flow_spec(&s, set, i, flags);
		err = harness_steer(h, H_CLIENT, &s, sticky_bes, 2 * POOL, &be[i], &verdict);
		/* A SYN opens a flow only with the client's first ACK of the
		 * backend's SYN-ACK (a bare SYN leaves no entry): it must follow the
		 * SYN. */
		if (!err && flags == TH_SYN && verdict == XDP_TX && be[i] >= 0) {
			int ack_be;

			s.tcp_flags = TH_ACK;
			s.seq++;
			err = harness_synack(h, H_BACKEND, &s, &sticky_bes[be[i]], &verdict);
			if (!err)
				err = harness_steer(h, H_CLIENT, &s, sticky_bes, 2 * POOL, &ack_be,
						    &verdict);
			if (!err && ack_be != be[i])
				be[i] = -1;
		}
		if (err || verdict != XDP_TX || be[i] < 0) {
			if (bad++ < 3)
				test_failf(t, __FILE__, __LINE__,
					   "set %u flow %u: err %d verdict %u backend %d", set, i,
					   err, verdict, be[i]);
		}
	}
	return bad;
}

/* New flows of `set` at `weight`: each color must match the hash rule. */
static void check_new(struct tctx *t, struct harness *h, __u32 set, __u32 weight, const int *be)
{
	__u32 i, green = 0, wrong = 0;
	struct pkt_spec s;

	for (i = 0; i < STICKY_FLOWS; i++) {
		bool g;

		if (be[i] < 0)
			continue;
		flow_spec(&s, set, i, TH_SYN);
		g = shift_slice(harness_hash(&s, h->seed)) < weight;
		green += sticky_bes[be[i]].color == SHIFT_GREEN;
		wrong += (sticky_bes[be[i]].color == SHIFT_GREEN) != g;
	}
	test_note(t, "%u new flows at %.2f %%: %u green (%.2f %%), %u off the hash rule",
		  STICKY_FLOWS, weight / 100.0, green, 100.0 * green / STICKY_FLOWS, wrong);
	ASSERT_EQ(t, wrong, 0, "new flows whose color disagrees with the hash rule");
}

static void check_same(struct tctx *t, const int *was, const int *now, const char *what)
{
	__u32 i, moved = 0;

	for (i = 0; i < STICKY_FLOWS; i++)
		if (was[i] != now[i] && moved++ < 3)
			test_failf(t, __FILE__, __LINE__, "%s: flow %u moved from backend %d to %d",
				   what, i, was[i], now[i]);
	test_note(t, "%s: %u of %u established flows changed backend", what, moved, STICKY_FLOWS);
	ASSERT_EQ(t, moved, 0, what);
}

TEST(sticky)
{
	int *a0 = NULL, *a1 = NULL, *b0 = NULL, *c0 = NULL, *d0 = NULL, *d1 = NULL;
	static const char *const subs[] = {
		"flows established at 10 % follow the hash rule",
		"at 90 %: established flows stay, new flows follow 90 %",
		"then at 0 %: established flows stay, new flows all blue",
		"raising 10 % -> 20 % moves only new flows in the [10 %, 20 %) slice",
	};
	struct fixture f = {
		.seed = H_SEED, .flows4 = 1u << 17, .flows6 = 1024, .setup = sticky_topology
	};
	struct harness *hp;
	__u32 i, lo = 1000, hi = 2000;
	bool any = false;

	for (i = 0; i < 4; i++)
		any |= test_would_run(t, subs[i]);
	if (!any)
		return;
	hp = fixture_get(t, &f);
	if (!hp)
		return;
	a0 = calloc(STICKY_FLOWS, sizeof(int));
	a1 = calloc(STICKY_FLOWS, sizeof(int));
	b0 = calloc(STICKY_FLOWS, sizeof(int));
	c0 = calloc(STICKY_FLOWS, sizeof(int));
	d0 = calloc(STICKY_FLOWS, sizeof(int));
	d1 = calloc(STICKY_FLOWS, sizeof(int));
	if (!ASSERT_TRUE(t, a0 && a1 && b0 && c0 && d0 && d1, "calloc"))
		goto out;

	/* Set A, established at 10 %: every subtest below relies on it. */
	if (!ASSERT_OK(t, dp_weight_set(&hp->m, 0, 1000), "weight 10 %") ||
	    !ASSERT_EQ(t, send_set(t, hp, 0, TH_SYN, a0), 0, "set A at 10 %"))
		goto out;
	if (test_sub(t, "%s", subs[0]))
		check_new(t, hp, 0, 1000, a0);
	if (test_sub(t, "%s", subs[1])) {
		ASSERT_OK(t, dp_weight_set(&hp->m, 0, 9000), "weight 90 %");
		ASSERT_EQ(t, send_set(t, hp, 0, TH_ACK, a1), 0, "set A again");
		check_same(t, a0, a1, "set A at 90 %");
		ASSERT_EQ(t, send_set(t, hp, 1, TH_SYN, b0), 0, "set B at 90 %");
		check_new(t, hp, 1, 9000, b0);
	}
	if (test_sub(t, "%s", subs[2])) {
		ASSERT_OK(t, dp_weight_set(&hp->m, 0, 0), "weight 0");
		ASSERT_EQ(t, send_set(t, hp, 0, TH_ACK, a1), 0, "set A at 0");
		check_same(t, a0, a1, "set A at 0 %");
		ASSERT_EQ(t, send_set(t, hp, 2, TH_SYN, c0), 0, "set C at 0");
		check_new(t, hp, 2, 0, c0);
	}
	if (test_sub(t, "%s", subs[3])) {
		__u32 moved = 0, in_slice = 0, wrong = 0, ring_wrong = 0;
		struct pkt_spec s;
		int err;

		/* Set D as new flows at a, then (table emptied) as new flows at b. */
		ASSERT_OK(t, dp_weight_set(&hp->m, 0, lo), "weight a");
		ASSERT_EQ(t, send_set(t, hp, 3, TH_SYN, d0), 0, "set D at a");
		check_new(t, hp, 3, lo, d0);
		for (i = 0; i < STICKY_FLOWS; i++) {
			flow_spec(&s, 3, i, TH_SYN);
			/* A bare SYN leaves no entry: nothing to forget then. */
			err = harness_flow_del(hp, &s);
			ASSERT_TRUE(t, !err || err == -ENOENT, "forget flow");
		}
		ASSERT_OK(t, dp_weight_set(&hp->m, 0, hi), "weight b");
		ASSERT_EQ(t, send_set(t, hp, 3, TH_SYN, d1), 0, "set D at b");
		for (i = 0; i < STICKY_FLOWS; i++) {
			__u32 hh, slot, ring_be = ~0u;
			int sl;

			flow_spec(&s, 3, i, TH_SYN);
			hh = harness_hash(&s, hp->seed);
			sl = shift_slice(hh);
			in_slice += sl >= (int)lo && sl < (int)hi;
			if (d0[i] < 0 || d1[i] < 0) {
				wrong++; /* already reported by send_set */
				continue;
			}
			if (d0[i] != d1[i]) {
				moved++;
				/* Moved: must be in the slice, and blue -> green. */
				if (!(sl >= (int)lo && sl < (int)hi) ||
				    sticky_bes[d0[i]].color != SHIFT_BLUE ||
				    sticky_bes[d1[i]].color != SHIFT_GREEN)
					wrong++;
			} else if (sl >= (int)lo && sl < (int)hi) {
				wrong++; /* in the slice but did not move */
			}
			/* Within its pool, the backend is the ring's choice for h. */
			slot = shift_ring_slot(hh);
			if (d1[i] >= 0 &&
			    (dp_ring_get(&hp->m, 0, sticky_bes[d1[i]].color, slot, &ring_be) ||
			     ring_be != sticky_bes[d1[i]].id))
				ring_wrong++;
		}
		test_note(t,
			  "%u of %u flows moved; %u have a slice in [%u, %u); %u disagree; "
			  "%u off the ring",
			  moved, STICKY_FLOWS, in_slice, lo, hi, wrong, ring_wrong);
		ASSERT_EQ(t, wrong, 0, "flows moved outside [a, b) or not moved inside it");
		ASSERT_EQ(t, moved, in_slice, "moved == flows in the slice");
		ASSERT_EQ(t, ring_wrong, 0, "backend = rings[color][shift_ring_slot(h)]");
		ASSERT_TRUE(t, in_slice > STICKY_FLOWS / 20, "the slice is populated (~10 %)");
	}
out:
	free(a0);
	free(a1);
	free(b0);
	free(c0);
	free(d0);
	free(d1);
	fixture_put(&f);
}
