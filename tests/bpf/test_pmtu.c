// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Path MTU discovery through the edge (bpf/pmtu.h): a router on the clients'
 * side sends "fragmentation needed" (ICMP 3/4) or "packet too big" (ICMPv6 2)
 * to the VIP about a backend's answer; the client program sends it on to the
 * flow's backend with the outer destination and the quoted source translated
 * (and, for a source-NATed flow, the quoted destination: the edge's address
 * and port the backend sent to).
 * Checked from scratch: the outer header's and the ICMP message's checksums
 * (pkt_verify()), the quoted IPv4 header's, the TTL, the MACs, the counters;
 * and that everything that is not such a message about an established flow
 * is left to the kernel untouched, counted where it was to a VIP.
 */
#include <string.h>
#include <arpa/inet.h>

#include "datapath/dataplane.h"
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define ROUTER4                 \
	{                       \
		198, 51, 100, 1 \
	}
#define ROUTER6                                                               \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 \
	}
#define PMTU_MTU 1400

/* What a too-big message quotes and who sends it where. */
struct too_big {
	int family;
	const __u8 *router; /* outer source */
	const __u8 *to; /* outer destination (the VIP, normally) */
	const __u8 *vip; /* the quoted answer: vip:vport -> client:cport */
	const __u8 *client;
	__u16 vport, cport;
	__u8 proto;
	__u8 type, code; /* 0, 0: the family's too-big */
	__u8 ttl;
	__u32 quote; /* bytes of the answer quoted (0: 28 for IPv4, 48 for IPv6) */
};

/* Build m's frame into buf; its length, 0 on failure. *quote_off: where the
 * quoted IP header starts. */
static __u32 too_big_build(const struct too_big *m, __u8 *buf, __u32 cap, __u32 *quote_off)
{
	struct pkt_spec ans = { .dmac = MAC_EDGE,
				.smac = MAC_CLIENT,
				.family = (__u8)m->family,
				.proto = m->proto,
				.sport = m->vport,
				.dport = m->cport,
				.ttl = 60,
				.tcp_flags = TH_ACK,
				.payload = 1360,
				.seq = 7000,
				.ack = 1001 };
	struct pkt_spec outer = { .dmac = MAC_EDGE,
				  .smac = MAC_CLIENT,
				  .family = (__u8)m->family,
				  .proto = m->family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
				  .ttl = m->ttl ? m->ttl : 64 };
	__u8 inner[PKT_MAX];
	struct pkt_layout ilo, lo;
	__u32 alen = m->family == 4 ? 4 : 16, q, len;

	memcpy(ans.saddr, m->vip, alen);
	memcpy(ans.daddr, m->client, alen);
	memcpy(outer.saddr, m->router, alen);
	memcpy(outer.daddr, m->to, alen);
	if (!pkt_build(&ans, inner, sizeof(inner), &ilo))
		return 0;
	q = m->quote ? m->quote : (m->family == 4 ? 28 : 48);
	if (q > ilo.ip_end - ilo.l3)
		return 0;
	outer.payload = (__u16)q;
	len = pkt_build_payload(&outer, inner + ilo.l3, buf, cap, &lo);
	if (!len)
		return 0;
	buf[lo.l4] = m->type ? m->type : (m->family == 4 ? 3 : 2);
	buf[lo.l4 + 1] = m->type ? m->code : (m->family == 4 ? 4 : 0);
	memset(buf + lo.l4 + 4, 0, 4);
	buf[lo.l4 + 6] = PMTU_MTU >> 8;
	buf[lo.l4 + 7] = PMTU_MTU & 0xff;
	if (pkt_fix_csums(buf, len))
		return 0;
	*quote_off = lo.l4 + 8;
	return len;
}

/* The first ACK of family's flow cl:cport -> VIP, which names its entry. */
static struct pkt_spec flow_ack(int family, __u16 cport)
{
	struct pkt_spec a4 = PKT4(CL4, VIP4, IPPROTO_TCP, cport, 80, .tcp_flags = TH_ACK,
				  .seq = 1001, .payload = 0);
	struct pkt_spec a6 = PKT6(CL6, VIP6, IPPROTO_TCP, cport, 443, .tcp_flags = TH_ACK,
				  .seq = 1001, .payload = 0);

	return family == 4 ? a4 : a6;
}

/* Open the flow cl:cport -> VIP (a handshake and its first ACK through
 * prog); its backend's index in bes, or -1. */
static int open_flow(struct tctx *t, struct harness *h, enum h_prog prog, int family, __u16 cport,
		     const struct topo_backend *bes)
{
	struct pkt_spec a = flow_ack(family, cport);
	const struct pkt_spec *ack = &a;
	struct shift_flow fl;
	__u32 verdict;
	int idx = -1, idx2 = -1;

	if (!ASSERT_OK(t, harness_handshake(h, prog, ack, bes, 2, &idx), "handshake") ||
	    !ASSERT_TRUE(t, idx >= 0, "the SYN went to a backend") ||
	    !ASSERT_OK(t, harness_steer(h, prog, ack, bes, 2, &idx2, &verdict), "first ACK") ||
	    !ASSERT_TRUE(t, idx2 == idx, "the first ACK follows its SYN") ||
	    !ASSERT_OK(t, harness_flow_get(h, ack, &fl), "the ACK wrote the flow's entry"))
		return -1;
	return idx;
}

/* Run m through prog; the verdict and the stats' deltas. out/olen: the output. */
static int run_msg(struct tctx *t, struct harness *h, enum h_prog prog, const struct too_big *m,
		   __u8 *in, __u32 *len, __u32 *quote_off, __u8 *out, __u32 *olen, __u32 *verdict,
		   __u64 *delta)
{
	__u64 s0[SHIFT_STAT_MAX], s1[SHIFT_STAT_MAX];
	int i;

	*len = too_big_build(m, in, PKT_MAX, quote_off);
	if (!ASSERT_TRUE(t, *len > 0, "build the ICMP message") ||
	    !ASSERT_OK(t, dp_stats(&h->m, s0), "dp_stats"))
		return -1;
	*olen = PKT_MAX;
	if (!ASSERT_OK(t, harness_run_prog(h, prog, in, *len, H_LO_IFINDEX, out, olen, verdict),
		       "BPF_PROG_TEST_RUN") ||
	    !ASSERT_OK(t, dp_stats(&h->m, s1), "dp_stats"))
		return -1;
	for (i = 0; i < SHIFT_STAT_MAX; i++)
		delta[i] = s1[i] - s0[i];
	return 0;
}

/* Every counter's delta d[] is 0 but those of bits (STAT_BIT()s), which are 1. */
static void stats_moved(struct tctx *t, const __u64 *d, __u32 bits)
{
	int i;

	for (i = 0; i < SHIFT_STAT_MAX; i++) {
		__u64 want = (bits >> i) & 1;

		if (d[i] != want)
			test_failf(t, __FILE__, __LINE__, "stat %s: +%llu, want +%llu",
				   dp_stat_name(i), (unsigned long long)d[i],
				   (unsigned long long)want);
	}
}

/*
 * m about an established flow of be: translated, checksums whole, sent on by
 * be's cached next hop; or, be without one (!be->nh), to the kernel to
 * forward, already translated. The quote's destination: qdst:qport (host
 * order), the edge's address and port of a source-NATed flow; NULL: the
 * client's, left as it was.
 */
static void check_forwarded_to(struct tctx *t, struct harness *h, enum h_prog prog,
			       const struct too_big *m, const struct topo_backend *be,
			       const __u8 *qdst, __u16 qport)
{
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen, verdict, qo, alen = m->family == 4 ? 4 : 16;
	__u64 d[SHIFT_STAT_MAX];
	struct pkt_info info;
	char why[128] = "";
	const __u8 *q;
	__u8 nh_mac[6];

	if (run_msg(t, h, prog, m, in, &len, &qo, out, &olen, &verdict, d))
		return;
	if (!ASSERT_TRUE(t, verdict == harness_expect(h, be->nh ? XDP_TX : XDP_PASS),
			 be->nh ? "sent on (XDP_TX)" : "to the kernel, to forward"))
		return;
	if (pkt_verify(out, olen, &info, why, sizeof(why))) {
		test_failf(t, __FILE__, __LINE__, "output: %s", why);
		return;
	}
	ASSERT_TRUE(t, olen == len, "same length");
	ASSERT_TRUE(t, !memcmp(info.daddr, be->addr, alen), "outer destination: the backend");
	ASSERT_TRUE(t, !memcmp(info.saddr, m->router, alen), "outer source: the router");
	ASSERT_TRUE(t, info.ttl == 63, "TTL / hop limit - 1");
	memcpy(nh_mac, be->nh ? be->mac : (const __u8[6])MAC_EDGE, 6);
	ASSERT_TRUE(t, !memcmp(info.dmac, nh_mac, 6),
		    "to the backend's next hop MAC (or as it came)");
	q = out + qo;
	if (!qdst) {
		qdst = m->client;
		qport = m->cport;
	}
	if (m->family == 4) {
		ASSERT_TRUE(t, !memcmp(q + 12, be->addr, 4), "quoted source: the backend");
		ASSERT_TRUE(t, !memcmp(q + 16, qdst, 4),
			    "quoted destination: the client (source NAT: the edge's address)");
		ASSERT_TRUE(t, pkt_csum(q, 20, 0) == 0, "quoted IPv4 header checksum");
		q += 20;
	} else {
		ASSERT_TRUE(t, !memcmp(q + 8, be->addr, 16), "quoted source: the backend");
		ASSERT_TRUE(t, !memcmp(q + 24, qdst, 16),
			    "quoted destination: the client (source NAT: the edge's address)");
		q += 40;
	}
	ASSERT_TRUE(t, pkt_get16(q) == be->port, "quoted source port: the backend's");
	ASSERT_TRUE(t, pkt_get16(q + 2) == qport,
		    "quoted destination port: the client's (source NAT: the edge's)");
	ASSERT_TRUE(t, pkt_get16(out + qo - 2) == PMTU_MTU, "the MTU is left as the router said");
	stats_moved(t, d,
		    STAT_BIT(SHIFT_STAT_ICMP_TOO_BIG) |
			    (be->nh ? 0 : STAT_BIT(SHIFT_STAT_PASS_NO_NEIGH)));
}

static void check_forwarded(struct tctx *t, struct harness *h, enum h_prog prog,
			    const struct too_big *m, const struct topo_backend *be)
{
	check_forwarded_to(t, h, prog, m, be, NULL, 0);
}

/* m is not translated: to the kernel byte for byte; stat (or none) counted. */
static void check_passed(struct tctx *t, struct harness *h, enum h_prog prog,
			 const struct too_big *m, int stat)
{
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen, verdict, qo;
	__u64 d[SHIFT_STAT_MAX];

	if (run_msg(t, h, prog, m, in, &len, &qo, out, &olen, &verdict, d))
		return;
	ASSERT_TRUE(t, verdict == harness_expect(h, XDP_PASS), "to the kernel");
	ASSERT_TRUE(t, olen == len && !memcmp(in, out, len), "untouched");
	stats_moved(t, d, stat < 0 ? 0 : STAT_BIT(stat));
}

/*
 * Make the entry of family's flow cport -> VIP source-NATed to address index
 * idx, port sport (host order; 0: not source-NATed again), as the datapath
 * writes one (bpf/snat.h; test_snat.c opens such flows through the programs).
 */
static int entry_snat(struct harness *h, int family, __u16 cport, __u8 idx, __u16 sport)
{
	struct pkt_spec a = flow_ack(family, cport);
	struct shift_flow fl;
	int err = harness_flow_get(h, &a, &fl);

	if (err)
		return err;
	fl.snat_idx = idx;
	fl.snat_port = htons(sport);
	return harness_flow_put(h, &a, &fl);
}

/*
 * The flow's entry source-NATed (the service's second edge address, port
 * 20001): the quote's destination goes back to what the backend sent to. An
 * entry whose address index the service's snat no longer has (a reload took
 * it away) is about no flow. The entry and the service as they were after.
 */
static void pmtu_snat(struct tctx *t, struct harness *h, enum h_prog prog, const struct too_big *m,
		      const struct topo_backend *be)
{
	static const __u8 e4[2][16] = { { 10, 1, 0, 1 }, { 10, 1, 0, 2 } };
	static const __u8 e6[2][16] = {
		{ 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		{ 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 },
	};
	const __u8(*edge)[16] = m->family == 4 ? e4 : e6;
	struct shift_snat_cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.addr[0], edge[0], 16);
	memcpy(cfg.addr[1], edge[1], 16);
	cfg.n_addrs = 2;
	cfg.run_lo[0] = 20000;
	cfg.run_n[0] = 16;
	if (!ASSERT_OK(t, dp_snat_set_raw(h, be->svc, &cfg), "the service's snat") ||
	    !ASSERT_OK(t, entry_snat(h, m->family, m->cport, 1, 20001), "the entry, source-NATed"))
		goto out;
	check_forwarded_to(t, h, prog, m, be, edge[1], 20001);
	cfg.n_addrs = 1;
	if (ASSERT_OK(t, dp_snat_set_raw(h, be->svc, &cfg), "the service's snat, one address"))
		check_passed(t, h, prog, m, SHIFT_STAT_PASS_ICMP_NO_FLOW);
out:
	memset(&cfg, 0, sizeof(cfg));
	ASSERT_OK(t, dp_snat_set_raw(h, be->svc, &cfg), "the service's snat removed");
	ASSERT_OK(t, entry_snat(h, m->family, m->cport, 0, 0), "the entry restored");
}

static void pmtu_family(struct tctx *t, struct fixture *f, enum h_prog prog, int family)
{
	static const __u8 r4[4] = ROUTER4, v4[4] = VIP4, c4[4] = CL4, n4[4] = NONVIP4;
	static const __u8 r6[16] = ROUTER6, v6[16] = VIP6, c6[16] = CL6, n6[16] = NONVIP6;
	const struct topo_backend *bes = &topo_backends[family == 4 ? 0 : 4];
	const char *pn = prog == H_BOTH ? "both" : "client";
	__u16 cport = prog == H_BOTH ? 41002 : 41001;
	struct too_big m = {
		.family = family,
		.router = family == 4 ? r4 : r6,
		.to = family == 4 ? v4 : v6,
		.vip = family == 4 ? v4 : v6,
		.client = family == 4 ? c4 : c6,
		.vport = family == 4 ? 80 : 443,
		.cport = cport,
		.proto = IPPROTO_TCP,
	};
	struct too_big x;
	struct harness *h;
	int idx;

	if (!test_sub(t, "pmtu: v%d %s: too-big about an established flow -> its backend", family,
		      pn))
		return;
	h = fixture_get(t, f);
	if (!h)
		return;
	idx = open_flow(t, h, prog, family, cport, bes);
	if (idx < 0)
		return;
	check_forwarded(t, h, prog, &m, &bes[idx]);
	/* A router quoting more of the answer (Linux: up to 576 bytes in all). */
	x = m;
	x.quote = family == 4 ? 548 : 1184;
	if (test_sub(t, "pmtu: v%d %s: a long quote", family, pn))
		check_forwarded(t, h, prog, &x, &bes[idx]);

	if (test_sub(t, "pmtu: v%d %s: no next hop cached -> kernel, translated", family, pn)) {
		struct topo_backend nonh = bes[idx];

		nonh.nh = false;
		if (ASSERT_OK(t, harness_add_backend(h, &nonh), "the backend without its next hop"))
			check_forwarded(t, h, prog, &m, &nonh);
		ASSERT_OK(t, harness_add_backend(h, &bes[idx]), "the backend restored");
	}
	if (test_sub(t, "pmtu: v%d %s: a source-NATed flow -> its backend, quote to the edge",
		     family, pn))
		pmtu_snat(t, h, prog, &m, &bes[idx]);
	if (test_sub(t, "pmtu: v%d %s: about no flow -> kernel, counted", family, pn)) {
		x = m;
		x.cport = 41999;
		check_passed(t, h, prog, &x, SHIFT_STAT_PASS_ICMP_NO_FLOW);
	}
	if (test_sub(t, "pmtu: v%d %s: TTL 1 -> kernel (pass_ttl)", family, pn)) {
		x = m;
		x.ttl = 1;
		check_passed(t, h, prog, &x, SHIFT_STAT_PASS_TTL);
	}
	if (test_sub(t, "pmtu: v%d %s: to an address that is no VIP -> kernel, uncounted", family,
		     pn)) {
		x = m;
		x.to = family == 4 ? n4 : n6;
		x.vip = x.to;
		check_passed(t, h, prog, &x, -1);
	}
	if (test_sub(t, "pmtu: v%d %s: to the VIP about another source -> kernel, uncounted",
		     family, pn)) {
		x = m;
		x.vip = family == 4 ? n4 : n6;
		check_passed(t, h, prog, &x, -1);
	}
	if (test_sub(t, "pmtu: v%d %s: another ICMP type (port unreachable / echo) -> kernel",
		     family, pn)) {
		x = m;
		x.type = family == 4 ? 3 : 1;
		x.code = family == 4 ? 3 : 4;
		check_passed(t, h, prog, &x, -1);
		x.type = family == 4 ? 8 : 128;
		x.code = 0;
		check_passed(t, h, prog, &x, -1);
	}
	if (test_sub(t, "pmtu: v%d %s: a quote cut before its ports -> kernel, uncounted", family,
		     pn)) {
		x = m;
		x.quote = family == 4 ? 22 : 42;
		check_passed(t, h, prog, &x, -1);
	}
	if (test_sub(t, "pmtu: v%d %s: a UDP quote about no flow -> kernel, counted", family, pn)) {
		x = m;
		x.proto = IPPROTO_UDP;
		x.vport = 53;
		check_passed(t, h, prog, &x, SHIFT_STAT_PASS_ICMP_NO_FLOW);
	}
}

void pmtu_run(struct tctx *t, struct fixture *f)
{
	pmtu_family(t, f, H_CLIENT, 4);
	pmtu_family(t, f, H_CLIENT, 6);
	pmtu_family(t, f, H_BOTH, 4);
	pmtu_family(t, f, H_BOTH, 6);
}
