/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The bearer token of the HTTP API: read from http_token_file, which must be
 * a regular file readable by its owner only (no group or other bit at all),
 * holding one token of visible ASCII (whitespace around it is dropped).
 * Checked in constant time: how far a guess matched never shows in the timing.
 */
#ifndef SHIFT_HTTP_TOKEN_H
#define SHIFT_HTTP_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_TOKEN_MAX 512
/* Shorter tokens are accepted with a warning: guessable in time. */
#define HTTP_TOKEN_MIN_ADVISED 16

struct http_token {
	char v[HTTP_TOKEN_MAX + 1];
	size_t len; /* >= 1 once loaded */
};

/* 0, or -errno with the reason in err naming the file ("... mode 0644: ..."). */
int http_token_load(const char *path, struct http_token *t, char *err, size_t errlen);
/* Parse the token out of a file's text (exposed for tests and the fuzzer). */
int http_token_parse(const char *text, size_t len, struct http_token *t, char *err, size_t errlen);
/*
 * Does an Authorization header value ("Bearer TOKEN"; the scheme in any case,
 * one or more spaces) carry the token? NULL (no header) is false.
 */
bool http_token_check(const struct http_token *t, const char *authorization);

#endif
