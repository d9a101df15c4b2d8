// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>

#include "config/addr.h"
#include "ops/log.h"
#include "datapath/netlink.h"
#include "datapath/nexthop.h"

static void refresh_one(struct agent *a, struct backend_rt *b)
{
	struct shift_backend e = b->entry;
	struct nl_nexthop nh;
	int err;

	err = nl_nexthop(a->nl, b->addr.family, b->addr.addr, &nh);
	if (err == 0 && nh.resolved) {
		e.nh_ifindex = (__u32)nh.ifindex;
		memcpy(e.nh_smac, nh.smac, 6);
		memcpy(e.nh_dmac, nh.dmac, 6);
		e.flags |= SHIFT_BE_F_NH_VALID;
	} else {
		/* Unknown neighbour: the datapath falls back to the FIB and then the
		 * kernel, which resolves it; the neighbour event brings us back here. */
		e.flags &= ~SHIFT_BE_F_NH_VALID;
		if (err == -EAGAIN)
			nl_neigh_probe(a->nl, nh.ifindex, nh.via_gw ? nh.gw_family : b->addr.family,
				       nh.via_gw ? nh.gw : b->addr.addr);
	}
	if (!memcmp(&e, &b->entry, sizeof(e)))
		return;
	if (dp_backend_put(&a->maps, b->id, &e, b->addr.proto) == 0) {
		char ab[ADDR_ENDPOINT_LEN];

		log_debug("backend %s: next hop %s", addr_format_endpoint(&b->addr, ab, sizeof(ab)),
			  (e.flags & SHIFT_BE_F_NH_VALID) ? "cached" : "via the kernel");
		b->entry = e;
	}
}

void nexthops_refresh(struct agent *a)
{
	__u32 i, k;
	int c;

	a->nexthops_dirty = false;
	if (!a->nl)
		return;
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s)
			continue;
		for (c = 0; c < SHIFT_COLORS; c++)
			for (k = 0; k < s->n[c]; k++)
				refresh_one(a, &s->pool[c][k]);
	}
}
