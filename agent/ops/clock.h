/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Monotonic (intervals, deadlines, sample times) and wall (what operators read) clocks. */
#ifndef SHIFT_CLOCK_H
#define SHIFT_CLOCK_H

#include <linux/types.h>

/* CLOCK_MONOTONIC in ns: the clock of the BPF samples' bpf_ktime_get_ns(). */
__u64 now_mono_ns(void);
/* CLOCK_REALTIME in ns. */
__u64 now_unix_ns(void);

#endif
