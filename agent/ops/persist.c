// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Runtime <-> state_dir/state: what must survive a reboot, when the pins are gone. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ops/log.h"
#include "ops/persist_writer.h"
#include "ops/ramp_time.h"
#include "ops/state.h"

/* The runtime's state as the file keeps it, into *st: 0 or -ENOMEM. */
static int build(struct agent *a, struct shift_state *st)
{
	__u32 i;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];
		struct state_service *p;

		if (!s)
			continue;
		p = state_get_or_add(st, s->conf->name);
		if (!p)
			return -ENOMEM;
		p->weight = s->weight;
		p->latched = s->latched;
		p->fleet_publish = s->latched && s->fleet_publish;
		snprintf(p->reason, sizeof(p->reason), "%s", s->reason);
		snprintf(p->rollback_origin, sizeof(p->rollback_origin), "%s", s->rollback_origin);
		p->fleet_lag_us = s->fleet_lag_us;
		p->rollback_unix_ns = s->rollback_unix_ns;
		p->reaction_ns = s->reaction_ns;
		p->ramp_active = s->ramp.active;
		p->ramp_n = s->ramp.n;
		memcpy(p->ramp_steps, s->ramp.steps, sizeof(__u32) * s->ramp.n);
		p->ramp_index = s->ramp.index;
		p->ramp_hold_ns = s->ramp.hold_ns;
		p->ramp_step_started_unix_ns =
			ramp_step_started_unix(&s->ramp, now_mono_ns(), now_unix_ns());
		if (s->drill.holding || s->drill.interrupted) {
			p->drill_weight = s->drill.saved_weight;
			p->drill_ramp = s->drill.saved_ramp;
			p->drill_started_unix_ns = s->drill.cur.started_unix_ns;
			p->drill_ends_unix_ns = s->drill.ends_unix_ns;
		}
		if (s->drill.last.result != DRILL_NONE) {
			snprintf(p->last_drill, sizeof(p->last_drill), "%s",
				 drill_result_name(s->drill.last.result));
			p->last_drill_unix_ns = s->drill.last.started_unix_ns;
			p->last_drill_ttb_ns = s->drill.ttb_ns;
		}
	}
	return 0;
}

/*
 * A state that failed to save (full disk) is retried every second from the
 * tick, or a reboot would undo what the maps already say (a rollback, say).
 * Logged when it starts failing and when it recovers, not per try.
 */
static void outcome(struct agent *a, int rc, const char *err)
{
	if (rc) {
		if (!a->persist_failing)
			log_err("state not saved, retrying every second (the datapath is "
				"unaffected; a reboot now would restore older weights): %s",
				rc == -ENOMEM ? "out of memory" : err);
		a->persist_failing = true;
		a->persist_dirty = true;
		a->persist_retry_ns = now_mono_ns() + 1000000000ull;
	} else if (a->persist_failing) {
		a->persist_failing = false;
		log_info("state saved again to %s", a->state_path);
	}
}

/* A command waiting for a save: posix_spawn()ed once it is on disk. */
struct persist_job {
	struct persist_job *next;
	__u64 gen;
	char *argv[2];
	char *envp[PERSIST_JOB_ENV + 1];
	char buf[]; /* the strings */
};

/* The command runs detached: its exit is reaped by the SIGCHLD-ignoring loop. */
static void spawn(const char *what, char *const argv[], char *const envp[])
{
	pid_t pid;
	int rc;

	rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, envp);
	if (rc)
		log_warn("%s %s: %s", what, argv[0], strerror(rc));
}

/* The jobs whose save is done, in the order they came. */
static void run_due(struct agent *a)
{
	struct persist_job *j;

	while ((j = a->persist_jobs) && j->gen <= a->persist_seen) {
		a->persist_jobs = j->next;
		spawn("notify_command", j->argv, j->envp);
		free(j);
	}
	if (!a->persist_jobs)
		a->persist_jobs_tail = NULL;
}

static int save_inline(struct agent *a, struct shift_state *st)
{
	char err[512] = "";
	int lock = -1, rc;

	/* shiftctl writes the same file while we are down; the lock orders the two. */
	rc = state_lock(a->state_path, &lock, err, sizeof(err));
	if (!rc) {
		rc = state_save(a->state_path, st, err, sizeof(err));
		state_unlock(lock);
	}
	outcome(a, rc, err);
	return rc;
}

int persist_save(struct agent *a)
{
	struct shift_state st = { 0 };
	struct persist_done d;
	__u64 gen;
	int rc;

	rc = build(a, &st);
	if (rc) {
		outcome(a, rc, "");
	} else if (a->persist_w && (gen = persist_writer_submit(a->persist_w, &st))) {
		a->persist_gen = gen;
		persist_writer_wait(a->persist_w, gen, &d);
		a->persist_seen = d.gen;
		outcome(a, d.rc, d.err);
		rc = d.rc;
		run_due(a);
	} else {
		rc = save_inline(a, &st);
	}
	state_free(&st);
	return rc;
}

void persist_save_async(struct agent *a)
{
	struct shift_state st = { 0 };
	__u64 gen;
	int rc;

	if (!a->persist_w) {
		persist_save(a);
		return;
	}
	rc = build(a, &st);
	if (rc)
		outcome(a, rc, "");
	else if ((gen = persist_writer_submit(a->persist_w, &st)))
		a->persist_gen = gen;
	else
		save_inline(a, &st);
	state_free(&st);
}

int persist_start(struct agent *a)
{
	int rc = persist_writer_start(&a->persist_w, a->state_path);

	if (rc)
		log_warn("state writer thread: %s; the state file is written on the event loop",
			 strerror(-rc));
	return rc;
}

int persist_fd(const struct agent *a)
{
	return a->persist_w ? persist_writer_fd(a->persist_w) : -1;
}

void persist_collect(struct agent *a)
{
	struct persist_done d;

	if (a->persist_w && persist_writer_poll(a->persist_w, &a->persist_seen, &d))
		outcome(a, d.rc, d.err);
	run_due(a);
}

void persist_stop(struct agent *a)
{
	struct persist_done d = { 0 };

	if (a->persist_w) {
		persist_writer_stop(a->persist_w, &d);
		a->persist_w = NULL;
		if (d.gen > a->persist_seen) {
			a->persist_seen = d.gen;
			outcome(a, d.rc, d.err);
		}
	}
	/* Every save handed over was written (or failed): whatever waited runs. */
	a->persist_seen = a->persist_gen;
	run_due(a);
	/* A writer started again numbers its saves from 1. */
	a->persist_gen = a->persist_seen = 0;
}

void persist_spawn_after(struct agent *a, const char *cmd, char *const envp[])
{
	char *argv[] = { (char *)cmd, NULL };
	size_t len = strlen(cmd) + 1, n = 0, i;
	struct persist_job *j = NULL;
	char *at;

	while (n < PERSIST_JOB_ENV && envp[n])
		len += strlen(envp[n++]) + 1;
	/* Nothing on its way to disk: what the command announces is there already. */
	if (a->persist_gen > a->persist_seen) {
		j = calloc(1, sizeof(*j) + len);
		if (!j)
			log_warn(
				"notify_command: out of memory; run before the state file is saved");
	}
	if (!j) {
		spawn("notify_command", argv, envp);
		return;
	}
	at = j->buf;
	j->argv[0] = strcpy(at, cmd);
	at += strlen(cmd) + 1;
	for (i = 0; i < n; i++) {
		j->envp[i] = strcpy(at, envp[i]);
		at += strlen(envp[i]) + 1;
	}
	j->gen = a->persist_gen;
	if (a->persist_jobs_tail)
		a->persist_jobs_tail->next = j;
	else
		a->persist_jobs = j;
	a->persist_jobs_tail = j;
}

/* "drill: drill 3, hold 30s": the reason rollback_fire() gives a drill's latch. */
static bool reason_is_drill(const char *reason)
{
	const char *name = trigger_reason_name(TRIGGER_DRILL);
	size_t n = strlen(name);

	return !strncmp(reason, name, n) && reason[n] == ':';
}

/*
 * A drill that was holding when shiftd stopped: analysis/drill.c decides at
 * the first tick whether to put the weight back. The ramp's plan comes back
 * (inactive) so that the drill can resume it.
 */
static void restore_drill(struct service_rt *s, const struct state_service *p)
{
	struct drill_rt *d = &s->drill;

	d->last.result = drill_result_from_name(p->last_drill);
	d->last.started_unix_ns = p->last_drill_unix_ns;
	d->last.time_to_blue_ns = p->last_drill_ttb_ns;
	d->ttb_ns = p->last_drill_ttb_ns; /* a write never takes 0 ns: 0 is "none measured" */
	if (!p->drill_weight)
		return;
	d->interrupted = true;
	d->saved_weight = p->drill_weight;
	d->saved_ramp = p->drill_ramp && p->ramp_n && p->ramp_n <= RAMP_MAX_STEPS &&
			p->ramp_index < p->ramp_n;
	d->ends_unix_ns = p->drill_ends_unix_ns;
	d->cur.weight_before = p->drill_weight;
	d->cur.started_unix_ns = p->drill_started_unix_ns;
	d->cur.hold_ns = p->drill_ends_unix_ns > p->drill_started_unix_ns ?
				 p->drill_ends_unix_ns - p->drill_started_unix_ns :
				 0;
	d->cur.ramp_before = p->drill_ramp;
	if (d->saved_ramp) {
		s->ramp.active = false;
		s->ramp.n = p->ramp_n;
		memcpy(s->ramp.steps, p->ramp_steps, sizeof(__u32) * p->ramp_n);
		s->ramp.index = p->ramp_index;
		s->ramp.hold_ns = p->ramp_hold_ns;
		ramp_hold_from_unix(&s->ramp, p->ramp_step_started_unix_ns, now_mono_ns(),
				    now_unix_ns());
	}
	log_warn("service %s: shiftd stopped during a rollback drill (green was %u bp); "
		 "deciding at the first tick whether to restore it",
		 s->conf->name, p->drill_weight);
}

int persist_restore(struct agent *a, bool weights_from_maps)
{
	struct shift_state st = { 0 };
	char err[512];
	__u32 i;
	int rc;

	rc = state_load(a->state_path, &st, err, sizeof(err));
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		log_warn("%s; continuing with the %s", err,
			 weights_from_maps ? "pinned maps" : "config's weights");
		return 0;
	}
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];
		struct state_service *p;

		if (!s || !(p = state_find(&st, s->conf->name)))
			continue;
		if (!weights_from_maps) {
			s->weight = p->weight <= SHIFT_WEIGHT_MAX ? p->weight : 0;
			s->latched = p->latched;
			/* The maps are new (a reboot): the word written from here
			 * carries the drill's mark when the latch is a holding
			 * drill's, as restore() expects; a real rollback during
			 * the hold named its own reason. */
			s->latch_drill = p->latched && p->drill_weight &&
					 reason_is_drill(p->reason);
		}
		snprintf(s->reason, sizeof(s->reason), "%s", p->reason);
		snprintf(s->rollback_origin, sizeof(s->rollback_origin), "%s", p->rollback_origin);
		s->fleet_lag_us = p->fleet_lag_us;
		s->rollback_unix_ns = p->rollback_unix_ns;
		/* Our rollback the fleet had not got yet: published on the next
		 * join, not weighed against the fleet's word by the clocks. */
		if (p->fleet_publish && s->latched && a->conf->fleet.enabled) {
			s->fleet_publish = true;
			a->fleet_pending = true;
		}
		s->reaction_ns = p->reaction_ns;
		restore_drill(s, p);
		if (p->ramp_active && p->ramp_n && p->ramp_n <= RAMP_MAX_STEPS &&
		    p->ramp_index < p->ramp_n && !s->latched) {
			s->ramp.active = true;
			s->ramp.n = p->ramp_n;
			memcpy(s->ramp.steps, p->ramp_steps, sizeof(__u32) * p->ramp_n);
			s->ramp.index = p->ramp_index;
			s->ramp.hold_ns = p->ramp_hold_ns;
			ramp_hold_from_unix(&s->ramp, p->ramp_step_started_unix_ns, now_mono_ns(),
					    now_unix_ns());
			log_info("service %s: resuming ramp at step %u/%u", s->conf->name,
				 p->ramp_index + 1, p->ramp_n);
		}
	}
	state_free(&st);
	return 0;
}
