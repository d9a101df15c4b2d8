// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The oracle's own tests: every expected output packet comes from pkt.c, so
 * its builder is checked against frames whose checksums were computed
 * independently (a separate Python implementation of RFC 1071 / 768 / 793 /
 * 8200 over these exact bytes), and its checker must catch corruption.
 */
#include <string.h>

#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

static __u32 unhex(const char *s, __u8 *out, __u32 cap)
{
	__u32 n = 0;
	unsigned int b;

	while (s[0] && s[1] && n < cap && sscanf(s, "%2x", &b) == 1) {
		out[n++] = (__u8)b;
		s += 2;
	}
	return n;
}

/* PKT4(CL4, VIP4, TCP, 40001, 80, .tcp_opts = 4, .payload = 5): ipv4.check 0x344f,
 * tcp.check 0x9bfe. */
static const char known_v4[] = "02ed0000000102c100000007080045000031123400004006344fc63364070a"
			       "00000a9c410050000003e8000000006002faf09bfe0000020405b4abb2b9c0c7";
/* PKT6(CL6, VIP6, UDP, 40002, 53, hop-by-hop, .payload = 7): udp.check 0xc6d2. */
static const char known_v6[] = "02ed0000000102c10000000786dd600123450017004020010db8000c000000"
			       "0000000000000720010db800000000000000000000001011000104000000009c"
			       "420035000fc6d23b424950575e65";

TEST(oracle)
{
	static const struct pkt_spec v4 =
		PKT4(CL4, VIP4, IPPROTO_TCP, 40001, 80, .tcp_opts = 4, .payload = 5);
	static const struct pkt_spec v6 =
		PKT6(CL6, VIP6, IPPROTO_UDP, 40002, 53, .n_ext = 1, .ext = { 0 }, .payload = 7);
	__u8 got[PKT_MAX], exp[PKT_MAX], bad[PKT_MAX];
	struct pkt_layout lo;
	struct pkt_info info;
	char why[160];
	__u32 n, e;

	if (test_sub(t, "builder: v4 tcp frame equals an independently computed one")) {
		n = pkt_build(&v4, got, sizeof(got), NULL);
		e = unhex(known_v4, exp, sizeof(exp));
		ASSERT_PKT_EQ(t, exp, e, got, n, "v4 known answer");
		ASSERT_OK(t, pkt_verify(got, n, &info, why, sizeof(why)), why);
	}
	if (test_sub(t, "builder: v6 udp + hop-by-hop equals an independently computed one")) {
		n = pkt_build(&v6, got, sizeof(got), NULL);
		e = unhex(known_v6, exp, sizeof(exp));
		ASSERT_PKT_EQ(t, exp, e, got, n, "v6 known answer");
		ASSERT_OK(t, pkt_verify(got, n, &info, why, sizeof(why)), why);
	}
	if (test_sub(t, "checker: RFC 791 header example sums to 0xb861")) {
		static const __u8 hdr[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40,
					      0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
					      0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };

		ASSERT_EQ(t, pkt_csum(hdr, sizeof(hdr), 0), 0xb861, "header checksum");
	}
	if (test_sub(t, "checker: catches every corrupted field")) {
		n = pkt_build(&v4, got, sizeof(got), &lo);
		memcpy(bad, got, n);
		bad[lo.l3 + 8]--; /* ttl without the checksum fix */
		ASSERT_TRUE(t,
			    pkt_verify(bad, n, NULL, why, sizeof(why)) && strstr(why, "ipv4.check"),
			    "TTL change caught by ipv4.check");
		memcpy(bad, got, n);
		bad[lo.l3 + 19] ^= 1; /* daddr: IP header and pseudo-header */
		ASSERT_TRUE(t, pkt_verify(bad, n, NULL, why, sizeof(why)), "daddr change caught");
		memcpy(bad, got, n);
		pkt_fix_csums(bad, n);
		ASSERT_PKT_EQ(t, got, n, bad, n, "pkt_fix_csums of a correct frame");
		bad[lo.l3 + 19] ^= 1;
		bad[lo.l3 + 10] = bad[lo.l3 + 11] = 0;
		pkt_fix_csums(bad, n); /* both checksums recomputed for the new daddr */
		ASSERT_TRUE(t, pkt_verify(bad, n, NULL, why, sizeof(why)) == 0,
			    "fixed frame verifies");
		memcpy(bad, got, n);
		bad[n - 1] ^= 0x40; /* payload */
		ASSERT_TRUE(t,
			    pkt_verify(bad, n, NULL, why, sizeof(why)) && strstr(why, "tcp.check"),
			    "payload change caught by tcp.check");
		n = pkt_build(&v6, got, sizeof(got), &lo);
		memcpy(bad, got, n);
		bad[lo.l3 + 39] ^= 0x10; /* v6 daddr: only the pseudo-header covers it */
		ASSERT_TRUE(t,
			    pkt_verify(bad, n, NULL, why, sizeof(why)) && strstr(why, "udp.check"),
			    "v6 daddr change caught by udp.check");
		memcpy(bad, got, n);
		bad[lo.l4 + 6] = bad[lo.l4 + 7] = 0;
		ASSERT_TRUE(t, pkt_verify(bad, n, NULL, why, sizeof(why)) != 0,
			    "v6 udp checksum 0 rejected");
	}
	if (test_sub(t, "checker: v4 udp checksum 0 means none")) {
		struct pkt_spec s = v4;

		s.proto = IPPROTO_UDP;
		s.udp_csum_zero = 1;
		n = pkt_build(&s, got, sizeof(got), &lo);
		ASSERT_EQ(t, got[lo.l4 + 6] | got[lo.l4 + 7], 0, "built without a checksum");
		ASSERT_OK(t, pkt_verify(got, n, NULL, why, sizeof(why)), why);
	}
}
