// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <bpf/libbpf.h>

#include <shift/sample.h>
#include "ops/log.h"
#include "analysis/health.h"
#include "analysis/rollback.h"
#include "analysis/samples.h"

int samples_handle(struct agent *a, const void *data, size_t len)
{
	const struct shift_sample *smp = data;
	enum trigger_reason r;
	struct service_rt *s;
	char detail[256];

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
	/* Latched already: the windows keep counting, nothing more to write.
	 * A drill's latch is no rollback: a real trigger during a drill fires. */
	if (r != TRIGGER_NONE && (!s->latched || s->latch_drill))
		rollback_fire(a, s, r, detail, smp->ts_ns);
	if (a->sample_hook)
		a->sample_hook(a, smp);
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
	return rb;
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
