// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/errmsg.h"
#include "config/addr.h"

/* Longest text of an address inside an endpoint; anything longer is not one. */
#define HOST_MAX 64


/* Digits only: strtoul would take signs, spaces and "0x". */
static int parse_port(const char *p, const char *whole, __u16 *port, char *err, size_t errlen)
{
	unsigned long v = 0;
	const char *q;

	if (!*p) {
		seterr(err, errlen, "missing port in '%.80s'", whole);
		return -EINVAL;
	}
	for (q = p; *q; q++) {
		if (*q < '0' || *q > '9') {
			seterr(err, errlen, "'%.20s' is not a port number in '%.80s'", p, whole);
			return -EINVAL;
		}
		if (v <= 65535)
			v = v * 10 + (unsigned long)(*q - '0');
	}
	if (v < 1 || v > 65535) {
		seterr(err, errlen, "port %.20s out of range 1..65535", p);
		return -EINVAL;
	}
	*port = htons((__u16)v);
	return 0;
}

static int copy_host(const char *b, size_t n, char *host, const char *whole, char *err,
		     size_t errlen)
{
	if (!n) {
		seterr(err, errlen, "missing address in '%.80s'", whole);
		return -EINVAL;
	}
	if (n >= HOST_MAX) {
		seterr(err, errlen, "'%.80s' is not an address", whole);
		return -EINVAL;
	}
	memcpy(host, b, n);
	host[n] = '\0';
	return 0;
}

int addr_parse_endpoint(const char *s, struct shift_addr_key *out, char *err, size_t errlen)
{
	char host[HOST_MAX];
	__u32 a[4] = { 0 };
	const char *colon, *close;
	__u16 port;
	__u8 family;
	int ret;

	if (!s || !*s) {
		seterr(err, errlen, "empty endpoint; expected IP:PORT, e.g. 10.0.0.10:80");
		return -EINVAL;
	}
	if (s[0] == '[') {
		close = strchr(s, ']');
		if (!close) {
			seterr(err, errlen, "missing ']' in '%.80s'", s);
			return -EINVAL;
		}
		ret = copy_host(s + 1, (size_t)(close - s - 1), host, s, err, errlen);
		if (ret)
			return ret;
		if (close[1] == '\0') {
			seterr(err, errlen, "missing port in '%.80s'", s);
			return -EINVAL;
		}
		if (close[1] != ':') {
			seterr(err, errlen, "expected ':' after ']' in '%.80s'", s);
			return -EINVAL;
		}
		if (inet_pton(AF_INET6, host, a) != 1) {
			seterr(err, errlen, "'%s' is not an IPv6 address%s", host,
			       strchr(host, ':') ? "" : " (brackets are for IPv6 only)");
			return -EINVAL;
		}
		family = SHIFT_AF_INET6;
		ret = parse_port(close + 2, s, &port, err, errlen);
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':')) {
			seterr(err, errlen,
			       "IPv6 address must be in brackets: '[2001:db8::1]:80' (got '%.80s')",
			       s);
			return -EINVAL;
		}
		if (!colon) {
			seterr(err, errlen, "missing port in '%.80s'", s);
			return -EINVAL;
		}
		ret = copy_host(s, (size_t)(colon - s), host, s, err, errlen);
		if (ret)
			return ret;
		if (inet_pton(AF_INET, host, a) != 1) {
			seterr(err, errlen, "'%s' is not an IPv4 address", host);
			return -EINVAL;
		}
		family = SHIFT_AF_INET;
		ret = parse_port(colon + 1, s, &port, err, errlen);
	}
	if (ret)
		return ret;
	memcpy(out->addr, a, sizeof(out->addr));
	out->port = port;
	out->family = family;
	return 0;
}

/* Network-order address masked to its first plen bits. */
static void mask_addr(const __u32 in[4], __u8 plen, __u32 out[4])
{
	int i;

	for (i = 0; i < 4; i++) {
		int bits = (int)plen - 32 * i;

		if (bits >= 32)
			out[i] = in[i];
		else if (bits <= 0)
			out[i] = 0;
		else
			out[i] = in[i] & htonl(~0u << (32 - bits));
	}
}

int addr_parse_cidr(const char *s, __u8 *family, __u32 addr[4], __u8 *prefixlen, char *err,
		    size_t errlen)
{
	char host[HOST_MAX], fixed[INET6_ADDRSTRLEN];
	__u32 a[4] = { 0 }, m[4];
	const char *slash, *p;
	unsigned long plen = 0, max;
	int af;

	if (!s || !*s) {
		seterr(err, errlen, "empty prefix; expected ADDRESS/LENGTH, e.g. 192.0.2.0/24");
		return -EINVAL;
	}
	slash = strchr(s, '/');
	if (copy_host(s, slash ? (size_t)(slash - s) : strlen(s), host, s, err, errlen))
		return -EINVAL;
	if (host[0] == '[') {
		seterr(err, errlen, "no brackets in a prefix: '%.80s'", s);
		return -EINVAL;
	}
	af = strchr(host, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(af, host, a) != 1) {
		seterr(err, errlen, "'%s' is not an %s address", host,
		       af == AF_INET6 ? "IPv6" : "IPv4");
		return -EINVAL;
	}
	max = af == AF_INET6 ? 128 : 32;
	if (!slash) {
		/* A bare address is the single host: how operators name one client. */
		plen = max;
	} else {
		if (!slash[1]) {
			seterr(err, errlen, "missing prefix length in '%.80s'", s);
			return -EINVAL;
		}
		for (p = slash + 1; *p; p++) {
			if (*p < '0' || *p > '9') {
				seterr(err, errlen, "'%.20s' is not a prefix length in '%.80s'",
				       slash + 1, s);
				return -EINVAL;
			}
			if (plen <= max)
				plen = plen * 10 + (unsigned long)(*p - '0');
		}
		if (plen > max) {
			seterr(err, errlen, "prefix length /%.20s out of range 0..%lu in '%.80s'",
			       slash + 1, max, s);
			return -EINVAL;
		}
	}
	/* The datapath's LPM key drops host bits; refusing them catches typos. */
	mask_addr(a, (__u8)plen, m);
	if (memcmp(a, m, sizeof(a))) {
		if (!inet_ntop(af, m, fixed, sizeof(fixed)))
			fixed[0] = '\0';
		seterr(err, errlen, "host bits set in '%.80s' (did you mean %s/%lu?)", s, fixed,
		       plen);
		return -EINVAL;
	}
	*family = af == AF_INET6 ? SHIFT_AF_INET6 : SHIFT_AF_INET;
	memcpy(addr, a, sizeof(a));
	*prefixlen = (__u8)plen;
	return 0;
}

char *addr_format(__u8 family, const __u32 addr[4], char *buf, size_t len)
{
	int af = family == SHIFT_AF_INET6 ? AF_INET6 : AF_INET;

	if (!len)
		return buf;
	if ((family != SHIFT_AF_INET && family != SHIFT_AF_INET6) ||
	    !inet_ntop(af, addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

char *addr_format_endpoint(const struct shift_addr_key *k, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	addr_format(k->family, k->addr, a, sizeof(a));
	if (k->family == SHIFT_AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, ntohs(k->port));
	else
		snprintf(buf, len, "%s:%u", a, ntohs(k->port));
	return buf;
}
