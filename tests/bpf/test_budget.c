// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The verifier's budget: each program of the datapath, loaded on its own,
 * with the verifier's statistics. A program must stay well under the 1M
 * instructions the verifier walks at most: Debian 12's 6.1 kernel walks two
 * or three times what newer ones do for the same program, and a datapath
 * change once took a program past the limit there while 6.18 accepted it.
 * Under vmtest this runs on 6.1, where the margin matters; the figures are
 * printed so that a change's cost shows in review.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "datapath/loader.h"
#include "harness.h"
#include "test.h"

#define BUDGET_LOG (1 << 20)
/* 85 % of the verifier's limit (BPF_COMPLEXITY_LIMIT_INSNS): the rest is
 * the margin for the next change and for kernels that walk more. */
#define BUDGET_MAX 850000ull

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/* Load only program `which` of the embedded object; *insns from the log. */
static int load_one(const char *which, char *log, unsigned long long *insns)
{
	const void *elf;
	struct bpf_object *obj;
	struct bpf_program *p;
	size_t sz;
	const char *s;
	int err;

	/* The build this kernel takes (6.1 under vmtest: shift_compat). */
	elf = shift_object_bytes(shift_use_compat(harness_compat()), &sz);
	obj = bpf_object__open_mem(elf, sz, NULL);
	if (!obj)
		return -errno;
	bpf_object__for_each_program(p, obj) {
		if (strcmp(bpf_program__name(p), which) == 0) {
			bpf_program__set_log_level(p, 4); /* statistics only */
			bpf_program__set_log_buf(p, log, BUDGET_LOG);
		} else {
			bpf_program__set_autoload(p, false);
		}
	}
	log[0] = '\0';
	err = bpf_object__load(obj);
	bpf_object__close(obj);
	s = strstr(log, "processed ");
	*insns = s ? strtoull(s + strlen("processed "), NULL, 10) : 0;
	return err;
}

TEST(budget)
{
	static const char *const progs[] = {
		"shift_xdp_client", "shift_xdp_backend", "shift_xdp_both",
		"shift_tc_client",  "shift_tc_backend",	 "shift_tc_both",
	};
	libbpf_print_fn_t old = libbpf_set_print(silent);
	char *log = malloc(BUDGET_LOG);
	unsigned long long n;
	size_t i;
	int err;

	if (!ASSERT_TRUE(t, log != NULL, "log buffer"))
		goto out;
	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		if (!test_sub(t, "budget: %s", progs[i]))
			continue;
		err = load_one(progs[i], log, &n);
		if (!ASSERT_OK(t, err, progs[i]))
			continue;
		test_note(t, "%s: %llu instructions processed (budget %llu, limit 1000000)",
			  progs[i], n, BUDGET_MAX);
		ASSERT_TRUE(t, n > 0, "the verifier reported its statistics");
		ASSERT_LE(t, n, BUDGET_MAX, progs[i]);
	}
out:
	free(log);
	libbpf_set_print(old);
}
