/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What `shiftctl status` shows, gathered into one model and rendered as a
 * table or as JSON. The maps are the source of truth for weights, latches and
 * counters; the agent adds its windows, health and ramps, and without the agent
 * the state file adds the last rollback.
 */
#ifndef SHIFT_STATUS_H
#define SHIFT_STATUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>
#include <shift/maps.h>

#include "config/addr.h"
#include "datapath/dataplane.h"
#include "analysis/trigger.h"
#include "analysis/drill.h"
#include "shadow/shadow.h"

struct json;
struct agent;
struct shift_state;

struct st_backend {
	__u32 id;
	__u8 color;
	char addr[ADDR_ENDPOINT_LEN];
	int healthy; /* 1, 0, -1 unknown (no agent) */
	bool nexthop; /* next hop cached in the map */
	struct shift_backend_stats s;
	__u64 lat_count;
	__u64 p50_ns, p99_ns; /* from the datapath's log2 histogram (upper bounds) */
};

struct st_service {
	char name[SHIFT_NAME_LEN];
	char vip[ADDR_ENDPOINT_LEN];
	__u8 proto;
	__u32 id;
	bool affinity_client; /* affinity = client */
	__u32 affinity_prefix; /* the prefix for the VIP's family */
	__u32 weight;
	bool latched;
	char reason[128];
	__u64 rollback_unix_ns, reaction_ns;
	char origin[64]; /* fleet: node name or "operator"; "" when unknown */
	__s64 fleet_lag_us; /* origin's write -> this node's write */
	__u64 rollbacks_total;
	bool ramp_active;
	__u32 ramp_steps[32], ramp_n, ramp_index;
	__u64 ramp_hold_ns, ramp_step_started_unix_ns;
	bool have_window;
	bool drill_active; /* a rollback drill holds the latch */
	__u64 drill_id, drill_ends_unix_ns;
	struct drill_report last_drill; /* result DRILL_NONE: none known */
	struct pool_summary pool[SHIFT_COLORS];
	bool have_shadow; /* shadow mode's figures (agent only) */
	struct shadow_report shadow;
	__u32 n_be;
	struct st_backend be[2 * SHIFT_MAX_POOL_BACKENDS];
};

/* Per interface: which entry points run there (attach = auto decides). */
#define ST_MAX_IFACES 16
struct st_iface {
	char name[16];
	const char *role;
	bool attached;
	const char *hook; /* "xdp" / "tc" */
	const char *mode; /* native / generic / tcx / clsact */
	__u32 prog_id;
};

struct st_model {
	bool agent; /* figures include the agent's runtime */
	char agent_info[512]; /* interfaces and their hooks, when known */
	__u32 n_ifaces;
	struct st_iface ifaces[ST_MAX_IFACES];
	bool fleet; /* a [fleet] is configured and the agent runs */
	char fleet_node[64];
	bool fleet_connected, fleet_name_taken;
	__s64 fleet_revision;
	__u64 stats[SHIFT_STAT_MAX];
	__u32 n;
	struct st_service *svc;
	/* Set (NULL: never): status_render_form() stops at the next service, -ECANCELED. */
	const atomic_bool *cancel;
};

/*
 * From the maps; only != NULL limits it to one service (-ENOENT if unknown).
 * With the agent (a != NULL) the backends are the ones it runs; without, the
 * whole backend array is read in one batch. On an error out holds nothing
 * (status_free() is not needed): shiftd answers a status for an unknown
 * service without keeping the 17 MB of the model it allocated.
 */
int status_collect(const struct shift_maps *m, const char *only, struct st_model *out,
		   struct agent *a);
void status_add_state(struct st_model *st, const struct shift_state *state);
/* The agent's figures (windows, health, ramps, last rollbacks) into st, on the loop. */
void status_add_agent(struct st_model *st, struct agent *a);
void status_free(struct st_model *st);
void status_render_json(const struct st_model *st, struct json *j);
void status_render_text(const struct st_model *st, FILE *f);

/*
 * status_add_agent() in halves, for a status off the loop (status_snap.h):
 * the loop copies what the agent owns, any thread applies the copy to a model
 * read from the maps. status_add_agent() is made of the same calls.
 */
struct st_agent_svc {
	char reason[128];
	__u64 rollback_unix_ns, reaction_ns;
	char origin[64];
	__s64 fleet_lag_us;
	__u64 rollbacks_total;
	bool ramp_active;
	__u32 ramp_steps[32], ramp_n, ramp_index;
	__u64 ramp_hold_ns, ramp_step_started_unix_ns;
	bool drill_active;
	__u64 drill_id, drill_ends_unix_ns;
	struct drill_report last_drill;
	struct pool_summary pool[SHIFT_COLORS];
	bool have_shadow;
	struct shadow_report shadow; /* the agent's part; the apply adds the maps' */
};

/* A backend the agent runs, in the order status_collect() shows them. */
struct st_be_ref {
	__u32 svc; /* its service's id */
	__u32 id; /* its slot in the backends map */
	__u8 color;
	bool healthy;
};

/* On the loop: the model's agent-wide fields (not svc, n, stats). No system call. */
void status_take_agent(struct st_model *st, struct agent *a);
/* On the loop: service id's (a->svc[id] != NULL) figures; now: CLOCK_MONOTONIC ns. */
void status_take_service(struct agent *a, __u32 id, __u64 now, struct st_agent_svc *v);
/* On any thread: v into s (s->id's shadow counters read from m). Not the backends' health. */
void status_apply_service(const struct shift_maps *m, struct st_service *s,
			  const struct st_agent_svc *v);
/*
 * status_collect() with the agent's backends listed in refs (n of them)
 * rather than read from the agent: for a thread. *cancel (NULL: never) set
 * ends it early with -ECANCELED, out then holding nothing.
 */
int status_collect_refs(const struct shift_maps *m, const char *only, struct st_model *out,
			const struct st_be_ref *refs, __u32 n, const atomic_bool *cancel);

/* The answers shiftd gives. */
enum status_form {
	STATUS_TEXT, /* shiftctl status */
	STATUS_JSON, /* shiftctl status --json, without its newline */
	STATUS_JSON_LINE, /* the same with it: GET /v1/status */
	STATUS_BACKENDS_TEXT, /* shiftctl backends SERVICE */
	STATUS_BACKENDS_JSON,
};

/* st rendered as form: *buf malloc'ed, *len bytes. 0 or -errno (*buf NULL). */
int status_render_form(const struct st_model *st, enum status_form form, char **buf, size_t *len);
/*
 * A status as shiftd answers it, all on the caller's thread (the loop's, when
 * no status thread runs): *buf malloc'ed, *len bytes. 0, -ENOENT (no such
 * service) or -errno.
 */
int status_agent_render(struct agent *a, const char *only, enum status_form form, char **buf,
			size_t *len);
/* One backend list (shiftctl backends). */
void status_render_backends_text(const struct st_model *st, FILE *f);
void status_render_backends_json(const struct st_model *st, struct json *j);

#endif
