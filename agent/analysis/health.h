/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Health checks from the agent: TCP connect or HTTP GET (2xx expected) to
 * every backend, with interval, timeout, rise and fall. A backend that fails
 * leaves its pool's ring; green with no healthy backend left is a rollback.
 * Each backend runs on its own deadlines (analysis/hc_sched.h), not a tick.
 */
#ifndef SHIFT_HEALTH_H
#define SHIFT_HEALTH_H

#include "agent.h"

/* Finish timed-out probes, start due ones, and compute health_next_ns().
 * Never blocks. The loop calls it when health_next_ns() has passed. */
void health_run(struct agent *a);
/* The agent could not look for lost_ns (woke late, or one loop turn ran long):
 * probes in flight get that time back (hc_extend()), so the timeout measures the
 * backend. The loop calls it when a turn lost more than HEALTH_SLACK_NS. */
#define HEALTH_SLACK_NS 2000000ULL
void health_lost(struct agent *a, __u64 lost_ns);
/* The same, for the agent's periodic tick (a safety net: deadlines drive it). */
void health_tick(struct agent *a);
/* CLOCK_MONOTONIC ns of the earliest deadline over all backends (HC_NEVER if
 * none); epoll_wait's timeout comes from it. */
__u64 health_next_ns(const struct agent *a);
/* Services or intervals changed (reload): run at the next loop turn. */
void health_kick(struct agent *a);
/* The probes' epoll set (created on first use), for the agent's loop: when it
 * is readable, call health_events(). -errno if it cannot be created. */
int health_fd(struct agent *a);
/* Advance the probes whose sockets are ready (only those). */
void health_events(struct agent *a);
/* Close probes in flight (shutdown, service removed). */
void health_stop(struct service_rt *s);
/*
 * An error in backend_id's traffic (its RST, 5xx, refused or unanswered SYN,
 * seen by the datapath): probe it now instead of at its next interval, so a
 * dead backend leaves its ring one probe after its first failed request, not
 * half an interval later on average.
 */
void health_on_error(struct agent *a, struct service_rt *s, __u32 backend_id);

#endif
