// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Sliding window of counts + latency histogram; see window.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/window.h"

int window_init(struct window *w, __u64 length_ns, __u32 slices)
{
	memset(w, 0, sizeof(*w));
	if (!length_ns || !slices || length_ns < slices)
		return -EINVAL;
	w->slices = calloc(slices, sizeof(*w->slices));
	w->hist = calloc((size_t)slices * LHIST_BUCKETS, sizeof(*w->hist));
	if (!w->slices || !w->hist) {
		window_free(w);
		return -ENOMEM;
	}
	w->length_ns = length_ns;
	w->nslices = slices;
	/* Floor: the window may come out a few ns short of length_ns, never longer. */
	w->slice_ns = length_ns / slices;
	return 0;
}

void window_free(struct window *w)
{
	free(w->slices);
	free(w->hist);
	w->slices = NULL;
	w->hist = NULL;
}

void window_reset(struct window *w)
{
	if (!w->slices)
		return;
	memset(w->slices, 0, w->nslices * sizeof(*w->slices));
	memset(w->hist, 0, (size_t)w->nslices * LHIST_BUCKETS * sizeof(*w->hist));
	w->started = false;
	w->cur_idx = 0;
	w->cur_start_ns = 0;
	w->cur_slot = 0;
	w->requests = 0;
	w->errors = 0;
	lhist_reset(&w->lat);
	w->lat_gen++;
}

static void slice_expire(struct window *w, __u32 slot)
{
	struct window_slice *s = &w->slices[slot];
	__u32 *h = &w->hist[(size_t)slot * LHIST_BUCKETS];

	w->requests -= s->requests;
	w->errors -= s->errors;
	/* Most slices of a quiet pool hold no latency: skip the 1.5 KiB walk. */
	if (s->lat_count) {
		lhist_sub_buckets(&w->lat, h, s->lat_count);
		memset(h, 0, LHIST_BUCKETS * sizeof(*h));
		w->lat_gen++;
	}
	memset(s, 0, sizeof(*s));
}

static void window_move_to(struct window *w, __u64 idx)
{
	if (!w->started) {
		w->started = true;
	} else if (idx - w->cur_idx >= w->nslices) {
		/* Silent for a whole window: everything expires at once. */
		window_reset(w);
		w->started = true;
	} else {
		__u64 i;

		for (i = w->cur_idx + 1; i <= idx; i++)
			slice_expire(w, (__u32)(i % w->nslices));
	}
	w->cur_idx = idx;
	w->cur_start_ns = idx * w->slice_ns;
	w->cur_slot = (__u32)(idx % w->nslices);
}

void window_advance(struct window *w, __u64 now_ns)
{
	__u64 idx;

	/* Still inside the current slice (the common case): no division. */
	if (w->started && now_ns >= w->cur_start_ns && now_ns - w->cur_start_ns < w->slice_ns)
		return;
	idx = now_ns / w->slice_ns;
	if (w->started && idx <= w->cur_idx)
		return;
	window_move_to(w, idx);
}

/* The slot of the slice ts_ns falls in (the window moved to it if newer); false if too old. */
static bool slot_of(struct window *w, __u64 ts_ns, __u32 *slot)
{
	__u64 idx;

	if (w->started && ts_ns >= w->cur_start_ns && ts_ns - w->cur_start_ns < w->slice_ns) {
		*slot = w->cur_slot;
		return true;
	}
	idx = ts_ns / w->slice_ns;
	if (!w->started || idx > w->cur_idx) {
		window_move_to(w, idx);
		*slot = w->cur_slot;
	} else if (w->cur_idx - idx >= w->nslices) {
		w->late++;
		return false;
	} else {
		*slot = (__u32)(idx % w->nslices);
	}
	return true;
}

bool window_add(struct window *w, __u64 ts_ns, bool error, __u64 latency_ns)
{
	struct window_slice *s;
	__u32 slot;

	if (!slot_of(w, ts_ns, &slot))
		return false;
	s = &w->slices[slot];
	s->requests++;
	w->requests++;
	if (error) {
		s->errors++;
		w->errors++;
	}
	if (latency_ns) {
		__u32 b = lhist_bucket(latency_ns);

		w->hist[(size_t)slot * LHIST_BUCKETS + b]++;
		s->lat_count++;
		lhist_add_bucket(&w->lat, b, 1);
		w->lat_gen++;
	}
	return true;
}

bool window_add_count(struct window *w, __u64 ts_ns, bool error, __u32 n)
{
	struct window_slice *s;
	__u32 slot;

	if (!n)
		return true;
	if (!slot_of(w, ts_ns, &slot))
		return false;
	s = &w->slices[slot];
	/* A slice's counts are 32 bits: saturate rather than wrap. */
	n = s->requests > UINT32_MAX - n ? UINT32_MAX - s->requests : n;
	s->requests += n;
	w->requests += n;
	if (error) {
		s->errors += n;
		w->errors += n;
	}
	return true;
}

double window_error_rate(const struct window *w)
{
	return w->requests ? (double)w->errors / (double)w->requests : 0.0;
}

__u64 window_quantile_ns(const struct window *w, double q)
{
	return lhist_quantile_ns(&w->lat, q);
}

void window_quantiles_ns(const struct window *w, const double *q, __u64 *out, size_t n)
{
	lhist_quantiles_ns(&w->lat, q, out, n);
}
