/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Compare-and-swap on a service's weight word, for userspace.
 *
 * Userspace decides a weight from the word it read (a ramp's next step, a
 * drill's restore, set-weight after checking the latch) and writes it later;
 * a map update cannot say "only if it is still what I read", so a rollback
 * written in between (shiftctl's, or shiftd's trigger) would be overwritten
 * and lost. BPF can: this program, run with BPF_PROG_TEST_RUN against the
 * pinned weights map (the loader reuses its fd), swaps the word atomically
 * against the datapath's readers and every other writer that goes through
 * it. A rollback itself writes unconditionally: it always wins.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <shift/maps.h>

/* The datapath's map, bound to the pinned one before load. */
#include "weights_map.h"

/* 0: the word was read into c->seen (swapped when it was c->expect); 1: no such service. */
SEC("syscall")
int shift_weight_cas(struct shift_weight_cas *c)
{
	__u32 id = c->service_id, *w;

	w = bpf_map_lookup_elem(&shift_weights, &id);
	if (!w)
		return 1;
	c->seen = __sync_val_compare_and_swap(w, c->expect, c->word);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
