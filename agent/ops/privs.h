/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Dropping what shiftd no longer needs once the datapath is set up. */
#ifndef SHIFT_PRIVS_H
#define SHIFT_PRIVS_H

/*
 * Keep CAP_BPF and CAP_NET_ADMIN (re-attach to a recreated interface, probe
 * neighbours); drop every other capability from the effective, permitted,
 * inheritable and bounding sets, so notify hooks inherit nothing more.
 * 0 or -errno.
 */
int privs_drop(void);

#endif
