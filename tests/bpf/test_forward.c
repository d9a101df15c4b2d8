// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The forward path (shift_xdp_client), one row per case: see table.h for what
 * every row checks. Topology: harness.h (services, backends, MACs).
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "table.h"

/* Rows start from PKT4()/PKT6() defaults and override some fields. */
#pragma GCC diagnostic ignored "-Woverride-init"

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

#define OVR_GREEN4           \
	{                    \
		192, 0, 2, 5 \
	}
#define OVR_BLUE25_4           \
	{                      \
		192, 0, 2, 200 \
	}
#define OVR_BLUE4              \
	{                      \
		203, 0, 113, 9 \
	}
#define OVR_GREEN4B          \
	{                    \
		192, 0, 2, 6 \
	}
#define OVR_GREEN4C          \
	{                    \
		192, 0, 2, 9 \
	}
#define OVR_VIP4             \
	{                    \
		10, 0, 0, 20 \
	}
#define OVR_GREEN6                                                            \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5 \
	}
#define OVR_GREEN6B                                                           \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6 \
	}
#define OVR_BLUE6                                                             \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5 \
	}
#define OVR_VIP6                                                              \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20 \
	}
#define VIP4_NONE            \
	{                    \
		10, 0, 0, 30 \
	}
#define VIP4_BLUEONLY        \
	{                    \
		10, 0, 0, 31 \
	}
#define VIP4_REDIR           \
	{                    \
		10, 0, 0, 40 \
	}
#define VIP4_STALE           \
	{                    \
		10, 0, 0, 50 \
	}
#define VIP4_FIB             \
	{                    \
		10, 0, 0, 60 \
	}
#define VIP6_FIB                                                              \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x60 \
	}
#define VIP4_NONEIGH         \
	{                    \
		10, 0, 0, 70 \
	}
#define VIP4_NOROUTE         \
	{                    \
		10, 0, 0, 80 \
	}

#define W_ALL_GREEN 10000u
#define W_LATCHED(w) ((w) | SHIFT_WEIGHT_LATCHED)

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* --- malformations ---------------------------------------------------------- */

static void m_ihl4(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	p[lo->l3] = 0x44;
}

static void m_ihl0(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	p[lo->l3] = 0x40;
}

static void m_totlen_19(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	put16(p + lo->l3 + 2, 19);
}

static void m_totlen_plus1(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	put16(p + lo->l3 + 2, pkt_get16(p + lo->l3 + 2) + 1);
}

/* Only 19 bytes of IPv4 header in the frame. */
static void m_cut_ip19(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)p;
	*len = lo->l3 + 19;
}

/* Frame and tot_len agree, but hold only 10 bytes of TCP header. */
static void m_tcp_10(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	put16(p + lo->l3 + 2, (__u16)(lo->l4 - lo->l3 + 10));
	*len = lo->l4 + 10;
}

static void m_udp_4(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	put16(p + lo->l3 + 2, (__u16)(lo->l4 - lo->l3 + 4));
	*len = lo->l4 + 4;
}

static void m_doff4(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	p[lo->l4 + 12] = 0x40;
}

static void m_doff15(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	p[lo->l4 + 12] = 0xf0;
}

static void m_udplen7(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	put16(p + lo->l4 + 4, 7);
}

static void m_udplen_plus1(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	put16(p + lo->l4 + 4, pkt_get16(p + lo->l4 + 4) + 1);
}

static void m_v6_plen_plus8(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	put16(p + lo->l3 + 4, pkt_get16(p + lo->l3 + 4) + 8);
}

/* The first extension header claims 21 * 8 bytes; the packet holds 8 of them. */
static void m_v6_ext_long(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	p[lo->l3 + 40 + 1] = 20;
}

/* --- hooks ------------------------------------------------------------------ */

/* Open the flow with a SYN at the row's weight and its backend's SYN-ACK, then
 * send every new flow green. */
static void before_established(struct tctx *t, struct harness *h, const struct row *r)
{
	__u32 i;
	int idx;

	if (!ASSERT_OK(t,
		       harness_handshake(h, H_CLIENT, &r->in, topo_backends, topo_n_backends, &idx),
		       "opening SYN and SYN-ACK"))
		return;
	ASSERT_TRUE(t, idx >= 0, "opening SYN steered to a backend");
	for (i = 0; i < SVC_TOPO_COUNT; i++)
		ASSERT_OK(t, dp_weight_set(&h->m, i, W_ALL_GREEN), "weight to 100 %");
}

/* Backend 14 active or retired; the pool holds 14 only, or 15 only. Rows
 * share the skeleton: each starts from 14. */
static void set_14(struct tctx *t, struct harness *h, bool active)
{
	struct shift_backend be;
	__u32 id = active ? 14 : 15;

	if (!ASSERT_OK(t, dp_backend_get(&h->m, 14, &be), "dp_backend_get(14)"))
		return;
	if (active)
		be.flags |= SHIFT_BE_F_ACTIVE;
	else
		be.flags &= ~SHIFT_BE_F_ACTIVE;
	ASSERT_OK(t, dp_backend_put(&h->m, 14, &be, IPPROTO_TCP), "backend 14 (active or not)");
	ASSERT_OK(t, harness_pool(h, SVC_V4_STALE, SHIFT_BLUE, &id, 1), "pool {14} or {15}");
}

/* A handshake's SYN went to backend 14, which is then retired. */
static void before_syn_stale(struct tctx *t, struct harness *h, const struct row *r)
{
	set_14(t, h, true);
	before_established(t, h, r);
	set_14(t, h, false);
}

/* A completed handshake on backend 14 (SYN and first ACK: its entry), then 14
 * is retired. */
static void before_stale(struct tctx *t, struct harness *h, const struct row *r)
{
	struct pkt_spec ack = r->in;
	__u8 buf[PKT_MAX];
	__u32 len, verdict;

	set_14(t, h, true);
	before_established(t, h, r);
	ack.tcp_flags = TH_ACK;
	ack.seq = r->in.seq;
	len = pkt_build(&ack, buf, sizeof(buf), NULL);
	/* By the fixture's hook, whose programs alone are loaded. */
	if (!ASSERT_OK(t,
		       harness_run_prog(h, H_CLIENT, buf, len, H_LO_IFINDEX, NULL, NULL, &verdict),
		       "first ACK"))
		return;
	ASSERT_EQ(t, verdict, harness_expect(h, XDP_TX), "first ACK verdict");
	set_14(t, h, false);
}

/* SVC_V4_TCP's blue pool emptied (every blue backend down); the after hook puts
 * backend 0 back. */
static void before_blue_empty(struct tctx *t, struct harness *h, const struct row *r)
{
	(void)r;
	ASSERT_OK(t, harness_pool(h, SVC_V4_TCP, SHIFT_BLUE, NULL, 0), "blue pool emptied");
}

static void after_blue_back(struct tctx *t, struct harness *h, const struct row *r)
{
	static const __u32 blue = 0;

	(void)r;
	ASSERT_OK(t, harness_pool(h, SVC_V4_TCP, SHIFT_BLUE, &blue, 1), "blue pool {0} again");
}

static void after_not_inserted(struct tctx *t, struct harness *h, const struct row *r)
{
	struct shift_flow f;

	ASSERT_EQ(t, harness_flow_get(h, &r->in, &f), -ENOENT, "no connection-table entry");
}

/* --- the table ------------------------------------------------------------- */

#define NEW_FLOW .st = { [SHIFT_STAT_FLOW_NEW] = 1 }, .new_flow = 1
#define DNAT_TX(id) .verdict = XDP_TX, .out = OUT_DNAT, .be = BE(id), .macs = MACS_NH
#define PASS_SAME .verdict = XDP_PASS, .out = OUT_SAME
#define DROP_FOR(stat) .verdict = XDP_DROP, .out = OUT_NONE, .st = { [stat] = 1 }

const struct row fwd_rows[] = {
	/* IPv4 TCP */
	{ "v4 tcp SYN to a VIP -> blue backend, DNAT, XDP_TX", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40001, 80), DNAT_TX(0), NEW_FLOW },
	{ "v4 tcp SYN at weight 100 % -> green backend", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40002, 80), .weight = W_ALL_GREEN, DNAT_TX(1), NEW_FLOW },
	{ "v4 established flow keeps its backend when the weight moves", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40003, 80, .tcp_flags = TH_ACK, .seq = 1001, .ack = 77),
	  .before = before_established, DNAT_TX(0) },
	{ "v4 tcp with options (doff 8) and a 1000-byte payload", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40004, 80, .tcp_opts = 12, .payload = 1000), DNAT_TX(0), NEW_FLOW },
	{ "v4 odd payload length (checksum of an odd byte)", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40005, 80, .payload = 37), DNAT_TX(0), NEW_FLOW },
	{ "v4 ttl 2 -> forwarded with ttl 1", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40006, 80, .ttl = 2), DNAT_TX(0), NEW_FLOW },
	{ "v4 ttl 1 -> XDP_PASS unchanged, pass_ttl", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40007, 80, .ttl = 1), PASS_SAME,
	  .st = { [SHIFT_STAT_PASS_TTL] = 1 } },
	{ "v4 ttl 0 -> XDP_PASS unchanged, pass_ttl", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40008, 80, .ttl = 0), PASS_SAME,
	  .st = { [SHIFT_STAT_PASS_TTL] = 1 } },
	{ "v4 DF set is not a fragment", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40009, 80, .frag = 0x4000), DNAT_TX(0), NEW_FLOW },
	{ "v4 Ethernet padding after tot_len is kept", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40010, 80, .payload = 0, .eth_pad = 6), DNAT_TX(0), NEW_FLOW },
	{ "v4 IP options IHL 6 (router alert) kept intact", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40011, 80, .ip_opts = 4), DNAT_TX(0), NEW_FLOW },
	{ "v4 IP options IHL 15 kept intact", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40012, 80, .ip_opts = 40), DNAT_TX(0), NEW_FLOW },
	{ "v4 next hop on another ifindex -> XDP_REDIRECT", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4_REDIR, TCP, 40013, 80), .verdict = XDP_REDIRECT, .out = OUT_DNAT,
	  .be = BE(13), .macs = MACS_NH, NEW_FLOW },
	/* Its backend's packet, but no new connection of its (flow_new 0). */
	{ "v4 tcp RST of an unknown flow: forwarded, not inserted, not counted new", H_CLIENT,
	  IN_LO, PKT4(CL4, VIP4, TCP, 40014, 80, .tcp_flags = TH_RST | TH_ACK), DNAT_TX(0),
	  .after = after_not_inserted },
	{ "v4 tcp bare RST of an unknown flow: the same", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40015, 80, .tcp_flags = TH_RST), DNAT_TX(0),
	  .after = after_not_inserted },

	/* IPv4 UDP */
	{ "v4 udp to a VIP -> DNAT", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, UDP, 40101, 53, .payload = 32), DNAT_TX(2), NEW_FLOW },
	{ "v4 udp zero checksum stays zero", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, UDP, 40102, 53, .udp_csum_zero = 1), DNAT_TX(2), NEW_FLOW },
	{ "v4 udp at weight 100 % -> green", H_CLIENT, IN_LO, PKT4(CL4, VIP4, UDP, 40103, 53),
	  .weight = W_ALL_GREEN, DNAT_TX(3), NEW_FLOW },
	{ "v4 udp odd payload", H_CLIENT, IN_LO, PKT4(CL4, VIP4, UDP, 40104, 53, .payload = 11),
	  DNAT_TX(2), NEW_FLOW },

	/* IPv6 */
	{ "v6 tcp SYN to a VIP -> blue backend", H_CLIENT, IN_LO, PKT6(CL6, VIP6, TCP, 40201, 443),
	  DNAT_TX(4), NEW_FLOW },
	{ "v6 tcp SYN at weight 100 % -> green", H_CLIENT, IN_LO, PKT6(CL6, VIP6, TCP, 40202, 443),
	  .weight = W_ALL_GREEN, DNAT_TX(5), NEW_FLOW },
	{ "v6 established flow keeps its backend when the weight moves", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40203, 443, .tcp_flags = TH_ACK, .seq = 1001),
	  .before = before_established, DNAT_TX(4) },
	{ "v6 udp -> DNAT", H_CLIENT, IN_LO, PKT6(CL6, VIP6, UDP, 40204, 53, .payload = 40),
	  DNAT_TX(6), NEW_FLOW },
	{ "v6 hop limit 2 -> forwarded with 1", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40205, 443, .ttl = 2), DNAT_TX(4), NEW_FLOW },
	{ "v6 hop limit 1 -> XDP_PASS unchanged, pass_ttl", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40206, 443, .ttl = 1), PASS_SAME,
	  .st = { [SHIFT_STAT_PASS_TTL] = 1 } },
	{ "v6 1 extension header (hop-by-hop) kept", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40207, 443, .n_ext = 1, .ext = { 0 }), DNAT_TX(4), NEW_FLOW },
	{ "v6 4 extension headers (hbh, dst 16 B, routing, dst) kept", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40208, 443, .n_ext = 4, .ext = { 0, 60, 43, 60 },
	       .ext_hdrlen = { 0, 1, 0, 0 }),
	  DNAT_TX(4), NEW_FLOW },
	{ "v6 4 extension headers, udp", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, UDP, 40209, 53, .n_ext = 4, .ext = { 0, 43, 60, 60 }), DNAT_TX(6),
	  NEW_FLOW },
	{ "v6 5 extension headers -> drop ipv6_ext", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40210, 443, .n_ext = 5, .ext = { 0, 60, 43, 60, 60 }),
	  DROP_FOR(SHIFT_STAT_DROP_IPV6_EXT) },
	{ "v6 truncated extension header -> drop truncated", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40211, 443, .n_ext = 1, .ext = { 0 }), .mangle = m_v6_ext_long,
	  DROP_FOR(SHIFT_STAT_DROP_TRUNCATED) },
	{ "v6 fragment header -> drop fragment", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40212, 443, .n_ext = 1, .ext = { 44 }),
	  DROP_FOR(SHIFT_STAT_DROP_FRAGMENT) },
	{ "v6 fragment header after hop-by-hop -> drop fragment", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, UDP, 40213, 53, .n_ext = 2, .ext = { 0, 44 }),
	  DROP_FOR(SHIFT_STAT_DROP_FRAGMENT) },
	{ "v6 payload_len beyond the frame -> drop bad_length", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40214, 443), .mangle = m_v6_plen_plus8,
	  DROP_FOR(SHIFT_STAT_DROP_BAD_LENGTH) },
	{ "v6 icmpv6 to a VIP -> pass", H_CLIENT, IN_LO, PKT6(CL6, VIP6, IPPROTO_ICMPV6, 1, 2),
	  PASS_SAME },
	{ "v6 no next header (59) to a VIP -> pass", H_CLIENT, IN_LO, PKT6(CL6, VIP6, 59, 1, 2),
	  PASS_SAME },
	{ "v6 ESP to a VIP -> pass", H_CLIENT, IN_LO, PKT6(CL6, VIP6, IPPROTO_ESP, 1, 2),
	  PASS_SAME },
	{ "v6 non-VIP with a fragment header -> pass", H_CLIENT, IN_LO,
	  PKT6(CL6, NONVIP6, TCP, 40215, 443, .n_ext = 1, .ext = { 44 }), PASS_SAME },
	{ "v6 non-VIP with 5 extension headers -> pass", H_CLIENT, IN_LO,
	  PKT6(CL6, NONVIP6, TCP, 40216, 443, .n_ext = 5, .ext = { 0, 60, 43, 60, 60 }),
	  PASS_SAME },
	{ "v6 non-VIP truncated extension header -> pass", H_CLIENT, IN_LO,
	  PKT6(CL6, NONVIP6, TCP, 40217, 443, .n_ext = 1, .ext = { 0 }), .mangle = m_v6_ext_long,
	  PASS_SAME },
	{ "v6 non-VIP tcp -> pass unchanged", H_CLIENT, IN_LO, PKT6(CL6, NONVIP6, TCP, 40218, 443),
	  PASS_SAME },

	/* Not ours */
	{ "non-VIP v4 tcp -> pass unchanged", H_CLIENT, IN_LO, PKT4(CL4, NONVIP4, TCP, 40301, 80),
	  PASS_SAME },
	{ "non-VIP v4 udp -> pass unchanged", H_CLIENT, IN_LO, PKT4(CL4, NONVIP4, UDP, 40302, 53),
	  PASS_SAME },
	{ "VIP address, port without a service -> pass unchanged", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40303, 81), PASS_SAME },
	{ "VIP address, udp to a tcp-only port -> pass unchanged", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, UDP, 40304, 80), PASS_SAME },
	{ "icmp echo to a VIP -> pass", H_CLIENT, IN_LO, PKT4(CL4, VIP4, IPPROTO_ICMP, 1, 2),
	  PASS_SAME },
	{ "GRE to a VIP -> pass", H_CLIENT, IN_LO, PKT4(CL4, VIP4, IPPROTO_GRE, 1, 2), PASS_SAME },
	{ "ARP -> pass",
	  H_CLIENT,
	  IN_LO,
	  { .dmac = MAC_EDGE, .smac = MAC_CLIENT, .family = 0, .ethertype = 0x0806, .payload = 28 },
	  PASS_SAME },

	/* VLAN */
	{ "802.1Q tagged v4 SYN -> DNAT, tag kept", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40401, 80, .tpid = { 0x8100 }, .tci = { 100 }), DNAT_TX(0),
	  NEW_FLOW },
	{ "802.1ad tagged v4 SYN -> DNAT, tag kept", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40402, 80, .tpid = { 0x88a8 }, .tci = { 0x2c8 }), DNAT_TX(0),
	  NEW_FLOW },
	{ "802.1Q tagged v6 udp -> DNAT, tag kept", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, UDP, 40403, 53, .tpid = { 0x8100 }, .tci = { 7 }), DNAT_TX(6), NEW_FLOW },
	{ "802.1ad + 802.1Q (two tags) -> pass unchanged", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40404, 80, .tpid = { 0x88a8, 0x8100 }, .tci = { 1, 2 }), PASS_SAME },
	{ "802.1Q + 802.1Q (two tags) -> pass unchanged", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40405, 443, .tpid = { 0x8100, 0x8100 }, .tci = { 1, 2 }),
	  PASS_SAME },
	{ "802.1Q tagged non-VIP -> pass unchanged", H_CLIENT, IN_LO,
	  PKT4(CL4, NONVIP4, TCP, 40406, 80, .tpid = { 0x8100 }, .tci = { 100 }), PASS_SAME },
	{ "802.1Q tagged bad IHL to a VIP -> drop bad_ihl", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40407, 80, .tpid = { 0x8100 }, .tci = { 100 }), .mangle = m_ihl4,
	  DROP_FOR(SHIFT_STAT_DROP_BAD_IHL) },

	/* Malformed IPv4 to a VIP: dropped and counted by reason */
	{ "v4 IHL 4 -> drop bad_ihl", H_CLIENT, IN_LO, PKT4(CL4, VIP4, TCP, 40501, 80),
	  .mangle = m_ihl4, DROP_FOR(SHIFT_STAT_DROP_BAD_IHL) },
	{ "v4 IHL 0 -> drop bad_ihl", H_CLIENT, IN_LO, PKT4(CL4, VIP4, UDP, 40502, 53),
	  .mangle = m_ihl0, DROP_FOR(SHIFT_STAT_DROP_BAD_IHL) },
	{ "v4 tot_len 19 (< IHL*4) -> drop bad_length", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40503, 80), .mangle = m_totlen_19,
	  DROP_FOR(SHIFT_STAT_DROP_BAD_LENGTH) },
	{ "v4 tot_len one byte beyond the frame -> drop bad_length", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40504, 80), .mangle = m_totlen_plus1,
	  DROP_FOR(SHIFT_STAT_DROP_BAD_LENGTH) },
	{ "v4 MF set -> drop fragment", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40505, 80, .frag = 0x2000), DROP_FOR(SHIFT_STAT_DROP_FRAGMENT) },
	{ "v4 fragment offset 8 -> drop fragment", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, UDP, 40506, 53, .frag = 0x0001), DROP_FOR(SHIFT_STAT_DROP_FRAGMENT) },
	{ "v4 last fragment (offset, no MF) -> drop fragment", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40507, 80, .frag = 0x00b9), DROP_FOR(SHIFT_STAT_DROP_FRAGMENT) },
	{ "v4 10 bytes of tcp header within tot_len -> drop truncated", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40508, 80), .mangle = m_tcp_10,
	  DROP_FOR(SHIFT_STAT_DROP_TRUNCATED) },
	{ "v4 4 bytes of udp header within tot_len -> drop truncated", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, UDP, 40509, 53), .mangle = m_udp_4, DROP_FOR(SHIFT_STAT_DROP_TRUNCATED) },
	{ "v4 tcp doff 4 -> drop bad_length", H_CLIENT, IN_LO, PKT4(CL4, VIP4, TCP, 40510, 80),
	  .mangle = m_doff4, DROP_FOR(SHIFT_STAT_DROP_BAD_LENGTH) },
	{ "v4 tcp doff 15 beyond tot_len -> drop bad_length", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40511, 80), .mangle = m_doff15,
	  DROP_FOR(SHIFT_STAT_DROP_BAD_LENGTH) },
	{ "v4 udp len 7 -> drop bad_length", H_CLIENT, IN_LO, PKT4(CL4, VIP4, UDP, 40512, 53),
	  .mangle = m_udplen7, DROP_FOR(SHIFT_STAT_DROP_BAD_LENGTH) },
	{ "v4 udp len beyond tot_len -> drop bad_length", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, UDP, 40513, 53), .mangle = m_udplen_plus1,
	  DROP_FOR(SHIFT_STAT_DROP_BAD_LENGTH) },
	{ "v4 19 bytes of IP header (to a VIP) -> pass, destination unknown", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40514, 80), .mangle = m_cut_ip19, PASS_SAME },

	/* The same malformations not to a VIP: the kernel's business */
	{ "non-VIP IHL 4 -> pass", H_CLIENT, IN_LO, PKT4(CL4, NONVIP4, TCP, 40601, 80),
	  .mangle = m_ihl4, PASS_SAME },
	{ "non-VIP tot_len 19 -> pass", H_CLIENT, IN_LO, PKT4(CL4, NONVIP4, TCP, 40602, 80),
	  .mangle = m_totlen_19, PASS_SAME },
	{ "non-VIP tot_len beyond the frame -> pass", H_CLIENT, IN_LO,
	  PKT4(CL4, NONVIP4, TCP, 40603, 80), .mangle = m_totlen_plus1, PASS_SAME },
	{ "non-VIP MF fragment -> pass", H_CLIENT, IN_LO,
	  PKT4(CL4, NONVIP4, TCP, 40604, 80, .frag = 0x2000), PASS_SAME },
	{ "non-VIP 10 bytes of tcp -> pass", H_CLIENT, IN_LO, PKT4(CL4, NONVIP4, TCP, 40605, 80),
	  .mangle = m_tcp_10, PASS_SAME },
	{ "non-VIP tcp doff 4 -> pass", H_CLIENT, IN_LO, PKT4(CL4, NONVIP4, TCP, 40606, 80),
	  .mangle = m_doff4, PASS_SAME },
	{ "non-VIP udp len 7 -> pass", H_CLIENT, IN_LO, PKT4(CL4, NONVIP4, UDP, 40607, 53),
	  .mangle = m_udplen7, PASS_SAME },

	/* Source-prefix overrides (installed by fwd_overrides) */
	{ "override v4: 192.0.2.0/24 pinned green at weight 0", H_CLIENT, IN_LO,
	  PKT4(OVR_GREEN4, OVR_VIP4, TCP, 40701, 80), DNAT_TX(9),
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1, [SHIFT_STAT_OVERRIDE_HIT] = 1 }, .new_flow = 1 },
	{ "override v4: longer 192.0.2.128/25 pinned blue at weight 100 %", H_CLIENT, IN_LO,
	  PKT4(OVR_BLUE25_4, OVR_VIP4, TCP, 40702, 80), .weight = W_ALL_GREEN, DNAT_TX(8),
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1, [SHIFT_STAT_OVERRIDE_HIT] = 1 }, .new_flow = 1 },
	{ "override v4: 203.0.113.0/24 pinned blue at weight 100 %", H_CLIENT, IN_LO,
	  PKT4(OVR_BLUE4, OVR_VIP4, TCP, 40703, 80), .weight = W_ALL_GREEN, DNAT_TX(8),
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1, [SHIFT_STAT_OVERRIDE_HIT] = 1 }, .new_flow = 1 },
	{ "override v4: an unpinned client follows the weight", H_CLIENT, IN_LO,
	  PKT4(CL4, OVR_VIP4, TCP, 40704, 80), .weight = W_ALL_GREEN, DNAT_TX(9), NEW_FLOW },
	{ "override v4: latched ignores the green pin", H_CLIENT, IN_LO,
	  PKT4(OVR_GREEN4B, OVR_VIP4, TCP, 40705, 80), .weight = W_LATCHED(W_ALL_GREEN), DNAT_TX(8),
	  NEW_FLOW },
	{ "override v4: a service without the flag ignores the trie", H_CLIENT, IN_LO,
	  PKT4(OVR_GREEN4C, VIP4, TCP, 40706, 80), DNAT_TX(0), NEW_FLOW },
	{ "override v6: 2001:db8:aa::/48 pinned green at weight 0", H_CLIENT, IN_LO,
	  PKT6(OVR_GREEN6, OVR_VIP6, TCP, 40707, 80), DNAT_TX(11),
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1, [SHIFT_STAT_OVERRIDE_HIT] = 1 }, .new_flow = 1 },
	{ "override v6: 2001:db8:bb::/48 pinned blue at weight 100 %", H_CLIENT, IN_LO,
	  PKT6(OVR_BLUE6, OVR_VIP6, TCP, 40708, 80), .weight = W_ALL_GREEN, DNAT_TX(10),
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1, [SHIFT_STAT_OVERRIDE_HIT] = 1 }, .new_flow = 1 },
	{ "override v6: latched ignores the green pin", H_CLIENT, IN_LO,
	  PKT6(OVR_GREEN6B, OVR_VIP6, TCP, 40709, 80), .weight = W_LATCHED(0), DNAT_TX(10),
	  NEW_FLOW },
	{ "latched at weight 100 %: all blue", H_CLIENT, IN_LO, PKT4(CL4, VIP4, TCP, 40710, 80),
	  .weight = W_LATCHED(W_ALL_GREEN), DNAT_TX(0), NEW_FLOW },

	/* Pools */
	{ "both pools empty -> drop no_backend", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4_NONE, TCP, 40801, 80), DROP_FOR(SHIFT_STAT_DROP_NO_BACKEND),
	  .after = after_not_inserted },
	{ "green pool empty at weight 100 % -> blue", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4_BLUEONLY, TCP, 40802, 80), .weight = W_ALL_GREEN, DNAT_TX(12), NEW_FLOW },
	/* Green is not released to users at weight 0: an empty blue pool does not
	 * hand them to it. */
	{ "blue pool empty at weight 0 -> drop no_backend, not green", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40804, 80), .before = before_blue_empty,
	  DROP_FOR(SHIFT_STAT_DROP_NO_BACKEND), .after = after_blue_back },
	{ "blue pool empty at weight 0.01 % -> green", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4, TCP, 40805, 80), .weight = 1, .before = before_blue_empty, DNAT_TX(1),
	  NEW_FLOW, .after = after_blue_back },
	{ "flow on a retired backend is steered afresh, its entry rewritten", H_CLIENT, IN_LO,
	  PKT4(CL4, VIP4_STALE, TCP, 40803, 80, .tcp_flags = TH_ACK, .seq = 1002),
	  .before = before_stale, DNAT_TX(15), NEW_FLOW },
	/* Past the SYN without a handshake: no entry, and no new connection (its
	 * SYN was one, or it is spoofed). */
	{ "first ACK whose SYN's backend was retired: steered afresh, no entry, not new", H_CLIENT,
	  IN_LO, PKT4(CL4, VIP4_STALE, TCP, 40806, 80, .tcp_flags = TH_ACK, .seq = 1001),
	  .before = before_syn_stale, DNAT_TX(15), .no_entry = 1 },
	{ "ACK without a handshake (mid-stream, spoofed): by the weight, no entry, not new",
	  H_CLIENT, IN_LO, PKT4(CL4, VIP4, TCP, 40807, 80, .tcp_flags = TH_ACK, .seq = 5555),
	  .weight = W_ALL_GREEN, DNAT_TX(1), .no_entry = 1 },
	{ "v6 ACK without a handshake: by the weight, no entry, not new", H_CLIENT, IN_LO,
	  PKT6(CL6, VIP6, TCP, 40808, 443, .tcp_flags = TH_ACK | TH_PSH, .seq = 5555),
	  .weight = W_ALL_GREEN, DNAT_TX(5), .no_entry = 1 },

	/* Next hop by bpf_fib_lookup (no cached next hop in the backend entry) */
	{ "fib: backend neighbour on the ingress side -> XDP_TX", H_CLIENT, IN_BE,
	  PKT4(CL4, VIP4_FIB, TCP, 40901, 80), .verdict = XDP_TX, .out = OUT_DNAT, .be = BE(16),
	  .macs = MACS_FIB_BE, NEW_FLOW },
	{ "fib: backend neighbour on another interface -> XDP_REDIRECT", H_CLIENT, IN_CL,
	  PKT4(CL4, VIP4_FIB, TCP, 40902, 80), .verdict = XDP_REDIRECT, .out = OUT_DNAT,
	  .be = BE(16), .macs = MACS_FIB_BE, NEW_FLOW },
	{ "fib v6: backend neighbour on another interface -> XDP_REDIRECT", H_CLIENT, IN_CL,
	  PKT6(CL6, VIP6_FIB, TCP, 40903, 80), .verdict = XDP_REDIRECT, .out = OUT_DNAT,
	  .be = BE(17), .macs = MACS_FIB_BE, NEW_FLOW },
	{ "fib: no neighbour -> pass, already DNATed, pass_no_neigh", H_CLIENT, IN_CL,
	  PKT4(CL4, VIP4_NONEIGH, TCP, 40904, 80), .verdict = XDP_PASS, .out = OUT_DNAT,
	  .be = BE(18), .macs = MACS_KEEP,
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1, [SHIFT_STAT_PASS_NO_NEIGH] = 1 }, .new_flow = 1 },
	{ "fib: no route -> pass, already DNATed, pass_no_neigh", H_CLIENT, IN_CL,
	  PKT4(CL4, VIP4_NOROUTE, TCP, 40905, 80), .verdict = XDP_PASS, .out = OUT_DNAT,
	  .be = BE(19), .macs = MACS_KEEP,
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1, [SHIFT_STAT_PASS_NO_NEIGH] = 1 }, .new_flow = 1 },
};

int fwd_overrides(struct tctx *t, struct harness *h)
{
	static const struct {
		__u32 svc;
		__u8 family;
		__u8 addr[16];
		__u8 plen;
		enum shift_color color;
	} ovr[] = {
		{ SVC_V4_OVR, SHIFT_AF_INET, { 192, 0, 2, 0 }, 24, SHIFT_GREEN },
		{ SVC_V4_OVR, SHIFT_AF_INET, { 192, 0, 2, 128 }, 25, SHIFT_BLUE },
		{ SVC_V4_OVR, SHIFT_AF_INET, { 203, 0, 113, 0 }, 24, SHIFT_BLUE },
		/* On a service without SHIFT_SVC_F_OVERRIDES: must be ignored. */
		{ SVC_V4_TCP, SHIFT_AF_INET, { 192, 0, 2, 0 }, 24, SHIFT_GREEN },
		{ SVC_V6_OVR, SHIFT_AF_INET6, { 0x20, 0x01, 0x0d, 0xb8, 0, 0xaa }, 48, SHIFT_GREEN },
		{ SVC_V6_OVR, SHIFT_AF_INET6, { 0x20, 0x01, 0x0d, 0xb8, 0, 0xbb }, 48, SHIFT_BLUE },
	};
	__u32 addr[4];
	size_t i;

	for (i = 0; i < sizeof(ovr) / sizeof(ovr[0]); i++) {
		memcpy(addr, ovr[i].addr, 16);
		if (!ASSERT_OK(t,
			       dp_override_put(&h->m, ovr[i].svc, ovr[i].family, addr, ovr[i].plen,
					       ovr[i].color),
			       "dp_override_put"))
			return -1;
	}
	return 0;
}

const size_t fwd_rows_n = sizeof(fwd_rows) / sizeof(fwd_rows[0]);
