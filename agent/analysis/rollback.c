// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/log.h"
#include "analysis/evict.h"
#include "analysis/rollback.h"

static void record_reaction(struct agent *a, __u64 ns)
{
	int b = 0;

	while (b < 31 && (1ull << (b + 1)) <= ns)
		b++;
	a->reaction_hist[b]++;
	a->reaction_sum_ns += ns;
	a->reaction_count++;
}

/* After the state file has what the hook announces (persist_spawn_after()). */
static void notify(struct agent *a, struct service_rt *s, const char *reason, const char *detail)
{
	char e_svc[128], e_reason[192], e_detail[600], e_react[64], e_weight[64];
	char *envp[] = {
		e_svc, e_reason, e_detail, e_react, e_weight, "SHIFT_EVENT=rollback", NULL
	};

	if (!a->conf->notify_command[0])
		return;
	snprintf(e_svc, sizeof(e_svc), "SHIFT_SERVICE=%s", s->conf->name);
	snprintf(e_reason, sizeof(e_reason), "SHIFT_REASON=%s", reason);
	snprintf(e_detail, sizeof(e_detail), "SHIFT_DETAIL=%s", detail ? detail : "");
	snprintf(e_react, sizeof(e_react), "SHIFT_REACTION_US=%.1f", (double)s->reaction_ns / 1e3);
	snprintf(e_weight, sizeof(e_weight), "SHIFT_GREEN_WEIGHT=0");
	persist_spawn_after(a, a->conf->notify_command, envp);
}

/* A local rollback: the fleet layer publishes it from the loop (fleet/). */
static void mark_publish(struct agent *a, struct service_rt *s, const char *origin)
{
	snprintf(s->rollback_origin, sizeof(s->rollback_origin), "%s", origin);
	s->fleet_lag_us = 0;
	s->fleet_publish = true;
	a->fleet_pending = true;
	if (a->on_rollback)
		a->on_rollback(a, s);
}

static enum trigger_reason reason_from_text(const char *text)
{
	size_t n = strcspn(text, ":");
	int r;

	for (r = TRIGGER_NONE + 1; r < TRIGGER__COUNT; r++)
		if (strlen(trigger_reason_name(r)) == n &&
		    !strncmp(text, trigger_reason_name(r), n))
			return r;
	return TRIGGER_MANUAL;
}

int rollback_adopt(struct agent *a, struct service_rt *s, const char *reason, const char *origin)
{
	__u32 word = 0;
	bool was = false;
	int err;

	/* Latched in the map but not here: shiftctl rollback on this host wrote it. */
	if (!dp_weight_get(&a->maps, s->id, &word))
		was = (word & SHIFT_WEIGHT_LATCHED) != 0;
	err = dp_weight_set(&a->maps, s->id, SHIFT_WEIGHT_LATCHED);
	s->rollback_unix_ns = now_unix_ns();
	if (err) {
		log_err("service %s: FLEET ROLLBACK WRITE FAILED: %s", s->conf->name,
			strerror(-err));
		return err;
	}
	s->latched = true;
	s->latch_drill = false; /* the fleet's rollback replaces a drill's latch for good */
	s->weight = 0;
	s->reaction_ns = 0;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	snprintf(s->rollback_origin, sizeof(s->rollback_origin), "%s", origin);
	s->rollbacks[reason_from_text(reason)]++;
	drill_note_rollback(s, s->reason);
	s->ramp.active = false;
	log_warn("service %s: ROLLBACK from the fleet (origin %s: %s)", s->conf->name, origin,
		 reason);
	/* Already latched in the map: shiftctl rollback wrote it here, with or
	 * without --evict as the operator chose. */
	if (s->conf->rollback_evict && !was)
		evict_green_start(a, s);
	a->persist_dirty = true;
	notify(a, s, trigger_reason_name(reason_from_text(reason)), reason);
	return was ? 1 : 0;
}

/*
 * A drill's latch, marked so that only a drill ever lifts it, and written
 * only over the word shiftd has (apply_weight_over(), as fast as the plain
 * write): the drill restores the weight it saved, so starting over a rollback
 * or a weight shiftctl wrote, its sync not yet here, would undo that at the
 * end. -EAGAIN then, nothing written.
 */
static int drill_latch(struct agent *a, struct service_rt *s)
{
	struct weight_state was = agent_weight_state(s);
	int err;

	s->latched = true;
	s->latch_drill = true;
	err = apply_weight_over(a, s, &was);
	if (err && err != -EAGAIN) {
		/* Not written: shiftd's word is the one it had. */
		s->latched = was.latched;
		s->latch_drill = was.latched && was.drill;
	}
	return err;
}

int rollback_fire(struct agent *a, struct service_rt *s, enum trigger_reason r, const char *detail,
		  __u64 sample_ts_ns)
{
	__u64 done;
	int err;

	/* The one thing that must be fast: everything else waits until it is done. */
	if (r == TRIGGER_DRILL)
		err = drill_latch(a, s);
	else
		err = dp_weight_set(&a->maps, s->id, SHIFT_WEIGHT_LATCHED);
	done = now_mono_ns();
	if (err == -EAGAIN)
		return err;
	if (err) {
		log_err("service %s: ROLLBACK WRITE FAILED: %s", s->conf->name, strerror(-err));
		return err;
	}
	s->latched = true;
	s->latch_drill = r == TRIGGER_DRILL;
	s->rollback_mono_ns = done;
	/* A drill counts new connections from here, before the eviction's re-steers. */
	if (r == TRIGGER_DRILL)
		drill_after_write(a, s);
	s->weight = 0;
	/* A sample older than this shiftd waited for it to start: its age is none
	 * of the reaction's (samples.c fires on none, this keeps it so). */
	if (sample_ts_ns < a->start_mono_ns)
		sample_ts_ns = 0;
	s->reaction_ns = sample_ts_ns && done > sample_ts_ns ? done - sample_ts_ns : 0;
	if (sample_ts_ns)
		record_reaction(a, s->reaction_ns);
	s->rollback_unix_ns = now_unix_ns();
	snprintf(s->reason, sizeof(s->reason), "%s: %s", trigger_reason_name(r),
		 detail ? detail : "");
	s->rollbacks[r]++;
	if (r != TRIGGER_DRILL)
		drill_note_rollback(s, s->reason);
	s->ramp.active = false;
	/* A drill's latch is this node's alone: it restores it after the hold. */
	if (r != TRIGGER_DRILL)
		mark_publish(a, s, a->node);
	log_warn("service %s: ROLLBACK (%s), green weight 0 written %.1f us after the sample",
		 s->conf->name, s->reason, (double)s->reaction_ns / 1e3);
	/* Re-steer green's open connections to blue: a walk of the whole
	 * table, spread over the loop's turns (evict.c), never in one go here. */
	s->last_evicted = 0;
	if (s->conf->rollback_evict)
		evict_green_start(a, s);
	/*
	 * The pinned map holds the latch already, but a reboot (the pins gone)
	 * has only the state file: saved now, not at the next tick, or a crash
	 * in between undoes the rollback and forgets that the fleet has yet to
	 * hear of it (fleet_publish). Handed to the writer thread, not waited
	 * for: another service's error in the ring must not wait on its fsyncs.
	 * A drill's latch is saved by drill_start() right after, with the
	 * drill's record: saved without it, a reboot would keep it as a real
	 * rollback. The hook runs once the save is done: what it announces is
	 * on disk.
	 */
	if (r == TRIGGER_DRILL)
		a->persist_dirty = true;
	else
		persist_save_async(a);
	notify(a, s, trigger_reason_name(r), detail);
	return 0;
}

void rollback_note_manual(struct agent *a, struct service_rt *s, const char *reason)
{
	rollback_note_manual_at(a, s, reason, 0);
}

void rollback_note_manual_at(struct agent *a, struct service_rt *s, const char *reason,
			     __u64 unix_ns)
{
	s->latched = true;
	s->latch_drill = false;
	s->weight = 0;
	s->reaction_ns = 0;
	s->rollback_unix_ns = unix_ns ? unix_ns : now_unix_ns();
	snprintf(s->reason, sizeof(s->reason), "manual: %s",
		 reason && *reason ? reason : "operator");
	s->rollbacks[TRIGGER_MANUAL]++;
	drill_note_rollback(s, s->reason);
	s->ramp.active = false;
	mark_publish(a, s, "operator");
	log_warn("service %s: rolled back by the operator (%s)", s->conf->name, s->reason);
	persist_save(a);
	notify(a, s, "manual", reason);
}

void rollback_clear(struct agent *a, struct service_rt *s)
{
	s->latched = false;
	s->latch_drill = false;
	s->fleet_publish = false;
	analysis_reset(&s->an);
	log_info("service %s: rollback latch cleared; green weight stays %u bp", s->conf->name,
		 s->weight);
	/* Not waited for: a fleet's clear of many services would hold the loop
	 * for two fsyncs each. An operator's clear waits in control.c. */
	persist_save_async(a);
}
