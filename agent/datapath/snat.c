// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>

#include "datapath/snat.h"

__u32 snat_runs(__u16 lo, __u16 hi, __u16 eph_lo, __u16 eph_hi, struct shift_snat_cfg *cfg)
{
	__u32 n = 0;

	memset(cfg->run_lo, 0, sizeof(cfg->run_lo));
	memset(cfg->run_n, 0, sizeof(cfg->run_n));
	if (lo > hi)
		return 0;
	if (eph_lo > eph_hi || eph_hi < lo || eph_lo > hi) {
		cfg->run_lo[0] = lo;
		cfg->run_n[0] = (__u16)(hi - lo + 1 > 0xffff ? 0xffff : hi - lo + 1);
		return cfg->run_n[0];
	}
	if (eph_lo > lo) {
		cfg->run_lo[n] = lo;
		cfg->run_n[n] = (__u16)(eph_lo - lo);
		n++;
	}
	if (eph_hi < hi) {
		cfg->run_lo[n] = (__u16)(eph_hi + 1);
		cfg->run_n[n] = (__u16)(hi - eph_hi);
		n++;
	}
	return (__u32)cfg->run_n[0] + cfg->run_n[1];
}

int snat_local_ports(__u16 *lo, __u16 *hi)
{
	unsigned int a, b;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	int n;

	if (!f)
		return -errno;
	n = fscanf(f, "%u %u", &a, &b);
	fclose(f);
	if (n != 2 || a > 65535 || b > 65535)
		return -EINVAL;
	*lo = (__u16)a;
	*hi = (__u16)b;
	return 0;
}

int dp_snat_set(const struct shift_maps *m, __u32 service_id, const struct shift_snat_cfg *cfg)
{
	if (m->fd[SHIFT_MAP_SNAT_CFG] < 0)
		return -EBADF;
	return bpf_map_update_elem(m->fd[SHIFT_MAP_SNAT_CFG], &service_id, cfg, BPF_ANY) ? -errno :
											   0;
}
