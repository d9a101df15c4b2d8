/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP attachment through pinned bpf_links, one per interface under
 * <pin_dir>/links/<ifname>. A pinned link outlives shiftd (fail-static); a
 * restart keeps it, an upgrade swaps the program in place (bpf_link_update),
 * so the interface never runs without shift. TC attachment (tc_attach.c)
 * keeps the same promises with tcx links or legacy clsact filters.
 */
#ifndef SHIFT_ATTACH_H
#define SHIFT_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "config/config.h"
#include "datapath/netlink.h"

enum xdp_role {
	XDP_ROLE_CLIENT, /* client-facing: forward path */
	XDP_ROLE_BACKEND, /* backend-facing: return path */
	XDP_ROLE_BOTH, /* one NIC for both */
};

enum xdp_outcome {
	XDP_ATTACHED_NEW,
	XDP_KEPT, /* the same program was already attached */
	XDP_REPLACED, /* a different program was swapped out atomically */
};

/* Which entry points run on an interface. */
enum dp_hook {
	DP_HOOK_XDP,
	DP_HOOK_TC,
};

struct xdp_attach {
	int ifindex;
	enum dp_hook hook;
	enum xdp_outcome outcome;
	const char *mode; /* XDP: "native" / "generic"; TC: "tcx" / "clsact" */
	__u32 prog_id;
};

struct shift;

/* keep_ok: the caller vouches that the attached program was loaded with the same
 * seed, so an identical tag means an identical program. */
int xdp_attach_iface(const struct shift *skel, const char *pin_dir, const char *ifname, int ifindex,
		     enum xdp_role role, enum conf_xdp_mode mode, bool keep_ok,
		     struct xdp_attach *res);
/* Detach and unpin the link of ifname; 0 if there was none. */
int xdp_detach_iface(const char *pin_dir, const char *ifname);
const char *xdp_role_name(enum xdp_role role);

/* tc_attach.c: the TC entry point for the role on clsact ingress (tcx, else legacy). */
int tc_attach_iface(const struct shift *skel, const char *pin_dir, const char *ifname, int ifindex,
		    enum xdp_role role, bool keep_ok, struct xdp_attach *res);
/* Remove shift's TC program from ifname (tcx link and/or clsact filter) as its
 * pins show it; 0 if none. */
int tc_detach_iface(const char *pin_dir, const char *ifname);
/* tc_detach_iface, then what has no pin under pin_dir: a clsact filter at
 * shift's handle and priority, a tcx link, either running a program named
 * shift_tc_*. Each removal is logged. The number removed, or -errno. */
int tc_purge_iface(const char *pin_dir, const char *ifname, int ifindex);
/* dp_iface_runs() for TC: on tcx, or as our clsact filter. */
int tc_iface_runs(int ifindex, bool tcx, __u32 prog_id);

/*
 * attach = auto | xdp | tc for link (its name names the pins): auto runs XDP
 * native on a physical NIC whose driver does native XDP, TC on veth and other
 * virtual interfaces (iface_virtual) and on NICs without native XDP. The other
 * hook's program is removed once the chosen one runs, so a change of mode is
 * hitless.
 */
int dp_attach_iface(const struct shift *skel, const char *pin_dir, const struct nl_link *link,
		    enum xdp_role role, enum conf_attach attach, enum conf_xdp_mode mode,
		    bool keep_ok, struct xdp_attach *res);
/* Both hooks, as the pins show them; 0 if nothing was attached. */
int dp_detach_iface(const char *pin_dir, const char *ifname);
/*
 * shiftd --detach: every program of shift's on ifname, pinned under pin_dir or
 * not (pins removed by hand, or made under another bpffs_dir): XDP and tcx links
 * and a clsact filter. Shift's is what the pins name, or a program named
 * shift_xdp_* / shift_tc_* (at shift's fixed clsact handle and priority); any
 * other program is left and said so. Each removal is logged. The number
 * removed, or -errno.
 */
int dp_purge_iface(const char *pin_dir, const char *ifname);
/* Does prog_id still run on ifindex, where it was attached (hook; mode "tcx" or
 * "clsact" for TC)? 1, 0, or -errno when the kernel cannot tell, the ifindex
 * gone included. Needs no more than CAP_NET_ADMIN (shiftd after privs_drop()). */
int dp_iface_runs(int ifindex, enum dp_hook hook, const char *mode, __u32 prog_id);
/* Is any of ifname's pins there (XDP link, tcx link, clsact program)? */
bool dp_iface_pinned(const char *pin_dir, const char *ifname);
/* A pin under <pin_dir>/links (any hook's), for interfaces no longer
 * configured: dp_purge_iface of its interface. */
int dp_detach_pin(const char *pin_dir, const char *pin_name);
/* The interface a pin under <pin_dir>/links is for (its name less ":tcx" or
 * ":clsact"); 0 or -ENAMETOOLONG. */
int dp_pin_ifname(const char *pin_name, char *ifname, size_t len);
/*
 * Why attach = auto takes l for a virtual interface: its kind ("veth",
 * "bridge", "tun", ...) or "loopback"; NULL for a NIC (a device behind it).
 * From rtnetlink in the caller's network namespace, never from /sys: /sys
 * shows the interfaces of the namespace that mounted it, and a shiftd run with
 * `nsenter --net` or in a container that shares the host's /sys would read the
 * host's eth0 for its own veth named eth0.
 */
const char *iface_virtual(const struct nl_link *l);
/* Is the program with this id named prefix*? Its name (cut at 15 characters by
 * the kernel) in name, "?" when it cannot be read. Needs CAP_SYS_ADMIN. */
bool dp_prog_named(__u32 id, const char *prefix, char *name, size_t len);
/* Detach every bpf_link of this type (BPF_LINK_TYPE_XDP, tcx) running prog_id on
 * ifindex. prog_id comes from a query of this namespace's interface, so a link
 * of another namespace that has the same ifindex is not taken for it. The
 * number detached, or -errno. */
int dp_links_detach(__u32 type, int ifindex, __u32 prog_id);
const char *dp_hook_name(enum dp_hook h);

#endif
