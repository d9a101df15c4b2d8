/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A thread that answers status requests off the loop. The loop takes a
 * snapshot (status_snap.h) and submits it; the thread reads the maps and
 * renders it, one job at a time in the order submitted, and says a job is
 * done on an eventfd the loop watches; the loop collects it there and answers
 * whoever waited for it. Every job, its answer and its snapshot are freed on
 * the thread: a 20 MB answer's munmap would cost the loop milliseconds.
 *
 * Sharing: a request whose form and service equal those of a job not yet
 * started joins that job rather than queue one more, and the job takes the
 * newer snapshot; so a burst of the same status costs one collection, and
 * still no one gets an answer older than his request. A job already running
 * is never joined: its snapshot may predate the request (a rollback between).
 *
 * The queue has no bound of its own: each user bounds what it submits (the
 * control socket, one job per served client: CTL_MAX_CONNS; the HTTP API, one
 * job in flight and one more at most).
 *
 * Jobs are counted references, taken and dropped on the loop's thread only.
 */
#ifndef SHIFT_STATUS_WORKER_H
#define SHIFT_STATUS_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "control/status_snap.h"

struct status_job {
	struct status_job *next; /* the worker's lists */
	unsigned int refs; /* the loop's: one per holder, one for the worker */
	enum status_form form;
	struct status_snap *snap; /* under the worker's lock until done; kept till the end */
	bool started; /* under the worker's lock */
	/* Once collected: the answer (out, len) or err (-errno, out NULL). */
	char *out;
	size_t len;
	int err;
};

/* Owned by the loop; zero it, then status_worker_start(). */
struct status_worker {
	bool started;
	pthread_t thread;
	int efd; /* eventfd: a job is done */
	bool efd_warned;
	atomic_bool cancel; /* stopping: the job in progress gives up */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock. */
	bool stop;
	struct status_job *queue, *done; /* FIFO, and done but not collected */
	struct status_trash *trash; /* jobs and buffers for the thread to free */
};

/* Start the thread (name: 15 characters at most). 0 or -errno, logged. */
int status_worker_start(struct status_worker *w, const char *name);
/* The eventfd for the loop's epoll (readable: call status_worker_collect()), -1 if not started. */
int status_worker_fd(const struct status_worker *w);
/*
 * Queue form of sn (taken, also on failure), or join a job of the same form
 * and service not yet started. The job with a reference for the caller, or
 * NULL when out of memory.
 */
struct status_job *status_worker_submit(struct status_worker *w, struct status_snap *sn,
					enum status_form form);
/*
 * A finished job (the worker's reference passes to the caller), NULL when
 * none is done. Never blocks; call until NULL once the fd is readable.
 */
struct status_job *status_worker_collect(struct status_worker *w);
/* Drop a reference; the last one frees the job (on the thread while it runs). */
void status_job_unref(struct status_worker *w, struct status_job *j);
/* Free an answer taken out of a job (an http_body's release, ctx w), on the thread. */
void status_worker_free(void *w, char *buf);
/*
 * Cancel the job in progress, join the thread, drop the worker's references
 * (jobs not done: err -ESHUTDOWN for whoever still holds them).
 */
void status_worker_stop(struct status_worker *w);

#endif
