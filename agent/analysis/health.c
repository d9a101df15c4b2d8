// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
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

/* Wait for the socket to become writable (connected) or readable (answer). */
static void probe_watch(struct agent *a, struct backend_rt *b, __u32 events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = b };
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

static int probe_start(struct agent *a, struct backend_rt *b)
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
	probe_watch(a, b, EPOLLOUT, EPOLL_CTL_ADD);
	return 0;
}

/* 1 healthy, 0 unhealthy, -1 still waiting. */
static int probe_progress(struct agent *a, const struct service_rt *s, struct backend_rt *b)
{
	const struct conf_service *c = s->conf;
	struct pollfd pfd = { .fd = b->hc_fd, .events = POLLOUT | POLLIN };
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (poll(&pfd, 1, 0) <= 0)
		return -1;
	if (getsockopt(b->hc_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr)
		return 0;
	if (c->health == CONF_HC_TCP)
		return (pfd.revents & POLLOUT) ? 1 : 0;

	/* HTTP: write the request once connected, then read the status line. */
	if (!b->hc_sent && (pfd.revents & POLLOUT)) {
		char req[512], host[ADDR_ENDPOINT_LEN];
		int n;

		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: shiftd-health\r\n"
			     "Connection: close\r\n\r\n",
			     c->health_path, addr_format_endpoint(&b->addr, host, sizeof(host)));
		if (n < 0 || (size_t)n >= sizeof(req) || write(b->hc_fd, req, (size_t)n) != n)
			return 0;
		b->hc_sent = (__u32)n;
		/* Now the answer: stop waking on "writable". */
		probe_watch(a, b, EPOLLIN, EPOLL_CTL_MOD);
		return -1;
	}
	if (pfd.revents & (POLLIN | POLLHUP)) {
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

static void green_gate(struct agent *a, struct service_rt *s)
{
	__u32 i;

	for (i = 0; i < s->n[SHIFT_GREEN]; i++)
		if (s->pool[SHIFT_GREEN][i].healthy)
			return;
	/* The reaction is timed from the failed probe's verdict. */
	/* During a drill green is at 0 for the drill's sake only: it still counts. */
	if (s->n[SHIFT_GREEN] && ((s->weight > 0 && !s->latched) || s->latch_drill))
		rollback_fire(a, s, TRIGGER_HEALTH, "no healthy green backend", now_mono_ns());
}

static void verdict(struct agent *a, struct service_rt *s, int color, struct backend_rt *b, bool ok)
{
	const struct conf_service *c = s->conf;
	char ab[ADDR_ENDPOINT_LEN];
	bool was = b->healthy;

	if (ok) {
		b->hc_fail = 0;
		if (b->hc_ok < c->health_rise)
			b->hc_ok++;
		if (!b->healthy && b->hc_ok >= c->health_rise)
			b->healthy = true;
	} else {
		b->hc_ok = 0;
		if (b->hc_fail < c->health_fall)
			b->hc_fail++;
		if (b->healthy && b->hc_fail >= c->health_fall)
			b->healthy = false;
	}
	if (was == b->healthy)
		return;
	log_warn("service %s: %s backend %s is %s", c->name, color ? "green" : "blue",
		 addr_format_endpoint(&b->addr, ab, sizeof(ab)), b->healthy ? "UP" : "DOWN");
	apply_pools(a, s);
	if (color == SHIFT_GREEN && !b->healthy)
		green_gate(a, s);
}

void health_tick(struct agent *a)
{
	__u64 now = now_mono_ns();
	__u32 i, k;
	int c;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s || s->conf->health == CONF_HC_NONE)
			continue;
		for (c = 0; c < SHIFT_COLORS; c++) {
			for (k = 0; k < s->n[c]; k++) {
				struct backend_rt *b = &s->pool[c][k];
				int r;

				if (b->hc_fd >= 0) {
					r = probe_progress(a, s, b);
					if (r < 0 &&
					    now - b->hc_started_ns < s->conf->health_timeout_ns)
						continue;
					probe_close(b);
					verdict(a, s, c, b, r == 1);
					continue;
				}
				if (now < b->hc_next_ns)
					continue;
				b->hc_next_ns = now + s->conf->health_interval_ns;
				b->hc_started_ns = now;
				if (probe_start(a, b))
					verdict(a, s, c, b, false);
			}
		}
	}
}

void health_events(struct agent *a)
{
	struct epoll_event evs[64];
	int n;

	if (a->health_epfd <= 0)
		return;
	/* Which sockets are ready does not matter: the pass below polls each
	 * probe without blocking, and a probe's state lives in its backend. */
	n = epoll_wait(a->health_epfd, evs, 64, 0);
	if (n > 0)
		health_tick(a);
}
