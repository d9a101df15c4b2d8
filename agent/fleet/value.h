/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The fleet's keys in etcd and what they hold (see agent/fleet/README.md):
 *
 *   /shift/FLEET/svc/SERVICE   the shared decision for one service (JSON)
 *   /shift/FLEET/nodes/NODE    what NODE last applied (JSON, no lease)
 *   /shift/FLEET/alive/NODE    present while NODE's lease lives; {"node_id": ID},
 *                              the host holding the name (fleet/node_id.h)
 *
 * Pure code: encoding, decoding with every field checked, the ramp step a plan
 * gives at a time, and what a node must do to match the shared decision.
 */
#ifndef SHIFT_FLEET_VALUE_H
#define SHIFT_FLEET_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "agent.h"

#define FLEET_KEY_LEN 256
#define FLEET_ORIGIN_LEN 64
#define FLEET_ORIGIN_OPERATOR "operator"

struct fleet_ramp {
	__u32 steps[RAMP_MAX_STEPS];
	__u32 n;
	__u64 hold_ns;
	__u64 start_unix_ns;
};

/* /shift/FLEET/svc/SERVICE */
struct fleet_svc_value {
	__u32 weight_bp; /* with a ramp: its first step */
	bool latched;
	char reason[AGENT_REASON_LEN]; /* the rollback's, verbatim ("" when not latched) */
	char origin[FLEET_ORIGIN_LEN]; /* node name or "operator" */
	__u64 unix_ns; /* the writer's clock when it wrote (a rollback: its map write) */
	bool has_ramp;
	struct fleet_ramp ramp;
};

/* One service as a node reports it under /nodes/NODE. */
struct fleet_node_svc {
	char service[CONF_NAME_LEN];
	__u32 weight_bp;
	bool latched;
};

struct fleet_node_value {
	char node[FLEET_ORIGIN_LEN];
	__s64 applied_revision;
	__u64 unix_ns;
	__u32 n;
	struct fleet_node_svc svc[SHIFT_MAX_SERVICES];
};

enum fleet_key_kind { FLEET_KEY_SVC, FLEET_KEY_NODES, FLEET_KEY_ALIVE };

/* "/shift/FLEET/" (prefix of everything), or of one kind ("/shift/FLEET/svc/"). */
int fleet_key_prefix(const char *fleet, int kind, char *buf, size_t len);
/* "/shift/FLEET/svc/NAME" etc. -ENAMETOOLONG if it does not fit. */
int fleet_key(const char *fleet, enum fleet_key_kind kind, const char *name, char *buf, size_t len);
/* The NAME of a key under /shift/FLEET/KIND/, or NULL if it is not one. */
const char *fleet_key_name(const char *fleet, enum fleet_key_kind kind, const char *key);

/* s is valid UTF-8 (as JSON, hence etcd's values, must be). */
bool fleet_utf8_valid(const char *s);

/* JSON text (free() it), or NULL when out of memory. Text fields that are not
 * valid UTF-8 go out with '?' for each bad byte (JSON cannot carry them). */
char *fleet_svc_encode(const struct fleet_svc_value *v);
/* Parse and check (weights 0..10000, ramp steps increasing, lengths). 0 or -EINVAL + why. */
int fleet_svc_decode(const char *buf, size_t len, struct fleet_svc_value *v, char *why, size_t wl);
char *fleet_node_encode(const struct fleet_node_value *v);
int fleet_node_decode(const char *buf, size_t len, struct fleet_node_value *v, char *why,
		      size_t wl);

/* alive/NODE's value: {"node_id": "<32 hex>"}. */
char *fleet_alive_encode(const char *node_id);
/* 0 and id filled; -ENOENT when the value names no id (an older shiftd's
 * "{}"); -EINVAL when it is not such a value. */
int fleet_alive_decode(const char *buf, size_t len, char *id, size_t idlen);

/*
 * The weight a ramp plan gives at now (unix ns): step floor((now - start) /
 * hold), the first before start, the last from the last step on. *index gets
 * the step (0-based); *done is set once the last step's hold has passed.
 */
__u32 fleet_ramp_weight(const struct fleet_ramp *r, __u64 now_unix_ns, __u32 *index, bool *done);
/* The weight the shared value asks for at now (its ramp's step, or weight_bp). */
__u32 fleet_svc_weight(const struct fleet_svc_value *v, __u64 now_unix_ns);

/*
 * This node's way through one ramp plan. The plan's step comes from the wall
 * clock, which NTP or an operator may step: forward, and a node would skip
 * holds (green 10 % -> 40 % at once); backward, and it would lower green
 * again, moving clients green -> blue -> green. So once a node has taken a
 * step of a plan it never goes below it, and it takes the next one only
 * after a hold of its own CLOCK_MONOTONIC, however far the plan says it is.
 * A node meeting the plan afresh (a start, a restart mid-ramp, a new plan)
 * takes the plan's step, as does one that has just (re)joined the fleet
 * (catch_up): etcd's word, not the clock, moved it there; upwards only.
 */
struct fleet_ramp_pace {
	bool known; /* plan, index and step_mono_ns hold */
	bool catch_up; /* next step: the plan's at once, if higher */
	struct fleet_ramp plan;
	__u32 index; /* the step applied */
	__u64 step_mono_ns; /* when it began, this node's CLOCK_MONOTONIC */
};

/*
 * The step (and its weight) this node may be at now: the plan's by now_unix_ns
 * when p is NULL or holds another plan, else paced as above. *done once the
 * last step has been held for a hold.
 */
__u32 fleet_ramp_paced(const struct fleet_ramp *r, const struct fleet_ramp_pace *p,
		       __u64 now_unix_ns, __u64 now_mono_ns, __u32 *index, bool *done);
/* The node is at step index of r from now on (its weight is in the map). */
void fleet_ramp_pace_set(struct fleet_ramp_pace *p, const struct fleet_ramp *r, __u32 index,
			 __u64 now_unix_ns, __u64 now_mono_ns);
/* How long from now until the node may take its next step of r (a step
 * that is due now: 0), or UINT64_MAX when there is none to take. */
__u64 fleet_ramp_pace_wait(const struct fleet_ramp *r, const struct fleet_ramp_pace *p,
			   __u64 now_unix_ns, __u64 now_mono_ns);

/* This node's view of one service, for fleet_decide(). */
struct fleet_local {
	__u32 weight;
	bool latched;
	bool publish_pending; /* a local rollback not yet in etcd */
	bool acked; /* the fleet has been seen latched while this node was */
	bool local_only; /* this node's latch is its own business (a drill's) */
	__u64 rollback_unix_ns; /* of the local latch */
	/* A ramp's step: paced by this (NULL: the plan's step by the clock). */
	const struct fleet_ramp_pace *pace;
	__u64 now_mono_ns;
};

enum fleet_action {
	FLEET_NONE,
	FLEET_SET_WEIGHT, /* write *weight to the map */
	FLEET_ROLLBACK, /* the fleet is rolled back, this node not yet: do as a local rollback */
	FLEET_CLEAR, /* the fleet cleared the latch: lift it, then weight *weight */
	FLEET_PUBLISH, /* this node's rollback is not in etcd yet: write it */
	FLEET_PUBLISHED, /* the fleet is latched already: our pending rollback is covered */
};

/*
 * What this node must do so that its service matches the shared value. Only
 * called while connected (a cut-off node never raises on its own). A rollback
 * wins over any raise. A latch the fleet has carried and no longer does was
 * cleared; one it never carried (taken while shiftd or etcd was away) is ours
 * to publish if newer than the shared value, else a clear to follow.
 */
enum fleet_action fleet_decide(const struct fleet_svc_value *shared, const struct fleet_local *l,
			       __u64 now_unix_ns, __u32 *weight);
const char *fleet_action_name(enum fleet_action a);

#endif
