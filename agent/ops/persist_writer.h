/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The state file written by a thread of its own. A save is two fsyncs (the
 * file, then its directory) and may wait up to 2 s for shiftctl's lock on the
 * file: 0.6 ms a save on the development guest's disk, tens of ms on a busy
 * one. The loop that consumes samples and fires rollbacks must not wait on
 * them: after one service's rollback, another service's error would.
 *
 * Each save is the whole state, so a newer one supersedes any older one still
 * waiting: that one is dropped, never written, and counts as done when the
 * newer one is. Every submission gets a generation number; the writer says
 * through an eventfd when it finished one, and with what result.
 */
#ifndef SHIFT_OPS_PERSIST_WRITER_H
#define SHIFT_OPS_PERSIST_WRITER_H

#include <stdbool.h>
#include <linux/types.h>

#include "ops/state.h"

struct persist_writer;

/* The outcome of the newest save the writer finished. */
struct persist_done {
	__u64 gen; /* this one and every one before it are done (0: none yet) */
	int rc; /* 0 or -errno, of this save */
	char err[512]; /* what failed, when rc */
};

/* A writer of path, its thread started (signals blocked, named "shiftd-state").
 * 0, or -errno with *wp NULL. */
int persist_writer_start(struct persist_writer **wp, const char *path);
/* Readable (EPOLLIN) when a save finished since the last persist_writer_poll(). */
int persist_writer_fd(const struct persist_writer *w);
/*
 * Hand st over (the writer frees it; the caller's copy is emptied), replacing
 * a state still waiting. Returns its generation, or 0 when it cannot be
 * queued (the writer stopped): the caller still owns st then.
 */
__u64 persist_writer_submit(struct persist_writer *w, struct shift_state *st);
/* Block until generation gen is done; its outcome (or a newer one's) in *d. */
void persist_writer_wait(struct persist_writer *w, __u64 gen, struct persist_done *d);
/* Clear the eventfd and copy the newest outcome into *d: false when no save
 * finished since the last call that returned true. */
bool persist_writer_poll(struct persist_writer *w, __u64 *seen, struct persist_done *d);
/* Writes and drops since the start, for tests and status. */
void persist_writer_counts(struct persist_writer *w, __u64 *written, __u64 *superseded);
/* Write what waits, stop the thread, free w; its last outcome in *d (may be NULL). */
void persist_writer_stop(struct persist_writer *w, struct persist_done *d);

#endif
