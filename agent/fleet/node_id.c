// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "config/errmsg.h"
#include "fleet/node_id.h"

bool fleet_node_id_valid(const char *id)
{
	size_t i;

	for (i = 0; i < FLEET_NODE_ID_HEX; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return id[i] == '\0';
}

static int fresh_id(char id[FLEET_NODE_ID_LEN], char *why, size_t wl)
{
	unsigned char b[FLEET_NODE_ID_HEX / 2];
	size_t i;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		int e = errno ? errno : EIO;

		seterr(why, wl, "getrandom: %s", strerror(e));
		return -e;
	}
	for (i = 0; i < sizeof(b); i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* 0, -ENOENT (no file), -EINVAL (not an id), or -errno. */
static int read_id(const char *path, char id[FLEET_NODE_ID_LEN], char *why, size_t wl)
{
	char buf[FLEET_NODE_ID_HEX + 2];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0) {
		e = errno;
		if (e != ENOENT)
			seterr(why, wl, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	n = read(fd, buf, sizeof(buf));
	e = errno;
	close(fd);
	if (n < 0) {
		seterr(why, wl, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	if (n == FLEET_NODE_ID_HEX + 1 && buf[FLEET_NODE_ID_HEX] == '\n')
		n--;
	buf[n < 0 ? 0 : n] = '\0';
	if (n != FLEET_NODE_ID_HEX || !fleet_node_id_valid(buf)) {
		seterr(why, wl, "%s does not hold a node id (%d lowercase hex digits)", path,
		       FLEET_NODE_ID_HEX);
		return -EINVAL;
	}
	memcpy(id, buf, FLEET_NODE_ID_LEN);
	return 0;
}

static int write_id(const char *path, const char *id, char *why, size_t wl)
{
	char tmp[4200], line[FLEET_NODE_ID_LEN + 1];
	int fd, e = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp)) {
		seterr(why, wl, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(line, sizeof(line), "%s\n", id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		e = errno;
		seterr(why, wl, "cannot create %s: %s", tmp, strerror(e));
		return -e;
	}
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) || fsync(fd))
		e = errno ? errno : EIO;
	if (close(fd) && !e)
		e = errno;
	if (!e && rename(tmp, path))
		e = errno;
	if (e) {
		seterr(why, wl, "cannot write %s: %s", path, strerror(e));
		unlink(tmp);
		return -e;
	}
	return 0;
}

int fleet_node_id_load(const char *state_dir, char id[FLEET_NODE_ID_LEN], char *why, size_t wl)
{
	char path[4096], bad[512] = "";
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", state_dir, FLEET_NODE_ID_FILE) >=
	    (int)sizeof(path)) {
		rc = fresh_id(id, why, wl);
		if (!rc)
			seterr(why, wl, "state_dir too long for %s", FLEET_NODE_ID_FILE);
		return rc ? rc : -ENAMETOOLONG;
	}
	rc = read_id(path, id, why, wl);
	if (rc == 0)
		return 0;
	if (rc != -ENOENT && rc != -EINVAL) {
		/* Unreadable: keep the file (an operator may fix its mode) and run
		 * with an id of this run's own. */
		snprintf(bad, sizeof(bad), "%s", why);
		if (fresh_id(id, why, wl) == 0)
			seterr(why, wl, "%s", bad);
		return rc;
	}
	if (rc == -EINVAL)
		snprintf(bad, sizeof(bad), "%s", why);
	rc = fresh_id(id, why, wl);
	if (!rc)
		rc = write_id(path, id, why, wl);
	if (!rc)
		seterr(why, wl, "%s%s; a new one written", bad, bad[0] ? "" : "no node id yet");
	return rc ? rc : 1;
}
