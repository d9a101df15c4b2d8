// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/libbpf.h>

#include <shift/sample.h>
#include "config/addr.h"
#include "ops/log.h"
#include "analysis/health.h"
#include "analysis/rollback.h"
#include "analysis/samples.h"

/* Ordinary samples read ahead of an error, at most: past them, it decides. */
#define STREAK_READ_AHEAD 4096
/* Without the mapping, the lost counts are read by syscall this often at most. */
#define LOST_READ_NS (10 * 1000000ull)

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

/*
 * The lost counts mapped read-only: a look on every pass costs a load, not a
 * syscall. Without it (a kernel that refuses), they are read by syscall.
 */
static void lost_map(struct agent *a)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (sizeof(struct shift_lost) + (size_t)page - 1) & ~((size_t)page - 1);
	void *p;

	p = mmap(NULL, len, PROT_READ, MAP_SHARED, a->maps.fd[SHIFT_MAP_LOST], 0);
	if (p == MAP_FAILED) {
		log_warn("cannot map shift_lost (%s): lost samples are counted every %llu ms",
			 strerror(errno), LOST_READ_NS / 1000000);
		return;
	}
	a->lost_map = p;
	a->lost_map_len = len;
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
	lost_map(a);
	return rb;
}

void samples_close(struct agent *a, struct ring_buffer *rb)
{
	if (a) {
		free(a->lost_seen);
		free(a->lost_cur);
		a->lost_seen = a->lost_cur = NULL;
		if (a->lost_map)
			munmap((void *)a->lost_map, a->lost_map_len);
		a->lost_map = NULL;
		ring_buffer__free(a->streak_rb);
		a->streak_rb = NULL;
		if (a->rb == rb)
			a->rb = NULL;
	}
	ring_buffer__free(rb);
}

/* *out = the datapath's lost counts; false when unchanged since *seen or unreadable. */
static bool lost_read(struct agent *a, struct shift_lost *out)
{
	__u64 now;

	if (a->lost_map) {
		/* The datapath adds to a count, then to total: a total read first
		 * covers every count read after it. */
		__u64 total = a->lost_map->total;

		if (a->lost_seen && total == a->lost_seen->total)
			return false;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		memcpy(out, (const void *)a->lost_map, sizeof(*out));
		out->total = total;
		return true;
	}
	now = now_mono_ns();
	if (a->lost_seen && now - a->lost_checked_ns < LOST_READ_NS)
		return false;
	a->lost_checked_ns = now;
	return !dp_lost(&a->maps, out) && !(a->lost_seen && out->total == a->lost_seen->total);
}

/*
 * Samples a full ring lost go into their service's window as what they were
 * (struct shift_lost: the datapath counts them by service, color and kind):
 * requests, or errors, without a latency. An error rate then stays exact
 * while a ring overflows (the arrived samples alone hold every error, which
 * have a ring of their own, but only some of the successes), and the
 * latencies come from the samples that did arrive. Restarting every window
 * instead (all the totals allowed) kept the rate and latency triggers blind
 * for as long as the overflow lasted, under the load a bad green is most
 * likely to meet. Counted before each pass's samples are judged.
 */
static void check_lost(struct agent *a)
{
	struct shift_lost *cur = a->lost_cur, *t;
	__u64 now;
	__u32 i, c, k;

	if (!cur) {
		cur = a->lost_cur = malloc(sizeof(*cur));
		if (!cur)
			return; /* tried again at the next pass: the counts only grow */
	}
	if (!lost_read(a, cur))
		return;
	if (!a->lost_seen) {
		/* What was lost before this shiftd read the rings is not its to count. */
		a->lost_seen = cur;
		a->lost_cur = NULL;
		return;
	}
	now = now_mono_ns();
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s)
			continue;
		for (c = 0; c < SHIFT_COLORS; c++) {
			for (k = 0; k < SHIFT_LOST_KINDS; k++) {
				__u64 d = cur->n[i][c][k] - a->lost_seen->n[i][c][k];

				/* Slot kind & 3: TCP's 4 is slot 0. */
				if (d)
					analysis_lost(&s->an, &s->limits, c,
						      k ? k : SHIFT_SAMPLE_TCP,
						      d > UINT32_MAX ? UINT32_MAX : (__u32)d, now);
			}
		}
	}
	t = a->lost_seen;
	a->lost_seen = cur;
	a->lost_cur = t;
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
