// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Hash parity between the datapath and userspace: for 10,000 random v4 and
 * 10,000 random v6 tuples, the `hash` of the connection-table entry the
 * program inserted (a UDP datagram's, or a TCP handshake's: SYN, the backend's
 * SYN-ACK, the first ACK) equals shift_flow_hash4/6() computed here with the same
 * seed (a seed other than the default, so a program ignoring its rodata
 * fails), and the entry's color follows from that hash and the weight.
 */
#include <string.h>

#include <shift/flow_hash.h>
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define PARITY_TUPLES 10000u
#define PARITY_SEED 0x9e3779b9u
#define PARITY_WEIGHT 5000u

static void parity(struct tctx *t, struct harness *h, int family, __u64 *rng)
{
	static const struct pkt_spec v4 = PKT4(CL4, VIP4, IPPROTO_TCP, 1, 80, .payload = 0);
	static const struct pkt_spec v6 = PKT6(CL6, VIP6, IPPROTO_TCP, 1, 443, .payload = 0);
	__u32 i, k, verdict, mismatch = 0, color_wrong = 0, missing = 0;
	__u8 buf[PKT_MAX];
	struct shift_flow fl;
	struct pkt_spec s;

	for (i = 0; i < PARITY_TUPLES; i++) {
		__u64 r = h_rand(rng);
		bool udp = r & 1;
		__u32 len, want;
		int err;

		s = family == 4 ? v4 : v6;
		for (k = 0; k < (family == 4 ? 4u : 16u); k++)
			s.saddr[k] = (__u8)h_rand(rng);
		s.sport = (__u16)(r >> 8);
		/* A handshake (a bare SYN leaves no entry to compare; the client's
		 * first ACK of the backend's SYN-ACK writes it), or one UDP datagram. */
		if (udp) {
			s.proto = IPPROTO_UDP;
			s.tcp_flags = 0;
			s.dport = 53;
		} else {
			int idx;

			/* The SYN-ACK's return path needs a route to the client: the
			 * namespace's client subnet (198.51.100.0/24, 2001:db8:c::/64),
			 * its host part random, not the namespace's own address. UDP tuples keep every address bit random. */
			if (family == 4) {
				s.saddr[0] = 198, s.saddr[1] = 51, s.saddr[2] = 100;
				/* not .0, .1 (the namespace's own), .255 */
				s.saddr[3] = (__u8)(2 + s.saddr[3] % 253);
			} else {
				static const __u8 net[8] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0 };

				memcpy(s.saddr, net, sizeof(net));
			}
			s.tcp_flags = TH_ACK;
			s.seq++;
			err = harness_handshake(h, H_CLIENT, &s, topo_backends, topo_n_backends,
						&idx);
			if (err || idx < 0) {
				if (missing++ < 3)
					test_failf(t, __FILE__, __LINE__,
						   "tuple %u: handshake err %d, backend %d", i, err,
						   idx);
				continue;
			}
		}
		len = pkt_build(&s, buf, sizeof(buf), NULL);
		err = harness_run(h->prog[H_CLIENT], buf, len, H_LO_IFINDEX, NULL, NULL, &verdict);
		if (err || verdict != XDP_TX || harness_flow_get(h, &s, &fl)) {
			if (missing++ < 3)
				test_failf(
					t, __FILE__, __LINE__,
					"tuple %u: err %d verdict %u, or no connection-table entry",
					i, err, verdict);
			continue;
		}
		want = harness_hash(&s, PARITY_SEED);
		if (fl.hash != want && mismatch++ < 5)
			test_failf(t, __FILE__, __LINE__,
				   "tuple %u (%s sport %u): BPF hash 0x%08x, userspace 0x%08x", i,
				   udp ? "udp" : "tcp", s.sport, fl.hash, want);
		color_wrong += fl.color != (shift_slice(want) < (int)PARITY_WEIGHT);
	}
	test_note(t, "v%d: %u tuples, %u hash mismatches, %u colors off, %u not inserted", family,
		  PARITY_TUPLES, mismatch, color_wrong, missing);
	ASSERT_EQ(t, missing, 0, "tuples forwarded and inserted");
	ASSERT_EQ(t, mismatch, 0, "BPF hash != userspace hash");
	ASSERT_EQ(t, color_wrong, 0, "entry color != (slice < weight)");
}

TEST(hash_parity)
{
	struct fixture f = { .seed = PARITY_SEED, .flows4 = 1u << 15, .flows6 = 1u << 15 };
	__u64 rng = 0x243f6a8885a308d3ull;
	struct harness *h;
	__u32 i;
	int family;

	for (family = 4; family <= 6; family += 2) {
		if (!test_sub(t, "v%d: %u random tuples, seed 0x%x", family, PARITY_TUPLES,
			      PARITY_SEED))
			continue;
		h = fixture_get(t, &f);
		if (!h)
			continue;
		for (i = 0; i < SVC_TOPO_COUNT; i++)
			ASSERT_OK(t, dp_weight_set(&h->m, i, PARITY_WEIGHT), "weight 50 %");
		parity(t, h, family, &rng);
	}
	fixture_put(&f);
}
