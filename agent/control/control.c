// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <grp.h>
#include <pwd.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
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

/* status [SERVICE] [json|text], backends SERVICE [json|text]: the service and the form. */
static enum status_form status_args(const struct ctl_request *q, bool backends, const char **only)
{
	bool as_json = false;
	int i;

	*only = NULL;
	for (i = 0; i < q->argc; i++) {
		if (!strcmp(q->argv[i], "json"))
			as_json = true;
		else if (!strcmp(q->argv[i], "text"))
			as_json = false;
		else
			*only = q->argv[i];
	}
	if (backends)
		return as_json ? STATUS_BACKENDS_JSON : STATUS_BACKENDS_TEXT;
	return as_json ? STATUS_JSON : STATUS_TEXT;
}

/* A status's failure as the operator reads it (only: the service asked for). */
static void status_failed(struct reply *r, int err, const char *only)
{
	if (err == -ENOENT)
		fail(r, 1, "no service '%s'", only ? only : "");
	else if (err == -ESHUTDOWN || err == -ECANCELED)
		fail(r, 1, "shiftd is stopping: status not collected; ask again once it runs");
	else
		fail(r, 1, "status: %s", strerror(-err));
}

/* The whole status on the loop: only when the status thread did not start. */
static void do_status(struct agent *a, const struct ctl_request *q, struct reply *r, bool backends)
{
	const char *only;
	enum status_form form = status_args(q, backends, &only);
	int err;

	err = status_agent_render(a, only, form, &r->body, &r->body_len);
	if (err)
		status_failed(r, err, only);
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
		persist_save(a); /* on disk before the answer says it is done */
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
 * millisecond delays a rollback: nothing here waits on a client. A client
 * gets this much time in all to send its request, and this much to take its
 * answer, however it trickles; past them the tick answers or closes it.
 */
#define CTL_READ_BUDGET_NS (500 * 1000000ull)
#define CTL_WRITE_BUDGET_NS (2000 * 1000000ull)
/* "busy" refusals: one log line at most this often. */
#define CTL_BUSY_LOG_NS (10 * 1000000000ull)

/* CTL_WAITING: its status is on the status thread (no budget: the time is shiftd's). */
enum ctl_state { CTL_READING, CTL_WAITING, CTL_WRITING };

struct ctl_conn {
	int fd;
	enum ctl_state state;
	bool busy; /* over CTL_MAX_CONNS: answered "busy", whatever it asks */
	__u64 deadline; /* monotonic ns: this state's budget ends */
	size_t got; /* request bytes in line */
	char line[CTL_MAX_LINE + 1];
	/* The answer: head, then body (only under OK); sent is over both. */
	char head[640];
	size_t head_len, sent;
	char *body; /* the job's answer when job is set, else owned */
	size_t body_len;
	struct status_job *job; /* a reference: the status it waits for, or whose answer it sends */
};

static int watch(struct ctl_server *s, int op, int fd, __u32 events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(s->epfd, op, fd, &ev)) {
		log_warn("control socket: epoll_ctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Every slot taken: leave new clients in the listen backlog until one frees. */
static void accepting(struct ctl_server *s, bool on)
{
	if (on == s->accepting)
		return;
	if (!watch(s, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->lfd, EPOLLIN, s))
		s->accepting = on;
}

static void conn_close(struct ctl_server *s, struct ctl_conn *c)
{
	unsigned int i;

	/* Closing the fd takes it out of the epoll set too. */
	close(c->fd);
	for (i = 0; i < CTL_MAX_CONNS + CTL_MAX_BUSY; i++)
		if (s->conns[i] == c)
			s->conns[i] = NULL;
	if (c->busy)
		s->n_busy--;
	else
		s->n_served--;
	if (c->job)
		status_job_unref(&s->status, c->job);
	else
		free(c->body);
	free(c);
	accepting(s, true);
}

/* Send what the socket takes. false: c is closed (all sent, or cut short). */
static bool conn_write(struct ctl_server *s, struct ctl_conn *c)
{
	size_t total = c->head_len + c->body_len;

	while (c->sent < total) {
		struct iovec iov[2];
		struct msghdr m = { .msg_iov = iov };
		ssize_t w;

		if (c->sent < c->head_len) {
			iov[0].iov_base = c->head + c->sent;
			iov[0].iov_len = c->head_len - c->sent;
			iov[1].iov_base = c->body;
			iov[1].iov_len = c->body_len;
			m.msg_iovlen = c->body_len ? 2 : 1;
		} else {
			iov[0].iov_base = c->body + (c->sent - c->head_len);
			iov[0].iov_len = total - c->sent;
			m.msg_iovlen = 1;
		}
		w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true; /* EPOLLOUT says when to go on */
		if (w <= 0) {
			log_warn("control socket: answer cut short, %zu of %zu bytes unsent: %s",
				 total - c->sent, total, w < 0 ? strerror(errno) : "nothing sent");
			conn_close(s, c);
			return false;
		}
		c->sent += (size_t)w;
	}
	conn_close(s, c);
	return false;
}

/* Start c's answer: r's head and, under OK, its body or c's status job's answer. */
static void conn_reply(struct ctl_server *s, struct ctl_conn *c, struct reply *r)
{
	if (r->code)
		snprintf(c->head, sizeof(c->head), "ERR %d %s\n", r->code, r->msg);
	else
		snprintf(c->head, sizeof(c->head), "OK\n");
	c->head_len = strlen(c->head);
	if (!r->code && c->job) {
		c->body = c->job->out;
		c->body_len = c->job->len;
	} else if (!r->code && r->body) {
		c->body = r->body;
		c->body_len = r->body_len;
	} else {
		free(r->body);
	}
	c->state = CTL_WRITING;
	c->deadline = now_mono_ns() + CTL_WRITE_BUDGET_NS;
	/* Most answers fit the socket's buffer at once. */
	if (!conn_write(s, c))
		return;
	watch(s, EPOLL_CTL_MOD, c->fd, EPOLLOUT, c);
}

/*
 * status and backends off the loop: the snapshot of what the agent owns here,
 * the map reads and the rendering on the status thread (a second at 32768
 * backends, which used to hold the samples and the rollbacks). true: c waits
 * for the job, answered by status_deliver(); false: r says why not.
 */
static bool conn_status(struct ctl_server *s, struct ctl_conn *c, const struct ctl_request *q,
			struct reply *r)
{
	bool backends = !strcmp(q->verb, "backends");
	struct status_snap *sn;
	enum status_form form;
	const char *only;

	if (backends && (q->argc < 1 || !agent_service(s->a, q->argv[0]))) {
		need_service(s->a, q, 0, r);
		return false;
	}
	form = status_args(q, backends, &only);
	sn = status_snap_take(s->a, only);
	c->job = sn ? status_worker_submit(&s->status, sn, form) : NULL;
	if (!c->job) {
		fail(r, 1, "status: %s", strerror(ENOMEM));
		return false;
	}
	c->state = CTL_WAITING;
	/* Nothing to read or write until the answer is there; a hang-up is still
	 * reported (EPOLLHUP always is) and closes it. */
	watch(s, EPOLL_CTL_MOD, c->fd, 0, c);
	return true;
}

/* c's status job is done: its answer, or why there is none. */
static void conn_status_done(struct ctl_server *s, struct ctl_conn *c)
{
	struct status_job *j = c->job;
	struct reply r = { 0 };

	if (j->err) {
		status_failed(&r, j->err, status_snap_only(j->snap));
		c->job = NULL;
		status_job_unref(&s->status, j);
	}
	conn_reply(s, c, &r);
}

/* Answer the clients of every job the status thread has done. */
static void status_deliver(struct ctl_server *s)
{
	struct status_job *j;
	unsigned int i;

	while ((j = status_worker_collect(&s->status))) {
		for (i = 0; i < CTL_MAX_CONNS + CTL_MAX_BUSY; i++) {
			struct ctl_conn *c = s->conns[i];

			if (c && c->state == CTL_WAITING && c->job == j)
				conn_status_done(s, c);
		}
		/* The worker's reference: with no client left, this frees it. */
		status_job_unref(&s->status, j);
	}
}

static bool is_status(const struct ctl_request *q)
{
	return !strcmp(q->verb, "status") || !strcmp(q->verb, "backends");
}

/*
 * The request is in (a line, a full buffer, EOF or the read budget spent):
 * check the peer, dispatch, and start the answer (or, for a status, the job
 * that will give it).
 */
static void conn_answer(struct ctl_server *s, struct ctl_conn *c)
{
	struct agent *a = s->a;
	struct reply r = { 0 };
	struct ctl_request q;
	char err[256], *nl;
	size_t got = c->got;

	nl = got ? memchr(c->line, '\n', got) : NULL;
	if (!peer_allowed(c->fd, s->group)) {
		fail(&r, 1, "permission denied: root or group '%s' only",
		     a->conf->control_socket_group[0] ? a->conf->control_socket_group : "root");
	} else if (!nl) {
		fail(&r, 2, got ? "request not terminated by a newline" : "empty request");
	} else if (c->busy) {
		fail(&r, 1, "busy: %u control connections open, try again", s->n_served);
		s->busy_refused++;
	} else if (ctl_parse_request(c->line, (size_t)(nl - c->line) + 1, &q, err, sizeof(err))) {
		fail(&r, 2, "bad request: %s", err);
	} else if (is_status(&q) && s->status.started) {
		if (conn_status(s, c, &q, &r))
			return;
	} else {
		dispatch(a, &q, &r, s->reload_cb);
	}
	conn_reply(s, c, &r);
}

/* Take what has come of the request; answer once it is all in. */
static void conn_read(struct ctl_server *s, struct ctl_conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->got == sizeof(c->line) - 1)
			break; /* full, no newline: answered as such */
		n = read(c->fd, c->line + c->got, sizeof(c->line) - 1 - c->got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
			break; /* EOF, or an error: answer what came */
		c->got += (size_t)n;
		if (memchr(c->line + c->got - n, '\n', (size_t)n))
			break;
	}
	conn_answer(s, c);
}

static void conn_accept(struct ctl_server *s)
{
	struct ctl_conn *c;
	unsigned int i;
	int fd;

	while (s->n_served + s->n_busy < CTL_MAX_CONNS + CTL_MAX_BUSY) {
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("control socket accept: %s", strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			log_warn("control socket: no memory for a client; closed");
			close(fd);
			return;
		}
		c->fd = fd;
		c->state = CTL_READING;
		c->busy = s->n_served == CTL_MAX_CONNS;
		/*
		 * The request is read even from a peer about to be refused (or
		 * told busy): closing with unread data sends a reset, which can
		 * destroy the answer before the client reads why it was refused.
		 */
		c->deadline = now_mono_ns() + CTL_READ_BUDGET_NS;
		if (watch(s, EPOLL_CTL_ADD, fd, EPOLLIN, c)) {
			close(fd);
			free(c);
			return;
		}
		for (i = 0; s->conns[i]; i++)
			;
		s->conns[i] = c;
		if (c->busy)
			s->n_busy++;
		else
			s->n_served++;
		/* The request usually came with the connection. */
		conn_read(s, c);
	}
	accepting(s, false);
}

int control_start(struct ctl_server *s, struct agent *a, int lfd, gid_t group,
		  int (*reload_cb)(struct agent *a, char *err, size_t errlen))
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->a = a;
	s->reload_cb = reload_cb;
	s->lfd = lfd;
	s->group = group;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		rc = -errno;
		log_err("control socket: epoll_create1: %s", strerror(errno));
		return rc;
	}
	accepting(s, true);
	if (!s->accepting) {
		close(s->epfd);
		s->epfd = -1;
		return -EIO;
	}
	if (status_worker_start(&s->status, "shiftd-status") == 0 &&
	    watch(s, EPOLL_CTL_ADD, status_worker_fd(&s->status), EPOLLIN, &s->status))
		status_worker_stop(&s->status);
	if (!s->status.started)
		log_warn("control socket: status answers on the main thread: a status delays the "
			 "samples by its map reads");
	return 0;
}

int control_fd(const struct ctl_server *s)
{
	return s->epfd > 0 ? s->epfd : -1;
}

void control_run(struct ctl_server *s)
{
	struct epoll_event evs[CTL_MAX_CONNS + CTL_MAX_BUSY + 1];
	int n, i;

	if (s->epfd <= 0)
		return;
	n = epoll_wait(s->epfd, evs, CTL_MAX_CONNS + CTL_MAX_BUSY + 1, 0);
	if (n < 0 && errno != EINTR)
		log_warn("control socket: epoll_wait: %s", strerror(errno));
	/* Clients first: a listening event may accept into slots they free; and
	 * answers delivered may close clients, whose events must come before. */
	for (i = 0; i < n; i++) {
		struct ctl_conn *c = evs[i].data.ptr;

		if (evs[i].data.ptr == s || evs[i].data.ptr == &s->status)
			continue;
		if (c->state == CTL_READING) {
			conn_read(s, c);
		} else if (c->state == CTL_WRITING) {
			conn_write(s, c);
		} else {
			/* Hung up while its status was collected: nobody to answer. */
			log_debug("control socket: a client waiting for a status hung up");
			conn_close(s, c);
		}
	}
	for (i = 0; i < n; i++)
		if (evs[i].data.ptr == &s->status)
			status_deliver(s);
	for (i = 0; i < n; i++)
		if (evs[i].data.ptr == s && s->accepting)
			conn_accept(s);
}

void control_tick(struct ctl_server *s)
{
	__u64 now = now_mono_ns();
	unsigned int i;

	for (i = 0; i < CTL_MAX_CONNS + CTL_MAX_BUSY; i++) {
		struct ctl_conn *c = s->conns[i];

		if (!c || c->state == CTL_WAITING || now < c->deadline)
			continue;
		if (c->state == CTL_READING) {
			/* What came in the budget is the request, as with EOF. */
			conn_answer(s, c);
			continue;
		}
		log_warn("control socket: answer cut short, %zu of %zu bytes unsent: the client "
			 "did not read it in time",
			 c->head_len + c->body_len - c->sent, c->head_len + c->body_len);
		conn_close(s, c);
	}
	if (s->busy_refused && now - s->busy_logged_ns >= CTL_BUSY_LOG_NS) {
		log_warn("control socket: %llu clients answered busy since the last such line (at "
			 "most %u are served at once)",
			 (unsigned long long)s->busy_refused, CTL_MAX_CONNS);
		s->busy_refused = 0;
		s->busy_logged_ns = now;
	}
}

/* At a stop: tell a client still waiting for its status, in one try (nothing waits). */
static void tell_stopping(struct ctl_conn *c)
{
	static const char msg[] = "ERR 1 shiftd is stopping: status not collected; ask again "
				  "once it runs\n";

	if (send(c->fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_warn("control socket: cannot tell a waiting client shiftd stops: %s",
			 strerror(errno));
}

void control_stop(struct ctl_server *s)
{
	unsigned int i;

	/* First: a status in progress ends at its next backend; nothing more is done. */
	status_worker_stop(&s->status);
	if (s->epfd <= 0)
		return;
	for (i = 0; i < CTL_MAX_CONNS + CTL_MAX_BUSY; i++) {
		if (!s->conns[i])
			continue;
		if (s->conns[i]->state == CTL_WAITING)
			tell_stopping(s->conns[i]);
		conn_close(s, s->conns[i]);
	}
	close(s->epfd);
	s->epfd = -1;
	s->accepting = false;
}
