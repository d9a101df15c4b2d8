// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Source NAT through the real programs, XDP and TC (and TC on a
 * CHECKSUM_COMPLETE skb where the kernel can check skb->csum after the run):
 *   - a client's SYN leaves with the backend as destination and the edge's
 *     address and the port the flow's hash picks as source (an empty table:
 *     the first probe is free), every checksum recomputed from scratch;
 *   - the backend's answer to that address:port goes back to the client from
 *     VIP:port; one to a port with no mapping (the edge's own traffic) is left
 *     to the stack untouched;
 *   - IPv6, and IPv4 UDP without a checksum (stays without);
 *   - a one-port range: a second client is a counted drop (snat_exhausted),
 *     the first one's retransmitted SYN keeps its port.
 */
#include <string.h>
#include <arpa/inet.h>
#include <linux/pkt_cls.h>

#include "table.h"

#define SVC4 30 /* 10.0.0.90:80/tcp -> 10.1.0.30:8080 */
#define SVC6 31 /* [2001:db8::90]:80 -> [2001:db8:1::31]:8080 */
#define SVCU 32 /* 10.0.0.90:53/udp -> 10.1.0.32:5353 */
#define SVC1 33 /* 10.0.0.91:80/tcp, one port (40000) */

static const __u8 edge4[16] = { 10, 1, 0, 1 };
static const __u8 edge6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const __u8 cl4[16] = CL4, cl6[16] = CL6;

static const struct topo_service snat_svcs[] = {
	{ SVC4, 4, IPPROTO_TCP, { 10, 0, 0, 90 }, 80, SHIFT_SVC_F_SNAT },
	{ SVC6,
	  6,
	  IPPROTO_TCP,
	  { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x90 },
	  80,
	  SHIFT_SVC_F_SNAT },
	{ SVCU, 4, IPPROTO_UDP, { 10, 0, 0, 90 }, 53, SHIFT_SVC_F_SNAT },
	{ SVC1, 4, IPPROTO_TCP, { 10, 0, 0, 91 }, 80, SHIFT_SVC_F_SNAT },
};

static const struct topo_backend snat_bes[] = {
	{ 30, SVC4, SHIFT_BLUE, 4, IPPROTO_TCP, { 10, 1, 0, 30 }, 8080, true, 0, MAC_CLIENT },
	{ 31,
	  SVC6,
	  SHIFT_BLUE,
	  6,
	  IPPROTO_TCP,
	  { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x31 },
	  8080,
	  true,
	  0,
	  MAC_CLIENT },
	{ 32, SVCU, SHIFT_BLUE, 4, IPPROTO_UDP, { 10, 1, 0, 32 }, 5353, true, 0, MAC_CLIENT },
	{ 33, SVC1, SHIFT_BLUE, 4, IPPROTO_TCP, { 10, 1, 0, 33 }, 8080, true, 0, MAC_CLIENT },
};

static int snat_setup(struct tctx *t, struct fixture *f)
{
	struct harness *h = &f->h;
	struct shift_snat_cfg cfg;
	__u32 i, id;

	if (fib_env_setup(&f->env))
		memset(&f->env, 0, sizeof(f->env));
	for (i = 0; i < sizeof(snat_svcs) / sizeof(snat_svcs[0]); i++) {
		memset(&cfg, 0, sizeof(cfg));
		memcpy(cfg.addr[0], snat_svcs[i].family == 4 ? edge4 : edge6, 16);
		cfg.n_addrs = 1;
		cfg.run_lo[0] = snat_svcs[i].id == SVC1 ? 40000 : 1024;
		cfg.run_n[0] = snat_svcs[i].id == SVC1 ? 1 : 65535 - 1024 + 1;
		id = snat_svcs[i].id;
		if (!ASSERT_OK(t, dp_snat_set_raw(h, id, &cfg), "snat cfg") ||
		    !ASSERT_OK(t, harness_add_service(h, &snat_svcs[i]), "service") ||
		    !ASSERT_OK(t, harness_add_backend(h, &snat_bes[i]), "backend") ||
		    !ASSERT_OK(t, harness_pool(h, id, SHIFT_BLUE, &snat_bes[i].id, 1), "pool"))
			return -1;
	}
	return 0;
}

/* The port (host order) the first probe of a flow picks: run_lo + hash % run_n. */
static __u16 first_port(struct harness *h, const struct pkt_spec *s, __u16 lo, __u32 n)
{
	return (__u16)(lo + harness_hash(s, h->seed) % n);
}

/*
 * Run s through prog; expect verdict (XDP's name) and, when exp is set, exactly
 * that frame with every checksum right; exhausted: snat_exhausted's delta.
 */
static void run_check(struct tctx *t, struct harness *h, enum h_prog prog, __u32 ifindex,
		      const struct pkt_spec *s, __u32 verdict, const struct pkt_spec *exp,
		      bool same, __u64 exhausted)
{
	__u8 in[PKT_MAX], out[PKT_MAX], want[PKT_MAX];
	__u32 len, olen = sizeof(out), wlen, got;
	__u64 e0, e1;
	struct pkt_info info;
	char why[160];

	len = pkt_build(s, in, sizeof(in), NULL);
	if (!ASSERT_TRUE(t, len > 0, "build") ||
	    !ASSERT_OK(t, dp_stat(&h->m, SHIFT_STAT_DROP_SNAT_EXHAUSTED, &e0), "dp_stat") ||
	    !ASSERT_OK(t, harness_run_prog(h, prog, in, len, ifindex, out, &olen, &got),
		       "BPF_PROG_TEST_RUN") ||
	    !ASSERT_OK(t, dp_stat(&h->m, SHIFT_STAT_DROP_SNAT_EXHAUSTED, &e1), "dp_stat"))
		return;
	ASSERT_EQ(t, got, harness_expect(h, verdict), "verdict");
	ASSERT_EQ(t, e1 - e0, exhausted, "snat_exhausted delta");
	if (same)
		ASSERT_PKT_EQ(t, in, len, out, olen, "output frame (untouched)");
	if (!exp)
		return;
	wlen = pkt_build(exp, want, sizeof(want), NULL);
	ASSERT_PKT_EQ(t, want, wlen, out, olen, "output frame");
	if (pkt_verify(out, olen, &info, why, sizeof(why)))
		test_failf(t, __FILE__, __LINE__, "output checksums, recomputed: %s", why);
}

static void set_mac(__u8 *dst, const __u8 *src)
{
	memcpy(dst, src, 6);
}

/* Client SYN -> (backend, edge:port); then the backend's SYN-ACK -> client. */
static void both_ways(struct tctx *t, struct harness *h, const struct fib_env *env, int family,
		      __u8 proto, const __u8 *vip, __u16 vport, const struct topo_backend *b,
		      const __u8 *edge, __u16 sport, bool udp_nocsum)
{
	static const __u8 nh_src[6] = MAC_NH_SRC, client[6] = MAC_CLIENT, edge_mac[6] = MAC_EDGE,
			  be_mac[6] = FIB_MAC_BE;
	struct pkt_spec s = { .family = (__u8)family,
			      .proto = proto,
			      .sport = sport,
			      .dport = vport,
			      .ttl = 64,
			      .payload = 16,
			      .seq = 1000,
			      .udp_csum_zero = udp_nocsum };
	struct pkt_spec e, r, re;
	__u16 port;

	set_mac(s.dmac, edge_mac);
	set_mac(s.smac, client);
	memcpy(s.saddr, family == 4 ? cl4 : cl6, 16);
	memcpy(s.daddr, vip, 16);
	s.tcp_flags = proto == IPPROTO_TCP ? TH_SYN : 0;
	port = first_port(h, &s, 1024, 65535 - 1024 + 1);

	e = s;
	memcpy(e.daddr, b->addr, 16);
	e.dport = b->port;
	memcpy(e.saddr, edge, 16);
	e.sport = port;
	e.ttl--;
	set_mac(e.smac, nh_src);
	set_mac(e.dmac, b->mac);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &s, XDP_TX, &e, false, 0);
	if (test_failed(t) || !env->if_be)
		return;

	/* The answer, from the backend (its MAC towards the edge's shv0). */
	memset(&r, 0, sizeof(r));
	r = e;
	memcpy(r.saddr, b->addr, 16);
	r.sport = b->port;
	memcpy(r.daddr, edge, 16);
	r.dport = port;
	r.ttl = 64;
	r.tcp_flags = proto == IPPROTO_TCP ? (TH_SYN | TH_ACK) : 0;
	set_mac(r.smac, be_mac);
	set_mac(r.dmac, edge_mac);
	re = r;
	memcpy(re.saddr, vip, 16);
	re.sport = vport;
	memcpy(re.daddr, s.saddr, 16);
	re.dport = s.sport;
	re.ttl--;
	/* A SNAT'ed flow's entry is written at its SYN, with the client-side next
	 * hop seen on it: the reply goes back the way the SYN came (lo here), from
	 * the MAC the client addressed, without a FIB lookup. */
	set_mac(re.smac, edge_mac);
	set_mac(re.dmac, client);
	run_check(t, h, H_BACKEND, (__u32)env->if_be, &r, XDP_REDIRECT, &re, false, 0);

	/* The same backend to an edge port nobody mapped: the edge's own. */
	r.dport = (__u16)(port == 1024 ? 1025 : port - 1);
	run_check(t, h, H_BACKEND, (__u32)env->if_be, &r, XDP_PASS, NULL, true, 0);
}

static void snat_cases(struct tctx *t, struct fixture *f, const char *mode)
{
	struct harness *h;

	if (test_sub(t, "%s: v4 tcp SYN -> DNAT + SNAT to the edge, reply back to the client",
		     mode) &&
	    (h = fixture_get(t, f)))
		both_ways(t, h, &f->env, 4, IPPROTO_TCP, snat_svcs[0].vip, 80, &snat_bes[0], edge4,
			  41000, false);
	if (test_sub(t, "%s: v6 tcp SYN -> DNAT + SNAT to the edge, reply back to the client",
		     mode) &&
	    (h = fixture_get(t, f)))
		both_ways(t, h, &f->env, 6, IPPROTO_TCP, snat_svcs[1].vip, 80, &snat_bes[1], edge6,
			  41001, false);
	if (test_sub(t, "%s: v4 udp without checksum stays without, both ways", mode) &&
	    (h = fixture_get(t, f)))
		both_ways(t, h, &f->env, 4, IPPROTO_UDP, snat_svcs[2].vip, 53, &snat_bes[2], edge4,
			  41002, true);
	if (test_sub(t, "%s: one port: a second client is snat_exhausted, the first keeps it",
		     mode) &&
	    (h = fixture_get(t, f))) {
		static const __u8 nh_src[6] = MAC_NH_SRC, client[6] = MAC_CLIENT,
				  edge_mac[6] = MAC_EDGE;
		struct pkt_spec a = { .family = 4,
				      .proto = IPPROTO_TCP,
				      .sport = 42000,
				      .dport = 80,
				      .ttl = 64,
				      .tcp_flags = TH_SYN,
				      .payload = 0,
				      .seq = 1 };
		struct pkt_spec b, e;

		set_mac(a.dmac, edge_mac);
		set_mac(a.smac, client);
		memcpy(a.saddr, cl4, 16);
		memcpy(a.daddr, snat_svcs[3].vip, 16);
		b = a;
		b.sport = 42001;
		e = a;
		memcpy(e.daddr, snat_bes[3].addr, 16);
		e.dport = 8080;
		memcpy(e.saddr, edge4, 16);
		e.sport = 40000;
		e.ttl--;
		set_mac(e.smac, nh_src);
		set_mac(e.dmac, snat_bes[3].mac);
		run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
		run_check(t, h, H_CLIENT, H_LO_IFINDEX, &b, XDP_DROP, NULL, false, 1);
		/* The first client's retransmitted SYN: the same port again. */
		run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	}
}

TEST(snat)
{
	struct fixture x = { .seed = H_SEED, .flows4 = 8192, .flows6 = 8192, .setup = snat_setup };
	struct fixture c = {
		.seed = H_SEED, .flows4 = 8192, .flows6 = 8192, .setup = snat_setup, .tc = true
	};
	struct fixture cc = { .seed = H_SEED,
			      .flows4 = 8192,
			      .flows6 = 8192,
			      .setup = snat_setup,
			      .tc = true,
			      .csum_complete = true };
	struct harness *h;

	snat_cases(t, &x, "xdp");
	fixture_put(&x);
	snat_cases(t, &c, "tc");
	fixture_put(&c);
	test_sub(t, "tc, CHECKSUM_COMPLETE: probe");
	h = fixture_get(t, &cc);
	if (h && !harness_has_csum_complete(h))
		test_skip(t, "BPF_F_TEST_SKB_CHECKSUM_COMPLETE unsupported by this kernel");
	else if (h)
		snat_cases(t, &cc, "tc, CHECKSUM_COMPLETE");
	fixture_put(&cc);
}
