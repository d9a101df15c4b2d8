// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Health probes against real sockets on loopback, driven as shiftd's loop
 * drives them (health_events() on the probes' epoll set, health_run() at the
 * deadline): what a verdict is, and what is shiftd's own trouble rather than
 * the backend's. The agent has no maps (every fd -1): pool writes fail as a
 * broken map's would, which the verdicts do not depend on.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "agent.h"
#include "analysis/health.h"
#include "ops/clock.h"

#define MS 1000000ULL

struct rig {
	struct agent *a;
	struct service_rt *s;
	struct conf_service cs;
	int lfd;
	struct sockaddr_in sa;
};

static void rig_init(struct rig *r, enum conf_health kind)
{
	socklen_t sl = sizeof(r->sa);
	struct backend_rt *b;
	int i;

	memset(r, 0, sizeof(*r));
	r->a = calloc(1, sizeof(*r->a));
	r->s = calloc(1, sizeof(*r->s));
	assert_non_null(r->a);
	assert_non_null(r->s);
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		r->a->maps.fd[i] = -1;
	r->a->maps.weight_cas_fd = -1;
	snprintf(r->a->state_path, sizeof(r->a->state_path), "/nonexistent/shift-test/state");

	r->sa.sin_family = AF_INET;
	r->sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->lfd >= 0);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&r->sa, sizeof(r->sa)), 0);
	assert_int_equal(listen(r->lfd, 64), 0);
	assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&r->sa, &sl), 0);

	snprintf(r->cs.name, sizeof(r->cs.name), "web");
	r->cs.health = kind;
	snprintf(r->cs.health_path, sizeof(r->cs.health_path), "/readyz");
	r->cs.health_interval_ns = 50 * MS;
	r->cs.health_timeout_ns = 40 * MS;
	r->cs.health_rise = 2;
	r->cs.health_fall = 2;
	r->s->conf = &r->cs;
	r->s->id = 1;
	r->s->n[SHIFT_BLUE] = 1;
	b = &r->s->pool[SHIFT_BLUE][0];
	b->addr.family = SHIFT_AF_INET;
	b->addr.port = r->sa.sin_port;
	memcpy(b->addr.addr, &r->sa.sin_addr, 4);
	b->healthy = true;
	b->hc_fd = -1;
	r->a->svc[1] = r->s;
	assert_true(health_fd(r->a) >= 0);
}

static void rig_free(struct rig *r)
{
	health_stop(r->s);
	close(r->a->health_epfd);
	close(r->lfd);
	free(r->s);
	free(r->a);
}

/*
 * Run the probes for ms as shiftd's loop does; the most consecutive failures
 * the backend showed meanwhile.
 */
static __u32 run_for(struct rig *r, __u64 ms)
{
	const struct backend_rt *b = &r->s->pool[SHIFT_BLUE][0];
	__u64 end = now_mono_ns() + ms * MS;
	struct epoll_event ev;
	__u32 worst = 0;

	while (now_mono_ns() < end) {
		if (epoll_wait(r->a->health_epfd, &ev, 1, 2) > 0)
			health_events(r->a);
		if (now_mono_ns() >= r->a->health_due_ns)
			health_run(r->a);
		if (b->hc_fail > worst)
			worst = b->hc_fail;
	}
	return worst;
}

/* Answer each probe with a 200, then close abortively (SO_LINGER 0): the
 * client sees the answer and a RST right behind it. */
static void *abortive_200(void *arg)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	const struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct rig *r = arg;
	int c;

	while ((c = accept(r->lfd, NULL, NULL)) >= 0) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		ssize_t w;

		/* The request arrives; leave it unread, as a responder that
		 * answers the request line alone does. */
		(void)poll(&p, 1, 100);
		w = write(c, ok, sizeof(ok) - 1);
		(void)w;
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c);
	}
	return NULL;
}

static void test_answer_then_reset(void **state)
{
	struct rig r;
	pthread_t t;
	__u32 worst;

	(void)state;
	rig_init(&r, CONF_HC_HTTP);
	assert_int_equal(pthread_create(&t, NULL, abortive_200, &r), 0);
	worst = run_for(&r, 600);
	/* Ends the server's accept(). */
	shutdown(r.lfd, SHUT_RDWR);
	pthread_join(t, NULL);
	assert_true(r.s->pool[SHIFT_BLUE][0].hc_ok >= 2);
	if (worst)
		fail_msg("a 200 followed by a reset failed %u probe(s) in a row", worst);
	assert_true(r.s->pool[SHIFT_BLUE][0].healthy);
	rig_free(&r);
}

/* shiftd out of file descriptors: no probe starts, and no backend is judged. */
static void test_no_descriptor(void **state)
{
	struct rlimit old, low;
	int fds[256], n = 0, fd;
	struct rig r;
	__u32 worst;

	(void)state;
	rig_init(&r, CONF_HC_TCP);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 256;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < 256 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fds[n++] = fd;
	assert_int_equal(errno, EMFILE);
	worst = run_for(&r, 300);
	while (n)
		close(fds[--n]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	if (worst)
		fail_msg("shiftd's EMFILE counted as %u failed probe(s) of the backend", worst);
	assert_true(r.s->pool[SHIFT_BLUE][0].healthy);
	assert_true(r.a->hc_skipped >= 3);
	/* Descriptors again: the probes run and pass. */
	run_for(&r, 200);
	assert_true(r.s->pool[SHIFT_BLUE][0].hc_ok >= 1);
	rig_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer_then_reset),
		cmocka_unit_test(test_no_descriptor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
