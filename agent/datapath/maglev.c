// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <shift/flow_hash.h>
#include "datapath/maglev.h"

/* Two independent hashes of a backend's identity (family, addr, port). */
static __u32 key_hash(const struct shift_addr_key *k, __u32 seed)
{
	__u32 h = seed;
	int i;

	for (i = 0; i < 4; i++)
		h = shift_mix_word(h, ntohl(k->addr[i]));
	h = shift_mix_word(h, ((__u32)k->family << 16) | ntohs(k->port));
	return shift_fmix32(h, 20);
}

static int key_cmp(const void *a, const void *b)
{
	const struct shift_addr_key *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, sizeof(x->addr));

	if (c)
		return c;
	if (x->port != y->port)
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return (int)x->family - (int)y->family;
}

struct maglev_entry {
	struct shift_addr_key key;
	__u32 index; /* into the caller's keys[] */
	__u32 offset;
	__u32 skip;
	__u32 next;
};

static int entry_cmp(const void *a, const void *b)
{
	return key_cmp(&((const struct maglev_entry *)a)->key,
		       &((const struct maglev_entry *)b)->key);
}

int maglev_build(const struct shift_addr_key *keys, __u32 n, __u32 *ring, __u32 ring_size)
{
	struct maglev_entry *e;
	__u32 filled = 0, i;

	if (ring_size < 2 || (n && n >= ring_size))
		return -EINVAL;
	if (n == 0) {
		for (i = 0; i < ring_size; i++)
			ring[i] = SHIFT_NO_BACKEND;
		return 0;
	}
	e = calloc(n, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		e[i].key = keys[i];
		e[i].index = i;
		e[i].offset = key_hash(&keys[i], 0x6d61676cu) % ring_size;
		e[i].skip = key_hash(&keys[i], 0x65760000u) % (ring_size - 1) + 1;
	}
	/*
	 * Maglev's fill order decides ties, so sort by identity: the ring is then
	 * a function of the backend set, the same on every host and across
	 * config reorderings.
	 */
	qsort(e, n, sizeof(*e), entry_cmp);
	for (i = 0; i < ring_size; i++)
		ring[i] = SHIFT_NO_BACKEND;
	while (filled < ring_size) {
		for (i = 0; i < n && filled < ring_size; i++) {
			__u32 c;

			/* ring_size is prime and skip < ring_size: the walk visits every slot. */
			do {
				c = (__u32)(((__u64)e[i].offset + (__u64)e[i].next * e[i].skip) %
					    ring_size);
				e[i].next++;
			} while (ring[c] != SHIFT_NO_BACKEND);
			ring[c] = e[i].index;
			filled++;
		}
	}
	free(e);
	return 0;
}
