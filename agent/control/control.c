// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <grp.h>
#include <pwd.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "control/control.h"
#include "control/ctl_proto.h"
#include "control/drill_ctl.h"
#include "control/json.h"
#include "datapath/loader.h"
#include "fleet/fleet.h"
#include "ops/log.h"
#include "analysis/ramp.h"
#include "analysis/rollback.h"
#include "control/status.h"
#include "config/units.h"
#include "shadow/shadow.h"

/*
 * Does a process listen on the unix socket at sa? 1 (its pid in *pid, 0 when
 * unknown), 0 when nothing does (no file, or a stale one of a process gone).
 * A connection without a request costs a shiftd an "empty request" answer.
 */
static int socket_live(const struct sockaddr_un *sa, pid_t *pid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd, rc = 0;

	*pid = 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0; /* cannot tell: the bind below says what is wrong */
	if (!connect(fd, (const struct sockaddr *)sa, sizeof(*sa))) {
		/* The listener's credentials, as of its listen(). */
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
			*pid = cr.pid;
		rc = 1;
	} else if (errno == EAGAIN) {
		rc = 1; /* listening, its backlog full */
	}
	close(fd);
	return rc;
}

int control_open(const struct shift_conf *c, gid_t *group, struct ctl_bound *bound)
{
	struct stat st;
	pid_t pid;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(c->control_socket)];
	gid_t gid = 0;
	int fd, err;

	if (strlen(c->control_socket) >= sizeof(sa.sun_path)) {
		log_err("control_socket %s: path too long for a unix socket", c->control_socket);
		return -ENAMETOOLONG;
	}
	if (c->control_socket_group[0]) {
		struct group *g = getgrnam(c->control_socket_group);

		if (!g) {
			log_err("control_socket_group %s: no such group", c->control_socket_group);
			return -ENOENT;
		}
		gid = g->gr_gid;
	}
	snprintf(dir, sizeof(dir), "%s", c->control_socket);
	err = mkdir_p(dirname(dir), 0755);
	if (err) {
		log_err("cannot create the directory of %s: %s", c->control_socket, strerror(-err));
		return err;
	}
	strcpy(sa.sun_path, c->control_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err = -errno;
		log_err("control socket: %s", strerror(-err));
		return err;
	}
	/*
	 * A socket someone listens on is not stale: another shiftd's, one whose
	 * state_dir (and so its instance lock) differs. Taking it over would
	 * leave that one unreachable, and its exit would delete ours.
	 */
	if (socket_live(&sa, &pid)) {
		if (pid > 0)
			log_err("control socket %s: shiftd pid %d (or another process) listens on "
				"it; not taking it over: give each shiftd its own control_socket",
				sa.sun_path, (int)pid);
		else
			log_err("control socket %s: another process listens on it; not taking it "
				"over: give each shiftd its own control_socket",
				sa.sun_path);
		close(fd);
		return -EADDRINUSE;
	}
	/* A stale socket from a killed shiftd: replace it. */
	if (unlink(sa.sun_path) && errno != ENOENT)
		log_warn("cannot remove stale %s: %s", sa.sun_path, strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(sa.sun_path, c->control_socket_mode) || (gid && chown(sa.sun_path, 0, gid)) ||
	    listen(fd, 16)) {
		err = -errno;
		log_err("control socket %s: %s", sa.sun_path, strerror(-err));
		close(fd);
		return err;
	}
	/* Which file is ours, for control_close(): the path may be another's by then. */
	if (stat(sa.sun_path, &st)) {
		err = -errno;
		log_err("control socket %s: %s", sa.sun_path, strerror(-err));
		close(fd);
		return err;
	}
	bound->dev = st.st_dev;
	bound->ino = st.st_ino;
	*group = gid;
	return fd;
}

void control_close(int fd, const char *path, const struct ctl_bound *bound)
{
	struct stat st;

	if (fd < 0)
		return;
	close(fd);
	/* Another process may have bound the path since (its own socket file, or
	 * a shiftd that took a stale-looking one over): unlinking that would
	 * leave it unreachable. */
	if (stat(path, &st)) {
		if (errno != ENOENT)
			log_warn("control socket %s: %s; left in place", path, strerror(errno));
		return;
	}
	if (st.st_dev != bound->dev || st.st_ino != bound->ino) {
		log_warn("control socket %s is no longer the one this shiftd bound; left in place",
			 path);
		return;
	}
	if (unlink(path) && errno != ENOENT)
		log_warn("cannot remove control socket %s: %s", path, strerror(errno));
}

struct reply {
	int code; /* exit code for shiftctl: 0, 1, 2 */
	char msg[512];
	char *body;
	size_t body_len;
};

static void fail(struct reply *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct reply *r, int code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

static struct service_rt *need_service(struct agent *a, const struct ctl_request *q, int idx,
				       struct reply *r)
{
	struct service_rt *s;

	if (q->argc <= idx) {
		fail(r, 2, "%s: missing SERVICE", q->verb);
		return NULL;
	}
	s = agent_service(a, q->argv[idx]);
	if (!s)
		fail(r, 1, "no service '%s' in the running config", q->argv[idx]);
	return s;
}

static void do_status(struct agent *a, const struct ctl_request *q, struct reply *r, bool backends)
{
	const char *only = NULL;
	bool as_json = false;
	struct st_model st;
	int i, err;
	FILE *f;

	for (i = 0; i < q->argc; i++) {
		if (!strcmp(q->argv[i], "json"))
			as_json = true;
		else if (!strcmp(q->argv[i], "text"))
			as_json = false;
		else
			only = q->argv[i];
	}
	if (as_json) {
		/* One renderer for this and GET /v1/status. */
		err = status_agent_json(a, only, backends, &r->body, &r->body_len);
		if (err)
			fail(r, 1, err == -ENOENT ? "no service '%s'" : "status: %s",
			     err == -ENOENT ? only : strerror(-err));
		return;
	}
	err = status_collect(&a->maps, only, &st, a);
	if (err) {
		fail(r, 1, err == -ENOENT ? "no service '%s'" : "status: %s",
		     err == -ENOENT ? only : strerror(-err));
		return;
	}
	status_add_agent(&st, a);
	f = open_memstream(&r->body, &r->body_len);
	if (!f) {
		fail(r, 1, "status: %s", strerror(errno));
	} else {
		if (backends)
			status_render_backends_text(&st, f);
		else
			status_render_text(&st, f);
		/* Out of memory mid-render: no half answer under an OK. */
		if (fclose(f)) {
			free(r->body);
			r->body = NULL;
			r->body_len = 0;
			fail(r, 1, "status: %s", strerror(errno));
		}
	}
	status_free(&st);
}

/*
 * Does a sync (s read back from the maps) bring the operator's rollback
 * (shiftctl rollback, reason: its reason) to note? Over no latch, yes; over a
 * drill's (was_drill), yes too: it replaces the drill's latch and stays.
 */
static bool sync_is_rollback(const struct service_rt *s, bool was_latched, bool was_drill,
			     const char *reason)
{
	if (!s->latched)
		return false;
	if (!was_latched)
		return true;
	return reason && was_drill && !s->latch_drill;
}

/* A whole positive decimal integer (no sign, no trailing text, no overflow). */
static bool positive_arg(const char *s, long long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return !errno && !*end && *v > 0;
}

/* The reply's text after OK. Without memory it goes without: the change
 * itself is made, and shiftd's log says the rest. */
static void reply_text(struct reply *r, const char *text)
{
	r->body = strdup(text);
	if (!r->body) {
		log_warn("control: no memory for a %zu-byte reply", strlen(text));
		return;
	}
	r->body_len = strlen(r->body);
}

/*
 * shiftctl changed the maps directly; catch up and persist. Arguments after
 * SERVICE: reason=TEXT, cancel-ramp, at=UNIX_NS (when shiftctl wrote the map:
 * the rollback's time, also in the fleet), fleet-rev=N (shiftctl wrote the
 * fleet at revision N before this host's map).
 */
static void do_sync(struct agent *a, const struct ctl_request *q, struct reply *r)
{
	const char *reason = NULL;
	struct weight_state before;
	bool cancel_ramp = false;
	char stale[512];
	long long fleet_rev = 0, at_arg;
	struct service_rt *s;
	__u64 at = 0;
	int k;

	s = need_service(a, q, 0, r);
	if (!s)
		return;
	for (k = 1; k < q->argc; k++) {
		if (!strncmp(q->argv[k], "reason=", 7)) {
			reason = q->argv[k] + 7;
		} else if (!strcmp(q->argv[k], "cancel-ramp")) {
			cancel_ramp = true;
		} else if (!strncmp(q->argv[k], "at=", 3)) {
			/* The rollback's time goes to the fleet and to status: a
			 * garbled one must not be taken for "now" or for 2554. */
			if (!positive_arg(q->argv[k] + 3, &at_arg)) {
				fail(r, 2,
				     "sync: at must be a time (ns since the epoch, a positive "
				     "integer), not '%s'",
				     q->argv[k] + 3);
				return;
			}
			at = (__u64)at_arg;
		} else if (!strncmp(q->argv[k], "fleet-rev=", 10)) {
			if (!positive_arg(q->argv[k] + 10, &fleet_rev)) {
				fail(r, 2,
				     "sync: fleet-rev must be a revision (a positive integer), "
				     "not '%s'",
				     q->argv[k] + 10);
				return;
			}
		} else {
			fail(r, 2, "sync: unknown argument '%s'", q->argv[k]);
			return;
		}
	}
	/* What shiftd had before shiftctl's write, even when a tick saw the
	 * write first and read it back (agent_adopt_outside()). */
	agent_before_sync(s, &before);
	if (fleet_sync_stale(a->fleet_ctx, s, fleet_rev, &before, stale, sizeof(stale))) {
		reply_text(r, stale);
		return;
	}
	agent_sync_from_maps(a, s);
	if (sync_is_rollback(s, before.latched, before.drill, reason)) {
		rollback_note_manual_at(a, s, reason, at);
	} else if (!s->latched && before.latched) {
		rollback_clear(a, s);
	} else {
		if (cancel_ramp && s->ramp.active) {
			s->ramp.active = false;
			log_info("service %s: ramp cancelled by set-weight", s->conf->name);
		}
		persist_save(a);
	}
	if (a->persist_failing)
		reply_text(r, "warning: the change is in the maps, but shiftd cannot "
			      "save its state (see its log): a reboot now would undo it\n");
}

static void dispatch(struct agent *a, const struct ctl_request *q, struct reply *r,
		     int (*reload_cb)(struct agent *, char *, size_t))
{
	struct service_rt *s;

	if (!strcmp(q->verb, "ping")) {
		return;
	} else if (!strcmp(q->verb, "status")) {
		do_status(a, q, r, false);
	} else if (!strcmp(q->verb, "backends")) {
		if (q->argc < 1 || !agent_service(a, q->argv[0])) {
			need_service(a, q, 0, r);
			return;
		}
		do_status(a, q, r, true);
	} else if (!strcmp(q->verb, "sync")) {
		do_sync(a, q, r);
	} else if (!strcmp(q->verb, "ramp")) {
		__u32 steps[RAMP_MAX_STEPS], n;
		char err[512];
		__u64 hold;

		s = need_service(a, q, 0, r);
		if (!s)
			return;
		if (a->conf->fleet.enabled) {
			fail(r, 1,
			     "on a fleet node, 'shiftctl ramp' stores the plan in etcd; this "
			     "shiftd follows it");
			return;
		}
		if ((q->argc != 3 && q->argc != 4) ||
		    (q->argc == 4 && strcmp(q->argv[3], "force"))) {
			fail(r, 2, "ramp: usage: ramp SERVICE STEPS HOLD [force]");
			return;
		}
		/* From 0 green starts taking users: shadow's verdict first. */
		if (q->argc == 3 && s->weight == 0 && shadow_gate(a, s->id, err, sizeof(err))) {
			fail(r, 1, "%s", err);
			return;
		}
		if (ramp_parse_steps(q->argv[1], steps, &n, err, sizeof(err)) ||
		    units_parse_duration(q->argv[2], 1000000ull, 86400ull * 1000000000ull, &hold,
					 err, sizeof(err))) {
			fail(r, 2, "%s", err);
			return;
		}
		if (ramp_start(a, s, steps, n, hold, err, sizeof(err)))
			fail(r, 1, "%s", err);
	} else if (!strcmp(q->verb, "drill") || !strcmp(q->verb, "drill-report")) {
		r->code = drill_ctl(a, q, r->msg, sizeof(r->msg), &r->body, &r->body_len);
	} else if (!strcmp(q->verb, "shadow-gate")) {
		/* shiftctl set-weight from 0 asks before it writes the map. */
		char err[512];

		s = need_service(a, q, 0, r);
		if (s && shadow_gate(a, s->id, err, sizeof(err)))
			fail(r, 1, "%s", err);
	} else if (!strcmp(q->verb, "reload")) {
		char err[1024];

		if (reload_cb(a, err, sizeof(err)))
			fail(r, 1, "reload refused, running config kept: %s", err);
	} else {
		fail(r, 2, "unknown request '%s'", q->verb);
	}
}

/*
 * Root, or a member of control_socket_group (primary or supplementary, as the
 * group database says). The socket's file mode is the first gate; this one
 * holds even if the mode is loosened by hand.
 */
static bool peer_allowed(int fd, gid_t group)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[256];
	int n = 256, i;
	struct passwd *pw;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return false;
	if (cred.uid == 0)
		return true;
	if (!group)
		return false;
	if (cred.gid == group)
		return true;
	pw = getpwuid(cred.uid);
	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (groups[i] == group)
			return true;
	return false;
}

/*
 * The control socket is served from the agent's loop, where every
 * millisecond delays a rollback: a client gets this much time in all to send
 * its request, and this much to take its answer, however it trickles (a
 * timeout per read let one byte every 400 ms hold the loop for minutes).
 */
#define CTL_READ_BUDGET_NS (500 * 1000000ull)
#define CTL_WRITE_BUDGET_NS (2000 * 1000000ull)

/* Wait until fd is ready for ev or deadline (monotonic ns) passes: 1 ready, 0 not. */
static int ready_by(int fd, short ev, __u64 deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	__u64 now = now_mono_ns();
	int rc;

	if (now >= deadline)
		return 0;
	rc = poll(&p, 1, (int)((deadline - now + 999999) / 1000000));
	if (rc < 0 && errno != EINTR)
		log_warn("control socket poll: %s", strerror(errno));
	return rc > 0;
}

/* What was not written by the deadline is dropped; the client sees a short
 * answer. false then. */
static bool write_all(int fd, const char *p, size_t n, __u64 deadline)
{
	size_t total = n;

	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && ready_by(fd, POLLOUT, deadline))
			continue;
		if (w <= 0) {
			log_warn("control socket: answer cut short, %zu of %zu bytes unsent: %s", n,
				 total,
				 w < 0 && errno != EAGAIN ? strerror(errno) :
							    "the client did not read it in time");
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

void control_serve(struct agent *a, int lfd, gid_t group,
		   int (*reload_cb)(struct agent *a, char *err, size_t errlen))
{
	char line[CTL_MAX_LINE + 1], err[256], head[640];
	struct reply r = { 0 };
	struct ctl_request q;
	size_t got = 0;
	__u64 deadline;
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("control socket accept: %s", strerror(errno));
		return;
	}
	/*
	 * The request is read even from a peer about to be refused: closing with
	 * unread data sends a reset, which can destroy the answer before the
	 * client reads why it was refused.
	 */
	deadline = now_mono_ns() + CTL_READ_BUDGET_NS;
	while (got < sizeof(line) - 1) {
		ssize_t n = read(fd, line + got, sizeof(line) - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && ready_by(fd, POLLIN, deadline))
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(line + got - n, '\n', (size_t)n))
			break;
	}
	if (!peer_allowed(fd, group)) {
		fail(&r, 1, "permission denied: root or group '%s' only",
		     a->conf->control_socket_group[0] ? a->conf->control_socket_group : "root");
		goto answer;
	}
	if (!got || !memchr(line, '\n', got)) {
		fail(&r, 2, got ? "request not terminated by a newline" : "empty request");
		goto answer;
	}
	got = (size_t)((char *)memchr(line, '\n', got) - line) + 1;
	if (ctl_parse_request(line, got, &q, err, sizeof(err))) {
		fail(&r, 2, "bad request: %s", err);
		goto answer;
	}
	dispatch(a, &q, &r, reload_cb);
answer:
	if (r.code)
		snprintf(head, sizeof(head), "ERR %d %s\n", r.code, r.msg);
	else
		snprintf(head, sizeof(head), "OK\n");
	deadline = now_mono_ns() + CTL_WRITE_BUDGET_NS;
	if (write_all(fd, head, strlen(head), deadline) && !r.code && r.body)
		write_all(fd, r.body, r.body_len, deadline);
	free(r.body);
	close(fd);
}
