/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address/port rewriting with incremental checksum updates (RFC 1624), and the
 * TTL/hop-limit decrement every forwarding hop owes.
 *
 * One's-complement sums are byte-order independent, so raw network-order
 * values are summed as they are.
 */
#ifndef SHIFT_NAT_H
#define SHIFT_NAT_H

#include "parse.h"

static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Accumulate the change old -> new of one 32-bit word into ~checksum space. */
static __always_inline __u32 csum_diff4(__u32 acc, __u32 from, __u32 to)
{
	from = ~from;
	acc += (from & 0xffff) + (from >> 16);
	acc += (to & 0xffff) + (to >> 16);
	return acc;
}

static __always_inline __u32 csum_diff2(__u32 acc, __u16 from, __u16 to)
{
	return acc + (__u16)~from + to;
}

static __always_inline __u16 csum_apply(__u16 check, __u32 diff)
{
	return ~csum_fold32((__u16)~check + csum_fold32(diff));
}

/*
 * Rewrite one side of the packet (dst when `dst`, else src) to addr:port.
 * The L4 checksum covers the addresses through the pseudo-header. The bounds
 * are checked again here on purpose: the compiler may merge the v4 and v6
 * paths, and the verifier then needs the check next to the access.
 */
static __always_inline int nat_rewrite(struct pkt *p, void *data_end, int dst, const __u32 *addr,
				       __u16 port)
{
	__u16 *check = p->l4_check;
	__u16 *pport = dst ? p->l4_dport : p->l4_sport;
	__u32 addr_diff = 0, l4_diff;
	int i;

	if ((void *)(check + 1) > data_end || (void *)(pport + 1) > data_end)
		return -1;
	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3;
		__u32 *a;

		if ((void *)(iph + 1) > data_end)
			return -1;
		a = dst ? &iph->daddr : &iph->saddr;
		addr_diff = csum_diff4(0, *a, addr[0]);
		*a = addr[0];
		iph->check = csum_apply(iph->check, addr_diff);
	} else {
		struct ipv6hdr *ip6 = p->l3;
		__u32 *a;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		a = dst ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32;
#pragma unroll
		for (i = 0; i < 4; i++) {
			addr_diff = csum_diff4(addr_diff, a[i], addr[i]);
			a[i] = addr[i];
		}
	}

	l4_diff = csum_diff2(addr_diff, *pport, port);
	*pport = port;

	/* An IPv4 UDP checksum of 0 means "none" and must stay so. */
	if (p->proto == IPPROTO_UDP && p->family == SHIFT_AF_INET && *check == 0)
		return 0;
	*check = csum_apply(*check, l4_diff);
	/* A computed UDP checksum of 0 is sent as all ones (RFC 768). */
	if (p->proto == IPPROTO_UDP && *check == 0)
		*check = 0xffff;
	return 0;
}

/* Returns -1 when the TTL/hop limit would expire here: the kernel must answer. */
static __always_inline int ttl_check(struct pkt *p, void *data_end)
{
	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3;

		return (void *)(iph + 1) > data_end || iph->ttl <= 1 ? -1 : 0;
	} else {
		struct ipv6hdr *ip6 = p->l3;

		return (void *)(ip6 + 1) > data_end || ip6->hop_limit <= 1 ? -1 : 0;
	}
}

/* After ttl_check() said yes. */
static __always_inline void ttl_decrement(struct pkt *p, void *data_end)
{
	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3;
		__u32 check;

		if ((void *)(iph + 1) > data_end)
			return;
		check = iph->check;

		/* As the kernel's ip_decrease_ttl(). */
		check += bpf_htons(0x0100);
		iph->check = (__u16)(check + (check >= 0xffff));
		iph->ttl--;
	} else {
		struct ipv6hdr *ip6 = p->l3;

		if ((void *)(ip6 + 1) <= data_end)
			ip6->hop_limit--;
	}
}

#endif
