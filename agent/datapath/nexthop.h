/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend next hops in the backend map, kept fresh from netlink, so the
 * datapath forwards without a FIB lookup per packet.
 *
 * Looking one backend up costs shiftd's loop up to three blocking netlink
 * queries (route, link, neighbour), and an edge host's neighbour entries change
 * state all the time: re-resolving every backend on every event stalled the
 * loop for 1.4 s at 32768 backends. So each event costs only what it concerns:
 *   - a neighbour event: the backends that resolve through that entry (their
 *     gateway, or themselves on-link) take its MAC from the event, without a
 *     query; an entry no backend resolves through costs nothing;
 *   - a link event: the backends leaving by that link are looked up again,
 *     when what matters of it (MAC, up, carrier, type) changed or it is gone;
 *   - a route event: the backends inside the changed prefixes, or whose
 *     gateway is; a default route, a change netlink could not name, or more
 *     than one dispatch can list: all backends, NH_DEBOUNCE_NS later so that
 *     a burst costs one pass.
 * Lookups wait in a queue the loop works off NH_SLICE_NS at a time between
 * its events; within a pass each egress link and each neighbour entry is
 * asked once, so N backends behind one gateway cost N route queries, one link
 * and one neighbour query.
 */
#ifndef SHIFT_NEXTHOP_H
#define SHIFT_NEXTHOP_H

#include <stdbool.h>
#include <linux/types.h>

#include "agent.h"

struct nl_link;
struct nl_route_change;

/* Lookups per loop turn stop after this much time (at least one is made). */
#define NH_SLICE_NS (200 * 1000ull)
/* A full pass asked for by a route change waits this long for the rest of
 * the burst. */
#define NH_DEBOUNCE_NS (100 * 1000000ull)
/* A lookup that failed (netlink error, not "no route") is tried again after. */
#define NH_RETRY_NS (1000 * 1000000ull)

/* backend_rt.nh_state */
enum nh_state {
	NH_NEW, /* never looked up */
	NH_KEYED, /* routed by nh_ifindex through neighbour nh_addr: resolved or waiting */
	NH_NOROUTE, /* no usable route (none, unreachable, not Ethernet): a route or link
		     * change brings it back */
	NH_RETRY, /* the lookup failed: again after NH_RETRY_NS */
};

/* a->nh for a->nl; 0 or -ENOMEM. Without netlink every call below does nothing. */
int nexthops_init(struct agent *a);
void nexthops_free(struct agent *a);
/* The pools changed (apply_config(): a->nexthops_dirty): index them again and
 * queue the backends never looked up. The calls below do it first when the
 * flag is set. */
void nexthops_reindex(struct agent *a);
/* Every backend, at once (start) or in one pass from the loop. */
void nexthops_drain(struct agent *a);
/* Every backend again: NH_DEBOUNCE_NS from now (debounce), else queued now
 * (events were lost). */
void nexthops_refresh_all(struct agent *a, bool debounce);

/* netlink's events (datapath/netlink.h's callbacks). */
void nexthops_neigh(struct agent *a, int ifindex, __u8 family, const __u32 addr[4],
		    const __u8 mac[6], bool usable);
void nexthops_link(struct agent *a, const struct nl_link *l, bool deleted);
void nexthops_route(struct agent *a, const struct nl_route_change *c);

/* Lookups are queued: the loop should come back at once, not sleep. */
bool nexthops_pending(const struct agent *a);
/* Work the queue for about budget_ns (at least one lookup). */
void nexthops_work(struct agent *a, __u64 budget_ns);
/* From the tick: start the debounced pass and the retries that are due. */
void nexthops_tick(struct agent *a);

#endif
