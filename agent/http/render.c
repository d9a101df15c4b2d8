// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* GET /metrics rendered on a thread of its own; see render.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "control/metrics.h"
#include "ops/log.h"
#include "ops/thread.h"
#include "http/render.h"

struct render_trash {
	struct render_trash *next;
	char *buf;
};

static void trash_free(struct render_trash *t)
{
	while (t) {
		struct render_trash *next = t->next;

		free(t->buf);
		free(t);
		t = next;
	}
}

static void *render_main(void *arg)
{
	struct http_render *r = arg;
	const uint64_t one = 1;
	struct snap *sn;
	char *buf;
	size_t len;
	int err;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->job && !r->trash && !r->stop)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop)
			break;
		if (r->trash) {
			struct render_trash *t = r->trash;

			r->trash = NULL;
			pthread_mutex_unlock(&r->lock);
			trash_free(t);
			pthread_mutex_lock(&r->lock);
			continue;
		}
		sn = r->job;
		r->job = NULL;
		pthread_mutex_unlock(&r->lock);
		err = metrics_snap_render(sn, &r->cancel, &buf, &len);
		metrics_snap_free(sn);
		pthread_mutex_lock(&r->lock);
		r->out = buf;
		r->out_len = len;
		r->out_err = err;
		r->done = true;
		/* Under the lock: http_render_stop() closes the fd only after the join. */
		if (write(r->efd, &one, sizeof(one)) != sizeof(one) && !r->efd_warned) {
			/* The loop then learns of it at its next tick's http_run(). */
			log_err("http: render thread: eventfd write: %s", strerror(errno));
			r->efd_warned = true;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int http_render_start(struct http_render *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	atomic_init(&r->cancel, false);
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		rc = -errno;
		log_warn("http: render eventfd: %s", strerror(errno));
		return rc;
	}
	rc = pthread_mutex_init(&r->lock, NULL);
	if (rc) {
		log_warn("http: render lock: %s", strerror(rc));
		goto err_fd;
	}
	rc = pthread_cond_init(&r->cond, NULL);
	if (rc) {
		log_warn("http: render condition: %s", strerror(rc));
		goto err_lock;
	}
	rc = thread_start(&r->thread, render_main, r, "shiftd-http");
	if (rc) {
		log_warn("http: render thread: %s", strerror(rc));
		pthread_cond_destroy(&r->cond);
		goto err_lock;
	}
	r->started = true;
	return 0;
err_lock:
	pthread_mutex_destroy(&r->lock);
err_fd:
	close(r->efd);
	r->efd = -1;
	return -rc;
}

int http_render_fd(const struct http_render *r)
{
	return r->started ? r->efd : -1;
}

void http_render_submit(struct http_render *r, struct snap *sn)
{
	pthread_mutex_lock(&r->lock);
	metrics_snap_free(r->job); /* none: the loop submits after collecting */
	r->job = sn;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

int http_render_collect(struct http_render *r, char **buf, size_t *len, int *err)
{
	uint64_t n;
	int got = 0;

	/* Clear the fd first: a render done after this read writes it again. */
	if (read(r->efd, &n, sizeof(n)) < 0 && errno != EAGAIN && !r->efd_warned) {
		log_err("http: render eventfd read: %s", strerror(errno));
		r->efd_warned = true;
	}
	pthread_mutex_lock(&r->lock);
	if (r->done) {
		*buf = r->out;
		*len = r->out_len;
		*err = r->out_err;
		r->out = NULL;
		r->done = false;
		got = 1;
	}
	pthread_mutex_unlock(&r->lock);
	return got;
}

void http_render_free(void *ctx, char *buf)
{
	struct http_render *r = ctx;
	struct render_trash *t;

	if (!r->started || !(t = malloc(sizeof(*t)))) {
		free(buf);
		return;
	}
	t->buf = buf;
	pthread_mutex_lock(&r->lock);
	t->next = r->trash;
	r->trash = t;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void http_render_stop(struct http_render *r)
{
	if (!r->started)
		return;
	/* A render in progress (seconds at full scale) stops at its next backend. */
	atomic_store(&r->cancel, true);
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	metrics_snap_free(r->job);
	r->job = NULL;
	trash_free(r->trash);
	r->trash = NULL;
	free(r->out);
	r->out = NULL;
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	close(r->efd);
	r->efd = -1;
	r->started = false;
}
