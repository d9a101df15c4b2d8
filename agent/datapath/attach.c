// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "shift.skel.h"
#include "datapath/attach.h"
#include "datapath/loader.h"
#include "ops/log.h"

const char *xdp_role_name(enum xdp_role role)
{
	switch (role) {
	case XDP_ROLE_CLIENT:
		return "client";
	case XDP_ROLE_BACKEND:
		return "backend";
	default:
		return "client+backend";
	}
}

static int role_prog_fd(const struct shift *skel, enum xdp_role role)
{
	switch (role) {
	case XDP_ROLE_CLIENT:
		return bpf_program__fd(skel->progs.shift_xdp_client);
	case XDP_ROLE_BACKEND:
		return bpf_program__fd(skel->progs.shift_xdp_backend);
	default:
		return bpf_program__fd(skel->progs.shift_xdp_both);
	}
}

static int prog_info(int prog_fd, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(prog_fd, info, &len) ? -errno : 0;
}

static const char *query_mode(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return "unknown";
	switch (q.attach_mode) {
	case XDP_ATTACHED_DRV:
		return "native";
	case XDP_ATTACHED_SKB:
		return "generic";
	case XDP_ATTACHED_HW:
		return "offload";
	default:
		return "unknown";
	}
}

static const char *role_prog_name(enum xdp_role role)
{
	switch (role) {
	case XDP_ROLE_CLIENT:
		return "shift_xdp_client";
	case XDP_ROLE_BACKEND:
		return "shift_xdp_backend";
	default:
		return "shift_xdp_both";
	}
}

/*
 * The id of the XDP program on ifindex (any mode), 0 when none or unknown;
 * *off: the ip-link(8) keyword that takes it off ("xdpgeneric" ...).
 */
static __u32 xdp_holder(int ifindex, const char **off)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	*off = "xdp";
	if (bpf_xdp_query(ifindex, 0, &q))
		return 0;
	if (q.attach_mode == XDP_ATTACHED_SKB)
		*off = "xdpgeneric";
	else if (q.attach_mode == XDP_ATTACHED_DRV)
		*off = "xdpdrv";
	else if (q.attach_mode == XDP_ATTACHED_HW)
		*off = "xdpoffload";
	return q.prog_id ? q.prog_id : q.skb_prog_id ? q.skb_prog_id : q.drv_prog_id;
}

static int link_create(int prog_fd, int ifindex, __u32 flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
	int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &lo);

	return fd < 0 ? -errno : fd;
}

/* An existing pinned link: keep it, update it, or report it dead (-ENOLINK). */
static int adopt_link(int lfd, int ifindex, int prog_fd, bool keep_ok, struct xdp_attach *res)
{
	struct bpf_link_info li;
	struct bpf_prog_info cur, want;
	__u32 len = sizeof(li);
	int cur_fd, err;

	memset(&li, 0, sizeof(li));
	if (bpf_obj_get_info_by_fd(lfd, &li, &len))
		return -errno;
	/* A link whose interface went away is defunct: ifindex reads 0. */
	if (li.type != BPF_LINK_TYPE_XDP || li.xdp.ifindex != (__u32)ifindex)
		return -ENOLINK;
	err = prog_info(prog_fd, &want);
	if (err)
		return err;
	cur_fd = bpf_prog_get_fd_by_id(li.prog_id);
	if (cur_fd >= 0) {
		err = prog_info(cur_fd, &cur);
		close(cur_fd);
		if (!err && keep_ok && !memcmp(cur.tag, want.tag, sizeof(cur.tag))) {
			res->outcome = XDP_KEPT;
			res->prog_id = li.prog_id;
			return 0;
		}
	}
	if (bpf_link_update(lfd, prog_fd, NULL))
		return -errno;
	res->outcome = XDP_REPLACED;
	res->prog_id = want.id;
	return 0;
}

static int xdp_attach(const struct shift *skel, const char *pin_dir, const char *ifname,
		      int ifindex, enum xdp_role role, enum conf_xdp_mode mode, bool keep_ok,
		      bool probe, struct xdp_attach *res)
{
	int prog_fd = role_prog_fd(skel, role);
	struct bpf_prog_info want;
	char path[4096];
	int lfd, err;

	memset(res, 0, sizeof(*res));
	res->ifindex = ifindex;
	/* shiftd loads the programs of its interfaces' roles and hook only. */
	if (prog_fd < 0) {
		log_err("%s: the XDP %s program was not loaded at start; restart shiftd", ifname,
			xdp_role_name(role));
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/links", pin_dir);
	err = mkdir_p(path, 0700);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/links/%s", pin_dir, ifname);

	lfd = bpf_obj_get(path);
	if (lfd >= 0) {
		err = adopt_link(lfd, ifindex, prog_fd, keep_ok, res);
		close(lfd);
		if (err == 0) {
			res->mode = query_mode(ifindex);
			return 0;
		}
		if (err != -ENOLINK) {
			log_err("%s: cannot update the attached program: %s", ifname,
				strerror(-err));
			return err;
		}
		/* The interface was recreated: the old link is dead, attach afresh. */
		unlink(path);
	} else if (errno != ENOENT) {
		err = -errno;
		log_err("cannot open pinned link %s: %s", path, strerror(-err));
		return err;
	}

	switch (mode) {
	case CONF_XDP_NATIVE:
		lfd = link_create(prog_fd, ifindex, XDP_FLAGS_DRV_MODE);
		break;
	case CONF_XDP_GENERIC:
		lfd = link_create(prog_fd, ifindex, XDP_FLAGS_SKB_MODE);
		break;
	default:
		lfd = link_create(prog_fd, ifindex, XDP_FLAGS_DRV_MODE);
		if (lfd < 0 && lfd != -EBUSY && lfd != -EEXIST) {
			log_info("%s: native XDP unavailable (%s), using generic", ifname,
				 strerror(-lfd));
			lfd = link_create(prog_fd, ifindex, XDP_FLAGS_SKB_MODE);
		}
	}
	/* The caller says what a busy hook means for it (dp_attach_iface()). */
	if (lfd < 0 && probe) {
		if (lfd != -EBUSY && lfd != -EEXIST)
			log_info("%s: no native XDP (%s)", ifname, strerror(-lfd));
		return lfd;
	}
	if (lfd == -EBUSY || lfd == -EEXIST) {
		const char *off;
		__u32 id = xdp_holder(ifindex, &off);

		log_err("%s: cannot attach XDP program %s: %s (another XDP program, id %u, holds "
			"the hook: remove it first, e.g. ip link set dev %s %s off)",
			ifname, role_prog_name(role), strerror(-lfd), id, ifname, off);
		return lfd;
	}
	if (lfd < 0) {
		log_err("%s: cannot attach XDP program %s: %s", ifname, role_prog_name(role),
			strerror(-lfd));
		return lfd;
	}
	if (bpf_obj_pin(lfd, path)) {
		err = -errno;
		log_err("cannot pin link %s: %s", path, strerror(-err));
		close(lfd);
		return err;
	}
	close(lfd);
	res->outcome = XDP_ATTACHED_NEW;
	if (prog_info(prog_fd, &want) == 0)
		res->prog_id = want.id;
	res->mode = query_mode(ifindex);
	return 0;
}

/* The XDP link pinned for ifname: detached and unpinned. 1 if it ran, 0 if none. */
static int xdp_remove_pinned(const char *pin_dir, const char *ifname, bool report)
{
	struct bpf_link_info li;
	__u32 len = sizeof(li);
	char path[4096];
	int lfd, err = 0, n = 0;
	bool live;

	snprintf(path, sizeof(path), "%s/links/%s", pin_dir, ifname);
	lfd = bpf_obj_get(path);
	if (lfd < 0)
		return errno == ENOENT ? 0 : -errno;
	memset(&li, 0, sizeof(li));
	/* A link whose interface went away is defunct (ifindex 0): nothing ran. */
	live = !bpf_obj_get_info_by_fd(lfd, &li, &len) && li.xdp.ifindex;

	/* Detach first: unpinning alone keeps the link while any fd holds it. */
	if (bpf_link_detach(lfd) && errno != ENOLINK)
		err = -errno;
	else if (live)
		n = 1;
	close(lfd);
	if (unlink(path) && errno != ENOENT && !err)
		err = -errno;
	if (n && report)
		log_info("interface %s: removed the XDP link pinned at %s (prog id %u)", ifname,
			 path, li.prog_id);
	return err ? err : n;
}

int xdp_detach_iface(const char *pin_dir, const char *ifname)
{
	int n = xdp_remove_pinned(pin_dir, ifname, false);

	return n < 0 ? n : 0;
}

bool dp_prog_named(__u32 id, const char *prefix, char *name, size_t len)
{
	struct bpf_prog_info info;
	int fd = bpf_prog_get_fd_by_id(id);
	bool ok;

	snprintf(name, len, "?");
	if (fd < 0)
		return false;
	ok = prog_info(fd, &info) == 0;
	close(fd);
	if (!ok)
		return false;
	snprintf(name, len, "%.*s", (int)sizeof(info.name), info.name);
	return !strncmp(info.name, prefix, strlen(prefix));
}

int dp_links_detach(__u32 type, int ifindex, __u32 prog_id)
{
	__u32 id = 0;
	int n = 0, err = 0, fd;

	while (!bpf_link_get_next_id(id, &id)) {
		struct bpf_link_info li;
		__u32 len = sizeof(li);

		fd = bpf_link_get_fd_by_id(id);
		if (fd < 0)
			continue; /* gone meanwhile */
		memset(&li, 0, sizeof(li));
		/* tcx's info starts with the ifindex too (see tc_attach.c). */
		if (!bpf_obj_get_info_by_fd(fd, &li, &len) && li.type == type &&
		    li.prog_id == prog_id && li.xdp.ifindex == (__u32)ifindex) {
			if (!bpf_link_detach(fd))
				n++;
			else if (errno != ENOLINK)
				err = -errno;
		}
		close(fd);
	}
	if (errno != ENOENT && !err)
		err = -errno;
	return err ? err : n;
}

/*
 * What a pin does not show: shift's XDP programs on ifindex through a link
 * pinned elsewhere (bpffs_dir changed) or held open, or attached without a
 * link. Shift's is what runs a program named shift_xdp_*; others are left.
 */
static int xdp_remove_unpinned(const char *ifname, int ifindex)
{
	static const struct {
		__u32 flag;
		const char *mode;
	} modes[] = {
		{ XDP_FLAGS_DRV_MODE, "native" },
		{ XDP_FLAGS_SKB_MODE, "generic" },
		{ XDP_FLAGS_HW_MODE, "offload" },
	};
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	__u32 ids[3];
	char name[32];
	int n = 0, err = 0, k, pfd;
	size_t i;

	err = bpf_xdp_query(ifindex, 0, &q);
	if (err) {
		log_err("interface %s: cannot query its XDP programs: %s", ifname, strerror(-err));
		return err;
	}
	ids[0] = q.drv_prog_id;
	ids[1] = q.skb_prog_id;
	ids[2] = q.hw_prog_id;
	for (i = 0; i < 3; i++) {
		if (!ids[i])
			continue;
		if (!dp_prog_named(ids[i], "shift_xdp_", name, sizeof(name))) {
			log_info("interface %s: XDP program %s (prog id %u) is not shift's, left",
				 ifname, name, ids[i]);
			continue;
		}
		k = dp_links_detach(BPF_LINK_TYPE_XDP, ifindex, ids[i]);
		if (k > 0) {
			log_info("interface %s: removed the XDP link of %s (prog id %u, %s), "
				 "not pinned under bpffs_dir",
				 ifname, name, ids[i], modes[i].mode);
			n += k;
			continue;
		}
		if (k < 0) {
			log_err("interface %s: cannot detach the XDP link of %s (prog id %u): %s",
				ifname, name, ids[i], strerror(-k));
			err = k;
			continue;
		}
		/* No link: attached through netlink. Only if it is still that program. */
		pfd = bpf_prog_get_fd_by_id(ids[i]);
		if (pfd < 0) {
			k = -errno;
		} else {
			LIBBPF_OPTS(bpf_xdp_attach_opts, xo, .old_prog_fd = pfd);

			k = bpf_xdp_detach(ifindex, modes[i].flag, &xo);
			close(pfd);
		}
		if (k) {
			log_err("interface %s: cannot detach XDP program %s (prog id %u): %s",
				ifname, name, ids[i], strerror(-k));
			err = k;
			continue;
		}
		log_info("interface %s: removed XDP program %s (prog id %u, %s), attached "
			 "without a link",
			 ifname, name, ids[i], modes[i].mode);
		n++;
	}
	return err ? err : n;
}

int xdp_attach_iface(const struct shift *skel, const char *pin_dir, const char *ifname, int ifindex,
		     enum xdp_role role, enum conf_xdp_mode mode, bool keep_ok,
		     struct xdp_attach *res)
{
	return xdp_attach(skel, pin_dir, ifname, ifindex, role, mode, keep_ok, false, res);
}

const char *dp_hook_name(enum dp_hook h)
{
	return h == DP_HOOK_TC ? "tc" : "xdp";
}

const char *iface_virtual(const struct nl_link *l)
{
	/* A device behind it: a NIC, whatever else it says (a DSA port has a kind). */
	if (l->parent[0])
		return NULL;
	if (l->kind[0])
		return l->kind;
	if (l->loopback)
		return "loopback";
	/* Neither: a NIC on a kernel that names no parents (before 5.16). */
	return NULL;
}

/* The XDP link pinned for ifname, if any (a previous run's choice). */
static bool xdp_pinned(const char *pin_dir, const char *ifname)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/links/%s", pin_dir, ifname);
	return access(path, F_OK) == 0;
}

int dp_attach_iface(const struct shift *skel, const char *pin_dir, const struct nl_link *link,
		    enum xdp_role role, enum conf_attach attach, enum conf_xdp_mode mode,
		    bool keep_ok, struct xdp_attach *res)
{
	const char *ifname = link->name, *virt = iface_virtual(link);
	int ifindex = link->ifindex, err = -EOPNOTSUPP;

	if (attach == CONF_ATTACH_AUTO && virt)
		log_info("%s: virtual interface (%s): TC (attach = auto)", ifname, virt);
	else if (attach == CONF_ATTACH_AUTO)
		log_debug("%s: a NIC (device %s): native XDP if its driver has it (attach = auto)",
			  ifname, link->parent[0] ? link->parent : "not named by this kernel");

	if (attach == CONF_ATTACH_XDP) {
		err = xdp_attach_iface(skel, pin_dir, ifname, ifindex, role, mode, keep_ok, res);
	} else if (attach == CONF_ATTACH_AUTO && !virt) {
		/* Only native XDP is worth it; generic XDP is slower than TC. A link
		 * already pinned was native when it was made. */
		err = xdp_attach(skel, pin_dir, ifname, ifindex, role,
				 xdp_pinned(pin_dir, ifname) ? mode : CONF_XDP_NATIVE, keep_ok,
				 true, res);
		/* TC ingress runs after XDP: the other program sees every packet
		 * first, and may drop or redirect what shift should steer. */
		if (err == -EBUSY || err == -EEXIST) {
			const char *off;
			__u32 id = xdp_holder(ifindex, &off);

			log_warn(
				"%s: another XDP program (id %u) holds the XDP hook: shift runs on "
				"TC instead (attach = auto), after that program, on what it passes",
				ifname, id);
		}
		if (!err && strcmp(res->mode, "native")) {
			xdp_detach_iface(pin_dir, ifname);
			err = -EOPNOTSUPP;
		}
	}
	if (!err) {
		res->hook = DP_HOOK_XDP;
		/* Mode changed from TC: the XDP program runs first, TC goes. */
		tc_detach_iface(pin_dir, ifname);
		return 0;
	}
	if (attach == CONF_ATTACH_XDP)
		return err;
	err = tc_attach_iface(skel, pin_dir, ifname, ifindex, role, keep_ok, res);
	if (err)
		return err;
	xdp_detach_iface(pin_dir, ifname);
	return 0;
}

bool dp_iface_pinned(const char *pin_dir, const char *ifname)
{
	static const char *const sfx[] = { "", ":tcx", ":clsact" };
	char path[4096];
	size_t i;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(path, sizeof(path), "%s/links/%s%s", pin_dir, ifname, sfx[i]);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

int dp_detach_iface(const char *pin_dir, const char *ifname)
{
	int err = xdp_detach_iface(pin_dir, ifname);
	int e = tc_detach_iface(pin_dir, ifname);

	return err ? err : e;
}

int dp_purge_iface(const char *pin_dir, const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname);
	int n = 0, err = 0, k;

	k = xdp_remove_pinned(pin_dir, ifname, true);
	if (k < 0)
		log_err("interface %s: cannot remove the pinned XDP link: %s", ifname,
			strerror(-(err = k)));
	else
		n += k;
	if (ifindex > 0) {
		k = xdp_remove_unpinned(ifname, ifindex);
		if (k < 0)
			err = k;
		else
			n += k;
	}
	k = tc_purge_iface(pin_dir, ifname, ifindex);
	if (k < 0)
		err = k;
	else
		n += k;
	return err ? err : n;
}

int dp_iface_runs(int ifindex, enum dp_hook hook, const char *mode, __u32 prog_id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char name[IF_NAMESIZE];
	int err;

	if (hook == DP_HOOK_TC)
		return tc_iface_runs(ifindex, mode && !strcmp(mode, "tcx"), prog_id);
	/* The XDP query reads a gone ifindex as one with nothing attached; TC's
	 * queries fail for it. A deletion is not a program taken off. */
	if (!if_indextoname((unsigned int)ifindex, name))
		return -errno;
	err = bpf_xdp_query(ifindex, 0, &q);
	if (err)
		return err;
	return q.drv_prog_id == prog_id || q.skb_prog_id == prog_id || q.hw_prog_id == prog_id;
}

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
	size_t n = strlen(s), k = strlen(suffix);

	if (n <= k || strcmp(s + n - k, suffix))
		return false;
	*stem = n - k;
	return true;
}

int dp_detach_pin(const char *pin_dir, const char *pin_name)
{
	char ifname[64];
	size_t stem;

	if (ends_with(pin_name, ":tcx", &stem) || ends_with(pin_name, ":clsact", &stem))
		snprintf(ifname, sizeof(ifname), "%.*s", (int)stem, pin_name);
	else
		snprintf(ifname, sizeof(ifname), "%s", pin_name);
	return dp_purge_iface(pin_dir, ifname);
}

int dp_pin_ifname(const char *pin_name, char *ifname, size_t len)
{
	size_t stem = strlen(pin_name);

	if (!ends_with(pin_name, ":tcx", &stem))
		ends_with(pin_name, ":clsact", &stem);
	if (stem >= len)
		return -ENAMETOOLONG;
	snprintf(ifname, len, "%.*s", (int)stem, pin_name);
	return 0;
}
