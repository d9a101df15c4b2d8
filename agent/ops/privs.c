// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "ops/log.h"
#include "ops/privs.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int n = CAP_BPF;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = CAP_BPF;
		fclose(f);
	}
	return n;
}

static int kept(int cap)
{
	return cap == CAP_BPF || cap == CAP_NET_ADMIN;
}

int privs_drop(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	int cap, last = last_cap();

	/* The bounding set first: that needs CAP_SETPCAP, which we drop below. */
	for (cap = 0; cap <= last; cap++)
		if (!kept(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			log_debug("PR_CAPBSET_DROP %d: %s", cap, strerror(errno));
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return -errno;
	for (cap = 0; cap < 64; cap++) {
		__u32 bit = 1u << (cap % 32);

		if (kept(cap))
			continue;
		d[cap / 32].effective &= ~bit;
		d[cap / 32].permitted &= ~bit;
		d[cap / 32].inheritable &= ~bit;
	}
	if (syscall(SYS_capset, &h, d)) {
		int err = -errno;

		log_warn("cannot drop capabilities: %s", strerror(-err));
		return err;
	}
	log_debug("capabilities dropped to CAP_BPF and CAP_NET_ADMIN");
	return 0;
}
