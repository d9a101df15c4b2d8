/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Health checks from the agent: TCP connect or HTTP GET (2xx expected) to
 * every backend, with interval, timeout, rise and fall. A backend that fails
 * leaves its pool's ring; green with no healthy backend left is a rollback.
 */
#ifndef SHIFT_HEALTH_H
#define SHIFT_HEALTH_H

#include "agent.h"

/* Start due probes, finish answered or timed-out ones. Never blocks. */
void health_tick(struct agent *a);
/* The probes' epoll set (created on first use), for the agent's loop: when it
 * is readable, call health_events(). -errno if it cannot be created. */
int health_fd(struct agent *a);
/* Advance the probes whose sockets are ready. */
void health_events(struct agent *a);
/* Close probes in flight (shutdown, service removed). */
void health_stop(struct service_rt *s);

#endif
