// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Every backend's probe runs on its own deadlines (analysis/hc_sched.h): its next
 * start and, while it is in flight, its timeout, both on CLOCK_MONOTONIC. The
 * agent's loop sleeps until the earliest deadline over all backends
 * (health_next_ns()) or until a probe's socket is ready; a ready socket advances
 * only its own probe. Connects, writes and reads never block, so one slow
 * backend's probe never delays another's.
 */
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config/addr.h"
#include "analysis/health.h"
#include "analysis/hc_sched.h"
#include "ops/log.h"
#include "analysis/rollback.h"

int health_fd(struct agent *a)
{
	if (a->health_epfd <= 0) {
		a->health_epfd = epoll_create1(EPOLL_CLOEXEC);
		if (a->health_epfd < 0) {
			int err = -errno;

			a->health_epfd = 0;
			return err;
		}
	}
	return a->health_epfd;
}

__u64 health_next_ns(const struct agent *a)
{
	return a->health_due_ns;
}

void health_kick(struct agent *a)
{
	a->health_due_ns = 0;
}

/* The event names the service and the socket: backends move inside their pool
 * on a reload, sockets do not change. */
static __u64 probe_key(const struct service_rt *s, int fd)
{
	return (__u64)s->id << 32 | (__u32)fd;
}

/* Wait for the socket to become writable (connected) or readable (answer). */
static void probe_watch(struct agent *a, const struct service_rt *s, struct backend_rt *b,
			__u32 events, int op)
{
	struct epoll_event ev = { .events = events, .data.u64 = probe_key(s, b->hc_fd) };
	int efd = health_fd(a);

	if (efd >= 0 && epoll_ctl(efd, op, b->hc_fd, &ev))
		log_debug("health: epoll_ctl: %s", strerror(errno));
}

static void probe_close(struct backend_rt *b)
{
	/* close() also takes the socket out of the epoll set. */
	if (b->hc_fd >= 0)
		close(b->hc_fd);
	b->hc_fd = -1;
	b->hc_sent = 0;
	b->hc_len = 0;
}

void health_stop(struct service_rt *s)
{
	__u32 i;
	int c;

	for (c = 0; c < SHIFT_COLORS; c++)
		for (i = 0; i < s->n[c]; i++)
			probe_close(&s->pool[c][i]);
}

static int probe_start(struct agent *a, const struct service_rt *s, struct backend_rt *b)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (b->addr.family == SHIFT_AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = b->addr.port;
		memcpy(&sin->sin_addr, b->addr.addr, 4);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = b->addr.port;
		memcpy(&sin6->sin6_addr, b->addr.addr, 16);
		len = sizeof(*sin6);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	b->hc_fd = fd;
	probe_watch(a, s, b, EPOLLOUT, EPOLL_CTL_ADD);
	return 0;
}

/* One step of a probe on the readiness `ev` (EPOLL* bits): 1 healthy, 0
 * unhealthy, -1 still waiting. */
static int probe_step(struct agent *a, const struct service_rt *s, struct backend_rt *b, __u32 ev)
{
	const struct conf_service *c = s->conf;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (!(ev & (EPOLLOUT | EPOLLIN | EPOLLERR | EPOLLHUP)))
		return -1;
	/* The connect's outcome. Once the request is out, the answer is read
	 * before any error: a 200 followed at once by a reset (an abortive
	 * close, a responder that never read our headers) is a 200. */
	if ((!b->hc_sent || c->health == CONF_HC_TCP) &&
	    (getsockopt(b->hc_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr))
		return 0;
	if (c->health == CONF_HC_TCP)
		return (ev & EPOLLOUT) ? 1 : 0;

	/* HTTP: write the request once connected, then read the status line. */
	if (!b->hc_sent) {
		char req[512], host[ADDR_ENDPOINT_LEN];
		int n;

		if (!(ev & EPOLLOUT))
			return (ev & (EPOLLERR | EPOLLHUP)) ? 0 : -1;
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: shiftd-health\r\n"
			     "Connection: close\r\n\r\n",
			     c->health_path, addr_format_endpoint(&b->addr, host, sizeof(host)));
		if (n < 0 || (size_t)n >= sizeof(req) || write(b->hc_fd, req, (size_t)n) != n)
			return 0;
		b->hc_sent = (__u32)n;
		/* Now the answer: stop waking on "writable". */
		probe_watch(a, s, b, EPOLLIN, EPOLL_CTL_MOD);
		return -1;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t r = read(b->hc_fd, b->hc_buf + b->hc_len, sizeof(b->hc_buf) - b->hc_len);

		if (r < 0)
			return errno == EAGAIN ? -1 : 0;
		b->hc_len += (__u32)r;
		if (b->hc_len >= 12 || r == 0) {
			/* "HTTP/1.x 2xx" */
			return b->hc_len >= 12 && !memcmp(b->hc_buf, "HTTP/1.", 7) &&
			       b->hc_buf[9] == '2';
		}
	}
	return -1;
}

/* The socket's readiness now, without waiting (a probe at its deadline gets a
 * last look: an answer that came in with the deadline counts). */
static __u32 probe_ready(const struct backend_rt *b)
{
	struct pollfd pfd = { .fd = b->hc_fd, .events = POLLOUT | POLLIN };
	__u32 ev = 0;

	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	if (pfd.revents & POLLIN)
		ev |= EPOLLIN;
	if (pfd.revents & POLLOUT)
		ev |= EPOLLOUT;
	if (pfd.revents & POLLERR)
		ev |= EPOLLERR;
	if (pfd.revents & POLLHUP)
		ev |= EPOLLHUP;
	return ev;
}

static void green_gate(struct agent *a, struct service_rt *s)
{
	__u32 i;

	for (i = 0; i < s->n[SHIFT_GREEN]; i++)
		if (s->pool[SHIFT_GREEN][i].healthy)
			return;
	/* No kernel sample to time it from: shift_rollback_reaction_seconds (sample ->
	 * map write) would get ~10 us figures for a verdict health_fall probes long,
	 * pulling its p99 down. As an Alertmanager rollback, it records none. */
	/* During a drill green is at 0 for the drill's sake only: it still counts. */
	if (s->n[SHIFT_GREEN] && ((s->weight > 0 && !s->latched) || s->latch_drill))
		rollback_fire(a, s, TRIGGER_HEALTH, "no healthy green backend", 0);
}

static void verdict(struct agent *a, struct service_rt *s, int color, struct backend_rt *b, bool ok)
{
	const struct conf_service *c = s->conf;
	char ab[ADDR_ENDPOINT_LEN];

	probe_close(b);
	if (!hc_count(&b->healthy, &b->hc_ok, &b->hc_fail, ok, c->health_rise, c->health_fall))
		return;
	/* Green's last backend going down: the weight write first (one map write),
	 * then the log (stderr can block when journald lags), the ring rewrite last. */
	if (color == SHIFT_GREEN && !b->healthy)
		green_gate(a, s);
	log_warn("service %s: %s backend %s is %s", c->name, color ? "green" : "blue",
		 addr_format_endpoint(&b->addr, ab, sizeof(ab)), b->healthy ? "UP" : "DOWN");
	apply_pools(a, s);
}

static __u64 backend_due(const struct backend_rt *b)
{
	return hc_due(b->hc_fd >= 0, b->hc_deadline_ns, b->hc_next_ns);
}

/* A probe that could not start for want of something of shiftd's own (file
 * descriptors, memory, local ports): no verdict on the backend this round. */
static bool probe_err_ours(int err)
{
	switch (-err) {
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
	case EADDRNOTAVAIL:
	case EAGAIN:
		return true;
	}
	return false;
}

static void probe_skipped(struct agent *a, const struct service_rt *s, const struct backend_rt *b,
			  int err)
{
	char ab[ADDR_ENDPOINT_LEN];

	if (a->hc_skipped++ % 1000 == 0)
		log_warn("service %s: cannot probe backend %s: %s; no verdict this round (%llu "
			 "probes skipped so far)",
			 s->conf->name, addr_format_endpoint(&b->addr, ab, sizeof(ab)),
			 strerror(-err), (unsigned long long)a->hc_skipped);
}

/* Finish a timed-out probe, start a due one; returns the backend's next deadline. */
static __u64 backend_run(struct agent *a, struct service_rt *s, int color, struct backend_rt *b,
			 __u64 now)
{
	const struct conf_service *c = s->conf;

	if (b->hc_fd >= 0 && now >= b->hc_deadline_ns) {
		int r = probe_step(a, s, b, probe_ready(b));

		verdict(a, s, color, b, r == 1);
	}
	/* A shorter interval after a reload applies from now, not after the old one. */
	if (b->hc_next_ns > now + c->health_interval_ns)
		b->hc_next_ns = now + c->health_interval_ns;
	if (b->hc_fd < 0 && now >= b->hc_next_ns) {
		int err;

		b->hc_next_ns = hc_next_start(b->hc_next_ns ? b->hc_next_ns : now,
					      c->health_interval_ns, now);
		b->hc_started_ns = now;
		b->hc_deadline_ns = now + c->health_timeout_ns;
		b->hc_sent = 0;
		b->hc_len = 0;
		err = probe_start(a, s, b);
		if (err && probe_err_ours(err))
			probe_skipped(a, s, b, err);
		else if (err)
			verdict(a, s, color, b, false);
	}
	return backend_due(b);
}

void health_on_error(struct agent *a, struct service_rt *s, __u32 backend_id)
{
	const struct conf_service *c = s->conf;
	__u64 now;
	__u32 k;
	int col;

	if (c->health == CONF_HC_NONE)
		return;
	now = now_mono_ns();
	for (col = 0; col < SHIFT_COLORS; col++) {
		for (k = 0; k < s->n[col]; k++) {
			struct backend_rt *b = &s->pool[col][k];

			if (b->id != backend_id)
				continue;
			if (hc_early_ok(b->healthy, b->hc_fd >= 0, b->hc_started_ns,
					c->health_interval_ns, now)) {
				b->hc_next_ns = now;
				health_kick(a);
			}
			return;
		}
	}
}

/* health_check = none (perhaps since a reload): no probe in flight, every
 * backend up, as the key says. */
static void health_off(struct agent *a, struct service_rt *s)
{
	bool changed = false;
	__u32 k;
	int c;

	for (c = 0; c < SHIFT_COLORS; c++) {
		for (k = 0; k < s->n[c]; k++) {
			struct backend_rt *b = &s->pool[c][k];

			probe_close(b);
			b->hc_ok = b->hc_fail = 0;
			if (!b->healthy) {
				b->healthy = true;
				changed = true;
			}
		}
	}
	if (changed) {
		log_info("service %s: health_check = none: every backend is up", s->conf->name);
		apply_pools(a, s);
	}
}

void health_run(struct agent *a)
{
	__u64 now = now_mono_ns(), due = HC_NEVER, d;
	__u32 i, k;
	int c;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s)
			continue;
		if (s->conf->health == CONF_HC_NONE) {
			health_off(a, s);
			continue;
		}
		for (c = 0; c < SHIFT_COLORS; c++) {
			for (k = 0; k < s->n[c]; k++) {
				d = backend_run(a, s, c, &s->pool[c][k], now);
				if (d < due)
					due = d;
			}
		}
	}
	a->health_due_ns = due;
}

void health_lost(struct agent *a, __u64 lost_ns)
{
	__u32 i, k;
	int c;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s || s->conf->health == CONF_HC_NONE)
			continue;
		for (c = 0; c < SHIFT_COLORS; c++) {
			for (k = 0; k < s->n[c]; k++) {
				struct backend_rt *b = &s->pool[c][k];

				if (b->hc_fd >= 0)
					b->hc_deadline_ns =
						hc_extend(b->hc_deadline_ns, b->hc_started_ns,
							  s->conf->health_timeout_ns, lost_ns);
			}
		}
	}
	a->health_lost_ns += lost_ns;
	/* Deadlines moved later: the next run recomputes the earliest. */
}

void health_tick(struct agent *a)
{
	health_run(a);
}

/* The backend probing on fd, or NULL (it finished since the event was queued). */
static struct backend_rt *probe_find(struct service_rt *s, int fd, int *color)
{
	__u32 k;
	int c;

	for (c = 0; c < SHIFT_COLORS; c++)
		for (k = 0; k < s->n[c]; k++)
			if (s->pool[c][k].hc_fd == fd) {
				*color = c;
				return &s->pool[c][k];
			}
	return NULL;
}

void health_events(struct agent *a)
{
	struct epoll_event evs[64];
	int n, i;

	if (a->health_epfd <= 0)
		return;
	n = epoll_wait(a->health_epfd, evs, 64, 0);
	for (i = 0; i < n; i++) {
		__u32 sid = (__u32)(evs[i].data.u64 >> 32);
		int fd = (int)(__u32)evs[i].data.u64, color = 0, r;
		struct service_rt *s = sid < SHIFT_MAX_SERVICES ? a->svc[sid] : NULL;
		struct backend_rt *b;

		if (!s || s->conf->health == CONF_HC_NONE)
			continue;
		b = probe_find(s, fd, &color);
		if (!b)
			continue;
		r = probe_step(a, s, b, evs[i].events);
		/* The next start is later than this probe's timeout, which the
		 * loop's deadline already counts: that deadline stays safe. */
		if (r >= 0)
			verdict(a, s, color, b, r == 1);
	}
}
