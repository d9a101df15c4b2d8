// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Shadow mode's pairing arithmetic: classify, request completeness, status
 * lines, the mismatch window, and the sample rule shared with the datapath. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <shift/shadow.h>
#include "shadow/pair.h"

#define MS (1000ull * 1000)
#define SEC (1000ull * MS)

static struct shadow_answer st(__u16 status, __u64 ttfb)
{
	struct shadow_answer a = { .how = SHADOW_ANS_STATUS, .status = status, .ttfb_ns = ttfb };

	return a;
}

static void test_classify(void **state)
{
	struct shadow_answer err = { .how = SHADOW_ANS_ERROR };
	struct shadow_answer to = { .how = SHADOW_ANS_TIMEOUT };
	struct shadow_answer b200 = st(200, 5 * MS);

	(void)state;
	assert_int_equal(shadow_classify(&b200, &(struct shadow_answer){ 0 }, 0), SHADOW_MM_ERROR);
	assert_int_equal(shadow_classify(&b200, &to, 2.0), SHADOW_MM_TIMEOUT);
	assert_int_equal(shadow_classify(&b200, &err, 2.0), SHADOW_MM_ERROR);
	/* Same class, different code: a match. */
	assert_int_equal(shadow_classify(&b200,
					 &(struct shadow_answer){ .how = SHADOW_ANS_STATUS,
								  .status = 204,
								  .ttfb_ns = MS },
					 2.0),
			 SHADOW_MATCH);
	assert_int_equal(shadow_classify(&b200,
					 &(struct shadow_answer){ .how = SHADOW_ANS_STATUS,
								  .status = 500,
								  .ttfb_ns = MS },
					 2.0),
			 SHADOW_MM_STATUS);
	/* Blue failed, green answered: a difference. */
	assert_int_equal(shadow_classify(&err, &b200, 2.0), SHADOW_MM_STATUS);
	/* Slower: above the ratio AND above the floor. */
	{
		struct shadow_answer g = st(200, 5 * MS + SHADOW_SLOWER_FLOOR_NS + 1);

		assert_int_equal(shadow_classify(&b200, &g, 2.0), SHADOW_MM_SLOWER);
		assert_int_equal(shadow_classify(&b200, &g, 0), SHADOW_MATCH); /* ratio off */
		assert_int_equal(shadow_classify(&b200, &g, 10.0), SHADOW_MATCH);
	}
	{
		/* 3x blue but only 2 ms slower: scheduling noise, not a mismatch. */
		struct shadow_answer b = st(200, MS), g = st(200, 3 * MS);

		assert_int_equal(shadow_classify(&b, &g, 2.0), SHADOW_MATCH);
	}
	assert_string_equal(shadow_kind_name(SHADOW_MM_TIMEOUT), "green_timeout");
	assert_string_equal(shadow_kind_name(SHADOW_KINDS), "unknown");
}

#define REQ(s) ((const __u8 *)(s)), (sizeof(s) - 1)

static void test_complete(void **state)
{
	(void)state;
	assert_true(shadow_request_complete(REQ("GET / HTTP/1.1\r\nHost: a\r\n\r\n")));
	assert_false(shadow_request_complete(REQ("GET / HTTP/1.1\r\nHost: a\r\n")));
	assert_true(shadow_request_complete(
		REQ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")));
	assert_false(shadow_request_complete(
		REQ("POST /x HTTP/1.1\r\nHost: a\r\ncontent-length: 10\r\n\r\nabc")));
	assert_false(shadow_request_complete(
		REQ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n")));
	/* Bytes after the headers without a length: a second request, not ours. */
	assert_false(shadow_request_complete(REQ("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /")));
	assert_true(shadow_request_complete(REQ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
						"\r\n3\r\nabc\r\n0\r\n\r\n")));
	assert_false(shadow_request_complete(REQ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
						 "\r\n3\r\nabc\r\n")));
	assert_false(shadow_request_complete(REQ("")));
}

static void test_status_line(void **state)
{
	__u16 s = 0;

	(void)state;
	assert_int_equal(shadow_status_line("HTTP/1.1 503 Busy", 17, &s), 1);
	assert_int_equal(s, 503);
	assert_int_equal(shadow_status_line("HTTP/1.0 200", 12, &s), 1);
	assert_int_equal(s, 200);
	assert_int_equal(shadow_status_line("HTTP/1.1 2", 10, &s), 0);
	assert_int_equal(shadow_status_line("HTT", 3, &s), 0);
	assert_int_equal(shadow_status_line("SSH-2.0-x   ", 12, &s), -1);
	assert_int_equal(shadow_status_line("HTTP/1.1 999", 12, &s), -1);
	assert_int_equal(shadow_status_line("HTTP/2.0 200", 12, &s), -1);
}

static void test_window(void **state)
{
	struct shadow_window w;
	__u64 n, mm, t0 = 1000 * SEC;

	(void)state;
	shadow_window_init(&w, 10 * SEC);
	assert_true(shadow_window_rate(&w, t0, &n, &mm) == 0.0);
	for (int i = 0; i < 90; i++)
		shadow_window_add(&w, t0 + (__u64)i * 10 * MS, false);
	for (int i = 0; i < 10; i++)
		shadow_window_add(&w, t0 + SEC, true);
	assert_true(shadow_window_rate(&w, t0 + SEC, &n, &mm) == 0.1);
	assert_int_equal(n, 100);
	assert_int_equal(mm, 10);
	/* 5 s later everything is still inside the window. */
	shadow_window_rate(&w, t0 + 5 * SEC, &n, &mm);
	assert_int_equal(n, 100);
	/* Past the window: everything has aged out. */
	assert_true(shadow_window_rate(&w, t0 + 12 * SEC, &n, &mm) == 0.0);
	assert_int_equal(n, 0);
	/* The first bucket ages out first. */
	shadow_window_init(&w, 10 * SEC);
	shadow_window_add(&w, t0, true);
	shadow_window_add(&w, t0 + 5 * SEC, false);
	shadow_window_rate(&w, t0 + 10 * SEC + SEC / 2, &n, &mm);
	assert_int_equal(n, 1);
	assert_int_equal(mm, 0);
}

static void test_sample_rule(void **state)
{
	unsigned in10 = 0, both = 0;

	(void)state;
	/* ~10 % sampled, and independent of the color slice h % 10000. */
	for (__u32 h = 0; h < 100000; h++) {
		bool s = shift_shadow_slot(h * 2654435761u) < 1000;

		in10 += s;
		both += s && (h * 2654435761u) % 10000 < 1000;
	}
	assert_in_range(in10, 9000, 11000);
	assert_in_range(both, 700, 1300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),    cmocka_unit_test(test_complete),
		cmocka_unit_test(test_status_line), cmocka_unit_test(test_window),
		cmocka_unit_test(test_sample_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
