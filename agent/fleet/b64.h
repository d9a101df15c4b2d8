/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Base64 (RFC 4648, with padding): etcd's JSON gateway carries keys and values so. */
#ifndef SHIFT_FLEET_B64_H
#define SHIFT_FLEET_B64_H

#include <stddef.h>

/* Bytes b64_encode writes for n input bytes, NUL included. */
#define B64_ENC_LEN(n) ((((n) + 2) / 3) * 4 + 1)

/* Encode src[0..n) into dst (B64_ENC_LEN(n) bytes), NUL-terminated. Returns the length. */
size_t b64_encode(const void *src, size_t n, char *dst);
/*
 * Decode a NUL-terminated string into dst (at most cap bytes; 3/4 of the input
 * is enough). Returns the decoded length, or -1 on a bad character, bad
 * padding, a length not a multiple of 4, or too small a buffer.
 */
long b64_decode(const char *src, void *dst, size_t cap);

#endif
