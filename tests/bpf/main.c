// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bpf_test: runs the BPF_PROG_TEST_RUN tests of the real datapath programs.
 *
 *   bpf_test [-t SUBSTRING] [-T NAME[,NAME...]] [-l] [-v]
 *
 * -t runs the subtests whose "test/subtest" contains SUBSTRING (a test may still
 * set itself up, e.g. load the object, before it knows none of its subtests
 * match); -T runs only the named tests and never calls the others at all (the
 * vmtest's quick mode, where each load of the object costs ~30 s under TCG).
 *
 * Needs root. Everything runs in a private network namespace created at start,
 * so the host's interfaces, routes and neighbours are never touched.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ops/log.h"
#include "pkt.h"
#include "test.h"

#define MAX_TESTS 64

/* The registry: filled by the TEST() constructors before main() runs. */
static struct {
	const char *name;
	test_fn fn;
} registry[MAX_TESTS];
static int n_registered;

void test_register(const char *name, test_fn fn)
{
	if (n_registered >= MAX_TESTS) {
		fprintf(stderr, "bpf_test: more than %d tests, raise MAX_TESTS\n", MAX_TESTS);
		abort();
	}
	registry[n_registered].name = name;
	registry[n_registered].fn = fn;
	n_registered++;
}

struct tctx {
	const char *filter;
	const char *only; /* -T: comma-separated test names, NULL = all */
	bool verbose;
	const char *test; /* current test */
	int test_num;
	char sub[200]; /* current subtest */
	int sub_num;
	bool in_sub;
	bool failed; /* current unit (subtest, or the test outside any subtest) */
	bool skipped;
	char skip_why[200];
	bool test_failed; /* a failure outside any subtest (set-up) */
	int passed, nfailed, nskipped;
};

bool test_verbose(const struct tctx *t)
{
	return t->verbose;
}

bool test_failed(const struct tctx *t)
{
	return t->failed;
}

static bool matches(const struct tctx *t, const char *test, const char *sub)
{
	char full[300];

	if (!t->filter)
		return true;
	snprintf(full, sizeof(full), "%s/%s", test, sub ? sub : "");
	return strstr(full, t->filter) != NULL;
}

bool test_would_run(const struct tctx *t, const char *sub)
{
	return matches(t, t->test, sub);
}

/* Is test NAME in the -T list? */
static bool selected(const struct tctx *t, const char *name)
{
	size_t n = strlen(name);
	const char *p = t->only;

	if (!p)
		return true;
	while (*p) {
		const char *e = strchrnul(p, ',');

		if ((size_t)(e - p) == n && strncmp(p, name, n) == 0)
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

/* Every name in the -T list is a registered test. */
static bool only_known(const char *only)
{
	const char *p = only;
	int i;

	while (*p) {
		const char *e = strchrnul(p, ',');

		for (i = 0; i < n_registered; i++)
			if (strlen(registry[i].name) == (size_t)(e - p) &&
			    strncmp(p, registry[i].name, e - p) == 0)
				break;
		if (i == n_registered) {
			fprintf(stderr,
				"bpf_test: -T: no test named '%.*s' (bpf_test -l lists them)\n",
				(int)(e - p), p);
			return false;
		}
		p = *e ? e + 1 : e;
	}
	return true;
}

static void end_sub(struct tctx *t)
{
	if (!t->in_sub)
		return;
	if (t->failed) {
		t->nfailed++;
		printf("#%d/%d %s/%s:FAIL\n", t->test_num, t->sub_num, t->test, t->sub);
	} else if (t->skipped) {
		t->nskipped++;
		printf("#%d/%d %s/%s:SKIP (%s)\n", t->test_num, t->sub_num, t->test, t->sub,
		       t->skip_why);
	} else {
		t->passed++;
		printf("#%d/%d %s/%s:OK\n", t->test_num, t->sub_num, t->test, t->sub);
	}
	fflush(stdout);
	t->in_sub = false;
	t->failed = false;
	t->skipped = false;
}

bool test_sub(struct tctx *t, const char *fmt, ...)
{
	char name[sizeof(t->sub)];
	va_list ap;

	end_sub(t);
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	t->sub_num++;
	if (!matches(t, t->test, name))
		return false;
	memcpy(t->sub, name, sizeof(name));
	t->in_sub = true;
	t->failed = false;
	t->skipped = false;
	return true;
}

void test_skip(struct tctx *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->skip_why, sizeof(t->skip_why), fmt, ap);
	va_end(ap);
	t->skipped = true;
}

static void vprint_indented(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
}

void test_failf(struct tctx *t, const char *file, int line, const char *fmt, ...)
{
	const char *base = strrchr(file, '/');
	char prefix[300];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "    %s:%d: %s%s", base ? base + 1 : file, line,
		 t->in_sub ? "" : "(set-up) ", "");
	va_start(ap, fmt);
	vprint_indented(prefix, fmt, ap);
	va_end(ap);
	fflush(stdout);
	if (t->in_sub)
		t->failed = true;
	else
		t->test_failed = true;
}

void test_note(struct tctx *t, const char *fmt, ...)
{
	va_list ap;

	(void)t;
	va_start(ap, fmt);
	vprint_indented("    ", fmt, ap);
	va_end(ap);
}

void test_debug(struct tctx *t, const char *fmt, ...)
{
	va_list ap;

	if (!t->verbose)
		return;
	va_start(ap, fmt);
	vprint_indented("    . ", fmt, ap);
	va_end(ap);
}

bool test_pkt_eq(struct tctx *t, const char *file, int line, const char *name, const __u8 *exp,
		 __u32 elen, const __u8 *got, __u32 glen)
{
	if (elen == glen && memcmp(exp, got, elen) == 0)
		return true;
	test_failf(t, file, line, "%s: output packet differs from the expected one", name);
	pkt_hexdiff(stdout, exp, elen, got, glen);
	fflush(stdout);
	return false;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_test(struct tctx *t, int idx)
{
	int before = t->passed + t->nfailed + t->nskipped;
	double start = now_s();

	t->test = registry[idx].name;
	t->test_num = idx + 1;
	t->sub_num = 0;
	t->in_sub = false;
	t->failed = t->skipped = t->test_failed = false;
	registry[idx].fn(t);
	end_sub(t);
	if (t->test_failed) {
		t->nfailed++;
		printf("#%d %s:FAIL (set-up)\n", t->test_num, t->test);
	} else if (t->passed + t->nfailed + t->nskipped == before && matches(t, t->test, NULL) &&
		   t->skipped) {
		t->nskipped++;
		printf("#%d %s:SKIP (%s)\n", t->test_num, t->test, t->skip_why);
	}
	if (t->verbose)
		printf("    . %s took %.2f s\n", t->test, now_s() - start);
	fflush(stdout);
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-t SUBSTRING] [-T NAME[,NAME...]] [-l] [-v]\n", argv0);
}

int main(int argc, char **argv)
{
	struct tctx t;
	bool list = false;
	int opt, i;

	memset(&t, 0, sizeof(t));
	while ((opt = getopt(argc, argv, "t:T:lvh")) != -1) {
		switch (opt) {
		case 't':
			t.filter = optarg;
			break;
		case 'T':
			t.only = optarg;
			break;
		case 'l':
			list = true;
			break;
		case 'v':
			t.verbose = true;
			break;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (optind != argc) {
		usage(argv[0]);
		return 2;
	}
	if (t.only && !only_known(t.only))
		return 2;
	if (list) {
		for (i = 0; i < n_registered; i++)
			printf("%s\n", registry[i].name);
		return 0;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bpf_test: needs root (BPF_PROG_TEST_RUN, a private netns)\n");
		printf("0 passed, 0 failed, 1 skipped\n");
		return 77;
	}
	/* Never touch the host's network namespace. */
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bpf_test: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	shift_log_init("bpf_test", t.verbose ? SHIFT_LOG_DEBUG : SHIFT_LOG_WARN);
	shift_log_libbpf();
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (i = 0; i < n_registered; i++)
		if (selected(&t, registry[i].name))
			run_test(&t, i);
	printf("%d passed, %d failed, %d skipped\n", t.passed, t.nfailed, t.nskipped);
	return t.nfailed ? 1 : 0;
}
