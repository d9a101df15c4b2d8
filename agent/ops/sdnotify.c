// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/sdnotify.h"

static int parse_u64(const char *s, __u64 *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

__u64 sdnotify_init(struct sdnotify *n)
{
	__u64 usec = 0, pid;

	memset(n, 0, sizeof(*n));
	if (parse_u64(getenv("WATCHDOG_USEC"), &usec) || !usec)
		return 0;
	if (getenv("WATCHDOG_PID") &&
	    (parse_u64(getenv("WATCHDOG_PID"), &pid) || pid != (__u64)getpid()))
		return 0;
	/* Half the limit, as sd_watchdog_enabled(3) advises. */
	n->wd_every_ns = usec * 1000ull / 2;
	return n->wd_every_ns;
}

void sdnotify_summary(struct agent *a, char *buf, size_t len)
{
	const char *sep = " (";
	__u32 i, n = 0, rolled = 0;
	size_t off;
	int w;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		if (!a->svc[i])
			continue;
		n++;
		rolled += a->svc[i]->latched;
	}
	w = snprintf(buf, len, "%u service%s, %u rolled back", n, n == 1 ? "" : "s", rolled);
	if (w < 0 || (size_t)w >= len || !rolled)
		return;
	off = (size_t)w;
	if (len < 16)
		return;
	/* Name the rolled-back services while they fit, keeping room for ", ...)". */
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		const struct service_rt *s = a->svc[i];

		if (!s || !s->latched)
			continue;
		/* A drill's latch is planned and lifts itself: say so in systemctl status. */
		if (off + strlen(sep) + strlen(s->conf->name) + (s->latch_drill ? 8 : 0) >
		    len - 8) {
			snprintf(buf + off, len - off, "%s...)", sep);
			return;
		}
		off += (size_t)snprintf(buf + off, len - off, "%s%s%s", sep, s->conf->name,
					s->latch_drill ? " [drill]" : "");
		sep = ", ";
	}
	snprintf(buf + off, len - off, ")");
}

/* One line for sd_notify: a newline would start another assignment. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			*s = '?';
}

size_t sdnotify_tick(struct sdnotify *n, struct agent *a, __u64 now_ns, char *msg, size_t len)
{
	char status[SDNOTIFY_STATUS_LEN];
	size_t off = 0;
	int w;

	if (!len)
		return 0;
	msg[0] = '\0';
	if (n->wd_every_ns && (!n->wd_next_ns || now_ns >= n->wd_next_ns)) {
		w = snprintf(msg, len, "WATCHDOG=1");
		if (w > 0 && (size_t)w < len)
			off = (size_t)w;
		n->wd_next_ns = now_ns + n->wd_every_ns;
	}
	sdnotify_summary(a, status, sizeof(status));
	one_line(status);
	if (strcmp(status, n->status)) {
		w = snprintf(msg + off, len - off, "%sSTATUS=%s", off ? "\n" : "", status);
		if (w > 0 && (size_t)w < len - off) {
			off += (size_t)w;
			memcpy(n->status, status, sizeof(status));
		} else {
			msg[off] = '\0';
		}
	}
	return off;
}
