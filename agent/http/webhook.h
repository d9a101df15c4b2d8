/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Alertmanager's webhook payload (version 4) -> the alerts that concern shift,
 * and the answer listing what became of each. Pure: no agent, no I/O, so the
 * libFuzzer harness runs it on its own.
 *
 * A payload is refused whole (400, nothing applied) unless it is a JSON object
 * with "version": "4" and an "alerts" array of objects, each with "status"
 * "firing" or "resolved" and a "labels" object of strings; "annotations", when
 * present, is an object too. Everything else Alertmanager sends (receiver,
 * groupLabels, externalURL, ...) is ignored.
 */
#ifndef SHIFT_HTTP_WEBHOOK_H
#define SHIFT_HTTP_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define AM_ALERTNAME_LEN 96 /* "alertmanager: " + this fits a rollback reason */
#define AM_SUMMARY_LEN 256
#define AM_TIME_LEN 40
/* Far above Alertmanager's groups; bounds the answer. */
#define AM_MAX_ALERTS 4096
#define AM_LABEL_SERVICE "shift_service"

enum am_outcome {
	AM_PENDING, /* parsed, not yet applied */
	AM_ROLLED_BACK, /* firing, known service: latched now (200) */
	AM_ALREADY, /* firing, the service was latched already (200) */
	AM_UNKNOWN_SERVICE, /* firing, no such service in the running config (404) */
	AM_RESOLVED, /* resolved: never clears a latch (200) */
	AM_NO_SERVICE, /* no shift_service label: not shift's (200) */
	AM_FAILED, /* the weight map write failed (500: Alertmanager retries) */
	AM__OUTCOMES,
};

struct am_alert {
	bool firing;
	bool has_service; /* a shift_service label */
	bool service_ok; /* and it can be a service name (config's charset, length) */
	char service[CONF_NAME_LEN]; /* printable copy, cut to fit */
	char alertname[AM_ALERTNAME_LEN]; /* printable copy; "unnamed" if absent */
	char summary[AM_SUMMARY_LEN]; /* annotations.summary, printable; "" if absent */
	char starts_at[AM_TIME_LEN]; /* startsAt as sent, printable; "" if absent */
	enum am_outcome outcome;
};

/*
 * Parse body[0..len). 0 with *alerts (malloc'ed, free()) and *n (0 allowed),
 * or -EINVAL / -ENOMEM with a one-line reason in err naming what was wrong
 * ("alerts[3].status: 'pending' is not firing or resolved").
 */
int am_parse(const char *body, size_t len, struct am_alert **alerts, size_t *n, char *err,
	     size_t errlen);

/* "rolled_back", "already_rolled_back", "unknown_service", ... */
const char *am_outcome_name(enum am_outcome o);

/*
 * The answer: {"status":CODE,"alerts":[{"alertname":..,"service":..,"status":..,
 * "outcome":..}, ...]} and its HTTP status: 500 if a rollback write failed,
 * else 404 if a firing alert named an unknown service, else 200. NULL when out
 * of memory. The string is malloc'ed.
 */
char *am_answer(const struct am_alert *alerts, size_t n, unsigned int *http_status);

#endif
