/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What shiftctl does to a fleet: read-modify-write of a service's shared value
 * by compare-and-swap on its mod_revision (so a concurrent rollback is never
 * overwritten by a raise), and the fleet status view.
 */
#ifndef SHIFT_FLEET_CLI_H
#define SHIFT_FLEET_CLI_H

#include <stdio.h>

#include "config/fleet_conf.h"
#include "fleet/value.h"

/* No jansson here: shiftctl also includes control/json.h, whose json_null()
 * would clash with jansson's. */

/*
 * Change the value in place. Return 0 to write it, 1 when there is nothing to
 * write (already so), or a negative errno to refuse (err says why). exists is
 * false when the key is absent or holds a value that does not parse (then v
 * is zeroed: weight 0, not latched).
 */
typedef int (*fleet_change_fn)(struct fleet_svc_value *v, bool exists, void *arg, char *err,
			       size_t errlen);

/*
 * Apply fn to the service's shared value and write it if the key has not
 * changed since it was read; retried on a conflict with fn seeing the new
 * value. 0 (written, *rev = its revision), 1 (nothing to write, *rev = the
 * revision of the value fn judged; 0 without one), -EPERM etc.
 * from fn, -EHOSTUNREACH ("fleet unreachable"), -EAGAIN (kept conflicting).
 */
int fleet_cli_update(const struct conf_fleet *fl, const char *service, fleet_change_fn fn,
		     void *arg, __s64 *rev, char *err, size_t errlen);

/*
 * `shiftctl fleet status [--json]` to out: with as_json the SPEC's object
 * {"fleet", "revision", "nodes": [{"node", "alive", "applied_revision",
 * "agrees", "services": [...]}]}, else a table. 0, or -errno with err set.
 */
int fleet_cli_status(const struct conf_fleet *fl, bool as_json, FILE *out, char *err,
		     size_t errlen);

#endif
