/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rollback drills: roll a healthy service back on purpose (reason "drill"),
 * hold, measure what the rollback did, and put the weight (and ramp) back.
 *
 * A drill is a state machine in shiftd, advanced by its tick; nothing in it
 * waits. It goes through the ordinary rollback path (rollback_fire with
 * TRIGGER_DRILL), so it exercises the write, the eviction and the notify hook
 * a real trigger would. The latch it sets carries SHIFT_WEIGHT_DRILL in the
 * map's weight word; any other writer (a real trigger, shiftctl rollback,
 * clear, set-weight --force) replaces the word, and the drill then never
 * restores: a real rollback always wins.
 *
 * The figures come from the per-backend counters in the maps, read just
 * before and after the weight write and at every tick: new connections by
 * color (so "time to blue" has the tick's resolution, except when no green
 * connection came after the write, when it is the write itself) and
 * return-path errors by color.
 *
 * This header carries no agent.h so that agent.h can hold a struct drill_rt.
 */
#ifndef SHIFT_DRILL_H
#define SHIFT_DRILL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <linux/types.h>
#include <shift/maps.h>

#define DRILL_DEFAULT_HOLD_NS (10ull * 1000000000ull)
#define DRILL_MIN_HOLD_NS (1ull * 1000000000ull)
#define DRILL_MAX_HOLD_NS (3600ull * 1000000000ull)
/* A ramp step due before the hold's end plus this is "due within the hold". */
#define DRILL_RAMP_MARGIN_NS (1ull * 1000000000ull)
/* A drill interrupted by a restart is restored only if shiftd is back this soon
 * after the hold's end; later, nobody may expect green back: it stays at 0. */
#define DRILL_RESTART_GRACE_NS (600ull * 1000000000ull)
#define DRILL_DETAIL_LEN 192

enum drill_result {
	DRILL_NONE = 0, /* no drill yet */
	DRILL_RESTORED, /* held, then weight (and ramp) put back */
	DRILL_ABORTED, /* a real rollback came during the hold: it stays latched */
	DRILL_CANCELLED, /* the operator changed weight or latch during the hold */
	DRILL_FAILED, /* the rollback or the restore could not be written */
	DRILL_INTERRUPTED, /* shiftd restarted during the hold */
	DRILL_REFUSED, /* counted in the metrics only: nothing was changed */
	DRILL__COUNT,
};

/* Per-color sums of a service's backend counters. */
struct drill_counts {
	__u64 new_flows[SHIFT_COLORS];
	__u64 errors[SHIFT_COLORS];
};

struct drill_report {
	__u64 id; /* per service, from 1 */
	enum drill_result result;
	bool pass; /* no new green connection later than the first look after the write */
	char detail[DRILL_DETAIL_LEN]; /* the real reason, why cancelled, what failed */
	__u64 started_unix_ns, ended_unix_ns;
	__u64 hold_ns;
	__u32 weight_before; /* basis points */
	__u32 weight_after; /* basis points as left by the drill (0 if not restored) */
	bool ramp_before, ramp_restored;
	bool evict; /* rollback_evict: green connections were dropped from the table */
	__u64 evicted;
	__u64 write_ns; /* the weight map write */
	__u64 time_to_blue_ns; /* weight write -> last new green connection */
	__u64 resolution_ns; /* time_to_blue's resolution when green came after the write */
	__u64 green_after_write; /* new green connections after the write */
	__u64 new_conns[SHIFT_COLORS]; /* after the write, until the end */
	__u64 errors[SHIFT_COLORS]; /* return-path errors from the write to the end */
};

struct drill_rt {
	bool holding;
	bool interrupted; /* from the state file: resolved at the first tick */
	bool real; /* a real rollback fired during the hold */
	char real_reason[DRILL_DETAIL_LEN];
	__u64 next_id;
	__u32 saved_weight;
	bool saved_ramp;
	__u64 write_start_mono, write_done_mono, ends_mono, ends_unix_ns;
	__u64 first_look_mono, last_green_mono, last_look_mono;
	struct drill_counts base, at_write, now;
	struct drill_report cur; /* the running drill */
	struct drill_report last; /* the last finished one */
	__u64 done[DRILL__COUNT]; /* drills since shiftd started, by result */
	__u64 ttb_ns; /* the last measured time to blue (0: none yet) */
};

/* --- pure parts (unit-tested) ------------------------------------------------ */

/* Inline: the state file (ops/persist.c, a layer below) names results too. */
static inline const char *drill_result_name(enum drill_result r)
{
	static const char *const names[DRILL__COUNT] = {
		[DRILL_NONE] = "none",	     [DRILL_RESTORED] = "restored",
		[DRILL_ABORTED] = "aborted", [DRILL_CANCELLED] = "cancelled",
		[DRILL_FAILED] = "failed",   [DRILL_INTERRUPTED] = "interrupted",
		[DRILL_REFUSED] = "refused",
	};

	return (unsigned)r < DRILL__COUNT ? names[r] : "unknown";
}

/* DRILL_NONE for an unknown name. */
static inline enum drill_result drill_result_from_name(const char *s)
{
	int r;

	for (r = DRILL_NONE + 1; r < DRILL__COUNT; r++)
		if (!strcmp(s, drill_result_name((enum drill_result)r)))
			return (enum drill_result)r;
	return DRILL_NONE;
}

/* What decides a refusal. */
struct drill_check {
	const char *service;
	bool holding; /* a drill already runs */
	bool latched;
	const char *reason; /* of the latch */
	__u32 weight;
	bool ramp_active;
	__u32 ramp_index, ramp_n;
	__u64 ramp_next_unix_ns; /* when the ramp's next step is due */
	__u64 now_unix_ns, hold_ns;
};

/* 0, or -EBUSY / -EPERM with the reason in err. Nothing is changed either way. */
int drill_refusal(const struct drill_check *c, char *err, size_t errlen);

/* A new drill: figures zeroed, the current weight and ramp recorded. */
void drill_begin(struct drill_rt *d, __u32 weight, bool ramp, __u64 hold_ns, __u64 now_unix_ns);
/* After the write: base = just before it, at = just after, times in CLOCK_MONOTONIC. */
void drill_written(struct drill_rt *d, const struct drill_counts *base,
		   const struct drill_counts *at, __u64 write_start, __u64 write_done, bool evict,
		   __u64 evicted);
/* A look at the counters during the hold. */
void drill_observe(struct drill_rt *d, const struct drill_counts *c, __u64 now_mono);

enum drill_step {
	DRILL_WAIT, /* still holding */
	DRILL_RESTORE, /* the hold is over and the drill's latch is untouched */
	DRILL_STOP_REAL, /* a real rollback replaced the drill's latch */
	DRILL_STOP_OPERATOR, /* the latch was lifted or the weight set by hand */
};

/* What to do now, given the map's weight word. */
enum drill_step drill_decide(const struct drill_rt *d, __u32 word, __u64 now_mono);

/* Close the running drill: the report's figures from the looks so far. */
void drill_finish(struct drill_rt *d, enum drill_result r, __u32 weight_after, bool ramp_restored,
		  const char *detail, __u64 now_unix_ns);

/* --- in shiftd ----------------------------------------------------------------- */

struct agent;
struct service_rt;

/*
 * Start a drill: refusal checks, then the rollback (reason "drill") through
 * rollback_fire. 0 with *id; -EBUSY/-EPERM (refused, err says why, nothing
 * changed) or -EIO (the write failed).
 */
int drill_start(struct agent *a, struct service_rt *s, __u64 hold_ns, __u64 *id, char *err,
		size_t errlen);
/* rollback_fire, right after a drill's weight write: the counters as of then. */
void drill_after_write(struct agent *a, struct service_rt *s);
/* Advance every drill: look at the counters, restore or stop. From the tick. */
void drill_tick(struct agent *a);
/* rollback_fire and shiftctl's rollback: a real rollback during a drill wins. */
void drill_note_rollback(struct service_rt *s, const char *reason);

#endif
