// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shadow/pair.h"

const char *shadow_kind_name(enum shadow_kind k)
{
	static const char *const names[SHADOW_KINDS] = {
		[SHADOW_MATCH] = "match",
		[SHADOW_MM_STATUS] = "status",
		[SHADOW_MM_ERROR] = "green_error",
		[SHADOW_MM_TIMEOUT] = "green_timeout",
		[SHADOW_MM_SLOWER] = "green_slower",
	};

	return k < SHADOW_KINDS ? names[k] : "unknown";
}

enum shadow_kind shadow_classify(const struct shadow_answer *blue,
				 const struct shadow_answer *green, double ratio)
{
	if (green->how == SHADOW_ANS_TIMEOUT)
		return SHADOW_MM_TIMEOUT;
	if (green->how != SHADOW_ANS_STATUS)
		return SHADOW_MM_ERROR;
	/* Blue failed where green answered: a difference, not green's fault. */
	if (blue->how != SHADOW_ANS_STATUS || blue->status / 100 != green->status / 100)
		return SHADOW_MM_STATUS;
	if (ratio > 0 && blue->ttfb_ns > 0 &&
	    (double)green->ttfb_ns > ratio * (double)blue->ttfb_ns &&
	    green->ttfb_ns > blue->ttfb_ns + SHADOW_SLOWER_FLOOR_NS)
		return SHADOW_MM_SLOWER;
	return SHADOW_MATCH;
}

/* Offset just past the blank line ending the headers, or 0. */
static size_t headers_end(const __u8 *b, size_t len)
{
	size_t i;

	for (i = 0; i + 4 <= len; i++)
		if (b[i] == '\r' && b[i + 1] == '\n' && b[i + 2] == '\r' && b[i + 3] == '\n')
			return i + 4;
	return 0;
}

/* Whether the chunked body in b[0..len) ends with its zero-size chunk. */
static bool chunked_complete(const __u8 *b, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned long sz = 0;
		size_t start = i;

		while (i < len && isxdigit(b[i])) {
			if (sz > (1ul << 24))
				return false;
			sz = sz * 16 +
			     (unsigned long)(isdigit(b[i]) ? b[i] - '0' : tolower(b[i]) - 'a' + 10);
			i++;
		}
		if (i == start)
			return false;
		/* Chunk extensions up to the line end. */
		while (i + 1 < len && !(b[i] == '\r' && b[i + 1] == '\n'))
			i++;
		if (i + 1 >= len)
			return false;
		i += 2;
		if (sz == 0)
			/* Trailers, then a blank line. */
			return headers_end(b + i - 2, len - (i - 2)) != 0;
		if (sz + 2 > len - i)
			return false;
		i += sz + 2;
	}
	return false;
}

bool shadow_request_complete(const __u8 *buf, size_t len)
{
	size_t end = headers_end(buf, len), i = 0;
	bool chunked = false;
	long long clen = -1;

	if (!end)
		return false;
	/* Header lines after the request line. */
	while (i < end && !(buf[i] == '\r' && buf[i + 1] == '\n'))
		i++;
	i += 2;
	while (i + 2 < end) {
		size_t eol = i;

		while (eol + 1 < end && !(buf[eol] == '\r' && buf[eol + 1] == '\n'))
			eol++;
		if (eol - i >= 15 && !strncasecmp((const char *)buf + i, "content-length:", 15)) {
			char num[24];
			size_t k = i + 15, n = 0;

			while (k < eol && (buf[k] == ' ' || buf[k] == '\t'))
				k++;
			while (k < eol && n + 1 < sizeof(num) && isdigit(buf[k]))
				num[n++] = (char)buf[k++];
			num[n] = '\0';
			if (!n)
				return false;
			clen = atoll(num);
		} else if (eol - i >= 18 &&
			   !strncasecmp((const char *)buf + i, "transfer-encoding:", 18)) {
			chunked = true;
		}
		i = eol + 2;
	}
	if (chunked)
		return chunked_complete(buf + end, len - end);
	if (clen < 0)
		return end == len;
	return (size_t)clen == len - end;
}

int shadow_status_line(const char *b, size_t len, __u16 *status)
{
	static const char prefix[] = "HTTP/1.";
	size_t i;

	for (i = 0; i < len && i < 7; i++)
		if (b[i] != prefix[i])
			return -1;
	if (len < 12)
		return 0;
	if (!isdigit((unsigned char)b[7]) || b[8] != ' ' || b[9] < '1' || b[9] > '5' ||
	    !isdigit((unsigned char)b[10]) || !isdigit((unsigned char)b[11]))
		return -1;
	*status = (__u16)((b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0'));
	return 1;
}

void shadow_window_init(struct shadow_window *w, __u64 span_ns)
{
	memset(w, 0, sizeof(*w));
	w->bucket_ns = span_ns / SHADOW_WIN_BUCKETS;
	if (!w->bucket_ns)
		w->bucket_ns = 1;
}

/* Move the head to the bucket holding now, emptying the ones passed over. */
static void advance(struct shadow_window *w, __u64 now)
{
	__u64 steps;

	/* Never set up (shadow_apply() not run for the service yet): nothing to move. */
	if (!w->bucket_ns)
		return;
	if (!w->head_start_ns) {
		w->head_start_ns = now;
		return;
	}
	if (now < w->head_start_ns + w->bucket_ns)
		return;
	steps = (now - w->head_start_ns) / w->bucket_ns;
	if (steps >= SHADOW_WIN_BUCKETS) {
		memset(w->n, 0, sizeof(w->n));
		memset(w->mm, 0, sizeof(w->mm));
	} else {
		for (__u64 k = 0; k < steps; k++) {
			w->head = (w->head + 1) % SHADOW_WIN_BUCKETS;
			w->n[w->head] = 0;
			w->mm[w->head] = 0;
		}
	}
	w->head_start_ns += steps * w->bucket_ns;
}

void shadow_window_add(struct shadow_window *w, __u64 now, bool mismatch)
{
	advance(w, now);
	w->n[w->head]++;
	w->mm[w->head] += mismatch;
}

double shadow_window_rate(struct shadow_window *w, __u64 now, __u64 *n, __u64 *mm)
{
	__u64 tn = 0, tm = 0;
	int i;

	advance(w, now);
	for (i = 0; i < SHADOW_WIN_BUCKETS; i++) {
		tn += w->n[i];
		tm += w->mm[i];
	}
	if (n)
		*n = tn;
	if (mm)
		*mm = tm;
	return tn ? (double)tm / (double)tn : 0.0;
}
