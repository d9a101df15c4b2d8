// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Sliding window and log-linear histogram: expiry, late samples, quantile error bound. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "analysis/quantile.h"
#include "analysis/window.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* Deterministic PRNG (xorshift64*): reproducible inputs without global state. */
static __u64 rng_next(__u64 *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* Every bucket maps its own edges back to itself and the buckets tile the range. */
static void test_bucket_edges(void **state)
{
	__u32 b;

	(void)state;
	assert_int_equal(LHIST_BUCKETS, 384);
	assert_int_equal(lhist_bucket(0), 0);
	assert_int_equal(lhist_bucket(999), 0);
	assert_int_equal(lhist_bucket(1000), 1);
	assert_int_equal(lhist_bucket(LHIST_MAX_NS), LHIST_BUCKETS - 1);
	assert_int_equal(lhist_bucket(LHIST_MAX_NS + 1), LHIST_BUCKETS - 1);
	assert_int_equal(lhist_bucket(~0ull), LHIST_BUCKETS - 1);
	for (b = 0; b < LHIST_BUCKETS; b++) {
		__u64 lo = lhist_bucket_lower_ns(b), hi = lhist_bucket_upper_ns(b);

		assert_true(lo < hi);
		assert_int_equal(lhist_bucket(lo), b);
		assert_int_equal(lhist_bucket(hi - 1), b);
		if (b + 1 < LHIST_BUCKETS)
			assert_int_equal(lhist_bucket_lower_ns(b + 1), hi);
		/* The documented bound: width <= 1/16 of the lower edge from 32 µs on. */
		if (b >= LHIST_LINEAR)
			assert_true((hi - lo) * 16 <= lo);
		else
			assert_int_equal(hi - lo, LHIST_UNIT_NS);
	}
	assert_int_equal(lhist_bucket_upper_ns(LHIST_BUCKETS - 1), LHIST_MAX_NS + 1);
}

static void test_quantile_rank(void **state)
{
	static const struct {
		double q;
		__u64 n, rank;
	} rows[] = {
		{ 0.99, 100, 99 }, { 0.95, 20, 19 },	 { 0.95, 21, 20 }, { 0.99, 20, 20 },
		{ 0.5, 1, 1 },	   { 0.5, 2, 1 },	 { 0.5, 3, 2 },	   { 0.0, 10, 1 },
		{ 1.0, 10, 10 },   { 0.999, 1000, 999 }, { 0.99, 0, 0 },   { -1.0, 5, 1 },
		{ 2.0, 5, 5 },	   { 0.07, 100, 7 }, /* 0.07 * 100 = 7.000000000000001 */
		{ 0.29, 100, 29 }, /* 28.999999999999996 */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(quantile_rank(rows[i].q, rows[i].n), rows[i].rank);
}

/*
 * Against a sorted reference: the answer r for the nearest-rank sample x obeys
 * x < r <= max(x + 1 µs, x * 17/16) (quantile.h), over values from 100 ns to 100 s.
 */
static void test_quantile_accuracy(void **state)
{
	static const size_t sizes[] = { 1, 2, 7, 20, 100, 1000, 10007, 100000 };
	static const double qs[] = { 0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0 };
	struct lhist *h = malloc(sizeof(*h));
	__u64 *ref = malloc(100000 * sizeof(*ref));
	__u64 seed = 0x5eed;
	size_t si, i, qi;

	(void)state;
	assert_non_null(h);
	assert_non_null(ref);
	for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t n = sizes[si];
		__u64 multi[sizeof(qs) / sizeof(qs[0])];

		lhist_reset(h);
		for (i = 0; i < n; i++) {
			/* Log-uniform 100 ns .. 100 s: every bucket scale gets hit. */
			__u64 r = rng_next(&seed);
			__u32 decade = (__u32)(r % 10);
			__u64 base = 100, span;

			while (decade--)
				base *= 10;
			span = base * 9 / 10 + 1;
			ref[i] = base / 10 + (rng_next(&seed) % span);
			if (ref[i] > 100 * SEC)
				ref[i] = 100 * SEC;
			lhist_add(h, ref[i]);
		}
		qsort(ref, n, sizeof(*ref), cmp_u64);
		assert_int_equal(h->count, n);
		lhist_quantiles_ns(h, qs, multi, sizeof(qs) / sizeof(qs[0]));
		for (qi = 0; qi < sizeof(qs) / sizeof(qs[0]); qi++) {
			__u64 x = ref[quantile_rank(qs[qi], n) - 1];
			__u64 got = lhist_quantile_ns(h, qs[qi]);
			__u64 slack = x + 1000 > x * 17 / 16 ? x + 1000 : x * 17 / 16;

			assert_true(got > x);
			assert_true(got <= slack + 1);
			assert_int_equal(got, multi[qi]);
		}
	}
	lhist_reset(h);
	assert_int_equal(lhist_quantile_ns(h, 0.99), 0);
	free(ref);
	free(h);
}

static void test_init_invalid(void **state)
{
	struct window w;

	(void)state;
	assert_int_equal(window_init(&w, 0, 10), -EINVAL);
	assert_int_equal(window_init(&w, 10 * SEC, 0), -EINVAL);
	assert_int_equal(window_init(&w, 5, 10), -EINVAL);
	window_free(&w); /* safe after a failed init */
	assert_int_equal(window_init(&w, 10 * SEC, 10), 0);
	assert_int_equal(w.slice_ns, SEC);
	window_free(&w);
	window_free(&w); /* and twice */
}

static void test_counts(void **state)
{
	struct window w;

	(void)state;
	assert_int_equal(window_init(&w, 10 * SEC, 10), 0);
	assert_int_equal(window_requests(&w), 0);
	assert_true(window_error_rate(&w) == 0.0);
	assert_int_equal(window_quantile_ns(&w, 0.99), 0);
	assert_true(window_add(&w, 100 * SEC, false, 10 * MS));
	assert_true(window_add(&w, 100 * SEC + 1, true, 0));
	assert_true(window_add(&w, 101 * SEC, true, 20 * MS));
	assert_true(window_add(&w, 102 * SEC, false, 0));
	assert_int_equal(window_requests(&w), 4);
	assert_int_equal(window_errors(&w), 2);
	assert_int_equal(window_latency_count(&w), 2);
	assert_true(window_error_rate(&w) == 0.5);
	assert_true(window_quantile_ns(&w, 0.99) > 20 * MS);
	assert_true(window_quantile_ns(&w, 0.5) > 10 * MS);
	assert_true(window_quantile_ns(&w, 0.5) <= 10 * MS * 17 / 16);
	window_free(&w);
}

/*
 * Expiry, table-driven: one error at `at`, the window advanced to `now`
 * (L = 10 s, 1 s slices, slice boundaries on whole seconds).
 */
static void test_expiry(void **state)
{
	static const struct {
		const char *what;
		__u64 at, now;
		__u64 errors;
	} rows[] = {
		{ "same slice", 100 * SEC + 500 * MS, 100 * SEC + 900 * MS, 1 },
		{ "9 slices on", 100 * SEC + 500 * MS, 109 * SEC + 999 * MS, 1 },
		{ "10th slice: expired", 100 * SEC + 500 * MS, 110 * SEC, 0 },
		{ "exactly L old", 100 * SEC + 500 * MS, 110 * SEC + 500 * MS, 0 },
		{ "far later", 100 * SEC, 1000 * SEC, 0 },
		{ "time going back is ignored", 100 * SEC + 500 * MS, 50 * SEC, 1 },
	};
	struct window w;
	size_t i;

	(void)state;
	assert_int_equal(window_init(&w, 10 * SEC, 10), 0);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		window_reset(&w);
		assert_true(window_add(&w, rows[i].at, true, 5 * MS));
		window_advance(&w, rows[i].now);
		if (window_errors(&w) != rows[i].errors)
			fail_msg("%s: %llu errors, want %llu", rows[i].what,
				 (unsigned long long)window_errors(&w),
				 (unsigned long long)rows[i].errors);
		assert_int_equal(window_requests(&w), rows[i].errors);
		assert_int_equal(window_latency_count(&w), rows[i].errors);
		if (!rows[i].errors)
			assert_int_equal(window_quantile_ns(&w, 0.99), 0);
	}
	window_free(&w);
}

/* Slices expire one by one: the totals and the histogram follow. */
static void test_rolling(void **state)
{
	struct window w;
	__u64 t;

	(void)state;
	assert_int_equal(window_init(&w, 10 * SEC, 10), 0);
	/* One slow request in slice 100, then one fast request per second. */
	assert_true(window_add(&w, 100 * SEC, true, 2 * SEC));
	for (t = 101; t <= 109; t++)
		assert_true(window_add(&w, t * SEC, false, 1 * MS));
	assert_int_equal(window_requests(&w), 10);
	assert_int_equal(window_errors(&w), 1);
	assert_true(window_quantile_ns(&w, 1.0) > 2 * SEC);
	assert_true(window_add(&w, 110 * SEC, false, 1 * MS));
	assert_int_equal(window_requests(&w), 10);
	assert_int_equal(window_errors(&w), 0);
	assert_true(window_quantile_ns(&w, 1.0) <= 1 * MS * 17 / 16);
	/* Three slices later the live ones are 104..113: 104..110 hold one each. */
	window_advance(&w, 113 * SEC);
	assert_int_equal(window_requests(&w), 7);
	window_free(&w);
}

/* A sample older than the oldest live slice is dropped and counted; a
 * slightly late one lands in its own slice and expires with it. */
static void test_late(void **state)
{
	struct window w;
	__u64 late0;

	(void)state;
	assert_int_equal(window_init(&w, 10 * SEC, 10), 0);
	window_advance(&w, 200 * SEC + 100 * MS);
	late0 = window_late(&w);
	assert_false(window_add(&w, 190 * SEC + 999 * MS, true, 1 * MS)); /* slice 190: gone */
	assert_int_equal(window_late(&w), late0 + 1);
	assert_int_equal(window_requests(&w), 0);
	assert_int_equal(window_latency_count(&w), 0);
	assert_true(window_add(&w, 191 * SEC, true, 1 * MS)); /* oldest live slice */
	assert_true(window_add(&w, 195 * SEC, true, 0));
	assert_int_equal(window_errors(&w), 2);
	assert_int_equal(window_late(&w), late0 + 1);
	window_advance(&w, 201 * SEC);
	assert_int_equal(window_errors(&w), 1);
	assert_int_equal(window_latency_count(&w), 0);
	window_advance(&w, 205 * SEC);
	assert_int_equal(window_errors(&w), 0);
	window_free(&w);
}

/* lat_gen moves exactly when the histogram does: quantile caches rely on it. */
static void test_lat_gen(void **state)
{
	struct window w;
	__u64 g;

	(void)state;
	assert_int_equal(window_init(&w, 10 * SEC, 10), 0);
	g = w.lat_gen;
	window_add(&w, 100 * SEC, true, 0);
	assert_int_equal(w.lat_gen, g);
	window_add(&w, 100 * SEC, false, 1 * MS);
	assert_int_not_equal(w.lat_gen, g);
	g = w.lat_gen;
	window_add(&w, 102 * SEC, true, 0);
	window_advance(&w, 105 * SEC); /* nothing with latency expires */
	assert_int_equal(w.lat_gen, g);
	window_advance(&w, 110 * SEC); /* slice 100 and its latency go */
	assert_int_not_equal(w.lat_gen, g);
	g = w.lat_gen;
	window_reset(&w);
	assert_int_not_equal(w.lat_gen, g);
	window_free(&w);
}

static void test_reset(void **state)
{
	struct window w;
	int i;

	(void)state;
	assert_int_equal(window_init(&w, 10 * SEC, 10), 0);
	for (i = 0; i < 50; i++)
		window_add(&w, 100 * SEC + (__u64)i * 100 * MS, i % 3 == 0, 7 * MS);
	assert_int_equal(window_requests(&w), 50);
	window_reset(&w);
	assert_int_equal(window_requests(&w), 0);
	assert_int_equal(window_errors(&w), 0);
	assert_int_equal(window_quantile_ns(&w, 0.5), 0);
	/* A fresh start at any time, even earlier than before the reset. */
	assert_true(window_add(&w, 10 * SEC, false, 3 * MS));
	assert_int_equal(window_requests(&w), 1);
	assert_true(window_quantile_ns(&w, 0.5) > 3 * MS);
	window_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_edges),
		cmocka_unit_test(test_quantile_rank),
		cmocka_unit_test(test_quantile_accuracy),
		cmocka_unit_test(test_init_invalid),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_rolling),
		cmocka_unit_test(test_late),
		cmocka_unit_test(test_lat_gen),
		cmocka_unit_test(test_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
