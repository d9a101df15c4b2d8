// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A ramp's hold between the two clocks: held on CLOCK_MONOTONIC, shown and
 * stored (the state file) in wall-clock time.
 */
#include "ops/ramp_time.h"

__u64 ramp_step_started_unix(const struct ramp_rt *r, __u64 now_mono, __u64 now_unix)
{
	/* now_unix - (now_mono - (due - hold)), kept unsigned. */
	__u64 x = now_unix + r->step_due_mono_ns, y = now_mono + r->hold_ns;

	return x > y ? x - y : 0;
}

__u64 ramp_next_unix(const struct ramp_rt *r, __u64 now_mono, __u64 now_unix)
{
	return now_unix + (r->step_due_mono_ns > now_mono ? r->step_due_mono_ns - now_mono : 0);
}

void ramp_hold_from_unix(struct ramp_rt *r, __u64 started_unix, __u64 now_mono, __u64 now_unix)
{
	__u64 held = now_unix > started_unix ? now_unix - started_unix : 0;

	/* The wall clock may have been stepped while shiftd was away: what it
	 * says is believed only within one hold, so the next step comes at once
	 * at the soonest (never several) and a full hold from now at the latest. */
	if (held > r->hold_ns)
		held = r->hold_ns;
	r->step_due_mono_ns = now_mono + (r->hold_ns - held);
}
