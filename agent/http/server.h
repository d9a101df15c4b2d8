/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The HTTP/1.1 server of the HTTP API on libmicrohttpd, driven by the caller's
 * event loop: no thread of its own. MHD keeps its sockets in an epoll set of
 * its own; the caller adds that set's fd (http_server_fd) to its epoll and
 * calls http_server_run() when it is readable and on every tick (for the
 * per-connection timeouts). Nothing here blocks: a slow or hostile client
 * costs one connection slot and a bounded buffer, never the caller's time.
 *
 * Routes (anything else 404; a known path with another method 405):
 *   GET|HEAD /metrics          ops->get(HTTP_GET_METRICS) (Prometheus text 0.0.4)
 *   GET|HEAD /v1/status        ops->get(HTTP_GET_STATUS) (`shiftctl status --json`)
 *   POST /v1/alertmanager      bearer token, then the webhook (webhook.h):
 *                              401 wrong or missing token (the body is not read),
 *                              413 body over body_max, 400 not a v4 payload,
 *                              503 every connection's body buffers together
 *                              over bodies_max (Alertmanager retries a 5xx),
 *                              else am_answer()'s 200/404/500.
 * Errors are {"error":"..."}, application/json.
 *
 * A GET's answer may come later: ops->get hands out a ticket, the connection is
 * suspended (libmicrohttpd neither reads nor writes it, nor times it out) and
 * http_server_answer() resumes every connection holding that ticket with one
 * shared body. So an answer that takes long to build is built elsewhere (a
 * thread), never in the caller's loop; http_server_stop() answers whatever
 * still waits with 503.
 */
#ifndef SHIFT_HTTP_SERVER_H
#define SHIFT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <shift/maps.h>

#include "http/token.h"
#include "http/webhook.h"

/*
 * A GET answer's body, shared by every connection it answers and by whoever
 * caches it: counted references, taken and dropped on the server's thread only.
 */
struct http_body {
	char *buf;
	size_t len;
	unsigned int refs;
	/* Frees buf when the last reference goes; NULL: free(). */
	void (*release)(void *ctx, char *buf);
	void *ctx;
};

/* A body of buf (malloc'ed, taken: freed here even on failure) with one reference; NULL: ENOMEM. */
struct http_body *http_body_new(char *buf, size_t len);
struct http_body *http_body_ref(struct http_body *b);
/* Drop a reference (NULL: none); the last one frees the body. */
void http_body_unref(struct http_body *b);

enum http_get { HTTP_GET_METRICS, HTTP_GET_STATUS };

struct http_ops {
	void *ctx;
	/* Apply the alerts of one accepted payload: set each one's outcome. */
	void (*alerts)(void *ctx, struct am_alert *al, size_t n);
	/*
	 * A GET's answer: 0 with *body (a reference, the server's to drop), -errno
	 * (then 503 with Retry-After for ENOMEM, EAGAIN, ESHUTDOWN, else 500), or
	 * -EINPROGRESS with *ticket: the connection waits for
	 * http_server_answer(what, *ticket).
	 */
	int (*get)(void *ctx, enum http_get what, struct http_body **body, __u64 *ticket);
	/*
	 * Called before each request is served, NULL for none: shiftd drains the
	 * samples here, so a turn serving many requests delays a trigger by one
	 * request's work at most, not the whole turn's.
	 */
	void (*between)(void *ctx);
};

struct http_limits {
	unsigned int max_connections; /* open at once; more are refused at accept */
	unsigned int timeout_s; /* a connection idle this long is closed */
	size_t conn_memory; /* per connection: request line, headers, I/O buffers */
	size_t body_max; /* one POST body; more is 413 */
	size_t bodies_max; /* all POST bodies being received together; more is 503 */
};

#define HTTP_MAX_CONNECTIONS 1024
#define HTTP_TIMEOUT_S 10
#define HTTP_CONN_MEMORY (32u << 10)
#define HTTP_BODY_MAX (1u << 20)
#define HTTP_BODIES_MAX (16u << 20)

/* The defaults above. */
void http_limits_default(struct http_limits *l);

struct http_stats {
	__u64 requests, unauthorized, bad_request, too_large, not_found, busy, alerts;
};

struct http_server;

/*
 * Listen on addr (family, addr, port in network order) or, addr NULL, on no
 * socket at all (connections come from http_server_add_connection: tests and
 * the fuzzer). NULL on failure with the reason in err.
 */
struct http_server *http_server_start(const struct shift_addr_key *addr,
				      const struct http_limits *lim, const struct http_ops *ops,
				      const struct http_token *token, char *err, size_t errlen);
/* Replace the token (reload). */
void http_server_set_token(struct http_server *s, const struct http_token *t);
/* The epoll fd to watch for readability. */
int http_server_fd(const struct http_server *s);
/* Serve whatever is ready and expire idle connections; never blocks. */
void http_server_run(struct http_server *s);
/*
 * Milliseconds until http_server_run() is due again whatever the fd says, -1
 * for none: 0 while a connection has data MHD has read only in part (its
 * epoll is edge-triggered, so the fd will not tell again).
 */
int http_server_timeout_ms(struct http_server *s);
/*
 * Answer every connection waiting for (what, ticket): with body (each takes a
 * reference of its own) or, body NULL, the error err (-errno, as ops->get's).
 * They are sent at the next http_server_run(). Returns how many.
 */
unsigned int http_server_answer(struct http_server *s, enum http_get what, __u64 ticket,
				struct http_body *body, int err);
/* Connections waiting for an answer (suspended) now. */
unsigned int http_server_waiting(const struct http_server *s);
/* Hand a connected socket to the server (it owns fd from then on). 0 or -errno. */
int http_server_add_connection(struct http_server *s, int fd);
const struct http_stats *http_server_stats(const struct http_server *s);
/* Connections open now. */
unsigned int http_server_connections(const struct http_server *s);
void http_server_stop(struct http_server *s);

#endif
