/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SYNs without connection-table entries. A bare SYN is steered statelessly
 * (hash and weight, flow_choice.h) and leaves a note in its SYN slot
 * (shift_syns, indexed by the flow hash): where it went and when. The
 * connection-table entry is written only when the client's first ACK
 * completes the handshake; a spoofed SYN never gets that far, so a flood of
 * them overwrites SYN slots (counted) but never touches the table.
 *
 * The slot is what the entry used to carry for an unanswered handshake:
 *   - the backend, so that retransmitted SYNs and the client's first ACK
 *     follow the SYN even when the weight moves in between;
 *   - the time of the first SYN, for the connect latency measured when the
 *     backend's SYN-ACK comes back (the return path finds the slot by the
 *     same hash, computed from the reply's reverse tuple);
 *   - "answered", for the SYN-retransmit error;
 *   - that a newer handshake exists on a 5-tuple whose old entry is still in
 *     the table (a client reusing its port: SYNs do not read the table), so
 *     the backend's SYN-ACK re-points that entry (syn_reuse()).
 * A slot overwritten by another flow's SYN only costs that handshake its
 * latency sample and its weight-move stickiness (SHIFT_STAT_SYN_SLOT_MISS).
 */
#ifndef SHIFT_SYNSLOT_H
#define SHIFT_SYNSLOT_H

#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include "maps.bpf.h"
#include "parse.h"
#include "flow_choice.h"

/* A slot older than this speaks for no live handshake: Linux retransmits a
 * SYN after 1, 3, 7, 15, 31 and 63 s, then gives up. */
#define SHIFT_SYN_SLOT_TTL_NS (64ull * 1000000000ull)
/* A SYN counts as a retransmit of an unanswered one only this long after the
 * first: a client's own duplicate (or a reordered pair) is not a dead backend. */
#define SHIFT_SYN_RETRANS_MIN_NS (200ull * 1000000ull)

/* shift_syns' size - 1, set by the loader with the array's size (syn_slots). */
const volatile __u32 syn_slot_mask = SHIFT_SYN_SLOTS - 1;

static __always_inline struct shift_syn_slot *syn_slot(__u32 h)
{
	__u32 idx = h & syn_slot_mask;

	return bpf_map_lookup_elem(&shift_syns, &idx);
}

/* ns since the slot's SYN (to 1.024 us below: the slot keeps the time's
 * upper bits only), for ages under 2^42 ns. */
static __always_inline __u64 syn_slot_age(const struct shift_syn_slot *s, __u64 now)
{
	return (now - ((__u64)s->syn_t << SHIFT_SYN_T_SHIFT)) &
	       ((1ull << (32 + SHIFT_SYN_T_SHIFT)) - 1);
}

static __always_inline void syn_slot_stamp(struct shift_syn_slot *s, __u64 now)
{
	s->syn_t = (__u32)(now >> SHIFT_SYN_T_SHIFT);
}

static __always_inline __u8 syn_slot_color(const struct shift_syn_slot *s)
{
	return SHIFT_SS_COLOR_OF(s->flags);
}

/* A slot's owner word taken apart: the layout of its union in struct
 * shift_syn_slot. */
union syn_owner {
	struct {
		__u16 backend_id;
		__u8 service_id;
		__u8 flags;
	};
	__u32 word;
};

_Static_assert(sizeof(union syn_owner) == sizeof(((struct shift_syn_slot *)0)->owner) &&
		       __builtin_offsetof(struct shift_syn_slot, flags) -
				       __builtin_offsetof(struct shift_syn_slot, owner) ==
			       __builtin_offsetof(union syn_owner, flags),
	       "union syn_owner is the slot's owner word");

/* Compare-and-swap attempts before a contended slot is left as it is: each
 * failure means another CPU changed it, and two CPUs at most meet there. */
#define SYN_OWNER_TRIES 4

static __always_inline __u32 syn_owner_read(const struct shift_syn_slot *s)
{
	return *(const volatile __u32 *)&s->owner;
}

/* Replace the slot's owner word old by new: 0 when another CPU changed it
 * first. */
static __always_inline int syn_owner_swap(struct shift_syn_slot *s, __u32 old, __u32 new)
{
	return __sync_val_compare_and_swap(&s->owner, old, new) == old;
}

/* The slot holds this flow's recent SYN (for this service). */
static __always_inline int syn_slot_is(const struct shift_syn_slot *s, __u32 h, __u32 service_id,
				       __u64 now)
{
	return shift_syn_tag_is(s->hash, h) && s->service_id == service_id &&
	       syn_slot_age(s, now) < SHIFT_SYN_SLOT_TTL_NS;
}

/* The TCP sequence number, host order (0 if the header is not readable). */
static __always_inline __u32 tcp_seq(const struct pkt *p, void *data_end)
{
	struct tcphdr *th = p->l4;

	if ((void *)(th + 1) > data_end)
		return 0;
	return bpf_ntohl(th->seq);
}

/* The TCP acknowledgment number, host order (0 if the header is not readable). */
static __always_inline __u32 tcp_ack_seq(const struct pkt *p, void *data_end)
{
	struct tcphdr *th = p->l4;

	if ((void *)(th + 1) > data_end)
		return 0;
	return bpf_ntohl(th->ack_seq);
}

#define SYN_ISN_MASK ((1u << SHIFT_SYN_ISN_BITS) - 1)

/* seq is the slot's SYN's sequence number (its low SHIFT_SYN_ISN_BITS: see
 * struct shift_syn_slot). */
static __always_inline int syn_slot_isn_is(const struct shift_syn_slot *s, __u32 seq)
{
	return !((s->isn ^ seq) & SYN_ISN_MASK);
}

/*
 * Does a client ACK that follows the slot's SYN (isn + 1) complete its
 * handshake? It must acknowledge the backend's SYN-ACK, which went by (flags:
 * the owner word's). A blind spoofer sends its SYN and
 * then that ACK, but never sees the SYN-ACK, so it guesses the acknowledgment
 * number: 1 in 2^20 matches. Without this, each such pair wrote an entry
 * (evicting idle connections from the LRU) and the backend's RST to the
 * guessed ACK counted as its RST error.
 */
static __always_inline int syn_slot_acked(const struct shift_syn_slot *s, __u8 flags, __u32 ack_seq)
{
	return (flags & SHIFT_SS_SYNACK) &&
	       (ack_seq - 1) << SHIFT_SYN_ISN_BITS == (s->isn & ~SYN_ISN_MASK);
}

/* The backend's SYN-ACK, sequence number seq, answered the slot's SYN: its
 * owner word has SHIFT_SS_SYNACK (or is getting it). */
static __always_inline void syn_slot_note_synack(struct shift_syn_slot *s, __u32 seq)
{
	s->isn = (s->isn & SYN_ISN_MASK) | seq << SHIFT_SYN_ISN_BITS;
}

/* nh: the SYN's client-side next hop (client_nh_learn()), 0 for none. */
static __always_inline void syn_slot_write(struct shift_syn_slot *s, const struct shift_flow *nf,
					   __u64 now, __u32 isn, __u32 nh)
{
	syn_slot_stamp(s, now);
	s->isn = isn;
	s->backend_id = nf->backend_id;
	s->service_id = nf->service_id;
	if (nh) {
		s->hash = (nf->hash & ~SHIFT_SYN_NH_MASK) | (nh & SHIFT_SYN_NH_MASK);
		s->flags = SHIFT_SS_COLOR(nf->color) | SHIFT_SS_NH;
	} else {
		s->hash = nf->hash;
		s->flags = SHIFT_SS_COLOR(nf->color);
	}
}

/*
 * connect_fallback, for a retransmitted SYN of the handshake whose owner word
 * is n (taken with its SYN-retransmit error, if any): when green refused the
 * SYN (its RST was dropped, SHIFT_SS_FALLBACK) or left it unanswered
 * (SHIFT_SS_ERR_SEEN), the retransmit goes to blue, by the same ring slot, and
 * so does everything after it. Blue's part starts afresh: its connect latency
 * runs from this SYN (returns 1: restamp the slot), its own silence is its
 * own error. A latched service is blue already; an empty blue pool leaves nf
 * alone.
 */
static __always_inline int syn_fallback(union syn_owner *n, struct shift_flow *nf)
{
	int restamp = 0;
	__u32 be;

	if (!(n->flags & SHIFT_SS_FALLBACK) &&
	    !(SHIFT_SS_COLOR_OF(n->flags) == SHIFT_GREEN && (n->flags & SHIFT_SS_ERR_SEEN)))
		return 0;
	if (SHIFT_SS_COLOR_OF(n->flags) == SHIFT_GREEN) {
		n->flags = SHIFT_SS_FALLBACK | SHIFT_SS_COLOR(SHIFT_GREEN) |
			   (n->flags & SHIFT_SS_NH);
		restamp = 1;
	}
	if (nf->color == SHIFT_BLUE)
		return restamp;
	be = ring_backend(nf->service_id, SHIFT_BLUE, shift_ring_slot(nf->hash));
	if (be == SHIFT_NO_BACKEND)
		return restamp;
	nf->backend_id = be;
	nf->color = SHIFT_BLUE;
	return restamp;
}

/* The flow hash of a reply's client -> VIP tuple. */
static __always_inline __u32 reply_hash(const struct pkt *p, const struct shift_svc_info *info)
{
	if (p->family == SHIFT_AF_INET)
		return shift_flow_hash4(p->daddr[0], info->vip[0], p->dport, info->vport, p->proto,
					hash_seed);
	return shift_flow_hash6(p->daddr, info->vip, p->dport, info->vport, p->proto, hash_seed);
}

#endif
