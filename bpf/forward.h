/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sending the rewritten packet on (XDP_TX / redirect, or a TC redirect): the next hop cached in the
 * backend entry (kept by the agent from netlink neighbour events), else a FIB
 * lookup. Whatever cannot be forwarded here goes to the kernel stack, already
 * rewritten, which resolves the neighbour and forwards it: never a silent drop.
 */
#ifndef SHIFT_FORWARD_H
#define SHIFT_FORWARD_H

#include <linux/bpf.h>
#include "maps.bpf.h"
#include "ctx.h"
#include "parse.h"

#ifndef AF_INET
#define AF_INET 2
#define AF_INET6 10
#endif

/*
 * One MAC address as a 32-bit and a 16-bit move. Neither end's alignment is
 * known to the compiler, so __builtin_memcpy() moves it a byte at a time (24
 * instructions for a frame's two addresses). Where the kernel loads unaligned
 * words at full speed (x86, arm64) the verifier allows such accesses to packet
 * and map memory; elsewhere the byte copy stays. Not for the stack (a struct
 * bpf_fib_lookup's MACs): the verifier wants every stack access aligned.
 */
#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_arm64)
/* may_alias: the words are read and written over __u8 arrays, which strict
 * aliasing would otherwise let the compiler reorder them against. */
typedef __u32 __attribute__((may_alias)) mac_word32;
typedef __u16 __attribute__((may_alias)) mac_word16;
#endif

static __always_inline void mac_copy(__u8 *dst, const __u8 *src)
{
#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_arm64)
	*(mac_word32 *)dst = *(const mac_word32 *)src;
	*(mac_word16 *)(dst + 4) = *(const mac_word16 *)(src + 4);
#else
	__builtin_memcpy(dst, src, ETH_ALEN);
#endif
}

/* A MAC's first four bytes and its last two, each as a word (for hashing and
 * comparing one). */
static __always_inline __u32 mac_head(const __u8 *m)
{
#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_arm64)
	return *(const mac_word32 *)m;
#else
	return m[0] | m[1] << 8 | m[2] << 16 | (__u32)m[3] << 24;
#endif
}

static __always_inline __u32 mac_tail(const __u8 *m)
{
#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_arm64)
	return *(const mac_word16 *)(m + 4);
#else
	return m[4] | m[5] << 8;
#endif
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return mac_head(a) == mac_head(b) && mac_tail(a) == mac_tail(b);
}

/* Set the frame's MACs and send it out of ifindex. */
static __always_inline int forward_to(const struct sctx *c, __u32 ifindex, const __u8 *dmac,
				      const __u8 *smac)
{
	struct ethhdr *eth = sc_data(c);

	if ((void *)(eth + 1) > sc_data_end(c))
		return XDP_PASS;
	mac_copy(eth->h_dest, dmac);
	mac_copy(eth->h_source, smac);
	return sc_xmit(c, ifindex);
}

static __always_inline int forward_cached(const struct sctx *c, const struct shift_backend *be)
{
	return forward_to(c, be->nh_ifindex, be->nh_dmac, be->nh_smac);
}

/*
 * FIB lookup towards the packet's destination (fib_request() fills in the
 * question, fib_lookup() asks it), with `src` (NULL: the packet's
 * own, and its ports for multipath) as the source. Returns the
 * BPF_FIB_LKUP_RET_* code. Reads p only: on TC the packet pointers may be
 * stale by now (after the NAT).
 */
static __always_inline void fib_request(const struct sctx *c, struct pkt *p, const __u32 *src,
					struct bpf_fib_lookup *fib)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->ifindex = sc_ingress(c);
	fib->l4_protocol = p->proto;
	fib->tot_len = p->l3_len;
	if (!src) {
		src = p->saddr;
		fib->sport = p->sport;
		fib->dport = p->dport;
	}
	if (p->family == SHIFT_AF_INET) {
		fib->family = AF_INET;
		fib->tos = p->tos;
		fib->ipv4_src = src[0];
		fib->ipv4_dst = p->daddr[0];
	} else {
		fib->family = AF_INET6;
		__builtin_memcpy(fib->ipv6_src, src, 16);
		__builtin_memcpy(fib->ipv6_dst, p->daddr, 16);
	}
}

static __always_inline long fib_lookup(const struct sctx *c, struct pkt *p, const __u32 *src,
				       struct bpf_fib_lookup *fib)
{
	fib_request(c, p, src, fib);
	return bpf_fib_lookup(c->ctx, fib, sizeof(*fib), 0);
}

/* Send on by a FIB result: MACs and xmit on success, else to the kernel. */
static __always_inline int forward_by(const struct sctx *c, long rc,
				      const struct bpf_fib_lookup *fib)
{
	struct ethhdr *eth = sc_data(c);

	if (rc != BPF_FIB_LKUP_RET_SUCCESS || (void *)(eth + 1) > sc_data_end(c)) {
		stat_inc(SHIFT_STAT_PASS_NO_NEIGH);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return sc_xmit(c, fib->ifindex);
}

/* FIB lookup towards the packet's (already rewritten) destination. */
static __always_inline int forward_fib(const struct sctx *c, struct pkt *p)
{
	struct bpf_fib_lookup fib;
	long rc;

	rc = fib_lookup(c, p, NULL, &fib);
	return forward_by(c, rc, &fib);
}

#endif
