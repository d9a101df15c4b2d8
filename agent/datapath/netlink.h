/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * rtnetlink for shiftd: the next hop of each backend (so the XDP datapath can
 * write MACs and redirect without a FIB lookup per packet) and the link, route
 * and neighbour events that make it stale.
 *
 * Two NETLINK_ROUTE sockets: a blocking one for request/response queries with
 * a 1 s receive timeout, and a non-blocking one subscribed to link, neighbour
 * and IPv4/IPv6 route events for the caller's epoll loop. Open the context
 * before the first resolution so no change between the two is missed.
 *
 * Not thread-safe; callbacks may run queries (nl_link_*, nl_nexthop,
 * nl_neigh_*) but must not call nl_dispatch.
 */
#ifndef SHIFT_NETLINK_H
#define SHIFT_NETLINK_H

#include <stdbool.h>
#include <linux/types.h>
#include <shift/maps.h>

struct nl_ctx;

struct nl_link {
	int ifindex;
	char name[16]; /* IFNAMSIZ */
	__u8 mac[6]; /* zero unless the link has a 6-byte address */
	bool up; /* IFF_UP: administratively up */
	bool running; /* IFF_RUNNING: up and carrier */
	__u32 mtu;
	__u16 type; /* ARPHRD_*; only ARPHRD_ETHER links can be a next hop */
	bool loopback; /* IFF_LOOPBACK */
	/* IFLA_INFO_KIND: the rtnl link type ("veth", "bridge", "macvlan", "vxlan",
	 * ...) of a device made in software; empty for NICs and for lo. */
	char kind[16];
	/* IFLA_PARENT_DEV_NAME: the device behind a NIC ("0000:00:03.0", "virtio2"),
	 * as /sys/class/net/NAME/device links to; empty for virtual interfaces, and
	 * for every interface on kernels before 5.16. Cut to fit. */
	char parent[32];
};

struct nl_nexthop {
	int ifindex; /* egress interface */
	__u8 smac[6]; /* the egress interface's MAC */
	__u8 dmac[6]; /* the neighbour's MAC, when resolved */
	/* The address whose neighbour entry is used: the gateway, or the
	 * destination itself when it is on-link (via_gw false). Network order,
	 * IPv4 in gw[0]; gw_family may differ from the destination's for an
	 * IPv4 route via an IPv6 gateway (RTA_VIA). */
	__u32 gw[4];
	__u8 gw_family;
	bool via_gw;
	bool resolved;
};

/* A prefix whose routes changed: lookups of addresses inside it may answer
 * otherwise now, others not. len 0 is every address of the family. */
struct nl_route_prefix {
	__u8 family; /* SHIFT_AF_INET or SHIFT_AF_INET6 */
	__u8 len;
	__u32 addr[4]; /* network order, IPv4 in addr[0]; bits past len zero */
};

/* Distinct prefixes one nl_dispatch kept; beyond that, "all". */
#define NL_ROUTE_PREFIXES 16

struct nl_route_change {
	bool all; /* more changes than kept: any address may be concerned */
	__u32 n;
	struct nl_route_prefix p[NL_ROUTE_PREFIXES];
};

/* Does p hold addr (of family)? */
static inline bool nl_prefix_has(const struct nl_route_prefix *p, __u8 family, const __u32 addr[4])
{
	const __u8 *a = (const __u8 *)addr, *b = (const __u8 *)p->addr;
	unsigned int full = p->len / 8, rest = p->len % 8, i;

	if (p->family != family)
		return false;
	for (i = 0; i < full; i++)
		if (a[i] != b[i])
			return false;
	return !rest || !((a[full] ^ b[full]) & (0xff00 >> rest));
}

struct nl_callbacks {
	/* RTM_NEWLINK/RTM_DELLINK; a recreated interface comes back with a new
	 * ifindex under the same name. */
	void (*link)(void *arg, const struct nl_link *l, bool deleted);
	/* Any IPv4/IPv6 neighbour change; usable = valid state with a MAC
	 * (REACHABLE, STALE, DELAY, PROBE, PERMANENT, NOARP), false for
	 * INCOMPLETE/FAILED/NONE and deletions (mac is then zero). */
	void (*neigh)(void *arg, int ifindex, __u8 family, const __u32 addr[4], const __u8 mac[6],
		      bool usable);
	/* IPv4/IPv6 routes changed, for the destinations in c. Called at most
	 * once per nl_dispatch, after the other callbacks, however many route
	 * messages arrived (a routing daemon can send thousands at once). */
	void (*route)(void *arg, const struct nl_route_change *c);
	/* Events were lost (socket overrun): re-read everything. */
	void (*resync)(void *arg);
};

/* 0 or -errno. */
int nl_open(struct nl_ctx **out);
void nl_close(struct nl_ctx *nl);
/* The event socket, for epoll (level-triggered: nl_dispatch may leave
 * messages queued under an event storm). */
int nl_event_fd(const struct nl_ctx *nl);

/* 0, -ENODEV when there is no such link, -EINVAL for a name that cannot exist,
 * or another -errno (-ETIMEDOUT if the kernel did not answer within 1 s). */
int nl_link_get(struct nl_ctx *nl, const char *name, struct nl_link *out);
int nl_link_by_index(struct nl_ctx *nl, int ifindex, struct nl_link *out);

/*
 * Next hop towards addr (family SHIFT_AF_INET or SHIFT_AF_INET6, network
 * order, IPv4 in addr[0]), the way `ip route get` sees it for a packet this
 * host sends (no input interface or mark, so policy rules keyed on those are
 * not applied; with ECMP the kernel's pick for that lookup).
 *   0             resolved: every field filled
 *   -EAGAIN       route found, neighbour unknown or unresolved: ifindex, smac,
 *                 gw, gw_family, via_gw filled; see nl_neigh_probe()
 *   -ENETUNREACH  no route, or one that does not forward (unreachable,
 *                 prohibit, blackhole, local, broadcast, ...)
 *   -EOPNOTSUPP   the egress interface is not Ethernet (tunnel, loopback...)
 *   other -errno
 */
int nl_nexthop(struct nl_ctx *nl, __u8 family, const __u32 addr[4], struct nl_nexthop *out);
/*
 * nl_nexthop()'s first query alone (one RTM_GETROUTE): ifindex, gw, gw_family
 * and via_gw filled, smac and dmac not. 0, -ENETUNREACH as nl_nexthop(), or
 * another -errno.
 */
int nl_route_nexthop(struct nl_ctx *nl, __u8 family, const __u32 addr[4], struct nl_nexthop *out);
/*
 * Its last (one RTM_GETNEIGH): the kernel's entry for addr on ifindex. 0 and
 * mac when it is usable (as the neigh callback's usable), -EAGAIN when absent
 * or not resolved, or another -errno.
 */
int nl_neigh_lookup(struct nl_ctx *nl, int ifindex, __u8 family, const __u32 addr[4], __u8 mac[6]);

/*
 * Make the kernel resolve addr on ifindex as if a packet were sent to it
 * (RTM_NEWNEIGH with NTF_USE): an absent, FAILED or NONE entry goes INCOMPLETE
 * and is solicited (broadcast ARP / multicast NS); a STALE one goes to DELAY
 * and is re-confirmed by unicast. The answer arrives as a neigh event. Entries
 * that are resolved, already resolving, or owned by someone else (PERMANENT,
 * NOARP, externally learned, managed) are left alone. 0 or -errno.
 */
int nl_neigh_probe(struct nl_ctx *nl, int ifindex, __u8 family, const __u32 addr[4]);

/* Read what is pending on the event socket and run the callbacks (any may be
 * NULL). Returns the number of messages read (0 if none) or -errno. */
int nl_dispatch(struct nl_ctx *nl, const struct nl_callbacks *cb, void *arg);

#endif
