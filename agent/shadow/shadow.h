/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shadow mode in shiftd: consume the datapath's copies of sampled blue
 * requests (bpf/shadow.h), replay each to the green backend the flow would
 * have had (the green ring's slot for the flow hash), read green's status
 * line, pair it with blue's answer from the ordinary samples, and count
 * matches and mismatches by kind over the service's rollback_window.
 *
 * It runs in shiftd's one event loop, without a thread: every socket is
 * non-blocking, a green that never answers costs a socket and a slot until
 * its deadline and no event, and each loop pass handles at most
 * SHADOW_BUDGET copies and SHADOW_BUDGET socket events. Samples are drained
 * before shadow work in every pass, so the rollback path waits at most one
 * bounded batch of cheap syscalls (bench-rollback measures it).
 */
#ifndef SHIFT_SHADOW_SHADOW_H
#define SHIFT_SHADOW_SHADOW_H

#include <stdbool.h>
#include <linux/types.h>
#include <shift/shadow.h>

#include "agent.h"
#include "shadow/pair.h"

#define SHADOW_MAX_JOBS 1024 /* copies held: queued + in flight + waiting for blue */
#define SHADOW_MAX_INFLIGHT 256 /* replay sockets open at once */
/* Copies and socket events per loop pass: a copy costs a few syscalls (socket,
 * connect, epoll_ctl: ~10 us), so an error sample waits at most ~160 us. */
#define SHADOW_BUDGET 16
/* The 100 ms tick's share: expiries, starts and backstop copies, each. */
#define SHADOW_TICK_BUDGET 8
#define SHADOW_DEADLINE_NS (2ull * 1000 * 1000 * 1000) /* connect + answer */
/* A copy waiting for a replay slot longer than this is shed (counted): its
 * answer would say more about the queue than about green. */
#define SHADOW_QUEUE_WAIT_NS (10ull * 1000 * 1000 * 1000)
/* Blue's answer comes through the sample ring, batched: wait this long for it. */
#define SHADOW_BLUE_WAIT_NS (5ull * 1000 * 1000 * 1000)

/* One service's shadow figures, as status and metrics show them. */
struct shadow_report {
	bool enabled;
	__u32 sample_bp;
	double max_mismatch;
	__u64 requests; /* copies received from the datapath */
	__u64 compared; /* pairs with both answers */
	__u64 kinds[SHADOW_KINDS]; /* [SHADOW_MATCH] = matches */
	__u64 mismatches;
	__u64 unpaired; /* blue's answer never seen (no response, or a lost sample) */
	__u64 shed; /* no room, or waited too long for a replay slot */
	__u64 pending; /* copies not finished yet */
	__u64 skipped[SHIFT_SHADOW_STAT_MAX]; /* datapath counters; [SPLIT] also counts
						 bodies shiftd found incomplete */
	__u64 window_ns, window_compared, window_mismatches;
	double mismatch_rate;
	__u64 lat_count[SHIFT_COLORS], lat_sum_ns[SHIFT_COLORS], lat_max_ns[SHIFT_COLORS];
};

/* (Re)read every service's shadow settings and write the datapath's. */
int shadow_apply(struct agent *a);
/* Open the copy ring and the replay sockets' epoll set; -errno. */
int shadow_open(struct agent *a);
/* Fds for the agent's loop: the copy ring, and the sockets' epoll set. */
int shadow_ring_fd(const struct agent *a);
int shadow_sock_fd(const struct agent *a);
/* Loop handlers: bounded work each. */
void shadow_ring_ready(struct agent *a);
void shadow_sock_ready(struct agent *a);
/* Deadlines, queued replays, blue answers overdue. */
void shadow_tick(struct agent *a);
/* Every return-path sample, after the triggers: blue's answers pair here. */
void shadow_on_sample(struct agent *a, const void *sample);
void shadow_close(struct agent *a);

/* Figures for status/metrics, without system calls (the loop's thread);
 * -ENOENT when the service has no shadow state. */
int shadow_report(struct agent *a, __u32 service_id, struct shadow_report *r);
/* Add the datapath's counters (copied, skipped by reason, ring full) to r. */
void shadow_report_maps(const struct shift_maps *m, __u32 service_id, struct shadow_report *r);
/*
 * The gate of set-weight and ramp from 0: 0 when green may be raised, or
 * -EPERM with the reason in msg (the mismatch rate over the window exceeds
 * max_shadow_mismatch).
 */
int shadow_gate(struct agent *a, __u32 service_id, char *msg, size_t len);

#endif
