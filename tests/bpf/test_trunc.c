// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A truncated packet at every header boundary: each test packet is cut at
 * every length from 0 to its full size and run through shift_xdp_client, to a
 * VIP and to a non-VIP address, in two ways:
 *
 *   cut      the frame ends early, the IP length fields still claim the whole
 *            packet;
 *   cut+len  the frame ends early and the IP length field (tot_len /
 *            payload_len) says so, so the parser's L4 and extension-header
 *            checks are reached.
 *
 * The expected verdict and drop reason of every length are derived from the
 * datapath rules, independently of the program. A non-VIP packet always
 * passes unchanged with nothing counted. The kernel itself refuses frames
 * shorter than an Ethernet header (BPF_PROG_TEST_RUN: -EINVAL).
 */
#include <errno.h>
#include <string.h>

#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define ALL_DROPS ((1u << SHIFT_STAT_DROP_MAX_) - 1)

enum cut_mode {
	CUT,
	CUT_LEN,
};

struct cut_case {
	const char *name;
	struct pkt_spec spec;
};

static const struct cut_case cases[] = {
	{ "v4 tcp with options", PKT4(CL4, VIP4, TCP, 42001, 80, .tcp_opts = 4, .payload = 6) },
	{ "v4 udp", PKT4(CL4, VIP4, UDP, 42002, 53, .payload = 6) },
	{ "v4 tcp, IP options (IHL 7)",
	  PKT4(CL4, VIP4, TCP, 42003, 80, .ip_opts = 8, .payload = 2) },
	{ "802.1Q v4 udp", PKT4(CL4, VIP4, UDP, 42004, 53, .tpid = { 0x8100 }, .tci = { 9 }) },
	{ "v6 tcp", PKT6(CL6, VIP6, TCP, 42005, 443, .payload = 4) },
	{ "v6 udp, 2 extension headers",
	  PKT6(CL6, VIP6, UDP, 42006, 53, .n_ext = 2, .ext = { 0, 60 }, .ext_hdrlen = { 0, 1 },
	       .payload = 3) },
	{ "802.1ad v6 tcp, 1 extension header",
	  PKT6(CL6, VIP6, TCP, 42007, 443, .tpid = { 0x88a8 }, .tci = { 5 }, .n_ext = 1,
	       .ext = { 43 }, .payload = 2) },
};

struct expect {
	__u32 verdict;
	__u32 drops; /* bit mask of acceptable drop reasons (exactly one must move) */
};

static __u32 udp_len_of(const __u8 *full, const struct pkt_layout *lo)
{
	return (__u32)(full[lo->l4 + 4] << 8 | full[lo->l4 + 5]);
}

/*
 * What the rules say for the frame cut at len (full: the uncut frame, lo: its
 * layout). For cut+len, the IP length field claims exactly len - l3.
 */
static struct expect expect_for(const struct pkt_spec *s, const __u8 *full,
				const struct pkt_layout *lo, __u32 len, enum cut_mode mode,
				bool vip)
{
	struct expect pass = { XDP_PASS, 0 }, tx = { XDP_TX, 0 };
	struct expect e = { XDP_DROP, 0 };
	__u32 l3 = lo->l3, iphl, ipend, l4, avail, need, t;

	if (len < l3) /* inside the Ethernet header / VLAN tag */
		return pass;
	if (s->family == 4) {
		if (len - l3 < 20)
			return pass; /* destination unknown */
		if (!vip)
			return pass;
		iphl = 20u + s->ip_opts;
		if (mode == CUT) {
			if (len < lo->ip_end)
				e.drops =
					STAT_BIT(SHIFT_STAT_DROP_BAD_LENGTH); /* tot_len > frame */
			else
				return tx;
			return e;
		}
		ipend = len; /* tot_len = len - l3 */
		if (ipend - l3 < iphl) {
			e.drops = STAT_BIT(SHIFT_STAT_DROP_BAD_LENGTH); /* tot_len < IHL*4 */
			return e;
		}
		l4 = l3 + iphl;
	} else {
		if (len - l3 < 40)
			return pass;
		if (!vip)
			return pass;
		if (mode == CUT) {
			if (len >= lo->ip_end)
				return tx;
			/*
			 * The frame is shorter than payload_len says, and possibly an
			 * extension header or the L4 header is cut too: the rules name
			 * both reasons without ordering them, so either is accepted
			 * (exactly one drop counter must move).
			 */
			e.drops = STAT_BIT(SHIFT_STAT_DROP_BAD_LENGTH) |
				  STAT_BIT(SHIFT_STAT_DROP_TRUNCATED);
			return e;
		}
		ipend = len; /* payload_len = len - l3 - 40 */
		l4 = l3 + 40;
		for (t = 0; t < s->n_ext; t++) {
			need = s->ext[t] == 44 ? 8 : (s->ext_hdrlen[t] + 1u) * 8;
			if (ipend - l4 < need) {
				e.drops = STAT_BIT(SHIFT_STAT_DROP_TRUNCATED);
				return e;
			}
			l4 += need;
		}
	}
	/* L4, with the IP length field claiming exactly the frame (cut+len). */
	avail = ipend - l4;
	if (s->proto == IPPROTO_TCP) {
		if (avail < 20) {
			e.drops = STAT_BIT(SHIFT_STAT_DROP_TRUNCATED);
			return e;
		}
		if (avail < 20u + s->tcp_opts) {
			e.drops = STAT_BIT(SHIFT_STAT_DROP_BAD_LENGTH); /* doff*4 beyond */
			return e;
		}
		return tx; /* TCP has no length field: a shorter payload is a valid packet */
	}
	if (avail < 8) {
		e.drops = STAT_BIT(SHIFT_STAT_DROP_TRUNCATED);
		return e;
	}
	if (udp_len_of(full, lo) > avail) {
		e.drops = STAT_BIT(SHIFT_STAT_DROP_BAD_LENGTH);
		return e;
	}
	return tx;
}

static void set_ip_len(__u8 *p, const struct pkt_spec *s, const struct pkt_layout *lo, __u32 len)
{
	__u32 l3 = lo->l3, v;

	if (s->family == 4 && len - l3 >= 20) {
		v = len - l3;
		p[l3 + 2] = (__u8)(v >> 8);
		p[l3 + 3] = (__u8)v;
	} else if (s->family == 6 && len - l3 >= 40) {
		v = len - l3 - 40;
		p[l3 + 4] = (__u8)(v >> 8);
		p[l3 + 5] = (__u8)v;
	}
}

static void sweep(struct tctx *t, struct harness *h, const struct cut_case *c, bool vip,
		  enum cut_mode mode)
{
	static const __u8 nonvip4[4] = NONVIP4, nonvip6[16] = NONVIP6;
	__u8 full[PKT_MAX], in[PKT_MAX], out[PKT_MAX];
	__u64 s0[SHIFT_STAT_MAX], s1[SHIFT_STAT_MAX];
	struct pkt_spec s = c->spec;
	struct pkt_layout lo;
	struct pkt_info info;
	__u32 flen, len, olen, verdict, i, moved, which, bad = 0;
	char why[160];
	int err;

	if (!vip)
		memcpy(s.daddr, s.family == 4 ? nonvip4 : nonvip6, s.family == 4 ? 4 : 16);
	flen = pkt_build(&s, full, sizeof(full), &lo);
	if (!ASSERT_TRUE(t, flen > 0, "build"))
		return;
	for (len = 0; len <= flen && bad < 5; len++) {
		struct expect e = expect_for(&s, full, &lo, len, mode, vip);
		__u32 before_bad = bad;

		memcpy(in, full, flen);
		if (mode == CUT_LEN) {
			set_ip_len(in, &s, &lo, len);
			pkt_fix_csums(in, len); /* best effort: a broken one stays broken */
		}
		olen = sizeof(out);
		if (!ASSERT_OK(t, dp_stats(&h->m, s0), "dp_stats"))
			return;
		err = harness_run_prog(h, H_CLIENT, in, len, H_LO_IFINDEX, out, &olen, &verdict);
		/* TC: the kernel also refuses an skb with less than an IP header. */
		if (h->tc && err == -EINVAL && len < lo.l3 + (s.family == 4 ? 20u : 40u))
			continue;
		if (len < 14) {
			/* The kernel refuses it before the program runs. */
			if (err != -EINVAL) {
				test_failf(
					t, __FILE__, __LINE__,
					"len %u: BPF_PROG_TEST_RUN returned %d, expected -EINVAL",
					len, err);
				bad++;
			}
			continue;
		}
		if (!ASSERT_OK(t, err, "BPF_PROG_TEST_RUN") ||
		    !ASSERT_OK(t, dp_stats(&h->m, s1), "dp_stats"))
			return;
		if (verdict != harness_expect(h, e.verdict)) {
			test_failf(t, __FILE__, __LINE__,
				   "cut at %u of %u bytes: verdict %u, expected %u", len, flen,
				   verdict, e.verdict);
			bad++;
		}
		moved = 0;
		which = 0;
		for (i = 0; i < SHIFT_STAT_DROP_MAX_; i++) {
			if (s1[i] != s0[i]) {
				moved += (__u32)(s1[i] - s0[i]);
				which |= STAT_BIT(i);
			}
		}
		if (e.drops ? (moved != 1 || !(which & e.drops)) : moved != 0) {
			test_failf(t, __FILE__, __LINE__,
				   "cut at %u of %u bytes: drop counters moved by %u (mask 0x%x), "
				   "expected %s (mask 0x%x)",
				   len, flen, moved, which, e.drops ? "one" : "none", e.drops);
			bad++;
		}
		if (s1[SHIFT_STAT_PASS_TTL] != s0[SHIFT_STAT_PASS_TTL] ||
		    s1[SHIFT_STAT_OVERRIDE_HIT] != s0[SHIFT_STAT_OVERRIDE_HIT]) {
			test_failf(t, __FILE__, __LINE__, "cut at %u: unexpected pass_ttl/override",
				   len);
			bad++;
		}
		if (verdict == harness_expect(h, XDP_PASS) && e.verdict == XDP_PASS &&
		    (olen != len || memcmp(out, in, len))) {
			test_failf(t, __FILE__, __LINE__, "cut at %u: passed, but modified", len);
			pkt_hexdiff(stdout, in, len, out, olen);
			bad++;
		}
		if (verdict == harness_expect(h, XDP_TX) && e.verdict != XDP_PASS &&
		    pkt_verify(out, olen, &info, why, sizeof(why))) {
			test_failf(t, __FILE__, __LINE__, "cut at %u: forwarded with %s", len, why);
			bad++;
		}
		if (bad != before_bad)
			test_debug(t, "len %u: verdict %u, drops 0x%x", len, verdict, which);
	}
	if (bad >= 5)
		test_note(t, "stopped after 5 failing lengths");
}

void trunc_run(struct tctx *t, struct fixture *f)
{
	struct harness *h;
	size_t i;
	int vip, mode;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (vip = 1; vip >= 0; vip--)
			for (mode = CUT; mode <= CUT_LEN; mode++) {
				if (!test_sub(t, "truncated: %s, %s, %s", cases[i].name,
					      vip ? "VIP" : "non-VIP",
					      mode == CUT ? "cut" : "cut+len"))
					continue;
				h = fixture_get(t, f);
				if (h)
					sweep(t, h, &cases[i], vip, mode);
			}
}
