// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shift_svc_cache (bpf/maps.bpf.h): a new flow's direct-mapped guess of which
 * service VIP:port/proto is. The datapath fills it from shift_services and
 * must never act on a guess that is wrong: a slot naming another service (the
 * same VIP on another port and protocol), a service removed since, or a
 * packet to a VIP port no service has costs the hash lookup and changes
 * nothing else. XDP and TC.
 */
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "table.h"
#include "shift.skel.h"

#pragma GCC diagnostic ignored "-Woverride-init"

/* Write v into every slot. */
static bool svc_cache_fill(struct tctx *t, struct harness *h, __u32 v)
{
	return ASSERT_OK(t, harness_array_fill(h->skel->maps.shift_svc_cache, v),
			 "write every cache slot");
}

/* How many slots hold v. */
static __u32 svc_cache_count(struct harness *h, __u32 v)
{
	return harness_array_count(h->skel->maps.shift_svc_cache, v);
}

/* Which of SVC_V4_TCP's backends (0 blue, 1 green) s went to: 0 or 1, -1 when
 * it passed unchanged, -2 otherwise (a failure is recorded). One run: a SYN
 * run twice would be its own retransmit. */
static int steer(struct tctx *t, struct harness *h, const struct pkt_spec *s)
{
	__u32 verdict = 0;
	bool same = false;
	int idx = -1;

	if (!ASSERT_OK(t, harness_steer_io(h, H_CLIENT, s, topo_backends, 2, &idx, &verdict, &same),
		       "BPF_PROG_TEST_RUN, output verifies"))
		return -2;
	if (verdict == harness_expect(h, XDP_PASS))
		return ASSERT_TRUE(t, same, "passed unchanged") ? -1 : -2;
	if (!ASSERT_TRUE(t, idx == 0 || idx == 1, "DNAT to a backend of 10.0.0.10:80/tcp"))
		return -2;
	return idx;
}

static void svc_cache_run(struct tctx *t, struct fixture *f, const char *kind)
{
	struct pkt_spec syn = PKT4(CL4, VIP4, IPPROTO_TCP, 47000, 80, .payload = 0);
	struct pkt_spec syn81 = PKT4(CL4, VIP4, IPPROTO_TCP, 47001, 81, .payload = 0);
	struct pkt_spec udp80 = PKT4(CL4, VIP4, IPPROTO_UDP, 47002, 80);
	const struct topo_service *tcp = &topo_services[SVC_V4_TCP];
	struct harness *h = fixture_get(t, f);
	struct shift_addr_key k;

	if (!h)
		return;
	if (test_sub(t, "%s: a SYN fills one slot with its service, the next is answered by it",
		     kind) &&
	    svc_cache_fill(t, h, ~0u)) {
		ASSERT_TRUE(t, steer(t, h, &syn) >= 0, "first SYN steered");
		ASSERT_EQ(t, svc_cache_count(h, SVC_V4_TCP), 1, "slots naming SVC_V4_TCP");
		syn.sport++;
		ASSERT_TRUE(t, steer(t, h, &syn) >= 0, "second SYN steered");
		ASSERT_EQ(t, svc_cache_count(h, SVC_V4_TCP), 1, "slots naming SVC_V4_TCP");
	}
	/* The same VIP's UDP service: only port and protocol tell them apart. */
	if (test_sub(t, "%s: every slot naming 10.0.0.10:53/udp, a SYN to :80 is :80/tcp's",
		     kind) &&
	    svc_cache_fill(t, h, SVC_V4_UDP)) {
		syn.sport++;
		ASSERT_TRUE(t, steer(t, h, &syn) >= 0, "SYN steered to a backend of :80/tcp");
		ASSERT_EQ(t, svc_cache_count(h, SVC_V4_TCP), 1, "its slot now names SVC_V4_TCP");
	}
	if (test_sub(t, "%s: every slot naming :80/tcp, :81/tcp and :80/udp pass", kind) &&
	    svc_cache_fill(t, h, SVC_V4_TCP)) {
		ASSERT_EQ(t, steer(t, h, &syn81), -1, "SYN to :81");
		ASSERT_EQ(t, steer(t, h, &udp80), -1, "UDP to :80");
		ASSERT_EQ(t, svc_cache_count(h, SVC_V4_TCP),
			  bpf_map__max_entries(h->skel->maps.shift_svc_cache), "no slot changed");
	}
	if (test_sub(t, "%s: a removed service's slot is not trusted; re-added, it is", kind) &&
	    svc_cache_fill(t, h, SVC_V4_TCP)) {
		harness_service_key(tcp, &k);
		if (ASSERT_OK(t, dp_service_del(&h->m, SVC_V4_TCP, &k),
			      "remove 10.0.0.10:80/tcp")) {
			syn.sport++;
			ASSERT_EQ(t, steer(t, h, &syn), -1, "SYN to the removed service");
			ASSERT_OK(t, harness_add_service(h, tcp), "re-add 10.0.0.10:80/tcp");
		}
		syn.sport++;
		ASSERT_TRUE(t, steer(t, h, &syn) >= 0, "SYN to the re-added service steered");
	}
	/* A hit needs no hash lookup: with the services entry gone behind the
	 * agent's back and the info still live, only a slot can steer the SYN. */
	if (test_sub(t, "%s: a slot naming a live service answers alone, v4 and v6", kind)) {
		const struct topo_service *v6 = &topo_services[SVC_V6_TCP];
		struct pkt_spec syn6 = PKT6(CL6, VIP6, IPPROTO_TCP, 47300, 443, .payload = 0);
		int sfd = bpf_map__fd(h->skel->maps.shift_services);
		struct shift_addr_key k6;
		struct shift_service sv;
		/* SVC_V6_TCP's blue and green backends (topo_backends[4], [5]). */
		const struct topo_backend *be6 = &topo_backends[4];
		__u32 verdict = 0;
		int idx;

		harness_service_key(tcp, &k);
		harness_service_key(v6, &k6);
		syn.sport++;
		ASSERT_TRUE(t, steer(t, h, &syn) >= 0, "v4 SYN steered (fills its slot)");
		ASSERT_OK(t, harness_steer(h, H_CLIENT, &syn6, be6, 2, &idx, &verdict), "v6 SYN");
		ASSERT_TRUE(t, idx >= 0, "v6 SYN steered (fills its slot)");
		if (ASSERT_OK(t, bpf_map_delete_elem(sfd, &k), "drop the v4 services entry") &&
		    ASSERT_OK(t, bpf_map_delete_elem(sfd, &k6), "drop the v6 services entry")) {
			syn.sport++;
			ASSERT_TRUE(t, steer(t, h, &syn) >= 0, "v4 SYN steered by its slot");
			syn6.sport++;
			ASSERT_OK(t, harness_steer(h, H_CLIENT, &syn6, be6, 2, &idx, &verdict),
				  "v6 SYN");
			ASSERT_TRUE(t, idx >= 0, "v6 SYN steered by its slot");
		}
		/* Back as they were (dp_service_put() would count the VIPs twice). */
		sv.id = SVC_V4_TCP;
		sv.flags = tcp->flags;
		ASSERT_OK(t, bpf_map_update_elem(sfd, &k, &sv, BPF_ANY), "restore the v4 entry");
		sv.id = SVC_V6_TCP;
		sv.flags = v6->flags;
		ASSERT_OK(t, bpf_map_update_elem(sfd, &k6, &sv, BPF_ANY), "restore the v6 entry");
	}
	/* The agent zeroes a removed service's info; the live bit alone must do too. */
	if (test_sub(t, "%s: a slot whose info still has the VIP but is not live is not trusted",
		     kind) &&
	    svc_cache_fill(t, h, SVC_V4_TCP)) {
		int fd = bpf_map__fd(h->skel->maps.shift_svc_info);
		struct shift_svc_info info;
		__u32 id = SVC_V4_TCP;

		harness_service_key(tcp, &k);
		if (ASSERT_OK(t, dp_svc_info_get(&h->m, id, &info), "read the info") &&
		    ASSERT_OK(t, dp_service_del(&h->m, id, &k), "remove 10.0.0.10:80/tcp")) {
			info.flags &= ~SHIFT_SVC_F_IN_USE;
			ASSERT_OK(t, bpf_map_update_elem(fd, &id, &info, BPF_ANY),
				  "write the info back, VIP kept, not live");
			syn.sport++;
			ASSERT_EQ(t, steer(t, h, &syn), -1, "SYN passes");
			ASSERT_OK(t, harness_add_service(h, tcp), "re-add 10.0.0.10:80/tcp");
		}
	}
	fixture_put(f);
}

TEST(svc_cache)
{
	struct fixture x = { .seed = H_SEED, .flows4 = 1024, .flows6 = 256 };
	struct fixture c = { .seed = H_SEED, .flows4 = 1024, .flows6 = 256, .tc = true };

	svc_cache_run(t, &x, "xdp");
	svc_cache_run(t, &c, "tc");
}
