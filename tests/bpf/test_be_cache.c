// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shift_be_cache (bpf/maps.bpf.h): the reply path's direct-mapped guess of
 * which backend sent a packet. The datapath fills it from shift_be_idx and
 * must never act on a guess that is wrong: a slot naming another backend, a
 * backend of another protocol on the same address and port, or a removed
 * backend costs the hash lookup and changes nothing else. XDP and TC.
 */
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "table.h"
#include "shift.skel.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define BE1A                 \
	{                    \
		10, 1, 0, 21 \
	}

/* Write v into every slot. */
static bool cache_fill(struct tctx *t, struct harness *h, __u32 v)
{
	return ASSERT_OK(t, harness_array_fill(h->skel->maps.shift_be_cache, v),
			 "write every cache slot");
}

/* How many slots hold v. */
static __u32 cache_count(struct harness *h, __u32 v)
{
	return harness_array_count(h->skel->maps.shift_be_cache, v);
}

static __u64 replies_of(struct harness *h, __u32 id)
{
	struct shift_backend_stats s;

	return harness_be_stats(h, id, &s) ? ~0ull : s.reply_packets;
}

/* Send r through the return path: 1 when it left NATed to VIP4:80, 0 when it
 * passed byte for byte, -1 otherwise (a failure is recorded). */
static int reply(struct tctx *t, struct harness *h, const struct pkt_spec *r)
{
	static const __u8 vip[4] = VIP4;
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen = sizeof(out), verdict = 0;

	len = pkt_build(r, in, sizeof(in), NULL);
	if (!ASSERT_OK(t,
		       harness_run_prog(h, H_BACKEND, in, len, H_LO_IFINDEX, out, &olen, &verdict),
		       "BPF_PROG_TEST_RUN"))
		return -1;
	if (verdict == harness_expect(h, XDP_PASS))
		return ASSERT_TRUE(t, olen == len && !memcmp(in, out, len), "passed unchanged") ?
			       0 :
			       -1;
	if (!ASSERT_TRUE(t, olen >= 34 && !memcmp(out + 26, vip, 4), "source NATed to the VIP"))
		return -1;
	return 1;
}

static void be_cache_run(struct tctx *t, struct fixture *f, const char *kind)
{
	struct pkt_spec r0 = REPLY4(BE0A, CL4, IPPROTO_TCP, 8080, 46000, .tcp_flags = TH_ACK);
	struct pkt_spec r1 = REPLY4(BE1A, CL4, IPPROTO_TCP, 8080, 46001, .tcp_flags = TH_ACK);
	struct pkt_spec u0 = REPLY4(BE0A, CL4, IPPROTO_UDP, 8080, 46002);
	struct harness *h = fixture_get(t, f);
	__u64 n0, n1;

	if (!h)
		return;
	if (test_sub(t, "%s: a reply fills one slot with its backend, the next is answered by it",
		     kind) &&
	    cache_fill(t, h, ~0u)) {
		n0 = replies_of(h, 0);
		ASSERT_EQ(t, reply(t, h, &r0), 1, "first reply from backend 0");
		ASSERT_EQ(t, cache_count(h, 0), 1, "slots naming backend 0");
		ASSERT_EQ(t, reply(t, h, &r0), 1, "second reply from backend 0");
		ASSERT_EQ(t, replies_of(h, 0) - n0, 2, "backend 0's reply_packets");
	}
	if (test_sub(t, "%s: every slot naming backend 0, backend 1's reply is backend 1's",
		     kind) &&
	    cache_fill(t, h, 0)) {
		n0 = replies_of(h, 0);
		n1 = replies_of(h, 1);
		ASSERT_EQ(t, reply(t, h, &r1), 1, "reply from backend 1");
		ASSERT_EQ(t, replies_of(h, 1) - n1, 1, "backend 1's reply_packets");
		ASSERT_EQ(t, replies_of(h, 0) - n0, 0, "backend 0's reply_packets");
		ASSERT_EQ(t, cache_count(h, 1), 1, "its slot now names backend 1");
	}
	if (test_sub(t, "%s: udp from backend 0's address and port (a tcp backend) passes", kind) &&
	    cache_fill(t, h, 0)) {
		n0 = replies_of(h, 0);
		ASSERT_EQ(t, reply(t, h, &u0), 0, "udp reply");
		ASSERT_EQ(t, replies_of(h, 0) - n0, 0, "backend 0's reply_packets");
	}
	if (test_sub(t, "%s: a removed backend's slot is not trusted; re-added, it is", kind) &&
	    cache_fill(t, h, 0)) {
		if (ASSERT_OK(t, dp_backend_del(&h->m, 0, IPPROTO_TCP), "remove backend 0")) {
			ASSERT_EQ(t, reply(t, h, &r0), 0, "reply from the removed backend");
			ASSERT_OK(t, harness_add_backend(h, &topo_backends[0]), "re-add backend 0");
		}
		ASSERT_EQ(t, reply(t, h, &r0), 1, "reply from the re-added backend");
	}
	fixture_put(f);
}

TEST(be_cache)
{
	struct fixture x = { .seed = H_SEED, .flows4 = 1024, .flows6 = 256 };
	struct fixture c = { .seed = H_SEED, .flows4 = 1024, .flows6 = 256, .tc = true };

	be_cache_run(t, &x, "xdp");
	be_cache_run(t, &c, "tc");
}
