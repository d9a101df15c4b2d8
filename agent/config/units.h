/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Values as operators write them in the config and on the command line. Every
 * parser takes the whole string (no spaces, signs or trailing junk), returns 0 or
 * -EINVAL / -ERANGE, and names the bad value in err.
 */
#ifndef SHIFT_UNITS_H
#define SHIFT_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define UNITS_NS_PER_US 1000ull
#define UNITS_NS_PER_MS 1000000ull
#define UNITS_NS_PER_SEC 1000000000ull

/* Longest string units_format_duration() writes, with the NUL. */
#define UNITS_DURATION_LEN 32

/*
 * "30s", "500ms", "250us", "1m", "2h", "1.5s", "1m30s" -> nanoseconds. Units: ns,
 * us (or µs), ms, s, m, h; a unit is required, even after 0. -ERANGE outside
 * [min_ns, max_ns] or on overflow; a value finer than 1 ns is refused.
 */
int units_parse_duration(const char *s, __u64 min_ns, __u64 max_ns, __u64 *ns, char *err,
			 size_t errlen);
/* Nanoseconds -> the largest unit that divides it exactly ("1h", "1500ms"); returns buf. */
char *units_format_duration(__u64 ns, char *buf, size_t len);

/* "5%", "0.5%" -> 0.05, 0.005: a rate limit, 0 <= frac <= 1. The '%' is required. */
int units_parse_percent(const char *s, double *frac, char *err, size_t errlen);

/* "2.0", "1.5" -> a factor in [min, max]. */
int units_parse_ratio(const char *s, double min, double max, double *out, char *err, size_t errlen);

/* yes/no, true/false, on/off, 1/0 (any case). */
int units_parse_bool(const char *s, bool *out, char *err, size_t errlen);

/* Decimal unsigned integers in [min, max]. */
int units_parse_u64(const char *s, __u64 min, __u64 max, __u64 *out, char *err, size_t errlen);
int units_parse_u32(const char *s, __u32 min, __u32 max, __u32 *out, char *err, size_t errlen);

/* A 32-bit hash seed, "0x5eed" (1..8 hex digits) or decimal "24301". */
int units_parse_seed(const char *s, __u32 *out, char *err, size_t errlen);

/* An octal number such as a file mode, "0660" or "660", at most max. */
int units_parse_octal(const char *s, __u32 max, __u32 *out, char *err, size_t errlen);

#endif
