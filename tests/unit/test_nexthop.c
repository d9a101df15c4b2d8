// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Backend next hops (agent/datapath/nexthop.c) against a netlink of this
 * file's making, which counts the queries shiftd's loop would block on, and a
 * backend map that records writes. The clock is this file's too.
 *
 *   ifindex 2 (Ethernet, 02:..:01:02): 198.19.0.0/16 on-link,
 *     10.200.0.0/16 via 198.19.0.1, 10.200.5.0/24 via 198.19.0.2 once added
 *   backends: 10.200.0.1 .. 10.200.0.120 and 10.200.5.1 .. 10.200.5.10
 *     (blue and green of service 0, all behind 198.19.0.1 until the /24's
 *     route comes), 198.19.0.50 and .51 (on-link, service 1)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if_arp.h>
#include <cmocka.h>

#include "agent.h"
#include "datapath/netlink.h"
#include "datapath/nexthop.h"

#define MS 1000000ull

static const __u8 mac_edge[6] = { 0x02, 0, 0, 0, 0x01, 0x02 };
static const __u8 mac_gw1[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const __u8 mac_gw1b[6] = { 0x02, 0, 0, 0, 0xb0, 0x01 };
static const __u8 mac_gw2[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const __u8 mac_on50[6] = { 0x02, 0, 0, 0, 0, 0x50 };

/* --- the clock ------------------------------------------------------------------------ */

static __u64 mono = 1000 * MS;
/* Each fake query takes this long, so that slices can be seen to end. */
static __u64 query_ns;

__u64 now_mono_ns(void)
{
	return mono;
}

__u64 now_unix_ns(void)
{
	return mono + 1800000000ull * 1000000000ull;
}

/* --- the netlink of this file ----------------------------------------------------------- */

struct froute {
	const char *prefix;
	__u8 len;
	const char *gw; /* NULL: on-link */
};

static struct froute routes[8];
static int n_routes;

struct fneigh {
	const char *addr;
	__u8 mac[6];
	bool usable;
};

static struct fneigh neighs[8];
static int n_neighs;
static __u8 link_mac[6];
static unsigned q_route, q_link, q_neigh, q_probe;

static __u32 ip4(const char *s)
{
	__u32 a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static bool in4(__u32 a, const char *prefix, __u8 len)
{
	__u32 mask = len ? htonl(~0u << (32 - len)) : 0;

	return (a & mask) == (ip4(prefix) & mask);
}

int nl_route_nexthop(struct nl_ctx *nl, __u8 family, const __u32 addr[4], struct nl_nexthop *out)
{
	const struct froute *best = NULL;
	int i;

	(void)nl;
	q_route++;
	mono += query_ns;
	memset(out, 0, sizeof(*out));
	assert_int_equal(family, AF_INET);
	for (i = 0; i < n_routes; i++)
		if (in4(addr[0], routes[i].prefix, routes[i].len) &&
		    (!best || routes[i].len > best->len))
			best = &routes[i];
	if (!best)
		return -ENETUNREACH;
	out->ifindex = 2;
	out->gw_family = AF_INET;
	out->via_gw = best->gw != NULL;
	out->gw[0] = best->gw ? ip4(best->gw) : addr[0];
	return 0;
}

int nl_link_by_index(struct nl_ctx *nl, int ifindex, struct nl_link *out)
{
	(void)nl;
	q_link++;
	mono += query_ns;
	if (ifindex != 2)
		return -ENODEV;
	memset(out, 0, sizeof(*out));
	out->ifindex = 2;
	out->type = ARPHRD_ETHER;
	out->up = out->running = true;
	memcpy(out->mac, link_mac, 6);
	return 0;
}

static struct fneigh *fneigh_find(__u32 a)
{
	int i;

	for (i = 0; i < n_neighs; i++)
		if (ip4(neighs[i].addr) == a)
			return &neighs[i];
	return NULL;
}

int nl_neigh_lookup(struct nl_ctx *nl, int ifindex, __u8 family, const __u32 addr[4], __u8 mac[6])
{
	struct fneigh *n = fneigh_find(addr[0]);

	(void)nl;
	q_neigh++;
	mono += query_ns;
	assert_int_equal(ifindex, 2);
	assert_int_equal(family, AF_INET);
	if (!n || !n->usable)
		return -EAGAIN;
	memcpy(mac, n->mac, 6);
	return 0;
}

int nl_neigh_probe(struct nl_ctx *nl, int ifindex, __u8 family, const __u32 addr[4])
{
	(void)nl, (void)ifindex, (void)family, (void)addr;
	q_probe++;
	return 0;
}

static unsigned queries(void)
{
	return q_route + q_link + q_neigh + q_probe;
}

static void queries_reset(void)
{
	q_route = q_link = q_neigh = q_probe = 0;
}

/* --- the backend map ------------------------------------------------------------------ */

static struct shift_backend map[SHIFT_MAX_BACKENDS];
static unsigned map_puts;

int dp_backend_put(const struct shift_maps *m, __u32 id, const struct shift_backend *be, __u8 proto)
{
	(void)m, (void)proto;
	assert_true(id < SHIFT_MAX_BACKENDS);
	map[id] = *be;
	map_puts++;
	return 0;
}

/* --- the agent -------------------------------------------------------------------------- */

#define N_GW1 120 /* 10.200.0.x */
#define N_GW2 10 /* 10.200.5.x */

static struct agent *ag;

static void backend_add(struct service_rt *s, int color, const char *addr, __u32 id)
{
	struct backend_rt *b = &s->pool[color][s->n[color]++];

	memset(b, 0, sizeof(*b));
	b->addr.family = AF_INET;
	b->addr.addr[0] = ip4(addr);
	b->addr.port = htons(8080);
	b->addr.proto = 6;
	b->id = id;
	b->hc_fd = -1;
	b->entry.family = AF_INET;
	b->entry.addr[0] = b->addr.addr[0];
	b->entry.flags = SHIFT_BE_F_ACTIVE;
}

static void world(void)
{
	memset(routes, 0, sizeof(routes));
	memset(neighs, 0, sizeof(neighs));
	routes[0] = (struct froute){ "198.19.0.0", 16, NULL };
	routes[1] = (struct froute){ "10.200.0.0", 16, "198.19.0.1" };
	n_routes = 2;
	neighs[0] = (struct fneigh){ "198.19.0.1", { 0 }, true };
	memcpy(neighs[0].mac, mac_gw1, 6);
	neighs[1] = (struct fneigh){ "198.19.0.2", { 0 }, true };
	memcpy(neighs[1].mac, mac_gw2, 6);
	neighs[2] = (struct fneigh){ "198.19.0.50", { 0 }, true };
	memcpy(neighs[2].mac, mac_on50, 6);
	/* 198.19.0.51: no entry yet */
	n_neighs = 3;
	memcpy(link_mac, mac_edge, 6);
	query_ns = 0;
}

/* The agent above, netlink's answers as world() says (with the route to
 * 10.200.5.0/24 already there: gw2); next hops not looked up yet. */
static void agent_up(bool gw2)
{
	struct service_rt *s0, *s1;
	char a[32];
	__u32 id = 0;
	int i;

	world();
	if (gw2)
		routes[n_routes++] = (struct froute){ "10.200.5.0", 24, "198.19.0.2" };
	memset(map, 0, sizeof(map));
	ag = calloc(1, sizeof(*ag));
	s0 = calloc(1, sizeof(*s0));
	s1 = calloc(1, sizeof(*s1));
	assert_true(ag && s0 && s1);
	s1->id = 1;
	for (i = 1; i <= N_GW1; i++) {
		snprintf(a, sizeof(a), "10.200.0.%d", i);
		backend_add(s0, i % 2 ? SHIFT_BLUE : SHIFT_GREEN, a, id++);
	}
	for (i = 1; i <= N_GW2; i++) {
		snprintf(a, sizeof(a), "10.200.5.%d", i);
		backend_add(s0, SHIFT_BLUE, a, id++);
	}
	backend_add(s1, SHIFT_BLUE, "198.19.0.50", id++);
	backend_add(s1, SHIFT_BLUE, "198.19.0.51", id++);
	ag->svc[0] = s0;
	ag->svc[1] = s1;
	ag->nl = (struct nl_ctx *)ag; /* never dereferenced: the fakes above */
	assert_int_equal(nexthops_init(ag), 0);
	queries_reset();
	map_puts = 0;
}

/* Up, every backend looked up (as shiftd's start does), the counts reset. */
static int setup(void **state)
{
	(void)state;
	agent_up(false);
	nexthops_drain(ag);
	queries_reset();
	map_puts = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nexthops_free(ag);
	free(ag->svc[0]);
	free(ag->svc[1]);
	free(ag);
	return 0;
}

/* Backend id's map entry: valid, with that MAC? */
static bool entry_is(__u32 id, const __u8 *dmac)
{
	const struct shift_backend *e = &map[id];

	if (!dmac)
		return !(e->flags & SHIFT_BE_F_NH_VALID);
	return e->flags & SHIFT_BE_F_NH_VALID && e->nh_ifindex == 2 &&
	       !memcmp(e->nh_dmac, dmac, 6) && !memcmp(e->nh_smac, link_mac, 6);
}

#define ID_GW2(i) (N_GW1 + (i))
#define ID_ON50 (N_GW1 + N_GW2)
#define ID_ON51 (N_GW1 + N_GW2 + 1)

/* --- the tests ---------------------------------------------------------------------------- */

/*
 * A pass over every backend asks each distinct gateway's neighbour once and
 * the egress link once: 132 backends cost 132 route queries + 1 link + 4
 * neighbour queries (two gateways, two on-link) + 1 probe, not 3 x 132.
 */
static void test_pass_asks_each_gateway_once(void **state)
{
	__u32 i;

	(void)state;
	agent_up(true);
	nexthops_drain(ag);
	assert_int_equal(q_route, N_GW1 + N_GW2 + 2);
	assert_int_equal(q_link, 1);
	assert_int_equal(q_neigh, 4);
	assert_int_equal(q_probe, 1); /* 198.19.0.51: the kernel is asked to resolve it */
	for (i = 0; i < N_GW1; i++)
		assert_true(entry_is(i, mac_gw1));
	for (i = 0; i < N_GW2; i++)
		assert_true(entry_is(ID_GW2(i), mac_gw2));
	assert_true(entry_is(ID_ON50, mac_on50));
	assert_true(entry_is(ID_ON51, NULL));
	assert_false(nexthops_pending(ag));
}

/* A neighbour event for an address no backend resolves through: nothing. */
static void test_unrelated_neighbour_costs_nothing(void **state)
{
	__u32 other = ip4("198.19.0.99"), a4[4] = { 0 };
	static const __u8 m[6] = { 2, 0, 0, 0, 0, 0x99 };
	int i;

	(void)state;
	a4[0] = other;
	for (i = 0; i < 1000; i++) {
		nexthops_neigh(ag, 2, AF_INET, a4, m, i % 2);
		/* The same address as a gateway's, on another link: not it. */
		a4[0] = ip4("198.19.0.1");
		nexthops_neigh(ag, 3, AF_INET, a4, m, true);
		a4[0] = other;
	}
	nexthops_tick(ag);
	assert_int_equal(queries(), 0);
	assert_int_equal(map_puts, 0);
	assert_false(nexthops_pending(ag));
}

/*
 * The gateway's MAC changes: every backend behind it takes the new MAC at
 * once, from the event, without a query; the others are not touched.
 */
static void test_gateway_mac_change(void **state)
{
	__u32 gw[4] = { ip4("198.19.0.1") };
	__u32 i;

	(void)state;
	nexthops_neigh(ag, 2, AF_INET, gw, mac_gw1b, true);
	assert_int_equal(queries(), 0);
	assert_int_equal(map_puts, N_GW1 + N_GW2);
	for (i = 0; i < N_GW1 + N_GW2; i++)
		assert_true(entry_is(i, mac_gw1b));
	assert_true(entry_is(ID_ON50, mac_on50));
	assert_int_equal(ag->nh_stats.from_events, N_GW1 + N_GW2);

	/* Gone (deleted, failed): to the kernel's FIB, and one probe for all. */
	nexthops_neigh(ag, 2, AF_INET, gw, (const __u8[6]){ 0 }, false);
	assert_int_equal(q_probe, 1);
	assert_int_equal(queries(), 1);
	for (i = 0; i < N_GW1 + N_GW2; i++)
		assert_true(entry_is(i, NULL));
	/* Resolved again. */
	nexthops_neigh(ag, 2, AF_INET, gw, mac_gw1, true);
	for (i = 0; i < N_GW1 + N_GW2; i++)
		assert_true(entry_is(i, mac_gw1));
	assert_int_equal(queries(), 1);
}

/* An on-link backend's own entry resolves: that backend alone. */
static void test_on_link_resolves(void **state)
{
	__u32 a51[4] = { ip4("198.19.0.51") };
	static const __u8 m[6] = { 2, 0, 0, 0, 0, 0x51 };

	(void)state;
	nexthops_neigh(ag, 2, AF_INET, a51, m, true);
	assert_int_equal(map_puts, 1);
	assert_true(entry_is(ID_ON51, m));
	assert_int_equal(queries(), 0);
}

/*
 * A route for 10.200.5.0/24: the ten backends inside it are looked up again
 * (ten route queries; the new gateway's neighbour once, the link not at all),
 * from the loop's queue; the other 122 are not.
 */
static void test_route_change_concerns_its_prefix(void **state)
{
	struct nl_route_change c = { .n = 1 };
	__u32 i;

	(void)state;
	routes[2] = (struct froute){ "10.200.5.0", 24, "198.19.0.2" };
	n_routes = 3;
	c.p[0].family = AF_INET;
	c.p[0].len = 24;
	c.p[0].addr[0] = ip4("10.200.5.0");
	nexthops_route(ag, &c);
	assert_int_equal(queries(), 0); /* nothing in the callback itself */
	assert_true(nexthops_pending(ag));
	nexthops_work(ag, (__u64)-1);
	assert_false(nexthops_pending(ag));
	assert_int_equal(q_route, N_GW2);
	assert_int_equal(q_link, 0);
	assert_int_equal(q_neigh, 1);
	for (i = 0; i < N_GW2; i++)
		assert_true(entry_is(ID_GW2(i), mac_gw2));
	for (i = 0; i < N_GW1; i++)
		assert_true(entry_is(i, mac_gw1));
	/* And now the gateway's events reach them. */
	queries_reset();
	c.p[0].addr[0] = ip4("198.19.0.2");
	c.p[0].len = 32;
	/* A host route to that gateway concerns the backends behind it. */
	nexthops_route(ag, &c);
	nexthops_work(ag, (__u64)-1);
	assert_int_equal(q_route, N_GW2);
}

/*
 * A default route changes (or too many routes at once): every backend, but
 * NH_DEBOUNCE_NS later, once for a burst, and a slice at a time: each turn of
 * the loop makes lookups for about NH_SLICE_NS, no more.
 */
static void test_full_pass_debounced_and_sliced(void **state)
{
	struct nl_route_change dflt = { .n = 1 }, many = { .all = true };
	unsigned slices = 0, last = 0;
	int i;

	(void)state;
	dflt.p[0].family = AF_INET; /* 0.0.0.0/0 */
	for (i = 0; i < 50; i++) {
		nexthops_route(ag, i % 2 ? &dflt : &many);
		mono += 1 * MS;
		nexthops_tick(ag);
	}
	assert_false(nexthops_pending(ag));
	assert_int_equal(queries(), 0);
	mono += NH_DEBOUNCE_NS;
	nexthops_tick(ag);
	assert_true(nexthops_pending(ag));
	query_ns = 50 * 1000; /* 50 us a query */
	while (nexthops_pending(ag) && slices < 10000) {
		__u64 t0 = mono;

		nexthops_work(ag, NH_SLICE_NS);
		/* A slice ends once past its budget: by one lookup at most. */
		assert_true(mono - t0 < NH_SLICE_NS + 3 * query_ns);
		assert_true(q_route > last);
		last = q_route;
		slices++;
	}
	assert_false(nexthops_pending(ag));
	/* One pass for the whole burst. */
	assert_int_equal(q_route, N_GW1 + N_GW2 + 2);
	assert_true(slices > 10);
}

/* Link events: another link, or nothing that matters changed: nothing; the
 * egress link's MAC changes: its backends are looked up with the new one. */
static void test_link_events(void **state)
{
	struct nl_link l = { .ifindex = 7, .type = ARPHRD_ETHER, .up = true, .running = true };
	static const __u8 newmac[6] = { 0x02, 0, 0, 0, 0x0e, 0x0e };
	__u32 i;

	(void)state;
	nexthops_link(ag, &l, false);
	nexthops_link(ag, &l, true);
	l.ifindex = 2;
	memcpy(l.mac, mac_edge, 6);
	nexthops_link(ag, &l, false);
	assert_false(nexthops_pending(ag));
	assert_int_equal(queries(), 0);

	memcpy(link_mac, newmac, 6);
	memcpy(l.mac, newmac, 6);
	nexthops_link(ag, &l, false);
	assert_true(nexthops_pending(ag));
	nexthops_work(ag, (__u64)-1);
	assert_int_equal(q_link, 1);
	for (i = 0; i < N_GW1; i++)
		assert_true(entry_is(i, mac_gw1)); /* checks the new source MAC too */
}

/* A reload removed backends with lookups queued: those are dropped, the new
 * backend in a freed slot is looked up. */
static void test_reload_between(void **state)
{
	struct nl_route_change many = { .all = true };
	struct service_rt *s1 = ag->svc[1];

	(void)state;
	nexthops_route(ag, &many);
	mono += NH_DEBOUNCE_NS;
	nexthops_tick(ag);
	assert_true(nexthops_pending(ag));
	/* Service 0 goes, service 1 gets a backend in one of its slots. */
	free(ag->svc[0]);
	ag->svc[0] = NULL;
	backend_add(s1, SHIFT_GREEN, "198.19.0.50", 7);
	ag->nexthops_dirty = true;
	nexthops_work(ag, (__u64)-1);
	assert_false(nexthops_pending(ag));
	assert_int_equal(q_route, 3);
	assert_true(entry_is(7, mac_on50));
	ag->svc[0] = calloc(1, sizeof(struct service_rt)); /* for teardown */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pass_asks_each_gateway_once, teardown),
		cmocka_unit_test_setup_teardown(test_unrelated_neighbour_costs_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gateway_mac_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_link_resolves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_change_concerns_its_prefix, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_pass_debounced_and_sliced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_link_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_between, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
