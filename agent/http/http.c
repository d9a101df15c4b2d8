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

/* Say a failed render once a minute at most, with the count since. */
static void render_failed(struct http_api *h, int err)
{
	__u64 now = now_mono_ns();

	h->render_failures++;
	if (h->render_warned_ns && now - h->render_warned_ns < HTTP_RENDER_WARN_NS)
		return;
	log_warn("http: GET /metrics: cannot render: %s (%llu failed renders since the last "
		 "such line; answered 503)",
		 strerror(-err), (unsigned long long)h->render_failures);
	h->render_warned_ns = now;
	h->render_failures = 0;
}

/* The loop's share of a render: the snapshot, no system call; the thread does the rest. */
static int render_begin(struct http_api *h)
{
	struct snap *sn = metrics_snap_take(h->a);

	if (!sn)
		return -ENOMEM;
	h->render_ticket++;
	h->rendering = true;
	h->render_state = fingerprint(h->a);
	http_render_submit(&h->render, sn);
	return 0;
}

/* A render is done: cache it, answer the GETs that waited for it, start the next if wanted. */
static void render_end(struct http_api *h)
{
	struct http_body *b = NULL;
	char *buf;
	size_t len;
	int err;

	if (!h->rendering || !http_render_collect(&h->render, &buf, &len, &err))
		return;
	h->rendering = false;
	if (!err) {
		b = http_body_new(buf, len);
		if (!b) {
			err = -ENOMEM;
		} else {
			b->release = http_render_free;
			b->ctx = &h->render;
		}
	}
	if (b)
		cache_set(&h->metrics, b, now_mono_ns(), h->render_state);
	else
		render_failed(h, err);
	http_server_answer(h->srv, HTTP_GET_METRICS, h->render_ticket, b, err);
	if (!h->render_next)
		return;
	/* GETs that came after a change made while this render ran. */
	h->render_next = false;
	err = render_begin(h);
	if (err) {
		render_failed(h, err);
		http_server_answer(h->srv, HTTP_GET_METRICS, h->render_ticket + 1, NULL, err);
	}
}

/*
 * GET /metrics: the cached answer if fresh; else a ticket for the render on the
 * thread that will answer it: the one running if its snapshot saw the state
 * this GET came in, the next one if the state changed since it started.
 */
static int get_metrics(struct http_api *h, struct http_body **body, __u64 *ticket)
{
	__u64 fp;
	int err;

	if (!h->render.started)
		return cached(h, &h->metrics, metrics_render_mem, body);
	fp = fingerprint(h->a);
	if (fresh(&h->metrics, now_mono_ns(), fp)) {
		*body = http_body_ref(h->metrics.body);
		return 0;
	}
	if (h->rendering) {
		if (h->render_state == fp) {
			*ticket = h->render_ticket;
		} else {
			h->render_next = true;
			*ticket = h->render_ticket + 1;
		}
		return -EINPROGRESS;
	}
	err = render_begin(h);
	if (err) {
		render_failed(h, err);
		return err;
	}
	*ticket = h->render_ticket;
	return -EINPROGRESS;
}

static int render_status(struct agent *a, char **buf, size_t *len)
{
	return status_agent_render(a, NULL, STATUS_JSON_LINE, buf, len);
}

static void ops_between(void *ctx)
{
	struct http_api *h = ctx;

	if (h->rb)
		samples_poll(h->a, h->rb);
}

static int ops_get(void *ctx, enum http_get what, struct http_body **body, __u64 *ticket)
{
	struct http_api *h = ctx;

	if (what == HTTP_GET_METRICS)
		return get_metrics(h, body, ticket);
	return cached(h, &h->status, render_status, body);
}

/* The loop's fd: MHD's epoll set and, with the render thread, its eventfd. */
static int watch_fds(struct http_api *h)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int rfd = http_render_fd(&h->render), rc;

	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd < 0) {
		rc = -errno;
		log_err("http: epoll_create1: %s", strerror(errno));
		return rc;
	}
	ev.data.fd = http_server_fd(h->srv);
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) ||
	    (rfd >= 0 && (ev.data.fd = rfd, epoll_ctl(h->epfd, EPOLL_CTL_ADD, rfd, &ev)))) {
		rc = -errno;
		log_err("http: epoll_ctl: %s", strerror(errno));
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
		render_end(h);
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
	/* The render first (it ends half-way): then the GETs waiting for it get 503. */
	http_render_stop(&h->render);
	h->rendering = false;
	http_server_stop(h->srv);
	if (h->srv && h->epfd >= 0)
		close(h->epfd);
	h->srv = NULL;
	h->epfd = -1;
	http_body_unref(h->metrics.body);
	http_body_unref(h->status.body);
	memset(&h->metrics, 0, sizeof(h->metrics));
	memset(&h->status, 0, sizeof(h->status));
}
