// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <shift/maps.h>

#include "config/errmsg.h"
#include "ops/state.h"
#include "config/units.h"

#define HEADER "shift-state "
#define CRC_TAG "crc32 "
#define CRC_LINE_LEN (sizeof(CRC_TAG) - 1 + 8 + 1)
/* Thousands of services fit in well under a megabyte; more is not our file. */
#define STATE_MAX_FILE (16u << 20)

static bool valid_name(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return n > 0 && n < STATE_NAME_LEN;
}

/* A word of the file's own vocabulary (a drill's result); empty is allowed. */
static bool valid_token(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_'))
			return false;
	return n < STATE_TOKEN_LEN;
}

/* --- writing ----------------------------------------------------------------- */

/* Kept bytes need no quoting in a space-separated key=value line. */
static bool reason_plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%' && c != '=';
}

static int validate(const struct state_service *s, char *err, size_t errlen)
{
	__u32 i;

	if (!memchr(s->name, '\0', sizeof(s->name)) || !valid_name(s->name)) {
		seterr(err, errlen, "'%.64s' is not a service name", s->name);
		return -EINVAL;
	}
	if (s->weight > SHIFT_WEIGHT_MAX) {
		seterr(err, errlen, "service %s: weight %u above %u", s->name, s->weight,
		       SHIFT_WEIGHT_MAX);
		return -EINVAL;
	}
	if (!memchr(s->reason, '\0', sizeof(s->reason)) ||
	    !memchr(s->rollback_origin, '\0', sizeof(s->rollback_origin))) {
		seterr(err, errlen, "service %s: reason or origin not terminated", s->name);
		return -EINVAL;
	}
	if (s->ramp_n > STATE_MAX_RAMP_STEPS || (s->ramp_n && s->ramp_index >= s->ramp_n) ||
	    (!s->ramp_n && (s->ramp_index || s->ramp_active))) {
		seterr(err, errlen, "service %s: ramp step %u of %u", s->name, s->ramp_index,
		       s->ramp_n);
		return -EINVAL;
	}
	if (s->drill_weight > SHIFT_WEIGHT_MAX ||
	    !memchr(s->last_drill, '\0', sizeof(s->last_drill)) || !valid_token(s->last_drill)) {
		seterr(err, errlen, "service %s: bad drill record", s->name);
		return -EINVAL;
	}
	for (i = 0; i < s->ramp_n; i++) {
		if (s->ramp_steps[i] > SHIFT_WEIGHT_MAX) {
			seterr(err, errlen, "service %s: ramp step weight %u above %u", s->name,
			       s->ramp_steps[i], SHIFT_WEIGHT_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

/* Worst case per service: every reason and origin byte as %XX, 32 steps of "10000,". */
#define LINE_MAX_LEN (800 + 3 * STATE_REASON_LEN + 3 * STATE_NAME_LEN + STATE_MAX_RAMP_STEPS * 6)

/* Any bytes but NUL, as %XX where a space or '=' would end the field. */
static void encode_text(const char *in, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *c;
	size_t r = 0;

	for (c = (const unsigned char *)in; *c; c++) {
		if (reason_plain(*c)) {
			out[r++] = (char)*c;
		} else {
			out[r++] = '%';
			out[r++] = hex[*c >> 4];
			out[r++] = hex[*c & 15];
		}
	}
	out[r] = '\0';
}

static size_t format_service(const struct state_service *s, char *p, size_t room)
{
	char reason[3 * STATE_REASON_LEN + 1], steps[STATE_MAX_RAMP_STEPS * 6 + 1];
	char origin[3 * STATE_NAME_LEN + 1];
	size_t k = 0;
	__u32 i;
	int n;

	encode_text(s->reason, reason);
	encode_text(s->rollback_origin, origin);
	steps[0] = '\0';
	for (i = 0; i < s->ramp_n; i++)
		k += (size_t)snprintf(steps + k, sizeof(steps) - k, "%s%u", i ? "," : "",
				      s->ramp_steps[i]);
	n = snprintf(
		p, room,
		"name=%s weight=%u latched=%d reason=%s rollback_unix_ns=%llu reaction_ns=%llu "
		"ramp_active=%d ramp_steps=%s ramp_index=%u ramp_hold_ns=%llu "
		"ramp_step_started_unix_ns=%llu drill_weight=%u drill_ramp=%d "
		"drill_started_unix_ns=%llu drill_ends_unix_ns=%llu last_drill=%s last_drill_unix_ns=%llu "
		"last_drill_ttb_ns=%llu fleet_publish=%d rollback_origin=%s fleet_lag_us=%lld\n",
		s->name, s->weight, s->latched, reason, (unsigned long long)s->rollback_unix_ns,
		(unsigned long long)s->reaction_ns, s->ramp_active, steps, s->ramp_index,
		(unsigned long long)s->ramp_hold_ns,
		(unsigned long long)s->ramp_step_started_unix_ns, s->drill_weight, s->drill_ramp,
		(unsigned long long)s->drill_started_unix_ns,
		(unsigned long long)s->drill_ends_unix_ns, s->last_drill,
		(unsigned long long)s->last_drill_unix_ns, (unsigned long long)s->last_drill_ttb_ns,
		s->fleet_publish, origin, (long long)s->fleet_lag_us);
	return n < 0 ? 0 : (size_t)n;
}

int state_format(const struct shift_state *st, char **out, size_t *len, char *err, size_t errlen)
{
	size_t cap, used;
	char *buf;
	__u32 i, j;
	int ret;

	*out = NULL;
	*len = 0;
	if (st->n > STATE_MAX_SERVICES) {
		seterr(err, errlen, "%u services, more than %u", st->n, STATE_MAX_SERVICES);
		return -EINVAL;
	}
	for (i = 0; i < st->n; i++) {
		ret = validate(&st->svc[i], err, errlen);
		if (ret)
			return ret;
		for (j = 0; j < i; j++) {
			if (!strcmp(st->svc[i].name, st->svc[j].name)) {
				seterr(err, errlen, "service %s listed twice", st->svc[i].name);
				return -EINVAL;
			}
		}
	}
	cap = 32 + (size_t)st->n * LINE_MAX_LEN + CRC_LINE_LEN + 1;
	buf = malloc(cap);
	if (!buf) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	used = (size_t)snprintf(buf, cap, HEADER "%d\n", STATE_VERSION);
	for (i = 0; i < st->n; i++)
		used += format_service(&st->svc[i], buf + used, cap - used);
	used += (size_t)snprintf(buf + used, cap - used, CRC_TAG "%08lx\n",
				 crc32(0L, (const Bytef *)buf, (uInt)used));
	*out = buf;
	*len = used;
	return 0;
}

/* --- reading ----------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_text(const char *v, char *out, size_t cap)
{
	size_t n = 0;
	int hi, lo;

	for (; *v; v++) {
		if (n == cap - 1)
			return -1;
		if (*v != '%') {
			if (!reason_plain((unsigned char)*v))
				return -1;
			out[n++] = *v;
			continue;
		}
		hi = hexval(v[1]);
		lo = hi < 0 ? -1 : hexval(v[2]);
		/* %00 would cut the reason short: the writer never emits it. */
		if (lo < 0 || (!hi && !lo))
			return -1;
		out[n++] = (char)(hi << 4 | lo);
		v += 2;
	}
	out[n] = '\0';
	return 0;
}

static int parse_u64(const char *v, __u64 max, __u64 *out)
{
	return units_parse_u64(v, 0, max, out, NULL, 0);
}

static int parse_steps(const char *v, struct state_service *s)
{
	char buf[16];
	const char *comma;
	size_t n;
	__u64 w;

	s->ramp_n = 0;
	if (!*v)
		return 0;
	for (;;) {
		comma = strchr(v, ',');
		n = comma ? (size_t)(comma - v) : strlen(v);
		if (!n || n >= sizeof(buf) || s->ramp_n == STATE_MAX_RAMP_STEPS)
			return -1;
		memcpy(buf, v, n);
		buf[n] = '\0';
		if (parse_u64(buf, SHIFT_WEIGHT_MAX, &w))
			return -1;
		s->ramp_steps[s->ramp_n++] = (__u32)w;
		if (!comma)
			return 0;
		v = comma + 1;
	}
}

enum field {
	F_NAME,
	F_WEIGHT,
	F_LATCHED,
	F_REASON,
	F_ROLLBACK_NS,
	F_REACTION_NS,
	F_RAMP_ACTIVE,
	F_RAMP_STEPS,
	F_RAMP_INDEX,
	F_RAMP_HOLD_NS,
	F_RAMP_STARTED_NS,
	F_DRILL_WEIGHT,
	F_DRILL_RAMP,
	F_DRILL_STARTED_NS,
	F_DRILL_ENDS_NS,
	F_LAST_DRILL,
	F_LAST_DRILL_NS,
	F_LAST_DRILL_TTB_NS,
	F_FLEET_PUBLISH,
	F_ORIGIN,
	F_FLEET_LAG_US,
	F__N,
};

static const char *const field_names[F__N] = {
	[F_NAME] = "name",
	[F_WEIGHT] = "weight",
	[F_LATCHED] = "latched",
	[F_REASON] = "reason",
	[F_ROLLBACK_NS] = "rollback_unix_ns",
	[F_REACTION_NS] = "reaction_ns",
	[F_RAMP_ACTIVE] = "ramp_active",
	[F_RAMP_STEPS] = "ramp_steps",
	[F_RAMP_INDEX] = "ramp_index",
	[F_RAMP_HOLD_NS] = "ramp_hold_ns",
	[F_RAMP_STARTED_NS] = "ramp_step_started_unix_ns",
	[F_DRILL_WEIGHT] = "drill_weight",
	[F_DRILL_RAMP] = "drill_ramp",
	[F_DRILL_STARTED_NS] = "drill_started_unix_ns",
	[F_DRILL_ENDS_NS] = "drill_ends_unix_ns",
	[F_LAST_DRILL] = "last_drill",
	[F_LAST_DRILL_NS] = "last_drill_unix_ns",
	[F_LAST_DRILL_TTB_NS] = "last_drill_ttb_ns",
	[F_FLEET_PUBLISH] = "fleet_publish",
	[F_ORIGIN] = "rollback_origin",
	[F_FLEET_LAG_US] = "fleet_lag_us",
};

static int set_field(enum field f, const char *v, struct state_service *s)
{
	__u64 x;

	switch (f) {
	case F_NAME:
		if (!valid_name(v))
			return -1;
		strcpy(s->name, v);
		return 0;
	case F_REASON:
		return parse_text(v, s->reason, sizeof(s->reason));
	case F_RAMP_STEPS:
		return parse_steps(v, s);
	case F_LAST_DRILL:
		if (!valid_token(v))
			return -1;
		strcpy(s->last_drill, v);
		return 0;
	case F_ORIGIN:
		return parse_text(v, s->rollback_origin, sizeof(s->rollback_origin));
	case F_FLEET_LAG_US: {
		long long l;
		char *end;

		errno = 0;
		l = strtoll(v, &end, 10);
		if (!*v || *end || errno)
			return -1;
		s->fleet_lag_us = l;
		return 0;
	}
	default:
		break;
	}
	if (parse_u64(v, UINT64_MAX, &x))
		return -1;
	switch (f) {
	case F_WEIGHT:
	case F_DRILL_WEIGHT:
		if (x > SHIFT_WEIGHT_MAX)
			return -1;
		*(f == F_WEIGHT ? &s->weight : &s->drill_weight) = (__u32)x;
		return 0;
	case F_LATCHED:
	case F_RAMP_ACTIVE:
	case F_DRILL_RAMP:
	case F_FLEET_PUBLISH:
		if (x > 1)
			return -1;
		*(f == F_LATCHED     ? &s->latched :
		  f == F_RAMP_ACTIVE ? &s->ramp_active :
		  f == F_DRILL_RAMP  ? &s->drill_ramp :
				       &s->fleet_publish) = x;
		return 0;
	case F_DRILL_STARTED_NS:
		s->drill_started_unix_ns = x;
		return 0;
	case F_DRILL_ENDS_NS:
		s->drill_ends_unix_ns = x;
		return 0;
	case F_LAST_DRILL_NS:
		s->last_drill_unix_ns = x;
		return 0;
	case F_LAST_DRILL_TTB_NS:
		s->last_drill_ttb_ns = x;
		return 0;
	case F_RAMP_INDEX:
		if (x >= STATE_MAX_RAMP_STEPS)
			return -1;
		s->ramp_index = (__u32)x;
		return 0;
	case F_ROLLBACK_NS:
		s->rollback_unix_ns = x;
		return 0;
	case F_REACTION_NS:
		s->reaction_ns = x;
		return 0;
	case F_RAMP_HOLD_NS:
		s->ramp_hold_ns = x;
		return 0;
	default:
		s->ramp_step_started_unix_ns = x;
		return 0;
	}
}

/* One service line, NUL-terminated and without its newline; modified in place. */
static int parse_service(char *line, int lineno, struct state_service *s, char *err, size_t errlen)
{
	bool seen[F__N] = { false };
	char *tok, *save = NULL, *eq;
	int f;

	memset(s, 0, sizeof(*s));
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		eq = strchr(tok, '=');
		if (!eq || eq == tok) {
			seterr(err, errlen, "line %d: bad field '%.40s'", lineno, tok);
			return -EBADMSG;
		}
		*eq = '\0';
		for (f = 0; f < F__N; f++) {
			if (!strcmp(tok, field_names[f]))
				break;
		}
		if (f == F__N)
			continue; /* written by a newer shiftd */
		if (seen[f]) {
			seterr(err, errlen, "line %d: %s given twice", lineno, tok);
			return -EBADMSG;
		}
		seen[f] = true;
		if (set_field((enum field)f, eq + 1, s)) {
			seterr(err, errlen, "line %d: bad %s '%.40s'", lineno, tok, eq + 1);
			return -EBADMSG;
		}
	}
	if (!seen[F_NAME] || !seen[F_WEIGHT]) {
		seterr(err, errlen, "line %d: missing %s", lineno,
		       seen[F_NAME] ? "weight" : "name");
		return -EBADMSG;
	}
	if ((s->ramp_n && s->ramp_index >= s->ramp_n) || (!s->ramp_n && s->ramp_index) ||
	    (s->ramp_active && !s->ramp_n)) {
		seterr(err, errlen, "line %d: bad ramp (step %u of %u)", lineno, s->ramp_index,
		       s->ramp_n);
		return -EBADMSG;
	}
	return 0;
}

static int parse_header(const char *text, size_t len, size_t *body, char *err, size_t errlen)
{
	const char *nl = memchr(text, '\n', len);
	size_t hl = sizeof(HEADER) - 1, i;
	unsigned long v = 0;

	if (!nl || (size_t)(nl - text) <= hl || memcmp(text, HEADER, hl)) {
		seterr(err, errlen, "not a shift state file (no '%s%d' line)", HEADER,
		       STATE_VERSION);
		return -EBADMSG;
	}
	for (i = hl; text + i < nl; i++) {
		if (text[i] < '0' || text[i] > '9' || i - hl > 8) {
			seterr(err, errlen, "line 1: bad version");
			return -EBADMSG;
		}
		v = v * 10 + (unsigned long)(text[i] - '0');
	}
	if (v != STATE_VERSION) {
		seterr(err, errlen, "unknown version %lu (this shiftd reads version %d)", v,
		       STATE_VERSION);
		return -EBADMSG;
	}
	*body = (size_t)(nl - text) + 1;
	return 0;
}

/* Checks the final "crc32 XXXXXXXX\n" line; *end is where it starts. */
static int check_crc(const char *text, size_t len, size_t body, size_t *end, char *err,
		     size_t errlen)
{
	unsigned long want = 0;
	size_t start, i;
	int h;

	if (text[len - 1] != '\n' || len - body < CRC_LINE_LEN) {
		seterr(err, errlen, "checksum line missing (truncated)");
		return -EBADMSG;
	}
	start = len - CRC_LINE_LEN;
	if ((start && text[start - 1] != '\n') ||
	    memcmp(text + start, CRC_TAG, sizeof(CRC_TAG) - 1)) {
		seterr(err, errlen, "checksum line missing (truncated)");
		return -EBADMSG;
	}
	for (i = start + sizeof(CRC_TAG) - 1; i < len - 1; i++) {
		h = hexval(text[i]);
		if (h < 0) {
			seterr(err, errlen, "bad checksum line");
			return -EBADMSG;
		}
		want = want << 4 | (unsigned long)h;
	}
	if (crc32(0L, (const Bytef *)text, (uInt)start) != want) {
		seterr(err, errlen, "checksum mismatch (truncated or edited)");
		return -EBADMSG;
	}
	*end = start;
	return 0;
}

int state_parse(const char *text, size_t len, struct shift_state *st, char *err, size_t errlen)
{
	size_t body, end, pos, lines = 0;
	char *copy, *line, *nl;
	int ret, lineno;
	__u32 i;

	st->n = 0;
	st->svc = NULL;
	if (!text || !len) {
		seterr(err, errlen, "empty file");
		return -EBADMSG;
	}
	if (len > STATE_MAX_FILE) {
		seterr(err, errlen, "larger than %u MiB", STATE_MAX_FILE >> 20);
		return -EBADMSG;
	}
	if (memchr(text, '\0', len)) {
		seterr(err, errlen, "NUL byte in file");
		return -EBADMSG;
	}
	ret = parse_header(text, len, &body, err, errlen);
	if (!ret)
		ret = check_crc(text, len, body, &end, err, errlen);
	if (ret)
		return ret;
	for (pos = body; pos < end; pos++)
		lines += text[pos] == '\n';
	if (lines > STATE_MAX_SERVICES) {
		seterr(err, errlen, "%zu services, more than %u", lines, STATE_MAX_SERVICES);
		return -EBADMSG;
	}
	if (!lines)
		return 0;
	st->svc = calloc(lines, sizeof(*st->svc));
	/* One writable copy, cut into lines in place: a newer shiftd's lines may be long. */
	copy = malloc(end - body + 1);
	if (!st->svc || !copy) {
		free(copy);
		state_free(st);
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(copy, text + body, end - body);
	copy[end - body] = '\0';
	for (line = copy, lineno = 2; *line; line = nl + 1, lineno++) {
		nl = strchr(line, '\n');
		*nl = '\0';
		ret = parse_service(line, lineno, &st->svc[st->n], err, errlen);
		if (ret)
			break;
		for (i = 0; i < st->n; i++) {
			if (!strcmp(st->svc[i].name, st->svc[st->n].name)) {
				seterr(err, errlen, "line %d: service %s listed twice", lineno,
				       st->svc[i].name);
				ret = -EBADMSG;
				break;
			}
		}
		if (ret)
			break;
		st->n++;
	}
	free(copy);
	if (ret)
		state_free(st);
	return ret;
}

int state_load(const char *path, struct shift_state *st, char *err, size_t errlen)
{
	char why[256];
	size_t len;
	char *buf;
	int ret;

	st->n = 0;
	st->svc = NULL;
	ret = read_small_file(path, STATE_MAX_FILE, &buf, &len, why, sizeof(why));
	if (ret) {
		seterr(err, errlen, "state file: %s", why);
		/* Not a file we could ever have written: corrupt, like bad contents. */
		return ret == -EINVAL || ret == -EFBIG ? -EBADMSG : ret;
	}
	why[0] = '\0';
	ret = state_parse(buf, len, st, why, sizeof(why));
	free(buf);
	if (ret)
		seterr(err, errlen, "state file %s: %s", path, why);
	return ret;
}

/* --- saving and locking ---------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The rename is only durable once the directory entry is on disk too. */
static int sync_dir(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, ret = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		seterr(err, errlen, "state file %s written, but cannot open %s to sync it: %s",
		       path, dir, strerror(errno));
		return ret;
	}
	if (fsync(fd)) {
		ret = -errno;
		seterr(err, errlen, "state file %s written, but syncing %s failed: %s", path, dir,
		       strerror(errno));
	}
	close(fd);
	return ret;
}

int state_save(const char *path, const struct shift_state *st, char *err, size_t errlen)
{
	char tmp[PATH_MAX], why[256];
	const char *step;
	size_t len;
	char *buf;
	int fd, ret;

	why[0] = '\0';
	ret = state_format(st, &buf, &len, why, sizeof(why));
	if (ret) {
		seterr(err, errlen, "state file %s: %s", path, why);
		return ret;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp)) {
		seterr(err, errlen, "state file %s: path too long", path);
		free(buf);
		return -ENAMETOOLONG;
	}
	/* Not O_EXCL: a crash may leave our name behind, and the pid is reused. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		ret = -errno;
		seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		free(buf);
		return ret;
	}
	ret = write_all(fd, buf, len);
	step = "write";
	if (!ret && fsync(fd)) {
		ret = -errno;
		step = "fsync";
	}
	free(buf);
	/* close() reports delayed write errors on some filesystems (NFS). */
	if (close(fd) && !ret) {
		ret = -errno;
		step = "close";
	}
	if (!ret && rename(tmp, path)) {
		ret = -errno;
		step = "rename";
	}
	if (ret) {
		seterr(err, errlen, "cannot save state file %s: %s %s: %s", path, step, tmp,
		       strerror(-ret));
		unlink(tmp);
		return ret;
	}
	return sync_dir(path, err, errlen);
}

/* 2 s in 10 ms steps. */
#define STATE_LOCK_TRIES 200

int state_lock(const char *path, int *fd_out, char *err, size_t errlen)
{
	char lock[PATH_MAX];
	int fd, ret;

	*fd_out = -1;
	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock)) {
		seterr(err, errlen, "state file %s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		ret = -errno;
		seterr(err, errlen, "cannot open lock file %s: %s", lock, strerror(errno));
		return ret;
	}
	/*
	 * Bounded: a holder that is stuck (a stopped shiftd) must not hang the
	 * operator's shiftctl; the map write it protects has already happened.
	 */
	for (int tries = 0; flock(fd, LOCK_EX | LOCK_NB); tries++) {
		if (errno == EWOULDBLOCK && tries < STATE_LOCK_TRIES) {
			usleep(10000);
			continue;
		}
		if (errno == EINTR)
			continue;
		ret = errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		seterr(err, errlen, "cannot lock %s: %s", lock,
		       ret == -ETIMEDOUT ? "held by another process for 2 s" : strerror(errno));
		close(fd);
		return ret;
	}
	*fd_out = fd;
	return 0;
}

void state_unlock(int fd)
{
	/* Closing the last fd of the open file description drops the flock. */
	if (fd >= 0)
		close(fd);
}

/* --- the in-memory table ------------------------------------------------------- */

struct state_service *state_find(struct shift_state *st, const char *name)
{
	__u32 i;

	for (i = 0; name && i < st->n; i++) {
		if (!strcmp(st->svc[i].name, name))
			return &st->svc[i];
	}
	return NULL;
}

struct state_service *state_get_or_add(struct shift_state *st, const char *name)
{
	struct state_service *s = state_find(st, name), *p;

	if (s)
		return s;
	if (!name || !valid_name(name) || st->n >= STATE_MAX_SERVICES) {
		errno = EINVAL;
		return NULL;
	}
	p = realloc(st->svc, (st->n + 1) * sizeof(*st->svc));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	st->svc = p;
	s = &st->svc[st->n++];
	memset(s, 0, sizeof(*s));
	strcpy(s->name, name);
	return s;
}

int state_remove(struct shift_state *st, const char *name)
{
	struct state_service *s = state_find(st, name);
	size_t i;

	if (!s)
		return -ENOENT;
	i = (size_t)(s - st->svc);
	memmove(s, s + 1, (st->n - i - 1) * sizeof(*s));
	st->n--;
	return 0;
}

void state_free(struct shift_state *st)
{
	if (!st)
		return;
	free(st->svc);
	st->svc = NULL;
	st->n = 0;
}
