// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ops/log.h"
#include "analysis/evict.h"

/* Entries per dp_evict_step() between looks at the clock: ~0.3 ms of deletes. */
#define EVICT_STEP 256

static void job_start(struct agent *a, __u32 id, int color)
{
	struct evict_job *j = &a->evict[id];

	if (!j->active)
		a->evict_active++;
	j->active = true;
	dp_evict_init(&j->walk, id, color);
	j->started_mono_ns = now_mono_ns();
	j->turns = 0;
}

static void job_end(struct agent *a, struct evict_job *j)
{
	j->active = false;
	a->evict_active--;
}

void evict_green_start(struct agent *a, struct service_rt *s)
{
	struct evict_job *j = &a->evict[s->id];

	/* Entries older than the cursor may have come since: from the start. */
	job_start(a, s->id, SHIFT_GREEN);
	j->removed = false;
	snprintf(j->name, sizeof(j->name), "%s", s->conf->name);
	s->last_evicted = 0;
}

void evict_removed_start(struct agent *a, __u32 id, const char *name)
{
	struct evict_job *j = &a->evict[id];

	job_start(a, id, -1);
	j->removed = true;
	snprintf(j->name, sizeof(j->name), "%s", name ? name : "?");
}

bool evict_pending(const struct agent *a)
{
	return a->evict_active > 0;
}

bool evict_holds_id(const struct agent *a, __u32 id)
{
	return id < SHIFT_MAX_SERVICES && a->evict[id].active && a->evict[id].removed;
}

/* The service a green walk is for, while its latch holds; else NULL. */
static struct service_rt *green_owner(struct agent *a, __u32 id, struct evict_job *j)
{
	struct service_rt *s = a->svc[id];

	if (s && s->latched)
		return s;
	/* Lifted (clear, a drill's restore): green takes connections again, and
	 * new ones are not to be cut. What is left of the old ones stays. */
	log_info("service %s: rollback latch lifted: green connections no longer evicted (%llu "
		 "were)",
		 j->name, (unsigned long long)j->walk.evicted);
	if (s)
		s->last_evicted = j->walk.evicted;
	return NULL;
}

/* The walk of job j (service id) moved on: the counts, and its end (rc != 0). */
static void job_progress(struct agent *a, __u32 id, struct evict_job *j, int rc)
{
	struct service_rt *s = j->removed ? NULL : a->svc[id];
	double ms;

	if (s) {
		s->last_evicted = j->walk.evicted;
		if (s->drill.holding)
			s->drill.cur.evicted = j->walk.evicted;
	}
	if (!rc)
		return;
	ms = (double)(now_mono_ns() - j->started_mono_ns) / 1e6;
	if (rc < 0)
		log_warn("service %s: evicting %s connections: %s (%llu evicted)", j->name,
			 j->removed ? "the removed service's" : "green", strerror(-rc),
			 (unsigned long long)j->walk.evicted);
	else if (j->removed)
		log_info("service %s (removed): %llu connections dropped from the table (%llu "
			 "looked at in %.1f ms, %u loop turn%s)",
			 j->name, (unsigned long long)j->walk.evicted,
			 (unsigned long long)j->walk.visited, ms, j->turns,
			 j->turns == 1 ? "" : "s");
	else
		log_info("service %s: %llu green connections re-steered to blue (%llu looked at "
			 "in %.1f ms, %u loop turn%s)",
			 j->name, (unsigned long long)j->walk.evicted,
			 (unsigned long long)j->walk.visited, ms, j->turns,
			 j->turns == 1 ? "" : "s");
	job_end(a, j);
}

void evict_run(struct agent *a, __u64 budget_ns)
{
	struct evict_job *j = NULL;
	__u64 t0 = now_mono_ns();
	__u32 i, id = 0;
	int rc;

	for (i = 0; i < SHIFT_MAX_SERVICES && !j; i++) {
		id = (a->evict_next + i) % SHIFT_MAX_SERVICES;
		if (a->evict[id].active)
			j = &a->evict[id];
	}
	if (!j)
		return;
	/* The next turn's chunk is another job's, if there is one. */
	a->evict_next = (id + 1) % SHIFT_MAX_SERVICES;
	if (!j->removed && !green_owner(a, id, j)) {
		job_end(a, j);
		return;
	}
	j->turns++;
	do
		rc = dp_evict_step(&a->maps, &j->walk, EVICT_STEP);
	while (rc == 0 && now_mono_ns() - t0 < budget_ns);
	job_progress(a, id, j, rc);
}

void evict_finish(struct agent *a)
{
	__u32 id;
	int rc;

	for (id = 0; id < SHIFT_MAX_SERVICES && a->evict_active; id++) {
		struct evict_job *j = &a->evict[id];

		if (!j->active)
			continue;
		if (!j->removed && !green_owner(a, id, j)) {
			job_end(a, j);
			continue;
		}
		j->turns++;
		do
			rc = dp_evict_step(&a->maps, &j->walk, 1u << 20);
		while (rc == 0);
		job_progress(a, id, j, rc);
	}
}
