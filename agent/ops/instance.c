// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "ops/instance.h"

/* 1 s in 20 ms steps: long enough for an instance_running() probe to let go. */
#define INSTANCE_LOCK_TRIES 50
#define INSTANCE_LOCK_STEP_US 20000

static int lock_path(const char *state_dir, char *buf, size_t len)
{
	if (snprintf(buf, len, "%s/" INSTANCE_LOCK_NAME, state_dir) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* The pid the holder wrote, 0 when the file holds none (yet). */
static pid_t read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long v;
	char *end;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || v <= 0 || v > INT_MAX)
		return 0;
	return (pid_t)v;
}

/*
 * flock(LOCK_EX) on fd, waiting out EINTR, and EWOULDBLOCK up to tries
 * times a step apart (a prober's shared lock lets go at once): 0 or -errno.
 */
static int lock_ex(int fd, int tries)
{
	int i;

	for (i = 0; flock(fd, LOCK_EX | LOCK_NB); i++) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK && i < tries) {
			usleep(INSTANCE_LOCK_STEP_US);
			continue;
		}
		return -errno;
	}
	return 0;
}

/* err for what's lock not taken (rc): its holder when known (0: not). */
static void lock_failed(char *err, size_t errlen, const char *what, int rc, pid_t holder)
{
	if (rc != -EWOULDBLOCK)
		snprintf(err, errlen, "cannot lock %s: %s", what, strerror(-rc));
	else if (holder)
		snprintf(err, errlen, "%s is held by shiftd pid %d", what, (int)holder);
	else
		snprintf(err, errlen, "%s is held by another process", what);
}

int instance_lock(const char *state_dir, pid_t *holder, char *err, size_t errlen)
{
	char path[PATH_MAX], pid[32];
	int fd, rc, n;

	*holder = 0;
	rc = lock_path(state_dir, path, sizeof(path));
	if (rc) {
		snprintf(err, errlen, "state_dir %s: path too long for the lock file", state_dir);
		return rc;
	}
	/* 0600, as everything shiftd keeps in state_dir: root reads the pid. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the lock file %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = lock_ex(fd, INSTANCE_LOCK_TRIES);
	if (rc) {
		if (rc == -EWOULDBLOCK)
			*holder = read_pid(fd);
		lock_failed(err, errlen, path, rc, *holder);
		close(fd);
		return rc;
	}
	/* For the message of the one refused, and for operators (cat it). */
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n) {
		rc = -errno;
		snprintf(err, errlen, "cannot write the pid into %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	err[0] = '\0';
	return fd;
}

/*
 * The pid holding a flock on the file st names, from /proc/locks ("1: FLOCK
 * ADVISORY WRITE PID MAJ:MIN:INODE ..." with the device in hex); 0 when none
 * is listed or the file cannot be read (the refusal then names no pid).
 */
static pid_t flock_holder(const struct stat *st)
{
	unsigned int maj, min;
	unsigned long ino;
	char line[256], type[16];
	pid_t found = 0;
	FILE *f;
	int pid;

	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* A blocked waiter's line starts "1: -> FLOCK": it holds nothing. */
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", type, &pid, &maj, &min, &ino) !=
			    5 ||
		    strcmp(type, "FLOCK"))
			continue;
		if (maj == major(st->st_dev) && min == minor(st->st_dev) && ino == st->st_ino &&
		    pid > 0)
			found = (pid_t)pid;
	}
	fclose(f);
	return found;
}

int instance_lock_pins(const char *bpffs_dir, pid_t *holder, char *err, size_t errlen)
{
	char what[PATH_MAX + 16];
	struct stat st;
	int fd, rc;

	*holder = 0;
	fd = open(bpffs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open bpffs_dir %s to lock it: %s", bpffs_dir,
			 strerror(-rc));
		return rc;
	}
	rc = lock_ex(fd, 0);
	if (rc == 0) {
		err[0] = '\0';
		return fd;
	}
	if (rc == -EWOULDBLOCK && !fstat(fd, &st))
		*holder = flock_holder(&st);
	snprintf(what, sizeof(what), "bpffs_dir %s", bpffs_dir);
	lock_failed(err, errlen, what, rc, *holder);
	close(fd);
	return rc;
}

int instance_running(const char *state_dir, pid_t *pid)
{
	char path[PATH_MAX];
	int fd, rc;

	*pid = 0;
	rc = lock_path(state_dir, path, sizeof(path));
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		/* No shiftd ever started with this state_dir. */
		return errno == ENOENT ? 0 : -errno;
	while ((rc = flock(fd, LOCK_SH | LOCK_NB)) && errno == EINTR)
		;
	if (rc == 0) {
		flock(fd, LOCK_UN);
		rc = 0;
	} else if (errno == EWOULDBLOCK) {
		*pid = read_pid(fd);
		rc = 1;
	} else {
		rc = -errno;
	}
	close(fd);
	return rc;
}
