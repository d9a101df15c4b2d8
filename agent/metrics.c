// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Placeholder until the metrics writer lands. */
#include "metrics.h"

void metrics_tick(struct agent *a)
{
	(void)a;
}

int metrics_render(struct agent *a, FILE *f)
{
	(void)a;
	(void)f;
	return 0;
}

int metrics_write(struct agent *a)
{
	(void)a;
	return 0;
}
