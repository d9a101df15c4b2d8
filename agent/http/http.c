// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include "analysis/rollback.h"
#include "analysis/samples.h"
#include "config/addr.h"
#include "control/metrics.h"
#include "control/status.h"
#include "control/status_snap.h"
#include "ops/log.h"
#include "http/http.h"

/* fds beside the HTTP connections: maps, links, probes, netlink, the control socket. */
#define HTTP_FD_HEADROOM 256

void http_apply_alerts(struct agent *a, struct am_alert *al, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct am_alert *x = &al[i];
		struct service_rt *s;

		if (!x->has_service) {
			x->outcome = AM_NO_SERVICE;
			continue;
		}
		if (!x->firing) {
			/* A rollback is lifted by an operator, never by an alert going away. */
			x->outcome = AM_RESOLVED;
			log_info("alertmanager: %s for service %s resolved; the latch stays "
				 "(shiftctl clear lifts it)",
				 x->alertname, x->service);
			continue;
		}
		s = x->service_ok ? agent_service(a, x->service) : NULL;
		if (!s) {
			x->outcome = AM_UNKNOWN_SERVICE;
			log_warn("alertmanager: %s firing for service %s, which is not in the "
				 "running config",
				 x->alertname, x->service);
			continue;
		}
		/* A drill's latch is no rollback: the alert's replaces it and stays,
		 * as a trigger's does (samples_handle()). */
		if (s->latched && !s->latch_drill) {
			x->outcome = AM_ALREADY;
			log_debug("alertmanager: %s firing for service %s: already rolled back",
				  x->alertname, x->service);
			continue;
		}
		/* The map write comes first; the log lines after it. */
		/* Its result, not s->latched: a drill's latch was set already. */
		x->outcome = rollback_fire(a, s, TRIGGER_ALERTMANAGER, x->alertname, 0) ?
				     AM_FAILED :
				     AM_ROLLED_BACK;
		log_warn("alertmanager: %s firing for service %s (since %s): %s", x->alertname,
			 x->service, x->starts_at[0] ? x->starts_at : "?",
			 x->summary[0] ? x->summary : "no summary annotation");
	}
}

static void ops_alerts(void *ctx, struct am_alert *al, size_t n)
{
	http_apply_alerts(((struct http_api *)ctx)->a, al, n);
}

/* What a GET answer shows that must never read stale: weights, latches, rollbacks. */
static __u64 fingerprint(const struct agent *a)
{
	__u64 h = 1469598103934665603ull ^ a->reloads;
	__u32 i, r;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		const struct service_rt *s = a->svc[i];

		if (!s)
			continue;
		h = (h ^ ((__u64)i << 40 | (__u64)s->weight << 1 | s->latched)) * 1099511628211ull;
		for (r = 0; r < TRIGGER__COUNT; r++)
			h = (h ^ s->rollbacks[r]) * 1099511628211ull;
	}
	return h;
}

static bool fresh(const struct http_cache *c, __u64 now, __u64 fp)
{
	return c->body && now - c->at_ns < HTTP_CACHE_NS && c->state == fp;
}

/* Replace the cached answer with b (its reference taken). */
static void cache_set(struct http_cache *c, struct http_body *b, __u64 at, __u64 fp)
{
	http_body_unref(c->body);
	c->body = b;
	c->at_ns = at;
	c->state = fp;
}

/* The cached answer if fresh, else render() here, on the loop; a reference in *body. */
static int cached(struct http_api *h, struct http_cache *c,
		  int (*render)(struct agent *, char **, size_t *), struct http_body **body)
{
	__u64 now = now_mono_ns(), fp = fingerprint(h->a);
	int err;

	if (!fresh(c, now, fp)) {
		struct http_body *b;
		char *buf;
		size_t n;

		err = render(h->a, &buf, &n);
		if (err)
			return err;
		b = http_body_new(buf, n);
		if (!b)
			return -ENOMEM;
		cache_set(c, b, now, fp);
	}
	*body = http_body_ref(c->body);
	return 0;
}

static const char *get_path(enum http_get what)
{
	return what == HTTP_GET_METRICS ? "/metrics" : "/v1/status";
}

/* Is what's answer built on a thread? Else it renders on the loop. */
static bool off_loop(const struct http_api *h, enum http_get what)
{
	return what == HTTP_GET_METRICS ? h->render.started : h->status_thread.started;
}

/* Say a failed render once a minute at most, with the count since. */
static void render_failed(struct http_api *h, enum http_get what, int err)
{
	struct http_job *o = &h->job[what];
	__u64 now = now_mono_ns();

	o->failures++;
	if (o->warned_ns && now - o->warned_ns < HTTP_RENDER_WARN_NS)
		return;
	log_warn("http: GET %s: cannot render: %s (%llu failed renders since the last "
		 "such line; answered 503)",
		 get_path(what), strerror(-err), (unsigned long long)o->failures);
	o->warned_ns = now;
	o->failures = 0;
}

/* The loop's share of a render: the snapshot, no system call; the thread does the rest. */
static int render_begin(struct http_api *h, enum http_get what)
{
	struct http_job *o = &h->job[what];

	if (what == HTTP_GET_METRICS) {
		struct snap *sn = metrics_snap_take(h->a);

		if (!sn)
			return -ENOMEM;
		http_render_submit(&h->render, sn);
	} else {
		struct status_snap *sn = status_snap_take(h->a, NULL);

		h->status_job = sn ? status_worker_submit(&h->status_thread, sn, STATUS_JSON_LINE) :
				     NULL;
		if (!h->status_job)
			return -ENOMEM;
	}
	o->ticket++;
	o->running = true;
	o->state = fingerprint(h->a);
	return 0;
}

/* A render of what is done: 1 with its answer in *b (NULL: failed, why in *err), else 0. */
static int render_collect(struct http_api *h, enum http_get what, struct http_body **b, int *err)
{
	struct status_job *j;
	char *buf;
	size_t len;

	*b = NULL;
	if (what == HTTP_GET_METRICS) {
		if (!http_render_collect(&h->render, &buf, &len, err))
			return 0;
		if (*err)
			return 1;
		*b = http_body_new(buf, len);
		if (*b) {
			(*b)->release = http_render_free;
			(*b)->ctx = &h->render;
		}
	} else {
		/* One job in flight at most: it is h->status_job. */
		j = status_worker_collect(&h->status_thread);
		if (!j)
			return 0;
		*err = j->err;
		buf = j->out;
		len = j->len;
		j->out = NULL;
		status_job_unref(&h->status_thread, j); /* the worker's */
		status_job_unref(&h->status_thread, h->status_job); /* ours */
		h->status_job = NULL;
		if (*err)
			return 1;
		*b = http_body_new(buf, len);
		if (*b) {
			(*b)->release = status_worker_free;
			(*b)->ctx = &h->status_thread;
		}
	}
	if (!*b)
		*err = -ENOMEM;
	return 1;
}

/* A render is done: cache it, answer the GETs that waited for it, start the next if wanted. */
static void render_end(struct http_api *h, enum http_get what)
{
	struct http_job *o = &h->job[what];
	struct http_body *b;
	int err;

	if (!o->running || !render_collect(h, what, &b, &err))
		return;
	o->running = false;
	if (b)
		cache_set(&h->cache[what], b, now_mono_ns(), o->state);
	else
		render_failed(h, what, err);
	http_server_answer(h->srv, what, o->ticket, b, err);
	if (!o->next)
		return;
	/* GETs that came after a change made while this render ran. */
	o->next = false;
	err = render_begin(h, what);
	if (err) {
		render_failed(h, what, err);
		http_server_answer(h->srv, what, o->ticket + 1, NULL, err);
	}
}

static int render_status(struct agent *a, char **buf, size_t *len)
{
	return status_agent_render(a, NULL, STATUS_JSON_LINE, buf, len);
}

/*
 * A GET: the cached answer if fresh; else a ticket for the render on the
 * thread that will answer it: the one running if its snapshot saw the state
 * this GET came in, the next one if the state changed since it started.
 * Without the thread, a render here, on the loop.
 */
static int get_answer(struct http_api *h, enum http_get what, struct http_body **body,
		      __u64 *ticket)
{
	struct http_job *o = &h->job[what];
	__u64 fp;
	int err;

	if (!off_loop(h, what))
		return cached(h, &h->cache[what],
			      what == HTTP_GET_METRICS ? metrics_render_mem : render_status, body);
	fp = fingerprint(h->a);
	if (fresh(&h->cache[what], now_mono_ns(), fp)) {
		*body = http_body_ref(h->cache[what].body);
		return 0;
	}
	if (o->running) {
		if (o->state == fp) {
			*ticket = o->ticket;
		} else {
			o->next = true;
			*ticket = o->ticket + 1;
		}
		return -EINPROGRESS;
	}
	err = render_begin(h, what);
	if (err) {
		render_failed(h, what, err);
		return err;
	}
	*ticket = o->ticket;
	return -EINPROGRESS;
}

static void ops_between(void *ctx)
{
	struct http_api *h = ctx;

	if (h->rb)
		samples_poll(h->a, h->rb);
}

static int ops_get(void *ctx, enum http_get what, struct http_body **body, __u64 *ticket)
{
	return get_answer(ctx, what, body, ticket);
}

/* Add fd (if >= 0) to the HTTP API's epoll set. 0 or -errno. */
static int watch_fd(struct http_api *h, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (fd >= 0 && epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	return 0;
}

/* The loop's fd: MHD's epoll set and, with the render threads, their eventfds. */
static int watch_fds(struct http_api *h)
{
	int rc;

	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd < 0) {
		rc = -errno;
		log_err("http: epoll_create1: %s", strerror(errno));
		return rc;
	}
	rc = watch_fd(h, http_server_fd(h->srv));
	if (!rc)
		rc = watch_fd(h, http_render_fd(&h->render));
	if (!rc)
		rc = watch_fd(h, status_worker_fd(&h->status_thread));
	if (rc) {
		log_err("http: epoll_ctl: %s", strerror(-rc));
		close(h->epfd);
		h->epfd = -1;
		return rc;
	}
	return 0;
}

/* 1000 idle clients must cost connection slots, not the fds the datapath needs. */
static unsigned int fit_fd_limit(unsigned int want)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)want + HTTP_FD_HEADROOM;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		log_warn("http: getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return want;
	}
	if (rl.rlim_cur < need) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need :
										    rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			log_warn("http: setrlimit(RLIMIT_NOFILE, %llu): %s",
				 (unsigned long long)rl.rlim_cur, strerror(errno));
		if (getrlimit(RLIMIT_NOFILE, &rl))
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur < need) {
		unsigned int fit = rl.rlim_cur > 2 * HTTP_FD_HEADROOM ?
					   (unsigned int)(rl.rlim_cur - HTTP_FD_HEADROOM) :
					   HTTP_FD_HEADROOM;

		log_warn("http: open file limit %llu: serving at most %u connections, not %u",
			 (unsigned long long)rl.rlim_cur, fit, want);
		return fit;
	}
	return want;
}

int http_start(struct http_api *h, struct agent *a)
{
	const struct shift_conf *c = a->conf;
	struct http_ops ops = {
		.ctx = h,
		.alerts = ops_alerts,
		.get = ops_get,
		.between = ops_between,
	};
	struct http_limits lim;
	struct http_token tok;
	char err[CONF_PATH_LEN + 256], b[ADDR_ENDPOINT_LEN];
	int rc;

	memset(h, 0, sizeof(*h));
	h->a = a;
	h->epfd = -1;
	if (!c->http_enabled)
		return 0;
	rc = http_token_load(c->http_token_file, &tok, err, sizeof(err));
	if (rc) {
		log_err("%s", err);
		return rc;
	}
	if (tok.len < HTTP_TOKEN_MIN_ADVISED)
		log_warn("http_token_file %s: a %zu-character token is guessable; use %d or more",
			 c->http_token_file, tok.len, HTTP_TOKEN_MIN_ADVISED);
	http_limits_default(&lim);
	lim.max_connections = fit_fd_limit(lim.max_connections);
	h->srv = http_server_start(&c->http_listen, &lim, &ops, &tok, err, sizeof(err));
	memset(&tok, 0, sizeof(tok));
	if (!h->srv) {
		log_err("%s", err);
		return -EINVAL;
	}
	h->listen = c->http_listen;
	if (http_render_start(&h->render))
		log_warn("http: GET /metrics renders on the main thread: a scrape delays the "
			 "samples by its map reads");
	if (status_worker_start(&h->status_thread, "shiftd-http-st"))
		log_warn("http: GET /v1/status renders on the main thread: it delays the "
			 "samples by its map reads");
	rc = watch_fds(h);
	if (rc) {
		http_stop(h);
		return rc;
	}
	log_info("http: serving on %s (POST /v1/alertmanager with the bearer token; GET "
		 "/metrics, /v1/status); at most %u connections, %u s idle timeout",
		 addr_format_endpoint(&c->http_listen, b, sizeof(b)), lim.max_connections,
		 lim.timeout_s);
	return 0;
}

int http_fd(const struct http_api *h)
{
	return h->srv ? h->epfd : -1;
}

void http_run(struct http_api *h)
{
	__u64 t0, dt;

	if (!h->srv)
		return;
	t0 = now_mono_ns();
	/* First: the GETs a render answers are sent in this same turn. */
	if (h->render.started)
		render_end(h, HTTP_GET_METRICS);
	if (h->status_thread.started)
		render_end(h, HTTP_GET_STATUS);
	http_server_run(h->srv);
	dt = now_mono_ns() - t0;
	if (dt < HTTP_SLOW_TURN_NS)
		return;
	h->slow_turns++;
	if (dt > h->slowest_ns)
		h->slowest_ns = dt;
	if (!h->slow_logged_ns || t0 - h->slow_logged_ns >= HTTP_SLOW_LOG_NS) {
		log_info("http: %llu turns over %llu ms since the last such line, the slowest "
			 "%.1f ms (%u connections open): samples waited that long",
			 (unsigned long long)h->slow_turns,
			 (unsigned long long)(HTTP_SLOW_TURN_NS / 1000000),
			 (double)h->slowest_ns / 1e6, http_server_connections(h->srv));
		h->slow_logged_ns = t0;
		h->slow_turns = 0;
		h->slowest_ns = 0;
	}
}

int http_timeout_ms(const struct http_api *h)
{
	return h->srv ? http_server_timeout_ms(h->srv) : -1;
}

int http_reload(struct http_api *h, const struct shift_conf *newc, char *err, size_t errlen)
{
	struct http_token tok;
	int rc;

	if (newc->http_enabled != (h->srv != NULL) ||
	    (h->srv && memcmp(&newc->http_listen, &h->listen, sizeof(h->listen))))
		log_warn("reload: http_listen takes effect at the next start");
	if (!newc->http_enabled)
		return 0;
	/* Checked even when the listener starts only at the next start: it would fail then. */
	rc = http_token_load(newc->http_token_file, &tok, err, errlen);
	if (rc)
		return rc;
	if (h->srv)
		http_server_set_token(h->srv, &tok);
	memset(&tok, 0, sizeof(tok));
	return 0;
}

void http_stop(struct http_api *h)
{
	/* The renders first (they end half-way): then the GETs waiting for them get 503. */
	http_render_stop(&h->render);
	status_worker_stop(&h->status_thread);
	status_job_unref(&h->status_thread, h->status_job);
	h->status_job = NULL;
	memset(h->job, 0, sizeof(h->job));
	http_server_stop(h->srv);
	if (h->srv && h->epfd >= 0)
		close(h->epfd);
	h->srv = NULL;
	h->epfd = -1;
	http_body_unref(h->cache[HTTP_GET_METRICS].body);
	http_body_unref(h->cache[HTTP_GET_STATUS].body);
	memset(h->cache, 0, sizeof(h->cache));
}
