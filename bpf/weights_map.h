/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The weight map, on its own: the datapath (maps.bpf.h) and userspace's
 * compare-and-swap (weight_cas.bpf.c, bound to the pinned map) declare the
 * same one.
 */
#ifndef SHIFT_WEIGHTS_MAP_H
#define SHIFT_WEIGHTS_MAP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <shift/maps.h>

/* Service id -> weight word; a rollback is one write here. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIFT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} shift_weights SEC(".maps");

#endif
