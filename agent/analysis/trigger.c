// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Rollback triggers over per-color sliding windows; see trigger.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "analysis/trigger.h"

static const char *const reason_names[TRIGGER__COUNT] = {
	[TRIGGER_NONE] = "none",
	[TRIGGER_ERROR_RATE] = "error_rate",
	[TRIGGER_ERROR_RATE_INCREASE] = "error_rate_increase",
	[TRIGGER_LATENCY_P99] = "latency_p99",
	[TRIGGER_LATENCY_P95] = "latency_p95",
	[TRIGGER_LATENCY_RATIO] = "latency_ratio",
	[TRIGGER_CONSECUTIVE_ERRORS] = "consecutive_errors",
	[TRIGGER_HEALTH] = "health",
	[TRIGGER_MANUAL] = "manual",
	[TRIGGER_DRILL] = "drill",
	[TRIGGER_ALERTMANAGER] = "alertmanager",
};

static const char *const err_names[SHIFT_ERR_MAX] = {
	[SHIFT_ERR_NONE] = "error",
	[SHIFT_ERR_RST] = "rst",
	[SHIFT_ERR_HTTP5XX] = "http_5xx",
	[SHIFT_ERR_SYN_RETRANS] = "syn_retrans",
	[SHIFT_ERR_ICMP_UNREACH] = "icmp_unreach",
	[SHIFT_ERR_TLS_ALERT] = "tls_alert",
	[SHIFT_ERR_TLS_HANDSHAKE] = "tls_handshake",
	[SHIFT_ERR_EARLY_CLOSE] = "early_close",
};

const char *trigger_reason_name(enum trigger_reason r)
{
	if ((unsigned int)r >= TRIGGER__COUNT)
		return "unknown";
	return reason_names[r];
}

void trigger_limits_disabled(struct trigger_limits *l, __u64 window_ns)
{
	memset(l, 0, sizeof(*l));
	l->window_ns = window_ns;
	l->max_error_rate = -1.0;
	l->max_error_rate_increase = -1.0;
}

int analysis_init(struct analysis *a, const struct trigger_limits *l)
{
	int c, err;

	memset(a, 0, sizeof(*a));
	for (c = 0; c < SHIFT_COLORS; c++) {
		err = window_init(&a->pool[c], l->window_ns, ANALYSIS_SLICES);
		if (err) {
			analysis_free(a);
			return err;
		}
	}
	return 0;
}

void analysis_free(struct analysis *a)
{
	int c;

	for (c = 0; c < SHIFT_COLORS; c++)
		window_free(&a->pool[c]);
}

void analysis_reset(struct analysis *a)
{
	int c;

	for (c = 0; c < SHIFT_COLORS; c++) {
		window_reset(&a->pool[c]);
		a->qc[c].valid = false;
	}
	a->consecutive_errors = 0;
	a->streak_n = 0;
	a->streak_older = 0;
	a->last_ok_ts = 0;
}

/* A green error at ts: part of the streak unless a success newer than it was seen. */
static void streak_error(struct analysis *a, __u64 ts)
{
	__u32 i;

	if (ts < a->last_ok_ts)
		return;
	if (a->streak_n == ANALYSIS_STREAK_KEEP) {
		a->streak_older++;
		if (ts <= a->streak_ts[0])
			goto out;
		memmove(a->streak_ts, a->streak_ts + 1, (ANALYSIS_STREAK_KEEP - 1) * sizeof(__u64));
		a->streak_n--;
	}
	/* In order but for errors from two CPUs a few ns apart. */
	for (i = a->streak_n; i > 0 && a->streak_ts[i - 1] > ts; i--)
		a->streak_ts[i] = a->streak_ts[i - 1];
	a->streak_ts[i] = ts;
	a->streak_n++;
out:
	a->consecutive_errors = a->streak_n + a->streak_older;
}

/* A green success at ts ends the streak of the errors before it. */
static void streak_success(struct analysis *a, __u64 ts)
{
	__u32 k = 0;

	if (ts <= a->last_ok_ts)
		return;
	a->last_ok_ts = ts;
	while (k < a->streak_n && a->streak_ts[k] < ts)
		k++;
	if (k) {
		memmove(a->streak_ts, a->streak_ts + k, (a->streak_n - k) * sizeof(__u64));
		a->streak_n -= k;
	}
	/* Older than every kept one, but some may be newer than ts: counting
	 * them would be a streak this success may have broken. */
	a->streak_older = 0;
	a->consecutive_errors = a->streak_n;
}

/* p95 and p99 of one pool, recomputed only when its histogram changed. */
static const struct analysis_qcache *pool_quantiles(struct analysis *a, int color)
{
	static const double qs[2] = { 0.95, 0.99 };
	struct analysis_qcache *qc = &a->qc[color];
	const struct window *w = &a->pool[color];
	__u64 out[2];

	if (!qc->valid || qc->lat_gen != w->lat_gen) {
		window_quantiles_ns(w, qs, out, 2);
		qc->p95_ns = out[0];
		qc->p99_ns = out[1];
		qc->lat_gen = w->lat_gen;
		qc->valid = true;
	}
	return qc;
}

/* "531ms", "10s", "1.5s", "800us": short durations for the detail line. */
static void fmt_dur(char *buf, size_t len, __u64 ns)
{
	if (ns >= 1000000000ull)
		snprintf(buf, len, "%.4gs", (double)ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(buf, len, "%.4gms", (double)ns / 1e6);
	else if (ns >= 1000ull)
		snprintf(buf, len, "%.4gus", (double)ns / 1e3);
	else
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
}

/* Only reached once a trigger fired: the detail line costs nothing otherwise. */
static enum trigger_reason fire(enum trigger_reason r, const struct analysis *a,
				const struct trigger_limits *l, const struct shift_sample *s,
				__u64 gv, __u64 bv, int pct, char *detail, size_t len)
{
	const struct window *g = &a->pool[SHIFT_GREEN], *b = &a->pool[SHIFT_BLUE];
	char win[24], v1[24], v2[24];
	const char *pn = pct == 95 ? "p95" : "p99";

	if (!detail || !len)
		return r;
	fmt_dur(win, sizeof(win), g->length_ns);
	switch (r) {
	case TRIGGER_CONSECUTIVE_ERRORS:
		snprintf(detail, len,
			 "%u consecutive green errors >= %u (last: %s from backend %u)",
			 a->consecutive_errors, l->max_consecutive_errors,
			 s->err < SHIFT_ERR_MAX ? err_names[s->err] : "error", s->backend_id);
		break;
	case TRIGGER_ERROR_RATE:
		snprintf(detail, len, "green error rate %.3g%% (%llu/%llu) > %.3g%% over %s",
			 window_error_rate(g) * 100.0, (unsigned long long)window_errors(g),
			 (unsigned long long)window_requests(g), l->max_error_rate * 100.0, win);
		break;
	case TRIGGER_ERROR_RATE_INCREASE:
		snprintf(
			detail, len,
			"green error rate %.3g%% (%llu/%llu) > blue %.3g%% (%llu/%llu) + %.3g%% over %s",
			window_error_rate(g) * 100.0, (unsigned long long)window_errors(g),
			(unsigned long long)window_requests(g), window_error_rate(b) * 100.0,
			(unsigned long long)window_errors(b),
			(unsigned long long)window_requests(b), l->max_error_rate_increase * 100.0,
			win);
		break;
	case TRIGGER_LATENCY_P99:
	case TRIGGER_LATENCY_P95:
		fmt_dur(v1, sizeof(v1), gv);
		fmt_dur(v2, sizeof(v2), bv);
		snprintf(detail, len, "green %s latency %s > %s over %s (n=%llu)", pn, v1, v2, win,
			 (unsigned long long)window_latency_count(g));
		break;
	case TRIGGER_LATENCY_RATIO:
		fmt_dur(v1, sizeof(v1), gv);
		fmt_dur(v2, sizeof(v2), bv);
		snprintf(detail, len, "green %s latency %s > %.3g x blue %s %s over %s", pn, v1,
			 l->max_latency_ratio, pn, v2, win);
		break;
	default:
		snprintf(detail, len, "%s", trigger_reason_name(r));
		break;
	}
	return r;
}

/*
 * A rate above a limit, strictly. Both are doubles: a limit of 0.7 % parses
 * to 0.006999...99 and 4/100 - 3/100 is 0.0100...02, so a rate exactly at
 * its limit compared above it. The slack is far above such rounding (1e-17)
 * and far below any excess worth a rollback.
 */
static bool rate_above(double rate, double limit)
{
	return rate - limit > 1e-12;
}

static enum trigger_reason evaluate(struct analysis *a, const struct trigger_limits *l,
				    const struct shift_sample *s, char *detail, size_t len)
{
	struct window *g = &a->pool[SHIFT_GREEN], *b = &a->pool[SHIFT_BLUE];
	__u64 min = l->min_requests ? l->min_requests : 1;
	__u64 n = window_requests(g);
	double rate;

	if (n < min)
		return TRIGGER_NONE;
	/* Relative triggers compare the same span of time: age blue out to now. */
	window_advance(b, s->ts_ns);

	rate = (double)window_errors(g) / (double)n;
	if (l->max_error_rate >= 0.0 && rate_above(rate, l->max_error_rate))
		return fire(TRIGGER_ERROR_RATE, a, l, s, 0, 0, 0, detail, len);
	if (l->max_error_rate_increase >= 0.0 && window_requests(b) >= min &&
	    rate_above(rate - window_error_rate(b), l->max_error_rate_increase))
		return fire(TRIGGER_ERROR_RATE_INCREASE, a, l, s, 0, 0, 0, detail, len);

	if (!l->max_latency_p99_ns && !l->max_latency_p95_ns && !(l->max_latency_ratio > 0.0))
		return TRIGGER_NONE;
	if (window_latency_count(g) < min)
		return TRIGGER_NONE;
	{
		const struct analysis_qcache *gq = pool_quantiles(a, SHIFT_GREEN);
		const struct analysis_qcache *bq;

		if (l->max_latency_p99_ns && gq->p99_ns > l->max_latency_p99_ns)
			return fire(TRIGGER_LATENCY_P99, a, l, s, gq->p99_ns, l->max_latency_p99_ns,
				    99, detail, len);
		if (l->max_latency_p95_ns && gq->p95_ns > l->max_latency_p95_ns)
			return fire(TRIGGER_LATENCY_P95, a, l, s, gq->p95_ns, l->max_latency_p95_ns,
				    95, detail, len);
		if (!(l->max_latency_ratio > 0.0) || window_latency_count(b) < min)
			return TRIGGER_NONE;
		bq = pool_quantiles(a, SHIFT_BLUE);
		if ((double)gq->p99_ns > l->max_latency_ratio * (double)bq->p99_ns)
			return fire(TRIGGER_LATENCY_RATIO, a, l, s, gq->p99_ns, bq->p99_ns, 99,
				    detail, len);
		if (l->max_latency_p95_ns &&
		    (double)gq->p95_ns > l->max_latency_ratio * (double)bq->p95_ns)
			return fire(TRIGGER_LATENCY_RATIO, a, l, s, gq->p95_ns, bq->p95_ns, 95,
				    detail, len);
	}
	return TRIGGER_NONE;
}

enum trigger_reason analysis_streak_check(const struct analysis *a, const struct trigger_limits *l,
					  const struct shift_sample *s, char *detail, size_t len)
{
	if (!l->max_consecutive_errors || a->consecutive_errors < l->max_consecutive_errors)
		return TRIGGER_NONE;
	return fire(TRIGGER_CONSECUTIVE_ERRORS, a, l, s, 0, 0, 0, detail, len);
}

/* Whether a sample of this kind is one of the service's requests (its analysis mode). */
static bool kind_counts(const struct trigger_limits *l, __u8 kind)
{
	switch (kind) {
	case SHIFT_SAMPLE_ERROR:
		return true;
	case SHIFT_SAMPLE_RESPONSE:
		return !l->analysis_connect || l->analysis_auto;
	case SHIFT_SAMPLE_CONNECT:
		/* For HTTP a handshake proves nothing: a green that accepts and then
		 * resets must not clear its consecutive-error count. */
		return l->analysis_connect && !l->analysis_auto;
	case SHIFT_SAMPLE_TCP:
		return l->analysis_auto;
	default:
		return false;
	}
}

enum trigger_reason analysis_feed(struct analysis *a, const struct trigger_limits *l,
				  const struct shift_sample *s, char *detail, size_t len)
{
	bool error = s->kind == SHIFT_SAMPLE_ERROR;
	__u64 lat = s->value_ns;

	if (s->color >= SHIFT_COLORS || !kind_counts(l, s->kind))
		goto ignore;
	/* A 5xx took as long as a response would have: its latency is real. */
	if (error && !((!l->analysis_connect || l->analysis_auto) &&
		       (s->err == SHIFT_ERR_HTTP5XX || s->err == SHIFT_ERR_TLS_ALERT ||
			s->err == SHIFT_ERR_EARLY_CLOSE)))
		lat = 0;

	if (!window_add(&a->pool[s->color], s->ts_ns, error, lat))
		return TRIGGER_NONE;
	if (s->color != SHIFT_GREEN)
		return TRIGGER_NONE;

	if (error)
		streak_error(a, s->ts_ns);
	else
		streak_success(a, s->ts_ns);
	if (error && analysis_streak_check(a, l, s, detail, len) != TRIGGER_NONE)
		return TRIGGER_CONSECUTIVE_ERRORS;

	return evaluate(a, l, s, detail, len);
ignore:
	a->ignored++;
	return TRIGGER_NONE;
}

void analysis_lost(struct analysis *a, const struct trigger_limits *l, enum shift_color color,
		   __u8 kind, __u32 n, __u64 ts_ns)
{
	bool error = kind == SHIFT_SAMPLE_ERROR;

	if ((unsigned int)color >= SHIFT_COLORS || !n)
		return;
	if (!kind_counts(l, kind)) {
		a->ignored += n;
		return;
	}
	a->lost += n;
	if (!window_add_count(&a->pool[color], ts_ns, error, n) || color != SHIFT_GREEN)
		return;
	/* A lost success broke green's run, when exactly is not known: no
	 * error before now counts towards a streak any more. Lost errors are
	 * not added to it (their times are not known either). */
	if (!error)
		streak_success(a, ts_ns);
}

void analysis_pool_summary(struct analysis *a, enum shift_color color, __u64 now_ns,
			   struct pool_summary *out)
{
	static const double qs[3] = { 0.50, 0.95, 0.99 };
	struct window *w;
	__u64 q[3];

	memset(out, 0, sizeof(*out));
	if ((unsigned int)color >= SHIFT_COLORS)
		return;
	w = &a->pool[color];
	if (now_ns)
		window_advance(w, now_ns);
	window_quantiles_ns(w, qs, q, 3);
	out->window_ns = w->length_ns;
	out->requests = window_requests(w);
	out->errors = window_errors(w);
	out->error_rate = window_error_rate(w);
	out->latency_count = window_latency_count(w);
	out->p50_ns = q[0];
	out->p95_ns = q[1];
	out->p99_ns = q[2];
	out->late = window_late(w);
}
