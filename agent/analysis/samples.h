/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The ring-buffer consumer: every sample goes through its service's triggers. */
#ifndef SHIFT_SAMPLES_H
#define SHIFT_SAMPLES_H

#include "agent.h"

struct ring_buffer;
struct ring_buffer *samples_open(struct agent *a);
/* Frees what samples_open() made (rb may be NULL). */
void samples_close(struct agent *a, struct ring_buffer *rb);
/*
 * Right after samples_open(): what waited in the rings while no shiftd read
 * them, the ordinary ring's part first (see samples.c), logged per service.
 */
void samples_backlog(struct agent *a, struct ring_buffer *rb);
/* Consume what is pending; returns samples handled or -errno. */
int samples_poll(struct agent *a, struct ring_buffer *rb);
/* One sample, as the ring buffer callback sees it (exposed for tests/benchmarks). */
int samples_handle(struct agent *a, const void *data, size_t len);

#endif
