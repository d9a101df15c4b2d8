// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control/ctl_proto.h"

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

/* Decode word[0..n) into out; NUL bytes are refused (they would cut the word). */
static int decode(const char *w, size_t n, char *out, size_t outlen, char *err, size_t errlen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)w[i];

		if (c == '%') {
			int hi, lo;

			/* Both hex digits must lie inside the word. */
			if (i + 2 >= n) {
				snprintf(err, errlen, "truncated %%-escape");
				return -EINVAL;
			}
			hi = hexval(w[i + 1]);
			lo = hexval(w[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				snprintf(err, errlen, "bad %%-escape");
				return -EINVAL;
			}
			c = hi * 16 + lo;
			i += 2;
		} else if (c < 0x21 || c == 0x7f) {
			snprintf(err, errlen, "control character in request");
			return -EINVAL;
		}
		if (o + 1 >= outlen) {
			snprintf(err, errlen, "argument longer than %zu bytes", outlen - 1);
			return -EINVAL;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int ctl_parse_request(const char *line, size_t len, struct ctl_request *r, char *err, size_t errlen)
{
	size_t i = 0, start;
	int idx = 0, rc;

	memset(r, 0, sizeof(*r));
	if (len && line[len - 1] == '\n')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "empty request");
		return -EINVAL;
	}
	if (len >= CTL_MAX_LINE) {
		snprintf(err, errlen, "request longer than %d bytes", CTL_MAX_LINE - 1);
		return -EINVAL;
	}
	while (i < len) {
		start = i;
		while (i < len && line[i] != ' ')
			i++;
		if (i == start) {
			snprintf(err, errlen, "empty word in request");
			return -EINVAL;
		}
		if (idx == 0) {
			rc = decode(line + start, i - start, r->verb, sizeof(r->verb), err, errlen);
		} else {
			if (idx > CTL_MAX_ARGS) {
				snprintf(err, errlen, "more than %d arguments", CTL_MAX_ARGS);
				return -EINVAL;
			}
			rc = decode(line + start, i - start, r->argv[idx - 1], CTL_ARG_LEN, err,
				    errlen);
			r->argc = idx;
		}
		if (rc)
			return rc;
		idx++;
		if (i < len)
			i++; /* the space */
		if (i == len && line[len - 1] == ' ') {
			snprintf(err, errlen, "trailing space in request");
			return -EINVAL;
		}
	}
	return 0;
}

static int encode(const char *s, char *buf, size_t len, size_t *pos)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s;

	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '%') {
			if (*pos + 1 >= len)
				return -ENOSPC;
			buf[(*pos)++] = (char)*p;
		} else {
			if (*pos + 3 >= len)
				return -ENOSPC;
			buf[(*pos)++] = '%';
			buf[(*pos)++] = hex[*p >> 4];
			buf[(*pos)++] = hex[*p & 15];
		}
	}
	return 0;
}

int ctl_format_request(const struct ctl_request *r, char *buf, size_t len)
{
	size_t pos = 0;
	int i, err;

	err = encode(r->verb, buf, len, &pos);
	for (i = 0; !err && i < r->argc; i++) {
		if (pos + 1 >= len)
			return -ENOSPC;
		buf[pos++] = ' ';
		err = encode(r->argv[i], buf, len, &pos);
	}
	if (err)
		return err;
	if (pos + 2 > len)
		return -ENOSPC;
	buf[pos++] = '\n';
	buf[pos] = '\0';
	return 0;
}
