// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdbool.h>
#include <string.h>

#include "fleet/b64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encode(const void *src, size_t n, char *dst)
{
	const unsigned char *s = src;
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];

		dst[o++] = alphabet[v >> 18 & 63];
		dst[o++] = alphabet[v >> 12 & 63];
		dst[o++] = alphabet[v >> 6 & 63];
		dst[o++] = alphabet[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);

		dst[o++] = alphabet[v >> 18 & 63];
		dst[o++] = alphabet[v >> 12 & 63];
		dst[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
		dst[o++] = '=';
	}
	dst[o] = '\0';
	return o;
}

static int val(char c)
{
	const char *p = c ? strchr(alphabet, c) : NULL;

	return p ? (int)(p - alphabet) : -1;
}

long b64_decode(const char *src, void *dst, size_t cap)
{
	size_t n = strlen(src), i, o = 0;
	unsigned char *d = dst;

	if (n % 4)
		return -1;
	for (i = 0; i < n; i += 4) {
		int a = val(src[i]), b = val(src[i + 1]), c, e;
		bool last = i + 4 == n;
		unsigned v;

		c = src[i + 2] == '=' && last && src[i + 3] == '=' ? 0 : val(src[i + 2]);
		e = src[i + 3] == '=' && last ? 0 : val(src[i + 3]);
		if (a < 0 || b < 0 || c < 0 || e < 0)
			return -1;
		v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)e;
		if (o >= cap)
			return -1;
		d[o++] = (unsigned char)(v >> 16);
		if (src[i + 2] != '=' || !last) {
			if (o >= cap)
				return -1;
			d[o++] = (unsigned char)(v >> 8);
		}
		if (src[i + 3] != '=' || !last) {
			if (o >= cap)
				return -1;
			d[o++] = (unsigned char)v;
		}
	}
	return (long)o;
}
