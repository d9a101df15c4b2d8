/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A status answered off the loop, in two halves as GET /metrics is rendered
 * (metrics.h): status_snap_take() on the loop's thread copies what the agent
 * owns (windows, health, ramps, drills, last rollbacks, the backends it runs:
 * no system call, tens of µs at 32768 backends), status_snap_render() on any
 * thread reads the maps (a bpf syscall per backend and counter: ~1 s at 32768
 * backends) and renders. The bytes are status_agent_render()'s for the same
 * state (test_status checks it).
 *
 * The snapshot holds map fds, not owned: free it before the maps close.
 */
#ifndef SHIFT_STATUS_SNAP_H
#define SHIFT_STATUS_SNAP_H

#include <stdatomic.h>
#include <stddef.h>

#include "agent.h"
#include "control/status.h"

struct status_snap;

/* On the loop. only: one service (NULL: all), copied. NULL when out of memory. */
struct status_snap *status_snap_take(struct agent *a, const char *only);
/*
 * On any thread: read the maps and render form into *buf (malloc'ed, *len
 * bytes). 0, -ENOENT (only names no service), -ECANCELED once *cancel (NULL:
 * never) is set, or -errno. The snapshot is left as it was: render it again
 * if need be.
 */
int status_snap_render(const struct status_snap *sn, enum status_form form,
		       const atomic_bool *cancel, char **buf, size_t *len);
/* The service it was taken for, NULL for all. */
const char *status_snap_only(const struct status_snap *sn);
void status_snap_free(struct status_snap *sn);

#endif
