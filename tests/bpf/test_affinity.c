// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Client affinity through the real entry points (XDP and TC): 300 clients x
 * 6 source ports per weight (10/30/50/90 %), IPv4 /32 and IPv6 /64 (each
 * client's six connections also come from six addresses inside its /64).
 * Every connection of a client gets one color, that color is the userspace
 * rule shift_slice(shift_client_hash(addr/prefix, seed)) < weight, and
 * which_compute() (what `shiftctl which` prints) names the color and the
 * backend the program chose. The latch sends all to blue; with the mode off
 * the same client's ports split again (flow affinity unchanged).
 */
#include <arpa/inet.h>
#include <string.h>

#include <shift/flow_hash.h>
#include "datapath/which.h"
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define AFF_CLIENTS 300u
#define AFF_CONNS 6u

static void client_spec(struct pkt_spec *s, int v6, __u32 c, __u32 k)
{
	static const struct pkt_spec b4 = PKT4(CL4, VIP4, IPPROTO_TCP, 1, 80, .payload = 0);
	static const struct pkt_spec b6 = PKT6(CL6, VIP6, IPPROTO_TCP, 1, 443, .payload = 0);

	*s = v6 ? b6 : b4;
	if (!v6) {
		__u32 a = (100u << 24 | 64u << 16) + c; /* 100.64.0.0/10 */

		s->saddr[0] = (__u8)(a >> 24);
		s->saddr[1] = (__u8)(a >> 16);
		s->saddr[2] = (__u8)(a >> 8);
		s->saddr[3] = (__u8)a;
	} else {
		/* 2001:db8:c:CCCC::/64 per client; the low 64 bits vary per connection. */
		s->saddr[6] = (__u8)(c >> 8);
		s->saddr[7] = (__u8)c;
		s->saddr[8] = (__u8)(k * 37);
		s->saddr[13] = (__u8)(k + 1);
		s->saddr[15] = (__u8)(k * 11 + 3);
	}
	s->sport = (__u16)(1024 + (c * 7919u + k * 104729u) % 64000);
}

static __u32 rule_hash(const struct pkt_spec *s, int v6, __u32 prefix, __u32 seed)
{
	__u32 a[4];

	memcpy(a, s->saddr, 16);
	return v6 ? shift_client_hash6(a, prefix, seed) : shift_client_hash4(a[0], prefix, seed);
}

static void set_mode(struct tctx *t, struct harness *h, int v6, bool client)
{
	struct topo_service svc = topo_services[v6 ? SVC_V6_TCP : SVC_V4_TCP];

	if (client)
		svc.flags |= SHIFT_SVC_F_CLIENT_AFFINITY | 32u << SHIFT_SVC_PREFIX4_SHIFT |
			     64u << SHIFT_SVC_PREFIX6_SHIFT;
	ASSERT_OK(t, harness_add_service(h, &svc), "harness_add_service");
}

/* One connection: its color (0/1), or -1 after reporting why. */
static int steer(struct tctx *t, struct harness *h, const struct pkt_spec *s,
		 const struct topo_backend *bes, __u32 *which_bad)
{
	struct shift_addr_key cl;
	struct which_result r;
	__u32 verdict;
	int idx, err;

	err = harness_steer(h, H_CLIENT, s, bes, 2, &idx, &verdict);
	if (err || verdict != harness_expect(h, XDP_TX) || idx < 0) {
		test_failf(t, __FILE__, __LINE__, "err %d verdict %u backend %d", err, verdict,
			   idx);
		return -1;
	}
	memset(&cl, 0, sizeof(cl));
	cl.family = s->family == 4 ? SHIFT_AF_INET : SHIFT_AF_INET6;
	memcpy(cl.addr, s->saddr, s->family == 4 ? 4 : 16);
	cl.port = htons(s->sport);
	err = which_compute(&h->m, s->family == 4 ? SVC_V4_TCP : SVC_V6_TCP, &cl, &r);
	if (err || r.color != idx || r.backend_id != bes[idx].id)
		if ((*which_bad)++ < 3)
			test_failf(t, __FILE__, __LINE__,
				   "which_compute: err %d color %d backend %u; program: %d, %u",
				   err, r.color, r.backend_id, idx, bes[idx].id);
	return idx;
}

static void run_family(struct tctx *t, struct fixture *f, int v6)
{
	static const __u32 weights[] = { 1000, 3000, 5000, 9000 };
	const struct topo_backend *bes = &topo_backends[v6 ? 4 : 0];
	__u32 svc_id = v6 ? SVC_V6_TCP : SVC_V4_TCP, prefix = v6 ? 64 : 32;
	struct harness *h;
	struct pkt_spec s;
	size_t w;

	for (w = 0; w < sizeof(weights) / sizeof(weights[0]); w++) {
		__u32 weight = weights[w], c, k, green = 0, mixed = 0, wrong = 0, wbad = 0;

		if (!test_sub(t, "%s v%d /%u: weight %u bp, %u clients x %u", f->tc ? "tc" : "xdp",
			      v6 ? 6 : 4, prefix, weight, AFF_CLIENTS, AFF_CONNS))
			continue;
		h = fixture_get(t, f);
		if (!h)
			continue;
		set_mode(t, h, v6, true);
		if (!ASSERT_OK(t, dp_weight_set(&h->m, svc_id, weight), "dp_weight_set"))
			continue;
		for (c = 0; c < AFF_CLIENTS; c++) {
			int first = -1, col;
			bool want;

			for (k = 0; k < AFF_CONNS; k++) {
				client_spec(&s, v6, c, k);
				col = steer(t, h, &s, bes, &wbad);
				if (col < 0)
					break;
				if (first < 0)
					first = col;
				else if (col != first && mixed++ < 3)
					test_failf(t, __FILE__, __LINE__,
						   "client %u: connection %u went %d, the first %d",
						   c, k, col, first);
			}
			if (first < 0)
				continue;
			client_spec(&s, v6, c, 0);
			want = shift_slice(rule_hash(&s, v6, prefix, h->seed)) < weight;
			green += first == SHIFT_GREEN;
			if ((first == SHIFT_GREEN) != want && wrong++ < 3)
				test_failf(t, __FILE__, __LINE__,
					   "client %u went %d, the rule says %d", c, first, want);
		}
		test_note(t,
			  "weight %u bp: %u of %u clients green, %u mixed, %u off the rule, %u "
			  "which mismatches",
			  weight, green, AFF_CLIENTS, mixed, wrong, wbad);
		ASSERT_EQ(t, mixed, 0, "clients whose connections got two colors");
		ASSERT_EQ(t, wrong, 0, "clients whose color disagrees with the userspace rule");
		ASSERT_EQ(t, wbad, 0, "connections where which_compute disagrees with the program");
		/* 300 clients: the share within 8 pp of the weight (binomial sd <= 2.9 pp). */
		ASSERT_LE(t, green * 10000 / AFF_CLIENTS, weight + 800, "green share high");
		ASSERT_LE(t, weight, green * 10000 / AFF_CLIENTS + 800, "green share low");
	}

	if (test_sub(t, "%s v%d: rolled back, every client blue", f->tc ? "tc" : "xdp",
		     v6 ? 6 : 4)) {
		__u32 c, k, green = 0, wbad = 0;

		h = fixture_get(t, f);
		if (h) {
			set_mode(t, h, v6, true);
			ASSERT_OK(t, dp_weight_set(&h->m, svc_id, 9000 | SHIFT_WEIGHT_LATCHED),
				  "latch");
			for (c = 0; c < 50; c++)
				for (k = 0; k < 2; k++) {
					client_spec(&s, v6, c, k);
					green += steer(t, h, &s, bes, &wbad) == SHIFT_GREEN;
				}
			ASSERT_EQ(t, green, 0, "green connections while latched");
			ASSERT_EQ(t, wbad, 0, "which_compute disagreements");
		}
	}

	if (test_sub(t, "%s v%d: affinity = flow splits a client's ports again",
		     f->tc ? "tc" : "xdp", v6 ? 6 : 4)) {
		__u32 c, k, mixed = 0, wrong = 0, wbad = 0;

		h = fixture_get(t, f);
		if (h) {
			set_mode(t, h, v6, false);
			ASSERT_OK(t, dp_weight_set(&h->m, svc_id, 5000), "dp_weight_set");
			for (c = 0; c < 100; c++) {
				int seen = 0, col;

				for (k = 0; k < AFF_CONNS; k++) {
					client_spec(&s, v6, c, k);
					col = steer(t, h, &s, bes, &wbad);
					if (col < 0)
						continue;
					seen |= 1 << col;
					wrong += (col == SHIFT_GREEN) !=
						 (shift_slice(harness_hash(&s, h->seed)) < 5000);
				}
				mixed += seen == 3;
			}
			test_note(t, "flow affinity at 50 %%: %u of 100 clients on both colors",
				  mixed);
			ASSERT_EQ(t, wrong, 0, "connections off the flow-hash rule");
			ASSERT_EQ(t, wbad, 0, "which_compute disagreements");
			/* 6 ports at 50 %: P(one color) = 1/32, so ~97 of 100 mixed. */
			ASSERT_LE(t, 80, mixed, "clients on both colors");
		}
	}
}

TEST(affinity)
{
	struct fixture fx = { .seed = H_SEED, .flows4 = 1u << 12, .flows6 = 1u << 12 };
	struct fixture ft = { .seed = H_SEED, .flows4 = 1u << 12, .flows6 = 1u << 12, .tc = true };

	run_family(t, &fx, 0);
	run_family(t, &fx, 1);
	fixture_put(&fx);
	run_family(t, &ft, 0);
	run_family(t, &ft, 1);
	fixture_put(&ft);
}
