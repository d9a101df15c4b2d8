// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <shift/maps.h>

#include "config/errmsg.h"
#include "config/weight.h"

#define HINT "use 0-100, e.g. 25, 25%%, 0.5%%"


static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Grammar: DIGITS [ "." DIGITS ] [ "%" ], nothing around it. strtod is not used: it
 * takes spaces, signs, exponents, hex and "inf", none of which an operator means.
 */
int weight_parse(const char *s, __u32 *bp, char *err, size_t errlen)
{
	unsigned long whole = 0, frac = 0;
	int nfrac = 0;
	const char *p;

	if (!s || !*s) {
		seterr(err, errlen, "empty weight; " HINT);
		return -EINVAL;
	}
	if (strpbrk(s, " \t\n\r\v\f")) {
		seterr(err, errlen, "'%.40s': no spaces in a weight; " HINT, s);
		return -EINVAL;
	}
	if (s[0] == '-') {
		seterr(err, errlen, "'%.40s': a weight cannot be negative; " HINT, s);
		return -EINVAL;
	}
	p = s;
	if (!is_digit(*p))
		goto bad;
	for (; is_digit(*p); p++) {
		/* Clamp: the range check below only needs "more than 100". */
		if (whole <= 1000)
			whole = whole * 10 + (unsigned long)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			goto bad;
		for (; is_digit(*p); p++, nfrac++) {
			if (nfrac < 2)
				frac = frac * 10 + (unsigned long)(*p - '0');
		}
		if (nfrac > 2) {
			if (*p != '%' && *p != '\0')
				goto bad;
			seterr(err, errlen,
			       "'%.40s': at most two decimals: weights step by 0.01 %%", s);
			return -EINVAL;
		}
		if (nfrac == 1)
			frac *= 10;
	}
	if (*p == '%')
		p++;
	if (*p)
		goto bad;
	if (whole * 100 + frac > SHIFT_WEIGHT_MAX) {
		seterr(err, errlen, "%.*s is above 100 %%", (int)strcspn(s, "%"), s);
		return -EINVAL;
	}
	*bp = (__u32)(whole * 100 + frac);
	return 0;
bad:
	seterr(err, errlen, "'%.40s' is not a weight; " HINT, s);
	return -EINVAL;
}

char *weight_format(__u32 bp, char *buf, size_t len)
{
	__u32 whole = bp / 100, frac = bp % 100;

	if (!frac)
		snprintf(buf, len, "%u%%", whole);
	else if (!(frac % 10))
		snprintf(buf, len, "%u.%u%%", whole, frac / 10);
	else
		snprintf(buf, len, "%u.%02u%%", whole, frac);
	return buf;
}
