// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Split accuracy: 100,000 distinct new flows per weight through the real
 * shift_xdp_client; the color is read from the backend the output packet is
 * addressed to (blue and green pools hold distinct backends). The green share
 * must be within +-0.5 percentage points of the weight (exact at 0 and 100 %),
 * and every single flow's color must match the userspace rule
 * shift_slice(shift_flow_hash4(tuple, seed)) < weight.
 */
#include <math.h>
#include <string.h>

#include <shift/flow_hash.h>
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define SPLIT_FLOWS 100000u

static void flow_spec(struct pkt_spec *s, __u32 round, __u32 i)
{
	static const struct pkt_spec base = PKT4(CL4, VIP4, IPPROTO_TCP, 1, 80, .payload = 0);
	__u32 a = (100u << 24 | 64u << 16) + (round << 17) + i; /* 100.64.0.0/10, per round */

	*s = base;
	s->saddr[0] = (__u8)(a >> 24);
	s->saddr[1] = (__u8)(a >> 16);
	s->saddr[2] = (__u8)(a >> 8);
	s->saddr[3] = (__u8)a;
	s->sport = (__u16)(1024 + (i * 7919u) % 64000);
}

TEST(split)
{
	static const __u32 weights[] = { 0, 1, 100, 2500, 5000, 10000 };
	const struct topo_backend *bes = &topo_backends[0]; /* 0: blue, 1: green of svc 0 */
	struct fixture f = { .seed = H_SEED, .flows4 = 1u << 17, .flows6 = 1024 };
	struct harness *h;
	size_t w;

	for (w = 0; w < sizeof(weights) / sizeof(weights[0]); w++) {
		__u32 weight = weights[w], i, green = 0, wrong = 0, lost = 0, verdict;
		double share, dev;
		struct pkt_spec s;
		int idx, err;

		if (!test_sub(t, "weight %u bp over %u flows", weight, SPLIT_FLOWS))
			continue;
		h = fixture_get(t, &f);
		if (!h || !ASSERT_OK(t, dp_weight_set(&h->m, SVC_V4_TCP, weight), "dp_weight_set"))
			continue;
		for (i = 0; i < SPLIT_FLOWS; i++) {
			bool want_green;

			flow_spec(&s, (__u32)w, i);
			err = harness_steer(h, H_CLIENT, &s, bes, 2, &idx, &verdict);
			if (err || verdict != XDP_TX || idx < 0) {
				if (lost++ < 3)
					test_failf(t, __FILE__, __LINE__,
						   "flow %u: err %d verdict %u backend %d", i, err,
						   verdict, idx);
				continue;
			}
			want_green = shift_slice(harness_hash(&s, h->seed)) < weight;
			green += idx == 1;
			if ((idx == 1) != want_green && wrong++ < 3)
				test_failf(t, __FILE__, __LINE__,
					   "flow %u (slice %d): went %s, the rule says %s", i,
					   shift_slice(harness_hash(&s, h->seed)),
					   idx ? "green" : "blue", want_green ? "green" : "blue");
		}
		share = 100.0 * green / SPLIT_FLOWS;
		dev = share - weight / 100.0;
		test_note(t,
			  "weight %5.2f %%: green %6u of %u = %7.3f %% (%+.3f pp), %u flows off "
			  "the hash rule",
			  weight / 100.0, green, SPLIT_FLOWS, share, dev, wrong);
		ASSERT_EQ(t, lost, 0, "flows not forwarded to a pool backend");
		ASSERT_EQ(t, wrong, 0, "flows whose color disagrees with the userspace rule");
		if (weight == 0 || weight == SHIFT_WEIGHT_MAX)
			ASSERT_EQ(t, green, weight ? SPLIT_FLOWS : 0, "exact share at 0 / 100 %");
		else
			ASSERT_LE(t, fabs(dev), 0.5, "|green share - weight| in pp");
	}
	fixture_put(&f);
}
