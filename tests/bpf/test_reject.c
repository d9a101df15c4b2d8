// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A program that fails to load prints the verifier log: load reject.bpf.o
 * (an XDP program reading the packet without a bounds check) with libbpf
 * routed through shift_log_libbpf(), capture stderr, and look for the
 * verifier's complaint, libbpf's log frame and a source line of the program.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "ops/log.h"
#include "test.h"

#define LOG_MAX (1 << 20)

/* .output/tests/reject.bpf.o sits next to .output/tests/bpf_test. */
static int reject_obj_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	if (snprintf(buf, len, "%s/reject.bpf.o", dirname(exe)) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Load the object with stderr captured into *out (malloc'ed, NUL-terminated). */
static int load_capturing(struct tctx *t, const char *path, char **out, int *load_err)
{
	struct bpf_object *obj;
	FILE *cap;
	size_t n;
	int saved, err = 0;

	*out = NULL;
	cap = tmpfile();
	if (!cap)
		return -errno;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	if (saved < 0) {
		err = -errno;
		fclose(cap);
		return err;
	}
	if (dup2(fileno(cap), STDERR_FILENO) < 0) {
		err = -errno;
		close(saved);
		fclose(cap);
		return err;
	}

	shift_log_libbpf();
	obj = bpf_object__open_file(path, NULL);
	if (!obj)
		*load_err = -errno;
	else
		*load_err = bpf_object__load(obj);
	bpf_object__close(obj);

	fflush(stderr);
	if (dup2(saved, STDERR_FILENO) < 0)
		err = -errno;
	close(saved);
	if (err) {
		fclose(cap);
		return err;
	}
	*out = calloc(1, LOG_MAX + 1);
	if (!*out) {
		fclose(cap);
		return -ENOMEM;
	}
	rewind(cap);
	n = fread(*out, 1, LOG_MAX, cap);
	(*out)[n] = '\0';
	fclose(cap);
	test_debug(t, "captured %zu bytes of stderr:\n%s", n, *out);
	return 0;
}

TEST(verifier_log)
{
	char path[PATH_MAX], *log = NULL;
	int err, load_err = 0;

	if (!test_sub(t, "a rejected program prints the verifier log"))
		return;
	if (!ASSERT_OK(t, reject_obj_path(path, sizeof(path)), "locating reject.bpf.o"))
		return;
	if (access(path, R_OK)) {
		test_skip(t, "%s not built (needs the Makefile rule for tests/bpf/reject.bpf.c)",
			  path);
		return;
	}
	err = load_capturing(t, path, &log, &load_err);
	if (!ASSERT_OK(t, err, "capturing stderr"))
		goto out;
	ASSERT_TRUE(t, load_err < 0, "the verifier rejects reject.bpf.o");
	ASSERT_TRUE(t, strstr(log, "invalid access to packet") != NULL,
		    "the verifier's complaint is printed");
	ASSERT_TRUE(t, strstr(log, "BEGIN PROG LOAD LOG") != NULL,
		    "libbpf's program load log is printed");
	ASSERT_TRUE(t, strstr(log, "eth->h_proto") != NULL,
		    "the offending source line is printed (-g)");
	if (test_failed(t))
		test_note(t, "captured stderr:\n%s", log);
out:
	free(log);
}
