// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shiftd verifies only the entry programs its interfaces' roles and its
 * attach mode run (loader_opts.roles and .hooks): the verifier is most of a
 * start, and shift_*_both, which a two-armed host never runs, is the largest
 * program. Checked on the real loader: every entry program has one role by
 * its name, and a load leaves exactly the others without a file descriptor.
 */
#include <errno.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "shift.skel.h"
#include "datapath/loader.h"
#include "harness.h"
#include "test.h"

/* Each program of the skeleton loaded (fd >= 0) or not, as "name=1;name=0;...". */
static void loaded_set(const struct shift *skel, char *buf, size_t len)
{
	struct bpf_program *p;
	size_t used = 0;

	buf[0] = '\0';
	bpf_object__for_each_program(p, skel->obj) {
		int n = snprintf(buf + used, len - used, "%s=%d;", bpf_program__name(p),
				 bpf_program__fd(p) >= 0);

		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

static void load_and_check(struct tctx *t, __u32 hooks, __u32 roles, const char *want)
{
	struct loader_opts o = {
		.hash_seed = 1,
		.max_flows4 = 1024,
		.max_flows6 = 1024,
		.hooks = hooks,
		.roles = roles,
		.compat = harness_compat(),
	};
	struct shift *skel = shift_skel_load(&o);
	char got[512];

	if (!ASSERT_TRUE(t, skel != NULL, "the object loads"))
		return;
	loaded_set(skel, got, sizeof(got));
	if (!ASSERT_TRUE(t, strcmp(got, want) == 0, "the programs loaded"))
		fprintf(stderr, "  got:  %s\n  want: %s\n", got, want);
	shift__destroy(skel);
}

TEST(load_roles)
{
	struct bpf_program *p;
	struct shift *skel;
	unsigned int per_role[8] = { 0 };
	unsigned int entry = 0;

	test_sub(t, "load_roles: every entry program has one role, by its name");
	skel = shift__open();
	if (!ASSERT_TRUE(t, skel != NULL, "the object opens"))
		return;
	bpf_object__for_each_program(p, skel->obj) {
		__u32 r = shift_prog_role(bpf_program__name(p));
		bool one = r == SHIFT_LOAD_ROLE_CLIENT || r == SHIFT_LOAD_ROLE_BACKEND ||
			   r == SHIFT_LOAD_ROLE_BOTH;

		if (!ASSERT_TRUE(t, one, bpf_program__name(p)))
			continue;
		per_role[r]++;
		entry++;
	}
	shift__destroy(skel);
	ASSERT_EQ(t, entry, 6u, "entry programs");
	ASSERT_EQ(t, per_role[SHIFT_LOAD_ROLE_CLIENT], 2u, "client: an XDP and a TC program");
	ASSERT_EQ(t, per_role[SHIFT_LOAD_ROLE_BACKEND], 2u, "backend: an XDP and a TC program");
	ASSERT_EQ(t, per_role[SHIFT_LOAD_ROLE_BOTH], 2u, "both: an XDP and a TC program");
	ASSERT_EQ(t, shift_prog_role("shift_weight_cas"), 0u, "another program: no role");
	ASSERT_EQ(t, shift_prog_role("other_client"), 0u, "not shift's: no role");

	if (test_sub(t, "load_roles: two-armed, attach = xdp: client and backend XDP only"))
		load_and_check(t, SHIFT_LOAD_XDP, SHIFT_LOAD_ROLE_CLIENT | SHIFT_LOAD_ROLE_BACKEND,
			       "shift_xdp_client=1;shift_xdp_backend=1;shift_xdp_both=0;"
			       "shift_tc_client=0;shift_tc_backend=0;shift_tc_both=0;");
	if (test_sub(t, "load_roles: one-armed beside a client, attach = tc: both and client TC"))
		load_and_check(t, SHIFT_LOAD_TC, SHIFT_LOAD_ROLE_BOTH | SHIFT_LOAD_ROLE_CLIENT,
			       "shift_xdp_client=0;shift_xdp_backend=0;shift_xdp_both=0;"
			       "shift_tc_client=1;shift_tc_backend=0;shift_tc_both=1;");
}
