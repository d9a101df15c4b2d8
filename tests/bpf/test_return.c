// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The return path (shift_xdp_backend) and the one-armed program
 * (shift_xdp_both), one row per case: see table.h for what every row checks.
 * The FIB rows use the veth pair of fib_env_setup(): client routes and
 * permanent neighbours on shv1, backends on shv0.
 */
#include <errno.h>
#include <string.h>

#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

#define BE2A                 \
	{                    \
		10, 1, 0, 12 \
	}
#define BE_UNKNOWN4          \
	{                    \
		10, 1, 0, 99 \
	}
#define BE4A                                                                  \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11 \
	}
#define BE6A                                                                  \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12 \
	}
#define CL4_NOROUTE            \
	{                      \
		203, 0, 113, 9 \
	}
#define CL4_NONEIGH             \
	{                       \
		198, 51, 100, 8 \
	}
/* The edge host's own addresses on shv0: where its health-check replies go. */
#define EDGE4               \
	{                   \
		10, 1, 0, 1 \
	}
#define EDGE6                                                              \
	{                                                                  \
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 \
	}
#define CL6_NOROUTE                                                           \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0xdd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 \
	}

/* These rows test the FIB fallback: the reply's flow has no entry (an earlier
 * row may have opened one with the same client port; test_synslot.c covers
 * replies sent by the next hop an entry keeps). */
#define SNAT_VIA(v, id, m)                                                             \
	.verdict = v, .out = OUT_SNAT, .be = BE(id), .macs = m, .before = forget_flow, \
	.after = check_adopted
#define PASS_SAME .verdict = XDP_PASS, .out = OUT_SAME
#define NO_NEIGH .st = { [SHIFT_STAT_PASS_NO_NEIGH] = 1 }

/* The client -> VIP packet of a reply row's flow (false: no such backend). */
static bool client_side(const struct row *r, struct pkt_spec *c, const struct topo_backend **b)
{
	const struct topo_service *svc = NULL;
	__u32 i;

	*c = r->in;
	for (i = 0; i < topo_n_backends; i++)
		if (topo_backends[i].id == r->be - 1) {
			*b = &topo_backends[i];
			svc = &topo_services[topo_backends[i].svc];
		}
	if (!svc)
		return false;
	memcpy(c->saddr, r->in.daddr, sizeof(c->saddr));
	memcpy(c->daddr, svc->vip, sizeof(c->daddr));
	c->sport = r->in.dport;
	c->dport = svc->port;
	return true;
}

/* Delete the connection-table entry of a reply row's flow, if any. */
static void forget_flow(struct tctx *t, struct harness *h, const struct row *r)
{
	const struct topo_backend *b;
	struct pkt_spec c;

	(void)t;
	if (client_side(r, &c, &b))
		harness_flow_del(h, &c);
}

/*
 * A TCP answer without SYN or RST to a flow the table does not hold writes
 * its entry (flow_adopt(): a mid-stream flow, steered by the weight without
 * one); a SYN-ACK, a RST or a UDP reply writes none.
 */
static void check_adopted(struct tctx *t, struct harness *h, const struct row *r)
{
	const struct topo_backend *b = NULL;
	struct shift_flow f;
	struct pkt_spec c;
	int err;

	if (!client_side(r, &c, &b))
		return;
	err = harness_flow_get(h, &c, &f);
	if (r->in.proto != IPPROTO_TCP || !(r->in.tcp_flags & TH_ACK) ||
	    (r->in.tcp_flags & (TH_SYN | TH_RST))) {
		ASSERT_EQ(t, err, -ENOENT, "no entry written by a SYN-ACK, RST or UDP reply");
		return;
	}
	if (!ASSERT_OK(t, err, "the answer's entry (flow_adopt)"))
		return;
	ASSERT_EQ(t, f.backend_id, b->id, "adopted entry backend_id");
	ASSERT_EQ(t, f.color, b->color, "adopted entry color");
	ASSERT_EQ(t, f.service_id, b->svc, "adopted entry service_id");
	ASSERT_EQ(t, f.hash, harness_hash(&c, h->seed), "adopted entry hash vs userspace hash");
	ASSERT_EQ(t, f.state & (SHIFT_FS_SYNACK | SHIFT_FS_NH), SHIFT_FS_SYNACK | SHIFT_FS_NH,
		  "adopted entry: established, the FIB's next hop to the client");
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void m_ihl4(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	p[lo->l3] = 0x44;
}

static void m_totlen_plus1(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	put16(p + lo->l3 + 2, (__u16)(lo->ip_end - lo->l3 + 1));
}

static void m_doff4(__u8 *p, __u32 *len, const struct pkt_layout *lo)
{
	(void)len;
	p[lo->l4 + 12] = 0x40;
}

const struct row ret_rows[] = {
	{ "v4 tcp SYN-ACK -> SNAT to VIP:80, XDP_REDIRECT to the client side", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 8080, 40001), SNAT_VIA(XDP_REDIRECT, 0, MACS_SYN_CL) },
	{ "v4 tcp reply arriving on the client-side interface -> XDP_TX", H_BACKEND, IN_CL,
	  REPLY4(BE0A, CL4, TCP, 8080, 40002, .tcp_flags = TH_ACK | TH_PSH, .payload = 300),
	  SNAT_VIA(XDP_TX, 0, MACS_FIB_CL) },
	{ "v4 tcp reply with IP options and an odd payload", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 8080, 40003, .ip_opts = 8, .payload = 501),
	  SNAT_VIA(XDP_REDIRECT, 0, MACS_FIB_CL) },
	{ "v4 udp reply -> SNAT to VIP:53", H_BACKEND, IN_BE,
	  REPLY4(BE2A, CL4, UDP, 5353, 40101, .payload = 64),
	  SNAT_VIA(XDP_REDIRECT, 2, MACS_FIB_CL) },
	{ "v4 udp reply with a zero checksum keeps it zero", H_BACKEND, IN_BE,
	  REPLY4(BE2A, CL4, UDP, 5353, 40102, .udp_csum_zero = 1),
	  SNAT_VIA(XDP_REDIRECT, 2, MACS_FIB_CL) },
	{ "v6 tcp SYN-ACK -> SNAT to [VIP]:443", H_BACKEND, IN_BE,
	  REPLY6(BE4A, CL6, TCP, 8443, 40201), SNAT_VIA(XDP_REDIRECT, 4, MACS_SYN_CL) },
	{ "v6 tcp reply on the client side -> XDP_TX", H_BACKEND, IN_CL,
	  REPLY6(BE4A, CL6, TCP, 8443, 40202, .tcp_flags = TH_ACK | TH_PSH, .payload = 999),
	  SNAT_VIA(XDP_TX, 4, MACS_FIB_CL) },
	{ "v6 udp reply -> SNAT to [VIP]:53", H_BACKEND, IN_BE,
	  REPLY6(BE6A, CL6, UDP, 5353, 40203, .payload = 33),
	  SNAT_VIA(XDP_REDIRECT, 6, MACS_FIB_CL) },
	{ "v6 udp reply with extension headers", H_BACKEND, IN_BE,
	  REPLY6(BE6A, CL6, UDP, 5353, 40204, .n_ext = 2, .ext = { 0, 60 }),
	  SNAT_VIA(XDP_REDIRECT, 6, MACS_FIB_CL) },
	{ "802.1Q tagged v4 reply -> SNAT, tag kept", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 8080, 40004, .tpid = { 0x8100 }, .tci = { 42 }),
	  SNAT_VIA(XDP_REDIRECT, 0, MACS_SYN_CL) },
	/*
	 * The FIB lookup comes before the rewrite: a destination that is local
	 * (the edge host's own sockets, e.g. its health checks) or unroutable is
	 * not a client of ours, and its packet passes untouched.
	 */
	{ "no route to the client -> pass unchanged, nothing counted", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4_NOROUTE, TCP, 8080, 40005), PASS_SAME },
	{ "reply to the edge host itself (health check) -> pass unchanged", H_BACKEND, IN_BE,
	  REPLY4(BE0A, EDGE4, TCP, 8080, 40016), PASS_SAME },
	{ "v6 reply to the edge host itself (health check) -> pass unchanged", H_BACKEND, IN_BE,
	  REPLY6(BE4A, EDGE6, TCP, 8443, 40208), PASS_SAME },
	{ "client neighbour unresolved -> pass, already SNATed, pass_no_neigh", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4_NONEIGH, TCP, 8080, 40006), SNAT_VIA(XDP_PASS, 0, MACS_KEEP), NO_NEIGH },
	{ "v6 no route to the client -> pass unchanged, nothing counted", H_BACKEND, IN_BE,
	  REPLY6(BE6A, CL6_NOROUTE, UDP, 5353, 40205), PASS_SAME },
	{ "ttl 1 -> pass unchanged, pass_ttl", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 8080, 40007, .ttl = 1), PASS_SAME,
	  .st = { [SHIFT_STAT_PASS_TTL] = 1 }, .be_unchecked = 1 },
	{ "v6 hop limit 1 -> pass unchanged, pass_ttl", H_BACKEND, IN_BE,
	  REPLY6(BE4A, CL6, TCP, 8443, 40206, .ttl = 1), PASS_SAME,
	  .st = { [SHIFT_STAT_PASS_TTL] = 1 }, .be_unchecked = 1 },
	{ "unknown source -> pass unchanged", H_BACKEND, IN_BE,
	  REPLY4(BE_UNKNOWN4, CL4, TCP, 8080, 40008), PASS_SAME },
	{ "backend address, other port -> pass unchanged", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 9999, 40009), PASS_SAME },
	{ "backend address and port, other protocol -> pass unchanged", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, UDP, 8080, 40010), PASS_SAME },
	{ "client packet to a VIP on the backend NIC -> pass unchanged", H_BACKEND, IN_BE,
	  PKT4(CL4, VIP4, TCP, 40011, 80), PASS_SAME },
	{ "malformed (IHL 4) from a backend -> pass, nothing counted", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 8080, 40012), .mangle = m_ihl4, PASS_SAME },
	{ "tot_len beyond the frame from a backend -> pass, nothing counted", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 8080, 40013), .mangle = m_totlen_plus1, PASS_SAME },
	{ "tcp doff 4 from a backend -> pass, nothing counted", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 8080, 40014), .mangle = m_doff4, PASS_SAME },
	{ "fragment from a backend -> pass, nothing counted", H_BACKEND, IN_BE,
	  REPLY4(BE0A, CL4, TCP, 8080, 40015, .frag = 0x2000), PASS_SAME },
	{ "v6 fragment header from a backend -> pass, nothing counted", H_BACKEND, IN_BE,
	  REPLY6(BE4A, CL6, TCP, 8443, 40207, .n_ext = 1, .ext = { 44 }), PASS_SAME },
};

const struct row both_rows[] = {
	{ "client SYN to a VIP -> forward path", H_BOTH, IN_LO, PKT4(CL4, VIP4, TCP, 41001, 80),
	  .verdict = XDP_TX, .out = OUT_DNAT, .be = BE(0), .macs = MACS_NH,
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1 }, .new_flow = 1 },
	{ "client v6 udp to a VIP -> forward path", H_BOTH, IN_LO, PKT6(CL6, VIP6, UDP, 41002, 53),
	  .verdict = XDP_TX, .out = OUT_DNAT, .be = BE(6), .macs = MACS_NH,
	  .st = { [SHIFT_STAT_FLOW_NEW] = 1 }, .new_flow = 1 },
	{ "backend reply -> return path", H_BOTH, IN_BE, REPLY4(BE0A, CL4, TCP, 8080, 41001),
	  SNAT_VIA(XDP_REDIRECT, 0, MACS_SYN_CL) },
	{ "v6 backend reply -> return path", H_BOTH, IN_BE, REPLY6(BE6A, CL6, UDP, 5353, 41002),
	  SNAT_VIA(XDP_REDIRECT, 6, MACS_FIB_CL) },
	{ "neither to a VIP nor from a backend -> pass unchanged", H_BOTH, IN_LO,
	  PKT4(CL4, NONVIP4, TCP, 41003, 80), PASS_SAME },
	{ "malformed to a VIP -> drop bad_ihl", H_BOTH, IN_LO, PKT4(CL4, VIP4, TCP, 41004, 80),
	  .mangle = m_ihl4, .verdict = XDP_DROP, .out = OUT_NONE,
	  .st = { [SHIFT_STAT_DROP_BAD_IHL] = 1 } },
	{ "malformed from a backend -> pass", H_BOTH, IN_BE, REPLY4(BE0A, CL4, TCP, 8080, 41005),
	  .mangle = m_doff4, PASS_SAME },
};

const size_t ret_rows_n = sizeof(ret_rows) / sizeof(ret_rows[0]);
const size_t both_rows_n = sizeof(both_rows) / sizeof(both_rows[0]);
