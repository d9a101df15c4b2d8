// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One shiftd per state_dir (ops/instance.c): the lock refuses a second
 * holder and names the first one's pid, instance_running() sees the holder
 * without disturbing it, and a holder killed with SIGKILL frees the lock;
 * bpffs_dir's lock likewise, its holder named from /proc/locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "ops/instance.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/shift-test-instance-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/" INSTANCE_LOCK_NAME, f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_no_file(void **state)
{
	struct fixture *f = *state;
	pid_t pid = 123;

	assert_int_equal(instance_running(f->dir, &pid), 0);
	assert_int_equal(pid, 0);
	/* Asking creates nothing. */
	assert_int_equal(access(f->path, F_OK), -1);
}

static void test_lock_refuses_second(void **state)
{
	struct fixture *f = *state;
	char err[256], buf[32];
	pid_t holder = -1, pid = -1;
	int fd, fd2, n, rfd;

	fd = instance_lock(f->dir, &holder, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(holder, 0);
	/* The file says who holds it. */
	rfd = open(f->path, O_RDONLY);
	assert_true(rfd >= 0);
	n = (int)read(rfd, buf, sizeof(buf) - 1);
	close(rfd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal(atoi(buf), getpid());
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

	assert_int_equal(instance_running(f->dir, &pid), 1);
	assert_int_equal(pid, getpid());
	/* A probe leaves the holder holding. */
	assert_int_equal(instance_running(f->dir, &pid), 1);

	/* A second open file description is a second shiftd to flock. */
	fd2 = instance_lock(f->dir, &holder, err, sizeof(err));
	assert_int_equal(fd2, -EWOULDBLOCK);
	assert_int_equal(holder, getpid());
	assert_non_null(strstr(err, INSTANCE_LOCK_NAME));

	close(fd);
	assert_int_equal(instance_running(f->dir, &pid), 0);
	assert_int_equal(pid, 0);
	fd = instance_lock(f->dir, &holder, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
}

/* A child that takes dir's lock with lock() and holds it until killed; its
 * pid once it holds it. */
static pid_t holder_spawn(const char *dir, int (*lock)(const char *, pid_t *, char *, size_t))
{
	char err[256], c;
	pid_t child, holder;
	int p[2], fd;

	assert_int_equal(pipe(p), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(p[0]);
		fd = lock(dir, &holder, err, sizeof(err));
		c = fd >= 0 ? 'y' : 'n';
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	assert_int_equal(c, 'y');
	return child;
}

/* A holder that dies without a word (SIGKILL) leaves the lock free, and
 * its pid in the file is not taken for a live one. */
static void test_killed_holder(void **state)
{
	struct fixture *f = *state;
	char err[256];
	pid_t child, holder, pid = 0;
	int fd, st, i;

	child = holder_spawn(f->dir, instance_lock);
	assert_int_equal(instance_running(f->dir, &pid), 1);
	assert_int_equal(pid, child);
	fd = instance_lock(f->dir, &holder, err, sizeof(err));
	assert_int_equal(fd, -EWOULDBLOCK);
	assert_int_equal(holder, child);

	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &st, 0), child);
	for (i = 0; i < 100 && instance_running(f->dir, &pid) != 0; i++)
		usleep(10000);
	assert_int_equal(instance_running(f->dir, &pid), 0);
	fd = instance_lock(f->dir, &holder, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
}

static void test_bad_dir(void **state)
{
	char err[256];
	pid_t holder, pid;

	(void)state;
	assert_int_equal(instance_lock("/nonexistent-shift-dir/x", &holder, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-shift-dir/x/" INSTANCE_LOCK_NAME));
	assert_int_equal(instance_running("/nonexistent-shift-dir/x", &pid), 0);
}

/*
 * bpffs_dir's lock: a second holder of the directory is refused, named by
 * /proc/locks (here: a child holding it, then this process), and the
 * directory is free again once the holder is gone. The directory is any
 * directory: flock is the same on bpffs.
 */
static void test_pins_lock(void **state)
{
	struct fixture *f = *state;
	char err[256];
	pid_t child, holder = -1;
	int fd, fd2, st;

	child = holder_spawn(f->dir, instance_lock_pins);
	fd = instance_lock_pins(f->dir, &holder, err, sizeof(err));
	assert_int_equal(fd, -EWOULDBLOCK);
	assert_int_equal(holder, child);
	assert_non_null(strstr(err, f->dir));
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &st, 0), child);

	fd = instance_lock_pins(f->dir, &holder, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(holder, 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	/* Its own second open file description is a second shiftd to flock. */
	fd2 = instance_lock_pins(f->dir, &holder, err, sizeof(err));
	assert_int_equal(fd2, -EWOULDBLOCK);
	assert_int_equal(holder, getpid());
	/* The state_dir lock is another lock: both can be held. */
	fd2 = instance_lock(f->dir, &holder, err, sizeof(err));
	assert_true(fd2 >= 0);
	close(fd2);
	close(fd);
	fd = instance_lock_pins(f->dir, &holder, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(instance_lock_pins("/nonexistent-shift-dir/x", &holder, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-shift-dir/x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_refuses_second, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_holder, setup, teardown),
		cmocka_unit_test(test_bad_dir),
		cmocka_unit_test_setup_teardown(test_pins_lock, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
