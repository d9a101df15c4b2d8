// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Log-linear latency histogram: see quantile.h for the layout and error bound. */
#include <string.h>

#include "analysis/quantile.h"

__u64 lhist_bucket_lower_ns(__u32 b)
{
	__u32 g, sub, shift;

	if (b < LHIST_LINEAR)
		return (__u64)b * LHIST_UNIT_NS;
	if (b >= LHIST_BUCKETS)
		b = LHIST_BUCKETS - 1;
	g = (b - LHIST_LINEAR) / LHIST_SUB;
	sub = (b - LHIST_LINEAR) % LHIST_SUB;
	shift = g + 1; /* msb - LHIST_SUB_BITS, msb = g + LHIST_SUB_BITS + 1 */
	return ((__u64)(LHIST_SUB + sub) << shift) * LHIST_UNIT_NS;
}

__u64 lhist_bucket_upper_ns(__u32 b)
{
	__u32 g;

	if (b < LHIST_LINEAR)
		return (__u64)(b + 1) * LHIST_UNIT_NS;
	if (b >= LHIST_BUCKETS)
		b = LHIST_BUCKETS - 1;
	g = (b - LHIST_LINEAR) / LHIST_SUB;
	return lhist_bucket_lower_ns(b) + ((__u64)1 << (g + 1)) * LHIST_UNIT_NS;
}

__u64 quantile_rank(double q, __u64 n)
{
	double x;
	__u64 r;

	if (!n)
		return 0;
	if (!(q > 0.0)) /* also catches NaN */
		return 1;
	if (q >= 1.0)
		return n;
	x = q * (double)n;
	r = (__u64)x;
	/*
	 * ceil(x), except that a product that should be a whole number but came
	 * out a hair above it (0.07 * 100 = 7.000000000000001) stays whole: the
	 * nearest rank of p7 among 100 samples is the 7th, not the 8th.
	 */
	if (x - (double)r > 1e-9)
		r++;
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return r;
}

void lhist_reset(struct lhist *h)
{
	memset(h, 0, sizeof(*h));
}

void lhist_sub_buckets(struct lhist *h, const __u32 *bucket, __u32 count)
{
	__u32 b;

	h->count -= count;
	for (b = 0; b < LHIST_BUCKETS; b++) {
		if (!bucket[b])
			continue;
		h->bucket[b] -= bucket[b];
		h->group[b / LHIST_SUB] -= bucket[b];
	}
}

void lhist_quantiles_ns(const struct lhist *h, const double *q, __u64 *out, size_t n)
{
	__u64 cum = 0; /* samples in groups before g, then in buckets before b */
	__u32 g = 0, b;
	size_t i;

	for (i = 0; i < n; i++) {
		__u64 r = quantile_rank(q[i], h->count);

		if (!r) {
			out[i] = 0;
			continue;
		}
		/* Ranks ascend with q, so the walk resumes where the last one stopped. */
		while (g < LHIST_GROUPS - 1 && cum + h->group[g] < r)
			cum += h->group[g++];
		b = g * LHIST_SUB;
		{
			__u64 c = cum;

			while (b < (g + 1) * LHIST_SUB - 1 && c + h->bucket[b] < r)
				c += h->bucket[b++];
		}
		out[i] = lhist_bucket_upper_ns(b);
	}
}

__u64 lhist_quantile_ns(const struct lhist *h, double q)
{
	__u64 v;

	lhist_quantiles_ns(h, &q, &v, 1);
	return v;
}
