/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP attachment through pinned bpf_links, one per interface under
 * <pin_dir>/links/<ifname>. A pinned link outlives shiftd (fail-static); a
 * restart keeps it, an upgrade swaps the program in place (bpf_link_update),
 * so the interface never runs without shift.
 */
#ifndef SHIFT_ATTACH_H
#define SHIFT_ATTACH_H

#include <stdbool.h>
#include "config/config.h"

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

struct xdp_attach {
	int ifindex;
	enum xdp_outcome outcome;
	const char *mode; /* "native" / "generic" */
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

#endif
