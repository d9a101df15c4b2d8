/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where a new flow goes: color by the flow hash (or, with client affinity, the
 * client hash) against the weight, or by a source-prefix override; backend by
 * the pool's consistent-hash ring of the flow hash.
 */
#ifndef SHIFT_FLOW_CHOICE_H
#define SHIFT_FLOW_CHOICE_H

#include "maps.bpf.h"
#include "parse.h"
#include <shift/flow_hash.h>

const volatile __u32 hash_seed = 0;

static __always_inline __u32 flow_hash(const struct pkt *p)
{
	if (p->family == SHIFT_AF_INET)
		return shift_flow_hash4(p->saddr[0], p->daddr[0], p->sport, p->dport, p->proto,
					hash_seed);
	return shift_flow_hash6(p->saddr, p->daddr, p->sport, p->dport, p->proto, hash_seed);
}

/* Returns 0 and sets *color when the client's source prefix is pinned. */
static __always_inline int override_color(const struct pkt *p, __u32 service_id, __u8 *color)
{
	__u32 *c;

	if (p->family == SHIFT_AF_INET) {
		struct shift_lpm_key4 k = {
			.prefixlen = 64,
			.service_id = bpf_htonl(service_id),
			.addr = p->saddr[0],
		};

		c = bpf_map_lookup_elem(&shift_ovr4, &k);
	} else {
		struct shift_lpm_key6 k = {
			.prefixlen = 160,
			.service_id = bpf_htonl(service_id),
		};

		__builtin_memcpy(k.addr, p->saddr, 16);
		c = bpf_map_lookup_elem(&shift_ovr6, &k);
	}
	if (!c)
		return -1;
	*color = *c ? SHIFT_GREEN : SHIFT_BLUE;
	return 0;
}

/*
 * The slice hash for client affinity (SPEC "Clients, not connections"): the
 * client hash of the source address under the service's prefix. Global, with
 * scalar arguments, so the verifier checks it once, not per caller state.
 * fam_prefix: family << 8 | prefix length.
 */
__noinline __u32 client_slice_hash(__u32 a0, __u32 a1, __u32 a2, __u32 a3, __u32 fam_prefix)
{
	__u32 a[4] = { a0, a1, a2, a3 };

	if ((fam_prefix >> 8) == SHIFT_AF_INET)
		return shift_client_hash4(a0, fam_prefix & 0xff, hash_seed);
	return shift_client_hash6(a, fam_prefix & 0xff, hash_seed);
}

/* The hash whose slice picks the color: the flow's, or its client's. */
static __always_inline __u32 color_hash(const struct pkt *p, const struct shift_service *svc,
					__u32 h)
{
	__u32 prefix;

	if (!(svc->flags & SHIFT_SVC_F_CLIENT_AFFINITY))
		return h;
	prefix = p->family == SHIFT_AF_INET ? SHIFT_SVC_PREFIX4(svc->flags) :
					      SHIFT_SVC_PREFIX6(svc->flags);
	return client_slice_hash(p->saddr[0], p->saddr[1], p->saddr[2], p->saddr[3],
				 (__u32)p->family << 8 | prefix);
}

static __always_inline __u32 ring_backend(__u32 service_id, __u8 color, __u32 slot)
{
	__u32 idx = SHIFT_RING_CHUNK_OF(service_id, color, slot);
	struct shift_ring_chunk *c = bpf_map_lookup_elem(&shift_rings, &idx);
	__u16 be;

	if (!c)
		return SHIFT_NO_BACKEND;
	/* One read: shiftd may be rewriting the slot. */
	be = c->be[slot % SHIFT_RING_CHUNK_SLOTS];
	return SHIFT_RING_BACKEND(be);
}

/*
 * Fill f (backend_id, hash, service_id, color) for a new flow of flow hash h
 * (flow_hash(), which new_flow() computes before the service's lookups).
 * Returns -1 when neither pool has a backend.
 */
static __always_inline int choose_backend(const struct pkt *p, const struct shift_service *svc,
					  struct shift_flow *f, __u32 h)
{
	__u32 *wp = bpf_map_lookup_elem(&shift_weights, &svc->id);
	__u32 word = wp ? *wp : 0;
	__u32 slot, be;
	__u8 color = SHIFT_BLUE;

	if (word & SHIFT_WEIGHT_LATCHED) {
		/* Rolled back: blue only, overrides included, no fallback to green. */
		be = ring_backend(svc->id, SHIFT_BLUE, shift_ring_slot(h));
		if (be == SHIFT_NO_BACKEND)
			return -1;
		goto out;
	}
	if ((svc->flags & SHIFT_SVC_F_OVERRIDES) && override_color(p, svc->id, &color) == 0)
		stat_inc(SHIFT_STAT_OVERRIDE_HIT);
	else if (shift_slice(color_hash(p, svc, h)) < (word & SHIFT_WEIGHT_MASK))
		color = SHIFT_GREEN;

	slot = shift_ring_slot(h);
	be = ring_backend(svc->id, color, slot);
	if (be == SHIFT_NO_BACKEND) {
		/* An empty pool (all unhealthy) borrows the other one rather than drop;
		 * but green only once it serves users: at weight 0 (shadow, a release
		 * not yet begun) no user may reach it, whatever happens to blue. */
		__u32 lend = (word & SHIFT_WEIGHT_MASK) | color; /* 0: blue asks green at 0 */

		/* Not a branch on color: it would make color a constant on each side
		 * and the states after this one twice (tc_both +59k instructions on
		 * 6.1's verifier, +10k this way). */
		barrier_var(lend);
		if (!lend)
			return -1;
		color ^= 1;
		be = ring_backend(svc->id, color, slot);
		if (be == SHIFT_NO_BACKEND)
			return -1;
	}
out:
	f->backend_id = be;
	f->hash = h;
	f->service_id = svc->id;
	f->color = color;
	return 0;
}

#endif
