// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Another program on the XDP hook of an interface shift attaches to: with
 * attach = auto on a NIC, shift falls back to TC and warns, naming the other
 * program (TC ingress runs after it: it sees every packet first); with
 * attach = xdp the attach fails with EBUSY or EEXIST, naming it, and the
 * other program stays. A veth of the test's own netns stands for the NIC: a
 * link whose rtnetlink record names a parent device is a NIC to
 * iface_virtual().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "shift.skel.h"
#include "harness.h"
#include "datapath/attach.h"
#include "datapath/loader.h"
#include "test.h"

#define BUSY_IF "shbusy0"

/* r0 = XDP_PASS; exit: the other program. */
static int foreign_prog(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "foreign_pass", "GPL", insns, 2, NULL);
}

static __u32 xdp_prog_on(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return 0;
	return q.prog_id ? q.prog_id : q.skb_prog_id;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/*
 * What dp_attach_iface() logs, captured from stderr (shift_log's) into buf:
 * its return value.
 */
static int attach_logged(const struct shift *skel, const char *dir, const struct nl_link *l,
			 enum conf_attach how, struct xdp_attach *res, char *buf, size_t len)
{
	char path[] = "/tmp/shift-test-busy-XXXXXX";
	int tmp = mkstemp(path), saved, err;
	ssize_t n;

	buf[0] = '\0';
	if (tmp < 0)
		return -errno;
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(tmp, 2);
	err = dp_attach_iface(skel, dir, l, XDP_ROLE_CLIENT, how, CONF_XDP_AUTO, false, res);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(tmp, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(tmp);
	/* Shown as it was logged. */
	fputs(buf, stderr);
	return err;
}

static void rm_dir(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "attach_busy: %s failed\n", cmd);
}

TEST(attach_busy)
{
	struct loader_opts o = {
		.hash_seed = 7,
		.max_flows4 = 1024,
		.max_flows6 = 1024,
		.syn_slots = 4096,
		.compat = harness_compat(),
	};
	char dir[128], want[128], log[8192];
	struct shift *skel = NULL;
	struct xdp_attach res;
	struct nl_link l;
	int fd = -1, ifindex, err;
	__u32 id;

	if (!test_sub(t, "attach = auto on a NIC whose XDP hook another program holds: TC, a "
			 "warning naming it; attach = xdp: refused (EBUSY/EEXIST), naming it"))
		return;
	if (system("ip link add " BUSY_IF " type veth peer name shbusy1 && ip link set " BUSY_IF
		   " up && ip link set shbusy1 up")) {
		test_skip(t, "cannot make a veth pair");
		return;
	}
	ifindex = (int)if_nametoindex(BUSY_IF);
	fd = foreign_prog();
	if (!ASSERT_TRUE(t, ifindex > 0, "the veth") ||
	    !ASSERT_TRUE(t, fd >= 0, "load the other XDP program") ||
	    !ASSERT_OK(t, bpf_xdp_attach(ifindex, fd, XDP_FLAGS_SKB_MODE, NULL),
		       "attach it (generic)"))
		goto out;
	id = prog_id(fd);

	snprintf(dir, sizeof(dir), "/sys/fs/bpf/shift-test-busy-%d", getpid());
	o.pin_dir = dir;
	if (!ASSERT_OK(t, bpffs_prepare(dir), "bpffs"))
		goto out;
	skel = shift_skel_load_pinned(&o, NULL);
	if (!ASSERT_TRUE(t, skel != NULL, "load shift"))
		goto out;
	memset(&l, 0, sizeof(l));
	snprintf(l.name, sizeof(l.name), BUSY_IF);
	l.ifindex = ifindex;
	snprintf(l.parent, sizeof(l.parent), "0000:00:03.0"); /* a NIC to attach = auto */

	err = attach_logged(skel, dir, &l, CONF_ATTACH_XDP, &res, log, sizeof(log));
	ASSERT_TRUE(t, err == -EBUSY || err == -EEXIST, "attach = xdp: refused as busy");
	snprintf(want, sizeof(want), "another XDP program, id %u, holds the hook", id);
	if (!ASSERT_TRUE(t, strstr(log, want) != NULL, "attach = xdp: the error names it"))
		test_note(t, "want '%s' in: %s", want, log);
	ASSERT_EQ(t, xdp_prog_on(ifindex), id, "attach = xdp: the other program stays");
	ASSERT_TRUE(t, !dp_iface_pinned(dir, BUSY_IF), "attach = xdp: nothing pinned");

	err = attach_logged(skel, dir, &l, CONF_ATTACH_AUTO, &res, log, sizeof(log));
	ASSERT_OK(t, err, "attach = auto: attached");
	ASSERT_EQ(t, res.hook, DP_HOOK_TC, "attach = auto: on TC");
	snprintf(want, sizeof(want), "another XDP program (id %u) holds the XDP hook", id);
	if (!ASSERT_TRUE(t, strstr(log, want) != NULL, "attach = auto: a warning names it"))
		test_note(t, "want '%s' in: %s", want, log);
	ASSERT_TRUE(t, strstr(log, "warning") != NULL || strstr(log, "<4>") != NULL,
		    "attach = auto: at warning level");
	ASSERT_EQ(t, xdp_prog_on(ifindex), id, "attach = auto: the other program stays");
	ASSERT_OK(t, dp_detach_iface(dir, BUSY_IF), "detach shift");
out:
	if (ifindex > 0)
		bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL);
	if (fd >= 0)
		close(fd);
	if (skel)
		shift__destroy(skel);
	if (system("ip link del " BUSY_IF " 2>/dev/null"))
		test_note(t, "ip link del " BUSY_IF " failed");
	rm_dir(dir);
}
