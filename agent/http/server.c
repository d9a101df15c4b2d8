// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The HTTP API's server on libmicrohttpd in external epoll mode; see server.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <jansson.h>
#include <microhttpd.h>

#include "config/addr.h"
#include "config/errmsg.h"
#include "ops/clock.h"
#include "ops/log.h"
#include "http/server.h"

/* A refused token is logged at most this often (with the count since). */
#define HTTP_WARN_EVERY_NS (60ull * 1000000000ull)
/* A body past the limit is read and dropped up to this much, then the connection is cut. */
#define HTTP_DISCARD_MAX(s) (4 * (s)->lim.body_max)

enum route { R_NONE, R_METRICS, R_STATUS, R_ALERTMANAGER };

struct req;

struct http_server {
	struct MHD_Daemon *d;
	struct http_ops ops;
	struct http_limits lim;
	struct http_token token;
	struct http_stats st;
	size_t bodies; /* bytes held by POST bodies being received */
	__u64 unauth_warned_ns, unauth_since;
	struct req *waiting; /* suspended GETs, waiting for http_server_answer() */
	unsigned int n_waiting;
	bool stopping; /* http_server_stop(): GETs are 503 without asking ops->get */
};

/* One request's state, from its headers to its completion. */
struct req {
	/* A POST's body. */
	char *body;
	size_t len, cap;
	size_t discarded;
	bool too_big; /* over body_max: 413 once it has been read */
	bool busy; /* over bodies_max: 503 */
	/* A GET whose answer comes later: suspended while on s->waiting. */
	bool get;
	struct MHD_Connection *c;
	enum http_get what;
	__u64 ticket;
	struct req *next, **pprev; /* on s->waiting */
	struct http_body *answer; /* set with err by http_server_answer() */
	int err;
};

void http_limits_default(struct http_limits *l)
{
	l->max_connections = HTTP_MAX_CONNECTIONS;
	l->timeout_s = HTTP_TIMEOUT_S;
	l->conn_memory = HTTP_CONN_MEMORY;
	l->body_max = HTTP_BODY_MAX;
	l->bodies_max = HTTP_BODIES_MAX;
}

/* --- bodies ------------------------------------------------------------------------ */

struct http_body *http_body_new(char *buf, size_t len)
{
	struct http_body *b = malloc(sizeof(*b));

	if (!b) {
		free(buf);
		return NULL;
	}
	b->buf = buf;
	b->len = len;
	b->refs = 1;
	b->release = NULL;
	b->ctx = NULL;
	return b;
}

struct http_body *http_body_ref(struct http_body *b)
{
	b->refs++;
	return b;
}

void http_body_unref(struct http_body *b)
{
	if (!b || --b->refs)
		return;
	if (b->release)
		b->release(b->ctx, b->buf);
	else
		free(b->buf);
	free(b);
}

/* libmicrohttpd is done with a response (sent, or the connection gone). */
static void body_release(void *cls)
{
	http_body_unref(cls);
}

/* --- answers ----------------------------------------------------------------------- */

/* Queue r (destroyed here) with the headers of every answer; allow: a 405's Allow. */
static enum MHD_Result queue(struct MHD_Connection *c, unsigned int code, const char *ctype,
			     struct MHD_Response *r, const char *allow)
{
	enum MHD_Result ret;

	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (code == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"shift\"");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	if (code == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Queue buf (malloc'ed, taken) as the answer; allow: the Allow header of a 405. */
static enum MHD_Result answer(struct MHD_Connection *c, unsigned int code, const char *ctype,
			      char *buf, size_t len, const char *allow)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(buf);
		return MHD_NO;
	}
	return queue(c, code, ctype, r, allow);
}

/* {"error":"..."}: the message cut to printable ASCII (it may quote the client's bytes). */
static enum MHD_Result answer_error(struct MHD_Connection *c, unsigned int code, const char *allow,
				    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result answer_error(struct MHD_Connection *c, unsigned int code, const char *allow,
				    const char *fmt, ...)
{
	char msg[512], *body;
	json_t *o;
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (i = 0; msg[i]; i++)
		if (msg[i] < 0x20 || msg[i] > 0x7e)
			msg[i] = '?';
	o = json_pack("{s:s}", "error", msg);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return MHD_NO;
	return answer(c, code, "application/json", body, strlen(body), allow);
}

/* --- requests ---------------------------------------------------------------------- */

static enum route route_of(const char *url)
{
	if (!strcmp(url, "/metrics"))
		return R_METRICS;
	if (!strcmp(url, "/v1/status"))
		return R_STATUS;
	if (!strcmp(url, "/v1/alertmanager"))
		return R_ALERTMANAGER;
	return R_NONE;
}

static void note_unauthorized(struct http_server *s)
{
	__u64 now = now_mono_ns();

	s->st.unauthorized++;
	s->unauth_since++;
	if (!s->unauth_warned_ns || now - s->unauth_warned_ns >= HTTP_WARN_EVERY_NS) {
		log_warn("http: POST /v1/alertmanager refused: wrong or missing bearer token "
			 "(%llu such requests since the last warning)",
			 (unsigned long long)s->unauth_since);
		s->unauth_warned_ns = now;
		s->unauth_since = 0;
	}
}

/* A GET's answer: body (a reference, taken) or, NULL, the error err. */
static enum MHD_Result answer_get(struct MHD_Connection *c, enum http_get what, struct http_body *b,
				  int err)
{
	const char *name = what == HTTP_GET_METRICS ? "metrics" : "status";
	struct MHD_Response *r;

	if (!b) {
		if (err == -ESHUTDOWN)
			return answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
					    "%s: shiftd is stopping; retry", name);
		/* Out of memory, most likely for a moment: come back (Retry-After). */
		if (err == -ENOMEM || err == -EAGAIN)
			return answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
					    "%s: cannot render: %s; retry", name, strerror(-err));
		return answer_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "%s: %s", name,
				    strerror(err ? -err : EIO));
	}
	r = MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->buf, body_release, b);
	if (!r) {
		http_body_unref(b);
		return MHD_NO;
	}
	return queue(c, MHD_HTTP_OK,
		     what == HTTP_GET_METRICS ? "text/plain; version=0.0.4; charset=utf-8" :
						"application/json",
		     r, NULL);
}

static void waiting_unlink(struct http_server *s, struct req *q)
{
	if (!q->pprev)
		return;
	*q->pprev = q->next;
	if (q->next)
		q->next->pprev = q->pprev;
	q->next = NULL;
	q->pprev = NULL;
	s->n_waiting--;
}

static enum MHD_Result serve_get(struct http_server *s, struct MHD_Connection *c, enum route r,
				 void **con_cls)
{
	enum http_get what = r == R_METRICS ? HTTP_GET_METRICS : HTTP_GET_STATUS;
	struct http_body *b = NULL;
	__u64 ticket = 0;
	struct req *q;
	int err;

	if (s->stopping)
		return answer_get(c, what, NULL, -ESHUTDOWN);
	err = s->ops.get ? s->ops.get(s->ops.ctx, what, &b, &ticket) : -ENOSYS;
	if (err != -EINPROGRESS)
		return answer_get(c, what, err ? NULL : b, err);
	/* Answered later: no data read or written meanwhile, no timeout. */
	q = calloc(1, sizeof(*q));
	if (!q)
		return answer_get(c, what, NULL, -ENOMEM);
	q->get = true;
	q->c = c;
	q->what = what;
	q->ticket = ticket;
	q->next = s->waiting;
	if (q->next)
		q->next->pprev = &q->next;
	q->pprev = &s->waiting;
	s->waiting = q;
	s->n_waiting++;
	*con_cls = q;
	MHD_suspend_connection(c);
	return MHD_YES;
}

unsigned int http_server_answer(struct http_server *s, enum http_get what, __u64 ticket,
				struct http_body *body, int err)
{
	struct req *q, *next;
	unsigned int n = 0;

	for (q = s->waiting; q; q = next) {
		next = q->next;
		if (q->what != what || q->ticket != ticket)
			continue;
		waiting_unlink(s, q);
		q->answer = body ? http_body_ref(body) : NULL;
		q->err = body ? 0 : err ? err : -EIO;
		MHD_resume_connection(q->c);
		n++;
	}
	return n;
}

unsigned int http_server_waiting(const struct http_server *s)
{
	return s->n_waiting;
}

/* The headers are in: decide now whether to read a body at all. */
static enum MHD_Result on_headers(struct http_server *s, struct MHD_Connection *c, const char *url,
				  const char *method, void **con_cls)
{
	bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
	enum route r = route_of(url);
	const char *cl;
	struct req *q;

	if (r == R_NONE) {
		s->st.not_found++;
		return answer_error(c, MHD_HTTP_NOT_FOUND, NULL,
				    "no such path; try /metrics, /v1/status or POST "
				    "/v1/alertmanager");
	}
	if (r != R_ALERTMANAGER) {
		if (!get)
			return answer_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
					    "%s takes GET or HEAD", url);
		return serve_get(s, c, r, con_cls);
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST))
		return answer_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST",
				    "/v1/alertmanager takes POST (an Alertmanager webhook)");
	/* Before the body: a refused client never gets to send one. */
	if (!http_token_check(&s->token,
			      MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							  MHD_HTTP_HEADER_AUTHORIZATION))) {
		note_unauthorized(s);
		return answer_error(c, MHD_HTTP_UNAUTHORIZED, NULL,
				    "wrong or missing bearer token (Authorization: Bearer TOKEN)");
	}
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno || end == cl || *end || n > s->lim.body_max) {
			s->st.too_large++;
			return answer_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
					    "body over %zu bytes", s->lim.body_max);
		}
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return MHD_NO;
	*con_cls = q;
	return MHD_YES;
}

/* A piece of the body: keep it, or count it and drop it once over a limit. */
static enum MHD_Result on_body(struct http_server *s, struct req *q, const char *data, size_t n)
{
	if (q->too_big || q->busy) {
		q->discarded += n;
		/* A client that keeps sending: cut it (no answer; it stopped listening). */
		return q->discarded > HTTP_DISCARD_MAX(s) ? MHD_NO : MHD_YES;
	}
	if (q->len + n > s->lim.body_max) {
		q->too_big = true;
	} else if (q->len + n > q->cap) {
		size_t cap = q->cap ? q->cap : 4096;
		char *p;

		while (cap < q->len + n)
			cap *= 2;
		if (cap > s->lim.body_max)
			cap = s->lim.body_max;
		if (s->bodies - q->cap + cap > s->lim.bodies_max) {
			q->busy = true;
		} else {
			p = realloc(q->body, cap);
			if (!p) {
				q->busy = true;
			} else {
				s->bodies = s->bodies - q->cap + cap;
				q->body = p;
				q->cap = cap;
			}
		}
	}
	if (q->too_big || q->busy) {
		s->bodies -= q->cap;
		free(q->body);
		q->body = NULL;
		q->cap = 0;
		q->discarded = q->len + n;
		q->len = 0;
		return MHD_YES;
	}
	memcpy(q->body + q->len, data, n);
	q->len += n;
	return MHD_YES;
}

static enum MHD_Result on_complete(struct http_server *s, struct MHD_Connection *c, struct req *q)
{
	struct am_alert *al;
	unsigned int code;
	char err[512], *ans;
	size_t n;

	if (q->too_big) {
		s->st.too_large++;
		return answer_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL, "body over %zu bytes",
				    s->lim.body_max);
	}
	if (q->busy) {
		s->st.busy++;
		return answer_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
				    "too many webhook bodies in flight; retry");
	}
	err[0] = '\0';
	if (am_parse(q->body ? q->body : "", q->len, &al, &n, err, sizeof(err))) {
		s->st.bad_request++;
		log_info("http: POST /v1/alertmanager refused: %s", err);
		return answer_error(c, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
	}
	s->st.alerts += n;
	if (s->ops.alerts)
		s->ops.alerts(s->ops.ctx, al, n);
	ans = am_answer(al, n, &code);
	free(al);
	if (!ans)
		return MHD_NO;
	return answer(c, code, "application/json", ans, strlen(ans), NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct req *q = *con_cls;

	(void)version;
	if (!q) {
		s->st.requests++;
		if (s->ops.between && !s->stopping)
			s->ops.between(s->ops.ctx);
		return on_headers(s, c, url, method, con_cls);
	}
	if (q->get) {
		struct http_body *b = q->answer;

		/* A GET's body, if a client sent one, is ignored. */
		if (*upload_data_size) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		/* Resumed (else MHD would not call again): the answer is in. */
		q->answer = NULL;
		return answer_get(c, q->what, b, b ? 0 : q->err ? q->err : -EIO);
	}
	if (*upload_data_size) {
		enum MHD_Result r = on_body(s, q, upload_data, *upload_data_size);

		*upload_data_size = 0;
		return r;
	}
	if (s->ops.between)
		s->ops.between(s->ops.ctx);
	return on_complete(s, c, q);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct req *q = *con_cls;

	(void)c, (void)toe;
	if (!q)
		return;
	waiting_unlink(s, q);
	http_body_unref(q->answer);
	s->bodies -= q->cap;
	free(q->body);
	free(q);
	*con_cls = NULL;
}

/* MHD's own messages (a client that vanished, a malformed request line): debug only. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	if (shift_log_level() < SHIFT_LOG_DEBUG)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("http: libmicrohttpd: %s", msg);
}

/* --- the server -------------------------------------------------------------------- */

static int listen_socket(const struct shift_addr_key *k, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char b[ADDR_ENDPOINT_LEN];
	int fd, one = 1, rc;

	memset(&ss, 0, sizeof(ss));
	if (k->family == SHIFT_AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = k->port;
		memcpy(&s6->sin6_addr, k->addr, 16);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = k->port;
		memcpy(&s4->sin_addr, k->addr, 4);
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		seterr(err, errlen, "http_listen: socket: %s", strerror(errno));
		return rc;
	}
	/* A restarted shiftd rebinds at once, past the old connections' TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 128)) {
		rc = -errno;
		seterr(err, errlen, "http_listen %s: %s", addr_format_endpoint(k, b, sizeof(b)),
		       strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

struct http_server *http_server_start(const struct shift_addr_key *addr,
				      const struct http_limits *lim, const struct http_ops *ops,
				      const struct http_token *token, char *err, size_t errlen)
{
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	const union MHD_DaemonInfo *info;
	struct http_server *s;
	int lfd = -1;

	s = calloc(1, sizeof(*s));
	if (!s) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	s->ops = *ops;
	s->lim = *lim;
	if (token)
		s->token = *token;
	if (addr) {
		lfd = listen_socket(addr, err, errlen);
		if (lfd < 0) {
			free(s);
			return NULL;
		}
		if (addr->family == SHIFT_AF_INET6)
			flags |= MHD_USE_IPv6;
	} else {
		flags |= MHD_USE_NO_LISTEN_SOCKET;
	}
	/* No MHD_USE_INTERNAL_POLLING_THREAD: MHD runs only inside http_server_run(). */
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_EXTERNAL_LOGGER,
				mhd_log, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
				MHD_OPTION_CONNECTION_LIMIT, lim->max_connections,
				MHD_OPTION_CONNECTION_TIMEOUT, lim->timeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, lim->conn_memory,
				lfd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, lfd,
				MHD_OPTION_END);
	if (!s->d) {
		seterr(err, errlen, "libmicrohttpd would not start (see the debug log with -v)");
		if (lfd >= 0)
			close(lfd);
		free(s);
		return NULL;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		seterr(err, errlen, "libmicrohttpd has no epoll fd (built without epoll?)");
		http_server_stop(s);
		return NULL;
	}
	return s;
}

void http_server_set_token(struct http_server *s, const struct http_token *t)
{
	s->token = *t;
}

int http_server_fd(const struct http_server *s)
{
	return MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
}

void http_server_run(struct http_server *s)
{
	/* epoll_wait(0) inside: what is ready now, and the idle connections' timeouts. */
	MHD_run(s->d);
}

int http_server_timeout_ms(struct http_server *s)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(s->d, &ms) != MHD_YES)
		return -1;
	return ms > 60000 ? 60000 : (int)ms;
}

int http_server_add_connection(struct http_server *s, int fd)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };

	if (MHD_add_connection(s->d, fd, (struct sockaddr *)&peer, sizeof(peer)) != MHD_YES)
		return errno ? -errno : -EIO;
	return 0;
}

const struct http_stats *http_server_stats(const struct http_server *s)
{
	return &s->st;
}

unsigned int http_server_connections(const struct http_server *s)
{
	const union MHD_DaemonInfo *i =
		MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return i ? i->num_connections : 0;
}

void http_server_stop(struct http_server *s)
{
	bool resumed = false;

	if (!s)
		return;
	/* From here on no GET is suspended: nothing new waits. */
	s->stopping = true;
	if (s->d) {
		/* MHD_stop_daemon() aborts the process on a suspended connection
		 * (test_http's test_server_stop_waiting): resume them all, and run
		 * once so that each is told 503 before the close. */
		while (s->waiting) {
			struct req *q = s->waiting;

			waiting_unlink(s, q);
			q->err = -ESHUTDOWN;
			MHD_resume_connection(q->c);
			resumed = true;
		}
		if (resumed)
			MHD_run(s->d);
		MHD_stop_daemon(s->d);
	}
	free(s);
}
