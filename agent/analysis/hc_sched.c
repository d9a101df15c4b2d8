// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <limits.h>

#include "analysis/hc_sched.h"

#define NS_PER_MS 1000000ULL

__u64 hc_due(bool in_flight, __u64 deadline_ns, __u64 next_ns)
{
	return in_flight ? deadline_ns : next_ns;
}

__u64 hc_extend(__u64 deadline_ns, __u64 started_ns, __u64 timeout_ns, __u64 lost_ns)
{
	__u64 cap = started_ns + 2 * timeout_ns;

	if (deadline_ns >= cap || lost_ns >= cap - deadline_ns)
		return deadline_ns > cap ? deadline_ns : cap;
	return deadline_ns + lost_ns;
}

__u64 hc_next_start(__u64 sched_ns, __u64 interval_ns, __u64 now_ns)
{
	__u64 next;

	if (!interval_ns)
		return now_ns;
	next = sched_ns + interval_ns;
	if (next > now_ns)
		return next;
	/* Keep the phase: the first slot after now. */
	return now_ns + interval_ns - (now_ns - sched_ns) % interval_ns;
}

int hc_timeout_ms(__u64 now_ns, __u64 deadline_ns, int other_ms)
{
	__u64 ms;
	int t;

	if (deadline_ns == HC_NEVER)
		return other_ms;
	if (deadline_ns <= now_ns)
		return 0;
	ms = (deadline_ns - now_ns + NS_PER_MS - 1) / NS_PER_MS;
	t = ms > INT_MAX ? INT_MAX : (int)ms;
	if (other_ms >= 0 && other_ms < t)
		return other_ms;
	return t;
}

bool hc_count(bool *healthy, __u32 *ok, __u32 *fail, bool result, __u32 rise, __u32 fall)
{
	bool was = *healthy;

	if (result) {
		*fail = 0;
		if (*ok < rise)
			(*ok)++;
		if (!*healthy && *ok >= rise)
			*healthy = true;
	} else {
		*ok = 0;
		if (*fail < fall)
			(*fail)++;
		if (*healthy && *fail >= fall)
			*healthy = false;
	}
	return was != *healthy;
}

bool hc_early_ok(bool healthy, bool in_flight, __u64 started_ns, __u64 interval_ns, __u64 now_ns)
{
	if (!healthy || in_flight)
		return false;
	return started_ns == 0 || now_ns < started_ns || now_ns - started_ns >= interval_ns / 8;
}
