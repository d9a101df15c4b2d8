// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Source NAT through the real programs, XDP and TC (and TC on a
 * CHECKSUM_COMPLETE skb where the kernel can check skb->csum after the run):
 *   - a client's SYN leaves with the backend as destination and the edge's
 *     address and the port the flow's hash picks as source (an empty table:
 *     the first probe is free), every checksum recomputed from scratch;
 *   - the SYN writes no connection-table entry (a UDP datagram does); the
 *     backend's SYN-ACK to that address:port goes back to the client from
 *     VIP:port (by the FIB: no entry yet), the client's first ACK takes the
 *     same port and writes the entry, and later replies follow the entry's
 *     next hop; one to a port with no mapping (the edge's own traffic) is
 *     left to the stack untouched;
 *   - IPv6, and IPv4 UDP without a checksum (stays without);
 *   - a one-port range: a second client is a counted drop (snat_exhausted),
 *     the first one's retransmitted SYN keeps its port;
 *   - 3000 spoofed SYNs claim 3000 ports and write no entry;
 *   - a retransmitted SYN and the first ACK keep the SYN's port when an
 *     earlier candidate of their search was freed in between;
 *   - connect_fallback: green's RST is dropped, the retransmitted SYN and the
 *     first ACK go to blue;
 *   - a reused 5-tuple: the SYN leaves the old entry alone, the backend's
 *     SYN-ACK re-points it to the port the SYN claimed;
 *   - half-open claims (their own table): taken over after 10 s idle,
 *     confirmed ones after 120 s; spoofed ACKs claim half-open and write no
 *     entry; an evicted entry comes back with its confirmed port;
 *   - 70,000 spoofed SYNs at one backend (more than its port range): none
 *     refused, no confirmed mapping lost, a new handshake after it completes.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include "table.h"

#define SVC4 30 /* 10.0.0.90:80/tcp -> 10.1.0.30:8080 */
#define SVC6 31 /* [2001:db8::90]:80 -> [2001:db8:1::31]:8080 */
#define SVCU 32 /* 10.0.0.90:53/udp -> 10.1.0.32:5353 */
#define SVC1 33 /* 10.0.0.91:80/tcp, one port (40000) */
#define SVCF 34 /* 10.0.0.92:80/tcp, connect_fallback: blue 10.1.0.34, green .35 */

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

#define SVCF_FLAGS (SHIFT_SVC_F_SNAT | SHIFT_SVC_F_FALLBACK)
static const struct topo_service fb_svc = { SVCF, 4, IPPROTO_TCP, { 10, 0, 0, 92 }, 80, SVCF_FLAGS };
static const struct topo_backend fb_bes[] = {
	{ 34, SVCF, SHIFT_BLUE, 4, IPPROTO_TCP, { 10, 1, 0, 34 }, 8080, true, 0, MAC_CLIENT },
	{ 35, SVCF, SHIFT_GREEN, 4, IPPROTO_TCP, { 10, 1, 0, 35 }, 8080, true, 0, MAC_CLIENT },
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
	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.addr[0], edge4, 16);
	cfg.n_addrs = 1;
	cfg.run_lo[0] = 1024;
	cfg.run_n[0] = 65535 - 1024 + 1;
	if (!ASSERT_OK(t, dp_snat_set_raw(h, SVCF, &cfg), "snat cfg") ||
	    !ASSERT_OK(t, harness_add_service(h, &fb_svc), "service") ||
	    !ASSERT_OK(t, harness_add_backend(h, &fb_bes[0]), "backend") ||
	    !ASSERT_OK(t, harness_add_backend(h, &fb_bes[1]), "backend") ||
	    !ASSERT_OK(t, harness_pool(h, SVCF, SHIFT_BLUE, &fb_bes[0].id, 1), "pool") ||
	    !ASSERT_OK(t, harness_pool(h, SVCF, SHIFT_GREEN, &fb_bes[1].id, 1), "pool") ||
	    !ASSERT_OK(t, dp_weight_set(&h->m, SVCF, SHIFT_WEIGHT_MAX), "weight"))
		return -1;
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

/*
 * Client SYN (a UDP datagram) -> (backend, edge:port); then the backend's
 * SYN-ACK -> client; then, for TCP, the client's first ACK -> the same port,
 * and the backend's next reply -> client.
 */
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
	struct shift_flow fl;
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
	/* The SYN claims its port but, as any bare SYN, writes no entry: a
	 * flood of them cannot evict established flows. A datagram does. */
	ASSERT_EQ(t, harness_flow_get(h, &s, &fl), proto == IPPROTO_TCP ? -ENOENT : 0,
		  "entry after the first packet (TCP: none)");
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
	r.seq = 5000;
	r.ack = proto == IPPROTO_TCP ? s.seq + 1 : 0;
	set_mac(r.smac, be_mac);
	set_mac(r.dmac, edge_mac);
	re = r;
	memcpy(re.saddr, vip, 16);
	re.sport = vport;
	memcpy(re.daddr, s.saddr, 16);
	re.dport = s.sport;
	re.ttl--;
	if (proto == IPPROTO_TCP) {
		struct pkt_spec a = s, ea = e;

		/* No entry yet: the SYN-ACK finds its client by the mapping and
		 * its way by its SYN's slot, back the way the SYN came (lo here,
		 * from the MAC the client addressed), without a FIB lookup. */
		set_mac(re.smac, edge_mac);
		set_mac(re.dmac, client);
		run_check(t, h, H_BACKEND, (__u32)env->if_be, &r, XDP_REDIRECT, &re, false, 0);
		/* The first ACK: the port its SYN claimed, and the entry. */
		a.tcp_flags = ea.tcp_flags = TH_ACK;
		a.seq = ea.seq = s.seq + 1;
		a.ack = ea.ack = r.seq + 1;
		run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &ea, false, 0);
		if (!ASSERT_OK(t, harness_flow_get(h, &s, &fl), "entry written by the first ACK"))
			return;
		ASSERT_EQ(t, ntohs(fl.snat_port), port, "the entry's port: the SYN's");
		r.tcp_flags = re.tcp_flags = TH_ACK | TH_PSH;
		r.seq = re.seq = r.seq + 1;
	}
	/* The entry keeps the client-side next hop seen on the client's packets:
	 * the reply goes back the way they came (lo here), from the MAC the
	 * client addressed, without a FIB lookup. */
	set_mac(re.smac, edge_mac);
	set_mac(re.dmac, client);
	run_check(t, h, H_BACKEND, (__u32)env->if_be, &r, XDP_REDIRECT, &re, false, 0);

	/* The same backend to an edge port nobody mapped: the edge's own. */
	r.dport = (__u16)(port == 1024 ? 1025 : port - 1);
	run_check(t, h, H_BACKEND, (__u32)env->if_be, &r, XDP_PASS, NULL, true, 0);
}

static __u64 flows4(struct harness *h)
{
	return harness_map_count(h->m.fd[SHIFT_MAP_FLOWS4], sizeof(struct shift_flow_key4));
}

/* Confirmed mappings (shift_snat). */
static __u64 mappings(struct harness *h)
{
	return harness_map_count(h->m.fd[SHIFT_MAP_SNAT], sizeof(struct shift_snat_key));
}

/* Half-open claims (shift_snat_half). */
static __u64 half_claims(struct harness *h)
{
	return harness_map_count(h->m.fd[SHIFT_MAP_SNAT_HALF], sizeof(struct shift_snat_key));
}

static __u64 stat_of(struct harness *h, enum shift_stat st)
{
	__u64 v = ~0ull;

	return dp_stat(&h->m, st, &v) ? ~0ull : v;
}

/* A packet of cl4:sport to vip:80 from lo, and what leaves to backend b from edge:port. */
static void v4_pair(struct pkt_spec *in, struct pkt_spec *out, const __u8 *vip,
		    const struct topo_backend *b, __u16 sport, __u16 port, __u8 flags, __u32 seq,
		    __u32 ack)
{
	static const __u8 nh_src[6] = MAC_NH_SRC, client[6] = MAC_CLIENT, edge_mac[6] = MAC_EDGE;

	memset(in, 0, sizeof(*in));
	in->family = 4;
	in->proto = IPPROTO_TCP;
	in->sport = sport;
	in->dport = 80;
	in->ttl = 64;
	in->tcp_flags = flags;
	in->seq = seq;
	in->ack = ack;
	set_mac(in->dmac, edge_mac);
	set_mac(in->smac, client);
	memcpy(in->saddr, cl4, 16);
	memcpy(in->daddr, vip, 16);
	*out = *in;
	memcpy(out->daddr, b->addr, 16);
	out->dport = b->port;
	memcpy(out->saddr, edge4, 16);
	out->sport = port;
	out->ttl--;
	set_mac(out->smac, nh_src);
	set_mac(out->dmac, b->mac);
}

/* A SYN (ACK) of cl4:sport to SVC4, and what leaves to backend 30 from edge:port. */
static void svc4_pair(struct pkt_spec *in, struct pkt_spec *out, __u16 sport, __u16 port,
		      __u8 flags, __u32 seq, __u32 ack)
{
	v4_pair(in, out, snat_svcs[0].vip, &snat_bes[0], sport, port, flags, seq, ack);
}

/* The backend's answer to e (what went to it): flags, seq, ack. */
static void answer_of(struct pkt_spec *r, const struct pkt_spec *e, __u8 flags, __u32 seq,
		      __u32 ack)
{
	*r = *e;
	memcpy(r->saddr, e->daddr, 16);
	memcpy(r->daddr, e->saddr, 16);
	r->sport = e->dport;
	r->dport = e->sport;
	r->ttl = 64;
	r->tcp_flags = flags;
	r->seq = seq;
	r->ack = ack;
}

/* Run the backend's r in on shv0; its verdict in *got. */
static int from_backend(struct harness *h, const struct fib_env *env, const struct pkt_spec *r,
			__u32 *got)
{
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen = sizeof(out);

	len = pkt_build(r, in, sizeof(in), NULL);
	return harness_run_prog(h, H_BACKEND, in, len, (__u32)env->if_be, out, &olen, got);
}

/* The v4 TCP mapping of backend b and edge port `port` (host order). */
static void mapping_key(struct shift_snat_key *k, const struct topo_backend *b, __u16 port)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->baddr, b->addr, 4);
	memcpy(k->saddr, edge4, 4);
	k->bport = htons(b->port);
	k->sport = htons(port);
	k->proto = IPPROTO_TCP;
	k->family = SHIFT_AF_INET;
}

/*
 * Move a mapping's last packet ns into the past, confirmed or half-open
 * (*half: which); its value in *v.
 */
static int age_mapping(struct harness *h, const struct shift_snat_key *k, __u64 ns,
		       struct shift_snat_val *v, bool *half)
{
	int fd = h->m.fd[SHIFT_MAP_SNAT];

	*half = false;
	if (bpf_map_lookup_elem(fd, k, v)) {
		if (errno != ENOENT)
			return -errno;
		fd = h->m.fd[SHIFT_MAP_SNAT_HALF];
		*half = true;
		if (bpf_map_lookup_elem(fd, k, v))
			return -errno;
	}
	v->last_ns -= ns;
	return bpf_map_update_elem(fd, k, v, BPF_EXIST) ? -errno : 0;
}

/* The handshake of cl4:sport with backend b on edge:port: SYN-ACK, first ACK. */
static void complete(struct tctx *t, struct harness *h, const struct fib_env *env, const __u8 *vip,
		     const struct topo_backend *b, __u16 sport, __u16 port, __u32 isn)
{
	struct pkt_spec a, e, r;
	__u32 got = 0;

	v4_pair(&a, &e, vip, b, sport, port, TH_SYN, isn, 0);
	answer_of(&r, &e, TH_SYN | TH_ACK, 60000, isn + 1);
	if (!ASSERT_OK(t, from_backend(h, env, &r, &got), "BPF_PROG_TEST_RUN (SYN-ACK)"))
		return;
	ASSERT_EQ(t, got, harness_expect(h, XDP_REDIRECT), "SYN-ACK: to the client");
	v4_pair(&a, &e, vip, b, sport, port, TH_ACK, isn + 1, 60001);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
}

/*
 * The one-port service, its port held half-open by 42000's SYN (the sub-test
 * before): another client is refused; 11 s idle later it takes the port
 * over. Its handshake confirms the mapping: 11 s idle then refuse a third
 * client, 121 s do not.
 */
static void half_open(struct tctx *t, struct harness *h, const struct fib_env *env)
{
	const __u8 *vip = snat_svcs[3].vip;
	const struct topo_backend *b = &snat_bes[3];
	struct pkt_spec c, ec, d, ed;
	struct shift_snat_key k;
	struct shift_snat_val v;
	bool half;

	mapping_key(&k, b, 40000);
	v4_pair(&c, &ec, vip, b, 42002, 40000, TH_SYN, 300, 0);
	v4_pair(&d, &ed, vip, b, 42003, 40000, TH_SYN, 400, 0);
	if (!ASSERT_OK(t, age_mapping(h, &k, 0, &v, &half), "the port's mapping"))
		return;
	ASSERT_TRUE(t, half, "a SYN's claim: in the half-open table");
	ASSERT_TRUE(t, v.backend_id & SHIFT_SNAT_HALF_OPEN, "a SYN's claim: half-open");
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &c, XDP_DROP, NULL, false, 1);
	ASSERT_OK(t, age_mapping(h, &k, 11000000000ull, &v, &half), "11 s idle");
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &c, XDP_TX, &ec, false, 0);
	if (test_failed(t) || !env->if_be)
		return;
	complete(t, h, env, vip, b, 42002, 40000, 300);
	if (!ASSERT_OK(t, age_mapping(h, &k, 11000000000ull, &v, &half), "11 s idle"))
		return;
	ASSERT_TRUE(t, !half, "confirmed by the first ACK: moved to the confirmed table");
	ASSERT_EQ(t, v.backend_id, b->id, "confirmed by the first ACK");
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &d, XDP_DROP, NULL, false, 1);
	ASSERT_OK(t, age_mapping(h, &k, 110000000000ull, &v, &half), "121 s idle");
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &d, XDP_TX, &ed, false, 0);
}

/*
 * n packets like x through the client program, each from a spoofed tuple:
 * tuple i % tuples, j, is 198.18.0.0 + net * 256 + j (into 198.19 past
 * 198.18.255.255), port port0 + j % (65536 - port0): up to 131,072 distinct.
 * Returns how many were sent on to the backend (XDP_TX).
 */
static __u32 spoof_run(struct harness *h, struct pkt_spec *x, __u32 n, __u32 tuples, __u8 net,
		       __u16 port0)
{
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 i, j, len, olen, got, ok = 0;

	for (i = 0; i < n; i++) {
		j = i % tuples;
		x->saddr[0] = 198;
		x->saddr[1] = (__u8)(18 + ((net + (j >> 8)) >> 8));
		x->saddr[2] = (__u8)(net + (j >> 8));
		x->saddr[3] = (__u8)j;
		x->sport = (__u16)(port0 + j % (65536u - port0));
		len = pkt_build(x, in, sizeof(in), NULL);
		olen = sizeof(out);
		if (harness_run_prog(h, H_CLIENT, in, len, H_LO_IFINDEX, out, &olen, &got))
			break;
		ok += got == harness_expect(h, XDP_TX);
	}
	return ok;
}

/*
 * A flow whose entry went (evicted) keeps its confirmed port and gets its
 * entry back; spoofed ACKs claim half-open ports and write no entry, nor
 * does a second ACK of one.
 */
static void past_the_syn(struct tctx *t, struct harness *h, const struct fib_env *env)
{
	const __u8 *vip = snat_svcs[0].vip;
	const struct topo_backend *b = &snat_bes[0];
	__u64 n0, m0, hc0, ins0;
	struct pkt_spec a, e, x, ex;
	struct shift_flow fl;
	__u16 p;

	if (env->if_be) {
		v4_pair(&a, &e, vip, b, 45500, 0, TH_SYN, 800, 0);
		p = first_port(h, &a, 1024, 65535 - 1024 + 1);
		v4_pair(&a, &e, vip, b, 45500, p, TH_SYN, 800, 0);
		run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
		complete(t, h, env, vip, b, 45500, p, 800);
		ASSERT_OK(t, harness_flow_del(h, &a), "the entry goes");
		v4_pair(&a, &e, vip, b, 45500, p, TH_ACK | TH_PSH, 801, 60001);
		a.payload = e.payload = 40;
		run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
		if (ASSERT_OK(t, harness_flow_get(h, &a, &fl), "the entry, back"))
			ASSERT_EQ(t, ntohs(fl.snat_port), p, "its port");
	}
	n0 = flows4(h);
	m0 = mappings(h);
	hc0 = half_claims(h);
	ins0 = stat_of(h, SHIFT_STAT_FLOW_INSERT);
	v4_pair(&x, &ex, vip, b, 0, 0, TH_ACK, 5, 99);
	ASSERT_EQ(t, spoof_run(h, &x, 4096, 2048, 64, 2048), 4096, "ACKs sent on to the backend");
	ASSERT_EQ(t, half_claims(h) - hc0, 2048, "half-open claims (2048 tuples, each twice)");
	ASSERT_EQ(t, mappings(h), m0, "confirmed mappings after the ACKs");
	ASSERT_EQ(t, flows4(h), n0, "connection-table entries after the ACKs");
	ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FLOW_INSERT) - ins0, 0, "flow_insert");
}

/*
 * A client reuses its port (cl4:46000) after a completed connection whose
 * entry is still there, and its port at the SYN is another (the old one's
 * mapping went, another client holds that port now): the SYN leaves the
 * entry alone (SYNs do not look at the table); the backend's SYN-ACK to the
 * new port re-points it (syn_reuse()), so the first ACK leaves from the new
 * port and confirms its mapping.
 */
static void reused_tuple(struct tctx *t, struct harness *h, const struct fib_env *env)
{
	const __u8 *vip = snat_svcs[0].vip;
	const struct topo_backend *b = &snat_bes[0];
	struct pkt_spec a, e, r;
	struct shift_snat_key k;
	struct shift_snat_val v;
	struct shift_flow fl;
	__u32 got = 0;
	__u16 p0, p1;
	bool half;

	v4_pair(&a, &e, vip, b, 46000, 0, TH_SYN, 900, 0);
	p0 = first_port(h, &a, 1024, 65535 - 1024 + 1);
	p1 = (__u16)(1024 + (p0 - 1024 + 1) % (65535 - 1024 + 1));
	v4_pair(&a, &e, vip, b, 46000, p0, TH_SYN, 900, 0);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	complete(t, h, env, vip, b, 46000, p0, 900);
	if (test_failed(t))
		return;
	/* The old mapping goes; another client takes its port. */
	mapping_key(&k, b, p0);
	if (!ASSERT_OK(t, age_mapping(h, &k, 0, &v, &half), "the old connection's mapping") ||
	    !ASSERT_TRUE(t, !half, "the old connection's mapping: confirmed"))
		return;
	v.caddr[0] = htonl(0xc6120002); /* 198.18.0.2 */
	ASSERT_OK(t, bpf_map_update_elem(h->m.fd[SHIFT_MAP_SNAT], &k, &v, BPF_EXIST),
		  "another client on the old port");
	v4_pair(&a, &e, vip, b, 46000, p1, TH_SYN, 5000, 0);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	if (ASSERT_OK(t, harness_flow_get(h, &a, &fl), "the old entry"))
		ASSERT_EQ(t, ntohs(fl.snat_port), p0, "after the SYN: the old port still");
	answer_of(&r, &e, TH_SYN | TH_ACK, 70000, 5001);
	if (!ASSERT_OK(t, from_backend(h, env, &r, &got), "BPF_PROG_TEST_RUN (SYN-ACK)"))
		return;
	ASSERT_EQ(t, got, harness_expect(h, XDP_REDIRECT), "SYN-ACK: to the client");
	if (ASSERT_OK(t, harness_flow_get(h, &a, &fl), "the entry"))
		ASSERT_EQ(t, ntohs(fl.snat_port), p1, "after the SYN-ACK: the new port");
	v4_pair(&a, &e, vip, b, 46000, p1, TH_ACK, 5001, 70001);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	mapping_key(&k, b, p1);
	if (ASSERT_OK(t, age_mapping(h, &k, 0, &v, &half), "the new mapping")) {
		ASSERT_TRUE(t, !half, "the new mapping: in the confirmed table");
		ASSERT_EQ(t, v.backend_id, b->id, "confirmed");
	}
}

/*
 * connect_fallback with source NAT: green refuses the SYN (RST), the RST is
 * dropped, the retransmitted SYN goes to blue (a port claimed for blue: the
 * mapping's key holds the backend), blue's SYN-ACK reaches the client and the
 * first ACK follows it to blue on the same port.
 */
static void snat_fallback(struct tctx *t, struct harness *h, const struct fib_env *env)
{
	struct pkt_spec a, eg, eb, r;
	struct shift_flow fl;
	__u64 fb0 = stat_of(h, SHIFT_STAT_FALLBACK);
	__u32 got = 0;
	__u16 p;

	v4_pair(&a, &eg, fb_svc.vip, &fb_bes[1], 44000, 0, TH_SYN, 50000, 0);
	p = first_port(h, &a, 1024, 65535 - 1024 + 1);
	v4_pair(&a, &eg, fb_svc.vip, &fb_bes[1], 44000, p, TH_SYN, 50000, 0);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &eg, false, 0);
	if (test_failed(t))
		return;
	answer_of(&r, &eg, TH_RST | TH_ACK, 0, a.seq + 1);
	if (!ASSERT_OK(t, from_backend(h, env, &r, &got), "BPF_PROG_TEST_RUN (green's RST)"))
		return;
	ASSERT_EQ(t, got, harness_expect(h, XDP_DROP), "green's RST: dropped");
	ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FALLBACK) - fb0, 1, "fallbacks");
	v4_pair(&a, &eb, fb_svc.vip, &fb_bes[0], 44000, p, TH_SYN, 50000, 0);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &eb, false, 0);
	answer_of(&r, &eb, TH_SYN | TH_ACK, 93000, a.seq + 1);
	if (!ASSERT_OK(t, from_backend(h, env, &r, &got), "BPF_PROG_TEST_RUN (blue's SYN-ACK)"))
		return;
	ASSERT_EQ(t, got, harness_expect(h, XDP_REDIRECT), "blue's SYN-ACK: to the client");
	v4_pair(&a, &eb, fb_svc.vip, &fb_bes[0], 44000, p, TH_ACK, 50001, 93001);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &eb, false, 0);
	if (ASSERT_OK(t, harness_flow_get(h, &a, &fl), "entry written by the first ACK")) {
		ASSERT_EQ(t, fl.backend_id, fb_bes[0].id, "the entry's backend: blue");
		ASSERT_EQ(t, ntohs(fl.snat_port), p, "the entry's port");
	}
}

/*
 * A handshake whose SYN slot another SYN took before the client's first ACK:
 * the ACK finds no handshake, so it claims nothing new and writes no entry
 * (as a spoofed one). The backend's answer proves the connection: it writes
 * the entry with the SYN's port and confirms the claim. The flow then keeps
 * its backend and port when the weight moves, and counts as one connection.
 */
static void slot_lost(struct tctx *t, struct harness *h, const struct fib_env *env)
{
	const struct topo_backend *g = &fb_bes[1];
	struct shift_backend_stats bs0, bs;
	struct pkt_spec a, e, r, d, ed;
	struct shift_syn_slot slot;
	struct shift_snat_key k;
	struct shift_snat_val v;
	struct shift_flow fl;
	__u32 got = 0, idx;
	bool half;
	__u16 p;

	if (!ASSERT_OK(t, harness_be_stats(h, g->id, &bs0), "green's counters"))
		return;
	v4_pair(&a, &e, fb_svc.vip, g, 47000, 0, TH_SYN, 7000, 0);
	p = first_port(h, &a, 1024, 65535 - 1024 + 1);
	v4_pair(&a, &e, fb_svc.vip, g, 47000, p, TH_SYN, 7000, 0);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	answer_of(&r, &e, TH_SYN | TH_ACK, 60000, 7001);
	if (!ASSERT_OK(t, from_backend(h, env, &r, &got), "BPF_PROG_TEST_RUN (SYN-ACK)"))
		return;
	ASSERT_EQ(t, got, harness_expect(h, XDP_REDIRECT), "SYN-ACK: to the client");
	/* Another flow's SYN takes the slot. */
	idx = harness_syn_slot_idx(h, harness_hash(&a, h->seed));
	memset(&slot, 0, sizeof(slot));
	slot.hash = 0x12345600;
	ASSERT_OK(t, bpf_map_update_elem(harness_syn_slots_fd(h), &idx, &slot, BPF_ANY),
		  "another SYN in the slot");
	v4_pair(&a, &e, fb_svc.vip, g, 47000, p, TH_ACK, 7001, 60001);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	ASSERT_EQ(t, harness_flow_get(h, &a, &fl), -ENOENT, "no entry from the first ACK");
	v4_pair(&d, &ed, fb_svc.vip, g, 47000, p, TH_ACK | TH_PSH, 7001, 60001);
	d.payload = ed.payload = 40;
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &d, XDP_TX, &ed, false, 0);
	answer_of(&r, &e, TH_ACK | TH_PSH, 60001, 7041);
	r.payload = 100;
	if (!ASSERT_OK(t, from_backend(h, env, &r, &got), "BPF_PROG_TEST_RUN (the answer)"))
		return;
	ASSERT_EQ(t, got, harness_expect(h, XDP_REDIRECT), "the answer: to the client");
	if (ASSERT_OK(t, harness_flow_get(h, &a, &fl), "the entry, written by the answer")) {
		ASSERT_EQ(t, fl.backend_id, g->id, "its backend: green");
		ASSERT_EQ(t, ntohs(fl.snat_port), p, "its port: the SYN's");
	}
	mapping_key(&k, g, p);
	if (ASSERT_OK(t, age_mapping(h, &k, 0, &v, &half), "the port's mapping"))
		ASSERT_TRUE(t, !half && v.backend_id == g->id, "confirmed by the answer");
	/* A rollback's weight: the connection stays on green, on its port. */
	ASSERT_OK(t, dp_weight_set(&h->m, SVCF, 0), "weight 0");
	v4_pair(&d, &ed, fb_svc.vip, g, 47000, p, TH_ACK | TH_PSH, 7041, 60101);
	d.payload = ed.payload = 40;
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &d, XDP_TX, &ed, false, 0);
	ASSERT_OK(t, dp_weight_set(&h->m, SVCF, SHIFT_WEIGHT_MAX), "weight back");
	if (ASSERT_OK(t, harness_be_stats(h, g->id, &bs), "green's counters"))
		ASSERT_EQ(t, bs.new_flows - bs0.new_flows, 1, "green's new connections: the SYN");
}

/*
 * Another client holds the first port cl4:sport's SYN would claim, so the SYN
 * claims the second; then that mapping goes (LRU). The SYN's retransmit and
 * its first ACK must keep the second, which the backend knows, rather than
 * claim the first, now free.
 */
static void freed_candidate(struct tctx *t, struct harness *h, const struct fib_env *env)
{
	struct pkt_spec a, e, r;
	struct shift_snat_key k;
	struct shift_snat_val v;
	struct shift_flow fl;
	struct timespec ts;
	__u16 p0, p1;
	__u32 got = 0;

	svc4_pair(&a, &e, 43000, 0, TH_SYN, 77000, 0);
	p0 = first_port(h, &a, 1024, 65535 - 1024 + 1);
	p1 = (__u16)(1024 + (p0 - 1024 + 1) % (65535 - 1024 + 1));
	memset(&k, 0, sizeof(k));
	memcpy(k.baddr, snat_bes[0].addr, 4);
	memcpy(k.saddr, edge4, 4);
	k.bport = htons(snat_bes[0].port);
	k.sport = htons(p0);
	k.proto = IPPROTO_TCP;
	k.family = SHIFT_AF_INET;
	memset(&v, 0, sizeof(v));
	v.caddr[0] = htonl(0xc6120001); /* 198.18.0.1 */
	v.cport = htons(1);
	v.service_id = SVC4;
	v.backend_id = snat_bes[0].id;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	v.last_ns = (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
	if (!ASSERT_OK(t, bpf_map_update_elem(h->m.fd[SHIFT_MAP_SNAT], &k, &v, BPF_NOEXIST),
		       "another client's mapping on the first candidate"))
		return;
	svc4_pair(&a, &e, 43000, p1, TH_SYN, 77000, 0);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	ASSERT_OK(t, bpf_map_delete_elem(h->m.fd[SHIFT_MAP_SNAT], &k), "that mapping goes");
	/* The retransmit: the second candidate still. */
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	if (test_failed(t) || !env->if_be)
		return;
	/* The backend's SYN-ACK to edge:p1, then the client's first ACK. */
	answer_of(&r, &e, TH_SYN | TH_ACK, 91000, a.seq + 1);
	if (!ASSERT_OK(t, from_backend(h, env, &r, &got), "BPF_PROG_TEST_RUN (SYN-ACK)"))
		return;
	ASSERT_EQ(t, got, harness_expect(h, XDP_REDIRECT), "SYN-ACK verdict");
	svc4_pair(&a, &e, 43000, p1, TH_ACK, 77001, 91001);
	run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	if (ASSERT_OK(t, harness_flow_get(h, &a, &fl), "entry written by the first ACK"))
		ASSERT_EQ(t, ntohs(fl.snat_port), p1, "the entry's port: the SYN's");
}

/* Send v4 TCP packet a (its source port unset in the frame's source NAT) to
 * the client program; the edge port it left from (host order), 0 if none. */
static __u16 sent_from(struct harness *h, const struct pkt_spec *a)
{
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen = sizeof(out), got = 0;

	len = pkt_build(a, in, sizeof(in), NULL);
	if (harness_run_prog(h, H_CLIENT, in, len, H_LO_IFINDEX, out, &olen, &got) ||
	    got != harness_expect(h, XDP_TX) || olen < 14 + 20 + 2)
		return 0;
	/* Ethernet, a 20-byte IPv4 header, then the TCP source port. */
	return (__u16)(out[34] << 8 | out[35]);
}

#define FLOOD_CONNS 16
#define FLOOD_SYNS 70000u /* more than a backend's range (64,512), twice the half-open table */

/*
 * A flood of spoofed SYNs at one backend, more than its whole port range and
 * twice the half-open table, with 16 idle connections open: every SYN is
 * sent on (the half-open table evicts its oldest claims, so the range never
 * runs out: snat_exhausted +0), no confirmed mapping goes (the connections'
 * next packets leave from their ports), and a new client's handshake after
 * it completes and writes its entry. Before the half-open table, the same
 * flood held every port for 10 s and refused every new connection.
 */
static void flood_range(struct tctx *t, struct harness *h, const struct fib_env *env)
{
	const __u8 *vip = snat_svcs[0].vip;
	const struct topo_backend *b = &snat_bes[0];
	__u32 i, sent;
	__u16 port[FLOOD_CONNS], p;
	struct pkt_spec a, e, x, ex;
	__u64 m0, ex0;
	struct shift_flow fl;

	for (i = 0; i < FLOOD_CONNS; i++) {
		v4_pair(&a, &e, vip, b, (__u16)(48000 + i), 0, TH_SYN, 10000 * i, 0);
		port[i] = sent_from(h, &a);
		if (!ASSERT_TRUE(t, port[i] != 0, "a connection's SYN sent on"))
			return;
		complete(t, h, env, vip, b, (__u16)(48000 + i), port[i], 10000 * i);
	}
	if (test_failed(t))
		return;
	m0 = mappings(h);
	ex0 = stat_of(h, SHIFT_STAT_DROP_SNAT_EXHAUSTED);
	svc4_pair(&x, &ex, 0, 0, TH_SYN, 1, 0);
	sent = spoof_run(h, &x, FLOOD_SYNS, FLOOD_SYNS, 0, 1024);
	ASSERT_EQ(t, sent, FLOOD_SYNS, "spoofed SYNs sent on to the backend");
	ASSERT_EQ(t, stat_of(h, SHIFT_STAT_DROP_SNAT_EXHAUSTED) - ex0, 0, "snat_exhausted delta");
	ASSERT_EQ(t, mappings(h), m0, "confirmed mappings after the flood");
	ASSERT_LE(t, half_claims(h), SHIFT_SNAT_HALF_ENTRIES, "half-open claims");
	/* Each connection's next packet: out from its own port still. */
	for (i = 0; i < FLOOD_CONNS; i++) {
		v4_pair(&a, &e, vip, b, (__u16)(48000 + i), port[i], TH_ACK | TH_PSH, 10000 * i + 1,
			60001);
		a.payload = e.payload = 20;
		run_check(t, h, H_CLIENT, H_LO_IFINDEX, &a, XDP_TX, &e, false, 0);
	}
	/* A new client. */
	v4_pair(&a, &e, vip, b, 48100, 0, TH_SYN, 7000, 0);
	p = sent_from(h, &a);
	if (!ASSERT_TRUE(t, p != 0, "a new client's SYN after the flood: sent on"))
		return;
	complete(t, h, env, vip, b, 48100, p, 7000);
	if (ASSERT_OK(t, harness_flow_get(h, &a, &fl), "the new client's entry"))
		ASSERT_EQ(t, ntohs(fl.snat_port), p, "its port");
}

/* Run a sub-test that needs the backends' replies routed (the FIB set-up). */
static void with_replies(struct tctx *t, struct harness *h, const struct fib_env *env,
			 void (*fn)(struct tctx *, struct harness *, const struct fib_env *))
{
	if (!env->if_be)
		test_skip(t, "no FIB set-up for the replies");
	else
		fn(t, h, env);
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
	if (test_sub(t,
		     "%s: one port: a half-open claim is taken over 10 s idle, a confirmed "
		     "one 120 s",
		     mode) &&
	    (h = fixture_get(t, f)))
		half_open(t, h, &f->env);
	if (test_sub(t, "%s: past the SYN: an entry that went comes back, spoofed ACKs write none",
		     mode) &&
	    (h = fixture_get(t, f)))
		past_the_syn(t, h, &f->env);
	if (test_sub(t,
		     "%s: a first ACK whose SYN slot was taken: the backend's answer writes the "
		     "entry on the SYN's port",
		     mode) &&
	    (h = fixture_get(t, f)))
		with_replies(t, h, &f->env, slot_lost);
	if (test_sub(t, "%s: a reused 5-tuple: the SYN-ACK re-points the entry to the SYN's port",
		     mode) &&
	    (h = fixture_get(t, f)))
		with_replies(t, h, &f->env, reused_tuple);
	if (test_sub(t, "%s: 3000 spoofed SYNs claim 3000 ports and write no entry", mode) &&
	    (h = fixture_get(t, f))) {
		struct pkt_spec x, ex;
		__u64 n0 = flows4(h), m0 = mappings(h), hc0 = half_claims(h),
		      ins0 = stat_of(h, SHIFT_STAT_FLOW_INSERT);

		svc4_pair(&x, &ex, 0, 0, TH_SYN, 1, 0);
		ASSERT_EQ(t, spoof_run(h, &x, 3000, 3000, 128, 1024), 3000,
			  "SYNs sent on to the backend");
		ASSERT_EQ(t, flows4(h), n0, "connection-table entries after the SYNs");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FLOW_INSERT) - ins0, 0, "flow_insert");
		ASSERT_EQ(t, half_claims(h) - hc0, 3000, "half-open claims");
		ASSERT_EQ(t, mappings(h), m0, "confirmed mappings after the SYNs");
	}
	if (test_sub(t,
		     "%s: a retransmitted SYN and the first ACK keep the SYN's port "
		     "when an earlier candidate was freed",
		     mode) &&
	    (h = fixture_get(t, f)))
		freed_candidate(t, h, &f->env);
	if (test_sub(t,
		     "%s: %u spoofed SYNs at one backend: none refused, 16 idle "
		     "connections keep their ports, a new one completes",
		     mode, FLOOD_SYNS) &&
	    (h = fixture_get(t, f)))
		with_replies(t, h, &f->env, flood_range);
	if (test_sub(t,
		     "%s: connect_fallback: green's RST dropped, the retransmit and the "
		     "first ACK to blue",
		     mode) &&
	    (h = fixture_get(t, f)))
		with_replies(t, h, &f->env, snat_fallback);
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
