/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ramps: green weight stepped up on a schedule, held at each step, stopped by
 * any rollback. They live in the agent and in the state file. */
#ifndef SHIFT_RAMP_H
#define SHIFT_RAMP_H

#include "agent.h"
#include "ops/ramp_time.h"

/* Parse "1,5,10,25,50,100" into steps (bp, strictly increasing). */
int ramp_parse_steps(const char *s, __u32 *steps, __u32 *n, char *err, size_t errlen);
/* Start a ramp at its first step. -EPERM when latched, -EAGAIN when green has no healthy backend. */
int ramp_start(struct agent *a, struct service_rt *s, const __u32 *steps, __u32 n, __u64 hold_ns,
	       char *err, size_t errlen);
/* Advance due ramps (one step per hold of CLOCK_MONOTONIC at most); called
 * from the agent's tick. */
void ramp_tick(struct agent *a);
/* Green has at least one healthy backend (the readyz gate). */
bool green_ready(const struct service_rt *s);

#endif
