// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The connection table's key has no protocol field (include/shift/maps.h): a
 * UDP flow's key holds its VIP word complemented (an IPv6 VIP folded to one
 * word first, shift_flow_vip6()). A TCP and a
 * UDP service on one VIP and port (HTTPS and QUIC), one client address and
 * port talking to both: two entries, each following its own service's
 * backend, and each protocol's packets keep going where their entry says.
 * XDP and TC, v4 and v6.
 */
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "table.h"
#include "shift.skel.h"

#pragma GCC diagnostic ignored "-Woverride-init"

/* UDP twins of SVC_V4_TCP (10.0.0.10:80) and SVC_V6_TCP ([2001:db8::10]:443). */
enum { SVC_V4_UDP80 = SVC_TOPO_COUNT, SVC_V6_UDP443 };

static const struct topo_service udp_svc[] = {
	{ SVC_V4_UDP80, 4, IPPROTO_UDP, VIP4, 80, 0 },
	{ SVC_V6_UDP443, 6, IPPROTO_UDP, VIP6, 443, 0 },
};

static const struct topo_backend udp_be[] = {
	{ .id = 30,
	  .svc = SVC_V4_UDP80,
	  .color = SHIFT_BLUE,
	  .family = 4,
	  .proto = IPPROTO_UDP,
	  .addr = { 10, 1, 0, 30 },
	  .port = 5353,
	  .nh = true,
	  .mac = { 0x02, 0xbe, 0x00, 0x00, 0x00, 30 } },
	{ .id = 31,
	  .svc = SVC_V6_UDP443,
	  .color = SHIFT_BLUE,
	  .family = 6,
	  .proto = IPPROTO_UDP,
	  .addr = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30 },
	  .port = 5353,
	  .nh = true,
	  .mac = { 0x02, 0xbe, 0x00, 0x00, 0x00, 31 } },
};

static int twins_setup(struct tctx *t, struct fixture *f)
{
	struct harness *h = &f->h;
	__u32 i;

	if (!ASSERT_OK(t, fib_env_setup(&f->env), "veth pair for the return path") ||
	    !ASSERT_OK(t, harness_topology(h), "standard topology"))
		return -1;
	for (i = 0; i < 2; i++) {
		if (!ASSERT_OK(t, harness_add_service(h, &udp_svc[i]), "add the UDP twin") ||
		    !ASSERT_OK(t, harness_add_backend(h, &udp_be[i]), "add its backend") ||
		    !ASSERT_OK(t, harness_pool(h, udp_svc[i].id, SHIFT_BLUE, &udp_be[i].id, 1),
			       "its blue pool"))
			return -1;
	}
	return 0;
}

/* Entries of the family's table from the spec's client address and port. */
static __u32 client_entries(struct harness *h, const struct pkt_spec *s)
{
	int fd = h->m.fd[s->family == 4 ? SHIFT_MAP_FLOWS4 : SHIFT_MAP_FLOWS6];
	struct shift_flow_key6 key, next;
	__u32 n = 0, guard = 0;
	void *prev = NULL;

	while (guard++ < 1000000 && !bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (s->family == 4) {
			const struct shift_flow_key4 *k4 = (const void *)&key;

			n += !memcmp(&k4->saddr, s->saddr, 4) && k4->sport == htons(s->sport);
		} else {
			n += !memcmp(key.saddr, s->saddr, 16) && key.sport == htons(s->sport);
		}
	}
	return n;
}

static void twins_run(struct tctx *t, struct harness *h, const char *kind, int v6)
{
	/* The TCP service's backends: topo_backends[0, 1] (v4), [4, 5] (v6). */
	const struct topo_backend *tbe = &topo_backends[v6 ? 4 : 0], *ube = &udp_be[v6];
	struct pkt_spec tcp4 =
		PKT4(CL4, VIP4, IPPROTO_TCP, 47000, 80, .tcp_flags = TH_ACK, .seq = 1001);
	struct pkt_spec udp4 = PKT4(CL4, VIP4, IPPROTO_UDP, 47000, 80);
	struct pkt_spec tcp6 =
		PKT6(CL6, VIP6, IPPROTO_TCP, 47000, 443, .tcp_flags = TH_ACK, .seq = 1001);
	struct pkt_spec udp6 = PKT6(CL6, VIP6, IPPROTO_UDP, 47000, 443);
	struct pkt_spec *tcp = v6 ? &tcp6 : &tcp4, *udp = v6 ? &udp6 : &udp4;
	__u32 tsvc = v6 ? SVC_V6_TCP : SVC_V4_TCP, usvc = udp_svc[v6].id, verdict = 0, vip0;
	struct shift_flow_key4 k4;
	struct shift_flow_key6 k6;
	struct shift_flow ft, fu;
	int tidx = -1, uidx = -1, i;

	if (!test_sub(t, "%s v%d: TCP and UDP on one VIP and port, one client port: two entries",
		      kind, v6 ? 6 : 4))
		return;
	if (!ASSERT_OK(t, harness_steer(h, H_CLIENT, udp, ube, 1, &uidx, &verdict),
		       "UDP datagram") ||
	    !ASSERT_EQ(t, uidx, 0, "UDP datagram to the UDP service's backend") ||
	    !ASSERT_OK(t, harness_handshake(h, H_CLIENT, tcp, tbe, 2, &tidx), "TCP handshake") ||
	    !ASSERT_TRUE(t, tidx == 0 || tidx == 1, "TCP SYN to the TCP service's backend"))
		return;
	for (i = 0; i < 3; i++) {
		int idx = -1;

		ASSERT_OK(t, harness_steer(h, H_CLIENT, tcp, tbe, 2, &idx, &verdict), "TCP ACK");
		ASSERT_EQ(t, idx, tidx, "TCP segment to its handshake's backend");
		tcp->seq += 16;
		idx = -1;
		ASSERT_OK(t, harness_steer(h, H_CLIENT, udp, ube, 1, &idx, &verdict),
			  "UDP datagram");
		ASSERT_EQ(t, idx, 0, "UDP datagram to the UDP service's backend");
	}
	if (ASSERT_OK(t, harness_flow_get(h, tcp, &ft), "TCP entry")) {
		ASSERT_EQ(t, ft.service_id, tsvc, "TCP entry's service");
		ASSERT_EQ(t, ft.backend_id, tbe[tidx].id, "TCP entry's backend");
	}
	if (ASSERT_OK(t, harness_flow_get(h, udp, &fu), "UDP entry")) {
		ASSERT_EQ(t, fu.service_id, usvc, "UDP entry's service");
		ASSERT_EQ(t, fu.backend_id, ube->id, "UDP entry's backend");
	}
	ASSERT_EQ(t, client_entries(h, tcp), 2, "entries of the client's address and port");
	/* The layout itself: what shiftctl and the tests read back. */
	memcpy(&vip0, udp->daddr, 4);
	if (v6) {
		__u32 vip[4];

		memcpy(vip, udp->daddr, 16);
		harness_flow_key6(udp, &k6);
		ASSERT_EQ(t, k6.vip, ~shift_flow_vip6(vip), "UDP key's folded VIP, complemented");
		harness_flow_key6(tcp, &k6);
		ASSERT_EQ(t, k6.vip, shift_flow_vip6(vip), "TCP key's folded VIP, as it is");
	} else {
		harness_flow_key4(udp, &k4);
		ASSERT_EQ(t, k4.daddr, ~vip0, "UDP key's VIP, complemented");
		harness_flow_key4(tcp, &k4);
		ASSERT_EQ(t, k4.daddr, vip0, "TCP key's VIP, as it is");
	}
}

TEST(flow_key)
{
	struct fixture x = { .seed = H_SEED, .flows4 = 1024, .flows6 = 256, .setup = twins_setup };
	struct fixture c = {
		.seed = H_SEED, .flows4 = 1024, .flows6 = 256, .tc = true, .setup = twins_setup
	};
	struct fixture *fx[] = { &x, &c };
	struct harness *h;
	int i, v6;

	for (i = 0; i < 2; i++) {
		h = fixture_get(t, fx[i]);
		for (v6 = 0; h && v6 < 2; v6++)
			twins_run(t, h, i ? "tc" : "xdp", v6);
		fixture_put(fx[i]);
	}
}
