/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Backend next hops in the backend map, kept fresh from netlink, so the
 * datapath forwards without a FIB lookup per packet. */
#ifndef SHIFT_NEXTHOP_H
#define SHIFT_NEXTHOP_H

#include "agent.h"

/* Re-resolve every backend; entries whose next hop changed are rewritten. */
void nexthops_refresh(struct agent *a);

#endif
