/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Where a trigger fires: the weight map write first, everything else after. */
#ifndef SHIFT_ROLLBACK_H
#define SHIFT_ROLLBACK_H

#include "agent.h"

/*
 * Roll a service back: latch green weight 0 in the map (one write, first),
 * measure sample_ts_ns (CLOCK_MONOTONIC, the triggering sample's kernel time;
 * 0 for manual) -> write done, then record, cancel the ramp, start evicting
 * green flows if configured (analysis/evict.h), save the state file (a
 * drill's: drill_start() does), and run the notify hook without waiting for
 * it.
 * 0, or the write's error (logged); for a drill also -EAGAIN: the word was
 * changed outside shiftd (shiftctl), nothing written, the change adopted.
 */
int rollback_fire(struct agent *a, struct service_rt *s, enum trigger_reason r, const char *detail,
		  __u64 sample_ts_ns);
/* A rollback done by shiftctl on the maps: record it (no map write here). */
void rollback_note_manual(struct agent *a, struct service_rt *s, const char *reason);
/* The same, with the time of shiftctl's map write (0: now). */
void rollback_note_manual_at(struct agent *a, struct service_rt *s, const char *reason,
			     __u64 unix_ns);
/*
 * The fleet rolled back (another node's trigger, an operator elsewhere): do what
 * a local rollback does — latch weight 0 first, evict green if rollback_evict,
 * notify — with the reason text unchanged and no publishing back. 0; 1 when
 * the map was latched already (shiftctl rollback on this host wrote it: no
 * eviction, the operator chose); -errno.
 */
int rollback_adopt(struct agent *a, struct service_rt *s, const char *reason, const char *origin);
/* Lift the latch: weight stays 0, windows start afresh. */
void rollback_clear(struct agent *a, struct service_rt *s);

#endif
