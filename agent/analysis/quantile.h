/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Log-linear (HDR-style) latency histogram with bounded memory.
 *
 * Values are bucketed in whole microseconds (u = ns / 1000). Below 32 µs each
 * microsecond has its own bucket; from 32 µs up, every power of two is split
 * into 16 equal sub-buckets, so a bucket is never wider than 1/16 of its lower
 * edge. 384 buckets cover 0 .. 2^27 µs (~134 s); larger values are clamped into
 * the last bucket.
 *
 * Error bound: a quantile query returns the (exclusive) upper edge of the
 * bucket holding the nearest-rank sample x, so for 0 < x < 134 s the answer r
 * satisfies   x < r <= max(x + 1 µs, x * 17/16)   (at most +6.25 %, or +1 µs
 * below 32 µs). It never reports less than the true value, so an
 * "above limit" check errs towards firing; beyond ~134 s it saturates.
 *
 * Each bucket also belongs to a group of 16 (one power of two), and the
 * histogram keeps per-group totals so a quantile walks 24 groups + 16 buckets
 * instead of all 384.
 */
#ifndef SHIFT_QUANTILE_H
#define SHIFT_QUANTILE_H

#include <stddef.h>
#include <linux/types.h>

#define LHIST_UNIT_NS 1000ull /* bucket unit: 1 µs */
#define LHIST_SUB_BITS 4 /* 16 sub-buckets per power of two */
#define LHIST_SUB (1u << LHIST_SUB_BITS)
#define LHIST_LINEAR (2 * LHIST_SUB) /* 0..31 µs: one bucket per µs */
#define LHIST_MAX_MSB 26 /* highest power of two covered: 2^26 .. 2^27 µs */
#define LHIST_BUCKETS (LHIST_LINEAR + (LHIST_MAX_MSB - LHIST_SUB_BITS) * LHIST_SUB) /* 384 */
#define LHIST_GROUPS (LHIST_BUCKETS / LHIST_SUB) /* 24 */
/* Largest value with a bucket of its own; anything above lands in the last one. */
#define LHIST_MAX_NS ((1ull << (LHIST_MAX_MSB + 1)) * LHIST_UNIT_NS - 1)

struct lhist {
	__u32 count; /* samples in all buckets */
	__u32 group[LHIST_GROUPS]; /* sum of each run of LHIST_SUB buckets */
	__u32 bucket[LHIST_BUCKETS];
};

/* Bucket index of a latency in ns. */
static inline __u32 lhist_bucket(__u64 ns)
{
	__u64 u = ns / LHIST_UNIT_NS;
	__u32 msb, shift;

	if (u < LHIST_LINEAR)
		return (__u32)u;
	msb = 63 - (__u32)__builtin_clzll(u);
	if (msb > LHIST_MAX_MSB)
		return LHIST_BUCKETS - 1;
	shift = msb - LHIST_SUB_BITS;
	return LHIST_LINEAR + (msb - LHIST_SUB_BITS - 1) * LHIST_SUB +
	       (__u32)((u >> shift) & (LHIST_SUB - 1));
}

/* Exclusive upper edge of bucket b in ns: every value in b is below it. */
__u64 lhist_bucket_upper_ns(__u32 b);
/* Inclusive lower edge of bucket b in ns. */
__u64 lhist_bucket_lower_ns(__u32 b);

/* Nearest rank of quantile q (0..1) among n samples: ceil(q * n), in 1..n. */
__u64 quantile_rank(double q, __u64 n);

void lhist_reset(struct lhist *h);

static inline void lhist_add_bucket(struct lhist *h, __u32 b, __u32 n)
{
	h->count += n;
	h->group[b / LHIST_SUB] += n;
	h->bucket[b] += n;
}

static inline void lhist_add(struct lhist *h, __u64 ns)
{
	lhist_add_bucket(h, lhist_bucket(ns), 1);
}

/* Subtract a plain bucket array (a window slice) that was added before. */
void lhist_sub_buckets(struct lhist *h, const __u32 *bucket, __u32 count);

/*
 * Quantile q (0..1) as the upper edge of the bucket holding the nearest-rank
 * sample, in ns; 0 if the histogram is empty.
 */
__u64 lhist_quantile_ns(const struct lhist *h, double q);
/* Several quantiles in one pass; q[] must be ascending. */
void lhist_quantiles_ns(const struct lhist *h, const double *q, __u64 *out, size_t n);

#endif /* SHIFT_QUANTILE_H */
