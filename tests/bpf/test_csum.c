// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * UDP checksum corner cases of the incremental update (RFC 1624 + RFC 768):
 * a UDP checksum that computes to 0 must be sent as 0xffff (0 means "no
 * checksum" in IPv4 and is invalid in IPv6, where receivers drop it). The
 * client port (forward) or the client port in the reply (return) is searched
 * so that the rewritten packet's checksum computes to exactly 0, or the input
 * one does; the rows then go through the ordinary table checks.
 */
#include <string.h>

#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define BE2A                 \
	{                    \
		10, 1, 0, 12 \
	}
#define BE6A                                                                  \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12 \
	}

enum which {
	CSUM_OUT_DNAT, /* the DNAT'ed output computes to 0 */
	CSUM_OUT_SNAT, /* the SNAT'ed output computes to 0 */
	CSUM_IN, /* the input computes to 0 (sent as 0xffff) */
};

static __u16 udp_check_of(const struct pkt_spec *s)
{
	__u8 buf[PKT_MAX];
	struct pkt_layout lo;

	if (!pkt_build(s, buf, sizeof(buf), &lo))
		return 0;
	return (__u16)(buf[lo.l4 + 6] << 8 | buf[lo.l4 + 7]);
}

/* Find the client port making the chosen packet's UDP checksum 0xffff. */
static bool search_port(struct pkt_spec *in, const struct topo_backend *b, enum which w)
{
	const struct topo_service *svc = &topo_services[b->svc];
	struct pkt_spec probe;
	__u32 port;

	for (port = 1; port <= 65535; port++) {
		if (w == CSUM_OUT_SNAT)
			in->dport = (__u16)port;
		else
			in->sport = (__u16)port;
		probe = *in;
		if (w == CSUM_OUT_DNAT) {
			memcpy(probe.daddr, b->addr, 16);
			probe.dport = b->port;
		} else if (w == CSUM_OUT_SNAT) {
			memcpy(probe.saddr, svc->vip, 16);
			probe.sport = svc->port;
		}
		if (udp_check_of(&probe) == 0xffff)
			return true;
	}
	return false;
}

static const struct {
	const char *desc;
	struct row row;
	enum which which;
} csum_cases[] = {
	{ "v4 udp: DNAT'ed checksum computing to 0 is sent as 0xffff",
	  { .prog = H_CLIENT,
	    .in = PKT4(CL4, VIP4, IPPROTO_UDP, 0, 53, .payload = 20),
	    .verdict = XDP_TX,
	    .out = OUT_DNAT,
	    .be = BE(2),
	    .macs = MACS_NH,
	    .st = { [SHIFT_STAT_FLOW_NEW] = 1 },
	    .new_flow = 1 },
	  CSUM_OUT_DNAT },
	{ "v6 udp: DNAT'ed checksum computing to 0 is sent as 0xffff",
	  { .prog = H_CLIENT,
	    .in = PKT6(CL6, VIP6, IPPROTO_UDP, 0, 53, .payload = 20),
	    .verdict = XDP_TX,
	    .out = OUT_DNAT,
	    .be = BE(6),
	    .macs = MACS_NH,
	    .st = { [SHIFT_STAT_FLOW_NEW] = 1 },
	    .new_flow = 1 },
	  CSUM_OUT_DNAT },
	{ "v4 udp: input checksum 0xffff (computes to 0) -> DNAT correct",
	  { .prog = H_CLIENT,
	    .in = PKT4(CL4, VIP4, IPPROTO_UDP, 0, 53, .payload = 21),
	    .verdict = XDP_TX,
	    .out = OUT_DNAT,
	    .be = BE(2),
	    .macs = MACS_NH,
	    .st = { [SHIFT_STAT_FLOW_NEW] = 1 },
	    .new_flow = 1 },
	  CSUM_IN },
	{ "v6 udp: input checksum 0xffff (computes to 0) -> DNAT correct",
	  { .prog = H_CLIENT,
	    .in = PKT6(CL6, VIP6, IPPROTO_UDP, 0, 53, .payload = 21),
	    .verdict = XDP_TX,
	    .out = OUT_DNAT,
	    .be = BE(6),
	    .macs = MACS_NH,
	    .st = { [SHIFT_STAT_FLOW_NEW] = 1 },
	    .new_flow = 1 },
	  CSUM_IN },
	{ "v4 udp reply: SNAT'ed checksum computing to 0 is sent as 0xffff",
	  { .prog = H_BACKEND,
	    .ingress = IN_BE,
	    .in = PKT4(BE2A, CL4, IPPROTO_UDP, 5353, 0, .payload = 20),
	    .verdict = XDP_REDIRECT,
	    .out = OUT_SNAT,
	    .be = BE(2),
	    .macs = MACS_FIB_CL },
	  CSUM_OUT_SNAT },
	{ "v6 udp reply: SNAT'ed checksum computing to 0 is sent as 0xffff",
	  { .prog = H_BACKEND,
	    .ingress = IN_BE,
	    .in = PKT6(BE6A, CL6, IPPROTO_UDP, 5353, 0, .payload = 20),
	    .verdict = XDP_REDIRECT,
	    .out = OUT_SNAT,
	    .be = BE(6),
	    .macs = MACS_FIB_CL },
	  CSUM_OUT_SNAT },
};

/* Run s through prog; 0 when it left rewritten with every checksum right (and
 * *info describes it), -1 otherwise (a failure is recorded). */
static int run_verified(struct tctx *t, struct harness *h, enum h_prog prog,
			const struct pkt_spec *s, struct pkt_info *info)
{
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen = sizeof(out), verdict = 0;
	char why[128] = "";

	len = pkt_build(s, in, sizeof(in), NULL);
	if (!ASSERT_OK(t, harness_run_prog(h, prog, in, len, H_LO_IFINDEX, out, &olen, &verdict),
		       "BPF_PROG_TEST_RUN") ||
	    !ASSERT_TRUE(t,
			 verdict != harness_expect(h, XDP_PASS) &&
				 verdict != harness_expect(h, XDP_DROP),
			 "sent on"))
		return -1;
	if (pkt_verify(out, olen, info, why, sizeof(why))) {
		test_failf(t, __FILE__, __LINE__, "output checksums: %s", why);
		return -1;
	}
	return 0;
}

/*
 * A backend on the VIP's own port: no port word changes, the TC path skips
 * that checksum update, and the addresses' update must still be whole (the
 * kernel checks skb->csum too in the CHECKSUM_COMPLETE run). The SYN, the
 * client's first ACK with payload, and the backend's reply.
 */
static void same_port_run(struct tctx *t, struct fixture *f)
{
	struct topo_backend bes[2] = { topo_backends[0], topo_backends[1] };
	struct pkt_spec syn = PKT4(CL4, VIP4, IPPROTO_TCP, 47100, 80, .payload = 0);
	struct pkt_spec ack = PKT4(CL4, VIP4, IPPROTO_TCP, 47100, 80, .tcp_flags = TH_ACK,
				   .seq = 1001, .payload = 40);
	struct pkt_spec r =
		REPLY4(BE0A, CL4, IPPROTO_TCP, 80, 47100, .tcp_flags = TH_ACK, .payload = 40);
	static const __u8 vip[4] = VIP4;
	struct pkt_info info;
	struct harness *h;
	int i;

	if (!test_sub(t, "csum: v4 tcp, backend on the VIP's port: SYN, ACK, reply"))
		return;
	h = fixture_get(t, f);
	if (!h)
		return;
	for (i = 0; i < 2; i++) {
		bes[i].port = 80;
		if (!ASSERT_OK(t, harness_add_backend(h, &bes[i]), "backend on port 80"))
			goto out;
	}
	if (run_verified(t, h, H_CLIENT, &syn, &info) == 0)
		ASSERT_TRUE(t,
			    info.dport == 80 && (!memcmp(info.daddr, bes[0].addr, 4) ||
						 !memcmp(info.daddr, bes[1].addr, 4)),
			    "SYN: DNAT to a backend, port 80");
	if (run_verified(t, h, H_CLIENT, &ack, &info) == 0) {
		ASSERT_TRUE(t, info.dport == 80, "ACK: port 80");
		/* The reply comes from the backend the ACK went to. */
		memcpy(r.saddr, info.daddr, 4);
	}
	if (run_verified(t, h, H_BACKEND, &r, &info) == 0)
		ASSERT_TRUE(t, info.sport == 80 && !memcmp(info.saddr, vip, 4),
			    "reply: SNAT to VIP:80");
out:
	for (i = 0; i < 2; i++)
		ASSERT_OK(t, harness_add_backend(h, &topo_backends[i]), "backend restored");
}

void csum_run(struct tctx *t, struct fixture *f)
{
	struct harness *h;
	size_t i;

	for (i = 0; i < sizeof(csum_cases) / sizeof(csum_cases[0]); i++) {
		struct row r = csum_cases[i].row;

		if (!test_sub(t, "csum: %s", csum_cases[i].desc))
			continue;
		h = fixture_get(t, f);
		if (!h)
			continue;
		r.desc = csum_cases[i].desc;
		if (!ASSERT_TRUE(t,
				 search_port(&r.in, &topo_backends[r.be - 1], csum_cases[i].which),
				 "a port giving a zero checksum exists"))
			continue;
		test_debug(t, "client port %u", r.prog == H_BACKEND ? r.in.dport : r.in.sport);
		table_run_row(t, h, &f->env, &r);
	}
	same_port_run(t, f);
}
