/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Green weights as operators write them ("25", "25%", "0.5%") <-> basis points. */
#ifndef SHIFT_WEIGHT_H
#define SHIFT_WEIGHT_H

#include <stddef.h>
#include <linux/types.h>

/* Longest string weight_format() writes, with the NUL ("100.00%" and room to spare). */
#define WEIGHT_STR_LEN 16

/*
 * "25", "25%", "0.5%", "0.01%", "12.34%" -> basis points 0..SHIFT_WEIGHT_MAX. A bare
 * number is a percentage. Nothing else is accepted: no sign, no spaces, no exponent,
 * at most two decimals. Returns 0 or -EINVAL with the reason in err.
 */
int weight_parse(const char *s, __u32 *bp, char *err, size_t errlen);
/* Basis points -> "25%", "0.5%", "0.01%" (no trailing zeros); returns buf. */
char *weight_format(__u32 bp, char *buf, size_t len);

#endif
