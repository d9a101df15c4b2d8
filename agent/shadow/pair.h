/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shadow mode's arithmetic, free of sockets and maps: is a copied request
 * complete, what did green's status line say, how do blue's and green's
 * answers compare, and the mismatch rate over a sliding window.
 */
#ifndef SHIFT_SHADOW_PAIR_H
#define SHIFT_SHADOW_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

/*
 * Green is "slower" only when it is slower by the ratio AND by this much: the
 * replay goes through shiftd's own socket and event loop, whose scheduling
 * noise on a busy host is of this order, while blue's time is the kernel's.
 */
#define SHADOW_SLOWER_FLOOR_NS (10ull * 1000 * 1000)

enum shadow_kind {
	SHADOW_MATCH = 0,
	SHADOW_MM_STATUS, /* status classes differ */
	SHADOW_MM_ERROR, /* green refused, reset or sent no status line */
	SHADOW_MM_TIMEOUT, /* green did not answer before the deadline */
	SHADOW_MM_SLOWER, /* green's time to first byte > max_latency_ratio x blue's */
	SHADOW_KINDS,
};

enum shadow_how {
	SHADOW_ANS_NONE = 0, /* not known yet */
	SHADOW_ANS_STATUS, /* a status line */
	SHADOW_ANS_ERROR, /* refused, reset, closed, garbage */
	SHADOW_ANS_TIMEOUT,
};

struct shadow_answer {
	enum shadow_how how;
	__u16 status;
	__u64 ttfb_ns; /* request -> first response byte */
};

/* Metric and JSON name of a kind: "match", "status", "green_error", ... */
const char *shadow_kind_name(enum shadow_kind k);

/* ratio <= 0: latency is not compared. */
enum shadow_kind shadow_classify(const struct shadow_answer *blue,
				 const struct shadow_answer *green, double ratio);

/*
 * A copy is replayable when its headers end within it and its body, if any,
 * is all there (Content-Length bytes after the headers; chunked ends with
 * its last chunk). Returns true, or false: part of it was in later packets.
 */
bool shadow_request_complete(const __u8 *buf, size_t len);

/* "HTTP/1.x NNN": 1 and *status, 0 need more bytes, -1 not a status line. */
int shadow_status_line(const char *buf, size_t len, __u16 *status);

/* The outcomes of the last span_ns, in SHADOW_WIN_BUCKETS time buckets. */
#define SHADOW_WIN_BUCKETS 10
struct shadow_window {
	__u64 bucket_ns;
	__u64 head_start_ns; /* start of the newest bucket */
	__u32 head;
	__u64 n[SHADOW_WIN_BUCKETS], mm[SHADOW_WIN_BUCKETS];
};

void shadow_window_init(struct shadow_window *w, __u64 span_ns);
void shadow_window_add(struct shadow_window *w, __u64 now_ns, bool mismatch);
/* Compared and mismatched in the window ending now; returns the rate (0 if none). */
double shadow_window_rate(struct shadow_window *w, __u64 now_ns, __u64 *n, __u64 *mm);

#endif
