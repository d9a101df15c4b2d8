/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* shiftd's side of the control socket (protocol: ctl_proto.h). */
#ifndef SHIFT_CONTROL_H
#define SHIFT_CONTROL_H

#include <sys/types.h>

#include "agent.h"

/* The socket file this process bound (control_open()), by identity. */
struct ctl_bound {
	dev_t dev;
	ino_t ino;
};

/*
 * Bind the unix socket (mode and group from the config); returns the fd or
 * -errno: -EADDRINUSE when a process listens on the path already (it is not
 * stale; nothing is changed). *group: control_socket_group's gid, 0 for
 * none. Both hold until the next start: the socket file's mode and group are
 * set here, once. *bound: the file, for control_close().
 */
int control_open(const struct shift_conf *c, gid_t *group, struct ctl_bound *bound);
/* Close fd and unlink path, if path is still the file control_open() bound. */
void control_close(int fd, const char *path, const struct ctl_bound *bound);
/* Accept and serve one client, allowing root and group (control_open());
 * reload_cb handles "reload". */
void control_serve(struct agent *a, int lfd, gid_t group,
		   int (*reload_cb)(struct agent *a, char *err, size_t errlen));
#endif
