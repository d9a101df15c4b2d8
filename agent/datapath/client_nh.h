/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The client-side next hops the datapath learns from SYNs (shift_client_nhs,
 * include/shift/maps.h). The datapath writes each entry once; shiftd retires
 * the entries of an interface that is gone, and the datapath may claim them
 * again after a quarantine. A recreated interface (a container's veth, a NIC
 * plugged again) comes back with a new ifindex, so its old entries would
 * otherwise stay, dead, until all 255 were taken and every SYN-ACK went by
 * the FIB.
 */
#ifndef SHIFT_CLIENT_NH_AGENT_H
#define SHIFT_CLIENT_NH_AGENT_H

#include <linux/types.h>

/* Is ifindex an interface that exists? 1 yes, 0 no, or -errno: unknown (kept). */
typedef int (*client_nh_alive_fn)(void *arg, __u32 ifindex);

/* Retire ifindex's entries (fd: shift_client_nhs). *retired: how many. 0, or
 * the first -errno (the scan goes on past it). */
int client_nhs_forget(int fd, __u32 ifindex, __u32 *retired);

/* Retire the entries of every interface alive() says is gone (at start: the
 * pinned map outlives the interfaces of a shiftd that was down). */
int client_nhs_sweep(int fd, client_nh_alive_fn alive, void *arg, __u32 *retired);

/* How many entries are in use (a next hop, or a SYN writing one) and how many
 * are retired. 0 or -errno. */
int client_nhs_count(int fd, __u32 *used, __u32 *retired);

#endif
