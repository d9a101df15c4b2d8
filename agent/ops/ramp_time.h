/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A ramp's hold between the two clocks: held on CLOCK_MONOTONIC, shown and
 * stored (the state file) in wall-clock time. Here, below analysis/, because
 * the state file (ops/persist.c) and fleet/ convert too.
 */
#ifndef SHIFT_OPS_RAMP_TIME_H
#define SHIFT_OPS_RAMP_TIME_H

#include <linux/types.h>

#include "agent.h"

/* When the current step began, in wall-clock time as the clock reads now
 * (status, the state file's ramp_step_started_unix_ns). */
__u64 ramp_step_started_unix(const struct ramp_rt *r, __u64 now_mono_ns, __u64 now_unix_ns);
/* When the next step is due, in wall-clock time as the clock reads now. */
__u64 ramp_next_unix(const struct ramp_rt *r, __u64 now_mono_ns, __u64 now_unix_ns);
/* Set the hold of r's current step (hold_ns set) from the wall time the step
 * began (the state file's, after a restart or a reboot): the rest of the
 * hold, between none and a full hold from now. */
void ramp_hold_from_unix(struct ramp_rt *r, __u64 started_unix_ns, __u64 now_mono_ns,
			 __u64 now_unix_ns);

#endif
