/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The drill's control-socket verbs and its report, as text and JSON.
 *
 *   drill SERVICE HOLD              start; the answer's body is the drill id
 *   drill-report SERVICE ID FORMAT  FORMAT json|text; the body's first line is
 *                                   "running" or "done EXIT", then the report
 *
 * shiftctl starts a drill and polls its report: shiftd's loop never waits for
 * the hold (a rollback must never queue behind a drill).
 */
#ifndef SHIFT_DRILL_CTL_H
#define SHIFT_DRILL_CTL_H

#include <stdio.h>

#include "agent.h"
#include "analysis/drill.h"
#include "control/ctl_proto.h"

struct json;

/* Handle "drill" and "drill-report": the exit code for shiftctl (0, 1, 2), msg on error. */
int drill_ctl(struct agent *a, const struct ctl_request *q, char *msg, size_t msglen, char **body,
	      size_t *body_len);
/* shiftctl's exit code for a finished drill: 0 restored and passed, else 1. */
int drill_exit_code(const struct drill_report *p);
/* The report as an object (key NULL at the top level). */
void drill_report_json(struct json *j, const char *key, const char *service,
		       const struct drill_report *p);
/* The report as a few lines of text; indent is prepended to each. */
void drill_report_text(FILE *f, const char *indent, const char *service,
		       const struct drill_report *p);

#endif
