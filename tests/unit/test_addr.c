// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* addr: endpoints and prefixes as operators write them, and back. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config/addr.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_endpoint_ipv4(void **state)
{
	struct shift_addr_key k;
	char err[256], buf[ADDR_ENDPOINT_LEN];

	(void)state;
	memset(&k, 0xab, sizeof(k));
	assert_int_equal(addr_parse_endpoint("10.0.0.10:80", &k, err, sizeof(err)), 0);
	assert_int_equal(k.family, SHIFT_AF_INET);
	assert_int_equal(k.addr[0], htonl(0x0a00000a));
	assert_int_equal(k.addr[1] | k.addr[2] | k.addr[3], 0);
	assert_int_equal(k.port, htons(80));
	assert_int_equal(k.proto, 0xab); /* left to the caller */
	assert_string_equal(addr_format_endpoint(&k, buf, sizeof(buf)), "10.0.0.10:80");
	assert_int_equal(addr_parse_endpoint("255.255.255.254:65535", &k, err, sizeof(err)), 0);
	assert_int_equal(k.port, htons(65535));
	assert_int_equal(addr_parse_endpoint("1.2.3.4:00080", &k, err, sizeof(err)), 0);
	assert_int_equal(k.port, htons(80));
}

static void test_endpoint_ipv6(void **state)
{
	struct shift_addr_key k;
	char err[256], buf[ADDR_ENDPOINT_LEN];
	__u32 want[4];

	(void)state;
	memset(&k, 0, sizeof(k));
	assert_int_equal(addr_parse_endpoint("[2001:db8::10]:443", &k, err, sizeof(err)), 0);
	assert_int_equal(k.family, SHIFT_AF_INET6);
	inet_pton(AF_INET6, "2001:db8::10", want);
	assert_memory_equal(k.addr, want, sizeof(want));
	assert_int_equal(k.port, htons(443));
	assert_string_equal(addr_format_endpoint(&k, buf, sizeof(buf)), "[2001:db8::10]:443");
	/* The longest textual form still fits ADDR_ENDPOINT_LEN. */
	assert_int_equal(
		addr_parse_endpoint("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", &k,
				    err, sizeof(err)),
		0);
	addr_format_endpoint(&k, buf, sizeof(buf));
	assert_string_equal(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

static void test_endpoint_bad(void **state)
{
	static const struct {
		const char *in;
		const char *err;
	} bad[] = {
		{ "10.0.0.1", "missing port in '10.0.0.1'" },
		{ "10.0.0.1:", "missing port in '10.0.0.1:'" },
		{ "10.0.0.1:70000", "port 70000 out of range 1..65535" },
		{ "10.0.0.1:0", "port 0 out of range 1..65535" },
		{ "10.0.0.1:99999999999999999999", "port 99999999999999999999 out of range" },
		{ "10.0.0.300:80", "'10.0.0.300' is not an IPv4 address" },
		{ "10.0.0:80", "'10.0.0' is not an IPv4 address" },
		{ "web:80", "'web' is not an IPv4 address" },
		{ "2001:db8::1:80", "IPv6 address must be in brackets: '[2001:db8::1]:80'" },
		{ "2001:db8::1", "IPv6 address must be in brackets" },
		{ "[2001:db8::1]", "missing port in '[2001:db8::1]'" },
		{ "[2001:db8::1]:", "missing port in '[2001:db8::1]:'" },
		{ "[2001:db8::1]80", "expected ':' after ']'" },
		{ "[2001:db8::1:80", "missing ']'" },
		{ "[2001:db8::g]:80", "'2001:db8::g' is not an IPv6 address" },
		{ "[10.0.0.1]:80", "brackets are for IPv6 only" },
		{ "[]:80", "missing address in '[]:80'" },
		{ ":80", "missing address in ':80'" },
		{ "", "empty endpoint" },
		{ "10.0.0.1:8o", "'8o' is not a port number" },
		{ "10.0.0.1:-1", "'-1' is not a port number" },
		{ "10.0.0.1:+80", "'+80' is not a port number" },
		{ "10.0.0.1: 80", "' 80' is not a port number" },
		{ " 10.0.0.1:80", "is not an IPv4 address" },
		{ "10.0.0.1:80 ", "is not a port number" },
		{ "[fe80::1%eth0]:80", "is not an IPv6 address" },
	};
	struct shift_addr_key k, orig;
	char err[256];
	size_t i;

	(void)state;
	memset(&orig, 0x5a, sizeof(orig));
	for (i = 0; i < N(bad); i++) {
		k = orig;
		err[0] = '\0';
		if (addr_parse_endpoint(bad[i].in, &k, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, bad[i].err) || memcmp(&k, &orig, sizeof(k)))
			fail_msg("endpoint '%s': err '%s', want -EINVAL and '%s', key untouched",
				 bad[i].in, err, bad[i].err);
	}
	assert_int_equal(addr_parse_endpoint(NULL, &k, err, sizeof(err)), -EINVAL);
	/* A very long input is refused without overrunning anything. */
	{
		char longs[2048];

		memset(longs, '1', sizeof(longs) - 1);
		longs[sizeof(longs) - 1] = '\0';
		longs[10] = ':';
		assert_int_equal(addr_parse_endpoint(longs, &k, err, sizeof(err)), -EINVAL);
		longs[10] = '1';
		longs[1500] = ':';
		assert_int_equal(addr_parse_endpoint(longs, &k, err, sizeof(err)), -EINVAL);
		longs[0] = '[';
		assert_int_equal(addr_parse_endpoint(longs, &k, err, sizeof(err)), -EINVAL);
	}
}

static void test_cidr_ok(void **state)
{
	static const struct {
		const char *in;
		__u8 family, plen;
		const char *addr;
	} ok[] = {
		{ "192.0.2.0/24", SHIFT_AF_INET, 24, "192.0.2.0" },
		{ "10.0.0.0/8", SHIFT_AF_INET, 8, "10.0.0.0" },
		{ "0.0.0.0/0", SHIFT_AF_INET, 0, "0.0.0.0" },
		{ "192.0.2.1/32", SHIFT_AF_INET, 32, "192.0.2.1" },
		{ "192.0.2.1", SHIFT_AF_INET, 32, "192.0.2.1" },
		{ "192.0.2.128/25", SHIFT_AF_INET, 25, "192.0.2.128" },
		{ "2001:db8::/32", SHIFT_AF_INET6, 32, "2001:db8::" },
		{ "::/0", SHIFT_AF_INET6, 0, "::" },
		{ "2001:db8::1/128", SHIFT_AF_INET6, 128, "2001:db8::1" },
		{ "2001:db8::1", SHIFT_AF_INET6, 128, "2001:db8::1" },
		{ "2001:db8:0:8000::/49", SHIFT_AF_INET6, 49, "2001:db8:0:8000::" },
	};
	char err[256], buf[64];
	__u32 addr[4];
	__u8 fam, plen;
	size_t i;

	(void)state;
	for (i = 0; i < N(ok); i++) {
		memset(addr, 0xff, sizeof(addr));
		if (addr_parse_cidr(ok[i].in, &fam, addr, &plen, err, sizeof(err)))
			fail_msg("cidr '%s': %s", ok[i].in, err);
		assert_int_equal(fam, ok[i].family);
		assert_int_equal(plen, ok[i].plen);
		assert_string_equal(addr_format(fam, addr, buf, sizeof(buf)), ok[i].addr);
		if (fam == SHIFT_AF_INET)
			assert_int_equal(addr[1] | addr[2] | addr[3], 0);
	}
}

static void test_cidr_bad(void **state)
{
	static const struct {
		const char *in;
		const char *err;
	} bad[] = {
		{ "192.0.2.1/24", "host bits set in '192.0.2.1/24' (did you mean 192.0.2.0/24?)" },
		{ "2001:db8::1/32", "host bits set in '2001:db8::1/32'" },
		{ "10.0.0.0/33", "prefix length /33 out of range 0..32" },
		{ "2001:db8::/129", "prefix length /129 out of range 0..128" },
		{ "10.0.0.0/999999999999999999", "out of range 0..32" },
		{ "10.0.0.0/", "missing prefix length" },
		{ "10.0.0.0/x", "'x' is not a prefix length" },
		{ "10.0.0.0/-1", "is not a prefix length" },
		{ "10.0.0.0/24/8", "is not a prefix length" },
		{ "10.0.0/24", "'10.0.0' is not an IPv4 address" },
		{ "2001:db8::g/32", "is not an IPv6 address" },
		{ "[2001:db8::]/32", "no brackets" },
		{ "/24", "missing address" },
		{ "", "empty prefix" },
	};
	char err[256];
	__u32 addr[4] = { 1, 2, 3, 4 };
	__u8 fam = 99, plen = 99;
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		err[0] = '\0';
		if (addr_parse_cidr(bad[i].in, &fam, addr, &plen, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, bad[i].err))
			fail_msg("cidr '%s': err '%s', want '%s'", bad[i].in, err, bad[i].err);
	}
	assert_int_equal(fam, 99);
	assert_int_equal(plen, 99);
	assert_int_equal(addr[0], 1);
	assert_int_equal(addr_parse_cidr(NULL, &fam, addr, &plen, err, sizeof(err)), -EINVAL);
}

static void test_format_edges(void **state)
{
	struct shift_addr_key k = { .family = 77 };
	__u32 a[4] = { 0 };
	char buf[ADDR_ENDPOINT_LEN], tiny[4];

	(void)state;
	assert_string_equal(addr_format(77, a, buf, sizeof(buf)), "?");
	assert_string_equal(addr_format(SHIFT_AF_INET, a, buf, sizeof(buf)), "0.0.0.0");
	assert_string_equal(addr_format(SHIFT_AF_INET6, a, buf, sizeof(buf)), "::");
	/* Too small a buffer truncates, never overruns. */
	a[0] = htonl(0x0a00000a);
	assert_string_equal(addr_format(SHIFT_AF_INET, a, tiny, sizeof(tiny)), "?");
	addr_format_endpoint(&k, buf, sizeof(buf));
	assert_string_equal(buf, "?:0");
	k.family = SHIFT_AF_INET;
	k.addr[0] = a[0];
	k.port = htons(8080);
	assert_string_equal(addr_format_endpoint(&k, tiny, sizeof(tiny)), "10.");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoint_ipv4), cmocka_unit_test(test_endpoint_ipv6),
		cmocka_unit_test(test_endpoint_bad),  cmocka_unit_test(test_cidr_ok),
		cmocka_unit_test(test_cidr_bad),      cmocka_unit_test(test_format_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
