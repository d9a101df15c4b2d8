/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The connection table: established flows follow their entry, whatever the weights do. */
#ifndef SHIFT_CONNTRACK_H
#define SHIFT_CONNTRACK_H

#include <linux/errno.h>
#include "maps.bpf.h"
#include "parse.h"

union flow_key {
	struct shift_flow_key4 v4;
	struct shift_flow_key6 v6;
};

/* Key of the client -> VIP direction. */
static __always_inline void flow_key_fill(union flow_key *k, __u8 family, const __u32 *saddr,
					  const __u32 *daddr, __u16 sport, __u16 dport, __u8 proto)
{
	/* Every byte of either key is a field: nothing to zero first. */
	if (family == SHIFT_AF_INET) {
		k->v4.saddr = saddr[0];
		k->v4.daddr = shift_flow_key_vip0(daddr[0], proto);
		k->v4.sport = sport;
		k->v4.dport = dport;
	} else {
		__builtin_memcpy(k->v6.saddr, saddr, 16);
		k->v6.vip = shift_flow_key_vip0(shift_flow_vip6(daddr), proto);
		k->v6.sport = sport;
		k->v6.dport = dport;
	}
}

/*
 * One call instruction per table. Left to itself clang merges the v4 and v6
 * calls into one call on a map picked at run time; the verifier then cannot
 * inline the lookup (it does so only where the map is known) and every lookup
 * took the generic helper and an indirect, retpolined call into the table.
 * Different no-op moves (one, two) after each keep the two calls apart.
 */
static __always_inline struct shift_flow *flow_lookup(__u8 family, union flow_key *k)
{
	struct shift_flow *f;

	if (family == SHIFT_AF_INET) {
		f = bpf_map_lookup_elem(&shift_flows4, &k->v4);
		asm volatile("%0 = %0" : "+r"(f));
	} else {
		f = bpf_map_lookup_elem(&shift_flows6, &k->v6);
		asm volatile("%0 = %0\n\t%0 = %0" : "+r"(f));
	}
	return f;
}

/*
 * The backend an entry (or a SYN slot) names, if it still serves service_id:
 * a slot freed by a reload may be reused by another service, so check both.
 * id points at the id where it already sits (an entry): the inlined array
 * lookup reads its key through the pointer, with no copy on the stack.
 */
static __always_inline struct shift_backend *backend_at(const __u32 *id, __u32 service_id)
{
	struct shift_backend *be = bpf_map_lookup_elem(&shift_backends, id);

	return be && (be->flags & SHIFT_BE_F_ACTIVE) && be->service_id == service_id ? be : NULL;
}

/*
 * BPF_ANY for a flow the forward path proved (its first ACK, a UDP flow,
 * source NAT's SYN); BPF_NOEXIST for the return path's adoption, which must
 * not overwrite an entry the client's packet wrote meanwhile on another CPU:
 * that one is no failure and counts nothing.
 */
static __always_inline void flow_insert(__u8 family, union flow_key *k, const struct shift_flow *f,
					__u64 flags)
{
	long err;

	if (family == SHIFT_AF_INET) {
		err = bpf_map_update_elem(&shift_flows4, &k->v4, f, flags);
		asm volatile("%0 = %0" : "+r"(err));
	} else {
		err = bpf_map_update_elem(&shift_flows6, &k->v6, f, flags);
		asm volatile("%0 = %0\n\t%0 = %0" : "+r"(err));
	}
	if (err == -EEXIST)
		return;
	stat_inc(err ? SHIFT_STAT_FLOW_INSERT_FAIL : SHIFT_STAT_FLOW_INSERT);
}

#endif
