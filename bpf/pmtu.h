/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Path MTU discovery through the edge. A backend's answer leaves here as
 * VIP -> client; a router on the clients' side that cannot forward it (DF
 * set, too big for its next link) sends "fragmentation needed" (ICMP type 3
 * code 4) or "packet too big" (ICMPv6 type 2) to the VIP. Left to the edge's
 * kernel it never reaches the backend, whose TCP keeps sending full-size
 * segments into that link: the connection stalls. So the message goes on to
 * the flow's backend, translated as the backend's own packet was, the other
 * way: outer destination VIP -> backend, the quoted packet's source
 * VIP:vport -> backend:port. The quote names the flow (client:cport ->
 * VIP:vport in the connection table). A source-NATed flow's quote gets its
 * destination back too, client:cport -> the edge's address and port the
 * backend talks to, as the kernel's own NAT translates an error related to a
 * connection: the backend then keeps its lower path MTU towards that address,
 * for every client through it. One that names no entry (a handshake not yet
 * complete, an entry evicted) goes to the kernel, counted.
 *
 * Checksums: IPv4's outer and quoted header checksums follow their address
 * changes, so the one's-complement sum over each header stays what it was,
 * and the ICMP checksum needs only the ports' changes. ICMPv6's covers a
 * pseudo-header with the outer destination: every address change and the
 * ports'. Either way the bytes from the IP header on sum as before, so a
 * CHECKSUM_COMPLETE skb's csum stays right but for IPv6's hop limit (no
 * header checksum), which bpf_csum_update() adds. A quoted TCP/UDP checksum
 * is left as it is: the backend's kernel matches the quote by its addresses
 * and ports, as any router's truncated quote requires.
 *
 * Rare, and off every other packet's path: global functions behind the
 * parse's "not ours" exit, checked once by the verifier and compiled apart
 * from the paths every other packet takes.
 */
#ifndef SHIFT_PMTU_H
#define SHIFT_PMTU_H

#include "ctx.h"
#include "parse.h"
#include "conntrack.h"
#include "nat.h"
#include "snat.h"
#include "forward.h"
#include "signals.h"

#define ICMP_FRAG_NEEDED_ 4
#define ICMPV6_PKT_TOOBIG_ 2

/*
 * The backend of the flow whose answer a too-big message to a VIP quotes
 * (vip:vport -> client:cport, in the packet), or NULL. A source-NATed
 * flow's edge address and port (network order) in *sa and *sport; *sport
 * 0 for any other. fam is a constant where this is inlined, so each
 * family's copy reads only its own bytes. k: the caller's room for the
 * lookup keys.
 */
static __always_inline struct shift_backend *
too_big_backend(const __u8 fam, const __u32 *vip, const __u32 *client, const __u16 *ports,
		__u8 proto, union flow_key *k, const __u32 **sa, __u16 *sport)
{
	struct shift_vip_addr *vk = (void *)k;
	struct shift_svc_info *info;
	struct shift_backend *be;
	struct shift_flow *f;
	__u32 sid;

	__builtin_memset(vk, 0, sizeof(*vk));
	vk->addr[0] = vip[0];
	if (fam == SHIFT_AF_INET6) {
		vk->addr[1] = vip[1];
		vk->addr[2] = vip[2];
		vk->addr[3] = vip[3];
	}
	vk->family = fam;
	if (!bpf_map_lookup_elem(&shift_vips, vk))
		return NULL;
	flow_key_fill(k, fam, client, vip, ports[1], ports[0], proto);
	f = flow_lookup(fam, k);
	if (!f)
		goto no_flow;
	sid = f->service_id;
	info = bpf_map_lookup_elem(&shift_svc_info, &sid);
	/* The table's IPv6 key holds the VIP folded to a word: check it whole. */
	if (!info || info->vport != ports[0] || info->proto != proto || info->vip[0] != vip[0])
		goto no_flow;
	if (fam == SHIFT_AF_INET6 &&
	    (info->vip[1] != vip[1] || info->vip[2] != vip[2] || info->vip[3] != vip[3]))
		goto no_flow;
	be = backend_at(&f->backend_id, sid);
	if (!be)
		goto no_flow;
	*sport = f->snat_port;
	if (f->snat_port) {
		struct shift_snat_cfg *cfg = snat_cfg(sid);
		__u32 idx = snat_idx(f->snat_idx);

		/* A reload that took the service's snat away, or its address. */
		if (!cfg || idx >= cfg->n_addrs)
			goto no_flow;
		*sa = cfg->addr[idx];
	}
	return be;
no_flow:
	stat_inc(SHIFT_STAT_PASS_ICMP_NO_FLOW);
	return NULL;
}

/* Sent on to be, translated (counted); to the kernel with no next hop cached. */
static __always_inline int too_big_send(const struct sctx *c, const struct shift_backend *be)
{
	stat_inc(SHIFT_STAT_ICMP_TOO_BIG);
	if (be->flags & SHIFT_BE_F_NH_VALID)
		return forward_cached(c, be);
	/* The kernel forwards it, rewritten, as forward_by() leaves the flows'
	 * packets it cannot send: the FIB's question would not fit this
	 * function's share of the stack. */
	stat_inc(SHIFT_STAT_PASS_NO_NEIGH);
	return XDP_PASS;
}

/* A PARTIAL checksum is no router's: the kernel sums the ICMP it sends
 * itself, and this rewrite could not follow such fields. */
static __always_inline int csum_partial_skb(const struct sctx *c)
{
	return c->tc && sc_csum_state(c) == SC_CSUM_PARTIAL;
}

static __always_inline int too_big4(const struct sctx *c, struct iphdr *iph, void *data_end)
{
	union flow_key k;
	struct shift_backend *be;
	const __u32 *sa = NULL;
	struct icmp_hdr_ *ic;
	struct iphdr *in;
	__u32 diff, qdiff, pdiff;
	__u16 *ports, sport = 0;

	if ((void *)(iph + 1) > data_end || iph->protocol != IPPROTO_ICMP || iph->ihl < 5 ||
	    (iph->frag_off & bpf_htons(IP_MF_ | IP_OFFSET_)))
		return XDP_PASS;
	ic = (void *)iph + iph->ihl * 4;
	if ((void *)(ic + 1) > data_end || ic->type != ICMP_DEST_UNREACH_ ||
	    ic->code != ICMP_FRAG_NEEDED_)
		return XDP_PASS;
	in = (void *)(ic + 1);
	ports = (void *)(in + 1);
	if ((void *)(ports + 2) > data_end || in->ihl != 5 ||
	    (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP))
		return XDP_PASS;
	/* Sent to where the quoted packet came from. */
	if (iph->daddr != in->saddr)
		return XDP_PASS;
	be = too_big_backend(SHIFT_AF_INET, &in->saddr, &in->daddr, ports, in->protocol, &k, &sa,
			     &sport);
	if (!be || csum_partial_skb(c))
		return XDP_PASS;
	if (iph->ttl <= 1) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}
	diff = csum_fold64(csum_diff4(0, iph->daddr, be->addr[0]));
	iph->daddr = be->addr[0];
	iph->ttl--;
	iph->check = csum_apply(iph->check, diff + (__u16)~bpf_htons(0x0100));
	/* The quoted header's addresses: the same changes, the same compensation. */
	qdiff = diff;
	pdiff = csum_diff2(0, ports[0], be->port);
	if (sport && sa) {
		qdiff = csum_fold64(csum_diff4(diff, in->daddr, sa[0]));
		pdiff = csum_diff2(pdiff, ports[1], sport);
		in->daddr = sa[0];
		ports[1] = sport;
	}
	in->check = csum_apply(in->check, qdiff);
	in->saddr = be->addr[0];
	ic->check = csum_apply(ic->check, pdiff);
	ports[0] = be->port;
	return too_big_send(c, be);
}

static __always_inline int too_big6(const struct sctx *c, struct ipv6hdr *ip6, void *data_end)
{
	union flow_key k;
	struct shift_backend *be;
	const __u32 *sa = NULL;
	struct icmp_hdr_ *ic;
	struct ipv6hdr *in;
	__u32 *d, *q, diff, pdiff;
	__u16 *ports, sport = 0;

	if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_ICMPV6)
		return XDP_PASS;
	ic = (void *)(ip6 + 1);
	if ((void *)(ic + 1) > data_end || ic->type != ICMPV6_PKT_TOOBIG_)
		return XDP_PASS;
	in = (void *)(ic + 1);
	ports = (void *)(in + 1);
	if ((void *)(ports + 2) > data_end ||
	    (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP))
		return XDP_PASS;
	d = ip6->daddr.in6_u.u6_addr32;
	q = in->saddr.in6_u.u6_addr32;
	if (d[0] != q[0] || d[1] != q[1] || d[2] != q[2] || d[3] != q[3])
		return XDP_PASS;
	be = too_big_backend(SHIFT_AF_INET6, q, in->daddr.in6_u.u6_addr32, ports, in->nexthdr, &k,
			     &sa, &sport);
	if (!be || csum_partial_skb(c))
		return XDP_PASS;
	if (ip6->hop_limit <= 1) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}
	ip6->hop_limit--;
	diff = csum_fold64(csum_diff16(csum_diff16(0, d, be->addr), q, be->addr));
	pdiff = csum_diff2(0, ports[0], be->port);
	if (sport && sa) {
		diff = csum_fold64(csum_diff16(diff, in->daddr.in6_u.u6_addr32, sa));
		pdiff = csum_diff2(pdiff, ports[1], sport);
		ports[1] = sport;
	}
	ic->check = csum_apply(ic->check, diff + pdiff);
	ports[0] = be->port;
	/* Only the hop limit changed the bytes' sum (see above). */
	if (c->tc)
		bpf_csum_update(c->ctx, (__u16)~bpf_htons(1));
	return too_big_send(c, be);
}

/*
 * The message's own look at the frame: packet pointers do not cross into a
 * global function. Its stack adds to that of the program calling it (392
 * bytes for shift_xdp_both, of 512), so the lookup keys share one place and
 * the headers are read where they are.
 */
static __always_inline int too_big_frame(const struct sctx *c)
{
	void *data_end = sc_data_end(c);
	struct ethhdr *eth = sc_data(c);
	__u16 h_proto;
	void *l3;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	h_proto = eth->h_proto;
	l3 = eth + 1;
	if (h_proto == bpf_htons(ETH_P_8021Q_) || h_proto == bpf_htons(ETH_P_8021AD_)) {
		__u16 *tag = l3;

		if ((void *)(tag + 2) > data_end)
			return XDP_PASS;
		h_proto = tag[1];
		l3 = tag + 2;
	}
	if (h_proto == bpf_htons(ETH_P_IP))
		return too_big4(c, l3, data_end);
	if (h_proto == bpf_htons(ETH_P_IPV6))
		return too_big6(c, l3, data_end);
	return XDP_PASS;
}

__noinline int too_big_xdp(struct xdp_md *ctx)
{
	struct sctx c;

	if (!ctx)
		return XDP_PASS;
	c = (struct sctx)SCTX_XDP(ctx);
	return too_big_frame(&c);
}

__noinline int too_big_tc(struct __sk_buff *ctx)
{
	struct sctx c;

	if (!ctx)
		return XDP_PASS;
	c = (struct sctx)SCTX_TC(ctx);
	return too_big_frame(&c);
}

/*
 * The entry points' way in, on the parse's "not ours" exit (not IP, not TCP
 * or UDP): the global function looks at the frame itself. Not a test of the
 * parsed protocol here: the parse would keep it in a spill slot for this
 * exit, and every packet would pay for the spill.
 */
static __always_inline int too_big(const struct sctx *c)
{
	return c->tc ? too_big_tc(c->ctx) : too_big_xdp(c->ctx);
}

#endif
