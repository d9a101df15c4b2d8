/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Open and load the shift BPF skeleton. Errors from libbpf, including the
 * verifier log of a rejected program, go through shift_log (see log.h). */
#ifndef SHIFT_LOADER_H
#define SHIFT_LOADER_H

#include <linux/types.h>

struct shift;

struct loader_opts {
	__u32 hash_seed;
	__u32 max_flows4; /* 0: SHIFT_DEFAULT_FLOWS */
	__u32 max_flows6; /* 0: SHIFT_DEFAULT_FLOWS6 */
};

/* Returns a loaded skeleton (shift__destroy() to free) or NULL with errno set. */
struct shift *shift_skel_load(const struct loader_opts *o);

#endif
