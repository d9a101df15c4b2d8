// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rtnetlink through libmnl: link and next-hop queries, neighbour probes and
 * the event stream that keeps the backend map's next hops fresh.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/time.h>
/* glibc's net/ headers before any linux/ one that would pull in linux/if.h. */
#include <net/if.h>
#include <net/if_arp.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>

#include "ops/log.h"
#include "datapath/netlink.h"

/* Large enough for any single rtnetlink message we ask for or subscribe to
 * (iproute2 uses the same); a larger one is reported as truncated. */
#define NL_BUF_SIZE 32768
/* Requests carry a header and one or two small attributes. */
#define NL_REQ_SIZE 256
/* Route and neighbour churn on a busy router outruns the default ~200 KiB. */
#define NL_EVENT_RCVBUF (4 << 20)
#define NL_QUERY_TIMEOUT_MS 1000
/* Datagrams read per nl_dispatch, so an event storm cannot starve the rest of
 * the caller's loop; level-triggered epoll brings it back for the remainder. */
#define NL_DISPATCH_MAX_READS 64

/* Neighbour states with a link-layer address the datapath may use. */
#define NL_NUD_USABLE \
	(NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)

struct nl_ctx {
	struct mnl_socket *qsock; /* queries: blocking, receive timeout */
	struct mnl_socket *esock; /* events: non-blocking, multicast groups */
	__u32 qportid;
	__u32 seq;
	/* Separate buffers: a callback run from nl_dispatch may query. */
	alignas(struct nlmsghdr) char qbuf[NL_BUF_SIZE];
	alignas(struct nlmsghdr) char ebuf[NL_BUF_SIZE];
};

typedef int (*nl_data_cb)(const struct nlmsghdr *nlh, void *data);

struct nl_attr_table {
	const struct nlattr **tb;
	unsigned int max;
};

struct nl_route_info {
	bool found;
	__u8 type; /* RTN_* */
	int oif;
	__u8 gw_family; /* 0: no gateway, on-link */
	__u32 gw[4];
};

struct nl_neigh_info {
	bool found;
	__u16 state; /* NUD_* */
	__u8 flags; /* NTF_* */
	__u32 ext_flags; /* NDA_FLAGS_EXT: NTF_EXT_* */
	bool has_mac;
	__u8 mac[6];
};

struct nl_link_query {
	bool found;
	struct nl_link *out;
};

static size_t nl_addr_len(__u8 family)
{
	switch (family) {
	case SHIFT_AF_INET:
		return 4;
	case SHIFT_AF_INET6:
		return 16;
	default:
		return 0;
	}
}

static __u64 nl_now_ms(void)
{
	struct timespec ts;

	/* Cannot fail with a valid pointer; if it did, 0 disables only the
	 * overall deadline and each read still ends at the socket timeout. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

static int nl_attr_cb(const struct nlattr *a, void *data)
{
	struct nl_attr_table *t = data;
	unsigned int type = mnl_attr_get_type(a);

	/* Attributes newer than our headers are skipped, not an error. */
	if (type <= t->max)
		t->tb[type] = a;
	return MNL_CB_OK;
}

/* tb must have max + 1 entries; it is cleared first. */
static void nl_parse_attrs(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
			   unsigned int max)
{
	struct nl_attr_table t = { tb, max };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	/* A malformed attribute ends the walk; what was read before stays. */
	mnl_attr_parse(nlh, hdrlen, nl_attr_cb, &t);
}

/* Copies an address attribute of exactly the family's length into addr[4]. */
static bool nl_get_addr(const struct nlattr *a, __u8 family, __u32 addr[4])
{
	size_t alen = nl_addr_len(family);

	if (!a || !alen || mnl_attr_get_payload_len(a) != alen)
		return false;
	memset(addr, 0, 16);
	memcpy(addr, mnl_attr_get_payload(a), alen);
	return true;
}

static bool nl_get_mac(const struct nlattr *a, __u8 mac[6])
{
	if (!a || mnl_attr_get_payload_len(a) != 6)
		return false;
	memcpy(mac, mnl_attr_get_payload(a), 6);
	return true;
}

/*
 * One datagram from sock. Returns its length, 0 for a datagram that did not
 * come from the kernel (dropped: only the kernel speaks for rtnetlink), or
 * -errno (-EAGAIN when nothing is pending or the receive timeout expired).
 */
static ssize_t nl_recv(struct mnl_socket *sock, void *buf, size_t len, bool *trunc)
{
	struct sockaddr_nl sa;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_name = &sa,
		.msg_namelen = sizeof(sa),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n;

	*trunc = false;
	for (;;) {
		n = recvmsg(mnl_socket_get_fd(sock), &msg, 0);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (msg.msg_namelen != sizeof(sa) || sa.nl_family != AF_NETLINK || sa.nl_pid != 0)
		return 0;
	*trunc = msg.msg_flags & MSG_TRUNC;
	return n;
}

static int nl_extack_cb(const struct nlattr *a, void *data)
{
	const char **msg = data;

	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
		*msg = mnl_attr_get_str(a);
	return MNL_CB_OK;
}

/* The status an NLMSG_ERROR carries (0 for an ACK). */
static int nl_ack_status(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const char *msg = NULL;
	size_t off;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
		return -EBADMSG;
	if (e->error >= 0)
		return 0;
	/*
	 * The kernel explains malformed requests in an extended ACK; the answers
	 * we expect (no such link, neighbour or route) need no explanation.
	 */
	switch (-e->error) {
	case ENOENT:
	case ENODEV:
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EACCES:
		return e->error;
	}
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
		if (off <= mnl_nlmsg_get_payload_len(nlh))
			mnl_attr_parse(nlh, off, nl_extack_cb, &msg);
	}
	if (msg)
		log_debug("netlink: request type %u: %s (%s)", e->msg.nlmsg_type,
			  strerror(-e->error), msg);
	return e->error;
}

/*
 * Send req and read until the kernel acknowledges it, passing data messages
 * to cb. Replies to an earlier request that timed out carry an older sequence
 * number and are skipped, so a late answer is never taken for this one.
 */
static int nl_query(struct nl_ctx *nl, struct nlmsghdr *req, nl_data_cb cb, void *data)
{
	__u64 deadline = nl_now_ms() + NL_QUERY_TIMEOUT_MS;
	__u32 seq = ++nl->seq;
	bool trunc = false;
	int ret = 0;

	req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	req->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl->qsock, req, req->nlmsg_len) < 0)
		return -errno;

	for (;;) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->qbuf;
		ssize_t n;
		int len;

		if (nl_now_ms() >= deadline)
			return -ETIMEDOUT;
		n = nl_recv(nl->qsock, nl->qbuf, sizeof(nl->qbuf), &trunc);
		if (n == -EAGAIN)
			return -ETIMEDOUT;
		if (n < 0)
			return (int)n;
		/* The rest of an oversized answer is lost; still wait for the ACK. */
		if (trunc && !ret)
			ret = -EMSGSIZE;
		for (len = (int)n; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != nl->qportid)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				int err = nl_ack_status(nlh);

				return err ? err : ret;
			}
			if (nlh->nlmsg_type == NLMSG_DONE)
				return ret;
			if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
				continue;
			/* Keep the first failure but read on to the ACK. */
			if (cb && !ret)
				ret = cb(nlh, data);
		}
	}
}

/* A NUL-terminated string attribute into dst, cut to fit; dst stays empty
 * without a valid one. */
static void nl_get_str(const struct nlattr *a, char *dst, size_t size)
{
	const char *s;

	if (!a || mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return;
	s = mnl_attr_get_str(a);
	memcpy(dst, s, strnlen(s, size - 1));
}

static int nl_linkinfo_cb(const struct nlattr *a, void *data)
{
	struct nl_link *l = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND)
		nl_get_str(a, l->kind, sizeof(l->kind));
	return MNL_CB_OK;
}

static int nl_parse_link(const struct nlmsghdr *nlh, struct nl_link *l)
{
	const struct nlattr *tb[IFLA_MAX + 1];
	const struct ifinfomsg *ifi;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return -EBADMSG;
	ifi = mnl_nlmsg_get_payload(nlh);
	nl_parse_attrs(nlh, sizeof(*ifi), tb, IFLA_MAX);

	memset(l, 0, sizeof(*l));
	l->ifindex = ifi->ifi_index;
	l->type = ifi->ifi_type;
	l->up = ifi->ifi_flags & IFF_UP;
	l->running = ifi->ifi_flags & IFF_RUNNING;
	l->loopback = ifi->ifi_flags & IFF_LOOPBACK;
	nl_get_str(tb[IFLA_IFNAME], l->name, sizeof(l->name));
	if (tb[IFLA_LINKINFO])
		mnl_attr_parse_nested(tb[IFLA_LINKINFO], nl_linkinfo_cb, l);
	nl_get_str(tb[IFLA_PARENT_DEV_NAME], l->parent, sizeof(l->parent));
	nl_get_mac(tb[IFLA_ADDRESS], l->mac);
	if (tb[IFLA_MTU] && mnl_attr_validate(tb[IFLA_MTU], MNL_TYPE_U32) == 0)
		l->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	return 0;
}

static int nl_link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_link_query *q = data;
	int err;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	err = nl_parse_link(nlh, q->out);
	if (err)
		return err;
	q->found = true;
	return 0;
}

static int nl_link_query(struct nl_ctx *nl, int ifindex, const char *name, struct nl_link *out)
{
	alignas(struct nlmsghdr) char req[NL_REQ_SIZE];
	struct nl_link_query q = { .out = out };
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int err;

	memset(req, 0, sizeof(req));
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	/* Counters are most of a link message and of no use here. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);

	err = nl_query(nl, nlh, nl_link_cb, &q);
	if (err)
		return err;
	return q.found ? 0 : -EPROTO;
}

int nl_link_get(struct nl_ctx *nl, const char *name, struct nl_link *out)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len >= IFNAMSIZ)
		return -EINVAL;
	return nl_link_query(nl, 0, name, out);
}

int nl_link_by_index(struct nl_ctx *nl, int ifindex, struct nl_link *out)
{
	if (ifindex <= 0)
		return -EINVAL;
	return nl_link_query(nl, ifindex, NULL, out);
}

static int nl_route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RTA_MAX + 1];
	struct nl_route_info *r = data;
	const struct rtmsg *rtm;

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return 0;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return -EBADMSG;
	rtm = mnl_nlmsg_get_payload(nlh);
	nl_parse_attrs(nlh, sizeof(*rtm), tb, RTA_MAX);

	r->found = true;
	r->type = rtm->rtm_type;
	if (tb[RTA_OIF] && mnl_attr_validate(tb[RTA_OIF], MNL_TYPE_U32) == 0)
		r->oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	if (nl_get_addr(tb[RTA_GATEWAY], rtm->rtm_family, r->gw)) {
		r->gw_family = rtm->rtm_family;
	} else if (tb[RTA_VIA] && mnl_attr_get_payload_len(tb[RTA_VIA]) >= sizeof(struct rtvia)) {
		/* RFC 5549: an IPv4 route via an IPv6 gateway. */
		const struct rtvia *via = mnl_attr_get_payload(tb[RTA_VIA]);
		size_t alen = nl_addr_len((__u8)via->rtvia_family);

		if (alen && mnl_attr_get_payload_len(tb[RTA_VIA]) == sizeof(struct rtvia) + alen) {
			memcpy(r->gw, via->rtvia_addr, alen);
			r->gw_family = (__u8)via->rtvia_family;
		}
	}
	return 0;
}

static int nl_route_get(struct nl_ctx *nl, __u8 family, const __u32 addr[4],
			struct nl_route_info *r)
{
	alignas(struct nlmsghdr) char req[NL_REQ_SIZE];
	size_t alen = nl_addr_len(family);
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int err;

	memset(req, 0, sizeof(req));
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETROUTE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family;
	rtm->rtm_dst_len = (unsigned char)(alen * 8);
	mnl_attr_put(nlh, RTA_DST, alen, addr);

	memset(r, 0, sizeof(*r));
	err = nl_query(nl, nlh, nl_route_cb, r);
	if (err)
		return err;
	return r->found ? 0 : -EPROTO;
}

static int nl_neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[NDA_MAX + 1];
	struct nl_neigh_info *n = data;
	const struct ndmsg *ndm;

	if (nlh->nlmsg_type != RTM_NEWNEIGH)
		return 0;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ndm))
		return -EBADMSG;
	ndm = mnl_nlmsg_get_payload(nlh);
	nl_parse_attrs(nlh, sizeof(*ndm), tb, NDA_MAX);

	n->found = true;
	n->state = ndm->ndm_state;
	n->flags = ndm->ndm_flags;
	if (tb[NDA_FLAGS_EXT] && mnl_attr_validate(tb[NDA_FLAGS_EXT], MNL_TYPE_U32) == 0)
		n->ext_flags = mnl_attr_get_u32(tb[NDA_FLAGS_EXT]);
	n->has_mac = nl_get_mac(tb[NDA_LLADDR], n->mac);
	return 0;
}

/* The kernel's entry for addr on ifindex: 0, -ENOENT when there is none.
 * (RTM_GETNEIGH for one entry needs Linux >= 4.20; a lookup never creates.) */
static int nl_neigh_get(struct nl_ctx *nl, int ifindex, __u8 family, const __u32 addr[4],
			struct nl_neigh_info *n)
{
	alignas(struct nlmsghdr) char req[NL_REQ_SIZE];
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;
	int err;

	memset(req, 0, sizeof(req));
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETNEIGH;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = family;
	ndm->ndm_ifindex = ifindex;
	mnl_attr_put(nlh, NDA_DST, nl_addr_len(family), addr);

	memset(n, 0, sizeof(*n));
	err = nl_query(nl, nlh, nl_neigh_cb, n);
	if (err)
		return err;
	return n->found ? 0 : -EPROTO;
}

int nl_route_nexthop(struct nl_ctx *nl, __u8 family, const __u32 addr[4], struct nl_nexthop *out)
{
	struct nl_route_info r;
	int err;

	memset(out, 0, sizeof(*out));
	if (!nl_addr_len(family))
		return -EAFNOSUPPORT;

	err = nl_route_get(nl, family, addr, &r);
	/* How the kernel answers for no route, and for unreachable, prohibit
	 * and blackhole routes. */
	if (err == -ENETUNREACH || err == -EHOSTUNREACH || err == -EACCES || err == -EINVAL)
		return -ENETUNREACH;
	if (err)
		return err;
	if (r.type != RTN_UNICAST || r.oif <= 0)
		return -ENETUNREACH;

	out->ifindex = r.oif;
	if (r.gw_family) {
		out->via_gw = true;
		out->gw_family = r.gw_family;
		memcpy(out->gw, r.gw, sizeof(out->gw));
	} else {
		out->gw_family = family;
		memcpy(out->gw, addr, nl_addr_len(family));
	}
	return 0;
}

int nl_neigh_lookup(struct nl_ctx *nl, int ifindex, __u8 family, const __u32 addr[4], __u8 mac[6])
{
	struct nl_neigh_info n;
	int err;

	if (!nl_addr_len(family))
		return -EAFNOSUPPORT;
	err = nl_neigh_get(nl, ifindex, family, addr, &n);
	if (err == -ENOENT)
		return -EAGAIN;
	if (err)
		return err;
	if (!(n.state & NL_NUD_USABLE) || !n.has_mac)
		return -EAGAIN;
	memcpy(mac, n.mac, 6);
	return 0;
}

int nl_nexthop(struct nl_ctx *nl, __u8 family, const __u32 addr[4], struct nl_nexthop *out)
{
	struct nl_link link;
	int err;

	err = nl_route_nexthop(nl, family, addr, out);
	if (err)
		return err;
	err = nl_link_by_index(nl, out->ifindex, &link);
	if (err == -ENODEV) /* gone since the route lookup; its events follow */
		return -ENETUNREACH;
	if (err)
		return err;
	if (link.type != ARPHRD_ETHER)
		return -EOPNOTSUPP;
	memcpy(out->smac, link.mac, sizeof(out->smac));

	err = nl_neigh_lookup(nl, out->ifindex, out->gw_family, out->gw, out->dmac);
	if (err)
		return err;
	out->resolved = true;
	return 0;
}

/*
 * What works, found by experiment on Linux 6.18 with iproute2 6.1 (and in
 * net/core/neighbour.c): only NTF_USE starts resolution of an unknown address.
 *   - RTM_NEWNEIGH with NUD_NONE or NUD_INCOMPLETE (`nud none`, `nud
 *     incomplete`) only stores that state: no ARP/NS is sent, and an
 *     INCOMPLETE entry made so has no timer and never leaves that state.
 *   - NUD_PROBE (`nud probe`) needs a link-layer address already known
 *     ("No link layer address given").
 *   - NTF_USE (`ip neigh replace ADDR dev X use`) runs neigh_event_send(), the
 *     path of a packet sent to the neighbour: absent/NONE/FAILED become
 *     INCOMPLETE and are solicited at once, STALE goes to DELAY and is
 *     re-confirmed; a reachable peer answers within milliseconds, an absent
 *     one ends FAILED after mcast_solicit retries (3 s by default). Works for
 *     IPv4 and IPv6.
 * The entry is created with NUD_NONE, not the PERMANENT state iproute2 puts in
 * every request: a new entry asked for as PERMANENT is kept off the garbage
 * collector's list for good.
 *
 * Since Linux 5.16 an NTF_USE update also strips NUD_PERMANENT and the
 * NTF_EXT_LEARNED/NTF_EXT_MANAGED flags from an existing entry, turning an
 * operator's static neighbour into a dynamic one, so entries in those states
 * are looked up first and left alone. (An entry an operator makes PERMANENT
 * between the lookup and the update would still be demoted: the kernel offers
 * no compare-and-set.)
 */
int nl_neigh_probe(struct nl_ctx *nl, int ifindex, __u8 family, const __u32 addr[4])
{
	alignas(struct nlmsghdr) char req[NL_REQ_SIZE];
	size_t alen = nl_addr_len(family);
	struct nl_neigh_info n;
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;
	int err;

	if (!alen)
		return -EAFNOSUPPORT;
	if (ifindex <= 0)
		return -EINVAL;

	err = nl_neigh_get(nl, ifindex, family, addr, &n);
	if (err && err != -ENOENT)
		return err;
	if (!err) {
		if (n.state & (NUD_PERMANENT | NUD_NOARP) || n.flags & NTF_EXT_LEARNED ||
		    n.ext_flags)
			return 0;
		/* Resolved, or resolution already under way. */
		if (n.state & (NUD_REACHABLE | NUD_DELAY | NUD_PROBE | NUD_INCOMPLETE))
			return 0;
	}

	memset(req, 0, sizeof(req));
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_NEWNEIGH;
	nlh->nlmsg_flags = NLM_F_CREATE;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = family;
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = NUD_NONE;
	ndm->ndm_flags = NTF_USE;
	mnl_attr_put(nlh, NDA_DST, alen, addr);
	return nl_query(nl, nlh, NULL, NULL);
}

static void nl_event_link(const struct nlmsghdr *nlh, const struct nl_callbacks *cb, void *arg)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct nl_link l;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return;
	/* Bridge port notifications share the group with AF_BRIDGE; their
	 * RTM_DELLINK means "left the bridge", not "deleted". */
	if (ifi->ifi_family != AF_UNSPEC || !cb->link)
		return;
	if (nl_parse_link(nlh, &l))
		return;
	cb->link(arg, &l, nlh->nlmsg_type == RTM_DELLINK);
}

static void nl_event_neigh(const struct nlmsghdr *nlh, const struct nl_callbacks *cb, void *arg)
{
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NDA_MAX + 1];
	__u8 mac[6] = { 0 };
	__u32 addr[4];
	bool usable;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ndm) || !cb->neigh)
		return;
	/* AF_BRIDGE here is the bridge FDB; NTF_PROXY entries are proxy ARP/ND
	 * configuration, not neighbours. */
	if ((ndm->ndm_family != AF_INET && ndm->ndm_family != AF_INET6) ||
	    ndm->ndm_flags & NTF_PROXY)
		return;
	nl_parse_attrs(nlh, sizeof(*ndm), tb, NDA_MAX);
	if (!nl_get_addr(tb[NDA_DST], ndm->ndm_family, addr))
		return;
	usable = nlh->nlmsg_type == RTM_NEWNEIGH && ndm->ndm_state & NL_NUD_USABLE &&
		 nl_get_mac(tb[NDA_LLADDR], mac);
	if (!usable)
		memset(mac, 0, sizeof(mac));
	cb->neigh(arg, ndm->ndm_ifindex, ndm->ndm_family, addr, mac, usable);
}

/* Note a route message's destination in c. false when it is not a route of
 * ours to look at. */
static bool nl_event_route(const struct nlmsghdr *nlh, struct nl_route_change *c)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1];
	struct nl_route_prefix p;
	size_t alen;
	__u32 i;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return false;
	/* Cloned entries are IPv6 route-cache exceptions (PMTU, redirects),
	 * not routing changes. */
	if ((rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) ||
	    rtm->rtm_flags & RTM_F_CLONED)
		return false;
	if (c->all)
		return true;
	alen = nl_addr_len(rtm->rtm_family);
	memset(&p, 0, sizeof(p)); /* compared whole, padding too */
	p.family = rtm->rtm_family;
	p.len = rtm->rtm_dst_len;
	nl_parse_attrs(nlh, sizeof(*rtm), tb, RTA_MAX);
	if (p.len > alen * 8 || (p.len && !nl_get_addr(tb[RTA_DST], p.family, p.addr))) {
		/* Not a destination we can read: any address may be concerned. */
		c->all = true;
		return true;
	}
	/* Bits past the length are not the kernel's to set, but make sure. */
	for (i = p.len; i < alen * 8; i++)
		((__u8 *)p.addr)[i / 8] &= (__u8) ~(0x80 >> (i % 8));
	for (i = 0; i < c->n; i++)
		if (!memcmp(&c->p[i], &p, sizeof(p)))
			return true;
	if (c->n == NL_ROUTE_PREFIXES)
		c->all = true;
	else
		c->p[c->n++] = p;
	return true;
}

int nl_dispatch(struct nl_ctx *nl, const struct nl_callbacks *cb, void *arg)
{
	struct nl_route_change rc = { 0 };
	bool route = false, resync = false;
	int handled = 0, err = 0, reads;

	for (reads = 0; reads < NL_DISPATCH_MAX_READS; reads++) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->ebuf;
		bool trunc = false;
		ssize_t n;
		int len;

		n = nl_recv(nl->esock, nl->ebuf, sizeof(nl->ebuf), &trunc);
		if (n == -EAGAIN)
			break;
		if (n == -ENOBUFS) {
			/* The kernel dropped events for us; the socket is usable
			 * again, but what we missed must be re-read. */
			log_debug("netlink: event socket overrun, resynchronising");
			resync = true;
			continue;
		}
		if (n < 0) {
			err = (int)n;
			break;
		}
		if (trunc)
			resync = true;
		for (len = (int)n; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			handled++;
			switch (nlh->nlmsg_type) {
			case RTM_NEWLINK:
			case RTM_DELLINK:
				nl_event_link(nlh, cb, arg);
				break;
			case RTM_NEWNEIGH:
			case RTM_DELNEIGH:
				nl_event_neigh(nlh, cb, arg);
				break;
			case RTM_NEWROUTE:
			case RTM_DELROUTE:
				route |= nl_event_route(nlh, &rc);
				break;
			}
		}
	}

	/* A resync re-resolves everything, routes included. */
	if (resync && cb->resync)
		cb->resync(arg);
	else if (route && cb->route)
		cb->route(arg, &rc);
	return err ? err : handled;
}

int nl_event_fd(const struct nl_ctx *nl)
{
	return mnl_socket_get_fd(nl->esock);
}

static int nl_set_rcvbuf(struct mnl_socket *sock, int size)
{
	int fd = mnl_socket_get_fd(sock);

	/* FORCE goes past net.core.rmem_max but needs CAP_NET_ADMIN, which
	 * shiftd has for XDP anyway; without it take what rmem_max allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == 0)
		return 0;
	if (errno != EPERM)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0)
		return -errno;
	return 0;
}

int nl_open(struct nl_ctx **out)
{
	struct timeval tv = { .tv_sec = NL_QUERY_TIMEOUT_MS / 1000,
			      .tv_usec = (NL_QUERY_TIMEOUT_MS % 1000) * 1000 };
	struct nl_ctx *nl;
	int one = 1, err;

	*out = NULL;
	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;

	nl->qsock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->qsock)
		goto fail_errno;
	if (mnl_socket_bind(nl->qsock, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail_errno;
	if (setsockopt(mnl_socket_get_fd(nl->qsock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		goto fail_errno;
	/* Short ACKs with the kernel's reason for a rejection (Linux >= 4.12);
	 * optional, so older kernels' ENOPROTOOPT is fine. */
	if (mnl_socket_setsockopt(nl->qsock, NETLINK_CAP_ACK, &one, sizeof(one)) < 0 &&
	    errno != ENOPROTOOPT)
		goto fail_errno;
	if (mnl_socket_setsockopt(nl->qsock, NETLINK_EXT_ACK, &one, sizeof(one)) < 0 &&
	    errno != ENOPROTOOPT)
		goto fail_errno;
	nl->qportid = mnl_socket_get_portid(nl->qsock);

	nl->esock = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!nl->esock)
		goto fail_errno;
	if (mnl_socket_bind(nl->esock,
			    RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
			    MNL_SOCKET_AUTOPID) < 0)
		goto fail_errno;
	err = nl_set_rcvbuf(nl->esock, NL_EVENT_RCVBUF);
	if (err)
		goto fail;

	*out = nl;
	return 0;

fail_errno:
	err = -errno;
fail:
	nl_close(nl);
	return err;
}

void nl_close(struct nl_ctx *nl)
{
	if (!nl)
		return;
	/* mnl_socket_close's only failure is close()'s, nothing to do about it. */
	if (nl->esock)
		mnl_socket_close(nl->esock);
	if (nl->qsock)
		mnl_socket_close(nl->qsock);
	free(nl);
}
