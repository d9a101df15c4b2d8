// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* units: durations, percentages, ratios, booleans, integers, seeds, octal modes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config/units.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SEC UNITS_NS_PER_SEC
#define MS UNITS_NS_PER_MS
#define US UNITS_NS_PER_US

static void test_duration_ok(void **state)
{
	static const struct {
		const char *in;
		__u64 ns;
	} ok[] = {
		{ "30s", 30 * SEC },
		{ "500ms", 500 * MS },
		{ "250us", 250 * US },
		{ "1m", 60 * SEC },
		{ "2h", 7200 * SEC },
		{ "1.5s", 1500 * MS },
		{ "0s", 0 },
		{ "1ns", 1 },
		{ "1m30s", 90 * SEC },
		{ "2\xc2\xb5s", 2 * US },
		{ "0.5ms", 500 * US },
		{ "1.000000001s", SEC + 1 },
		{ "0.25h", 900 * SEC },
		{ "1h1m1s1ms", 3661 * SEC + MS },
		{ "18446744073709551614ns", UINT64_MAX - 1 },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < N(ok); i++) {
		__u64 ns = 42;
		int ret = units_parse_duration(ok[i].in, 0, UINT64_MAX, &ns, err, sizeof(err));

		if (ret || ns != ok[i].ns)
			fail_msg("duration '%s' = %d, %llu; want %llu (%s)", ok[i].in, ret,
				 (unsigned long long)ns, (unsigned long long)ok[i].ns,
				 ret ? err : "");
	}
}

static void test_duration_bad(void **state)
{
	static const struct {
		const char *in;
		int ret;
		const char *why;
	} bad[] = {
		{ "30", -EINVAL, "'30': missing unit" },
		{ "0", -EINVAL, "missing unit" },
		{ "", -EINVAL, "empty duration" },
		{ "s", -EINVAL, "'s' is not a duration" },
		{ "-1s", -EINVAL, "'-1s' is not a duration" },
		{ "+1s", -EINVAL, "is not a duration" },
		{ " 1s", -EINVAL, "is not a duration" },
		{ "1s ", -EINVAL, "unknown unit 's '" },
		{ "1 s", -EINVAL, "unknown unit ' s'" },
		{ "10sec", -EINVAL, "unknown unit 'sec'" },
		{ "1d", -EINVAL, "unknown unit 'd'" },
		{ "1.s", -EINVAL, "is not a duration" },
		{ ".5s", -EINVAL, "is not a duration" },
		{ "1e3ms", -EINVAL, "unknown unit 'e'" },
		{ "0x10s", -EINVAL, "unknown unit 'x'" },
		{ "1.5ns", -EINVAL, "finer than 1 ns" },
		{ "1.0000000001s", -EINVAL, "at most 9 decimals" },
		{ "18446744073709551616ns", -ERANGE, "too long" },
		{ "5124096h", -ERANGE, "too long" },
		{ "99999999999999999999999h", -ERANGE, "too long" },
		{ "18446744073709551615ns1ns", -ERANGE, "too long" },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		__u64 ns = 42;
		int ret;

		err[0] = '\0';
		ret = units_parse_duration(bad[i].in, 0, UINT64_MAX, &ns, err, sizeof(err));
		if (ret != bad[i].ret || ns != 42 || !strstr(err, bad[i].why))
			fail_msg("duration '%s' = %d, err '%s'; want %d, '%s'", bad[i].in, ret, err,
				 bad[i].ret, bad[i].why);
	}
}

static void test_duration_bounds(void **state)
{
	char err[256];
	__u64 ns = 0;

	(void)state;
	assert_int_equal(units_parse_duration("1s", SEC, 3600 * SEC, &ns, err, sizeof(err)), 0);
	assert_int_equal(ns, SEC);
	assert_int_equal(units_parse_duration("1h", SEC, 3600 * SEC, &ns, err, sizeof(err)), 0);
	assert_int_equal(units_parse_duration("999ms", SEC, 3600 * SEC, &ns, err, sizeof(err)),
			 -ERANGE);
	assert_string_equal(err, "'999ms' out of range 1s..1h");
	assert_int_equal(units_parse_duration("61m", SEC, 3600 * SEC, &ns, err, sizeof(err)),
			 -ERANGE);
	assert_string_equal(err, "'61m' out of range 1s..1h");
	assert_int_equal(ns, 3600 * SEC);
}

static void test_duration_format(void **state)
{
	static const struct {
		__u64 ns;
		const char *out;
	} f[] = {
		{ 0, "0s" },	       { 1, "1ns" },	      { 1500 * MS, "1500ms" },
		{ 3600 * SEC, "1h" },  { 90 * SEC, "90s" },   { 120 * SEC, "2m" },
		{ 250 * US, "250us" }, { 500 * MS, "500ms" }, { 1001, "1001ns" },
	};
	char buf[UNITS_DURATION_LEN], err[128];
	size_t i;
	__u64 back;

	(void)state;
	for (i = 0; i < N(f); i++) {
		assert_string_equal(units_format_duration(f[i].ns, buf, sizeof(buf)), f[i].out);
		assert_int_equal(units_parse_duration(buf, 0, UINT64_MAX, &back, err, sizeof(err)),
				 0);
		assert_int_equal(back, f[i].ns);
	}
	units_format_duration(UINT64_MAX, buf, sizeof(buf));
	assert_string_equal(buf, "18446744073709551615ns");
}

static void test_percent(void **state)
{
	static const struct {
		const char *in;
		double frac;
	} ok[] = {
		{ "5%", 0.05 }, { "0.5%", 0.005 },	{ "1%", 0.01 },	     { "100%", 1.0 },
		{ "0%", 0.0 },	{ "12.345%", 0.12345 }, { "100.000%", 1.0 },
	};
	static const struct {
		const char *in;
		const char *why;
	} bad[] = {
		{ "101%", "'101%' is above 100 %" },	{ "100.5%", "is above 100 %" },
		{ "5", "'5' needs a % sign, e.g. 5%" }, { "", "empty percentage" },
		{ "-5%", "'-5%' is not a percentage" }, { "5 %", "is not a percentage" },
		{ "5%%", "is not a percentage" },	{ "abc", "is not a percentage" },
		{ "0.0000001%", "at most 6 decimals" }, { "1e1%", "is not a percentage" },
	};
	char err[256];
	double v;
	size_t i;

	(void)state;
	for (i = 0; i < N(ok); i++) {
		v = -1;
		if (units_parse_percent(ok[i].in, &v, err, sizeof(err)) || v < ok[i].frac - 1e-12 ||
		    v > ok[i].frac + 1e-12)
			fail_msg("percent '%s' -> %g, want %g", ok[i].in, v, ok[i].frac);
	}
	for (i = 0; i < N(bad); i++) {
		v = -1;
		err[0] = '\0';
		if (!units_parse_percent(bad[i].in, &v, err, sizeof(err)) || v != -1 ||
		    !strstr(err, bad[i].why))
			fail_msg("percent '%s' accepted or err '%s', want '%s'", bad[i].in, err,
				 bad[i].why);
	}
}

static void test_ratio(void **state)
{
	char err[256];
	double v = 0;

	(void)state;
	assert_int_equal(units_parse_ratio("2.0", 1.0, 1000, &v, err, sizeof(err)), 0);
	assert_true(v == 2.0);
	assert_int_equal(units_parse_ratio("1.5", 1.0, 1000, &v, err, sizeof(err)), 0);
	assert_true(v == 1.5);
	assert_int_equal(units_parse_ratio("1", 1.0, 1000, &v, err, sizeof(err)), 0);
	assert_true(v == 1.0);
	assert_int_equal(units_parse_ratio("0.99", 1.0, 1000, &v, err, sizeof(err)), -ERANGE);
	assert_string_equal(err, "ratio '0.99' out of range 1..1000");
	assert_int_equal(units_parse_ratio("1001", 1.0, 1000, &v, err, sizeof(err)), -ERANGE);
	assert_int_equal(units_parse_ratio("2x", 1.0, 1000, &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'2x' is not a ratio; use e.g. 2.0 or 1.5");
	assert_int_equal(units_parse_ratio("inf", 1.0, 1000, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_ratio("nan", 1.0, 1000, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_ratio("1e2", 1.0, 1000, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_ratio("", 1.0, 1000, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_ratio("-2", 1.0, 1000, &v, err, sizeof(err)), -EINVAL);
	assert_true(v == 1.0);
}

static void test_bool(void **state)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True" };
	static const char *const no[] = { "no", "false", "off", "0", "No", "OFF" };
	static const char *const bad[] = { "", "y", "n", "2", "yes ", "enabled", "-1" };
	char err[256];
	bool b;
	size_t i;

	(void)state;
	for (i = 0; i < N(yes); i++) {
		b = false;
		assert_int_equal(units_parse_bool(yes[i], &b, err, sizeof(err)), 0);
		assert_true(b);
	}
	for (i = 0; i < N(no); i++) {
		b = true;
		assert_int_equal(units_parse_bool(no[i], &b, err, sizeof(err)), 0);
		assert_false(b);
	}
	for (i = 0; i < N(bad); i++) {
		assert_int_equal(units_parse_bool(bad[i], &b, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "is not a boolean; use yes or no"));
	}
	assert_int_equal(units_parse_bool(NULL, &b, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_bool("maybe", &b, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'maybe' is not a boolean; use yes or no");
}

static void test_integers(void **state)
{
	char err[256];
	__u64 v64 = 0;
	__u32 v = 0;

	(void)state;
	assert_int_equal(units_parse_u32("20", 1, 1000000, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 20);
	assert_int_equal(units_parse_u32("1000000", 1, 1000000, &v, err, sizeof(err)), 0);
	assert_int_equal(units_parse_u32("0", 1, 1000000, &v, err, sizeof(err)), -ERANGE);
	assert_string_equal(err, "0 out of range 1..1000000");
	assert_int_equal(units_parse_u32("1000001", 1, 1000000, &v, err, sizeof(err)), -ERANGE);
	assert_int_equal(units_parse_u32("4294967296", 0, UINT32_MAX, &v, err, sizeof(err)),
			 -ERANGE);
	assert_int_equal(units_parse_u32("-1", 0, 10, &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'-1' is not a whole number");
	assert_int_equal(units_parse_u32("+1", 0, 10, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_u32("1.0", 0, 10, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_u32(" 1", 0, 10, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_u32("0x1", 0, 10, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(units_parse_u32("", 0, 10, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(v, 1000000);
	assert_int_equal(
		units_parse_u64("18446744073709551615", 0, UINT64_MAX, &v64, err, sizeof(err)), 0);
	assert_true(v64 == UINT64_MAX);
	assert_int_equal(units_parse_u64("18446744073709551616", 0, UINT64_MAX, &v64, err,
					 sizeof(err)),
			 -ERANGE);
	assert_string_equal(err, "'18446744073709551616' is too large");
}

static void test_seed(void **state)
{
	static const struct {
		const char *in;
		__u32 v;
	} ok[] = {
		{ "0x5eed", 0x5eed },	      { "24301", 24301 },	    { "0", 0 },
		{ "0XFFFFFFFF", UINT32_MAX }, { "4294967295", UINT32_MAX }, { "0x0", 0 },
		{ "0xDeadBeef", 0xdeadbeef },
	};
	static const struct {
		const char *in;
		const char *why;
	} bad[] = {
		{ "0x", "1 to 8 digits" },
		{ "0x123456789", "1 to 8 digits" },
		{ "0xg", "'0xg' is not a hex number" },
		{ "4294967296", "out of range" },
		{ "-1", "not a whole number" },
		{ "", "empty seed" },
		{ "5eed", "not a whole number" },
	};
	char err[256];
	size_t i;
	__u32 v;

	(void)state;
	for (i = 0; i < N(ok); i++) {
		v = 1;
		assert_int_equal(units_parse_seed(ok[i].in, &v, err, sizeof(err)), 0);
		assert_int_equal(v, ok[i].v);
	}
	for (i = 0; i < N(bad); i++) {
		err[0] = '\0';
		if (!units_parse_seed(bad[i].in, &v, err, sizeof(err)) || !strstr(err, bad[i].why))
			fail_msg("seed '%s': err '%s', want '%s'", bad[i].in, err, bad[i].why);
	}
}

static void test_octal(void **state)
{
	char err[256];
	__u32 v = 0;

	(void)state;
	assert_int_equal(units_parse_octal("0600", 07777, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0600);
	assert_int_equal(units_parse_octal("660", 07777, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0660);
	assert_int_equal(units_parse_octal("0680", 07777, &v, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'0680' is not an octal number");
	assert_int_equal(units_parse_octal("17777", 07777, &v, err, sizeof(err)), -ERANGE);
	assert_int_equal(units_parse_octal("77777777777777777777777", 07777, &v, err, sizeof(err)),
			 -ERANGE);
	assert_int_equal(units_parse_octal("", 07777, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(v, 0660);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_ok),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_duration_bounds),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_percent),
		cmocka_unit_test(test_ratio),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_octal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
