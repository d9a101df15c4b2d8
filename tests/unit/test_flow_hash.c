// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The flow hash's divisions by multiplication (shift_div10000(),
 * shift_div_ring()): equal to the / and % operators at both ends of the
 * 32-bit range, at and around every multiple of the divisor (where a
 * reciprocal that is a little off shows first), and for 4M pseudo-random
 * values; so the color slice and the ring slot, and with them every flow's
 * color and backend, are what they were with the operators. The static
 * asserts in flow_hash.h check the condition that makes them exact for all
 * 2^32 inputs; this checks the code that uses them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <shift/flow_hash.h>
#include <shift/shadow.h>

static uint32_t xorshift32(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* x, and its neighbours around every multiple of d (no wrap past 2^32 - 1). */
static void check_around_multiples(uint32_t d, void (*check)(uint32_t))
{
	uint64_t m;

	for (m = 0; m <= UINT32_MAX; m += d) {
		check((uint32_t)m);
		if (m)
			check((uint32_t)(m - 1));
		if (m + 1 <= UINT32_MAX)
			check((uint32_t)(m + 1));
	}
}

static void check_ends(void (*check)(uint32_t))
{
	uint32_t i, s = 0x9e3779b9u;

	for (i = 0; i < (1u << 20); i++) {
		check(i);
		check(UINT32_MAX - i);
	}
	for (i = 0; i < (1u << 22); i++)
		check(xorshift32(&s));
}

static void check10000(uint32_t x)
{
	if (shift_div10000(x) != x / 10000 || shift_mod10000(x) != x % 10000)
		fail_msg("x = %u: %u, %u against %u, %u", x, shift_div10000(x), shift_mod10000(x),
			 x / 10000, x % 10000);
}

static void check_ring(uint32_t x)
{
	if (shift_div_ring(x) != x / SHIFT_RING_SIZE)
		fail_msg("x = %u: %u against %u", x, shift_div_ring(x), x / SHIFT_RING_SIZE);
}

static void test_div10000(void **state)
{
	(void)state;
	check_ends(check10000);
	check_around_multiples(10000, check10000);
}

static void test_div_ring(void **state)
{
	(void)state;
	check_ends(check_ring);
	check_around_multiples(SHIFT_RING_SIZE, check_ring);
}

/* The users: the slice, the ring slot (of the rehash) and the shadow slot. */
static void test_users(void **state)
{
	uint32_t i, h, s = 12345;

	(void)state;
	for (i = 0; i < (1u << 20); i++) {
		h = xorshift32(&s);
		assert_int_equal(shift_slice(h), h % 10000);
		assert_int_equal(shift_ring_slot(h),
				 shift_fmix32(h ^ 0x9e3779b9u, 4) % SHIFT_RING_SIZE);
		assert_true(shift_shadow_slot(h) < 10000);
	}
	assert_int_equal(shift_slice(UINT32_MAX), UINT32_MAX % 10000);
	assert_int_equal(shift_slice(9999), 9999);
	assert_int_equal(shift_slice(10000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_div10000),
		cmocka_unit_test(test_div_ring),
		cmocka_unit_test(test_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
