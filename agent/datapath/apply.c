// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Runtime -> maps for what changes while shiftd runs: a service's pools (health
 * checks move backends in and out) and its weight word (ramps, rollbacks).
 * Called from analysis/ and control/; calls nothing above datapath/.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "ops/clock.h"
#include "ops/log.h"

struct service_rt *agent_service(struct agent *a, const char *name)
{
	__u32 i;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++)
		if (a->svc[i] && a->svc[i]->conf && !strcmp(a->svc[i]->conf->name, name))
			return a->svc[i];
	return NULL;
}

void agent_count(const struct agent *a, __u32 *n_svc, __u32 *n_be)
{
	__u32 i;
	int c;

	*n_svc = *n_be = 0;
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		if (!a->svc[i])
			continue;
		(*n_svc)++;
		for (c = 0; c < SHIFT_COLORS; c++)
			*n_be += a->svc[i]->n[c];
	}
}

int apply_pools(struct agent *a, struct service_rt *s)
{
	struct shift_addr_key keys[SHIFT_MAX_POOL_BACKENDS];
	__u32 ids[SHIFT_MAX_POOL_BACKENDS];
	int c, err;

	for (c = 0; c < SHIFT_COLORS; c++) {
		__u32 i, n = 0;

		for (i = 0; i < s->n[c]; i++) {
			if (!s->pool[c][i].healthy)
				continue;
			keys[n] = s->pool[c][i].addr;
			ids[n++] = s->pool[c][i].id;
		}
		err = dp_pool_set(&a->maps, s->id, c, ids, keys, n);
		if (err) {
			log_err("service %s: cannot write the %s pool: %s", s->conf->name,
				c ? "green" : "blue", strerror(-err));
			return err;
		}
	}
	return 0;
}

struct weight_state agent_weight_state(const struct service_rt *s)
{
	return (struct weight_state){ .weight = s->weight,
				      .latched = s->latched,
				      .drill = s->latch_drill };
}

static __u32 state_word(const struct weight_state *w)
{
	if (!w->latched)
		return w->weight;
	/* A reload during a drill keeps the drill's mark on its latch. */
	return w->drill ? SHIFT_WEIGHT_LATCHED | SHIFT_WEIGHT_DRILL : SHIFT_WEIGHT_LATCHED;
}

static __u32 weight_word(const struct service_rt *s)
{
	struct weight_state w = agent_weight_state(s);

	return state_word(&w);
}

int apply_weight(struct agent *a, struct service_rt *s)
{
	int err = dp_weight_set(&a->maps, s->id, weight_word(s));

	if (err)
		log_err("service %s: cannot write the weight: %s", s->conf->name, strerror(-err));
	return err;
}

int apply_weight_over(struct agent *a, struct service_rt *s, const struct weight_state *was)
{
	int err = dp_weight_cas(&a->maps, s->id, state_word(was), weight_word(s), NULL);

	if (err == -EAGAIN) {
		s->weight = was->weight;
		s->latched = was->latched;
		s->latch_drill = was->latched && was->drill;
		agent_adopt_outside(a, s);
		return -EAGAIN;
	}
	if (!err)
		return 0;
	/* Not for a word the map cannot take: the plain write fails too, and says so. */
	if (dp_weight_cas_unchecked(err) && !a->weight_cas_warned) {
		a->weight_cas_warned = true;
		log_warn("cannot compare-and-swap weight words (%s): shiftd writes them "
			 "unchecked, and a rollback by shiftctl during a ramp step, a reload or a "
			 "drill can be overwritten",
			 strerror(-err));
	}
	return apply_weight(a, s);
}

static bool outside_kept(const struct service_rt *s, __u64 now)
{
	return s->outside_seen && now - s->outside_mono_ns < AGENT_OUTSIDE_SYNC_NS;
}

bool agent_outside_pending(const struct service_rt *s)
{
	return outside_kept(s, now_mono_ns());
}

void agent_outside_refusal(const struct service_rt *s, char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "service %s: the weight was changed outside shiftd just now (shiftctl); "
		 "nothing started: see 'shiftctl status'",
		 s->conf->name);
}

void agent_adopt_outside(struct agent *a, struct service_rt *s)
{
	__u64 now = now_mono_ns();

	/* Two writes before one sync: the state before the first is the one. */
	if (!outside_kept(s, now)) {
		s->outside_seen = true;
		s->outside_mono_ns = now;
		s->outside_was = agent_weight_state(s);
	}
	agent_sync_from_maps(a, s);
}

void agent_before_sync(struct service_rt *s, struct weight_state *before)
{
	*before = outside_kept(s, now_mono_ns()) ? s->outside_was : agent_weight_state(s);
	s->outside_seen = false;
}

int agent_restore_word(struct agent *a, struct service_rt *s, const struct weight_state *before)
{
	s->weight = before->weight;
	s->latched = before->latched;
	s->latch_drill = before->latched && before->drill;
	return apply_weight(a, s);
}

void agent_sync_from_maps(struct agent *a, struct service_rt *s)
{
	__u32 word;

	if (dp_weight_get(&a->maps, s->id, &word))
		return;
	s->latched = word & SHIFT_WEIGHT_LATCHED;
	s->latch_drill = s->latched && (word & SHIFT_WEIGHT_DRILL);
	s->weight = s->latched ? 0 : word & SHIFT_WEIGHT_MASK;
}
