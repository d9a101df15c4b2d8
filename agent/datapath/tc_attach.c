// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TC (clsact ingress) attachment, kept across restarts like the XDP links:
 *   - tcx (Linux >= 6.6): a bpf_link pinned at <pin_dir>/links/<ifname>:tcx,
 *     updated in place with bpf_link_update;
 *   - legacy clsact (6.1): a cls_bpf filter (fixed handle and priority) that
 *     outlives the process by itself, replaced atomically (tc filter replace
 *     semantics); the program is pinned at <pin_dir>/links/<ifname>:clsact so
 *     `shiftd --detach` finds interfaces since removed from the config.
 * ':' because bpffs refuses '.' in names and interface names cannot hold ':'.
 * Which one is a feature probe (does the kernel create a tcx link?), never a
 * kernel version check. SHIFT_TC_LEGACY=1 in the environment skips tcx, so the
 * legacy path is tested on new kernels too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "shift.skel.h"
#include "datapath/attach.h"
#include "datapath/loader.h"
#include "ops/log.h"

/* UAPI values Debian 12's 6.1 headers do not have yet. */
#ifndef BPF_TCX_INGRESS
#define BPF_TCX_INGRESS_ 46
#else
#define BPF_TCX_INGRESS_ BPF_TCX_INGRESS
#endif
#define BPF_LINK_TYPE_TCX_ 11

/* Our cls_bpf filter on the clsact ingress hook. */
#define SHIFT_TC_HANDLE 0x5f1
#define SHIFT_TC_PRIO 1

static int tc_prog_fd(const struct shift *skel, enum xdp_role role)
{
	switch (role) {
	case XDP_ROLE_CLIENT:
		return bpf_program__fd(skel->progs.shift_tc_client);
	case XDP_ROLE_BACKEND:
		return bpf_program__fd(skel->progs.shift_tc_backend);
	default:
		return bpf_program__fd(skel->progs.shift_tc_both);
	}
}

static int prog_info_fd(int fd, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

/* Is the program with this id the same code as prog_fd's? */
static bool same_prog(__u32 id, int prog_fd)
{
	struct bpf_prog_info cur, want;
	int fd = bpf_prog_get_fd_by_id(id);
	bool same;

	if (fd < 0)
		return false;
	same = prog_info_fd(fd, &cur) == 0 && prog_info_fd(prog_fd, &want) == 0 &&
	       !memcmp(cur.tag, want.tag, sizeof(cur.tag));
	close(fd);
	return same;
}

static __u32 prog_id_of(int prog_fd)
{
	struct bpf_prog_info info;

	return prog_info_fd(prog_fd, &info) ? 0 : info.id;
}

static void pin_path(char *buf, size_t len, const char *pin_dir, const char *ifname,
		     const char *suffix)
{
	snprintf(buf, len, "%s/links/%s%s", pin_dir, ifname, suffix);
}

/* A pinned tcx link: keep, update, or -ENOLINK when it is dead or not ours to use. */
static int tcx_adopt(const char *path, int ifindex, int prog_fd, bool keep_ok,
		     struct xdp_attach *res)
{
	struct bpf_link_info li;
	__u32 len = sizeof(li);
	int lfd, err = 0;

	lfd = bpf_obj_get(path);
	if (lfd < 0)
		return errno == ENOENT ? -ENOLINK : -errno;
	memset(&li, 0, sizeof(li));
	if (bpf_obj_get_info_by_fd(lfd, &li, &len)) {
		err = -errno;
		goto out;
	}
	/* tcx's info starts with the ifindex, where XDP's does: the 6.1 headers
	 * have no tcx member. A link whose interface went away reads 0. */
	if (li.type != BPF_LINK_TYPE_TCX_ || li.xdp.ifindex != (__u32)ifindex) {
		err = -ENOLINK;
		goto out;
	}
	if (keep_ok && same_prog(li.prog_id, prog_fd)) {
		res->outcome = XDP_KEPT;
		res->prog_id = li.prog_id;
		goto out;
	}
	if (bpf_link_update(lfd, prog_fd, NULL)) {
		err = -errno;
		goto out;
	}
	res->outcome = XDP_REPLACED;
	res->prog_id = prog_id_of(prog_fd);
out:
	close(lfd);
	return err;
}

static int tcx_attach(const char *path, int ifindex, int prog_fd, struct xdp_attach *res)
{
	int lfd = bpf_link_create(prog_fd, ifindex, BPF_TCX_INGRESS_, NULL);
	int err;

	if (lfd < 0)
		return -errno;
	if (bpf_obj_pin(lfd, path)) {
		err = -errno;
		bpf_link_detach(lfd);
		close(lfd);
		log_err("cannot pin link %s: %s", path, strerror(-err));
		return err;
	}
	close(lfd);
	res->outcome = XDP_ATTACHED_NEW;
	res->prog_id = prog_id_of(prog_fd);
	return 0;
}

static bool getenv_flag(const char *name)
{
	const char *v = getenv(name);

	return v && !strcmp(v, "1");
}

/*
 * libbpf prints the kernel's extack text of every refused tc request as a
 * warning; "qdisc exists" and "no such filter" are answers here, not
 * problems. Errors are still returned, and reported by the callers.
 */
static libbpf_print_fn_t quiet(void)
{
	return libbpf_set_print(NULL);
}

static void hook_of(struct bpf_tc_hook *h, int ifindex)
{
	memset(h, 0, sizeof(*h));
	h->sz = sizeof(*h);
	h->ifindex = ifindex;
	h->attach_point = BPF_TC_INGRESS;
}

/* The program id of our clsact filter on ifindex in *id (0 when there is none):
 * 0, or -errno when the kernel did not say. */
static int clsact_query_id(int ifindex, __u32 *id)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, q, .handle = SHIFT_TC_HANDLE, .priority = SHIFT_TC_PRIO);
	struct bpf_tc_hook hook;
	libbpf_print_fn_t prev = quiet();
	int err;

	hook_of(&hook, ifindex);
	err = bpf_tc_query(&hook, &q);
	libbpf_set_print(prev);
	*id = err ? 0 : q.prog_id;
	/* No such filter, or no clsact qdisc at all. */
	return err == -ENOENT || err == -EINVAL ? 0 : err;
}

/* The program id of our clsact filter on ifindex, 0 when there is none. */
static __u32 clsact_query(int ifindex)
{
	__u32 id;

	clsact_query_id(ifindex, &id);
	return id;
}

static int clsact_attach(const char *marker, int ifindex, int prog_fd, bool keep_ok,
			 struct xdp_attach *res)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .handle = SHIFT_TC_HANDLE, .priority = SHIFT_TC_PRIO,
			    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	struct bpf_tc_hook hook;
	libbpf_print_fn_t prev;
	__u32 cur;
	int err;

	prev = quiet();
	hook_of(&hook, ifindex);
	err = bpf_tc_hook_create(&hook);
	libbpf_set_print(prev);
	if (err && err != -EEXIST)
		return err;
	cur = clsact_query(ifindex);
	if (cur && keep_ok && same_prog(cur, prog_fd)) {
		res->outcome = XDP_KEPT;
		res->prog_id = cur;
		return 0;
	}
	/* Replaces our filter in one step when it is there: no gap. */
	err = bpf_tc_attach(&hook, &o);
	if (err)
		return err;
	unlink(marker);
	if (bpf_obj_pin(prog_fd, marker))
		log_warn("cannot pin %s: %s ('shiftd --detach' finds the filter only while "
			 "the interface is configured)",
			 marker, strerror(errno));
	res->outcome = cur ? XDP_REPLACED : XDP_ATTACHED_NEW;
	res->prog_id = o.prog_id ? o.prog_id : prog_id_of(prog_fd);
	return 0;
}

/*
 * Delete our clsact filter (fixed handle and priority) on ifindex when it is
 * shift's: its program is the one pinned at marker (NULL: no pin), or named
 * shift_tc_* (a pin removed, or another bpffs_dir). Another tool's filter at
 * that handle and priority is left. 1 if deleted, 0 if none, or -errno.
 */
static int clsact_remove(const char *ifname, int ifindex, const char *marker, bool report)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .handle = SHIFT_TC_HANDLE, .priority = SHIFT_TC_PRIO);
	struct bpf_tc_hook hook;
	__u32 id = clsact_query(ifindex);
	libbpf_print_fn_t prev;
	bool ours = false;
	char name[32];
	int fd, err;

	if (!id)
		return 0;
	if (marker) {
		fd = bpf_obj_get(marker);
		if (fd >= 0) {
			ours = prog_id_of(fd) == id;
			close(fd);
		}
	}
	if (!dp_prog_named(id, "shift_tc_", name, sizeof(name)) && !ours) {
		log_warn("interface %s: the clsact ingress filter at handle %#x prio %d runs "
			 "program %s (prog id %u), not shift's: left",
			 ifname, SHIFT_TC_HANDLE, SHIFT_TC_PRIO, name, id);
		return 0;
	}
	hook_of(&hook, ifindex);
	prev = quiet();
	err = bpf_tc_detach(&hook, &o);
	libbpf_set_print(prev);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	if (report)
		log_info("interface %s: removed the clsact ingress filter (handle %#x prio %d, "
			 "program %s, prog id %u%s)",
			 ifname, SHIFT_TC_HANDLE, SHIFT_TC_PRIO, name, id,
			 marker && ours ? "" : ", no pin of it under bpffs_dir");
	return 1;
}

int tc_attach_iface(const struct shift *skel, const char *pin_dir, const char *ifname, int ifindex,
		    enum xdp_role role, bool keep_ok, struct xdp_attach *res)
{
	int prog_fd = tc_prog_fd(skel, role);
	char tcx[4096], marker[4096];
	int err;

	memset(res, 0, sizeof(*res));
	res->ifindex = ifindex;
	res->hook = DP_HOOK_TC;
	/* shiftd loads the programs of its interfaces' roles and hook only. */
	if (prog_fd < 0) {
		log_err("%s: the TC %s program was not loaded at start; restart shiftd", ifname,
			xdp_role_name(role));
		return -ENOENT;
	}
	snprintf(tcx, sizeof(tcx), "%s/links", pin_dir);
	err = mkdir_p(tcx, 0700);
	if (err)
		return err;
	pin_path(tcx, sizeof(tcx), pin_dir, ifname, ":tcx");
	pin_path(marker, sizeof(marker), pin_dir, ifname, ":clsact");

	err = tcx_adopt(tcx, ifindex, prog_fd, keep_ok, res);
	if (err == 0) {
		res->mode = "tcx";
		return 0;
	}
	if (err != -ENOLINK) {
		log_err("%s: cannot update the attached TC program: %s", ifname, strerror(-err));
		return err;
	}
	unlink(tcx);
	/* A legacy filter of ours (its pin says so) stays in charge: adopt it. */
	if (access(marker, F_OK) && !getenv_flag("SHIFT_TC_LEGACY")) {
		err = tcx_attach(tcx, ifindex, prog_fd, res);
		if (err == 0) {
			res->mode = "tcx";
			return 0;
		}
		if (err != -EINVAL && err != -EOPNOTSUPP) {
			log_err("%s: cannot attach the tcx program: %s", ifname, strerror(-err));
			return err;
		}
	}
	/* No tcx in this kernel: a clsact filter. */
	err = clsact_attach(marker, ifindex, prog_fd, keep_ok, res);
	if (err) {
		log_err("%s: cannot attach the TC program (clsact): %s", ifname, strerror(-err));
		return err;
	}
	res->mode = "clsact";
	return 0;
}

/* Shift's TC program as its pins show it: the tcx link, the clsact filter. */
static int tc_remove_pinned(const char *pin_dir, const char *ifname, int ifindex, bool report)
{
	struct bpf_link_info li;
	__u32 len = sizeof(li);
	char path[4096];
	int lfd, err = 0, n = 0, e;
	bool live;

	pin_path(path, sizeof(path), pin_dir, ifname, ":tcx");
	lfd = bpf_obj_get(path);
	if (lfd >= 0) {
		memset(&li, 0, sizeof(li));
		/* A link whose interface went away reads ifindex 0: nothing ran. */
		live = !bpf_obj_get_info_by_fd(lfd, &li, &len) && li.xdp.ifindex;

		if (bpf_link_detach(lfd) && errno != ENOLINK)
			err = -errno;
		else if (live)
			n++;
		close(lfd);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
		if (live && !err && report)
			log_info("interface %s: removed the tcx link pinned at %s (prog id %u)",
				 ifname, path, li.prog_id);
	}
	/* Only where a legacy filter of ours was made (its pin): no query on tcx kernels. */
	pin_path(path, sizeof(path), pin_dir, ifname, ":clsact");
	if (access(path, F_OK))
		return err ? err : n;
	if (ifindex > 0) {
		e = clsact_remove(ifname, ifindex, path, report);
		if (e < 0 && !err)
			err = e;
		else if (e > 0)
			n += e;
	}
	if (unlink(path) && errno != ENOENT && !err)
		err = -errno;
	return err ? err : n;
}

int tc_detach_iface(const char *pin_dir, const char *ifname)
{
	int n = tc_remove_pinned(pin_dir, ifname, (int)if_nametoindex(ifname), false);

	return n < 0 ? n : 0;
}

int tc_purge_iface(const char *pin_dir, const char *ifname, int ifindex)
{
	__u32 ids[64], cnt = 64, flags = 0, i;
	int n = 0, err = 0, k;
	char name[32];

	k = tc_remove_pinned(pin_dir, ifname, ifindex, true);
	if (k < 0)
		log_err("interface %s: cannot remove the pinned TC program: %s", ifname,
			strerror(-(err = k)));
	else
		n += k;
	if (ifindex <= 0)
		return err ? err : n;
	/* A legacy filter whose pin is gone: by its handle and priority, if shift's. */
	k = clsact_remove(ifname, ifindex, NULL, true);
	if (k < 0)
		log_err("interface %s: cannot delete the clsact ingress filter (handle %#x prio "
			"%d): %s",
			ifname, SHIFT_TC_HANDLE, SHIFT_TC_PRIO, strerror(-(err = k)));
	else
		n += k;
	/* tcx links of shift's programs without a pin here. The ids come from this
	 * namespace's interface: a link of another namespace's ifindex is not ours.
	 * Kernels without tcx refuse the query: nothing to do. */
	if (bpf_prog_query(ifindex, (enum bpf_attach_type)BPF_TCX_INGRESS_, 0, &flags, ids, &cnt))
		return err ? err : n;
	for (i = 0; i < cnt && i < 64; i++) {
		if (!dp_prog_named(ids[i], "shift_tc_", name, sizeof(name))) {
			log_info("interface %s: tcx program %s (prog id %u) is not shift's, left",
				 ifname, name, ids[i]);
			continue;
		}
		k = dp_links_detach(BPF_LINK_TYPE_TCX_, ifindex, ids[i]);
		if (k < 0) {
			log_err("interface %s: cannot detach the tcx link of %s (prog id %u): %s",
				ifname, name, ids[i], strerror(-k));
			err = k;
		} else if (k > 0) {
			log_info("interface %s: removed the tcx link of %s (prog id %u), not "
				 "pinned under bpffs_dir",
				 ifname, name, ids[i]);
			n += k;
		}
	}
	return err ? err : n;
}

int tc_iface_runs(int ifindex, bool tcx, __u32 prog_id)
{
	__u32 ids[64], cnt = 64, flags = 0, i;

	if (!tcx) {
		int err = clsact_query_id(ifindex, ids);

		return err ? err : ids[0] == prog_id;
	}
	if (bpf_prog_query(ifindex, (enum bpf_attach_type)BPF_TCX_INGRESS_, 0, &flags, ids, &cnt))
		return -errno;
	for (i = 0; i < cnt && i < 64; i++)
		if (ids[i] == prog_id)
			return 1;
	return 0;
}
