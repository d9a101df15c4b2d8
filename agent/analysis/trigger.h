/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-service rollback analysis: one sliding window per color, fed with the
 * return-path samples, and the triggers of SPEC "Rollback" evaluated on every
 * green sample.
 *
 * What counts as one request (the "unit") depends on trigger_limits.analysis_connect:
 *   false (HTTP):      RESPONSE = success (latency = request -> first byte),
 *                      ERROR = failure (an HTTP 5xx with a latency also feeds
 *                      the latency histogram), CONNECT ignored;
 *   true (TLS, UDP..): CONNECT = success (latency = connect latency),
 *                      ERROR = failure (no latency), RESPONSE ignored;
 * and with analysis_auto (the datapath read each flow as HTTP/1.x, TLS,
 * HTTP/2 or plain TCP): RESPONSE = success (HTTP, TLS, HTTP/2), TCP =
 * success (a flow of another protocol, latency = connect latency), ERROR =
 * failure, CONNECT ignored (the flow's requests are counted instead).
 * TCP samples count only under analysis_auto.
 *
 * Evaluation rules:
 * - Only green samples evaluate triggers. A blue sample only updates blue's
 *   window: blue errors alone never fire, and a relative trigger that blue's
 *   improvement would make fire waits for green's next sample (which, with
 *   green at a non-zero weight, is never far away). This keeps the result a
 *   pure function of the green sample being fed.
 * - Consecutive errors: green errors with no green success (of the unit kind)
 *   in between; fires on the Nth and every further one, whatever min_requests.
 * - Rate triggers need >= min_requests green requests in the window; latency
 *   triggers need >= min_requests green latency samples (errors without a
 *   latency do not make a latency distribution). Relative triggers also need
 *   blue to meet the same bar in the same window (blue's window is advanced to
 *   the green sample's time first); otherwise they are not evaluated.
 * - Every comparison is strict: "rate > limit", "p99 > limit",
 *   "green pN > ratio x blue pN". Latency quantiles carry the histogram's
 *   error (quantile.h: up to +6.25 %, never below the true value).
 * - A trigger keeps firing on every green sample while its condition holds;
 *   the caller latches the rollback and calls analysis_reset when cleared.
 */
#ifndef SHIFT_TRIGGER_H
#define SHIFT_TRIGGER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <shift/maps.h>
#include <shift/sample.h>

#include "analysis/window.h"

/* Slices per window: at 10 s, 1 s granularity; ~17 KiB per pool. */
#define ANALYSIS_SLICES 10

struct trigger_limits {
	__u64 window_ns; /* sliding window length */
	__u32 min_requests;
	double max_error_rate; /* fraction 0..1; < 0 off */
	double max_error_rate_increase; /* green rate - blue rate, fraction; < 0 off */
	__u64 max_latency_p99_ns; /* 0 off */
	__u64 max_latency_p95_ns; /* 0 off */
	/* 0 off; green p99 / blue p99, and green p95 / blue p95 when max_latency_p95_ns is set */
	double max_latency_ratio;
	__u32 max_consecutive_errors; /* 0 off */
	bool analysis_connect; /* the unit is a connection, not an HTTP response */
	/* analysis = auto: RESPONSE and TCP samples are the unit, CONNECT is not */
	bool analysis_auto;
};

enum trigger_reason {
	TRIGGER_NONE = 0,
	TRIGGER_ERROR_RATE,
	TRIGGER_ERROR_RATE_INCREASE,
	TRIGGER_LATENCY_P99,
	TRIGGER_LATENCY_P95,
	TRIGGER_LATENCY_RATIO,
	TRIGGER_CONSECUTIVE_ERRORS,
	TRIGGER_HEALTH,
	TRIGGER_MANUAL,
	TRIGGER_DRILL, /* a rollback drill (shiftctl drill): restored after its hold */
	TRIGGER_ALERTMANAGER, /* a firing Alertmanager alert (agent/http/) */
	TRIGGER__COUNT,
};

/* Metric label value ("error_rate", ..., "manual", "drill", "alertmanager"; "none";
 * "unknown" if out of range). */
const char *trigger_reason_name(enum trigger_reason r);

/* Every trigger off (a zeroed struct is not: max_error_rate 0 means "any error"). */
void trigger_limits_disabled(struct trigger_limits *l, __u64 window_ns);

/* Quantiles of one pool, valid while the window's lat_gen has not moved. */
struct analysis_qcache {
	bool valid;
	__u64 lat_gen;
	__u64 p95_ns;
	__u64 p99_ns;
};

/* Error timestamps a streak keeps exactly (see struct analysis). */
#define ANALYSIS_STREAK_KEEP 64

struct analysis {
	struct window pool[SHIFT_COLORS];
	/*
	 * Green's errors since its newest success, by the samples' kernel
	 * time, not by arrival. Errors have their own ring, which wakes the
	 * agent at once; successes wait in the ordinary ring for a batch, so
	 * the successes between two errors usually arrive after both. A late
	 * success removes the errors older than it from the streak, which
	 * therefore keeps their timestamps: the newest ANALYSIS_STREAK_KEEP,
	 * oldest first; streak_older counts the streak's errors before those
	 * (only a limit above ANALYSIS_STREAK_KEEP gets there), and a newer
	 * success removes them all.
	 */
	__u32 consecutive_errors; /* streak_n + streak_older */
	__u32 streak_n;
	__u32 streak_older;
	__u64 last_ok_ts; /* green's newest success */
	__u64 streak_ts[ANALYSIS_STREAK_KEEP];
	__u64 ignored; /* samples not of the unit kind, or of an unknown color/kind */
	__u64 lost; /* samples a full ring lost, counted in the windows (analysis_lost()) */
	struct analysis_qcache qc[SHIFT_COLORS];
};

/*
 * Allocates both windows (window_ns from l). A change of window_ns needs a
 * new analysis (free + init); the other limits may change between feeds.
 * 0, -EINVAL or -ENOMEM.
 */
int analysis_init(struct analysis *a, const struct trigger_limits *l);
void analysis_free(struct analysis *a);
/* Forget both windows and the consecutive count (e.g. when a latch is cleared). */
void analysis_reset(struct analysis *a);

/*
 * Feed one sample and evaluate the service's triggers. Returns the reason
 * that fired, or TRIGGER_NONE; when one fires and detail/len allow, writes a
 * one-line explanation, e.g. "green error rate 12.5% (5/40) > 5% over 10s".
 * Checked in this order, first match wins: consecutive errors, error rate,
 * error-rate increase, p99, p95, latency ratio. No allocation, no I/O.
 */
enum trigger_reason analysis_feed(struct analysis *a, const struct trigger_limits *l,
				  const struct shift_sample *s, char *detail, size_t len);
/*
 * n samples of kind a full ring lost (struct shift_lost): counted in color's
 * window at ts_ns as requests (errors when kind is SHIFT_SAMPLE_ERROR) with
 * no latency, if the kind is one of the service's requests. A lost green
 * success also ends green's run of consecutive errors. Fires nothing itself:
 * the next sample is judged with them.
 */
void analysis_lost(struct analysis *a, const struct trigger_limits *l, enum shift_color color,
		   __u8 kind, __u32 n, __u64 ts_ns);

/*
 * The consecutive-errors trigger alone, as analysis_feed() checks it after
 * the error s: TRIGGER_CONSECUTIVE_ERRORS (detail written) or TRIGGER_NONE.
 * For a second look once the successes still queued behind that error have
 * been fed (analysis/samples.c).
 */
enum trigger_reason analysis_streak_check(const struct analysis *a, const struct trigger_limits *l,
					  const struct shift_sample *s, char *detail, size_t len);

/* Per-pool figures for `shiftctl status` and the metrics. */
struct pool_summary {
	__u64 window_ns;
	__u64 requests;
	__u64 errors;
	double error_rate; /* errors / requests, 0 with no requests */
	__u64 latency_count; /* samples behind the percentiles */
	__u64 p50_ns, p95_ns, p99_ns; /* 0 with no latency data */
	__u64 late; /* samples dropped for arriving after the window had moved on */
};

/*
 * Summary of one pool. now_ns (CLOCK_MONOTONIC) first expires what has aged
 * out since the last sample, so an idle service reads as empty, not frozen;
 * 0 reads the window as of its last sample.
 */
void analysis_pool_summary(struct analysis *a, enum shift_color color, __u64 now_ns,
			   struct pool_summary *out);

#endif /* SHIFT_TRIGGER_H */
