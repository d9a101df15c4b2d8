// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control socket's file (control_open, control_close): a socket someone
 * listens on is not taken for a stale one, and an exit removes the path only
 * while it is still the file this process bound. Both used to be unlinked
 * unconditionally, so a second shiftd left the first one unreachable. The
 * clients are served by readiness, status answered off the loop.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include "agent.h"
#include "control/control.h"
#include "control/status.h"
#include "ops/log.h"

struct fixture {
	char dir[64];
	struct shift_conf c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/shift-test-ctl-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->c.control_socket, sizeof(f->c.control_socket), "%s/shiftd.sock", f->dir);
	f->c.control_socket_mode = 0600;
	/* The refusals are expected here: keep the output to the test's lines. */
	shift_log_init("test_control_sock", SHIFT_LOG_ERROR - 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[CONF_PATH_LEN + 8];

	unlink(f->c.control_socket);
	snprintf(p, sizeof(p), "%s.moved", f->c.control_socket);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static ino_t ino_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_ino;
}

/* A second open on a path someone listens on: refused, the file untouched. */
static void test_live_socket_kept(void **state)
{
	struct fixture *f = *state;
	struct ctl_bound b1, b2;
	gid_t g;
	int fd1, fd2;
	ino_t ino;

	fd1 = control_open(&f->c, &g, &b1);
	assert_true(fd1 >= 0);
	ino = ino_of(f->c.control_socket);
	assert_int_equal(ino, b1.ino);

	fd2 = control_open(&f->c, &g, &b2);
	assert_int_equal(fd2, -EADDRINUSE);
	assert_int_equal(ino_of(f->c.control_socket), ino);

	control_close(fd1, f->c.control_socket, &b1);
	assert_int_equal(access(f->c.control_socket, F_OK), -1);
}

/* A socket file nobody listens on (a killed shiftd's) is replaced. */
static void test_stale_socket_replaced(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_bound b;
	gid_t g;
	int s, fd;
	ino_t stale;

	strcpy(sa.sun_path, f->c.control_socket);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s); /* never listened: what a dead process leaves */
	stale = ino_of(f->c.control_socket);
	assert_true(stale != 0);

	fd = control_open(&f->c, &g, &b);
	assert_true(fd >= 0);
	assert_int_equal(ino_of(f->c.control_socket), b.ino);
	/* The new one listens (a file system may give the inode number again). */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	control_close(fd, f->c.control_socket, &b);
	assert_int_equal(access(f->c.control_socket, F_OK), -1);
}

/* The path became another file meanwhile: the exit leaves it alone. */
static void test_close_leaves_another_file(void **state)
{
	struct fixture *f = *state;
	struct ctl_bound b1, b2;
	char moved[CONF_PATH_LEN + 8];
	gid_t g;
	int fd1, fd2;
	ino_t other;

	fd1 = control_open(&f->c, &g, &b1);
	assert_true(fd1 >= 0);
	snprintf(moved, sizeof(moved), "%s.moved", f->c.control_socket);
	assert_int_equal(rename(f->c.control_socket, moved), 0);
	fd2 = control_open(&f->c, &g, &b2);
	assert_true(fd2 >= 0);
	other = ino_of(f->c.control_socket);
	assert_int_equal(other, b2.ino);

	control_close(fd1, f->c.control_socket, &b1);
	assert_int_equal(ino_of(f->c.control_socket), other);
	control_close(fd2, f->c.control_socket, &b2);
	assert_int_equal(access(f->c.control_socket, F_OK), -1);
	/* And a path gone already is no error. */
	control_close(-1, f->c.control_socket, &b2);
}

static int client(const struct fixture *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	strcpy(sa.sun_path, f->c.control_socket);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return s;
}

/* What the server has sent s so far, without waiting. */
static size_t answer(int s, char *buf, size_t len)
{
	ssize_t n = recv(s, buf, len - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

/*
 * The clients are served by readiness (control_run() never waits): a ping is
 * answered with silent clients held, a client over CTL_MAX_CONNS is told busy,
 * the read budget answers and closes the silent ones, and control_stop()
 * frees the clients still open (ASan).
 */
static void test_serve_without_waiting(void **state)
{
	struct fixture *f = *state;
	int silent[CTL_MAX_CONNS], s, i, fd;
	struct agent *a = calloc(1, sizeof(*a));
	struct ctl_server srv;
	struct ctl_bound b;
	char buf[256];
	__u64 t0;
	gid_t g;

	if (getuid()) {
		free(a);
		skip(); /* the peer check allows root here */
	}
	assert_non_null(a);
	a->conf = &f->c;
	fd = control_open(&f->c, &g, &b);
	assert_true(fd >= 0);
	assert_int_equal(control_start(&srv, a, fd, g, NULL), 0);
	assert_true(control_fd(&srv) >= 0);

	for (i = 0; i < CTL_MAX_CONNS; i++)
		silent[i] = client(f);
	t0 = now_mono_ns();
	control_run(&srv);
	/* A ping behind them: answered in this same turn, nothing waited. */
	s = client(f);
	assert_int_equal(write(s, "ping\n", 5), 5);
	control_run(&srv);
	control_run(&srv);
	assert_true(now_mono_ns() - t0 < 100 * 1000000ull);
	assert_true(answer(s, buf, sizeof(buf)) > 0);
	/* All 16 held: the 17th was told busy. */
	assert_string_equal(buf, "ERR 1 busy: 16 control connections open, try again\n");
	close(s);
	control_run(&srv);
	for (i = 0; i < CTL_MAX_CONNS; i++)
		assert_int_equal(answer(silent[i], buf, sizeof(buf)), 0);

	/* Past the read budget the tick answers and closes them. */
	usleep(600 * 1000);
	control_tick(&srv);
	for (i = 0; i < CTL_MAX_CONNS; i++) {
		assert_true(answer(silent[i], buf, sizeof(buf)) > 0);
		assert_string_equal(buf, "ERR 2 empty request\n");
		assert_int_equal(recv(silent[i], buf, sizeof(buf), MSG_DONTWAIT), 0); /* EOF */
		close(silent[i]);
	}
	/* A slot free again: a ping is answered OK. */
	s = client(f);
	assert_int_equal(write(s, "ping\n", 5), 5);
	control_run(&srv);
	control_run(&srv);
	assert_true(answer(s, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "OK\n");
	close(s);

	/* Stopped with clients open: they are closed and freed. */
	silent[0] = client(f);
	silent[1] = client(f);
	control_run(&srv);
	control_stop(&srv);
	assert_int_equal(recv(silent[0], buf, sizeof(buf), MSG_DONTWAIT), 0);
	close(silent[0]);
	close(silent[1]);
	control_close(fd, f->c.control_socket, &b);
	free(a);
}

/* Serve until s has its whole answer (EOF), at most 10 s; the answer in *out. */
static size_t serve_until_eof(struct ctl_server *srv, int s, char **out)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	__u64 end = now_mono_ns() + 10 * 1000000000ull;

	assert_non_null(buf);
	while (now_mono_ns() < end) {
		struct pollfd p = { .fd = control_fd(srv), .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 10) > 0)
			control_run(srv);
		n = recv(s, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0) {
			len += (size_t)n;
			if (len + 1 == cap) {
				cap *= 2;
				buf = realloc(buf, cap);
				assert_non_null(buf);
			}
		}
	}
	buf[len] = '\0';
	*out = buf;
	return len;
}

/*
 * status is answered off the loop (status_worker.h): control_run() takes the
 * request and returns without the answer; a ping is answered meanwhile; the
 * status thread's answer, the bytes status_agent_render() gives on the loop,
 * is delivered by a later control_run(). A client that hangs up while it
 * waits is closed; at a stop a waiting client is told why it gets no answer.
 */
static void test_status_off_loop(void **state)
{
	struct fixture *f = *state;
	struct agent *a = calloc(1, sizeof(*a));
	struct ctl_server srv;
	struct ctl_bound b;
	char *got, *want, buf[256];
	size_t n, wl;
	int s, p, fd, i;
	gid_t g;

	if (getuid()) {
		free(a);
		skip(); /* the peer check allows root here */
	}
	assert_non_null(a);
	a->conf = &f->c;
	/* No maps: no service, but the agent's part of the answer is there. */
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		a->maps.fd[i] = -1;
	a->n_ifaces = 1;
	snprintf(a->ifaces[0].name, CONF_IFNAMSIZ, "eth0");
	fd = control_open(&f->c, &g, &b);
	assert_true(fd >= 0);
	assert_int_equal(control_start(&srv, a, fd, g, NULL), 0);
	assert_true(srv.status.started);

	for (i = 0; i < 2; i++) {
		const char *req = i ? "status text\n" : "status json\n";

		s = client(f);
		assert_int_equal(write(s, req, strlen(req)), (ssize_t)strlen(req));
		control_run(&srv);
		/* Taken, not answered in this turn: the thread has it. */
		assert_int_equal(answer(s, buf, sizeof(buf)), 0);
		p = client(f);
		assert_int_equal(write(p, "ping\n", 5), 5);
		control_run(&srv);
		assert_true(answer(p, buf, sizeof(buf)) > 0);
		assert_string_equal(buf, "OK\n");
		close(p);
		n = serve_until_eof(&srv, s, &got);
		assert_int_equal(
			status_agent_render(a, NULL, i ? STATUS_TEXT : STATUS_JSON, &want, &wl), 0);
		assert_int_equal(n, 3 + wl);
		assert_memory_equal(got, "OK\n", 3);
		assert_memory_equal(got + 3, want, wl);
		free(got);
		free(want);
		close(s);
	}
	/* An unknown service: the thread's -ENOENT as the loop said it. */
	s = client(f);
	assert_int_equal(write(s, "status nope json\n", 17), 17);
	serve_until_eof(&srv, s, &got);
	assert_string_equal(got, "ERR 1 no service 'nope'\n");
	free(got);
	close(s);

	/* Hung up while waiting: closed when the hang-up is seen, or once answered. */
	s = client(f);
	assert_int_equal(write(s, "status\n", 7), 7);
	control_run(&srv);
	close(s);
	for (i = 0; i < 100 && srv.n_served; i++) {
		struct pollfd q = { .fd = control_fd(&srv), .events = POLLIN };

		if (poll(&q, 1, 10) > 0)
			control_run(&srv);
	}
	assert_int_equal(srv.n_served, 0);

	/* Stopped while one waits: it is told, then closed. */
	s = client(f);
	assert_int_equal(write(s, "status json\n", 12), 12);
	control_run(&srv);
	control_stop(&srv);
	assert_true(answer(s, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "ERR 1 shiftd is stopping: status not collected; ask again once "
				 "it runs\n");
	assert_int_equal(recv(s, buf, sizeof(buf), MSG_DONTWAIT), 0);
	close(s);
	control_close(fd, f->c.control_socket, &b);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_live_socket_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_socket_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_leaves_another_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serve_without_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_off_loop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
