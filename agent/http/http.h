/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * shiftd's HTTP API (SPEC "External signals and the HTTP API"): the server of
 * server.h wired to the agent. A firing Alertmanager alert labelled
 * shift_service=NAME rolls NAME back through rollback_fire() (reason
 * "alertmanager: ALERTNAME"), GET /metrics renders shift.prom's series, GET
 * /v1/status is `shiftctl status --json`. Off unless http_listen is set.
 */
#ifndef SHIFT_HTTP_H
#define SHIFT_HTTP_H

#include <stddef.h>

#include "agent.h"
#include "control/status_worker.h"
#include "http/render.h"
#include "http/server.h"
#include "http/token.h"

/*
 * A rendered GET answer, reused for HTTP_CACHE_NS while the agent's state
 * (weights, latches, rollbacks, reloads) has not changed: a flood of GETs then
 * shares one body, not a render each with its map reads.
 *
 * GET /metrics and GET /v1/status are rendered on threads (render.h, and a
 * status thread of the API's own: control/status_worker.h), never in the loop
 * that also consumes the samples: a GET with no fresh answer waits (suspended)
 * for a render whose snapshot is as new as the state the GET came in; every
 * GET that comes while it runs waits for that same render, or, the state
 * having changed meanwhile, for one more started as soon as it ends. So one
 * render of each at most runs, and one more at most is wanted.
 */
#define HTTP_CACHE_NS (100ull * 1000000ull)
/* A failed render (out of memory) is logged at most this often. */
#define HTTP_RENDER_WARN_NS (60ull * 1000000000ull)

struct http_cache {
	struct http_body *body; /* a reference; NULL: none yet */
	__u64 at_ns; /* CLOCK_MONOTONIC of the render (its end, for one on the thread) */
	__u64 state; /* the agent's fingerprint at its snapshot */
};

struct ring_buffer;

/* A GET answer rendered off the loop, and the GETs waiting for it (server.h's tickets). */
struct http_job {
	bool running; /* a render is on its thread */
	__u64 state; /* the fingerprint at its snapshot */
	__u64 ticket; /* what its GETs wait for; the next render's is one more */
	bool next; /* GETs wait for the render after this one */
	__u64 warned_ns, failures; /* failed renders, logged at most every HTTP_RENDER_WARN_NS */
};

struct http_api {
	struct agent *a;
	struct ring_buffer *rb; /* the samples, drained before each request (server.h) */
	struct http_server *srv; /* NULL: off */
	struct shift_addr_key listen; /* as started (http_listen applies at start) */
	struct http_cache cache[2]; /* by enum http_get */
	int epfd; /* what the loop watches: MHD's epoll fd and the renders' eventfds */
	struct http_render render; /* not started: /metrics renders in the loop */
	struct status_worker status_thread; /* not started: /v1/status renders in the loop */
	struct status_job *status_job; /* the /v1/status render in flight, a reference */
	struct http_job job[2]; /* by enum http_get */
	/* Turns of the server longer than HTTP_SLOW_TURN_NS: the loop (and the
	 * samples) waited that long. Logged at most every HTTP_SLOW_LOG_NS. */
	__u64 slow_turns, slow_logged_ns, slowest_ns;
};

#define HTTP_SLOW_TURN_NS (2ull * 1000000ull)
#define HTTP_SLOW_LOG_NS (10ull * 1000000000ull)

/*
 * Start serving if a->conf has http_listen: read the token (refused if the
 * file is empty or open to group or others), bind, raise RLIMIT_NOFILE for
 * the connection limit. 0 (also when off) or -errno, logged.
 */
int http_start(struct http_api *h, struct agent *a);
/* The fd for the loop's epoll (readable: call http_run()), or -1 when off. */
int http_fd(const struct http_api *h);
/* Answer what a render finished, serve what is ready; also on every tick (timeouts). */
void http_run(struct http_api *h);
/* For the loop's epoll_wait: ms until http_run() is due anyway, -1 none (off). */
int http_timeout_ms(const struct http_api *h);
/*
 * A reload: the new config's token file must hold a valid token (else the
 * reload is refused: -errno, reason in err). http_listen changes apply at the
 * next start. On success the new token is in force at once.
 */
int http_reload(struct http_api *h, const struct shift_conf *newc, char *err, size_t errlen);
void http_stop(struct http_api *h);

/* Apply one payload's alerts to the agent (the server's ops->alerts; exposed for tests). */
void http_apply_alerts(struct agent *a, struct am_alert *al, size_t n);

#endif
