// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <bpf/libbpf.h>

#include <shift/sample.h>
#include "config/addr.h"
#include "ops/log.h"
#include "analysis/health.h"
#include "analysis/rollback.h"
#include "analysis/samples.h"

/* Ordinary samples read ahead of an error, at most: past them, it decides. */
#define STREAK_READ_AHEAD 4096

static int on_sample_before(void *ctx, void *data, size_t len)
{
	struct agent *a = ctx;
	const struct shift_sample *smp = data;

	if (len >= sizeof(*smp) && smp->ts_ns >= a->streak_until_ts) {
		memcpy(&a->streak_held, smp, sizeof(*smp));
		a->streak_held_ok = true;
		return -EAGAIN;
	}
	samples_handle(a, data, len);
	return --a->streak_budget > 0 ? 0 : -EAGAIN;
}

/*
 * The error smp completed a streak of max_consecutive_errors, counted from
 * what has arrived. The ordinary ring wakes the agent every
 * SHIFT_WAKEUP_BATCH samples and the error ring at once, so green's
 * successes from between those errors may still be waiting: they are read
 * now, up to the first sample as new as the error, and the streak looked at
 * again. That sample is kept in a->streak_held for after the decision: it
 * came after the streak. TRIGGER_CONSECUTIVE_ERRORS (detail rewritten) or
 * TRIGGER_NONE.
 */
static enum trigger_reason streak_read_ahead(struct agent *a, struct service_rt *s,
					     const struct shift_sample *smp, char *detail,
					     size_t len)
{
	int rc;

	if (!a->streak_rb || a->streak_until_ts)
		return TRIGGER_CONSECUTIVE_ERRORS;
	a->streak_until_ts = smp->ts_ns ? smp->ts_ns : 1;
	a->streak_budget = STREAK_READ_AHEAD;
	rc = ring_buffer__consume(a->streak_rb);
	a->streak_until_ts = 0;
	if (rc < 0 && rc != -EAGAIN)
		log_warn("reading the sample ring ahead of an error: %s", strerror(-rc));
	return analysis_streak_check(&s->an, &s->limits, smp, detail, len);
}

/* The trigger names a backend by its slot; the operator (the log, status, the
 * notify hook) knows it by its address. Only once a trigger fired. */
static void detail_backend_addr(const struct service_rt *s, char *detail, size_t len)
{
	char *p = strstr(detail, " from backend "), ab[ADDR_ENDPOINT_LEN];
	unsigned int id;
	int end = 0, c;
	__u32 i;

	if (!p || sscanf(p, " from backend %u)%n", &id, &end) != 1 || !end)
		return;
	for (c = 0; c < SHIFT_COLORS; c++)
		for (i = 0; i < s->n[c]; i++)
			if (s->pool[c][i].id == id) {
				snprintf(p, len - (size_t)(p - detail), " from %s)",
					 addr_format_endpoint(&s->pool[c][i].addr, ab, sizeof(ab)));
				return;
			}
}

int samples_handle(struct agent *a, const void *data, size_t len)
{
	const struct shift_sample *smp = data;
	struct shift_sample held;
	enum trigger_reason r;
	struct service_rt *s;
	char detail[256];
	bool hold = false;

	if (len < sizeof(*smp) || smp->service_id >= SHIFT_MAX_SERVICES) {
		a->samples_ignored++;
		return 0;
	}
	a->samples++;
	s = a->svc[smp->service_id];
	if (!s) {
		a->samples_ignored++;
		return 0;
	}
	r = analysis_feed(&s->an, &s->limits, smp, detail, sizeof(detail));
	if (smp->kind == SHIFT_SAMPLE_ERROR)
		health_on_error(a, s, smp->backend_id);
	/*
	 * Made while no shiftd read the rings: what green did then, not now. Its
	 * windows and streak count it, so that green's next samples are judged
	 * with it, but it fires nothing itself: a green whose errors then were
	 * followed by successes is healthy, and one still failing is rolled back
	 * by its next error, with that error's reaction time, not this one's age.
	 */
	if (smp->ts_ns < a->start_mono_ns) {
		if (smp->kind == SHIFT_SAMPLE_ERROR && smp->color == SHIFT_GREEN)
			s->backlog_errors++;
		r = TRIGGER_NONE;
	}
	/* A streak of one is this error alone: no success can break it. */
	if (r == TRIGGER_CONSECUTIVE_ERRORS && s->limits.max_consecutive_errors > 1 &&
	    (!s->latched || s->latch_drill)) {
		r = streak_read_ahead(a, s, smp, detail, sizeof(detail));
		if (a->streak_held_ok) {
			held = a->streak_held;
			a->streak_held_ok = false;
			hold = true;
		}
	}
	/* Latched already: the windows keep counting, nothing more to write.
	 * A drill's latch is no rollback: a real trigger during a drill fires. */
	if (r != TRIGGER_NONE && (!s->latched || s->latch_drill)) {
		if (r == TRIGGER_CONSECUTIVE_ERRORS)
			detail_backend_addr(s, detail, sizeof(detail));
		rollback_fire(a, s, r, detail, smp->ts_ns);
	}
	if (a->sample_hook)
		a->sample_hook(a, smp);
	if (hold)
		samples_handle(a, &held, sizeof(held));
	return 0;
}

/* Samples handled per pass over the ordinary ring before the error ring is
 * looked at again: an error never waits behind a whole backlog. */
#define DRAIN_CHUNK 256

static int on_error(void *ctx, void *data, size_t len)
{
	return samples_handle(ctx, data, len);
}

static int on_sample(void *ctx, void *data, size_t len)
{
	struct agent *a = ctx;

	samples_handle(a, data, len);
	/* libbpf has already consumed this record: -EAGAIN only ends the pass. */
	return --a->drain_budget > 0 ? 0 : -EAGAIN;
}

struct ring_buffer *samples_open(struct agent *a)
{
	struct ring_buffer *rb;
	int err;

	/* From here on a sample is this shiftd's to act on; before, no one read it. */
	a->start_mono_ns = now_mono_ns();

	/* Errors first: ring_buffer__consume() drains the rings in this order. */
	rb = ring_buffer__new(a->maps.fd[SHIFT_MAP_ERRORS], on_error, a, NULL);
	if (!rb) {
		log_err("cannot open the error ring buffer: %s", strerror(errno));
		return NULL;
	}
	err = ring_buffer__add(rb, a->maps.fd[SHIFT_MAP_SAMPLES], on_sample, a);
	if (err) {
		log_err("cannot open the sample ring buffer: %s", strerror(-err));
		ring_buffer__free(rb);
		return NULL;
	}
	/* The same ring again, alone (libbpf 1.1 consumes a set's rings only
	 * together): the consumer position lives in the map, shared by both. */
	a->streak_rb = ring_buffer__new(a->maps.fd[SHIFT_MAP_SAMPLES], on_sample_before, a, NULL);
	if (!a->streak_rb) {
		log_err("cannot open the sample ring buffer: %s", strerror(errno));
		ring_buffer__free(rb);
		return NULL;
	}
	a->rb = rb;
	return rb;
}

void samples_close(struct agent *a, struct ring_buffer *rb)
{
	if (a) {
		ring_buffer__free(a->streak_rb);
		a->streak_rb = NULL;
		if (a->rb == rb)
			a->rb = NULL;
	}
	ring_buffer__free(rb);
}

/*
 * Samples lost to a full ring are ordinary ones, mostly successes (errors
 * have a ring of their own): a window that lost some shows more errors than
 * there were. Missing data is neither a pass nor a failure, so every
 * service's windows start afresh; errors still reach the triggers.
 */
static void check_lost(struct agent *a)
{
	__u64 dropped;
	__u32 i;

	if (dp_stat(&a->maps, SHIFT_STAT_RINGBUF_DROPPED, &dropped) ||
	    dropped == a->rb_dropped_seen)
		return;
	if (dropped > a->rb_dropped_seen && a->samples) {
		for (i = 0; i < SHIFT_MAX_SERVICES; i++)
			if (a->svc[i])
				analysis_reset(&a->svc[i]->an);
		if (a->windows_reset++ == 0 || a->windows_reset % 100 == 0)
			log_warn("%llu samples lost to a full ring buffer: rollback windows "
				 "restarted (%llu times so far)",
				 (unsigned long long)(dropped - a->rb_dropped_seen),
				 (unsigned long long)a->windows_reset);
	}
	a->rb_dropped_seen = dropped;
}

/* Passes of STREAK_READ_AHEAD over the ordinary ring at start: past what it holds. */
#define BACKLOG_PASSES (SHIFT_RINGBUF_BYTES / sizeof(struct shift_sample) / STREAK_READ_AHEAD + 1)

void samples_backlog(struct agent *a, struct ring_buffer *rb)
{
	struct shift_sample held;
	__u32 i;
	int rc = 0;

	/*
	 * The ordinary ring first, up to the first sample of this run. Read in
	 * the set's order, the errors ring would come first: its old errors and
	 * a fresh one would make a streak before the successes that broke it
	 * were read, and at a restart more of them wait than a read-ahead
	 * takes. Their successes in first, the errors fall into place by time.
	 */
	if (a->streak_rb) {
		a->streak_until_ts = a->start_mono_ns ? a->start_mono_ns : 1;
		for (i = 0; i < BACKLOG_PASSES; i++) {
			a->streak_budget = STREAK_READ_AHEAD;
			rc = ring_buffer__consume(a->streak_rb);
			if (rc != -EAGAIN || a->streak_held_ok)
				break;
		}
		a->streak_until_ts = 0;
		if (rc < 0 && rc != -EAGAIN)
			log_warn("reading the sample ring at start: %s", strerror(-rc));
		if (a->streak_held_ok) {
			held = a->streak_held;
			a->streak_held_ok = false;
			samples_handle(a, &held, sizeof(held));
		}
	}
	/* The errors ring whole (its old errors, then any fresh one), and the rest. */
	rc = samples_poll(a, rb);
	if (rc < 0)
		log_warn("reading the sample rings at start: %s", strerror(-rc));
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s || !s->backlog_errors)
			continue;
		log_warn("service %s: %llu green errors while shiftd was down: counted in the "
			 "windows, but only green's samples from now on can roll it back",
			 s->conf->name, (unsigned long long)s->backlog_errors);
	}
}

int samples_poll(struct agent *a, struct ring_buffer *rb)
{
	int rc, passes;

	/* Bounded: 4096 passes of DRAIN_CHUNK is past any ring's capacity. */
	for (passes = 0; passes < 4096; passes++) {
		check_lost(a);
		a->drain_budget = DRAIN_CHUNK;
		rc = ring_buffer__consume(rb);
		if (rc != -EAGAIN)
			return rc;
	}
	return 0;
}
