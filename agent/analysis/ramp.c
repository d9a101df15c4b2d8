// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ops/log.h"
#include "analysis/ramp.h"
#include "config/weight.h"

bool green_ready(const struct service_rt *s)
{
	__u32 i;

	for (i = 0; i < s->n[SHIFT_GREEN]; i++)
		if (s->pool[SHIFT_GREEN][i].healthy)
			return true;
	return false;
}

int ramp_parse_steps(const char *s, __u32 *steps, __u32 *n, char *err, size_t errlen)
{
	char buf[512], *tok, *save = NULL;
	__u32 k = 0;

	if (!s || !*s || strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "ramp steps: expected a list like 1,5,10,25,50,100");
		return -EINVAL;
	}
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char why[160];

		if (k >= RAMP_MAX_STEPS) {
			snprintf(err, errlen, "ramp steps: at most %d steps", RAMP_MAX_STEPS);
			return -EINVAL;
		}
		if (weight_parse(tok, &steps[k], why, sizeof(why))) {
			snprintf(err, errlen, "ramp step %u: %s", k + 1, why);
			return -EINVAL;
		}
		if (k && steps[k] <= steps[k - 1]) {
			snprintf(err, errlen, "ramp step %u (%s) does not go up", k + 1, tok);
			return -EINVAL;
		}
		k++;
	}
	if (k == 0 || s[strlen(s) - 1] == ',' || s[0] == ',' || strstr(s, ",,")) {
		snprintf(err, errlen, "ramp steps: empty step in '%s'", s);
		return -EINVAL;
	}
	*n = k;
	return 0;
}

/*
 * Step index's weight, over the word shiftd had: -EAGAIN when shiftctl wrote
 * it since (a rollback, a weight; its sync on the way), which stops the ramp
 * and writes nothing (apply_weight_over()). Another failed write stops it
 * too, on the step the map still holds.
 */
static int set_step(struct agent *a, struct service_rt *s, __u32 index)
{
	struct weight_state was = agent_weight_state(s);
	char w[WEIGHT_STR_LEN];
	int err;

	s->weight = s->ramp.steps[index];
	err = apply_weight_over(a, s, &was);
	if (err == -EAGAIN) {
		s->ramp.active = false;
		a->persist_dirty = true;
		log_info("service %s: ramp stopped: the weight was changed outside shiftd",
			 s->conf->name);
		return -EAGAIN;
	}
	if (err) {
		s->weight = was.weight;
		s->ramp.active = false;
		a->persist_dirty = true;
		log_err("service %s: ramp stopped: step %u/%u (green %s) not written: %s",
			s->conf->name, index + 1, s->ramp.n,
			weight_format(s->ramp.steps[index], w, sizeof(w)), strerror(-err));
		return err;
	}
	s->ramp.index = index;
	s->ramp.step_due_mono_ns = now_mono_ns() + s->ramp.hold_ns;
	log_info("service %s: ramp step %u/%u, green %s", s->conf->name, s->ramp.index + 1,
		 s->ramp.n, weight_format(s->weight, w, sizeof(w)));
	return 0;
}

int ramp_start(struct agent *a, struct service_rt *s, const __u32 *steps, __u32 n, __u64 hold_ns,
	       char *err, size_t errlen)
{
	int rc;

	if (s->latched) {
		snprintf(err, errlen,
			 "service %s is rolled back (%s); run 'shiftctl clear %s' first",
			 s->conf->name, s->reason, s->conf->name);
		return -EPERM;
	}
	if (!green_ready(s)) {
		snprintf(err, errlen, "service %s: green has no healthy backend (readyz gate)",
			 s->conf->name);
		return -EAGAIN;
	}
	memset(&s->ramp, 0, sizeof(s->ramp));
	memcpy(s->ramp.steps, steps, n * sizeof(*steps));
	s->ramp.n = n;
	s->ramp.hold_ns = hold_ns;
	s->ramp.active = true;
	rc = set_step(a, s, 0);
	if (rc == -EAGAIN) {
		agent_outside_refusal(s, err, errlen);
		return -EAGAIN;
	}
	if (rc) {
		snprintf(err, errlen, "service %s: the first step's weight write failed: %s",
			 s->conf->name, strerror(-rc));
		return rc;
	}
	persist_save(a);
	return 0;
}

void ramp_tick(struct agent *a)
{
	__u64 now = now_mono_ns();
	__u32 i;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s || !s->ramp.active)
			continue;
		if (s->latched) {
			s->ramp.active = false;
			continue;
		}
		if (now < s->ramp.step_due_mono_ns)
			continue;
		if (s->ramp.index + 1 >= s->ramp.n) {
			s->ramp.active = false;
			log_info("service %s: ramp complete", s->conf->name);
			persist_save_async(a);
			continue;
		}
		/* Hold while green has nothing healthy to send traffic to. */
		if (!green_ready(s))
			continue;
		/* Not over a word shiftctl wrote since shiftd did (set_step()). */
		if (set_step(a, s, s->ramp.index + 1))
			continue;
		persist_save_async(a);
	}
}
