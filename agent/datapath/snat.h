/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Source NAT settings for the datapath (bpf/snat.h): a service's edge
 * addresses and the ports it may hand out. The host's own ephemeral ports
 * (ip_local_port_range) are left out, so no mapping ever shares a 4-tuple
 * with a socket of the edge host itself (its health checks included).
 */
#ifndef SHIFT_DP_SNAT_H
#define SHIFT_DP_SNAT_H

#include <linux/types.h>
#include <shift/maps.h>

#include "datapath/dataplane.h"

/*
 * [lo, hi] minus [eph_lo, eph_hi] as at most two runs in cfg. Returns the
 * number of ports left (0: none, the configuration cannot work).
 */
__u32 snat_runs(__u16 lo, __u16 hi, __u16 eph_lo, __u16 eph_hi, struct shift_snat_cfg *cfg);
/* The host's ip_local_port_range (this network namespace). 0 or -errno. */
int snat_local_ports(__u16 *lo, __u16 *hi);
/* Write a service's settings (n == 0 clears them). */
int dp_snat_set(const struct shift_maps *m, __u32 service_id, const struct shift_snat_cfg *cfg);

#endif
