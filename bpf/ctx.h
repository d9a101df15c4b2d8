/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one place where the XDP and the TC entry points differ: how the packet
 * is reached (xdp_md or __sk_buff), how its length and ingress interface are
 * read, and how it is sent on. Everything else (parse, steering, conntrack,
 * NAT, signals) is the same source for both.
 *
 * `tc` is a constant in every entry point and every function taking a struct
 * sctx is always inlined, so the compiler drops the branch not taken: each
 * program only contains the accesses valid for its context type.
 *
 * Internal verdicts are XDP's (XDP_PASS / XDP_DROP / XDP_TX / XDP_REDIRECT);
 * the TC entry points map them with tc_verdict() on the way out.
 */
#ifndef SHIFT_CTX_H
#define SHIFT_CTX_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct sctx {
	void *ctx; /* struct xdp_md * or struct __sk_buff * */
	__u64 len; /* the whole frame: an skb may hold more than its linear part */
	int tc;
};

/*
 * Pointer difference as a 64-bit scalar: left to itself the compiler may
 * narrow it to 32 bits and spill half a packet pointer, which the verifier
 * refuses.
 */
static __always_inline __u64 xdp_frame_len(struct xdp_md *ctx)
{
	__u64 end = ctx->data_end, start = ctx->data;

	asm volatile("%[e] -= %[s]" : [e] "+r"(end) : [s] "r"(start));
	return end;
}

#define SCTX_XDP(x)                                          \
	{                                                    \
		.ctx = (x), .len = xdp_frame_len(x), .tc = 0 \
	}
#define SCTX_TC(skb)                                     \
	{                                                \
		.ctx = (skb), .len = (skb)->len, .tc = 1 \
	}

static __always_inline void *sc_data(const struct sctx *c)
{
	if (c->tc)
		return (void *)(long)((struct __sk_buff *)c->ctx)->data;
	return (void *)(long)((struct xdp_md *)c->ctx)->data;
}

static __always_inline void *sc_data_end(const struct sctx *c)
{
	if (c->tc)
		return (void *)(long)((struct __sk_buff *)c->ctx)->data_end;
	return (void *)(long)((struct xdp_md *)c->ctx)->data_end;
}

static __always_inline __u32 sc_len(const struct sctx *c)
{
	return c->len;
}

static __always_inline __u32 sc_ingress(const struct sctx *c)
{
	if (c->tc)
		return ((struct __sk_buff *)c->ctx)->ingress_ifindex;
	return ((struct xdp_md *)c->ctx)->ingress_ifindex;
}

/*
 * An skb's checksum state, for the NAT: with it known, a TC packet's
 * checksums are written directly, as XDP's are, instead of through two or
 * three helper calls (a third of an established TC packet's cost). It takes
 * bpf_cast_to_kern_ctx() (Linux 6.2) and the kernel's BTF; the object built
 * with SHIFT_NO_KERN_CTX, which the agent loads on older kernels (Debian 12's
 * 6.1), says SC_CSUM_UNKNOWN and the helpers, which know the state, do it.
 */
#define SC_CSUM_NONE 0 /* the kernel's CHECKSUM_* */
#define SC_CSUM_UNNECESSARY 1
#define SC_CSUM_COMPLETE 2
#define SC_CSUM_PARTIAL 3
#define SC_CSUM_UNKNOWN 4

#ifndef SHIFT_NO_KERN_CTX
#include <bpf/bpf_core_read.h>

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* The one field read of the kernel's struct sk_buff, found by CO-RE. */
struct sk_buff___shift {
	__u8 ip_summed : 2;
} __attribute__((preserve_access_index));
#endif

static __always_inline int sc_csum_state(const struct sctx *c)
{
#ifdef SHIFT_NO_KERN_CTX
	return SC_CSUM_UNKNOWN;
#else
	struct sk_buff___shift *kskb;

	if (!c->tc)
		return SC_CSUM_NONE;
	kskb = bpf_cast_to_kern_ctx(c->ctx);
	return BPF_CORE_READ_BITFIELD(kskb, ip_summed);
#endif
}

/*
 * Send the (rewritten, MACs set) frame out of ifindex. XDP transmits back on
 * the ingress NIC with XDP_TX; TC redirects to the egress of any interface,
 * the ingress one included.
 */
static __always_inline int sc_xmit(const struct sctx *c, __u32 ifindex)
{
	if (c->tc) {
		bpf_redirect(ifindex, 0);
		return XDP_REDIRECT;
	}
	if (ifindex == sc_ingress(c))
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

/*
 * Bytes of an skb's head the datapath reads directly: headers (Ethernet,
 * VLAN, IPv6 with extension headers, TCP with options) and the first payload
 * bytes the signals look at. A local sender's skb keeps its payload in pages.
 */
#define SHIFT_TC_PULL 256

/* 0, or -1 when the head cannot be made readable (the packet goes to the stack). */
static __always_inline int sc_tc_pull(struct __sk_buff *skb)
{
	__u32 want = skb->len < SHIFT_TC_PULL ? skb->len : SHIFT_TC_PULL;

	if ((void *)(long)skb->data + want <= (void *)(long)skb->data_end)
		return 0;
	return bpf_skb_pull_data(skb, want) ? -1 : 0;
}

static __always_inline int tc_verdict(int xdp)
{
	switch (xdp) {
	case XDP_DROP:
	case XDP_ABORTED:
		return TC_ACT_SHOT;
	case XDP_TX:
	case XDP_REDIRECT:
		return TC_ACT_REDIRECT;
	default:
		/* Not ours, or for the stack: the next TC program (tcx chain, other
		 * clsact filters) or the stack itself gets it. */
		return TC_ACT_UNSPEC;
	}
}

#endif
