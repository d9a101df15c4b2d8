/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection-table evictions, spread over the loop's turns. A rollback writes
 * its weight first and only then starts one here; the loop runs a chunk of at
 * most EVICT_CHUNK_NS per turn, after that turn's samples, one job at a time
 * in turn. Walking a million entries takes seconds: in one go it held every
 * other service's rollback (and the control socket, the health checks) for
 * that long; in chunks another service's error waits one chunk at most.
 */
#ifndef SHIFT_EVICT_H
#define SHIFT_EVICT_H

#include "agent.h"

/* One turn's share: under HEALTH_SLACK_NS, so health probes lose no time to it. */
#define EVICT_CHUNK_NS 1000000ULL

/*
 * Green's entries of s (its rollback, rollback_evict): every one present now
 * goes, unless the latch is lifted first (green takes connections again, and
 * the walk stops). A walk already running for s starts over. s->last_evicted
 * counts them as they go (a drill's report too).
 */
void evict_green_start(struct agent *a, struct service_rt *s);
/* Every entry of service id, removed from the config (name for the log): in
 * place of whatever ran for it. */
void evict_removed_start(struct agent *a, __u32 id, const char *name);
/* Some walk is left: the loop must not sleep. */
bool evict_pending(const struct agent *a);
/* A removed service's entries are still going: id is not to be given out. */
bool evict_holds_id(const struct agent *a, __u32 id);
/* One chunk of the next job in turn, for about budget_ns. */
void evict_run(struct agent *a, __u64 budget_ns);
/* What is left, now (shiftd exiting: the next one would not know of it). */
void evict_finish(struct agent *a);

#endif
