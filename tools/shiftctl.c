// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shiftctl: the operator's CLI. Weight changes, rollbacks and clears act on
 * the pinned maps directly (they work while shiftd is down), then keep the
 * persisted state in step: through shiftd when it runs, else in the state
 * file under its lock. Everything else asks shiftd over the control socket.
 * A service is always found by its name in the pinned maps, never by its
 * place in the file; so a config that does not load (an operator mid-edit)
 * stops only reload: the rest act on what runs, with a warning, taking from
 * the file only the paths and the [fleet] it still says for certain.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <shift/maps.h>
#include "config/config.h"
#include "control/ctl_proto.h"
#include "datapath/dataplane.h"
#include "datapath/which.h"
#include "control/json.h"
#include "ops/log.h"
#include "analysis/drill.h"
#include "analysis/ramp.h"
#include "ops/state.h"
#include "control/status.h"
#include "config/units.h"
#include "config/weight.h"
#include "fleet/cli.h"
#include "ops/clock.h"

#define EXIT_USAGE 2
/* Per read/write on the control socket: a hung shiftd must not hang the CLI. */
#define CTL_TIMEOUT_S 5

static const char usage_text[] =
	"Usage: shiftctl [-c FILE] COMMAND [ARGS]\n"
	"\n"
	"Drive shift, the blue/green traffic shifter.\n"
	"\n"
	"Commands:\n"
	"  status [SERVICE] [--json]       weights, rollbacks, pools, backends, counters\n"
	"  set-weight SERVICE WEIGHT [--force]\n"
	"                                  set green's share of new connections: 25, 25%,\n"
	"                                  0.5%, 0.01% (a bare number is a percentage);\n"
	"                                  refused while rolled back unless --force, and\n"
	"                                  while green has no healthy backend; from 0,\n"
	"                                  also while shadow mode's mismatch rate is over\n"
	"                                  max_shadow_mismatch (asks shiftd)\n"
	"  rollback SERVICE [--reason TEXT] [--evict]\n"
	"                                  green weight 0 now, latched; --evict also moves\n"
	"                                  open green connections to blue (they reset)\n"
	"  clear SERVICE                   lift the rollback latch (green stays at 0)\n"
	"  ramp SERVICE STEPS --hold DURATION [--force]\n"
	"                                  step green up, e.g. 1,5,10,25,50,100 --hold 30s;\n"
	"                                  runs in shiftd, stops at any rollback; from 0\n"
	"                                  refused like set-weight unless --force\n"
	"  promote SERVICE [--force]       green weight 100%\n"
	"  backends SERVICE [--json]       the service's backends and their counters\n"
	"  drill SERVICE [--hold DURATION] [--json]\n"
	"                                  rollback drill: roll back (reason drill), hold\n"
	"                                  (default 10s), measure, restore the weight and\n"
	"                                  ramp; a real trigger meanwhile wins and stays.\n"
	"                                  Needs shiftd; refused when rolled back, at 0 or\n"
	"                                  with a ramp step due within the hold\n"
	"  which SERVICE ADDR[:PORT] [--json]\n"
	"                                  the color and backend a new connection from\n"
	"                                  that client (and source port) gets now, from\n"
	"                                  the pinned maps: weight, overrides, rollback\n"
	"                                  latch, pools; without PORT the backend (and,\n"
	"                                  with affinity = flow, the color) depends on it\n"
	"  reload                          make shiftd re-read its config\n"
	"  fleet status [--json]           with a [fleet] section: every node of the fleet,\n"
	"                                  alive or not, its applied revision, weights and\n"
	"                                  latches, and whether it agrees with the fleet\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   the shiftd config (default " CONF_DEFAULT_PATH "); it says\n"
	"                      where the pinned maps and the control socket are\n"
	"  -h, --help          this text\n"
	"\n"
	"set-weight, rollback, clear, promote and which work while shiftd is down.\n"
	"On a fleet ([fleet] in the config) set-weight, promote, ramp and clear change\n"
	"etcd first (exit 1 'fleet unreachable' and nothing changed without it), then\n"
	"this host; rollback acts here at once and is published to the fleet (by shiftd\n"
	"when etcd is back, if it is away). A drill stays on this host.\n"
	"A config that does not load (mid-edit) is warned about (FILE:LINE: reason) and\n"
	"stops only reload; the others act on what runs, finding services by name in\n"
	"the pinned maps, and refuse only what needs a line of the file that is in doubt.\n"
	"Exit status: 0 success, 1 the operation failed (nothing changed), 2 bad usage;\n"
	"drill: 0 only when the weight was restored and no new green connection came\n"
	"after the rollback's write.\n"
	"See shiftctl(8).\n";

struct ctl {
	struct shift_conf *conf;
	const char *conf_path;
	/*
	 * The file does not load (an operator mid-edit): conf holds only what
	 * conf_salvage_parse() could trust of it, and no service; services are
	 * found by name in the pinned maps, as always. NULL when it loaded.
	 */
	const struct conf_salvage *salvaged;
	/* Points into main(): one warning per run when no socket can be asked. */
	bool *told_no_socket;
};

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("shiftctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'shiftctl --help'.\n", stderr);
	return EXIT_USAGE;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("shiftctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* The file did not load and what it says of part p cannot be trusted: why
 * ("FILE:LINE: reason"); NULL when the part is known. */
static const char *part_unknown(const struct ctl *c, enum conf_part p)
{
	if (!c->salvaged || !c->salvaged->bad[p][0])
		return NULL;
	return c->salvaged->bad[p];
}

/*
 * Ask shiftd. Returns 0 with its answer's exit code in *code and body in
 * *body, or -ECONNREFUSED/-ENOENT when shiftd is not running.
 */
static int agent_call(const struct ctl *c, const struct ctl_request *q, int *code, char **body,
		      char *msg, size_t msglen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CTL_TIMEOUT_S };
	char line[CTL_MAX_LINE + 1];
	size_t len = 0, cap = 0;
	char *buf = NULL, *nl;
	const char *why;
	int fd, err;

	why = part_unknown(c, CONF_PART_CONTROL_SOCKET);
	if (why) {
		/* No socket to ask: as when shiftd is down (the maps, the state file). */
		if (!*c->told_no_socket)
			fprintf(stderr,
				"shiftctl: warning: where shiftd's control socket is cannot be "
				"told (%s): going without shiftd\n",
				why);
		*c->told_no_socket = true;
		return -ENOENT;
	}
	if (strlen(c->conf->control_socket) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, c->conf->control_socket);
	if (ctl_format_request(q, line, sizeof(line)))
		return -E2BIG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Bounds connect, write and each read. set-weight and rollback have
	 * written the map by now: on a timeout they update the state file. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		/* The caller names the error: unbounded, it could hang on shiftd. */
		err = -errno;
		close(fd);
		return err;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	/* MSG_NOSIGNAL: an agent that has gone away must not kill us with SIGPIPE. */
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line)) {
		err = -errno;
		close(fd);
		return err ? err : -EIO;
	}
	for (;;) {
		ssize_t n;

		if (len + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			free(buf);
			close(fd);
			return -ETIMEDOUT;
		}
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!buf || !len) {
		free(buf);
		return -EPIPE;
	}
	buf[len] = '\0';
	nl = strchr(buf, '\n');
	if (!nl) {
		free(buf);
		return -EPROTO;
	}
	*nl = '\0';
	if (!strcmp(buf, "OK")) {
		*code = 0;
		msg[0] = '\0';
	} else if (!strncmp(buf, "ERR ", 4) && buf[4] >= '0' && buf[4] <= '2') {
		*code = buf[4] - '0';
		snprintf(msg, msglen, "%s", buf[5] ? buf + 6 : "");
	} else {
		free(buf);
		return -EPROTO;
	}
	if (body) {
		*body = strdup(nl + 1);
		if (!*body) {
			free(buf);
			return -ENOMEM;
		}
	}
	free(buf);
	return 0;
}

static bool agent_down(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED;
}

/* Why agent_down(): "no PATH", or a socket left by a shiftd that died. */
static const char *down_why(int err, const char *path, char *buf, size_t len)
{
	if (err == -ECONNREFUSED)
		snprintf(buf, len, "%.900s refuses connections: left by a shiftd that died", path);
	else
		snprintf(buf, len, "no %.900s", path);
	return buf;
}

static int open_maps(const struct ctl *c, struct shift_maps *m)
{
	const char *why = part_unknown(c, CONF_PART_BPFFS_DIR);
	int err;

	if (why)
		return fail("where the pinned maps are cannot be told: %s; nothing changed", why);
	err = dp_maps_open_pinned(m, c->conf->bpffs_dir);
	if (err)
		return fail("cannot open the pinned maps under %s: %s (has shiftd run since boot?)",
			    c->conf->bpffs_dir, strerror(-err));
	return 0;
}

static int find_service(const struct ctl *c, const struct shift_maps *m, const char *name,
			__u32 *id)
{
	if (dp_service_find(m, name, id, NULL) == 0)
		return 0;
	if (conf_find_service(c->conf, name))
		return fail("service '%s' is in %s but not loaded: run 'shiftctl reload'", name,
			    c->conf_path);
	return fail("no service '%s' (see 'shiftctl status')", name);
}

enum sync_kind { SYNC_WEIGHT, SYNC_ROLLBACK, SYNC_CLEAR };

/* Keep the persisted state in step with what we just wrote to the maps. */
static int sync_state(const struct ctl *c, const char *name, enum sync_kind kind, __u32 weight,
		      const char *reason, __u64 at, __s64 fleet_rev)
{
	struct ctl_request q = { .verb = "sync" };
	struct shift_state st = { 0 };
	char *body = NULL;
	struct state_service *p;
	char path[sizeof(c->conf->state_dir) + 8], err[512];
	int code, rc, lock;

	snprintf(q.argv[q.argc++], CTL_ARG_LEN, "%s", name);
	if (kind == SYNC_ROLLBACK) {
		snprintf(q.argv[q.argc++], CTL_ARG_LEN, "reason=%s", reason ? reason : "operator");
		snprintf(q.argv[q.argc++], CTL_ARG_LEN, "at=%llu", (unsigned long long)at);
	}
	if (kind == SYNC_WEIGHT)
		snprintf(q.argv[q.argc++], CTL_ARG_LEN, "cancel-ramp");
	/* shiftd keeps the fleet's word if a later one came here before our map write. */
	if (fleet_rev > 0)
		snprintf(q.argv[q.argc++], CTL_ARG_LEN, "fleet-rev=%lld", (long long)fleet_rev);
	rc = agent_call(c, &q, &code, &body, err, sizeof(err));
	if (rc == 0) {
		if (code)
			fprintf(stderr,
				"shiftctl: warning: the map is updated but shiftd said: %s\n", err);
		else if (body && *body)
			fprintf(stderr, "shiftctl: %s", body);
		free(body);
		return 0;
	}
	if (!agent_down(rc))
		fprintf(stderr,
			"shiftctl: warning: shiftd did not answer (%s); updating the state "
			"file\n",
			strerror(-rc));
	if (part_unknown(c, CONF_PART_STATE_DIR)) {
		fprintf(stderr,
			"shiftctl: warning: the map is updated but the state file is not: where "
			"it is cannot be told (%s)\n",
			part_unknown(c, CONF_PART_STATE_DIR));
		return 0;
	}

	snprintf(path, sizeof(path), "%s/state", c->conf->state_dir);
	if (state_lock(path, &lock, err, sizeof(err))) {
		fprintf(stderr,
			"shiftctl: warning: the map is updated but the state file is not: %s\n",
			err);
		return 0;
	}
	rc = state_load(path, &st, err, sizeof(err));
	if (rc && rc != -ENOENT)
		fprintf(stderr, "shiftctl: warning: %s; writing a fresh one\n", err);
	p = state_get_or_add(&st, name);
	if (p) {
		switch (kind) {
		case SYNC_WEIGHT:
			p->weight = weight;
			p->latched = false;
			p->ramp_active = false;
			break;
		case SYNC_ROLLBACK:
			p->weight = 0;
			p->latched = true;
			p->ramp_active = false;
			snprintf(p->reason, sizeof(p->reason), "manual: %s",
				 reason ? reason : "operator");
			p->rollback_unix_ns = at;
			p->reaction_ns = 0;
			break;
		case SYNC_CLEAR:
			p->latched = false;
			break;
		}
		/* The operator decided: a drill interrupted by shiftd's stop restores nothing. */
		p->drill_weight = 0;
		if (state_save(path, &st, err, sizeof(err)))
			fprintf(stderr,
				"shiftctl: warning: the map is updated but the state file is not: %s\n",
				err);
	}
	state_unlock(lock);
	state_free(&st);
	return 0;
}

/* --- the fleet: etcd first ------------------------------------------------------ */

struct fleet_change {
	enum { FC_WEIGHT, FC_ROLLBACK, FC_CLEAR, FC_RAMP } kind;
	const char *service;
	__u32 bp;
	bool force;
	const char *reason;
	__u32 steps[RAMP_MAX_STEPS], n;
	__u64 hold_ns;
	__u64 at; /* FC_ROLLBACK: this host's map write (unix ns) */
	bool was_latched; /* out: the fleet was rolled back before */
	__s64 rev; /* out: the revision written, or judged when nothing was */
};

static int fleet_change(struct fleet_svc_value *v, bool exists, void *arg, char *err, size_t errlen)
{
	struct fleet_change *fc = arg;

	(void)exists;
	fc->was_latched = v->latched;
	switch (fc->kind) {
	case FC_WEIGHT:
	case FC_RAMP:
		if (v->latched && !(fc->kind == FC_WEIGHT && fc->force)) {
			snprintf(
				err, errlen,
				"service %s is rolled back fleet-wide (%s, by %s); nothing changed. "
				"Run 'shiftctl clear %s' first%s",
				fc->service, v->reason, v->origin, fc->service,
				fc->kind == FC_WEIGHT ? ", or set-weight --force" : "");
			return -EPERM;
		}
		memset(v, 0, sizeof(*v));
		if (fc->kind == FC_RAMP) {
			v->has_ramp = true;
			memcpy(v->ramp.steps, fc->steps, sizeof(fc->steps));
			v->ramp.n = fc->n;
			v->ramp.hold_ns = fc->hold_ns;
			v->ramp.start_unix_ns = now_unix_ns();
			v->weight_bp = fc->steps[0];
		} else {
			v->weight_bp = fc->bp;
		}
		break;
	case FC_ROLLBACK:
		if (v->latched)
			return 1;
		memset(v, 0, sizeof(*v));
		v->latched = true;
		snprintf(v->reason, sizeof(v->reason), "manual: %s",
			 fc->reason ? fc->reason : "operator");
		break;
	case FC_CLEAR:
		if (!v->latched)
			return 1;
		v->latched = false;
		v->reason[0] = '\0';
		v->has_ramp = false;
		break;
	}
	snprintf(v->origin, sizeof(v->origin), "%s", FLEET_ORIGIN_OPERATOR);
	v->unix_ns = fc->at ? fc->at : now_unix_ns();
	return 0;
}

/*
 * Write a change to the fleet. 0 written (or nothing to write), 1 failed
 * (message printed), 2 unreachable with quiet_unreachable (a warning printed),
 * 3 with quiet_unreachable when the config that does not load leaves this
 * host's fleet unknown (a warning printed). Not a fleet node: 0, nothing done.
 */
static int fleet_write(const struct ctl *c, struct fleet_change *fc, bool quiet_unreachable)
{
	static const char *const what[] = { "weight", "rollback", "clear", "ramp" };
	const struct conf_fleet *fl = &c->conf->fleet;
	const char *why = part_unknown(c, CONF_PART_FLEET);
	char err[1024] = "";
	int rc;

	if (why && quiet_unreachable) {
		fprintf(stderr, "shiftctl: warning: this host's fleet cannot be told (%s)\n", why);
		return 3;
	}
	/* Etcd first, or this host would leave its fleet behind: fix the file. */
	if (why)
		return fail("service %s: this host's fleet cannot be told (%s), and a fleet node "
			    "writes etcd first; nothing changed",
			    fc->service, why);
	if (!fl->enabled)
		return 0;
	rc = fleet_cli_update(fl, fc->service, fleet_change, fc, &fc->rev, err, sizeof(err));
	if (rc < 0 && !err[0])
		snprintf(err, sizeof(err), "fleet %s: %s", fl->fleet, strerror(-rc));
	if (rc == 0) {
		printf("fleet %s: %s of %s written at revision %lld\n", fl->fleet, what[fc->kind],
		       fc->service, (long long)fc->rev);
		return 0;
	}
	if (rc == 1)
		return 0;
	if (rc == -EHOSTUNREACH && quiet_unreachable) {
		fprintf(stderr, "shiftctl: warning: %s\n", err);
		return 2;
	}
	if (rc == -EHOSTUNREACH)
		return fail("%s; nothing changed", err);
	return fail("%s", err);
}

static int cmd_fleet_status(const struct ctl *c, bool as_json)
{
	const char *why = part_unknown(c, CONF_PART_FLEET);
	char err[1024];

	if (why)
		return fail("this host's fleet cannot be told: %s", why);
	if (!c->conf->fleet.enabled)
		return fail("no [fleet] section in %s: this host is not part of a fleet",
			    c->conf_path);
	if (fleet_cli_status(&c->conf->fleet, as_json, stdout, err, sizeof(err)))
		return fail("%s", err);
	return 0;
}

/* What a weight word says, for a message. */
static const char *word_say(__u32 word, char *buf, size_t len)
{
	char w[WEIGHT_STR_LEN];

	if (word & SHIFT_WEIGHT_DRILL)
		snprintf(buf, len, "in a rollback drill");
	else if (word & SHIFT_WEIGHT_LATCHED)
		snprintf(buf, len, "rolled back");
	else
		snprintf(buf, len, "green %s",
			 weight_format(word & SHIFT_WEIGHT_MASK, w, sizeof(w)));
	return buf;
}

/*
 * Write word over was, the word this command read and decided from, and
 * over nothing else: a rollback written since (shiftd's trigger, another
 * shiftctl) stays. fleet_rev: the etcd revision this command wrote first, or
 * 0. 0, or 1 after saying what happened.
 */
static int word_swap(struct shift_maps *m, const char *name, __u32 id, __u32 was, __u32 word,
		     __s64 fleet_rev)
{
	char now[48];
	__u32 seen;
	int err;

	err = dp_weight_cas(m, id, was, word, &seen);
	if (err == -EAGAIN) {
		fail("service %s: the weight changed while this command ran (%s now); this "
		     "host's map was not written",
		     name, word_say(seen, now, sizeof(now)));
		if (fleet_rev > 0)
			fprintf(stderr, "shiftctl: the fleet took the change at revision %lld\n",
				(long long)fleet_rev);
		return 1;
	}
	if (dp_weight_cas_unchecked(err)) {
		fprintf(stderr,
			"shiftctl: warning: cannot compare-and-swap the weight word (%s): written "
			"without checking that it was still what this command read\n",
			strerror(-err));
		err = dp_weight_set(m, id, word);
	}
	if (err)
		return fail("service %s: cannot write the weight: %s", name, strerror(-err));
	return 0;
}

/*
 * The shadow gate: from 0, green starts taking users, so shadow's verdict
 * counts. Only shiftd has it (it pairs the replays): no shiftd, no shadow
 * data, no refusal; an older shiftd that does not know the question answers
 * "unknown request" (code 2), which is not a refusal either. true (and
 * shiftd's reason printed) when it refuses.
 */
static bool shadow_refuses(const struct ctl *c, const char *name)
{
	struct ctl_request q = { .verb = "shadow-gate", .argc = 1 };
	char msg[600];
	int code;

	snprintf(q.argv[0], CTL_ARG_LEN, "%s", name);
	if (agent_call(c, &q, &code, NULL, msg, sizeof(msg)) == 0 && code == 1) {
		fail("%s", msg);
		return true;
	}
	return false;
}

static int cmd_set_weight(const struct ctl *c, const char *name, __u32 bp, bool force)
{
	struct fleet_change fc = { .kind = FC_WEIGHT, .service = name, .bp = bp, .force = force };
	struct shift_maps m;
	char w1[WEIGHT_STR_LEN], w2[WEIGHT_STR_LEN];
	__u32 id, word, slot0;
	int err;

	if (open_maps(c, &m))
		return 1;
	if (find_service(c, &m, name, &id) || dp_weight_get(&m, id, &word)) {
		dp_maps_close(&m);
		return 1;
	}
	if ((word & SHIFT_WEIGHT_DRILL) && !force) {
		dp_maps_close(&m);
		return fail("service %s is in a rollback drill: shiftd puts green back when it "
			    "ends; nothing changed (--force ends the drill and sets the weight)",
			    name);
	}
	if ((word & SHIFT_WEIGHT_LATCHED) && !force) {
		dp_maps_close(&m);
		return fail("service %s is rolled back; nothing changed. Run 'shiftctl clear %s' "
			    "first, or set-weight --force",
			    name, name);
	}
	if ((word & SHIFT_WEIGHT_MASK) == 0 && bp > 0 && !force && shadow_refuses(c, name)) {
		dp_maps_close(&m);
		return 1;
	}
	/* The readyz gate: the green ring holds healthy backends only. */
	if (bp > 0 && !force &&
	    (dp_ring_get(&m, id, SHIFT_GREEN, 0, &slot0) || slot0 == SHIFT_NO_BACKEND)) {
		dp_maps_close(&m);
		return fail("service %s: green has no healthy backend; nothing changed (--force "
			    "to override)",
			    name);
	}
	if (fleet_write(c, &fc, false)) {
		dp_maps_close(&m);
		return 1;
	}
	err = word_swap(&m, name, id, word, bp, fc.rev);
	dp_maps_close(&m);
	if (err)
		return err;
	printf("%s: green %s (was %s%s)\n", name, weight_format(bp, w1, sizeof(w1)),
	       weight_format(word & SHIFT_WEIGHT_MASK, w2, sizeof(w2)),
	       (word & SHIFT_WEIGHT_LATCHED) ? ", rolled back: latch lifted by --force" : "");
	return sync_state(c, name, SYNC_WEIGHT, bp, NULL, 0, fc.rev);
}

static int cmd_rollback(const struct ctl *c, const char *name, const char *reason, bool evict)
{
	struct shift_maps m;
	__u64 evicted = 0, at;
	__u32 id, word = 0;
	int err, fw, rc;

	if (open_maps(c, &m))
		return 1;
	if (find_service(c, &m, name, &id)) {
		dp_maps_close(&m);
		return 1;
	}
	dp_weight_get(&m, id, &word);
	/* First and alone: the write that stops new green connections. */
	err = dp_weight_set(&m, id, SHIFT_WEIGHT_LATCHED);
	at = now_unix_ns(); /* the rollback's time, here and in the fleet */
	if (err) {
		dp_maps_close(&m);
		return fail("service %s: cannot write the weight: %s", name, strerror(-err));
	}
	if (evict) {
		err = dp_flows_evict(&m, id, SHIFT_GREEN, &evicted);
		if (err)
			fprintf(stderr, "shiftctl: warning: evicting green connections: %s\n",
				strerror(-err));
	}
	dp_maps_close(&m);
	/* A drill's latch is lifted when its hold ends: this rollback replaces it and stays. */
	if (word & SHIFT_WEIGHT_DRILL)
		word = 0;
	printf("%s: rolled back, green 0%%%s", name,
	       (word & SHIFT_WEIGHT_LATCHED) ? " (was already rolled back)" : "");
	if (evict)
		printf(", %llu green connections re-steered to blue", (unsigned long long)evicted);
	printf("\n");
	{
		/* Here first (a rollback is always allowed), then the fleet. Cut off:
		 * shiftd publishes it when etcd is back. */
		struct fleet_change fc = {
			.kind = FC_ROLLBACK, .service = name, .reason = reason, .at = at
		};

		fw = fleet_write(c, &fc, true);
		if (fw == 2)
			fprintf(stderr,
				"shiftctl: rolled back on this host; shiftd publishes it to "
				"the fleet when etcd is back\n");
		else if (fw == 3)
			fprintf(stderr,
				"shiftctl: rolled back on this host, the fleet not written; a "
				"running shiftd of a fleet publishes it\n");
		else if (fw)
			fprintf(stderr,
				"shiftctl: rolled back on this host only, not in the fleet; "
				"shiftd publishes it when it can\n");
	}
	rc = word & SHIFT_WEIGHT_LATCHED ? 0 : sync_state(c, name, SYNC_ROLLBACK, 0, reason, at, 0);
	/* Unreachable is the documented exit 0, and so is a fleet the config that
	 * does not load leaves unknown (a rollback is always allowed); an etcd that
	 * answered with an error is a failed write, and a script must not take the
	 * fleet as rolled back. */
	return rc ? rc : fw == 1;
}

static int cmd_clear(const struct ctl *c, const char *name)
{
	struct fleet_change fc = { .kind = FC_CLEAR, .service = name };
	struct shift_maps m;
	__u32 id, word = 0;
	int err;

	if (open_maps(c, &m))
		return 1;
	if (find_service(c, &m, name, &id)) {
		dp_maps_close(&m);
		return 1;
	}
	dp_weight_get(&m, id, &word);
	if (fleet_write(c, &fc, false)) {
		dp_maps_close(&m);
		return 1;
	}
	if (!(word & SHIFT_WEIGHT_LATCHED)) {
		dp_maps_close(&m);
		printf("%s: not rolled back, nothing to clear\n", name);
		return 0;
	}
	err = word_swap(&m, name, id, word, 0, fc.rev);
	dp_maps_close(&m);
	if (err)
		return err;
	printf("%s: rollback latch cleared, green stays at 0%%\n", name);
	return sync_state(c, name, SYNC_CLEAR, 0, NULL, 0, fc.rev);
}

/* A fleet ramp: the plan goes to etcd once; every shiftd (this one too) follows it. */
static int cmd_fleet_ramp(const struct ctl *c, const char *name, const char *steps,
			  const char *hold, bool force)
{
	struct fleet_change fc = { .kind = FC_RAMP, .service = name };
	struct shift_maps m;
	char err[512];
	__u32 id, slot0, word;

	if (ramp_parse_steps(steps, fc.steps, &fc.n, err, sizeof(err)) ||
	    units_parse_duration(hold, 1000000ull, 86400ull * 1000000000ull, &fc.hold_ns, err,
				 sizeof(err)))
		return fail("%s", err);
	if (open_maps(c, &m))
		return 1;
	if (find_service(c, &m, name, &id) || dp_weight_get(&m, id, &word)) {
		dp_maps_close(&m);
		return 1;
	}
	/* This host's shadow verdict, as for a local ramp: each node's shiftd
	 * follows the plan without asking. */
	if ((word & SHIFT_WEIGHT_MASK) == 0 && !force && shadow_refuses(c, name)) {
		dp_maps_close(&m);
		return 1;
	}
	/* The readyz gate, as for a local ramp: green must have somewhere to go here. */
	if (dp_ring_get(&m, id, SHIFT_GREEN, 0, &slot0) || slot0 == SHIFT_NO_BACKEND) {
		dp_maps_close(&m);
		return fail("service %s: green has no healthy backend; nothing changed", name);
	}
	dp_maps_close(&m);
	if (fleet_write(c, &fc, false))
		return 1;
	printf("%s: ramp %s, hold %s, started fleet-wide; every node steps by the plan\n", name,
	       steps, hold);
	return 0;
}

static int print_agent_answer(int code, const char *msg, char *body)
{
	if (code) {
		fprintf(stderr, "shiftctl: %s\n", msg);
		free(body);
		return code;
	}
	if (body)
		fputs(body, stdout);
	free(body);
	return 0;
}

static int cmd_status(const struct ctl *c, const char *only, bool as_json, bool backends)
{
	struct ctl_request q = { 0 };
	struct shift_maps m;
	struct shift_state state = { 0 };
	struct st_model st;
	char err[512], path[sizeof(c->conf->state_dir) + 8];
	char *body = NULL;
	int code, rc;

	snprintf(q.verb, sizeof(q.verb), "%s", backends ? "backends" : "status");
	if (only)
		snprintf(q.argv[q.argc++], CTL_ARG_LEN, "%s", only);
	snprintf(q.argv[q.argc++], CTL_ARG_LEN, "%s", as_json ? "json" : "text");
	rc = agent_call(c, &q, &code, &body, err, sizeof(err));
	if (rc == 0) {
		rc = print_agent_answer(code, err, body);
		if (!rc && as_json)
			putchar('\n');
		return rc;
	}
	if (!agent_down(rc))
		fprintf(stderr, "shiftctl: warning: shiftd did not answer (%s)\n", strerror(-rc));

	/* shiftd is down: the maps still tell weights, latches and counters. */
	if (open_maps(c, &m))
		return 1;
	rc = status_collect(&m, only, &st, NULL);
	dp_maps_close(&m);
	if (rc == -ENOENT)
		return fail("no service '%s'", only);
	if (rc)
		return fail("status: %s", strerror(-rc));
	snprintf(path, sizeof(path), "%s/state", c->conf->state_dir);
	if (part_unknown(c, CONF_PART_STATE_DIR))
		fprintf(stderr,
			"shiftctl: warning: the state file is not read (the last rollbacks' "
			"reasons): where it is cannot be told (%s)\n",
			part_unknown(c, CONF_PART_STATE_DIR));
	else if (state_load(path, &state, err, sizeof(err)) == 0) {
		status_add_state(&st, &state);
		state_free(&state);
	}
	if (as_json) {
		struct json j;

		json_init(&j);
		if (backends)
			status_render_backends_json(&st, &j);
		else
			status_render_json(&st, &j);
		if (!j.failed)
			printf("%s\n", j.buf);
		rc = j.failed ? fail("out of memory") : 0;
		json_free(&j);
	} else if (backends) {
		status_render_backends_text(&st, stdout);
	} else {
		status_render_text(&st, stdout);
	}
	status_free(&st);
	return rc;
}

static const char *color_name(int color)
{
	return color == SHIFT_GREEN ? "green" : "blue";
}

static const char *const which_why_names[] = {
	[WHICH_WEIGHT] = "weight",
	[WHICH_OVERRIDE] = "override",
	[WHICH_ROLLED_BACK] = "rolled back",
};

static void which_json(const char *name, const struct shift_addr_key *cl,
		       const struct which_result *r, const char *client, const char *backend)
{
	char w[WEIGHT_STR_LEN];
	struct json j;

	json_init(&j);
	json_obj_open(&j, NULL);
	json_str(&j, "service", name);
	json_str(&j, "client", client);
	if (cl->port)
		json_u64(&j, "port", ntohs(cl->port));
	else
		json_null(&j, "port");
	json_str(&j, "affinity", r->client_affinity ? "client" : "flow");
	if (r->client_affinity)
		json_u64(&j, "affinity_prefix", r->prefix);
	json_u64(&j, "green_weight_bp", r->weight_bp);
	json_str(&j, "green_weight", weight_format(r->weight_bp, w, sizeof(w)));
	json_bool(&j, "rolled_back", r->latched);
	json_str(&j, "decided_by", which_why_names[r->why]);
	if (r->color < 0)
		json_null(&j, "color");
	else
		json_str(&j, "color", color_name(r->color));
	if (r->why == WHICH_WEIGHT && r->color >= 0)
		json_u64(&j, "slice", r->slice);
	json_bool(&j, "borrowed", r->borrowed);
	json_bool(&j, "no_backend", r->no_backend);
	if (backend)
		json_str(&j, "backend", backend);
	else
		json_null(&j, "backend");
	json_obj_close(&j);
	if (!j.failed)
		printf("%s\n", j.buf);
	json_free(&j);
}

/* What a new connection from ADDR[:PORT] gets now; the maps alone answer. */
static int cmd_which(const struct ctl *c, const char *name, const char *who, bool as_json)
{
	struct shift_addr_key cl, bk;
	struct which_result r;
	struct shift_maps m;
	char err[256], client[ADDR_ENDPOINT_LEN], backend[ADDR_ENDPOINT_LEN], w[WEIGHT_STR_LEN];
	__u32 id;
	int rc;

	if (which_parse_client(who, &cl, err, sizeof(err)))
		return usage_err("which: %s", err);
	if (open_maps(c, &m))
		return 1;
	if (find_service(c, &m, name, &id)) {
		dp_maps_close(&m);
		return 1;
	}
	rc = which_compute(&m, id, &cl, &r);
	dp_maps_close(&m);
	if (rc == -EAFNOSUPPORT)
		return usage_err("which: %s is %s but service %s's VIP is %s", who,
				 cl.family == SHIFT_AF_INET ? "IPv4" : "IPv6", name,
				 cl.family == SHIFT_AF_INET ? "IPv6" : "IPv4");
	if (rc)
		return fail("which: cannot read the maps of service %s: %s", name, strerror(-rc));
	addr_format(cl.family, cl.addr, client, sizeof(client));
	if (r.backend_id != SHIFT_NO_BACKEND) {
		memset(&bk, 0, sizeof(bk));
		memcpy(bk.addr, r.be.addr, sizeof(bk.addr));
		bk.port = r.be.port;
		bk.family = r.be.family;
		addr_format_endpoint(&bk, backend, sizeof(backend));
	}
	if (as_json) {
		which_json(name, &cl, &r, client,
			   r.backend_id != SHIFT_NO_BACKEND ? backend : NULL);
		return 0;
	}
	if (cl.port)
		printf("%s %s port %u: ", name, client, ntohs(cl.port));
	else
		printf("%s %s: ", name, client);
	if (r.color < 0) {
		printf("depends on the source port (affinity = flow): green for about %s of "
		       "ports; give ADDR:PORT\n",
		       weight_format(r.weight_bp, w, sizeof(w)));
		return 0;
	}
	if (r.no_backend) {
		printf("no backend (both pools empty%s): the datapath drops\n",
		       r.latched ? " or rolled back with blue empty" : "");
		return 0;
	}
	printf("%s", color_name(r.color));
	if (r.backend_id != SHIFT_NO_BACKEND)
		printf(" backend %s", backend);
	else
		printf(" (the backend depends on the source port)");
	putchar('\n');
	if (r.why == WHICH_ROLLED_BACK)
		printf("  rolled back: blue only\n");
	else if (r.why == WHICH_OVERRIDE)
		printf("  source-prefix override\n");
	else if (r.client_affinity)
		printf("  affinity client /%u: slice %u of 10000 %s green weight %s\n", r.prefix,
		       r.slice, r.slice < r.weight_bp ? "under" : "not under",
		       weight_format(r.weight_bp, w, sizeof(w)));
	else
		printf("  affinity flow: slice %u of 10000 %s green weight %s\n", r.slice,
		       r.slice < r.weight_bp ? "under" : "not under",
		       weight_format(r.weight_bp, w, sizeof(w)));
	if (r.borrowed)
		printf("  %s pool is empty: the other pool serves\n", color_name(r.color ^ 1));
	return 0;
}

static int cmd_agent(const struct ctl *c, const struct ctl_request *q, const char *what)
{
	char err[1024], *body = NULL;
	int code, rc;

	if (part_unknown(c, CONF_PART_CONTROL_SOCKET))
		return fail("%s needs shiftd, and where its control socket is cannot be told: %s",
			    what, part_unknown(c, CONF_PART_CONTROL_SOCKET));
	rc = agent_call(c, q, &code, &body, err, sizeof(err));
	if (agent_down(rc))
		return fail("%s needs shiftd, which is not running (%s)", what,
			    down_why(rc, c->conf->control_socket, err, sizeof(err)));
	if (rc)
		return fail("shiftd did not answer: %s", strerror(-rc));
	/* shiftd answers these with no body: say what was done. */
	if (!code && (!body || !*body) && !strcmp(q->verb, "reload"))
		printf("shiftd: config reloaded\n");
	else if (!code && (!body || !*body) && !strcmp(q->verb, "ramp"))
		printf("%s: ramp started (shiftctl status %s shows its steps)\n", q->argv[0],
		       q->argv[0]);
	return print_agent_answer(code, err, body);
}

/* Wait for a running drill's report: shiftd answers "running" or "done EXIT" + report. */
static int drill_wait(const struct ctl *c, const char *name, unsigned long long id, __u64 hold_ns,
		      bool as_json)
{
	struct ctl_request q = { .verb = "drill-report", .argc = 3 };
	struct timespec ts = { .tv_nsec = 200 * 1000000L };
	/* The hold, the tick that ends it, and room for a loaded machine. */
	long polls = (long)(hold_ns / 200000000ull) + 150;
	char err[1024], *body = NULL;
	int code, rc, last = 0;

	snprintf(q.argv[0], CTL_ARG_LEN, "%s", name);
	snprintf(q.argv[1], CTL_ARG_LEN, "%llu", id);
	snprintf(q.argv[2], CTL_ARG_LEN, "%s", as_json ? "json" : "text");
	while (polls-- > 0) {
		nanosleep(&ts, NULL);
		rc = agent_call(c, &q, &code, &body, err, sizeof(err));
		if (agent_down(rc))
			return fail("shiftd stopped during drill %llu: when it starts again it "
				    "restores %s's weight or says why ('shiftctl status %s')",
				    id, name, name);
		if (rc) {
			last = rc; /* a busy shiftd: ask again */
			continue;
		}
		if (code)
			return print_agent_answer(code, err, body);
		if (!strncmp(body, "done ", 5)) {
			int exit_code = body[5] == '0' ? 0 : 1;
			char *nl = strchr(body, '\n');

			fputs(nl ? nl + 1 : "", stdout);
			free(body);
			return exit_code;
		}
		free(body);
		body = NULL;
	}
	return fail("drill %llu on %s: no result after the hold%s%s; shiftd still runs it "
		    "('shiftctl status %s')",
		    id, name, last ? ": " : "", last ? strerror(-last) : "", name);
}

static int cmd_drill(const struct ctl *c, const char *name, const char *hold, __u64 hold_ns,
		     bool as_json)
{
	struct ctl_request q = { .verb = "drill", .argc = 2 };
	char err[1024], *body = NULL, *end;
	unsigned long long id;
	int code, rc;

	/* A file that does not load names no service: shiftd answers for its own. */
	if (!c->salvaged && !conf_find_service(c->conf, name))
		return fail("drill: no service '%s' in %s", name, c->conf_path);
	if (part_unknown(c, CONF_PART_CONTROL_SOCKET))
		return fail("drill needs shiftd, and where its control socket is cannot be told: "
			    "%s; nothing changed",
			    part_unknown(c, CONF_PART_CONTROL_SOCKET));
	snprintf(q.argv[0], CTL_ARG_LEN, "%s", name);
	snprintf(q.argv[1], CTL_ARG_LEN, "%s", hold);
	rc = agent_call(c, &q, &code, &body, err, sizeof(err));
	if (agent_down(rc))
		return fail("drill needs shiftd, which is not running (%s); nothing changed",
			    down_why(rc, c->conf->control_socket, err, sizeof(err)));
	if (rc)
		return fail("shiftd did not answer: %s (see 'shiftctl status %s': the drill may "
			    "have started)",
			    strerror(-rc), name);
	if (code)
		return print_agent_answer(code, err, body);
	id = strtoull(body, &end, 10);
	if (end == body) {
		free(body);
		return fail("shiftd answered the drill with no id");
	}
	free(body);
	if (!as_json)
		fprintf(stderr, "shiftctl: drill %llu on %s: rolled back, holding %s\n", id, name,
			hold);
	return drill_wait(c, name, id, hold_ns, as_json);
}

static int run(int argc, char **argv)
{
	static const struct option gopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct option vopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'f' },
		{ "reason", required_argument, NULL, 'r' },
		{ "evict", no_argument, NULL, 'e' },
		{ "hold", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *reason = NULL, *hold = NULL, *verb;
	__u64 drill_hold = DRILL_DEFAULT_HOLD_NS;
	bool as_json = false, force = false, evict = false;
	const char *pos[4] = { 0 };
	bool told_no_socket = false;
	struct ctl c = { .conf_path = CONF_DEFAULT_PATH, .told_no_socket = &told_no_socket };
	struct conf_salvage salvage;
	char err[1024];
	int opt, npos = 0, rc;

	shift_log_init("shiftctl", SHIFT_LOG_WARN);
	/* Global options stop at the command word. */
	while ((opt = getopt_long(argc, argv, "+c:h", gopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			c.conf_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage_err("bad option");
		}
	}
	if (optind >= argc)
		return usage_err("missing command");
	verb = argv[optind];
	argc -= optind;
	argv += optind;
	/* 0, not 1: glibc then re-initialises getopt, dropping the "+" (stop at the
	 * first non-option) of the global pass, so options may follow arguments. */
	optind = 0;
	opterr = 0; /* our messages name the option and the command */
	while ((opt = getopt_long(argc, argv, "h", vopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			as_json = true;
			break;
		case 'f':
			force = true;
			break;
		case 'r':
			reason = optarg;
			break;
		case 'e':
			evict = true;
			break;
		case 'H':
			hold = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			/* "-1" reads as an option to getopt: say what it really is. */
			if (optopt >= '0' && optopt <= '9')
				return usage_err("%s: a weight cannot be negative", verb);
			if (optopt == 'r' || optopt == 'H')
				return usage_err("%s: %s needs a value", verb, argv[optind - 1]);
			return usage_err("%s: unknown option '%s'", verb, argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		if (npos >= 3)
			return usage_err("%s: too many arguments ('%s')", verb, argv[optind]);
		pos[npos++] = argv[optind];
	}

/* Refuse options a command does not take, so a typo never changes something else. */
#define ONLY(cond, what)                                                     \
	do {                                                                 \
		if (!(cond))                                                 \
			return usage_err("%s does not take %s", verb, what); \
	} while (0)
#define NARGS(lo, hi, form)                                           \
	do {                                                          \
		if (npos < (lo) || npos > (hi))                       \
			return usage_err("usage: shiftctl %s", form); \
	} while (0)

	if (!strcmp(verb, "status") || !strcmp(verb, "backends")) {
		ONLY(!force && !reason && !evict && !hold, "--force/--reason/--evict/--hold");
		if (!strcmp(verb, "status"))
			NARGS(0, 1, "status [SERVICE] [--json]");
		else
			NARGS(1, 1, "backends SERVICE [--json]");
	} else if (!strcmp(verb, "set-weight")) {
		ONLY(!as_json && !reason && !evict && !hold, "--json/--reason/--evict/--hold");
		NARGS(2, 2, "set-weight SERVICE WEIGHT [--force]");
	} else if (!strcmp(verb, "rollback")) {
		ONLY(!as_json && !force && !hold, "--json/--force/--hold");
		NARGS(1, 1, "rollback SERVICE [--reason TEXT] [--evict]");
		if (reason && (!*reason || strlen(reason) > 100))
			return usage_err("--reason: 1 to 100 bytes");
		/* It goes into JSON (status, the fleet's etcd value), which cannot carry it. */
		if (reason && !fleet_utf8_valid(reason))
			return usage_err("--reason: not valid UTF-8 (check the terminal's or "
					 "the script's encoding)");
	} else if (!strcmp(verb, "clear")) {
		ONLY(!as_json && !force && !reason && !evict && !hold, "options");
		NARGS(1, 1, "clear SERVICE");
	} else if (!strcmp(verb, "promote")) {
		ONLY(!as_json && !reason && !evict && !hold, "--json/--reason/--evict/--hold");
		NARGS(1, 1, "promote SERVICE [--force]");
	} else if (!strcmp(verb, "ramp")) {
		__u32 steps[RAMP_MAX_STEPS], n;
		__u64 ns;

		ONLY(!as_json && !reason && !evict, "--json/--reason/--evict");
		NARGS(2, 2, "ramp SERVICE STEPS --hold DURATION [--force]");
		if (!hold)
			return usage_err("ramp: missing --hold DURATION (e.g. --hold 30s)");
		if (ramp_parse_steps(pos[1], steps, &n, err, sizeof(err)))
			return usage_err("%s", err);
		if (units_parse_duration(hold, 1000000ull, 86400ull * 1000000000ull, &ns, err,
					 sizeof(err)))
			return usage_err("--hold: %s", err);
	} else if (!strcmp(verb, "which")) {
		ONLY(!force && !reason && !evict && !hold, "--force/--reason/--evict/--hold");
		NARGS(2, 2, "which SERVICE ADDR[:PORT] [--json]");
		{
			struct shift_addr_key cl;

			/* Before the config and the maps: a bad address changes nothing. */
			if (which_parse_client(pos[1], &cl, err, sizeof(err)))
				return usage_err("which: %s", err);
		}
	} else if (!strcmp(verb, "reload")) {
		ONLY(!as_json && !force && !reason && !evict && !hold, "options");
		NARGS(0, 0, "reload");
	} else if (!strcmp(verb, "drill")) {
		ONLY(!force && !reason && !evict, "--force/--reason/--evict");
		NARGS(1, 1, "drill SERVICE [--hold DURATION] [--json]");
		if (hold && units_parse_duration(hold, DRILL_MIN_HOLD_NS, DRILL_MAX_HOLD_NS,
						 &drill_hold, err, sizeof(err)))
			return usage_err("drill: --hold: %s", err);
	} else if (!strcmp(verb, "fleet")) {
		ONLY(!force && !reason && !evict && !hold, "--force/--reason/--evict/--hold");
		NARGS(1, 1, "fleet status [--json]");
		if (strcmp(pos[0], "status"))
			return usage_err("fleet: unknown subcommand '%s' (expected status)",
					 pos[0]);
	} else {
		return usage_err("unknown command '%s'", verb);
	}
	if (pos[0] && strcmp(verb, "fleet") && strlen(pos[0]) >= SHIFT_NAME_LEN)
		return usage_err("service name '%.20s...' is too long", pos[0]);

	/* Parse the weight before touching anything: a bad one changes nothing. */
	{
		__u32 bp = SHIFT_WEIGHT_MAX;

		if (!strcmp(verb, "set-weight") && weight_parse(pos[1], &bp, err, sizeof(err)))
			return usage_err("set-weight: %s", err);

		if (conf_load(c.conf_path, &c.conf, err, sizeof(err))) {
			char why[1024];

			/* A reload would only be refused: say so here, with the reason. */
			if (!strcmp(verb, "reload"))
				return fail("%s; not reloaded (a running shiftd keeps its config)",
					    err);
			/*
			 * The operator may be mid-edit, and a rollback must not wait for
			 * the file: act on the shift that runs, with what the file still
			 * says of where it is. An unreadable file tells nothing.
			 */
			if (conf_salvage_load(c.conf_path, &c.conf, &salvage, why, sizeof(why)))
				return fail("%s", err);
			c.salvaged = &salvage;
			fprintf(stderr,
				"shiftctl: warning: the config does not load: %s\n"
				"shiftctl: warning: acting on what runs (services by name from the "
				"pinned maps, not from the file); shiftd keeps its last good "
				"config until the file is fixed and reloaded\n",
				err);
		}

		if (!strcmp(verb, "status"))
			rc = cmd_status(&c, pos[0], as_json, false);
		else if (!strcmp(verb, "backends"))
			rc = cmd_status(&c, pos[0], as_json, true);
		else if (!strcmp(verb, "set-weight") || !strcmp(verb, "promote"))
			rc = cmd_set_weight(&c, pos[0], bp, force);
		else if (!strcmp(verb, "rollback"))
			rc = cmd_rollback(&c, pos[0], reason, evict);
		else if (!strcmp(verb, "clear"))
			rc = cmd_clear(&c, pos[0]);
		else if (!strcmp(verb, "drill"))
			rc = cmd_drill(&c, pos[0], hold ? hold : "10s", drill_hold, as_json);
		else if (!strcmp(verb, "fleet"))
			rc = cmd_fleet_status(&c, as_json);
		else if (!strcmp(verb, "which"))
			rc = cmd_which(&c, pos[0], pos[1], as_json);
		else if (!strcmp(verb, "ramp") && c.conf->fleet.enabled)
			rc = cmd_fleet_ramp(&c, pos[0], pos[1], hold, force);
		else {
			struct ctl_request q = { 0 };

			snprintf(q.verb, sizeof(q.verb), "%s", verb);
			if (!strcmp(verb, "ramp")) {
				snprintf(q.argv[0], CTL_ARG_LEN, "%s", pos[0]);
				snprintf(q.argv[1], CTL_ARG_LEN, "%s", pos[1]);
				snprintf(q.argv[2], CTL_ARG_LEN, "%s", hold);
				q.argc = 3;
				if (force)
					snprintf(q.argv[q.argc++], CTL_ARG_LEN, "force");
			}
			rc = cmd_agent(&c, &q, verb);
		}
	}
	conf_free(c.conf);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = run(argc, argv);

	/* A status --json into a full disk is no success: what was printed is
	 * what a script reads. */
	if (fflush(stdout) || ferror(stdout)) {
		int e = errno ? errno : EIO;

		fprintf(stderr, "shiftctl: write error on standard output: %s\n", strerror(e));
		if (!rc)
			rc = 1;
	}
	return rc;
}
