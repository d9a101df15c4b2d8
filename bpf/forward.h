/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sending the rewritten packet on at XDP level: the next hop cached in the
 * backend entry (kept by the agent from netlink neighbour events), else a FIB
 * lookup. Whatever cannot be forwarded here goes to the kernel stack, already
 * rewritten, which resolves the neighbour and forwards it: never a silent drop.
 */
#ifndef SHIFT_FORWARD_H
#define SHIFT_FORWARD_H

#include <linux/bpf.h>
#include "maps.bpf.h"
#include "parse.h"

#ifndef AF_INET
#define AF_INET 2
#define AF_INET6 10
#endif

static __always_inline int xmit(struct xdp_md *ctx, __u32 ifindex)
{
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

static __always_inline int forward_cached(struct xdp_md *ctx, struct ethhdr *eth,
					  const struct shift_backend *be)
{
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, be->nh_dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, be->nh_smac, ETH_ALEN);
	return xmit(ctx, be->nh_ifindex);
}

/*
 * FIB lookup towards the packet's destination, with `src` (NULL: the packet's
 * own) as the source. Returns the BPF_FIB_LKUP_RET_* code.
 */
static __always_inline long fib_lookup(struct xdp_md *ctx, struct pkt *p, const __u32 *src,
				       struct bpf_fib_lookup *fib)
{
	void *data_end = (void *)(long)ctx->data_end;

	__builtin_memset(fib, 0, sizeof(*fib));
	fib->ifindex = ctx->ingress_ifindex;
	fib->l4_protocol = p->proto;
	fib->tot_len = p->l3_len;
	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3;

		if ((void *)(iph + 1) > data_end)
			return -1;
		fib->family = AF_INET;
		fib->tos = iph->tos;
		fib->ipv4_src = src ? src[0] : iph->saddr;
		fib->ipv4_dst = iph->daddr;
	} else {
		struct ipv6hdr *ip6 = p->l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		fib->family = AF_INET6;
		if (src)
			__builtin_memcpy(fib->ipv6_src, src, 16);
		else
			__builtin_memcpy(fib->ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib->ipv6_dst, &ip6->daddr, 16);
	}
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

/* Send on by a FIB result: MACs and xmit on success, else to the kernel. */
static __always_inline int forward_by(struct xdp_md *ctx, long rc, const struct bpf_fib_lookup *fib)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	if (rc != BPF_FIB_LKUP_RET_SUCCESS || (void *)(eth + 1) > (void *)(long)ctx->data_end) {
		stat_inc(SHIFT_STAT_PASS_NO_NEIGH);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return xmit(ctx, fib->ifindex);
}

/* FIB lookup towards the packet's (already rewritten) destination. */
static __always_inline int forward_fib(struct xdp_md *ctx, struct ethhdr *eth, struct pkt *p)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	long rc;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	fib.ifindex = ctx->ingress_ifindex;
	fib.l4_protocol = p->proto;
	fib.tot_len = p->l3_len;
	fib.sport = p->sport;
	fib.dport = p->dport;
	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3;

		if ((void *)(iph + 1) > data_end)
			return XDP_PASS;
		fib.family = AF_INET;
		fib.tos = iph->tos;
		fib.ipv4_src = iph->saddr;
		fib.ipv4_dst = iph->daddr;
	} else {
		struct ipv6hdr *ip6 = p->l3;

		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		stat_inc(SHIFT_STAT_PASS_NO_NEIGH);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return xmit(ctx, fib.ifindex);
}

#endif
