// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control socket's file (control_open, control_close): a socket someone
 * listens on is not taken for a stale one, and an exit removes the path only
 * while it is still the file this process bound. Both used to be unlinked
 * unconditionally, so a second shiftd left the first one unreachable.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include "control/control.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_live_socket_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_socket_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_leaves_another_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
