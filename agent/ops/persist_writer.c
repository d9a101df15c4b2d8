// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The state file's writer thread; see persist_writer.h. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "ops/log.h"
#include "ops/persist_writer.h"
#include "ops/thread.h"

struct persist_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work; /* a state to write, or stop */
	pthread_cond_t finished; /* done.gen moved */
	int efd;
	char path[PATH_MAX];
	/* Under lock. */
	struct shift_state next; /* the newest state not yet taken (next_gen) */
	__u64 next_gen, last_gen;
	struct persist_done done;
	__u64 written, superseded;
	bool stop;
	bool efd_warned;
};

static void write_one(struct persist_writer *w, const struct shift_state *st,
		      struct persist_done *d)
{
	int lock = -1;

	d->err[0] = '\0';
	/* shiftctl writes the same file while shiftd is down; the lock orders the two. */
	d->rc = state_lock(w->path, &lock, d->err, sizeof(d->err));
	if (d->rc)
		return;
	d->rc = state_save(w->path, st, d->err, sizeof(d->err));
	state_unlock(lock);
}

static void *writer_main(void *arg)
{
	struct persist_writer *w = arg;
	const uint64_t one = 1;
	struct persist_done d;
	struct shift_state st;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->next_gen && !w->stop)
			pthread_cond_wait(&w->work, &w->lock);
		/* Stop only once what was handed over is written. */
		if (!w->next_gen)
			break;
		st = w->next;
		d.gen = w->next_gen;
		memset(&w->next, 0, sizeof(w->next));
		w->next_gen = 0;
		pthread_mutex_unlock(&w->lock);

		write_one(w, &st, &d);
		state_free(&st);

		pthread_mutex_lock(&w->lock);
		w->done = d;
		w->written++;
		pthread_cond_broadcast(&w->finished);
		if (write(w->efd, &one, sizeof(one)) != sizeof(one) && !w->efd_warned) {
			/* The loop then learns of it at its next tick. */
			log_err("state writer: eventfd write: %s", strerror(errno));
			w->efd_warned = true;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int persist_writer_start(struct persist_writer **wp, const char *path)
{
	struct persist_writer *w;
	int err;

	*wp = NULL;
	if (strlen(path) >= sizeof(w->path))
		return -ENAMETOOLONG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		err = -errno;
		free(w);
		return err;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->finished, NULL);
	err = thread_start(&w->thread, writer_main, w, "shiftd-state");
	if (err) {
		pthread_cond_destroy(&w->finished);
		pthread_cond_destroy(&w->work);
		pthread_mutex_destroy(&w->lock);
		close(w->efd);
		free(w);
		return -err;
	}
	*wp = w;
	return 0;
}

int persist_writer_fd(const struct persist_writer *w)
{
	return w->efd;
}

__u64 persist_writer_submit(struct persist_writer *w, struct shift_state *st)
{
	__u64 gen = 0;

	pthread_mutex_lock(&w->lock);
	if (!w->stop) {
		if (w->next_gen) {
			state_free(&w->next);
			w->superseded++;
		}
		w->next = *st;
		memset(st, 0, sizeof(*st));
		gen = w->next_gen = ++w->last_gen;
		pthread_cond_signal(&w->work);
	}
	pthread_mutex_unlock(&w->lock);
	return gen;
}

void persist_writer_wait(struct persist_writer *w, __u64 gen, struct persist_done *d)
{
	pthread_mutex_lock(&w->lock);
	while (w->done.gen < gen)
		pthread_cond_wait(&w->finished, &w->lock);
	*d = w->done;
	pthread_mutex_unlock(&w->lock);
}

bool persist_writer_poll(struct persist_writer *w, __u64 *seen, struct persist_done *d)
{
	uint64_t n;
	bool fresh;

	/* Nonblocking: EAGAIN when nothing finished since the last read. */
	if (read(w->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return false;
	pthread_mutex_lock(&w->lock);
	fresh = w->done.gen > *seen;
	if (fresh) {
		*d = w->done;
		*seen = w->done.gen;
	}
	pthread_mutex_unlock(&w->lock);
	return fresh;
}

void persist_writer_counts(struct persist_writer *w, __u64 *written, __u64 *superseded)
{
	pthread_mutex_lock(&w->lock);
	*written = w->written;
	*superseded = w->superseded;
	pthread_mutex_unlock(&w->lock);
}

void persist_writer_stop(struct persist_writer *w, struct persist_done *d)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	if (d)
		*d = w->done;
	pthread_cond_destroy(&w->finished);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	close(w->efd);
	free(w);
}
