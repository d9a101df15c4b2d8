// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What the libFuzzer harnesses of tests/fuzz found, kept as unit tests so the
 * gcc ASan/UBSan build of the unit suite catches a regression without clang's
 * libFuzzer. Inputs are copied into buffers of exactly their size: a read one
 * byte past the end is a heap-buffer-overflow, as it was under the fuzzer.
 *
 * Besides the rows below, every input of tests/fuzz/corpus/<harness>/ (the
 * seeds, and each crash once found: run.sh replays them there too) goes
 * through its parser here.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "control/ctl_proto.h"
#include "ops/state.h"
#include "config/weight.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define CORPUS_DIR "tests/fuzz/corpus"

static char *exact_copy(const void *data, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, data, len);
	return p;
}

/*
 * fuzz_ctl, crash-escape-past-word: a '%' next to the end of the last word of
 * a line without its '\n' read the byte after the line (decode() let i + 2 == n
 * through). Every '%' must have both hex digits inside its word.
 */
static void test_ctl_escape_at_word_end(void **state)
{
	static const struct {
		const char *line;
		size_t len;
		int ret;
		const char *why;
	} rows[] = {
		{ "c\x9b%\x88", 4, -EINVAL, "truncated %-escape" }, /* the fuzzer's input */
		{ "a%4", 3, -EINVAL, "truncated %-escape" },
		{ "a%4\n", 4, -EINVAL, "truncated %-escape" },
		{ "a%", 2, -EINVAL, "truncated %-escape" },
		{ "rollback web --reason x%2", 25, -EINVAL, "truncated %-escape" },
		{ "rollback web%2 x", 16, -EINVAL, "truncated %-escape" },
		{ "a%41", 4, 0, NULL },
		{ "a%41\n", 5, 0, NULL },
		{ "status %2541", 12, 0, NULL },
	};
	struct ctl_request r;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char *line = exact_copy(rows[i].line, rows[i].len);
		int ret;

		err[0] = '\0';
		ret = ctl_parse_request(line, rows[i].len, &r, err, sizeof(err));
		free(line);
		if (ret != rows[i].ret || (rows[i].why && !strstr(err, rows[i].why)))
			fail_msg("row %zu: ctl_parse_request = %d (%s), want %d (%s)", i, ret, err,
				 rows[i].ret, rows[i].why ? rows[i].why : "");
	}
	/* The accepted ones decode as they should. */
	assert_int_equal(ctl_parse_request("status %2541", 12, &r, err, sizeof(err)), 0);
	assert_string_equal(r.verb, "status");
	assert_int_equal(r.argc, 1);
	assert_string_equal(r.argv[0], "%41");
}

/* --- every corpus input through its parser ------------------------------------ */

static void run_config(const char *data, size_t len)
{
	struct shift_conf *c = NULL;
	char err[512];

	if (!conf_parse(data, len, "corpus", &c, err, sizeof(err)))
		conf_free(c);
}

static void run_weight(const char *data, size_t len)
{
	char *s = malloc(len + 1), err[256];
	__u32 bp;

	assert_non_null(s);
	memcpy(s, data, len);
	s[len] = '\0';
	weight_parse(s, &bp, err, sizeof(err));
	free(s);
}

static void run_state(const char *data, size_t len)
{
	struct shift_state st = { 0 };
	char err[256];

	if (!state_parse(data, len, &st, err, sizeof(err)))
		state_free(&st);
}

static void run_ctl(const char *data, size_t len)
{
	struct ctl_request r;
	char err[256];

	ctl_parse_request(data, len, &r, err, sizeof(err));
}

static size_t replay_dir(const char *name, void (*run)(const char *, size_t))
{
	char path[512];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, name);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *buf;
		long len;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", CORPUS_DIR, name, de->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		rewind(f);
		buf = malloc(len > 0 ? (size_t)len : 1);
		assert_non_null(buf);
		if (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)
			fail_msg("%s: short read", path);
		fclose(f);
		run(buf, len > 0 ? (size_t)len : 0);
		free(buf);
		n++;
	}
	closedir(d);
	return n;
}

static void test_corpora(void **state)
{
	size_t n;

	(void)state;
	n = replay_dir("config", run_config);
	n += replay_dir("weight", run_weight);
	n += replay_dir("state", run_state);
	n += replay_dir("ctl", run_ctl);
	if (!n)
		skip(); /* not run from the repository root */
	print_message("%zu corpus inputs replayed\n", n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctl_escape_at_word_end),
		cmocka_unit_test(test_corpora),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
