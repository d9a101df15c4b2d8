/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* shiftd's runtime state: one struct agent, owned by main, passed everywhere. */
#ifndef SHIFT_AGENT_H
#define SHIFT_AGENT_H

#include <stdbool.h>
#include <linux/types.h>
#include <shift/maps.h>

#include "datapath/attach.h"
#include "config/config.h"
#include "datapath/dataplane.h"
#include "analysis/trigger.h"
#include "analysis/drill.h"
#include "ops/clock.h"

#define AGENT_MAX_IFACES (CONF_MAX_INTERFACES + 1)
#define AGENT_REASON_LEN 128
#define RAMP_MAX_STEPS 32

struct ring_buffer;
struct persist_writer;
struct persist_job;

struct backend_rt {
	struct shift_addr_key addr;
	__u32 id; /* slot in the backends map, stable for the backend's life */
	bool healthy; /* in the pool's ring */
	__u32 hc_ok, hc_fail; /* consecutive probe results */
	int hc_fd; /* probe socket in flight, -1 none */
	__u64 hc_started_ns;
	__u64 hc_deadline_ns; /* the probe in flight's timeout, moved by time the agent lost */
	__u64 hc_next_ns; /* when the next probe starts */
	__u32 hc_sent; /* bytes of the HTTP request written */
	__u32 hc_len; /* bytes of the status line read */
	char hc_buf[16];
	struct shift_backend entry; /* as last written to the map */
	/* datapath/nexthop.c: the neighbour entry the next hop resolves through
	 * (the gateway, or the backend itself on-link) on egress nh_ifindex, and
	 * that link's MAC, as last looked up; valid in nh_state NH_KEYED. */
	__u32 nh_addr[4];
	int nh_ifindex;
	__u8 nh_family;
	__u8 nh_state; /* enum nh_state */
	__u8 nh_smac[6];
};

struct ramp_rt {
	bool active;
	__u32 steps[RAMP_MAX_STEPS];
	__u32 n, index;
	__u64 hold_ns;
	/* The current step's hold ends, CLOCK_MONOTONIC: a wall clock stepped
	 * by NTP or by hand would stall a ramp for as long (backwards) or cut
	 * holds short (forwards). The state file has the wall time the step
	 * began (analysis/ramp.h converts). */
	__u64 step_due_mono_ns;
};

/* What a service's weight word says, as shiftd keeps it. */
struct weight_state {
	__u32 weight;
	bool latched;
	bool drill; /* the latch is a drill's */
};

struct service_rt {
	__u32 id;
	const struct conf_service *conf; /* into agent.conf; re-pointed on reload */
	struct backend_rt pool[SHIFT_COLORS][SHIFT_MAX_POOL_BACKENDS];
	__u32 n[SHIFT_COLORS];
	__u32 weight; /* basis points; the map holds weight | latch */
	bool latched;
	char reason[AGENT_REASON_LEN]; /* last rollback */
	__u64 rollback_unix_ns;
	__u64 reaction_ns; /* trigger sample's kernel time -> map write done */
	__u64 rollbacks[TRIGGER__COUNT];
	struct trigger_limits limits;
	struct analysis an;
	struct ramp_rt ramp;
	bool latch_drill; /* the latch is a drill's: SHIFT_WEIGHT_DRILL in the map's word */
	/*
	 * shiftctl writes the weight word, then tells shiftd (sync). A tick that
	 * finds the word changed in between reads it back (agent_adopt_outside());
	 * what shiftd had before is kept here for that sync to judge the change by.
	 */
	bool outside_seen;
	struct weight_state outside_was;
	__u64 outside_mono_ns;
	__u64 rollback_mono_ns; /* the last rollback's weight write done */
	__u64 last_evicted; /* green connections the last rollback evicted */
	/* analysis/samples.c: green errors read at start that were older than it
	 * (made while no shiftd read the rings), for the one line it logs. */
	__u64 backlog_errors;
	struct drill_rt drill;
	/* Fleet (agent/fleet/): who rolled back (node name or "operator") and the
	 * origin's write -> this node's write, 0 for a rollback of our own. */
	char rollback_origin[64];
	__s64 fleet_lag_us;
	/* Set by every local rollback (analysis/rollback.c): fleet/ publishes the
	 * latch from the loop, after the map write, never before it. */
	bool fleet_publish;
	/* Decide again against the fleet's value: a drill's restore put back the
	 * weight it saved, while the fleet may have moved on (fleet/, fleet_kick). */
	bool fleet_recheck;
	/* The green_weight of the config last applied to it (control/reload.c). */
	__u32 conf_weight;
};

/*
 * analysis/evict.c: one service id's entries leaving the connection table, a
 * chunk per loop turn. A rollback's takes green's; a removed service's takes
 * every color, and holds the id until it is done.
 */
struct evict_job {
	bool active;
	bool removed; /* the service is gone: every color; its name kept here */
	char name[CONF_NAME_LEN];
	struct dp_evict walk;
	__u64 started_mono_ns;
	__u32 turns; /* loop turns that ran a chunk of it */
};

struct iface_rt {
	char name[CONF_IFNAMSIZ];
	int ifindex;
	enum xdp_role role;
	bool attached;
	/* By this run, where no program of shift's was (no pin): a start that
	 * fails detaches it again, and keeps what it adopted. */
	bool attached_new;
	enum dp_hook hook; /* attach = auto decides per interface */
	const char *mode; /* XDP native/generic, TC tcx/clsact */
	__u32 prog_id;
	/* Its program was removed from outside (shiftd --detach --force, or by
	 * hand): link events do not attach it again while the interface is the
	 * same (ifindex); a restart, or a reload that changes the interfaces, does. */
	bool removed;
};

struct nl_ctx;
struct nh_table;
struct http_api;
struct fleet;

/* datapath/nexthop.c's figures, for the metrics. */
struct nexthop_stats {
	__u64 queries; /* netlink queries for backend next hops (route, link, neighbour, probe) */
	__u64 lookups; /* backends looked up (a route query each) */
	__u64 from_events; /* backend entries rewritten from a neighbour event, no query */
	__u32 pending; /* lookups queued */
};

/* Fleet figures for status and metrics, kept by agent/fleet/. */
#define FLEET_LAG_BUCKETS 16
struct fleet_stats {
	bool enabled, connected;
	bool name_taken; /* alive/NODE is held by another host (fleet/node_id.h) */
	__s64 revision; /* the last svc/ revision applied */
	__u64 lag_hist[FLEET_LAG_BUCKETS]; /* apply lag, le 1ms * 2^i; last = +Inf */
	double lag_sum_s;
	__u64 lag_count;
	__u64 applied, bad_values, publishes;
};
struct shadow;

struct agent {
	struct shift_conf *conf;
	char conf_path[4096];
	struct shift *skel;
	struct shift_maps maps;
	bool adopted;
	__u32 hooks_loaded; /* SHIFT_LOAD_*: the entry programs in skel */
	__u32 roles_loaded; /* SHIFT_LOAD_ROLE_*: of those, the interface roles' */
	struct iface_rt ifaces[AGENT_MAX_IFACES];
	__u32 n_ifaces;
	struct service_rt *svc[SHIFT_MAX_SERVICES]; /* by service id */
	__u8 be_used[SHIFT_MAX_BACKENDS];
	__u32 be_cursor; /* control/reload.c: where the next free backend slot is looked for */
	__u32 svc_cursor; /* control/reload.c: where the next free service id is looked for */
	struct nl_ctx *nl;
	/* The pools changed (control/reload.c): datapath/nexthop.c indexes them
	 * again before it next looks at a backend. */
	bool nexthops_dirty;
	struct nh_table *nh; /* datapath/nexthop.c; NULL without netlink */
	struct nexthop_stats nh_stats;
	char state_path[4096];
	__u64 started_unix_ns;
	__u64 reloads, reload_failures;
	__u64 samples, samples_ignored;
	/*
	 * analysis/samples.c: CLOCK_MONOTONIC (bpf_ktime_get_ns()'s clock) when
	 * this shiftd began to read the rings. A sample older than that was made
	 * while no shiftd read them (a restart, an upgrade): it feeds the windows
	 * but fires no trigger, and its age is no reaction time. 0: none is.
	 */
	__u64 start_mono_ns;
	int drain_budget; /* analysis/samples.c: ordinary samples left in this pass */
	/* analysis/samples.c: the datapath's lost samples (struct shift_lost),
	 * mapped (NULL: read by syscall), and as of the last look (NULL until
	 * the first, which takes what was lost before as the baseline). */
	const volatile struct shift_lost *lost_map;
	size_t lost_map_len;
	__u64 lost_checked_ns; /* without the mapping: the last read */
	struct shift_lost *lost_seen, *lost_cur;
	struct ring_buffer *rb; /* analysis/samples.c: both rings, as samples_open() made them */
	/* analysis/samples.c: the ordinary ring alone, read before a streak of
	 * errors fires; the first sample as new as that error, kept meanwhile. */
	struct ring_buffer *streak_rb;
	__u64 streak_until_ts;
	int streak_budget;
	bool streak_held_ok;
	struct shift_sample streak_held;
	struct evict_job evict[SHIFT_MAX_SERVICES]; /* by service id */
	__u32 evict_active; /* jobs in evict[] that are active */
	__u32 evict_next; /* where the next chunk's job is looked for (round robin) */
	bool persist_dirty; /* state to save on the next tick */
	struct persist_writer *persist_w; /* ops/persist_writer.c, NULL: saves in place */
	__u64 persist_gen, persist_seen; /* the newest save handed over; the newest done */
	struct persist_job *persist_jobs, *persist_jobs_tail; /* persist_spawn_after() */
	bool persist_failing; /* the last save failed: retried, logged once */
	bool weight_cas_warned; /* apply_weight_over() fell back to a plain write */
	__u64 persist_retry_ns; /* monotonic: not before this */
	int health_epfd; /* analysis/health.c: probe sockets, so probes advance as they are ready */
	__u64 health_due_ns; /* analysis/health.c: earliest probe deadline (monotonic), 0 = now */
	__u64 health_lost_ns; /* time given back to probes for the agent's own stalls */
	__u64 hc_skipped; /* probes not started for want of shiftd's own resources */
	__u64 reaction_hist[32]; /* log2 buckets of rollback reaction time in ns */
	__u64 reaction_sum_ns, reaction_count;
	struct http_api *http; /* agent/http/: the HTTP API, owned by main's loop */
	char node[64]; /* [fleet] node, else the short hostname: a local rollback's origin */
	bool fleet_pending; /* some service has fleet_publish or fleet_recheck set */
	/* Set by shiftd.c when a fleet is configured: called by every local rollback
	 * right after its map write, before eviction and fsyncs, so the fleet hears
	 * of it at once (agent/fleet/ starts the etcd write without waiting). */
	void (*on_rollback)(struct agent *a, struct service_rt *s);
	struct fleet *fleet_ctx; /* agent/fleet/fleet.c, opaque */
	struct fleet_stats fleet;
	struct shadow *shadow; /* shadow/shadow.c: replays to green, NULL until set up */
	/* Called with every sample after the triggers had it (shadow pairs blue's
	 * answers there): analysis/ must not call up into shadow/. */
	void (*sample_hook)(struct agent *a, const void *sample);
};

/* Service runtime by name, or NULL. */
struct service_rt *agent_service(struct agent *a, const char *name);
/* How many services, and backends in their pools, the agent runs: what a
 * snapshot of them (metrics, status) allocates. */
void agent_count(const struct agent *a, __u32 *n_svc, __u32 *n_be);

/* control/reload.c: make the maps match a validated config (initial load or reload). */
int apply_config(struct agent *a, struct shift_conf *newc, bool initial);
/* Checks a config needs the running host for; 0, or -ERANGE with err set. */
int reload_precheck(const struct shift_conf *c, char *err, size_t errlen);
/* datapath/apply.c: write a service's pools from its healthy backends. */
int apply_pools(struct agent *a, struct service_rt *s);
/* Write the weight word of a service from s->weight and s->latched. */
int apply_weight(struct agent *a, struct service_rt *s);
/* What s says of its word now (to hand to apply_weight_over() after a change). */
struct weight_state agent_weight_state(const struct service_rt *s);
/*
 * apply_weight() for a change shiftd decided from its own state (was: before
 * the change): the word is written only while the map still says was
 * (dp_weight_cas()). When another writer (shiftctl) wrote it since, nothing
 * is written, s goes back to was and adopts the map's word as a tick does
 * (agent_adopt_outside(), its sync on the way), and the result is -EAGAIN:
 * a ramp step, a fleet step or a drill's restore never overwrites an
 * operator's rollback. A kernel that cannot compare-and-swap gets the
 * plain write (logged once).
 */
int apply_weight_over(struct agent *a, struct service_rt *s, const struct weight_state *was);
/* Re-read weights and latches from the maps (shiftctl wrote them directly). */
void agent_sync_from_maps(struct agent *a, struct service_rt *s);
/* A tick found the word changed by another writer: read it back, keeping what
 * shiftd had for the sync that follows (outside_seen). */
void agent_adopt_outside(struct agent *a, struct service_rt *s);
/* A tick's adoption of an outside write still expects that write's sync. */
bool agent_outside_pending(const struct service_rt *s);
/* The operator's answer when a start (a ramp's, a drill's) met that -EAGAIN. */
void agent_outside_refusal(const struct service_rt *s, char *err, size_t errlen);
/*
 * shiftctl's write to its sync: the write, an eviction of green's entries, an
 * etcd write, then the sync. What a tick kept (outside_seen) is the state
 * before that write for this long; older, no sync of that write is coming.
 */
#define AGENT_OUTSIDE_SYNC_NS (60ull * 1000000000ull)
/* For a sync: shiftd's word before shiftctl's write (what a tick that saw the
 * write first kept, else the runtime's), and forget what was kept. */
void agent_before_sync(struct service_rt *s, struct weight_state *before);
/* Undo shiftctl's write: shiftd's state back to before, and into the map. */
int agent_restore_word(struct agent *a, struct service_rt *s, const struct weight_state *before);

/*
 * ops/persist.c: state_dir/state <-> runtime. persist_restore() sets weights
 * and latches in the runtime only (unless weights_from_maps); the caller writes
 * them to the maps with apply_weight().
 *
 * Once persist_start() started the writer thread (ops/persist_writer.h), a save
 * is written there. persist_save() returns when the state is on disk (an
 * operator's command answers only then); persist_save_async() returns at once,
 * for the loop's own changes (a rollback, a ramp step): the next service's
 * error must not wait on two fsyncs. persist_collect() takes the writer's
 * outcomes (on persist_fd() readiness, and each tick): a failure is retried
 * every second, as before. Without the thread every save is written in place.
 */
int persist_save(struct agent *a);
void persist_save_async(struct agent *a);
int persist_restore(struct agent *a, bool weights_from_maps);
int persist_start(struct agent *a);
int persist_fd(const struct agent *a);
void persist_collect(struct agent *a);
/* Write what waits and stop the thread; run the commands still waiting. */
void persist_stop(struct agent *a);
/*
 * posix_spawn cmd (argv: cmd alone) with envp (at most PERSIST_JOB_ENV
 * strings) once every save asked for so far is done: a notify hook announces
 * what the state file holds. At once when nothing is on its way to disk.
 */
#define PERSIST_JOB_ENV 8
void persist_spawn_after(struct agent *a, const char *cmd, char *const envp[]);

#endif
