// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/errmsg.h"
#include "config/units.h"

/* Echo at most this much of a bad value: it may be a whole mistyped line. */
#define ECHO "%.64s"


static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * DIGITS [ "." DIGITS ] at s. Returns the length scanned, -1 if s does not start
 * with one, -2 for more than maxfrac decimals. whole saturates at UINT64_MAX (which
 * callers treat as too large) instead of wrapping. strtod/strtoull are not
 * used: they take spaces, signs, hex, exponents and "inf".
 */
static int scan_decimal(const char *s, __u64 *whole, __u64 *frac, int *nfrac, int maxfrac)
{
	const char *p = s;
	__u64 w = 0, f = 0;
	int n = 0;

	if (!is_digit(*p))
		return -1;
	for (; is_digit(*p); p++) {
		__u64 d = (__u64)(*p - '0');

		w = w == UINT64_MAX || w > (UINT64_MAX - d) / 10 ? UINT64_MAX : w * 10 + d;
	}
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return -1;
		for (; is_digit(*p); p++, n++) {
			if (n >= maxfrac)
				return -2;
			f = f * 10 + (__u64)(*p - '0');
		}
	}
	*whole = w;
	*frac = f;
	*nfrac = n;
	return (int)(p - s);
}

static __u64 pow10u(int n)
{
	__u64 v = 1;

	while (n-- > 0)
		v *= 10;
	return v;
}

static const struct {
	const char *name;
	__u64 ns;
} dur_units[] = {
	{ "ns", 1 },
	{ "us", UNITS_NS_PER_US },
	{ "\xc2\xb5s", UNITS_NS_PER_US }, /* µs */
	{ "ms", UNITS_NS_PER_MS },
	{ "s", UNITS_NS_PER_SEC },
	{ "m", 60 * UNITS_NS_PER_SEC },
	{ "h", 3600 * UNITS_NS_PER_SEC },
};

#define N_DUR_UNITS (sizeof(dur_units) / sizeof(dur_units[0]))

int units_parse_duration(const char *s, __u64 min_ns, __u64 max_ns, __u64 *ns, char *err,
			 size_t errlen)
{
	unsigned __int128 total = 0, term;
	char a[UNITS_DURATION_LEN], b[UNITS_DURATION_LEN];
	const char *p = s;
	__u64 whole, frac, unit;
	size_t ulen, i;
	int n, nfrac;

	if (!s || !*s) {
		seterr(err, errlen, "empty duration; use e.g. 30s, 500ms, 1m");
		return -EINVAL;
	}
	/* Terms add up, as in Go's time.ParseDuration: "1m30s". */
	while (*p) {
		n = scan_decimal(p, &whole, &frac, &nfrac, 9);
		if (n == -2) {
			seterr(err, errlen, "'" ECHO "': at most 9 decimals in a duration", s);
			return -EINVAL;
		}
		if (n < 0) {
			seterr(err, errlen, "'" ECHO "' is not a duration; use e.g. 30s, 500ms, 1m",
			       s);
			return -EINVAL;
		}
		p += n;
		ulen = strcspn(p, "0123456789.");
		if (!ulen) {
			seterr(err, errlen, "'" ECHO "': missing unit (ns, us, ms, s, m or h)", s);
			return -EINVAL;
		}
		unit = 0;
		for (i = 0; i < N_DUR_UNITS; i++) {
			if (strlen(dur_units[i].name) == ulen &&
			    !strncmp(p, dur_units[i].name, ulen))
				unit = dur_units[i].ns;
		}
		if (!unit) {
			seterr(err, errlen,
			       "'" ECHO "': unknown unit '%.*s'; use ns, us, ms, s, m or h", s,
			       (int)(ulen > 16 ? 16 : ulen), p);
			return -EINVAL;
		}
		p += ulen;
		term = (unsigned __int128)frac * unit;
		if (term % pow10u(nfrac)) {
			seterr(err, errlen, "'" ECHO "' is finer than 1 ns", s);
			return -EINVAL;
		}
		total += (unsigned __int128)whole * unit + term / pow10u(nfrac);
		if (total > UINT64_MAX || whole == UINT64_MAX) {
			seterr(err, errlen, "'" ECHO "' is too long a duration", s);
			return -ERANGE;
		}
	}
	if (total < min_ns || total > max_ns) {
		seterr(err, errlen, "'" ECHO "' out of range %s..%s", s,
		       units_format_duration(min_ns, a, sizeof(a)),
		       units_format_duration(max_ns, b, sizeof(b)));
		return -ERANGE;
	}
	*ns = (__u64)total;
	return 0;
}

char *units_format_duration(__u64 ns, char *buf, size_t len)
{
	size_t i = N_DUR_UNITS;

	/* Largest unit first; skip "µs", the ASCII spelling prints everywhere. */
	while (i-- > 1) {
		if (dur_units[i].ns == UNITS_NS_PER_US && dur_units[i].name[0] != 'u')
			continue;
		if (ns && !(ns % dur_units[i].ns))
			break;
	}
	if (!ns)
		snprintf(buf, len, "0s");
	else
		snprintf(buf, len, "%llu%s", (unsigned long long)(ns / dur_units[i].ns),
			 dur_units[i].name);
	return buf;
}

int units_parse_percent(const char *s, double *out, char *err, size_t errlen)
{
	__u64 whole, frac;
	int n, nfrac;

	if (!s || !*s) {
		seterr(err, errlen, "empty percentage; use e.g. 5%% or 0.5%%");
		return -EINVAL;
	}
	n = scan_decimal(s, &whole, &frac, &nfrac, 6);
	if (n == -2) {
		seterr(err, errlen, "'" ECHO "': at most 6 decimals in a percentage", s);
		return -EINVAL;
	}
	if (n > 0 && s[n] == '\0') {
		seterr(err, errlen, "'" ECHO "' needs a %% sign, e.g. %s%%", s, s);
		return -EINVAL;
	}
	if (n < 0 || s[n] != '%' || s[n + 1]) {
		seterr(err, errlen, "'" ECHO "' is not a percentage; use e.g. 5%% or 0.5%%", s);
		return -EINVAL;
	}
	if (whole > 100 || (whole == 100 && frac)) {
		seterr(err, errlen, "'" ECHO "' is above 100 %%", s);
		return -ERANGE;
	}
	*out = ((double)whole + (double)frac / (double)pow10u(nfrac)) / 100.0;
	return 0;
}

int units_parse_ratio(const char *s, double min, double max, double *out, char *err, size_t errlen)
{
	__u64 whole, frac;
	double v;
	int n, nfrac;

	if (!s || !*s) {
		seterr(err, errlen, "empty ratio; use e.g. 2.0 or 1.5");
		return -EINVAL;
	}
	n = scan_decimal(s, &whole, &frac, &nfrac, 6);
	if (n == -2) {
		seterr(err, errlen, "'" ECHO "': at most 6 decimals in a ratio", s);
		return -EINVAL;
	}
	if (n < 0 || s[n]) {
		seterr(err, errlen, "'" ECHO "' is not a ratio; use e.g. 2.0 or 1.5", s);
		return -EINVAL;
	}
	v = (double)whole + (double)frac / (double)pow10u(nfrac);
	if (v < min || v > max) {
		seterr(err, errlen, "ratio '" ECHO "' out of range %g..%g", s, min, max);
		return -ERANGE;
	}
	*out = v;
	return 0;
}

int units_parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; s && i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	seterr(err, errlen, "'" ECHO "' is not a boolean; use yes or no", s ? s : "");
	return -EINVAL;
}

int units_parse_u64(const char *s, __u64 min, __u64 max, __u64 *out, char *err, size_t errlen)
{
	__u64 v = 0;
	const char *p;

	if (!s || !*s) {
		seterr(err, errlen, "empty number");
		return -EINVAL;
	}
	for (p = s; *p; p++) {
		if (!is_digit(*p)) {
			seterr(err, errlen, "'" ECHO "' is not a whole number", s);
			return -EINVAL;
		}
		if (v > (UINT64_MAX - (__u64)(*p - '0')) / 10) {
			seterr(err, errlen, "'" ECHO "' is too large", s);
			return -ERANGE;
		}
		v = v * 10 + (__u64)(*p - '0');
	}
	if (v < min || v > max) {
		seterr(err, errlen, ECHO " out of range %llu..%llu", s, (unsigned long long)min,
		       (unsigned long long)max);
		return -ERANGE;
	}
	*out = v;
	return 0;
}

int units_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out, char *err, size_t errlen)
{
	__u64 v;
	int ret;

	ret = units_parse_u64(s, min, max, &v, err, errlen);
	if (!ret)
		*out = (__u32)v;
	return ret;
}

int units_parse_seed(const char *s, __u32 *out, char *err, size_t errlen)
{
	const char *p;
	__u32 v = 0;
	int d;

	if (!s || !*s) {
		seterr(err, errlen, "empty seed; use hex 0x5eed or decimal 24301");
		return -EINVAL;
	}
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return units_parse_u32(s, 0, UINT32_MAX, out, err, errlen);
	if (!s[2] || strlen(s + 2) > 8) {
		seterr(err, errlen, "'" ECHO "': a hex seed has 1 to 8 digits", s);
		return -EINVAL;
	}
	for (p = s + 2; *p; p++) {
		if (is_digit(*p))
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else {
			seterr(err, errlen, "'" ECHO "' is not a hex number", s);
			return -EINVAL;
		}
		v = v << 4 | (__u32)d;
	}
	*out = v;
	return 0;
}

int units_parse_octal(const char *s, __u32 max, __u32 *out, char *err, size_t errlen)
{
	const char *p;
	__u32 v = 0;

	if (!s || !*s) {
		seterr(err, errlen, "empty octal number");
		return -EINVAL;
	}
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '7') {
			seterr(err, errlen, "'" ECHO "' is not an octal number", s);
			return -EINVAL;
		}
		if (v > max)
			break;
		v = v << 3 | (__u32)(*p - '0');
	}
	if (v > max) {
		seterr(err, errlen, "'" ECHO "' is above %#o", s, max);
		return -ERANGE;
	}
	*out = v;
	return 0;
}
