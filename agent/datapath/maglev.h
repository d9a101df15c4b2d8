/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maglev consistent hashing (Eisenbud et al., NSDI 2016): each backend fills the
 * ring along its own permutation, so removing one backend frees only its slots
 * and the others keep theirs, apart from a small, bounded reshuffle. */
#ifndef SHIFT_MAGLEV_H
#define SHIFT_MAGLEV_H

#include <linux/types.h>
#include <shift/maps.h>

/*
 * Fill ring[0..ring_size) with indexes into keys[0..n). The result depends only
 * on the set of keys, not their order. ring_size must be prime and > n.
 * n == 0 fills SHIFT_NO_BACKEND. Returns 0 or -EINVAL / -ENOMEM.
 */
int maglev_build(const struct shift_addr_key *keys, __u32 n, __u32 *ring, __u32 ring_size);

#endif
