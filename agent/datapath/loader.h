/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Open and load the shift BPF skeleton, adopting pinned maps when they exist.
 * Errors from libbpf, including the verifier log of a rejected program, go
 * through shift_log (see log.h).
 */
#ifndef SHIFT_LOADER_H
#define SHIFT_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct shift;

struct loader_opts {
	__u32 hash_seed;
	__u32 max_flows4; /* 0: SHIFT_DEFAULT_FLOWS */
	__u32 max_flows6; /* 0: SHIFT_DEFAULT_FLOWS6 */
	__u32 syn_slots; /* a power of two; 0: SHIFT_SYN_SLOTS */
	/*
	 * When set: maps pinned under <pin_dir>/maps are reused (the connection
	 * table and weights survive restarts and upgrades), missing ones are
	 * created and pinned.
	 */
	const char *pin_dir;
	/* Load the shift_compat object (TC checksums through the helpers) even
	 * where the kernel has bpf_cast_to_kern_ctx(): the tests of that object. */
	bool compat;
	/*
	 * The entry programs to load, SHIFT_LOAD_XDP | SHIFT_LOAD_TC; 0: both.
	 * The verifier's time is most of a start (about 0.4 s a program on a
	 * 2-CPU host, 6.18; minutes under TCG): a host that attaches by XDP only
	 * need not verify the TC programs. A program not loaded has fd -1.
	 */
	__u32 hooks;
	/*
	 * The interface roles whose entry programs to load, SHIFT_LOAD_ROLE_*;
	 * 0: all three. A host with client and backend interfaces never runs
	 * shift_*_both, the largest program to verify, and a one-armed host runs
	 * nothing else but shift_*_client beside it.
	 */
	__u32 roles;
};

#define SHIFT_LOAD_XDP 1u
#define SHIFT_LOAD_TC 2u
#define SHIFT_LOAD_ALL (SHIFT_LOAD_XDP | SHIFT_LOAD_TC)

#define SHIFT_LOAD_ROLE_CLIENT 1u /* shift_xdp_client, shift_tc_client */
#define SHIFT_LOAD_ROLE_BACKEND 2u /* shift_*_backend */
#define SHIFT_LOAD_ROLE_BOTH 4u /* shift_*_both */

/* The SHIFT_LOAD_ROLE_* bit of an entry program, by its name; 0 for another. */
__u32 shift_prog_role(const char *prog_name);

/*
 * Which of the two builds of the datapath this kernel takes: the one whose
 * TC programs read the skb's checksum state (bpf_cast_to_kern_ctx(), Linux
 * 6.2, in the kernel's BTF) or shift_compat. Its ELF bytes, for a caller that
 * opens it alone (the verifier budget test).
 */
bool shift_kern_ctx_supported(void);
/* The build to load: shift_compat when forced (loader_opts.compat) or when
 * the kernel lacks the kfunc. */
bool shift_use_compat(bool forced);
const void *shift_object_bytes(bool compat, size_t *sz);

/*
 * Returns a loaded skeleton (shift__destroy() to free) or NULL with errno set.
 * *adopted (may be NULL) says whether pinned maps were reused. Before anything
 * is loaded, the pinned shift_config is read: errno EPROTO for maps of another
 * map ABI, EUCLEAN for maps pinned without shift_config while programs are
 * attached (pins no shiftd leaves). Maps pinned without shift_config and no
 * program attached, what a first start that died while pinning leaves, are
 * replaced rather than adopted.
 */
struct shift *shift_skel_load_pinned(const struct loader_opts *o, bool *adopted);
static inline struct shift *shift_skel_load(const struct loader_opts *o)
{
	return shift_skel_load_pinned(o, (bool *)0);
}

/* Mount bpffs at /sys/fs/bpf if nothing is mounted there, then mkdir -p dir. */
int bpffs_prepare(const char *dir);
/* mkdir -p with mode; 0 or -errno. */
int mkdir_p(const char *dir, unsigned int mode);

#endif
