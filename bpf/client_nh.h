/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The way back to a client for its backend's SYN-ACK. A connection's entry
 * keeps the client-side next hop its packets came in by (flow_set_nh()), but
 * a bare SYN writes no entry, so its SYN-ACK had only the FIB to go by: a
 * lookup that cost more than the SYN itself (~110 ns for IPv4, ~250 for IPv6
 * on the development guest). The SYN now leaves its next hop in
 * shift_client_nhs, named by index in its SYN slot (include/shift/maps.h),
 * and the SYN-ACK that answers that SYN goes back the same way. An edge host
 * sees its clients through a few routers, so a few entries serve every SYN;
 * a next hop that finds its entry taken by another tries the next few, and
 * only when those are taken too do its SYN-ACKs take the FIB as before.
 * shiftd retires the entries of an interface that is gone; a SYN may claim a
 * retired one after its quarantine.
 */
#ifndef SHIFT_CLIENT_NH_H
#define SHIFT_CLIENT_NH_H

#include "maps.bpf.h"
#include "ctx.h"
#include "parse.h"
#include "forward.h"
#include "synslot.h"

/* A service id no SYN slot holds (its field is 8 bits): no SYN-ACK to look for. */
#define CLIENT_NH_NO_SERVICE 0xffffffffu

/* Has the retired entry e served its quarantine (SHIFT_CLIENT_NH_QUARANTINE)?
 * Signed: shiftd's clock may read a unit ahead of the coarse one. */
static __always_inline int client_nh_free_again(const struct shift_client_nh *e)
{
	__u32 now = (__u32)(bpf_ktime_get_coarse_ns() >> SHIFT_CLIENT_NH_CLOCK_SHIFT);

	return (__s32)(now - e->retired_at) >= SHIFT_CLIENT_NH_QUARANTINE;
}

/*
 * Entries a next hop tries, from its hashed index on (past the last, index 1):
 * with a few next hops in 255 entries two can share an index, and the second
 * takes a neighbour rather than the FIB for its SYN-ACKs.
 */
#define CLIENT_NH_PROBES 4

/*
 * client_nh_learn() past its first probe: the entries from idx on (idx is a
 * next hop's hashed index), the first that names nf's next hop, else the
 * first free (or retired and out of quarantine) one claimed: the ifindex
 * word goes from what it was read as to SHIFT_CLIENT_NH_BUSY by
 * compare-and-swap, so that one SYN writes it, then to the interface, after
 * the MACs. A reader that finds the interface finds the MACs: the index it
 * got from a slot was written after the entry by the same SYN, and the
 * SYN-ACK answering that SYN came only after the SYN left. Entries never go
 * back to free, and a next hop claims the first entry it can: none of its
 * probes past a free entry is its. A global function: the verifier checks the
 * probes once, and the SYN path does not carry them.
 */
__noinline __u32 client_nh_probe(const struct shift_flow *nf, __u32 idx)
{
	struct shift_client_nh *e, *claim = NULL;
	__u32 i, cur, claim_idx = 0, claim_cur = 0;

	if (!nf)
		return 0;
	for (i = 0; i < CLIENT_NH_PROBES; i++) {
		e = bpf_map_lookup_elem(&shift_client_nhs, &idx);
		if (!e)
			return 0;
		cur = *(volatile __u32 *)&e->ifindex;
		if (cur == nf->cl_ifindex && mac_eq(e->dmac, nf->cl_dmac) &&
		    mac_eq(e->smac, nf->cl_smac))
			return idx;
		/* Being written, maybe for this next hop by a SYN on another CPU:
		 * a second entry for it would waste one. */
		if (cur == SHIFT_CLIENT_NH_BUSY)
			return 0;
		if (!claim &&
		    (!cur || (cur == SHIFT_CLIENT_NH_RETIRED && client_nh_free_again(e)))) {
			claim = e;
			claim_idx = idx;
			claim_cur = cur;
		}
		if (!cur)
			break;
		idx = idx >= SHIFT_CLIENT_NHS - 1 ? 1 : idx + 1;
	}
	if (!claim)
		return 0;
	if (__sync_val_compare_and_swap(&claim->ifindex, claim_cur, SHIFT_CLIENT_NH_BUSY) !=
	    claim_cur)
		return 0;
	mac_copy(claim->dmac, nf->cl_dmac);
	mac_copy(claim->smac, nf->cl_smac);
	/* A full barrier (a fetching atomic), after the MACs on every arch. */
	__sync_val_compare_and_swap(&claim->ifindex, SHIFT_CLIENT_NH_BUSY, nf->cl_ifindex);
	return claim_idx;
}

/*
 * The next hop of a bare SYN, as flow_set_nh() put it in nf (ingress
 * interface; the SYN's MACs swapped), as an index for its slot, or 0: the
 * entry at its hashed index when that names it (every SYN of a known next
 * hop but those that share an index), else client_nh_probe()'s.
 */
static __always_inline __u32 client_nh_learn(const struct shift_flow *nf)
{
	const struct shift_client_nh *e;
	__u32 idx;

	idx = shift_client_nh_index(nf->cl_ifindex, mac_head(nf->cl_dmac),
				    mac_tail(nf->cl_dmac) | mac_tail(nf->cl_smac) << 16,
				    mac_head(nf->cl_smac));
	e = bpf_map_lookup_elem(&shift_client_nhs, &idx);
	if (!e)
		return 0;
	if (*(const volatile __u32 *)&e->ifindex == nf->cl_ifindex &&
	    mac_eq(e->dmac, nf->cl_dmac) && mac_eq(e->smac, nf->cl_smac))
		return idx;
	return client_nh_probe(nf, idx);
}

/*
 * Fill fib's answer with the next hop of the SYN a backend's SYN-ACK answers
 * (h: the flow hash of its client -> VIP tuple; service_id: the backend's;
 * ack: the SYN-ACK's acknowledgment number): 1, or 0 when its slot does not
 * hold that SYN (tag, service, sequence number) with a next hop. Reads only:
 * syn_answer() does the slot's business.
 */
static __always_inline int synack_nh(struct bpf_fib_lookup *fib, __u32 h, __u32 service_id,
				     __u32 ack)
{
	const struct shift_client_nh *e;
	const struct shift_syn_slot *s;
	__u32 idx, ifindex;

	if (service_id == CLIENT_NH_NO_SERVICE)
		return 0;
	s = syn_slot(h);
	if (!s || !(s->flags & SHIFT_SS_NH) || !shift_syn_tag_is(s->hash, h) ||
	    s->service_id != service_id || !syn_slot_isn_is(s, ack - 1))
		return 0;
	idx = s->hash & SHIFT_SYN_NH_MASK;
	e = bpf_map_lookup_elem(&shift_client_nhs, &idx);
	if (!e)
		return 0;
	ifindex = *(const volatile __u32 *)&e->ifindex;
	if (!shift_client_nh_published(ifindex))
		return 0;
	fib->ifindex = ifindex;
	__builtin_memcpy(fib->dmac, e->dmac, ETH_ALEN);
	__builtin_memcpy(fib->smac, e->smac, ETH_ALEN);
	return 1;
}

/*
 * A reply without its entry's next hop: the SYN's next hop for a SYN-ACK
 * (service_id, else CLIENT_NH_NO_SERVICE), else the FIB's answer to the
 * question fib holds (fib_request()); as bpf_fib_lookup() returns. Global
 * functions, one per context type: the verifier checks the choice once, and
 * the caller's path after it is one path whichever way the answer came (a
 * branch there doubled what the 6.1 verifier walks after it, past its budget).
 */
static __always_inline long reply_route(void *ctx, struct bpf_fib_lookup *fib, __u32 h,
					__u32 service_id, __u32 ack)
{
	long rc;

	if (synack_nh(fib, h, service_id, ack))
		return BPF_FIB_LKUP_RET_SUCCESS;
	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc >= 0 && rc != BPF_FIB_LKUP_RET_NOT_FWDED)
		stat_inc(SHIFT_STAT_REPLY_FIB);
	return rc;
}

__noinline long reply_route_xdp(struct xdp_md *ctx, struct bpf_fib_lookup *fib, __u32 h,
				__u32 service_id, __u32 ack)
{
	if (!ctx || !fib)
		return -1;
	return reply_route(ctx, fib, h, service_id, ack);
}

__noinline long reply_route_tc(struct __sk_buff *ctx, struct bpf_fib_lookup *fib, __u32 h,
			       __u32 service_id, __u32 ack)
{
	if (!ctx || !fib)
		return -1;
	return reply_route(ctx, fib, h, service_id, ack);
}

/* A reply's route (reply_route()), by the entry point's own global function. */
static __always_inline long reply_route_of(const struct sctx *c, struct bpf_fib_lookup *fib,
					   __u32 h, __u32 service_id, __u32 ack)
{
	if (c->tc)
		return reply_route_tc(c->ctx, fib, h, service_id, ack);
	return reply_route_xdp(c->ctx, fib, h, service_id, ack);
}

#endif
