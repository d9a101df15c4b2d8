// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "analysis/ramp.h"
#include "ops/log.h"
#include "analysis/drill.h"
#include "analysis/rollback.h"
#include "config/units.h"
#include "config/weight.h"

static __u64 sub0(__u64 a, __u64 b)
{
	/* A reload may swap a backend (its counters restart): never wrap. */
	return a > b ? a - b : 0;
}

int drill_refusal(const struct drill_check *c, char *err, size_t errlen)
{
	char d1[UNITS_DURATION_LEN], d2[UNITS_DURATION_LEN];

	if (c->holding) {
		snprintf(err, errlen, "service %s: a drill is already running; nothing changed",
			 c->service);
		return -EBUSY;
	}
	if (c->latched) {
		snprintf(
			err, errlen,
			"service %s is already rolled back (%s): nothing to drill; nothing changed",
			c->service, c->reason && *c->reason ? c->reason : "latched");
		return -EPERM;
	}
	if (c->weight == 0) {
		snprintf(err, errlen,
			 "service %s: green weight is 0, a rollback would change nothing; nothing "
			 "changed",
			 c->service);
		return -EPERM;
	}
	if (c->ramp_active && c->ramp_index + 1 < c->ramp_n &&
	    c->ramp_next_unix_ns < c->now_unix_ns + c->hold_ns + DRILL_RAMP_MARGIN_NS) {
		__u64 in = sub0(c->ramp_next_unix_ns, c->now_unix_ns);

		snprintf(d1, sizeof(d1), "%.1fs", (double)(in / (100 * UNITS_NS_PER_MS)) / 10.0);
		snprintf(err, errlen,
			 "service %s: ramp step %u/%u is due in %s, within the drill's hold of %s; "
			 "nothing changed (drill after the step, or with a shorter --hold)",
			 c->service, c->ramp_index + 2, c->ramp_n, d1,
			 units_format_duration(c->hold_ns, d2, sizeof(d2)));
		return -EPERM;
	}
	return 0;
}

void drill_begin(struct drill_rt *d, __u32 weight, bool ramp, __u64 hold_ns, __u64 now_unix_ns)
{
	memset(&d->cur, 0, sizeof(d->cur));
	d->cur.id = ++d->next_id;
	d->cur.started_unix_ns = now_unix_ns;
	d->cur.hold_ns = hold_ns;
	d->cur.weight_before = weight;
	d->cur.ramp_before = ramp;
	d->saved_weight = weight;
	d->saved_ramp = ramp;
	d->real = false;
	d->real_reason[0] = '\0';
	d->interrupted = false;
	d->ends_unix_ns = now_unix_ns + hold_ns;
}

void drill_written(struct drill_rt *d, const struct drill_counts *base,
		   const struct drill_counts *at, __u64 write_start, __u64 write_done, bool evict,
		   __u64 evicted)
{
	d->base = *base;
	d->at_write = *at;
	d->now = *at;
	d->write_start_mono = write_start;
	d->write_done_mono = write_done;
	d->ends_mono = write_done + d->cur.hold_ns;
	d->first_look_mono = 0;
	d->last_green_mono = 0;
	d->last_look_mono = write_done;
	d->cur.write_ns = sub0(write_done, write_start);
	d->cur.evict = evict;
	d->cur.evicted = evicted;
	/* Green connections counted between the two reads raced the write itself. */
	if (at->new_flows[SHIFT_GREEN] > base->new_flows[SHIFT_GREEN])
		d->last_green_mono = write_done;
	d->holding = true;
}

void drill_observe(struct drill_rt *d, const struct drill_counts *c, __u64 now_mono)
{
	if (!d->holding)
		return;
	if (!d->first_look_mono)
		d->first_look_mono = now_mono;
	if (c->new_flows[SHIFT_GREEN] > d->now.new_flows[SHIFT_GREEN])
		d->last_green_mono = now_mono;
	if (now_mono > d->last_look_mono && d->cur.resolution_ns < now_mono - d->last_look_mono)
		d->cur.resolution_ns = now_mono - d->last_look_mono;
	d->last_look_mono = now_mono;
	d->now = *c;
}

enum drill_step drill_decide(const struct drill_rt *d, __u32 word, __u64 now_mono)
{
	if (d->real)
		return DRILL_STOP_REAL;
	if (word != (SHIFT_WEIGHT_LATCHED | SHIFT_WEIGHT_DRILL))
		return (word & SHIFT_WEIGHT_LATCHED) ? DRILL_STOP_REAL : DRILL_STOP_OPERATOR;
	return now_mono >= d->ends_mono ? DRILL_RESTORE : DRILL_WAIT;
}

void drill_finish(struct drill_rt *d, enum drill_result r, __u32 weight_after, bool ramp_restored,
		  const char *detail, __u64 now_unix_ns)
{
	struct drill_report *p = &d->cur;
	int c;

	p->result = r;
	p->ended_unix_ns = now_unix_ns;
	p->weight_after = weight_after;
	p->ramp_restored = ramp_restored;
	snprintf(p->detail, sizeof(p->detail), "%s", detail ? detail : "");
	p->green_after_write =
		sub0(d->now.new_flows[SHIFT_GREEN], d->at_write.new_flows[SHIFT_GREEN]);
	for (c = 0; c < SHIFT_COLORS; c++) {
		p->new_conns[c] = sub0(d->now.new_flows[c], d->at_write.new_flows[c]);
		p->errors[c] = sub0(d->now.errors[c], d->base.errors[c]);
	}
	/* No green connection after the write: blue-only the moment it was done. */
	p->time_to_blue_ns = d->last_green_mono ? sub0(d->last_green_mono, d->write_start_mono) :
						  p->write_ns;
	/*
	 * Connections counted by the first look may be SYNs that read the old
	 * weight on another CPU while the write went in; one counted later means
	 * green still took new connections after the rollback.
	 */
	p->pass = r != DRILL_FAILED && d->write_done_mono &&
		  (!d->last_green_mono || d->last_green_mono <= d->first_look_mono ||
		   d->last_green_mono == d->write_done_mono);
	/* A drill that wrote and was watched measured something; an interrupted one did not. */
	if (d->write_done_mono && d->last_look_mono)
		d->ttb_ns = p->time_to_blue_ns;
	d->holding = false;
	d->interrupted = false;
	d->last = *p;
	if ((unsigned)r < DRILL__COUNT)
		d->done[r]++;
}

/* --- in shiftd ----------------------------------------------------------------- */

static void read_counts(struct agent *a, struct service_rt *s, struct drill_counts *out)
{
	struct shift_backend_stats st;
	__u32 c, i;
	int e;

	memset(out, 0, sizeof(*out));
	for (c = 0; c < SHIFT_COLORS; c++) {
		for (i = 0; i < s->n[c]; i++) {
			if (dp_backend_stats(&a->maps, s->pool[c][i].id, &st))
				continue;
			out->new_flows[c] += st.new_flows;
			for (e = SHIFT_ERR_NONE + 1; e < SHIFT_ERR_MAX; e++)
				out->errors[c] += st.errors[e];
		}
	}
}

void drill_after_write(struct agent *a, struct service_rt *s)
{
	read_counts(a, s, &s->drill.at_write);
}

int drill_start(struct agent *a, struct service_rt *s, __u64 hold_ns, __u64 *id, char *err,
		size_t errlen)
{
	struct drill_check chk = {
		.service = s->conf->name,
		.holding = s->drill.holding || s->drill.interrupted,
		.latched = s->latched,
		.reason = s->reason,
		.weight = s->weight,
		.ramp_active = s->ramp.active,
		.ramp_index = s->ramp.index,
		.ramp_n = s->ramp.n,
		.ramp_next_unix_ns = ramp_next_unix(&s->ramp, now_mono_ns(), now_unix_ns()),
		.now_unix_ns = now_unix_ns(),
		.hold_ns = hold_ns,
	};
	struct drill_counts base;
	char detail[64], d[UNITS_DURATION_LEN];
	__u64 t0;
	int rc;

	rc = drill_refusal(&chk, err, errlen);
	if (rc) {
		s->drill.done[DRILL_REFUSED]++;
		log_info("drill refused: %s", err);
		return rc;
	}
	drill_begin(&s->drill, s->weight, s->ramp.active, hold_ns, chk.now_unix_ns);
	snprintf(detail, sizeof(detail), "drill %llu, hold %s", (unsigned long long)s->drill.cur.id,
		 units_format_duration(hold_ns, d, sizeof(d)));
	read_counts(a, s, &base);
	s->drill.at_write = base;
	t0 = now_mono_ns();
	rc = rollback_fire(a, s, TRIGGER_DRILL, detail, 0);
	if (rc == -EAGAIN) {
		/* A write of shiftctl's, its sync not here yet: the drill would
		 * restore over it at the end. */
		s->drill.write_done_mono = 0;
		drill_finish(&s->drill, DRILL_FAILED, s->weight, s->ramp.active,
			     "the weight was changed outside shiftd as the drill started",
			     now_unix_ns());
		agent_outside_refusal(s, err, errlen);
		return -EAGAIN;
	}
	if (rc) {
		/* The write failed (logged): nothing changed, nothing to restore. */
		s->drill.write_done_mono = 0;
		drill_finish(&s->drill, DRILL_FAILED, s->weight, s->ramp.active,
			     "the rollback's weight write failed", now_unix_ns());
		snprintf(err, errlen,
			 "service %s: the drill's rollback could not be written (see "
			 "shiftd's log); nothing changed",
			 s->conf->name);
		return -EIO;
	}
	drill_written(&s->drill, &base, &s->drill.at_write, t0, s->rollback_mono_ns,
		      s->conf->rollback_evict, s->last_evicted);
	/* The restore depends on the state file knowing about the drill. */
	persist_save(a);
	log_warn("service %s: DRILL %llu started: green rolled back from %u bp for %s "
		 "(green connections %s); restored at the end unless a real trigger fires",
		 s->conf->name, (unsigned long long)s->drill.cur.id, s->drill.saved_weight, d,
		 s->conf->rollback_evict ? "being evicted" : "kept: rollback_evict = no");
	*id = s->drill.cur.id;
	return 0;
}

void drill_note_rollback(struct service_rt *s, const char *reason)
{
	if (!s->drill.holding && !s->drill.interrupted)
		return;
	s->drill.real = true;
	snprintf(s->drill.real_reason, sizeof(s->drill.real_reason), "%s", reason);
}

static void restore(struct agent *a, struct service_rt *s, enum drill_result r, const char *why)
{
	struct weight_state drill = { .weight = 0, .latched = true, .drill = true };
	struct drill_rt *d = &s->drill;
	__u32 was = s->weight;
	bool was_latched = s->latched;
	char w[WEIGHT_STR_LEN];
	int err;

	s->weight = d->saved_weight;
	s->latched = false;
	s->latch_drill = false;
	/* Only over the drill's own latch: a rollback shiftctl wrote since the
	 * tick read the word stays, and the next tick sees it (drill_decide()). */
	err = apply_weight_over(a, s, &drill);
	if (err == -EAGAIN) {
		log_info("service %s: drill %llu: the weight was changed outside shiftd as "
			 "the hold ended; nothing restored yet",
			 s->conf->name, (unsigned long long)d->cur.id);
		return;
	}
	if (err) {
		/* Still latched in the map; no longer a drill's to lift. */
		s->weight = was;
		s->latched = was_latched;
		s->latch_drill = false;
		drill_finish(d, DRILL_FAILED, 0, false,
			     "the restore's weight write failed: green stays at 0, latched (see "
			     "shiftd's log); 'shiftctl clear' and set-weight to restore",
			     now_unix_ns());
		log_err("service %s: drill %llu: cannot restore green %s", s->conf->name,
			(unsigned long long)d->cur.id,
			weight_format(d->saved_weight, w, sizeof(w)));
		return;
	}
	/* The ramp's plan and clock were kept; only its flag was cleared. */
	if (d->saved_ramp && s->ramp.n && s->ramp.index < s->ramp.n)
		s->ramp.active = true;
	/* A fleet change during the hold found the drill's latch, this node's own,
	 * and left it: the fleet's value, not the saved weight, has the last word. */
	s->fleet_recheck = true;
	a->fleet_pending = true;
	drill_finish(d, r, s->weight, s->ramp.active, why, now_unix_ns());
	a->persist_dirty = true;
	if (r == DRILL_INTERRUPTED) {
		/* The figures died with the old shiftd. */
		log_warn("service %s: the drill interrupted by a restart is over: green %s%s again",
			 s->conf->name, weight_format(s->weight, w, sizeof(w)),
			 s->ramp.active ? " (ramp resumed)" : "");
		return;
	}
	log_warn("service %s: drill %llu %s: green %s%s again; time to blue %.1f us, %llu new "
		 "green connections after the write, %llu evicted, errors %llu green / %llu blue",
		 s->conf->name, (unsigned long long)d->last.id, drill_result_name(r),
		 weight_format(s->weight, w, sizeof(w)), s->ramp.active ? " (ramp resumed)" : "",
		 (double)d->last.time_to_blue_ns / 1e3,
		 (unsigned long long)d->last.green_after_write, (unsigned long long)d->last.evicted,
		 (unsigned long long)d->last.errors[SHIFT_GREEN],
		 (unsigned long long)d->last.errors[SHIFT_BLUE]);
}

/* shiftd came back with a drill in its state file (drill_rt.interrupted). */
static void resolve_interrupted(struct agent *a, struct service_rt *s)
{
	struct drill_rt *d = &s->drill;
	char why[DRILL_DETAIL_LEN], w[WEIGHT_STR_LEN];
	__u64 now = now_unix_ns();
	__u32 word = 0;

	/* Pins adopted: the word says whether the drill's latch is still the one
	 * there. New maps (a reboot): the state file did (persist_restore()). */
	if (a->adopted && (dp_weight_get(&a->maps, s->id, &word) ||
			   word != (SHIFT_WEIGHT_LATCHED | SHIFT_WEIGHT_DRILL)))
		d->real = true;
	if (!a->adopted && s->latched && !s->latch_drill)
		d->real = true;
	if (d->real || !s->latched) {
		drill_finish(d, DRILL_INTERRUPTED, s->weight, s->ramp.active,
			     "shiftd restarted during the drill; the weight was changed meanwhile: "
			     "nothing restored",
			     now);
		log_warn("service %s: drill %llu was interrupted by a restart and the weight "
			 "changed since: nothing restored",
			 s->conf->name, (unsigned long long)d->cur.id);
		a->persist_dirty = true;
		return;
	}
	if (now > d->ends_unix_ns + DRILL_RESTART_GRACE_NS) {
		snprintf(why, sizeof(why),
			 "shiftd restarted during the drill and came back too late to restore: "
			 "green stays at 0; 'shiftctl clear' and 'set-weight %s' to restore",
			 weight_format(d->saved_weight, w, sizeof(w)));
		drill_finish(d, DRILL_INTERRUPTED, 0, false, why, now);
		snprintf(s->reason, sizeof(s->reason),
			 "drill: interrupted by a restart, not restored");
		s->latch_drill = false;
		apply_weight(a, s); /* a plain latch now: nothing will lift it on its own */
		log_err("service %s: %s", s->conf->name, why);
		a->persist_dirty = true;
		return;
	}
	restore(a, s, DRILL_INTERRUPTED,
		"shiftd restarted during the drill: weight restored when it came back, figures lost");
}

/*
 * A drill's latch in the map and no drill to lift it: the state file lost the
 * record (it could not be written at the drill's start). Nothing knows the
 * weight to restore: make it a plain latch and say so.
 */
static void orphan(struct agent *a, struct service_rt *s)
{
	snprintf(s->reason, sizeof(s->reason),
		 "drill: its record was lost (state file); not restored");
	s->latch_drill = false;
	apply_weight(a, s);
	a->persist_dirty = true;
	log_err("service %s: rolled back by a drill whose record is lost: green stays at 0; "
		"'shiftctl clear %s' and set-weight to restore",
		s->conf->name, s->conf->name);
}

void drill_tick(struct agent *a)
{
	__u64 now = now_mono_ns();
	__u32 i, word;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];
		struct drill_counts c;
		struct drill_rt *d;

		if (!s)
			continue;
		d = &s->drill;
		if (d->interrupted) {
			resolve_interrupted(a, s);
			continue;
		}
		if (!d->holding && s->latch_drill) {
			orphan(a, s);
			continue;
		}
		if (!d->holding)
			continue;
		read_counts(a, s, &c);
		drill_observe(d, &c, now);
		if (dp_weight_get(&a->maps, s->id, &word))
			continue; /* the restore waits for a readable word */
		switch (drill_decide(d, word, now)) {
		case DRILL_WAIT:
			break;
		case DRILL_RESTORE:
			restore(a, s, DRILL_RESTORED, "");
			break;
		case DRILL_STOP_REAL: {
			char why[DRILL_DETAIL_LEN];

			snprintf(why, sizeof(why), "aborted by a real rollback (%.150s)",
				 d->real ? d->real_reason : "the latch was rewritten");
			drill_finish(d, DRILL_ABORTED, 0, false, why, now_unix_ns());
			/* Not shiftd's own rollback: shiftctl's latch, not a drill's
			 * whose record was lost (orphan()); its sync notes it. */
			if (!d->real)
				agent_adopt_outside(a, s);
			a->persist_dirty = true;
			log_warn("service %s: drill %llu %s: green stays at 0, latched",
				 s->conf->name, (unsigned long long)d->last.id, why);
			break;
		}
		case DRILL_STOP_OPERATOR:
			agent_adopt_outside(a, s);
			drill_finish(
				d, DRILL_CANCELLED, s->weight, s->ramp.active,
				"the operator changed the weight or lifted the latch during the "
				"drill: nothing restored",
				now_unix_ns());
			a->persist_dirty = true;
			log_warn(
				"service %s: drill %llu cancelled by the operator: nothing restored",
				s->conf->name, (unsigned long long)d->last.id);
			break;
		}
	}
}
