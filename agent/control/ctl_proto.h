/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The control socket protocol between shiftctl and shiftd. One request per
 * connection: a line of space-separated words, each percent-encoded (so a
 * rollback reason may hold spaces), ended by '\n'. The answer is a first line
 * "OK" or "ERR <exit code> <message>", then a body, then EOF.
 */
#ifndef SHIFT_CTL_PROTO_H
#define SHIFT_CTL_PROTO_H

#include <stddef.h>

#define CTL_MAX_ARGS 8
#define CTL_ARG_LEN 256
#define CTL_MAX_LINE 4096

struct ctl_request {
	char verb[32];
	int argc;
	char argv[CTL_MAX_ARGS][CTL_ARG_LEN];
};

/* Parse one request line (without or with its '\n'). 0 or -EINVAL with a reason. */
int ctl_parse_request(const char *line, size_t len, struct ctl_request *r, char *err,
		      size_t errlen);
/* Encode a request as a line ending in '\n'. 0 or -ENOSPC. */
int ctl_format_request(const struct ctl_request *r, char *buf, size_t len);

#endif
