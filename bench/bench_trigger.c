// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Micro-benchmark of analysis_feed(): ns per sample with every trigger
 * configured and a realistic sample stream (a benchmark, not a test: it
 * prints figures and checks nothing but that the stream did not fire).
 *
 * Stream: 20 k samples/s per service (50 µs apart, some up to 200 µs out of
 * order), green at 20 %, 10 % CONNECT samples (ignored by an HTTP service),
 * ~1 % errors (RST and 5xx), response latency 5..45 ms with a 0.5 % tail
 * at 200..400 ms. 1M samples span 50 s, so slices expire all along (10 s window).
 *
 * Scenarios:
 *   one service     every sample to the same analysis (hot caches)
 *   green only      every sample green: every one evaluates every trigger
 *   256 services    samples spread over 256 analyses (~9 MB of windows):
 *                   closer to a busy edge host's cache behaviour
 *   per call        one service again, each call timed on its own
 *
 *   usage: bench_trigger [SAMPLES]     (default 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#include "analysis/trigger.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define ROUNDS 5
#define SERVICES 256

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * SEC + (__u64)ts.tv_nsec;
}

static __u64 rng_next(__u64 *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void limits_all(struct trigger_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->window_ns = 10 * SEC;
	/* Loose enough that this healthy stream's noise never fires: the figure
	 * is the cost of the common, non-firing path. */
	l->min_requests = 100;
	l->max_error_rate = 0.05;
	l->max_error_rate_increase = 0.03;
	l->max_latency_p99_ns = 500 * MS;
	l->max_latency_p95_ns = 300 * MS;
	l->max_latency_ratio = 2.0;
	l->max_consecutive_errors = 5;
}

/* Build the sample stream once, outside the timed loops. */
static void make_stream(struct shift_sample *v, size_t n, int green_pct, __u32 services)
{
	__u64 seed = 0x5eedf00d, ts = 1000 * SEC;
	size_t i;

	for (i = 0; i < n; i++) {
		struct shift_sample *s = &v[i];
		__u64 r = rng_next(&seed);
		__u32 kind = (__u32)(r % 1000);

		memset(s, 0, sizeof(*s));
		/* 50 µs apart per service, whatever the number of services. */
		ts += 50000 / services;
		s->ts_ns = ts;
		if ((r >> 10) % 8 == 0) /* ring buffer order is not quite time order */
			s->ts_ns -= (r >> 13) % 200000;
		s->service_id = (__u16)((r >> 20) % services);
		s->color = (int)((r >> 28) % 100) < green_pct ? SHIFT_GREEN : SHIFT_BLUE;
		s->backend_id = s->color * 64 + (__u32)((r >> 36) % 4);
		if (kind < 100) {
			s->kind = SHIFT_SAMPLE_CONNECT;
			s->value_ns = 100000 + (r >> 40) % 400000;
		} else if (kind < 105) {
			s->kind = SHIFT_SAMPLE_ERROR;
			s->err = SHIFT_ERR_RST;
		} else if (kind < 110) {
			s->kind = SHIFT_SAMPLE_ERROR;
			s->err = SHIFT_ERR_HTTP5XX;
			s->status = 503;
			s->value_ns = 5 * MS + (r >> 40) % (40 * MS);
		} else {
			s->kind = SHIFT_SAMPLE_RESPONSE;
			s->status = 200;
			s->value_ns = 5 * MS + (r >> 40) % (40 * MS);
			if (kind >= 995) /* the slow tail, beyond p99 */
				s->value_ns = 200 * MS + (r >> 40) % (200 * MS);
		}
	}
}

/* Median and best of ROUNDS passes over the stream, ns per sample. */
static void run(const char *name, const struct shift_sample *v, size_t n, __u32 services,
		const struct trigger_limits *l)
{
	struct analysis *a = calloc(services, sizeof(*a));
	double ns[ROUNDS];
	__u64 fired[TRIGGER__COUNT] = { 0 };
	char why[256] = "";
	size_t off = 0;
	char detail[160];
	int round;
	__u32 i;

	if (!a) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (round = 0; round < ROUNDS; round++) {
		__u64 t0, t1;
		size_t k;

		for (i = 0; i < services; i++) {
			if (analysis_init(&a[i], l)) {
				fprintf(stderr, "analysis_init failed\n");
				exit(1);
			}
		}
		t0 = now_ns();
		for (k = 0; k < n; k++) {
			const struct shift_sample *s = &v[k];

			fired[analysis_feed(&a[s->service_id % services], l, s, detail,
					    sizeof(detail))]++;
		}
		t1 = now_ns();
		ns[round] = (double)(t1 - t0) / (double)n;
		for (i = 0; i < services; i++)
			analysis_free(&a[i]);
	}
	qsort(ns, ROUNDS, sizeof(ns[0]), cmp_double);
	for (i = 1; i < TRIGGER__COUNT; i++)
		if (fired[i] && off < sizeof(why))
			off += (size_t)snprintf(why + off, sizeof(why) - off, " %s=%llu",
						trigger_reason_name(i),
						(unsigned long long)fired[i]);
	printf("  %-14s %8.1f ns/sample median, %8.1f best  (%zu samples x %d; fired:%s)\n", name,
	       ns[ROUNDS / 2], ns[0], n, ROUNDS, off ? why : " none");
	free(a);
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* Each call timed alone: the tail matters for the rollback reaction budget. */
static void run_per_call(const struct shift_sample *v, size_t n, const struct trigger_limits *l)
{
	__u64 *d = malloc(n * sizeof(*d)), overhead = ~0ull;
	struct analysis a;
	char detail[160];
	size_t k;

	if (!d || analysis_init(&a, l)) {
		fprintf(stderr, "setup failed\n");
		exit(1);
	}
	/* The clock's own cost, to subtract: the cheapest of many empty pairs. */
	for (k = 0; k < 100000; k++) {
		__u64 t0 = now_ns(), t1 = now_ns();

		if (t1 - t0 < overhead)
			overhead = t1 - t0;
	}
	for (k = 0; k < n; k++) {
		__u64 t0 = now_ns();

		analysis_feed(&a, l, &v[k], detail, sizeof(detail));
		d[k] = now_ns() - t0;
		d[k] = d[k] > overhead ? d[k] - overhead : 0;
	}
	qsort(d, n, sizeof(*d), cmp_u64);
	printf("  %-14s p50 %llu ns, p99 %llu ns, p99.9 %llu ns, max %llu ns (clock cost %llu ns subtracted)\n",
	       "per call", (unsigned long long)d[n / 2], (unsigned long long)d[n * 99 / 100],
	       (unsigned long long)d[n * 999 / 1000], (unsigned long long)d[n - 1],
	       (unsigned long long)overhead);
	analysis_free(&a);
	free(d);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	struct shift_sample *v;
	struct trigger_limits l;

	if (!n) {
		fprintf(stderr, "usage: %s [SAMPLES]\n", argv[0]);
		return 2;
	}
	v = malloc(n * sizeof(*v));
	if (!v) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	limits_all(&l);
	printf("analysis_feed, all triggers on (10 s window, %d slices, min_requests %u):\n",
	       ANALYSIS_SLICES, l.min_requests);
	printf("  memory: %zu bytes per service (struct) + %zu bytes of slices\n",
	       sizeof(struct analysis),
	       (size_t)SHIFT_COLORS * ANALYSIS_SLICES *
		       (sizeof(struct window_slice) + LHIST_BUCKETS * sizeof(__u32)));

	make_stream(v, n, 20, 1);
	run("one service", v, n, 1, &l);
	make_stream(v, n, 100, 1);
	run("green only", v, n, 1, &l);
	make_stream(v, n, 20, SERVICES);
	run("256 services", v, n, SERVICES, &l);
	make_stream(v, n, 20, 1);
	run_per_call(v, n, &l);
	free(v);
	return 0;
}
