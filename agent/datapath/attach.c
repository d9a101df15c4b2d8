// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
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
	if (lfd < 0 && probe) {
		log_info("%s: no native XDP (%s)", ifname, strerror(-lfd));
		return lfd;
	}
	if (lfd < 0) {
		log_err("%s: cannot attach XDP program %s: %s%s", ifname,
			role == XDP_ROLE_BACKEND ? "shift_xdp_backend" : "shift_xdp_client",
			strerror(-lfd),
			lfd == -EBUSY || lfd == -EEXIST ?
				" (another XDP program is attached: remove it first)" :
				"");
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

int xdp_detach_iface(const char *pin_dir, const char *ifname)
{
	char path[4096];
	int lfd, err = 0;

	snprintf(path, sizeof(path), "%s/links/%s", pin_dir, ifname);
	lfd = bpf_obj_get(path);
	if (lfd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Detach first: unpinning alone keeps the link while any fd holds it. */
	if (bpf_link_detach(lfd) && errno != ENOLINK)
		err = -errno;
	close(lfd);
	if (unlink(path) && errno != ENOENT && !err)
		err = -errno;
	return err;
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

int dp_detach_iface(const char *pin_dir, const char *ifname)
{
	int err = xdp_detach_iface(pin_dir, ifname);
	int e = tc_detach_iface(pin_dir, ifname);

	return err ? err : e;
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

	if (ends_with(pin_name, ":tcx", &stem) || ends_with(pin_name, ":clsact", &stem)) {
		snprintf(ifname, sizeof(ifname), "%.*s", (int)stem, pin_name);
		return tc_detach_iface(pin_dir, ifname);
	}
	return xdp_detach_iface(pin_dir, pin_name);
}
