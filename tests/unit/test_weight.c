// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* weight_parse / weight_format: every spelling the SPEC and the CLI promise. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config/weight.h"

static void test_accepted(void **state)
{
	static const struct {
		const char *in;
		__u32 bp;
	} ok[] = {
		{ "25", 2500 },	     { "25%", 2500 }, { "0.5%", 50 },	  { "0.01%", 1 },
		{ "100", 10000 },    { "0", 0 },      { "12.34%", 1234 }, { "100.00", 10000 },
		{ "100%", 10000 },   { "0%", 0 },     { "0.5", 50 },	  { "99.99%", 9999 },
		{ "1", 100 },	     { "007", 700 },  { "0.10%", 10 },	  { "50.0", 5000 },
		{ "100.0%", 10000 }, { "0.00", 0 },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		__u32 bp = 0xdead;
		int ret = weight_parse(ok[i].in, &bp, err, sizeof(err));

		if (ret || bp != ok[i].bp)
			fail_msg("weight_parse('%s') = %d, bp %u, want 0, bp %u (%s)", ok[i].in,
				 ret, bp, ok[i].bp, ret ? err : "");
	}
}

static void test_refused(void **state)
{
	static const struct {
		const char *in;
		const char *why; /* substring of the message */
	} bad[] = {
		{ "150", "150 is above 100 %" },
		{ "150%", "150 is above 100 %" },
		{ "100.01", "100.01 is above 100 %" },
		{ "-1", "cannot be negative" },
		{ "abc", "'abc' is not a weight; use 0-100, e.g. 25, 25%, 0.5%" },
		{ "1e3", "'1e3' is not a weight" },
		{ "50%%", "'50%%' is not a weight" },
		{ "", "empty weight" },
		{ "0.001%", "at most two decimals: weights step by 0.01 %" },
		{ "0.001", "at most two decimals" },
		{ "+5", "'+5' is not a weight" },
		{ ".5", "'.5' is not a weight" },
		{ "5.", "'5.' is not a weight" },
		{ " 25", "no spaces" },
		{ "25 ", "no spaces" },
		{ "25 %", "no spaces" },
		{ "0x10", "'0x10' is not a weight" },
		{ "%", "'%' is not a weight" },
		{ "5.5.5", "is not a weight" },
		{ "99999999999999999999", "is above 100 %" },
		{ "inf", "is not a weight" },
		{ "nan", "is not a weight" },
		{ "1,5", "is not a weight" },
		{ "0.001x", "is not a weight" },
	};
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		__u32 bp = 4242;
		int ret;

		err[0] = '\0';
		ret = weight_parse(bad[i].in, &bp, err, sizeof(err));
		if (ret != -EINVAL || bp != 4242 || !strstr(err, bad[i].why))
			fail_msg("weight_parse('%s') = %d, bp %u, err '%s'; want -EINVAL, '%s'",
				 bad[i].in, ret, bp, err, bad[i].why);
	}
}

static void test_null_and_tiny_err(void **state)
{
	char err[4];
	__u32 bp = 7;

	(void)state;
	assert_int_equal(weight_parse(NULL, &bp, err, sizeof(err)), -EINVAL);
	assert_int_equal(bp, 7);
	assert_true(strlen(err) < sizeof(err));
	/* No err buffer at all must be fine too. */
	assert_int_equal(weight_parse("abc", &bp, NULL, 0), -EINVAL);
	assert_int_equal(weight_parse("25", &bp, NULL, 0), 0);
	assert_int_equal(bp, 2500);
}

static void test_format(void **state)
{
	static const struct {
		__u32 bp;
		const char *out;
	} f[] = {
		{ 2500, "25%" },    { 50, "0.5%" },    { 1, "0.01%" }, { 10000, "100%" },
		{ 1234, "12.34%" }, { 0, "0%" },       { 10, "0.1%" }, { 9999, "99.99%" },
		{ 1205, "12.05%" }, { 1250, "12.5%" },
	};
	char buf[WEIGHT_STR_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		assert_string_equal(weight_format(f[i].bp, buf, sizeof(buf)), f[i].out);
}

/* format -> parse is the identity for every weight the datapath can hold. */
static void test_round_trip(void **state)
{
	char buf[WEIGHT_STR_LEN], err[128];
	__u32 bp, back;

	(void)state;
	for (bp = 0; bp <= 10000; bp++) {
		weight_format(bp, buf, sizeof(buf));
		if (weight_parse(buf, &back, err, sizeof(err)) || back != bp)
			fail_msg("round trip of %u via '%s' gave %u (%s)", bp, buf, back, err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),	  cmocka_unit_test(test_refused),
		cmocka_unit_test(test_null_and_tiny_err), cmocka_unit_test(test_format),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
