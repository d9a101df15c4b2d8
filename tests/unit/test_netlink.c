// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rtnetlink against the real kernel, inside network namespaces of our own:
 * link queries, next hops (on-link, via a gateway, unresolved, no route) for
 * IPv4 and IPv6, neighbour probes, and link/neighbour/route events; and what
 * attach = auto reads of a link (kind, parent device), on the veths and bridge
 * here and, read-only, on the NICs of the namespace the test started in.
 *
 *   main ns: veth0 02:00:00:00:01:01 198.18.0.1/24 2001:db8::1/64
 *            198.18.0.10, 2001:db8::10 -> 02:00:00:00:00:0a (nud permanent)
 *            198.19.5.0/24 via 198.18.0.10, 2001:db8:5::/64 via 2001:db8::10,
 *            198.19.9.0/24 via inet6 2001:db8::10 (RFC 5549)
 *   peer ns: veth1 02:00:00:00:02:02 198.18.0.2/24 2001:db8::2/64
 *
 * Needs root (unshare); skipped otherwise.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <net/if_arp.h>
#include <cmocka.h>

#include "datapath/attach.h"
#include "datapath/netlink.h"

#define WAIT_MS 3000
#define MAX_EVENTS 512

static const __u8 mac_veth0[6] = { 0x02, 0, 0, 0, 0x01, 0x01 };
static const __u8 mac_veth1[6] = { 0x02, 0, 0, 0, 0x02, 0x02 };
static const __u8 mac_static[6] = { 0x02, 0, 0, 0, 0, 0x0a };

struct fixture {
	bool skip;
	int ns_main; /* fds keeping the namespaces, for setns() */
	int ns_peer;
	struct nl_ctx *nl;
	int veth0;
};

enum ev_kind { EV_LINK, EV_NEIGH };

struct ev {
	enum ev_kind kind;
	struct nl_link link;
	bool deleted;
	int ifindex;
	__u8 family;
	__u32 addr[4];
	__u8 mac[6];
	bool usable;
};

/* What the callbacks saw. */
struct rec {
	struct ev ev[MAX_EVENTS];
	int n;
	int route_calls;
	bool route_all; /* some callback said "all" */
	struct nl_route_prefix routes[64]; /* the prefixes the callbacks named */
	int n_routes;
	int resync_calls;
	int dispatches; /* nl_dispatch calls that read something */
};

static __u64 now_ms(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

/* Runs a shell command; 0 when it exited with status 0. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		print_error("command failed (status %d): %s\n", st, cmd);
		return -1;
	}
	return 0;
}

#define SH(...) assert_int_equal(sh(__VA_ARGS__), 0)

/* Runs cmd in the peer namespace, then comes back. */
static int sh_peer(struct fixture *fx, const char *cmd)
{
	int err;

	if (setns(fx->ns_peer, CLONE_NEWNET) < 0)
		return -1;
	err = sh("%s", cmd);
	if (setns(fx->ns_main, CLONE_NEWNET) < 0)
		return -1;
	return err;
}

static void parse_addr(__u8 family, const char *s, __u32 addr[4])
{
	memset(addr, 0, 16);
	assert_int_equal(inet_pton(family, s, addr), 1);
}

/* --- event recording ------------------------------------------------------ */

static struct ev *rec_add(struct rec *r)
{
	struct ev *e;

	/* The tests clear the record before each step; overflow is a bug. */
	assert_true(r->n < MAX_EVENTS);
	e = &r->ev[r->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

static void on_link(void *arg, const struct nl_link *l, bool deleted)
{
	struct ev *e = rec_add(arg);

	e->kind = EV_LINK;
	e->link = *l;
	e->deleted = deleted;
	e->ifindex = l->ifindex;
}

static void on_neigh(void *arg, int ifindex, __u8 family, const __u32 addr[4], const __u8 mac[6],
		     bool usable)
{
	struct ev *e = rec_add(arg);

	e->kind = EV_NEIGH;
	e->ifindex = ifindex;
	e->family = family;
	memcpy(e->addr, addr, sizeof(e->addr));
	memcpy(e->mac, mac, sizeof(e->mac));
	e->usable = usable;
}

static void on_route(void *arg, const struct nl_route_change *c)
{
	struct rec *r = arg;
	__u32 i;

	r->route_calls++;
	r->route_all |= c->all;
	assert_true(c->n <= NL_ROUTE_PREFIXES);
	for (i = 0; i < c->n && r->n_routes < 64; i++)
		r->routes[r->n_routes++] = c->p[i];
}

/* A callback named the prefix ADDR/len (family's). */
static bool rec_has_route(const struct rec *r, __u8 family, const char *addr, __u8 len)
{
	__u32 a[4] = { 0 };
	int i;

	assert_int_equal(inet_pton(family, addr, a), 1);
	for (i = 0; i < r->n_routes; i++)
		if (r->routes[i].family == family && r->routes[i].len == len &&
		    !memcmp(r->routes[i].addr, a, sizeof(a)))
			return true;
	return false;
}

static void on_resync(void *arg)
{
	((struct rec *)arg)->resync_calls++;
}

static const struct nl_callbacks rec_cbs = {
	.link = on_link,
	.neigh = on_neigh,
	.route = on_route,
	.resync = on_resync,
};

/* One poll + dispatch of at most ms; false when the time ran out. */
static bool pump(struct nl_ctx *nl, struct rec *r, int ms)
{
	struct pollfd pfd = { .fd = nl_event_fd(nl), .events = POLLIN };
	int n;

	n = poll(&pfd, 1, ms);
	assert_true(n >= 0);
	if (n == 0)
		return false;
	n = nl_dispatch(nl, &rec_cbs, r);
	assert_true(n >= 0);
	if (n > 0)
		r->dispatches++;
	return true;
}

/* Forget everything queued so far, then start a fresh record. */
static void drain(struct nl_ctx *nl, struct rec *r)
{
	int i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < 1000 && pump(nl, r, 0); i++)
		r->n = 0; /* one pump records at most 64 events, far below MAX_EVENTS */
	memset(r, 0, sizeof(*r));
}

typedef bool (*ev_match)(const struct ev *e, const struct ev *want);

/* The first recorded event matching want, waiting up to WAIT_MS for it. */
static const struct ev *wait_for(struct nl_ctx *nl, struct rec *r, ev_match match,
				 const struct ev *want)
{
	__u64 deadline = now_ms() + WAIT_MS;
	int seen = 0;

	for (;;) {
		__u64 now;

		for (; seen < r->n; seen++)
			if (match(&r->ev[seen], want))
				return &r->ev[seen];
		now = now_ms();
		if (now >= deadline)
			return NULL;
		pump(nl, r, (int)(deadline - now));
	}
}

static bool match_link(const struct ev *e, const struct ev *want)
{
	return e->kind == EV_LINK && !strcmp(e->link.name, want->link.name) &&
	       e->deleted == want->deleted && (e->deleted || e->link.up == want->link.up);
}

static bool match_neigh(const struct ev *e, const struct ev *want)
{
	return e->kind == EV_NEIGH && e->family == want->family &&
	       !memcmp(e->addr, want->addr, sizeof(e->addr)) && e->usable == want->usable;
}

/* --- setup ---------------------------------------------------------------- */

static int open_ns_fd(void)
{
	/* Not O_CLOEXEC: `ip ... netns /proc/self/fd/N` opens it in the child. */
	return open("/proc/self/ns/net", O_RDONLY);
}

static int wait_running(struct fixture *fx, const char *name)
{
	struct timespec pause = { .tv_nsec = 20 * 1000 * 1000 };
	__u64 deadline = now_ms() + WAIT_MS;
	struct nl_link l;

	/* Carrier and operstate follow link-up through the linkwatch worker. */
	while (now_ms() < deadline) {
		if (nl_link_get(fx->nl, name, &l) == 0 && l.running)
			return 0;
		nanosleep(&pause, NULL);
	}
	return -1;
}

static int group_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct nl_link l;

	if (!fx)
		return -1;
	*state = fx;
	fx->ns_main = fx->ns_peer = -1;
	/* Everything below happens in namespaces that die with this process. */
	if (unshare(CLONE_NEWNET) < 0) {
		print_message("unshare(CLONE_NEWNET): %s: skipping\n", strerror(errno));
		fx->skip = true;
		return 0;
	}
	fx->ns_main = open_ns_fd();
	if (fx->ns_main < 0 || unshare(CLONE_NEWNET) < 0)
		return -1;
	fx->ns_peer = open_ns_fd();
	if (fx->ns_peer < 0 || setns(fx->ns_main, CLONE_NEWNET) < 0)
		return -1;

	if (sh("ip link set lo up") ||
	    sh("ip link add veth0 address 02:00:00:00:01:01 type veth peer name veth1 "
	       "address 02:00:00:00:02:02 netns /proc/self/fd/%d",
	       fx->ns_peer) ||
	    sh("ip addr add 198.18.0.1/24 dev veth0") ||
	    sh("ip -6 addr add 2001:db8::1/64 dev veth0 nodad") || sh("ip link set veth0 up") ||
	    sh_peer(fx, "ip link set lo up && ip addr add 198.18.0.2/24 dev veth1 && "
			"ip -6 addr add 2001:db8::2/64 dev veth1 nodad && ip link set veth1 up") ||
	    sh("ip neigh add 198.18.0.10 lladdr 02:00:00:00:00:0a dev veth0 nud permanent") ||
	    sh("ip -6 neigh add 2001:db8::10 lladdr 02:00:00:00:00:0a dev veth0 nud permanent") ||
	    sh("ip route add 198.19.5.0/24 via 198.18.0.10") ||
	    sh("ip -6 route add 2001:db8:5::/64 via 2001:db8::10") ||
	    sh("ip route add 198.19.9.0/24 via inet6 2001:db8::10 dev veth0") ||
	    sh("ip route add blackhole 198.19.7.0/24") ||
	    sh("ip -6 route add unreachable 2001:db8:7::/64"))
		return -1;

	if (nl_open(&fx->nl) < 0 || wait_running(fx, "veth0") < 0)
		return -1;
	if (nl_link_get(fx->nl, "veth0", &l) < 0)
		return -1;
	fx->veth0 = l.ifindex;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *fx = *state;

	nl_close(fx->nl);
	if (fx->ns_peer >= 0)
		close(fx->ns_peer);
	if (fx->ns_main >= 0)
		close(fx->ns_main);
	free(fx);
	return 0;
}

/* The fixture, or a skipped test when the namespaces could not be made. */
static struct fixture *fixture_of(void **state)
{
	struct fixture *fx = *state;

	if (fx->skip)
		skip();
	return fx;
}

/* --- links ---------------------------------------------------------------- */

static void test_link_get(void **state)
{
	struct fixture *fx = fixture_of(state);
	struct nl_link l, m;

	assert_int_equal(nl_link_get(fx->nl, "veth0", &l), 0);
	assert_true(l.ifindex > 0);
	assert_string_equal(l.name, "veth0");
	assert_memory_equal(l.mac, mac_veth0, 6);
	assert_true(l.up);
	assert_true(l.running);
	assert_int_equal(l.mtu, 1500);
	assert_int_equal(l.type, ARPHRD_ETHER);

	assert_int_equal(nl_link_by_index(fx->nl, l.ifindex, &m), 0);
	assert_string_equal(m.name, "veth0");
	assert_memory_equal(m.mac, mac_veth0, 6);

	assert_int_equal(nl_link_get(fx->nl, "lo", &m), 0);
	assert_int_equal(m.type, ARPHRD_LOOPBACK);

	assert_int_equal(nl_link_get(fx->nl, "nosuch0", &m), -ENODEV);
	assert_int_equal(nl_link_by_index(fx->nl, 999999, &m), -ENODEV);
	assert_int_equal(nl_link_get(fx->nl, "a-name-too-long-for-linux", &m), -EINVAL);
	assert_int_equal(nl_link_get(fx->nl, "", &m), -EINVAL);
	assert_int_equal(nl_link_by_index(fx->nl, 0, &m), -EINVAL);
}

/* What attach = auto goes by: the kind, the parent device, IFF_LOOPBACK. */
static void test_link_kind(void **state)
{
	struct fixture *fx = fixture_of(state);
	struct rec rec;
	struct nl_link l;

	assert_int_equal(nl_link_get(fx->nl, "veth0", &l), 0);
	assert_string_equal(l.kind, "veth");
	assert_string_equal(l.parent, "");
	assert_false(l.loopback);
	assert_string_equal(iface_virtual(&l), "veth");

	assert_int_equal(nl_link_get(fx->nl, "lo", &l), 0);
	assert_string_equal(l.kind, "");
	assert_string_equal(l.parent, "");
	assert_true(l.loopback);
	assert_string_equal(iface_virtual(&l), "loopback");

	SH("ip link add shbr0 type bridge");
	assert_int_equal(nl_link_get(fx->nl, "shbr0", &l), 0);
	assert_string_equal(l.kind, "bridge");
	assert_string_equal(l.parent, "");
	assert_string_equal(iface_virtual(&l), "bridge");
	assert_int_equal(nl_link_by_index(fx->nl, l.ifindex, &l), 0);
	assert_string_equal(l.kind, "bridge");
	SH("ip link del shbr0");
	drain(fx->nl, &rec);
}

/*
 * The NICs of the namespace this test started in, read-only: every interface
 * that /sys shows a device for (when /sys is that namespace's: same ifindex)
 * has a parent and is no virtual interface. Skipped without one.
 */
static void test_link_nic(void **state)
{
	struct nl_ctx *nl;
	struct dirent *de;
	int nics = 0;
	DIR *d;

	(void)state;
	if (nl_open(&nl) < 0)
		skip();
	d = opendir("/sys/class/net");
	if (!d) {
		nl_close(nl);
		skip();
	}
	while ((de = readdir(d))) {
		char path[512];
		struct nl_link l;
		FILE *f;
		int ifindex = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%s/device", de->d_name);
		if (access(path, F_OK))
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%s/ifindex", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%d", &ifindex) != 1)
			ifindex = 0;
		fclose(f);
		/* Gone since, or another namespace's /sys. */
		if (nl_link_get(nl, de->d_name, &l) || l.ifindex != ifindex)
			continue;
		print_message("%s: parent %s, kind '%s'\n", l.name, l.parent, l.kind);
		assert_string_not_equal(l.parent, "");
		assert_null(iface_virtual(&l));
		nics++;
	}
	closedir(d);
	nl_close(nl);
	if (!nics)
		skip();
}

/* --- next hops ------------------------------------------------------------ */

struct nh_case {
	const char *desc;
	__u8 family;
	const char *dst;
	int err;
	bool via_gw;
	const char *gw; /* neighbour address expected; NULL: dst */
	__u8 gw_family; /* 0: family */
	const __u8 *dmac; /* when err == 0 */
};

static const struct nh_case nh_cases[] = {
	{ "v4 on-link, permanent neighbour", AF_INET, "198.18.0.10", 0, false, NULL, 0,
	  mac_static },
	{ "v4 via gateway", AF_INET, "198.19.5.7", 0, true, "198.18.0.10", 0, mac_static },
	{ "v4 via v6 gateway", AF_INET, "198.19.9.7", 0, true, "2001:db8::10", AF_INET6,
	  mac_static },
	{ "v4 on-link, unknown neighbour", AF_INET, "198.18.0.99", -EAGAIN, false, NULL, 0, NULL },
	{ "v4 no route", AF_INET, "198.19.200.1", -ENETUNREACH },
	{ "v4 blackhole route", AF_INET, "198.19.7.1", -ENETUNREACH },
	{ "v4 local address", AF_INET, "198.18.0.1", -ENETUNREACH },
	{ "v6 on-link, permanent neighbour", AF_INET6, "2001:db8::10", 0, false, NULL, 0,
	  mac_static },
	{ "v6 via gateway", AF_INET6, "2001:db8:5::7", 0, true, "2001:db8::10", 0, mac_static },
	{ "v6 on-link, unknown neighbour", AF_INET6, "2001:db8::99", -EAGAIN, false, NULL, 0,
	  NULL },
	{ "v6 no route", AF_INET6, "2001:db9::1", -ENETUNREACH },
	{ "v6 unreachable route", AF_INET6, "2001:db8:7::1", -ENETUNREACH },
};

static void check_nexthop(struct fixture *fx, const struct nh_case *c)
{
	__u8 gw_family = c->gw_family ? c->gw_family : c->family;
	struct nl_nexthop nh;
	__u32 dst[4], gw[4];
	int err;

	parse_addr(c->family, c->dst, dst);
	parse_addr(gw_family, c->gw ? c->gw : c->dst, gw);
	err = nl_nexthop(fx->nl, c->family, dst, &nh);
	if (err != c->err)
		fail_msg("%s: nl_nexthop(%s) = %d (%s), want %d", c->desc, c->dst, err,
			 strerror(-err), c->err);
	if (err == -ENETUNREACH)
		return;
	if (nh.ifindex != fx->veth0 || nh.via_gw != c->via_gw || nh.gw_family != gw_family ||
	    memcmp(nh.gw, gw, sizeof(gw)) || memcmp(nh.smac, mac_veth0, 6))
		fail_msg("%s: ifindex %d via_gw %d gw_family %u: wrong next hop", c->desc,
			 nh.ifindex, nh.via_gw, nh.gw_family);
	if (nh.resolved != !err)
		fail_msg("%s: resolved %d with status %d", c->desc, nh.resolved, err);
	if (!err && memcmp(nh.dmac, c->dmac, 6))
		fail_msg("%s: wrong neighbour MAC", c->desc);
}

static void run_nexthop_cases(void **state, __u8 family)
{
	struct fixture *fx = fixture_of(state);
	size_t i;

	for (i = 0; i < sizeof(nh_cases) / sizeof(nh_cases[0]); i++)
		if (nh_cases[i].family == family)
			check_nexthop(fx, &nh_cases[i]);
}

static void test_nexthop_ipv4(void **state)
{
	run_nexthop_cases(state, AF_INET);
}

static void test_nexthop_ipv6(void **state)
{
	struct fixture *fx = fixture_of(state);
	const __u32 any[4] = { 0 };
	struct nl_nexthop nh;

	run_nexthop_cases(state, AF_INET6);
	assert_int_equal(nl_nexthop(fx->nl, 7, any, &nh), -EAFNOSUPPORT);
}

/* --- neighbour probes ----------------------------------------------------- */

/* An unknown neighbour that answers is resolved, reported, then usable. */
static void probe_resolves(struct fixture *fx, __u8 family, const char *peer)
{
	struct ev want = { .family = family, .usable = true };
	struct nl_nexthop nh;
	const struct ev *e;
	struct rec rec, *r = &rec;

	parse_addr(family, peer, want.addr);
	assert_int_equal(nl_nexthop(fx->nl, family, want.addr, &nh), -EAGAIN);
	drain(fx->nl, r);
	assert_int_equal(nl_neigh_probe(fx->nl, fx->veth0, family, want.addr), 0);
	e = wait_for(fx->nl, r, match_neigh, &want);
	assert_non_null(e);
	assert_int_equal(e->ifindex, fx->veth0);
	assert_memory_equal(e->mac, mac_veth1, 6);
	assert_int_equal(nl_nexthop(fx->nl, family, want.addr, &nh), 0);
	assert_memory_equal(nh.dmac, mac_veth1, 6);
	/* Already reachable: nothing to do, still fine. */
	assert_int_equal(nl_neigh_probe(fx->nl, fx->veth0, family, want.addr), 0);
	assert_int_equal(nl_nexthop(fx->nl, family, want.addr, &nh), 0);
}

static void test_neigh_probe_resolves_ipv4(void **state)
{
	probe_resolves(fixture_of(state), AF_INET, "198.18.0.2");
}

static void test_neigh_probe_resolves_ipv6(void **state)
{
	probe_resolves(fixture_of(state), AF_INET6, "2001:db8::2");
}

/* Nobody home: the kernel is soliciting (INCOMPLETE), the next hop stays unresolved. */
static void test_neigh_probe_absent(void **state)
{
	struct fixture *fx = fixture_of(state);
	struct nl_nexthop nh;
	__u32 a[4];

	parse_addr(AF_INET, "198.18.0.98", a);
	assert_int_equal(nl_neigh_probe(fx->nl, fx->veth0, AF_INET, a), 0);
	SH("ip neigh show 198.18.0.98 dev veth0 | grep -q INCOMPLETE");
	assert_int_equal(nl_nexthop(fx->nl, AF_INET, a, &nh), -EAGAIN);
	assert_int_equal(nh.ifindex, fx->veth0);

	parse_addr(AF_INET6, "2001:db8::98", a);
	assert_int_equal(nl_neigh_probe(fx->nl, fx->veth0, AF_INET6, a), 0);
	SH("ip -6 neigh show 2001:db8::98 dev veth0 | grep -q INCOMPLETE");
}

/* NTF_USE would demote a PERMANENT entry on Linux >= 5.16: it must be left alone. */
static void test_neigh_probe_keeps_permanent(void **state)
{
	struct fixture *fx = fixture_of(state);
	struct nl_nexthop nh;
	__u32 a[4];

	parse_addr(AF_INET, "198.18.0.10", a);
	assert_int_equal(nl_neigh_probe(fx->nl, fx->veth0, AF_INET, a), 0);
	SH("ip neigh show 198.18.0.10 dev veth0 | grep -q PERMANENT");
	assert_int_equal(nl_nexthop(fx->nl, AF_INET, a, &nh), 0);
	assert_memory_equal(nh.dmac, mac_static, 6);

	parse_addr(AF_INET6, "2001:db8::10", a);
	assert_int_equal(nl_neigh_probe(fx->nl, fx->veth0, AF_INET6, a), 0);
	SH("ip -6 neigh show 2001:db8::10 dev veth0 | grep -q PERMANENT");

	assert_int_equal(nl_neigh_probe(fx->nl, fx->veth0, 7, a), -EAFNOSUPPORT);
	assert_int_equal(nl_neigh_probe(fx->nl, 999999, AF_INET6, a), -ENODEV);
}

/* --- events --------------------------------------------------------------- */

static void test_events_link(void **state)
{
	struct fixture *fx = fixture_of(state);
	struct ev want = { .link.name = "shtest0" };
	struct rec rec, *r = &rec;
	const struct ev *e;
	int old;

	SH("ip link add shtest0 type veth peer name shtest1");
	drain(fx->nl, r);

	SH("ip link set shtest0 up");
	want.link.up = true;
	e = wait_for(fx->nl, r, match_link, &want);
	assert_non_null(e);
	old = e->ifindex;
	assert_true(old > 0);
	assert_string_equal(e->link.kind, "veth");

	drain(fx->nl, r);
	SH("ip link set shtest0 down");
	want.link.up = false;
	e = wait_for(fx->nl, r, match_link, &want);
	assert_non_null(e);
	assert_int_equal(e->ifindex, old);

	drain(fx->nl, r);
	SH("ip link del shtest0");
	want.deleted = true;
	e = wait_for(fx->nl, r, match_link, &want);
	assert_non_null(e);
	assert_int_equal(e->ifindex, old);

	/* Recreated under the same name: a new ifindex the XDP attach must follow. */
	drain(fx->nl, r);
	SH("ip link add shtest0 type veth peer name shtest1 && ip link set shtest0 up");
	want.deleted = false;
	want.link.up = true;
	e = wait_for(fx->nl, r, match_link, &want);
	assert_non_null(e);
	assert_int_not_equal(e->ifindex, old);
	SH("ip link del shtest0");
}

static void test_events_neigh(void **state)
{
	struct fixture *fx = fixture_of(state);
	struct ev want = { .family = AF_INET, .usable = true };
	struct rec rec, *r = &rec;
	const __u8 mac[6] = { 0x02, 0, 0, 0, 0, 0x14 };
	const struct ev *e;

	parse_addr(AF_INET, "198.18.0.20", want.addr);
	drain(fx->nl, r);
	SH("ip neigh add 198.18.0.20 lladdr 02:00:00:00:00:14 dev veth0 nud permanent");
	e = wait_for(fx->nl, r, match_neigh, &want);
	assert_non_null(e);
	assert_int_equal(e->ifindex, fx->veth0);
	assert_memory_equal(e->mac, mac, 6);

	drain(fx->nl, r);
	SH("ip neigh del 198.18.0.20 dev veth0");
	want.usable = false;
	assert_non_null(wait_for(fx->nl, r, match_neigh, &want));
}

/* Route changes arrive coalesced: at most one callback per nl_dispatch. */
static void test_events_route(void **state)
{
	struct fixture *fx = fixture_of(state);
	struct rec rec, *r = &rec;
	int i;

	drain(fx->nl, r);
	SH("for i in $(seq 1 50); do echo route add 198.19.6.$i/32 via 198.18.0.10; done "
	   "| ip -batch -");
	/* Read until the socket stays quiet (bounded: 200 routes at most). */
	for (i = 0; i < 1000 && pump(fx->nl, r, 300); i++)
		;
	assert_true(r->route_calls >= 1);
	assert_true(r->route_calls <= r->dispatches);
	assert_int_equal(r->resync_calls, 0);
	/* 50 prefixes do not fit one call's list: "all" (or all of them named). */
	assert_true(r->route_all || r->n_routes >= 50);
	SH("ip route flush 198.19.6.0/24");
}

/* A few route changes name their destinations, so that only the backends
 * inside them are looked up again. */
static void test_events_route_prefixes(void **state)
{
	struct fixture *fx = fixture_of(state);
	struct rec rec, *r = &rec;
	__u32 in[4] = { 0 }, out[4] = { 0 }, v6[4] = { 0 };
	int i;

	drain(fx->nl, r);
	SH("ip route add 198.19.10.0/24 via 198.18.0.10");
	SH("ip -6 route add 2001:db8:10::/48 via 2001:db8::10");
	for (i = 0; i < 20 && pump(fx->nl, r, 300); i++)
		;
	assert_false(r->route_all);
	assert_true(rec_has_route(r, AF_INET, "198.19.10.0", 24));
	assert_true(rec_has_route(r, AF_INET6, "2001:db8:10::", 48));
	assert_int_equal(inet_pton(AF_INET, "198.19.10.77", in), 1);
	assert_int_equal(inet_pton(AF_INET, "198.19.11.77", out), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:10:ffff::1", v6), 1);
	for (i = 0; i < r->n_routes; i++)
		if (r->routes[i].len == 24 && r->routes[i].family == AF_INET) {
			assert_true(nl_prefix_has(&r->routes[i], AF_INET, in));
			assert_false(nl_prefix_has(&r->routes[i], AF_INET, out));
			assert_false(nl_prefix_has(&r->routes[i], AF_INET6, v6));
		} else if (r->routes[i].len == 48) {
			assert_true(nl_prefix_has(&r->routes[i], AF_INET6, v6));
		}
	SH("ip route del 198.19.10.0/24");
	SH("ip -6 route del 2001:db8:10::/48");
}

/* An overrun event socket (ENOBUFS) asks the caller to resynchronise. */
static void test_events_overrun(void **state)
{
	struct rec rec, *r = &rec;
	struct nl_ctx *nl;
	int tiny = 1;

	fixture_of(state);
	memset(r, 0, sizeof(*r));
	assert_int_equal(nl_open(&nl), 0);
	/* The kernel rounds this up to its minimum, a few messages' worth. */
	assert_int_equal(setsockopt(nl_event_fd(nl), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny)),
			 0);
	SH("for i in $(seq 1 200); do echo route add 198.19.8.$i/32 via 198.18.0.10; done "
	   "| ip -batch -");
	assert_true(pump(nl, r, WAIT_MS));
	assert_int_equal(r->resync_calls, 1);
	/* Resync covers the routes: no separate route callback. */
	assert_int_equal(r->route_calls, 0);
	SH("ip route flush 198.19.8.0/24");
	nl_close(nl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_get),
		cmocka_unit_test(test_link_kind),
		cmocka_unit_test(test_nexthop_ipv4),
		cmocka_unit_test(test_nexthop_ipv6),
		cmocka_unit_test(test_neigh_probe_resolves_ipv4),
		cmocka_unit_test(test_neigh_probe_resolves_ipv6),
		cmocka_unit_test(test_neigh_probe_absent),
		cmocka_unit_test(test_neigh_probe_keeps_permanent),
		cmocka_unit_test(test_events_link),
		cmocka_unit_test(test_events_neigh),
		cmocka_unit_test(test_events_route),
		cmocka_unit_test(test_events_route_prefixes),
		cmocka_unit_test(test_events_overrun),
	};

	/* Before the fixture leaves the namespace this test started in. */
	const struct CMUnitTest host_tests[] = {
		cmocka_unit_test(test_link_nic),
	};
	int failed = cmocka_run_group_tests_name("host", host_tests, NULL, NULL);

	return failed + cmocka_run_group_tests(tests, group_setup, group_teardown);
}
