// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Retiring is safe against the datapath: it claims only free or retired
 * entries (by compare-and-swap from what it read) and never writes a published
 * one, so an entry that reads as a gone interface's stays that until it is
 * rewritten here. A SYN-ACK reading it meanwhile takes that interface (gone:
 * dropped, as it would have been) or, retired, the FIB. Retired, not freed:
 * a slot may still name the index, and a SYN-ACK answering its SYN must not
 * find another next hop there (include/shift/maps.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <bpf/bpf.h>

#include <shift/maps.h>

#include "datapath/client_nh.h"
#include "ops/clock.h"

struct gone_q {
	__u32 ifindex; /* forget this one, or, when 0, ask alive() */
	client_nh_alive_fn alive;
	void *arg;
};

static bool gone(const struct gone_q *q, __u32 ifindex)
{
	if (q->ifindex)
		return ifindex == q->ifindex;
	return q->alive(q->arg, ifindex) == 0;
}

/*
 * The whole table: one batch lookup (one system call where the metrics
 * writer made 255 each interval), or one lookup per entry where the batch
 * fails. Every entry is read either way. 0 or -errno.
 */
static int snapshot(int fd, struct shift_client_nh *all)
{
	__u32 keys[SHIFT_CLIENT_NHS], out = 0, n = SHIFT_CLIENT_NHS, i;
	int err;

	err = bpf_map_lookup_batch(fd, NULL, &out, keys, all, &n, NULL);
	/* ENOENT: the batch reached the end, which this one does in one go. */
	if ((!err || errno == ENOENT) && n == SHIFT_CLIENT_NHS) {
		for (i = 0; i < n && keys[i] == i; i++)
			;
		if (i == n)
			return 0;
	}
	for (i = 0; i < SHIFT_CLIENT_NHS; i++)
		if (bpf_map_lookup_elem(fd, &i, &all[i]))
			return -errno;
	return 0;
}

static int scan(int fd, const struct gone_q *q, __u32 *retired)
{
	struct shift_client_nh all[SHIFT_CLIENT_NHS], tomb = { .ifindex = SHIFT_CLIENT_NH_RETIRED };
	int err;
	__u32 i;

	*retired = 0;
	err = snapshot(fd, all);
	if (err)
		return err;
	/* The datapath's clock (SHIFT_CLIENT_NH_CLOCK_SHIFT). */
	tomb.retired_at = (__u32)(now_mono_ns() >> SHIFT_CLIENT_NH_CLOCK_SHIFT);
	/* Index 0 names no next hop (shift_client_nh_index()). */
	for (i = 1; i < SHIFT_CLIENT_NHS; i++) {
		if (!shift_client_nh_published(all[i].ifindex) || !gone(q, all[i].ifindex))
			continue;
		if (bpf_map_update_elem(fd, &i, &tomb, BPF_ANY)) {
			err = err ? err : -errno;
			continue;
		}
		(*retired)++;
	}
	return err;
}

int client_nhs_forget(int fd, __u32 ifindex, __u32 *retired)
{
	const struct gone_q q = { .ifindex = ifindex };

	*retired = 0;
	if (!shift_client_nh_published(ifindex))
		return -EINVAL;
	return scan(fd, &q, retired);
}

int client_nhs_sweep(int fd, client_nh_alive_fn alive, void *arg, __u32 *retired)
{
	const struct gone_q q = { .alive = alive, .arg = arg };

	*retired = 0;
	if (!alive)
		return -EINVAL;
	return scan(fd, &q, retired);
}

int client_nhs_count(int fd, __u32 *used, __u32 *retired)
{
	struct shift_client_nh all[SHIFT_CLIENT_NHS];
	int err;
	__u32 i;

	*used = *retired = 0;
	err = snapshot(fd, all);
	if (err)
		return err;
	for (i = 1; i < SHIFT_CLIENT_NHS; i++) {
		if (all[i].ifindex == SHIFT_CLIENT_NH_RETIRED)
			(*retired)++;
		else if (all[i].ifindex)
			(*used)++;
	}
	return 0;
}
