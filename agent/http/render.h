/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * GET /metrics rendered off the loop. The loop takes a snapshot of what the
 * agent owns (metrics_snap_take(), no system call) and hands it here; a thread
 * of its own reads the maps (a bpf syscall per backend and counter: seconds at
 * 32768 backends), renders the text, and says it is done on an eventfd the
 * loop watches. The loop collects the text and answers every GET that waited
 * for it (server.h's tickets). One render at a time.
 *
 * Its own thread, not the textfile writer's: a scrape then never waits for a
 * slow disk's fsync, nor the file for a scrape, and each keeps its own
 * "newest snapshot wins" queue.
 */
#ifndef SHIFT_HTTP_RENDER_H
#define SHIFT_HTTP_RENDER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct snap;

/* Owned by the loop; zero it, then http_render_start(). */
struct http_render {
	bool started;
	pthread_t thread;
	int efd; /* eventfd: a render is done */
	atomic_bool cancel; /* stopping: a render in progress gives up */
	bool efd_warned; /* an eventfd failure is said once */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock. */
	bool stop;
	struct snap *job; /* to render */
	bool done; /* out, out_len, out_err hold a finished render */
	char *out;
	size_t out_len;
	int out_err;
	struct render_trash *trash; /* answers sent, for the thread to free */
};

/* Start the thread. 0, or -errno (logged): then there is none and nothing runs. */
int http_render_start(struct http_render *r);
/* The eventfd for the loop's epoll (readable: call http_render_collect()). */
int http_render_fd(const struct http_render *r);
/* Render sn (taken) on the thread; the previous render must have been collected. */
void http_render_submit(struct http_render *r, struct snap *sn);
/*
 * A finished render: 1 with *buf (malloc'ed) and *len, or with *err (-errno,
 * *buf NULL); 0 while none is done. Never blocks.
 */
int http_render_collect(struct http_render *r, char **buf, size_t *len, int *err);
/*
 * Free a rendered answer (an http_body's release, ctx r): on the thread, as
 * freeing 300 MB (munmap) takes the loop milliseconds; here when the thread
 * does not run or the note cannot be allocated.
 */
void http_render_free(void *r, char *buf);
/* Cancel what is being rendered, join the thread, free what is left. */
void http_render_stop(struct http_render *r);

#endif
