/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small selftest-style runner: tests register themselves with TEST(), split
 * into subtests with test_sub(), and check with ASSERT_*() which print what
 * differed and return whether the check held (so `if (!ASSERT_OK(...)) goto
 * out;`). Every subtest is one result in the closing "N passed, N failed" line.
 */
#ifndef SHIFT_TEST_H
#define SHIFT_TEST_H

#include <stdbool.h>
#include <string.h>
#include <linux/types.h>

struct tctx;
typedef void (*test_fn)(struct tctx *t);

void test_register(const char *name, test_fn fn);

#define TEST(name)                                                     \
	static void test_##name(struct tctx *t);                       \
	__attribute__((constructor)) static void register_##name(void) \
	{                                                              \
		test_register(#name, test_##name);                     \
	}                                                              \
	static void test_##name(struct tctx *t)

/* Start a subtest (ends the previous one); false if -t filters it out. */
bool test_sub(struct tctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Would subtest `sub` of this test run? (to skip an expensive set-up) */
bool test_would_run(const struct tctx *t, const char *sub);
/* Mark the current subtest (or the test) skipped, with a reason. */
void test_skip(struct tctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void test_failf(struct tctx *t, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A line of information, always printed (figures the issue asks to see). */
void test_note(struct tctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Printed with -v only. */
void test_debug(struct tctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool test_verbose(const struct tctx *t);
/* Has the current subtest failed so far? */
bool test_failed(const struct tctx *t);
/* Compare two frames; on a difference print a hex dump diff. */
bool test_pkt_eq(struct tctx *t, const char *file, int line, const char *name, const __u8 *exp,
		 __u32 elen, const __u8 *got, __u32 glen);

#define ASSERT_TRUE(t, cond, name)                                                         \
	({                                                                                 \
		bool ok_ = (cond);                                                         \
		if (!ok_)                                                                  \
			test_failf(t, __FILE__, __LINE__, "%s: expected %s", name, #cond); \
		ok_;                                                                       \
	})

#define ASSERT_EQ(t, got, exp, name)                                                             \
	({                                                                                       \
		unsigned long long g_ = (unsigned long long)(got);                               \
		unsigned long long e_ = (unsigned long long)(exp);                               \
		bool ok_ = g_ == e_;                                                             \
		if (!ok_)                                                                        \
			test_failf(t, __FILE__, __LINE__,                                        \
				   "%s: %s = %llu (0x%llx), expected %llu (0x%llx)", name, #got, \
				   g_, g_, e_, e_);                                              \
		ok_;                                                                             \
	})

#define ASSERT_LE(t, got, max, name)                                                           \
	({                                                                                     \
		double g_ = (double)(got), m_ = (double)(max);                                 \
		bool ok_ = g_ <= m_;                                                           \
		if (!ok_)                                                                      \
			test_failf(t, __FILE__, __LINE__, "%s: %s = %g, expected <= %g", name, \
				   #got, g_, m_);                                              \
		ok_;                                                                           \
	})

/* err: 0 or a negative errno (libbpf 1.x and dp_* convention). */
#define ASSERT_OK(t, err, name)                                                               \
	({                                                                                    \
		int e_ = (int)(err);                                                          \
		bool ok_ = e_ == 0;                                                           \
		if (!ok_)                                                                     \
			test_failf(t, __FILE__, __LINE__, "%s: %s = %d (%s)", name, #err, e_, \
				   strerror(e_ < 0 ? -e_ : e_));                              \
		ok_;                                                                          \
	})

#define ASSERT_PKT_EQ(t, exp, elen, got, glen, name) \
	test_pkt_eq(t, __FILE__, __LINE__, name, exp, elen, got, glen)

#endif
