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
/* The config was reloaded: services may have come or gone; re-read the fleet. */
void fleet_reloaded(struct fleet *f);

#endif
