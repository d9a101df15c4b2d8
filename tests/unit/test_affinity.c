// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Client affinity's hash: the masking at every prefix edge (v4 0/1/24/32,
 * v6 0/64/127/128), equality with MurmurHash3 x86_32 written out here from
 * the reference, an even split of clients against a weight, and the parsing
 * of `shiftctl which`'s ADDR[:PORT].
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <shift/flow_hash.h>
#include "datapath/which.h"

/* MurmurHash3_x86_32 over a byte string (Austin Appleby's reference). */
static uint32_t ref_murmur3(const uint8_t *d, size_t len, uint32_t seed)
{
	const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
	uint32_t h = seed, k;
	size_t i;

	for (i = 0; i + 4 <= len; i += 4) {
		k = (uint32_t)d[i] | (uint32_t)d[i + 1] << 8 | (uint32_t)d[i + 2] << 16 |
		    (uint32_t)d[i + 3] << 24;
		k *= c1;
		k = k << 15 | k >> 17;
		k *= c2;
		h ^= k;
		h = h << 13 | h >> 19;
		h = h * 5 + 0xe6546b64;
	}
	h ^= (uint32_t)len;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static void put_le(uint8_t *p, uint32_t w)
{
	p[0] = w;
	p[1] = w >> 8;
	p[2] = w >> 16;
	p[3] = w >> 24;
}

static uint32_t v4(const char *s)
{
	uint32_t a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void v6(const char *s, uint32_t a[4])
{
	assert_int_equal(inet_pton(AF_INET6, s, a), 1);
}

static void test_mask_edges(void **state)
{
	(void)state;
	assert_int_equal(shift_prefix_mask(0, 0), 0);
	assert_int_equal(shift_prefix_mask(1, 0), 0x80000000u);
	assert_int_equal(shift_prefix_mask(24, 0), 0xffffff00u);
	assert_int_equal(shift_prefix_mask(32, 0), 0xffffffffu);
	assert_int_equal(shift_prefix_mask(32, 1), 0);
	assert_int_equal(shift_prefix_mask(33, 1), 0x80000000u);
	assert_int_equal(shift_prefix_mask(64, 1), 0xffffffffu);
	assert_int_equal(shift_prefix_mask(64, 2), 0);
	assert_int_equal(shift_prefix_mask(127, 3), 0xfffffffeu);
	assert_int_equal(shift_prefix_mask(128, 3), 0xffffffffu);
	assert_int_equal(shift_prefix_mask(128, 0), 0xffffffffu);
}

static void test_reference_v4(void **state)
{
	uint8_t b[12];
	uint32_t seed = 0x5eed, a = v4("198.51.100.77");
	unsigned p;

	(void)state;
	for (p = 0; p <= 32; p++) {
		put_le(b, 4);
		put_le(b + 4, p);
		put_le(b + 8, ntohl(a) & (p ? 0xffffffffu << (32 - p) : 0));
		assert_int_equal(shift_client_hash4(a, p, seed), ref_murmur3(b, 12, seed));
	}
}

static void test_reference_v6(void **state)
{
	uint32_t a[4], seed = 7;
	uint8_t b[24];
	unsigned p, w;

	(void)state;
	v6("2001:db8:1234:5678:9abc:def0:1357:9bdf", a);
	for (p = 0; p <= 128; p++) {
		put_le(b, 6);
		put_le(b + 4, p);
		for (w = 0; w < 4; w++) {
			unsigned bits = p > w * 32 ? p - w * 32 : 0;
			uint32_t m = bits >= 32 ? 0xffffffffu :
				     bits	? 0xffffffffu << (32 - bits) :
						  0;

			put_le(b + 8 + 4 * w, ntohl(a[w]) & m);
		}
		assert_int_equal(shift_client_hash6(a, p, seed), ref_murmur3(b, 24, seed));
	}
}

static void test_masking_v4(void **state)
{
	(void)state;
	/* /32: every address is its own client. */
	assert_int_not_equal(shift_client_hash4(v4("10.0.0.1"), 32, 1),
			     shift_client_hash4(v4("10.0.0.2"), 32, 1));
	/* /24: the last byte is masked away, the third is not. */
	assert_int_equal(shift_client_hash4(v4("10.0.0.1"), 24, 1),
			 shift_client_hash4(v4("10.0.0.254"), 24, 1));
	assert_int_not_equal(shift_client_hash4(v4("10.0.0.1"), 24, 1),
			     shift_client_hash4(v4("10.0.1.1"), 24, 1));
	/* /0: one client, the whole Internet. */
	assert_int_equal(shift_client_hash4(v4("10.0.0.1"), 0, 1),
			 shift_client_hash4(v4("203.0.113.9"), 0, 1));
	/* Past 32 clamps to 32 (the datapath never gets more; the parser refuses). */
	assert_int_equal(shift_client_hash4(v4("10.0.0.1"), 40, 1),
			 shift_client_hash4(v4("10.0.0.1"), 32, 1));
	/* The seed changes the draw; the prefix length too. */
	assert_int_not_equal(shift_client_hash4(v4("10.0.0.1"), 32, 1),
			     shift_client_hash4(v4("10.0.0.1"), 32, 2));
	assert_int_not_equal(shift_client_hash4(v4("10.0.0.0"), 24, 1),
			     shift_client_hash4(v4("10.0.0.0"), 32, 1));
}

static void test_masking_v6(void **state)
{
	uint32_t a[4], b[4];

	(void)state;
	/* Inside one /64: the same client. */
	v6("2001:db8:0:1::1", a);
	v6("2001:db8:0:1:ffff:1:2:3", b);
	assert_int_equal(shift_client_hash6(a, 64, 9), shift_client_hash6(b, 64, 9));
	assert_int_not_equal(shift_client_hash6(a, 128, 9), shift_client_hash6(b, 128, 9));
	/* Bit 63 (the last of the /64) counts. */
	v6("2001:db8:0:0::1", b);
	assert_int_not_equal(shift_client_hash6(a, 64, 9), shift_client_hash6(b, 64, 9));
	/* /128: the very last bit counts; /127 ignores it. */
	v6("2001:db8:0:1::0", b);
	assert_int_not_equal(shift_client_hash6(a, 128, 9), shift_client_hash6(b, 128, 9));
	assert_int_equal(shift_client_hash6(a, 127, 9), shift_client_hash6(b, 127, 9));
	/* /0: everything is one client; past 128 clamps. */
	v6("fe80::1", b);
	assert_int_equal(shift_client_hash6(a, 0, 9), shift_client_hash6(b, 0, 9));
	assert_int_equal(shift_client_hash6(a, 200, 9), shift_client_hash6(a, 128, 9));
}

/* 20000 clients against 10/30/50/90 %: the share is the weight within 1.5 %. */
static void test_split(void **state)
{
	static const unsigned weights[] = { 1000, 3000, 5000, 9000 };
	unsigned i, n, green;

	(void)state;
	for (i = 0; i < sizeof(weights) / sizeof(weights[0]); i++) {
		for (n = green = 0; n < 20000; n++)
			green += shift_slice(shift_client_hash4(htonl(0x0a000000u + n), 32,
								0x5eed)) < weights[i];
		print_message("weight %u bp: %u of 20000 clients green\n", weights[i], green);
		assert_true(green * 10000 / 20000 + 150 >= weights[i]);
		assert_true(green * 10000 / 20000 <= weights[i] + 150);
	}
}

static void test_parse_client(void **state)
{
	struct shift_addr_key k;
	char err[256];

	(void)state;
	assert_int_equal(which_parse_client("10.0.0.5", &k, err, sizeof(err)), 0);
	assert_int_equal(k.family, SHIFT_AF_INET);
	assert_int_equal(k.addr[0], v4("10.0.0.5"));
	assert_int_equal(k.port, 0);
	assert_int_equal(which_parse_client("10.0.0.5:40000", &k, err, sizeof(err)), 0);
	assert_int_equal(k.port, htons(40000));
	assert_int_equal(which_parse_client("2001:db8::5", &k, err, sizeof(err)), 0);
	assert_int_equal(k.family, SHIFT_AF_INET6);
	assert_int_equal(k.port, 0);
	assert_int_equal(which_parse_client("[2001:db8::5]", &k, err, sizeof(err)), 0);
	assert_int_equal(k.family, SHIFT_AF_INET6);
	assert_int_equal(which_parse_client("[2001:db8::5]:443", &k, err, sizeof(err)), 0);
	assert_int_equal(k.port, htons(443));
	assert_int_equal(which_parse_client("10.0.0.5:0", &k, err, sizeof(err)), -EINVAL);
	assert_int_equal(which_parse_client("10.0.0.5:70000", &k, err, sizeof(err)), -EINVAL);
	assert_int_equal(which_parse_client("client", &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not an IPv4 or IPv6 address"));
	assert_int_equal(which_parse_client("[10.0.0.5]", &k, err, sizeof(err)), -EINVAL);
	assert_int_equal(which_parse_client("[", &k, err, sizeof(err)), -EINVAL);
	assert_int_equal(which_parse_client("[]", &k, err, sizeof(err)), -EINVAL);
	assert_int_equal(which_parse_client("", &k, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mask_edges),   cmocka_unit_test(test_reference_v4),
		cmocka_unit_test(test_reference_v6), cmocka_unit_test(test_masking_v4),
		cmocka_unit_test(test_masking_v6),   cmocka_unit_test(test_split),
		cmocka_unit_test(test_parse_client),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
