/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Time-sliced sliding window of request counts and a latency histogram.
 *
 * The window is S slices of L/S ns each, aligned to multiples of L/S on the
 * sample clock (CLOCK_MONOTONIC, the datapath's bpf_ktime_get_ns). Time moves
 * only with the timestamps handed in (samples, or window_advance), never with
 * the wall clock, so a replayed sample stream gives the same answers.
 *
 * The live slices are the current one and the S-1 before it: the window spans
 * between L - L/S and L of history, and nothing older than L is ever counted.
 * A sample older than the oldest live slice is dropped and counted in
 * window_late(); a slightly out-of-order sample that still falls in a live
 * slice is added to that slice.
 *
 * Totals over the live slices are kept incrementally (added with each sample,
 * a slice subtracted when it expires), so counts are O(1) and quantiles
 * O(groups + sub-buckets); see quantile.h for the histogram's error bound.
 *
 * Queries answer as of the latest timestamp seen: call window_advance(now)
 * first for a view at "now".
 */
#ifndef SHIFT_WINDOW_H
#define SHIFT_WINDOW_H

#include <stdbool.h>
#include <linux/types.h>

#include "analysis/quantile.h"

struct window_slice {
	__u32 requests;
	__u32 errors;
	__u32 lat_count; /* samples in this slice's histogram */
};

struct window {
	__u64 length_ns;
	__u64 slice_ns;
	__u32 nslices;
	bool started; /* a timestamp has been seen: cur_idx is meaningful */
	__u64 cur_idx; /* absolute slice number (ts / slice_ns) of the newest slice */
	__u64 cur_start_ns; /* cur_idx * slice_ns: the fast path skips a division */
	__u32 cur_slot; /* cur_idx % nslices, likewise */
	struct window_slice *slices; /* nslices, slot = idx % nslices */
	__u32 *hist; /* nslices * LHIST_BUCKETS per-slice latency buckets */
	__u64 requests; /* totals over the live slices */
	__u64 errors;
	struct lhist lat;
	__u64 late; /* samples dropped for being older than the window */
	/* Bumped whenever the latency histogram changes: lets callers cache quantiles. */
	__u64 lat_gen;
};

/* Allocates; 0 or -EINVAL (length 0, slices 0 or more slices than ns) / -ENOMEM. */
int window_init(struct window *w, __u64 length_ns, __u32 slices);
void window_free(struct window *w);
/* Forget every sample (keeps the allocation and the late counter). */
void window_reset(struct window *w);
/* Expire the slices that fall out of the window at now_ns; never moves back. */
void window_advance(struct window *w, __u64 now_ns);
/*
 * Count one request at ts_ns (advancing the window if ts_ns is newer), an
 * error if error is set, with a latency unless latency_ns is 0. Returns false
 * if the sample was older than the window and dropped.
 */
bool window_add(struct window *w, __u64 ts_ns, bool error, __u64 latency_ns);
/*
 * Count n requests at ts_ns, all errors if error is set, none with a
 * latency: samples a full ring lost, known only by their number. As
 * window_add() for the time.
 */
bool window_add_count(struct window *w, __u64 ts_ns, bool error, __u32 n);

static inline __u64 window_requests(const struct window *w)
{
	return w->requests;
}

static inline __u64 window_errors(const struct window *w)
{
	return w->errors;
}

/* Samples in the latency histogram (successes with a latency, 5xx with one). */
static inline __u64 window_latency_count(const struct window *w)
{
	return w->lat.count;
}

static inline __u64 window_late(const struct window *w)
{
	return w->late;
}

/* errors / requests, 0 when there are no requests. */
double window_error_rate(const struct window *w);
/* Upper edge of the bucket holding quantile q, in ns; 0 if no latency data. */
__u64 window_quantile_ns(const struct window *w, double q);
/* Several quantiles in one pass; q[] ascending. */
void window_quantiles_ns(const struct window *w, const double *q, __u64 *out, size_t n);

#endif /* SHIFT_WINDOW_H */
