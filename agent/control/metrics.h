/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The node exporter textfile: shift.prom in textfile_dir, rewritten atomically.
 *
 * Every metrics_interval the loop's thread copies what the agent owns (names,
 * health, its counters: no system call) and hands the copy to a writer thread,
 * which reads the per-CPU counters from the maps, renders the file, writes it
 * to a temp file in the same directory under a name the collector ignores,
 * fsyncs it and renames it over shift.prom: a scrape reads the old file or the
 * new one, never a part of either. Map reads, a slow or a full disk stall the
 * writer only, never the sample loop (a rollback's budget is microseconds).
 */
#ifndef SHIFT_METRICS_H
#define SHIFT_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

#include "agent.h"
#include "config/config.h"

#define METRICS_FILE "shift.prom"
/* Not "*.prom": the textfile collector only reads files ending in .prom. */
#define METRICS_TMP_FILE ".shift.prom.tmp"
/* A failing write is logged at most this often. */
#define METRICS_WARN_EVERY_NS (60ull * 1000000000ull)

struct snap;

/* Writer state, owned by shiftd's loop; zero it, then metrics_start(). */
struct metrics {
	__u64 next_ns; /* CLOCK_MONOTONIC of the next render; 0 = now */
	bool started; /* the writer thread runs; else writes are synchronous */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock: the newest snapshot not yet written (a newer one replaces it). */
	struct snap *pending;
	char pending_dir[CONF_PATH_LEN];
	bool stop;
	atomic_bool cancel; /* metrics_stop(): a render in progress ends half-way */
	/* The writer's own (the loop's when synchronous): failure reporting. */
	bool failing;
	__u64 failures; /* since the last success */
	__u64 last_warn_ns;
	__u64 render_warn_ns; /* the loop's: a failed render (out of memory) */
};

/* Start the writer thread. On failure (logged) writes happen on the caller's thread. */
int metrics_start(struct metrics *m);
/* Stop and join the writer; a file not yet written is dropped. */
void metrics_stop(struct metrics *m);
/* Render and queue shift.prom when metrics_interval has passed since the last one. */
void metrics_tick(struct metrics *m, struct agent *a);
/* Render every series into f (exposed for tests). 0 or -errno. */
int metrics_render(struct agent *a, FILE *f);
/* The same series into memory (*buf malloc'ed, *len bytes): GET /metrics. 0 or -errno. */
int metrics_render_mem(struct agent *a, char **buf, size_t *len);
/*
 * GET /metrics off the loop (agent/http/): a render in two halves, as the
 * writer does it. metrics_snap_take() on the loop's thread copies what the agent
 * owns, no system call (NULL: out of memory); metrics_snap_render() on any
 * thread reads the maps and renders the same text as metrics_render_mem(),
 * ending early with -ECANCELED once *cancel (NULL: never) is set; 0 or -errno.
 * The snapshot holds map fds, not owned: free it before the maps close.
 */
struct snap *metrics_snap_take(const struct agent *a);
int metrics_snap_render(struct snap *sn, const atomic_bool *cancel, char **buf, size_t *len);
void metrics_snap_free(struct snap *sn);
/* Render and write textfile_dir/shift.prom now, on this thread. 0 or -errno (reason in err). */
int metrics_write(struct agent *a, char *err, size_t errlen);
/* Write buf as dir/shift.prom: temp file in dir, fsync, rename; no temp file left on failure. */
int metrics_write_file(const char *dir, const char *buf, size_t len, char *err, size_t errlen);

#endif
