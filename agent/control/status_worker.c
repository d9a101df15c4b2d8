// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Status requests answered on a thread of their own; see status_worker.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "control/status_worker.h"
#include "ops/log.h"
#include "ops/thread.h"

/* For the thread to free: a job (its snapshot and answer) or an answer alone. */
struct status_trash {
	struct status_trash *next;
	struct status_job *job;
	char *buf;
};

static void job_free(struct status_job *j)
{
	status_snap_free(j->snap);
	free(j->out);
	free(j);
}

static void trash_free(struct status_trash *t)
{
	while (t) {
		struct status_trash *next = t->next;

		if (t->job)
			job_free(t->job);
		free(t->buf);
		free(t);
		t = next;
	}
}

/* Append j to the list at *head. */
static void list_append(struct status_job **head, struct status_job *j)
{
	while (*head)
		head = &(*head)->next;
	j->next = NULL;
	*head = j;
}

static void *worker_main(void *arg)
{
	struct status_worker *w = arg;
	const uint64_t one = 1;
	struct status_job *j;
	char *buf;
	size_t len;
	int err;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->queue && !w->trash && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		if (w->trash) {
			struct status_trash *t = w->trash;

			w->trash = NULL;
			pthread_mutex_unlock(&w->lock);
			trash_free(t);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		j = w->queue;
		w->queue = j->next;
		j->started = true;
		pthread_mutex_unlock(&w->lock);
		/* The snapshot is the job's alone now: no one replaces a started job's. */
		err = status_snap_render(j->snap, j->form, &w->cancel, &buf, &len);
		pthread_mutex_lock(&w->lock);
		j->out = buf;
		j->len = len;
		j->err = err;
		list_append(&w->done, j);
		/* Under the lock: status_worker_stop() closes the fd only after the join. */
		if (write(w->efd, &one, sizeof(one)) != sizeof(one) && !w->efd_warned) {
			log_err("status thread: eventfd write: %s", strerror(errno));
			w->efd_warned = true;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int status_worker_start(struct status_worker *w, const char *name)
{
	int rc;

	memset(w, 0, sizeof(*w));
	atomic_init(&w->cancel, false);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		rc = errno;
		log_warn("status thread: eventfd: %s", strerror(rc));
		return -rc;
	}
	rc = pthread_mutex_init(&w->lock, NULL);
	if (rc) {
		log_warn("status thread: lock: %s", strerror(rc));
		goto err_fd;
	}
	rc = pthread_cond_init(&w->cond, NULL);
	if (rc) {
		log_warn("status thread: condition: %s", strerror(rc));
		goto err_lock;
	}
	rc = thread_start(&w->thread, worker_main, w, name);
	if (rc) {
		log_warn("status thread: %s", strerror(rc));
		pthread_cond_destroy(&w->cond);
		goto err_lock;
	}
	w->started = true;
	return 0;
err_lock:
	pthread_mutex_destroy(&w->lock);
err_fd:
	close(w->efd);
	w->efd = -1;
	return -rc;
}

int status_worker_fd(const struct status_worker *w)
{
	return w->started ? w->efd : -1;
}

static bool same_only(const char *x, const char *y)
{
	return (!x && !y) || (x && y && !strcmp(x, y));
}

struct status_job *status_worker_submit(struct status_worker *w, struct status_snap *sn,
					enum status_form form)
{
	struct status_snap *old = NULL;
	struct status_job *j, *nj;

	if (!w->started) {
		status_snap_free(sn);
		return NULL;
	}
	/* Allocated before the lock: most submits queue a job of their own. */
	nj = calloc(1, sizeof(*nj));
	pthread_mutex_lock(&w->lock);
	for (j = w->queue; j; j = j->next)
		if (j->form == form && same_only(status_snap_only(j->snap), status_snap_only(sn)))
			break;
	if (j) {
		/* Not started (it is queued): the newer snapshot answers every waiter. */
		old = j->snap;
		j->snap = sn;
		j->refs++;
	} else if (nj) {
		j = nj;
		nj = NULL;
		j->form = form;
		j->snap = sn;
		j->refs = 2; /* the caller's and the worker's */
		list_append(&w->queue, j);
		pthread_cond_signal(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	free(nj);
	status_snap_free(j ? old : sn);
	return j;
}

struct status_job *status_worker_collect(struct status_worker *w)
{
	struct status_job *j;
	uint64_t n;

	if (!w->started)
		return NULL;
	/* Clear the fd first: a job done after this read writes it again. */
	if (read(w->efd, &n, sizeof(n)) < 0 && errno != EAGAIN && !w->efd_warned) {
		log_err("status thread: eventfd read: %s", strerror(errno));
		w->efd_warned = true;
	}
	pthread_mutex_lock(&w->lock);
	j = w->done;
	if (j)
		w->done = j->next;
	pthread_mutex_unlock(&w->lock);
	if (j)
		j->next = NULL;
	return j;
}

/* Hand t's job or buffer to the thread; here when it does not run or t is NULL. */
static void to_trash(struct status_worker *w, struct status_trash *t, struct status_job *j,
		     char *buf)
{
	if (!w->started || !t) {
		free(t);
		if (j)
			job_free(j);
		free(buf);
		return;
	}
	t->job = j;
	t->buf = buf;
	pthread_mutex_lock(&w->lock);
	t->next = w->trash;
	w->trash = t;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void status_job_unref(struct status_worker *w, struct status_job *j)
{
	if (!j || --j->refs)
		return;
	to_trash(w, malloc(sizeof(struct status_trash)), j, NULL);
}

void status_worker_free(void *ctx, char *buf)
{
	struct status_worker *w = ctx;

	to_trash(w, malloc(sizeof(struct status_trash)), NULL, buf);
}

/* The worker's reference to every job on list; what is not done is -ESHUTDOWN. */
static void drop_list(struct status_worker *w, struct status_job *j, bool done)
{
	while (j) {
		struct status_job *next = j->next;

		j->next = NULL;
		if (!done) {
			j->err = -ESHUTDOWN;
			j->started = true;
		}
		status_job_unref(w, j);
		j = next;
	}
}

void status_worker_stop(struct status_worker *w)
{
	struct status_job *queue, *done;

	if (!w->started)
		return;
	/* A job in progress (a second at full scale) stops at its next backend. */
	atomic_store(&w->cancel, true);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	trash_free(w->trash);
	w->trash = NULL;
	queue = w->queue;
	done = w->done;
	w->queue = w->done = NULL;
	/* From here on what is dropped is freed at once. */
	w->started = false;
	drop_list(w, queue, false);
	drop_list(w, done, true);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	close(w->efd);
	w->efd = -1;
}
