/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* shiftd's side of the control socket (protocol: ctl_proto.h). */
#ifndef SHIFT_CONTROL_H
#define SHIFT_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <linux/types.h>

#include "agent.h"
#include "control/status_worker.h"

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
/*
 * The control socket's clients, served from the agent's loop without ever
 * waiting on one: each connection is a state (reading its request, writing
 * its answer) driven by readiness on an epoll set of the module's own, which
 * the loop watches as one fd.
 *
 * At most CTL_MAX_CONNS clients are served at once; up to CTL_MAX_BUSY more
 * are answered "ERR 1 busy: ..." (their request read first, as any other's:
 * closing on an unread request would lose the answer); beyond both, new
 * connections wait in the listen backlog until a slot frees. A client has
 * CTL_READ_BUDGET_NS in all to send its request and CTL_WRITE_BUDGET_NS to
 * take its answer, enforced by control_tick().
 *
 * status and backends are answered off the loop (status_worker.h): the loop
 * takes the snapshot, the server's status thread reads the maps and renders,
 * and the client waits (no budget: the time is shiftd's) until its answer is
 * written by readiness as any other. A client that hangs up meanwhile is
 * closed; at a stop a waiting one is told "ERR 1 shiftd is stopping".
 */
#define CTL_MAX_CONNS 16
#define CTL_MAX_BUSY 16

struct ctl_conn;

struct ctl_server {
	struct agent *a;
	int (*reload_cb)(struct agent *a, char *err, size_t errlen); /* "reload" */
	int lfd; /* the listening socket (control_open()'s; not owned) */
	int epfd; /* what the loop watches: lfd and the clients */
	gid_t group; /* allowed besides root (control_open()'s) */
	bool accepting; /* lfd is in epfd (not while every slot is taken) */
	struct ctl_conn *conns[CTL_MAX_CONNS + CTL_MAX_BUSY];
	unsigned int n_served, n_busy;
	struct status_worker status; /* not started: status renders on the loop */
	__u64 busy_refused, busy_logged_ns; /* "busy" answers, logged at most every 10 s */
};

/* Serve lfd's clients, allowing root and group. 0 or -errno, logged. */
int control_start(struct ctl_server *s, struct agent *a, int lfd, gid_t group,
		  int (*reload_cb)(struct agent *a, char *err, size_t errlen));
/* The fd for the loop's epoll (readable: call control_run()), -1 if not started. */
int control_fd(const struct ctl_server *s);
/* Accept, read, dispatch and write what is ready; never waits. */
void control_run(struct ctl_server *s);
/* On the loop's tick: a client past its budget is answered (request) or closed (answer). */
void control_tick(struct ctl_server *s);
/* Stop the status thread, close every client and the epoll set (not lfd: control_close()). */
void control_stop(struct ctl_server *s);
#endif
