/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* shiftd's side of the control socket (protocol: ctl_proto.h). */
#ifndef SHIFT_CONTROL_H
#define SHIFT_CONTROL_H

#include "agent.h"

/*
 * Bind the unix socket (mode and group from the config); returns the fd or
 * -errno. *group: control_socket_group's gid, 0 for none. Both hold until
 * the next start: the socket file's mode and group are set here, once.
 */
int control_open(const struct shift_conf *c, gid_t *group);
/* Accept and serve one client, allowing root and group (control_open());
 * reload_cb handles "reload". */
void control_serve(struct agent *a, int lfd, gid_t group,
		   int (*reload_cb)(struct agent *a, char *err, size_t errlen));
#endif
