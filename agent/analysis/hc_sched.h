/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Health-check timing and counting, kept apart from sockets so it can be unit
 * tested: every backend has its own deadlines on CLOCK_MONOTONIC (the next probe's
 * start, the probe in flight's timeout), and the agent's loop sleeps until the
 * earliest of them. No global tick: an interval of 10 ms is honoured as such.
 */
#ifndef SHIFT_HC_SCHED_H
#define SHIFT_HC_SCHED_H

#include <stdbool.h>
#include <linux/types.h>

/* No deadline (nothing to do until a socket is ready). */
#define HC_NEVER ((__u64)-1)

/* When a backend needs the agent next: its probe's deadline while one is in
 * flight, else the start of its next probe. */
__u64 hc_due(bool in_flight, __u64 deadline_ns, __u64 next_ns);

/* The start after the probe scheduled at sched_ns: one interval later, on the
 * same phase. After a stall (now already past that) the missed starts are
 * skipped, never run in a burst. */
__u64 hc_next_start(__u64 sched_ns, __u64 interval_ns, __u64 now_ns);

/* A probe's deadline moved on by `lost_ns`, time in which the agent itself could
 * not look (starved of CPU, or busy elsewhere in its loop): the timeout measures
 * the backend, not the agent. Never past started + 2 x timeout, so a stalled
 * agent still judges every probe. */
__u64 hc_extend(__u64 deadline_ns, __u64 started_ns, __u64 timeout_ns, __u64 lost_ns);

/* epoll_wait's timeout for a deadline: ms from now, rounded up so that the
 * agent never wakes before the deadline (a wake-up 1 ms early would cost a
 * spin); 0 when due, -1 for HC_NEVER; the smaller of that and other_ms (-1 =
 * no other deadline). */
int hc_timeout_ms(__u64 now_ns, __u64 deadline_ns, int other_ms);

/* Count one probe result into the consecutive ok/fail counters, healthy after
 * `rise` oks in a row, unhealthy after `fall` failures in a row. True when
 * *healthy changed. */
bool hc_count(bool *healthy, __u32 *ok, __u32 *fail, bool result, __u32 rise, __u32 fall);
/*
 * May an error seen in a backend's traffic start its probe now (rather than at
 * its next interval)? Only for a backend that is up, with no probe in flight,
 * whose last probe started an eighth of an interval ago or more: an error
 * storm must not become a probe storm.
 */
bool hc_early_ok(bool healthy, bool in_flight, __u64 started_ns, __u64 interval_ns, __u64 now_ns);

#endif
