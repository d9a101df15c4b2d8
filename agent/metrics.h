/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The node exporter textfile: shift.prom in textfile_dir, rewritten atomically. */
#ifndef SHIFT_METRICS_H
#define SHIFT_METRICS_H

#include <stdio.h>
#include "agent.h"

/* Write shift.prom when metrics_interval has passed since the last write. */
void metrics_tick(struct agent *a);
/* Render every series into f (exposed for tests). 0 or -errno. */
int metrics_render(struct agent *a, FILE *f);
/* Write textfile_dir/shift.prom now: temp file in the same dir, fsync, rename. */
int metrics_write(struct agent *a);

#endif
