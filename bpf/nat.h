/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address/port rewriting with incremental checksum updates (RFC 1624), and the
 * TTL/hop-limit decrement every forwarding hop owes, inside the rewrite: IPv4's
 * shares the header checksum's update, IPv6's the skb->csum update of its
 * addresses where the helpers keep that sum.
 *
 * One's-complement sums are byte-order independent, so raw network-order
 * values are summed as they are.
 */
#ifndef SHIFT_NAT_H
#define SHIFT_NAT_H

#include <stddef.h>
#include "ctx.h"
#include "parse.h"

static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/*
 * Accumulate the change old -> new of one 32-bit word, as a 32-bit word: a
 * one's complement sum keeps its value mod 0xffff whatever the word size it
 * is summed in (2^16 and 2^32 are both 1 there), so a 64-bit accumulator
 * takes whole words, as the kernel's csum_partial() does, and csum_fold64()
 * brings the sum down once. Two additions a word instead of splitting both
 * into halves: IPv6's four address words are most of the rewrite's work.
 */
static __always_inline __u64 csum_diff4(__u64 acc, __u32 from, __u32 to)
{
	return acc + (__u32)~from + to;
}

/*
 * Write the IPv6 address new over the one at at, and add the change to acc.
 * The four words' terms are summed as a tree, (w0 + w1) + (w2 + w3): through
 * acc they made a chain of eight dependent additions for every IPv6 address
 * the NAT rewrites (an established v6 packet on XDP: 4.5 ns less as a tree,
 * BENCHMARKS §7v). The empty asm keeps the compiler from reassociating the
 * tree back into that chain.
 */
static __always_inline __u64 csum_diff16(__u64 acc, __u32 *at, const __u32 *new)
{
	__u64 d0 = csum_diff4(0, at[0], new[0]), d1 = csum_diff4(0, at[1], new[1]);
	__u64 d2 = csum_diff4(0, at[2], new[2]), d3 = csum_diff4(0, at[3], new[3]);

	asm("" : "+r"(d0), "+r"(d1), "+r"(d2), "+r"(d3));
	d0 += d1;
	d2 += d3;
	asm("" : "+r"(d0), "+r"(d2));
	at[0] = new[0];
	at[1] = new[1];
	at[2] = new[2];
	at[3] = new[3];
	return acc + (d0 + d2);
}

/* A sum of csum_diff4() terms (both addresses of IPv6: 16 terms below 2^32)
 * down to 17 bits, the range csum_apply() and nat_csum_skb()'s callers assume. */
static __always_inline __u32 csum_fold64(__u64 acc)
{
	acc = (acc & 0xffffffff) + (acc >> 32);
	acc = (acc & 0xffffffff) + (acc >> 32);
	return ((__u32)acc & 0xffff) + ((__u32)acc >> 16);
}

static __always_inline __u32 csum_diff2(__u32 acc, __u16 from, __u16 to)
{
	return acc + (__u16)~from + to;
}

/* diff: a csum_fold64() of the addresses' terms, both ports' csum_diff2()
 * terms and the TTL's, below 2^19: the sum fits 32 bits, one fold covers it. */
static __always_inline __u16 csum_apply(__u16 check, __u32 diff)
{
	return ~csum_fold32((__u16)~check + diff);
}

/*
 * The L4 checksum of an skb, through the kernel's helpers: they know the
 * skb's checksum state. Taken for a CHECKSUM_COMPLETE skb, and for every skb
 * where the program cannot read the state (shift_compat, kernels before 6.2);
 * otherwise nat_rewrite() writes the field itself. A local sender's packet is
 * CHECKSUM_PARTIAL: its L4 field holds only the pseudo-header sum, which must
 * follow the address change and ignore the port change. A received one may be CHECKSUM_COMPLETE:
 * skb->csum (from the IP header on) must follow every byte changed, including
 * the IPv6 addresses, which no header checksum compensates. The diffs are
 * one's complement sums of (~old + new); called after the direct writes, as
 * the csum_replace helpers invalidate all packet pointers. (The IPv4 header
 * checksum is written directly, as on XDP: it is never partial, and the sum
 * over the header it keeps constant is all skb->csum sees of it, which is why
 * bpf_l3_csum_replace() leaves skb->csum alone too.)
 *
 * An IPv6 header's hop limit went down by one with the addresses (nat_rewrite()
 * always decrements it): skb->csum learns of both in one update. No L4
 * checksum covers the hop limit.
 *
 * A global function, checked once rather than once per path into the NAT
 * (6.1's budget); meta = family | proto << 8 | udp4_nocsum << 16.
 */
__noinline int nat_csum_skb(struct __sk_buff *skb, __u32 l4_off, __u32 meta, __u32 addr_diff,
			    __u32 port_diff)
{
	__u32 family = meta & 0xff, proto = (meta >> 8) & 0xff, udp4_nocsum = meta >> 16;
	__u32 off = l4_off + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) :
						     offsetof(struct udphdr, check));
	/* UDP: a computed 0 is sent as 0xffff (RFC 768). */
	__u64 mz = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (!skb)
		return -1;
	/* "No checksum" stays so; only skb->csum sees the port change. */
	if (udp4_nocsum) {
		if (port_diff)
			bpf_csum_update(skb, port_diff);
		return 0;
	}
	if (bpf_l4_csum_replace(skb, off, 0, addr_diff, BPF_F_PSEUDO_HDR | mz))
		return -1;
	/* hop_limit is the low byte of its 16-bit word: -1 there is + ~htons(1). */
	if (family == SHIFT_AF_INET6)
		bpf_csum_update(skb, addr_diff + (__u16)~bpf_htons(1));
	/* A backend on the VIP's own port: no port word changed. */
	if (!port_diff)
		return 0;
	return bpf_l4_csum_replace(skb, off, 0, port_diff, mz) ? -1 : 0;
}

/* skb->csum must learn of a change (or the state is unknown): the helpers do it. */
static __always_inline int csum_by_helpers(int summed)
{
	return summed == SC_CSUM_COMPLETE || summed == SC_CSUM_UNKNOWN;
}

/*
 * Rewrite the destination to daddr:dport and/or the source to saddr:sport
 * (a NULL address leaves that side alone): DNAT towards a backend, SNAT of
 * its reply, both for source NAT. The L4 checksum covers the addresses
 * through the pseudo-header. The bounds are checked again here on purpose:
 * the compiler may merge the v4 and v6 paths, and the verifier then needs
 * the check next to the access.
 *
 * The TTL or hop limit goes down by one here, after ttl_check(): IPv4's in
 * the same update of the header checksum, IPv6's (no header checksum) in
 * nat_csum_skb()'s update of skb->csum when the helpers keep it.
 *
 * On TC, no packet pointer may be used after this returns (see
 * nat_csum_skb()): the caller re-reads the frame start after. p's addresses
 * and ports follow the rewrite.
 */
static __always_inline int nat_rewrite(const struct sctx *c, struct pkt *p, void *data_end,
				       const __u32 *daddr, __u16 dport, const __u32 *saddr,
				       __u16 sport)
{
	__u16 *check = p->l4_check, *pd = p->l4_dport, *ps = p->l4_sport;
	__u32 addr_diff, port_diff = 0;
	__u64 acc = 0;
	int udp4_nocsum, summed = SC_CSUM_NONE;

	if ((void *)(check + 1) > data_end || (void *)(pd + 1) > data_end ||
	    (void *)(ps + 1) > data_end)
		return -1;
	/* An IPv4 UDP checksum of 0 means "none" and must stay so. */
	udp4_nocsum = p->proto == IPPROTO_UDP && p->family == SHIFT_AF_INET && *check == 0;
	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3;

		if ((void *)(iph + 1) > data_end)
			return -1;
		if (daddr) {
			acc = csum_diff4(acc, iph->daddr, daddr[0]);
			iph->daddr = daddr[0];
		}
		if (saddr) {
			acc = csum_diff4(acc, iph->saddr, saddr[0]);
			iph->saddr = saddr[0];
		}
		/* The TTL's 16-bit word goes down by 0x0100 (network order), as in
		 * ip_decrease_ttl(); no L4 checksum covers it. */
		iph->ttl--;
		addr_diff = csum_fold64(acc);
		iph->check = csum_apply(iph->check, addr_diff + (__u16)~bpf_htons(0x0100));
	} else {
		struct ipv6hdr *ip6 = p->l3;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		ip6->hop_limit--;
		if (daddr)
			acc = csum_diff16(acc, ip6->daddr.in6_u.u6_addr32, daddr);
		if (saddr)
			acc = csum_diff16(acc, ip6->saddr.in6_u.u6_addr32, saddr);
		addr_diff = csum_fold64(acc);
	}
	/* Only a port that changes enters the diff: 0 then means none did. */
	if (daddr) {
		if (*pd != dport)
			port_diff = csum_diff2(port_diff, *pd, dport);
		*pd = dport;
		__builtin_memcpy(p->daddr, daddr, sizeof(p->daddr));
		p->dport = dport;
	}
	if (saddr) {
		if (*ps != sport)
			port_diff = csum_diff2(port_diff, *ps, sport);
		*ps = sport;
		__builtin_memcpy(p->saddr, saddr, sizeof(p->saddr));
		p->sport = sport;
	}
	if (c->tc) {
		summed = sc_csum_state(c);
		if (csum_by_helpers(summed))
			return nat_csum_skb(c->ctx, p->l4_off,
					    p->family | (__u32)p->proto << 8 |
						    (__u32)udp4_nocsum << 16,
					    addr_diff, port_diff);
	}
	if (udp4_nocsum)
		return 0;
	/* CHECKSUM_PARTIAL: the field holds the pseudo-header's sum, not yet
	 * complemented, and the ports are summed later with the rest. */
	if (summed == SC_CSUM_PARTIAL)
		*check = csum_fold32((__u32)*check + csum_fold32(addr_diff));
	else
		*check = csum_apply(*check, addr_diff + port_diff);
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

#endif
