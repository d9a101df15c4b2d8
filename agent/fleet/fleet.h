/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * shiftd's side of the fleet: one etcd session (lease + keepalive, a watch on
 * /shift/FLEET/svc/, txn writes) driven by libcurl's multi interface inside
 * shiftd's epoll loop, and the reconciler that makes this node's maps follow
 * the fleet's shared values. Nothing here blocks: the local rollback path
 * never waits for etcd.
 */
#ifndef SHIFT_FLEET_H
#define SHIFT_FLEET_H

#include "agent.h"

struct fleet;

/* NULL without a [fleet] section (or on failure, logged: the node runs alone). */
struct fleet *fleet_open(struct agent *a);
void fleet_close(struct fleet *f);
/* An fd for shiftd's epoll: readable when fleet_events() has work. */
int fleet_fd(const struct fleet *f);
void fleet_events(struct fleet *f);
/* From every tick: keepalives, reconnects, ramp steps, the node report. */
void fleet_tick(struct fleet *f);
/* After the loop handled events: publish local rollbacks (a->fleet_pending). */
void fleet_kick(struct fleet *f);
/*
 * shiftctl's sync after its fleet write at revision rev (etcd first, then this
 * host's map). A later revision of the service that this node applied in
 * between (another node's rollback, say) makes shiftctl's map write stale:
 * every other node has the later word. Stale: 1, the service's state and map
 * put back to before the write (before: agent_before_sync()) and then to the
 * fleet's word, msg for shiftctl. Not stale (or no fleet): 0, nothing done.
 */
int fleet_sync_stale(struct fleet *f, struct service_rt *s, __s64 rev,
		     const struct weight_state *before, char *msg, size_t len);
/* The config was reloaded: services may have come or gone; re-read the fleet. */
void fleet_reloaded(struct fleet *f);

#endif
