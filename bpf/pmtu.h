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
 * VIP:vport in the connection table). One that names no entry (a handshake
 * not yet complete, an entry evicted) or a source-NATed entry (whose quote
 * would need its destination rewritten too) goes to the kernel, counted.
 *
 * Checksums: IPv4's outer and quoted header checksums follow their address
 * changes, so the one's-complement sum over each header stays what it was,
 * and the ICMP checksum needs only the port's change. ICMPv6's covers a
 * pseudo-header with the outer destination: both address changes and the
 * port's. Either way the bytes from the IP header on sum as before, so a
 * CHECKSUM_COMPLETE skb's csum stays right but for IPv6's hop limit (no
 * header checksum), which bpf_csum_update() adds. A quoted TCP/UDP checksum
 * is left as it is: the backend's kernel matches the quote by its addresses
 * and ports, as any router's truncated quote requires.
 *
 * Rare, and off every other packet's path: the parse's "not ours" exit,
 * which the verifier reaches in a few states only.
 */
#ifndef SHIFT_PMTU_H
#define SHIFT_PMTU_H

#include "ctx.h"
#include "parse.h"
#include "conntrack.h"
#include "nat.h"
#include "forward.h"
#include "signals.h"

#define ICMP_FRAG_NEEDED_ 4
#define ICMPV6_PKT_TOOBIG_ 2

static __always_inline int addr_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/*
 * p: parsed by parse_packet() (PARSE_NOT_OURS, an ICMP protocol). XDP_PASS
 * for anything that is not a too-big message about a VIP's packet.
 */
static __always_inline int too_big_to_backend(const struct sctx *c, struct pkt *p)
{
	void *data_end = sc_data_end(c);
	struct shift_vip_addr vk;
	struct shift_svc_info *info;
	struct shift_backend *be;
	struct shift_flow *f;
	struct icmp_hdr_ *ic;
	union flow_key k;
	__u32 vip[4] = {}, client[4] = {}, sid;
	__u64 acc = 0;
	__u32 addr_diff;
	__u16 *ports, *inner_check = NULL;
	__u8 proto;

	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3, *in;

		if ((void *)(iph + 1) > data_end || iph->protocol != IPPROTO_ICMP)
			return XDP_PASS;
		ic = p->l3 + iph->ihl * 4;
		if ((void *)(ic + 1) > data_end || ic->type != ICMP_DEST_UNREACH_ ||
		    ic->code != ICMP_FRAG_NEEDED_)
			return XDP_PASS;
		in = (void *)(ic + 1);
		if ((void *)(in + 1) > data_end || in->ihl != 5)
			return XDP_PASS;
		proto = in->protocol;
		vip[0] = in->saddr;
		client[0] = in->daddr;
		inner_check = &in->check;
		ports = (void *)(in + 1);
	} else if (p->family == SHIFT_AF_INET6) {
		struct ipv6hdr *ip6 = p->l3, *in;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_ICMPV6)
			return XDP_PASS;
		ic = (void *)(ip6 + 1);
		if ((void *)(ic + 1) > data_end || ic->type != ICMPV6_PKT_TOOBIG_)
			return XDP_PASS;
		in = (void *)(ic + 1);
		if ((void *)(in + 1) > data_end)
			return XDP_PASS;
		proto = in->nexthdr;
		__builtin_memcpy(vip, &in->saddr, 16);
		__builtin_memcpy(client, &in->daddr, 16);
		ports = (void *)(in + 1);
	} else {
		return XDP_PASS;
	}
	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || (void *)(ports + 2) > data_end)
		return XDP_PASS;
	/* Sent to where the quoted packet came from, and that is a VIP. */
	if (!addr_eq(p->daddr, vip))
		return XDP_PASS;
	__builtin_memset(&vk, 0, sizeof(vk));
	__builtin_memcpy(vk.addr, vip, sizeof(vk.addr));
	vk.family = p->family;
	if (!bpf_map_lookup_elem(&shift_vips, &vk))
		return XDP_PASS;

	/* The quote is VIP:vport -> client:cport, the flow's answer. */
	flow_key_fill(&k, p->family, client, vip, ports[1], ports[0], proto);
	f = flow_lookup(p->family, &k);
	if (!f || f->snat_port)
		goto no_flow;
	sid = f->service_id;
	info = bpf_map_lookup_elem(&shift_svc_info, &sid);
	/* The table's IPv6 key holds the VIP folded to a word: check it whole. */
	if (!info || info->vport != ports[0] || info->proto != proto || !addr_eq(info->vip, vip))
		goto no_flow;
	be = bpf_map_lookup_elem(&shift_backends, &f->backend_id);
	if (!be || !(be->flags & SHIFT_BE_F_ACTIVE) || be->service_id != sid)
		goto no_flow;
	/* The kernel sums the ICMP it sends itself: a partial checksum would be
	 * some other sender's, whose fields this rewrite cannot follow. */
	if (c->tc && sc_csum_state(c) == SC_CSUM_PARTIAL)
		return XDP_PASS;
	if (ttl_check(p, data_end)) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}

	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3;

		if ((void *)(iph + 1) > data_end || (void *)(inner_check + 1) > data_end)
			return XDP_PASS;
		addr_diff = csum_fold64(csum_diff4(0, iph->daddr, be->addr[0]));
		iph->daddr = be->addr[0];
		iph->ttl--;
		iph->check = csum_apply(iph->check, addr_diff + (__u16)~bpf_htons(0x0100));
		/* The quoted header's source: the same change. */
		*inner_check = csum_apply(*inner_check, addr_diff);
		((struct iphdr *)(ic + 1))->saddr = be->addr[0];
		ic->check = csum_apply(ic->check, csum_diff2(0, ports[0], be->port));
		ports[0] = be->port;
	} else {
		struct ipv6hdr *ip6 = p->l3, *in = (void *)(ic + 1);

		if ((void *)(ip6 + 1) > data_end || (void *)(in + 1) > data_end)
			return XDP_PASS;
		ip6->hop_limit--;
		acc = csum_diff16(acc, ip6->daddr.in6_u.u6_addr32, be->addr);
		acc = csum_diff16(acc, in->saddr.in6_u.u6_addr32, be->addr);
		addr_diff = csum_fold64(acc);
		ic->check = csum_apply(ic->check, addr_diff + csum_diff2(0, ports[0], be->port));
		ports[0] = be->port;
		/* Only the hop limit changed the bytes' sum (see above). */
		if (c->tc)
			bpf_csum_update(c->ctx, (__u16)~bpf_htons(1));
	}
	__builtin_memcpy(p->daddr, be->addr, sizeof(p->daddr));
	stat_inc(SHIFT_STAT_ICMP_TOO_BIG);
	if (be->flags & SHIFT_BE_F_NH_VALID)
		return forward_cached(c, be);
	return forward_fib(c, p);
no_flow:
	stat_inc(SHIFT_STAT_PASS_ICMP_NO_FLOW);
	return XDP_PASS;
}

/* An ICMP message the parse left alone (p: its parse): a too-big one to a VIP? */
static __always_inline int too_big(const struct sctx *c, struct pkt *p)
{
	if (p->proto != IPPROTO_ICMP && p->proto != IPPROTO_ICMPV6)
		return XDP_PASS;
	return too_big_to_backend(c, p);
}

#endif
