// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Maglev rings are packed 32 two-byte slots to a map value, and shiftd
 * writes them through an mmap of the map. Checked here: every slot of a ring
 * reads back as the Maglev table names it (the last ring of the map too, so
 * the mmap offset is right at both ends), a write touches no other ring, bad
 * ids change nothing, and a restart over rings pinned in the older layout
 * (one 4-byte slot per value) replaces them while adopting the other maps.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "shift.skel.h"
#include "harness.h"
#include "datapath/loader.h"
#include "datapath/maglev.h"
#include "test.h"

#define LAST_SVC (SHIFT_MAX_SERVICES - 1)

static void pool_addrs(struct shift_addr_key *a, __u32 n, __u8 salt)
{
	__u32 i;

	memset(a, 0, n * sizeof(*a));
	for (i = 0; i < n; i++) {
		a[i].family = SHIFT_AF_INET;
		a[i].addr[0] = htonl(0x0a630000u | salt << 8 | (i + 1));
	}
}

/* How many slots of a ring differ from expect (ids of the Maglev table). */
static __u32 ring_diff(struct tctx *t, const struct shift_maps *m, __u32 sid, int color,
		       const __u32 *table, const __u32 *ids)
{
	__u32 slot, be, bad = 0;

	for (slot = 0; slot < SHIFT_RING_SIZE; slot++) {
		__u32 want = table[slot] == SHIFT_NO_BACKEND ? SHIFT_NO_BACKEND : ids[table[slot]];

		if (dp_ring_get(m, sid, color, slot, &be) || be != want) {
			if (!bad)
				test_note(t, "service %u color %d slot %u: %u, expected %u", sid,
					  color, slot, be, want);
			bad++;
		}
	}
	return bad;
}

static void check_write_read(struct tctx *t, struct harness *h)
{
	static __u32 table_b[SHIFT_RING_SIZE], table_g[SHIFT_RING_SIZE];
	const __u32 ids_b[] = { 0, 1, SHIFT_MAX_BACKENDS - 1 };
	const __u32 ids_g[] = { 1234, 7 };
	__u32 bad_ids[] = { 5, SHIFT_MAX_BACKENDS };
	struct shift_addr_key ab[3], ag[2];
	__u32 be;

	pool_addrs(ab, 3, 1);
	pool_addrs(ag, 2, 2);
	if (!ASSERT_OK(t, maglev_build(ab, 3, table_b, SHIFT_RING_SIZE), "maglev blue") ||
	    !ASSERT_OK(t, maglev_build(ag, 2, table_g, SHIFT_RING_SIZE), "maglev green"))
		return;
	/* The last ring of the map, and the one before it. */
	if (!ASSERT_OK(t, dp_pool_set(&h->m, LAST_SVC, SHIFT_BLUE, ids_b, ab, 3), "set blue") ||
	    !ASSERT_OK(t, dp_pool_set(&h->m, LAST_SVC, SHIFT_GREEN, ids_g, ag, 2), "set green"))
		return;
	ASSERT_EQ(t, ring_diff(t, &h->m, LAST_SVC, SHIFT_BLUE, table_b, ids_b), 0,
		  "blue slots that differ from the Maglev table (largest id 32767 included)");
	ASSERT_EQ(t, ring_diff(t, &h->m, LAST_SVC, SHIFT_GREEN, table_g, ids_g), 0,
		  "green slots that differ (the last ring of the map)");

	/* Emptying green leaves blue as it was. */
	if (!ASSERT_OK(t, dp_pool_set(&h->m, LAST_SVC, SHIFT_GREEN, ids_g, ag, 0), "empty green"))
		return;
	ASSERT_OK(t, dp_ring_get(&h->m, LAST_SVC, SHIFT_GREEN, SHIFT_RING_SIZE - 1, &be),
		  "read the last slot");
	ASSERT_EQ(t, be, SHIFT_NO_BACKEND, "an empty pool's last slot");
	ASSERT_OK(t, dp_ring_get(&h->m, LAST_SVC, SHIFT_GREEN, 0, &be), "read slot 0");
	ASSERT_EQ(t, be, SHIFT_NO_BACKEND, "an empty pool's first slot");
	ASSERT_EQ(t, ring_diff(t, &h->m, LAST_SVC, SHIFT_BLUE, table_b, ids_b), 0,
		  "blue slots that differ after green was emptied");

	/* An id that does not fit the map is refused before anything is written. */
	ASSERT_EQ(t, dp_pool_set(&h->m, LAST_SVC, SHIFT_BLUE, bad_ids, ab, 2), -ERANGE,
		  "a backend id of SHIFT_MAX_BACKENDS");
	ASSERT_EQ(t, ring_diff(t, &h->m, LAST_SVC, SHIFT_BLUE, table_b, ids_b), 0,
		  "blue slots that differ after the refused write");
	ASSERT_EQ(t, dp_ring_get(&h->m, LAST_SVC, SHIFT_BLUE, SHIFT_RING_SIZE, &be), -ERANGE,
		  "slot SHIFT_RING_SIZE");
	ASSERT_EQ(t, dp_pool_set(&h->m, SHIFT_MAX_SERVICES, SHIFT_BLUE, ids_b, ab, 3), -ERANGE,
		  "service SHIFT_MAX_SERVICES");
}

static void rm_pins(const char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/maps", dir);
	d = opendir(path);
	if (d) {
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/maps/%s", dir, e->d_name);
			if (unlink(path))
				fprintf(stderr, "rings: cannot unlink %s: %s\n", path,
					strerror(errno));
		}
		closedir(d);
		snprintf(path, sizeof(path), "%s/maps", dir);
		rmdir(path);
	}
	rmdir(dir);
}

static __u32 map_id(int fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static __u32 pinned_id(const char *dir, const char *name, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/maps/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		info->id = 0;
	close(fd);
	return info->id;
}

static void check_old_layout(struct tctx *t)
{
	struct loader_opts o = {
		.hash_seed = 7, .max_flows4 = 1024, .max_flows6 = 1024, .compat = harness_compat()
	};
	__u32 flows_id, rings_id, old_id;
	struct bpf_map_info info;
	char dir[128], path[256];
	struct shift *skel;
	bool adopted;
	int old_fd;

	snprintf(dir, sizeof(dir), "/sys/fs/bpf/shift-test-rings-%d",
		 getpid()); /* bpffs refuses dots */
	o.pin_dir = dir;
	if (!ASSERT_OK(t, bpffs_prepare(dir), "bpffs"))
		return;
	skel = shift_skel_load_pinned(&o, &adopted);
	if (!ASSERT_TRUE(t, skel != NULL, "first load, pinning"))
		goto out;
	flows_id = map_id(bpf_map__fd(skel->maps.shift_flows4));
	shift__destroy(skel);

	/* What an older shiftd pinned: one 4-byte slot per value. */
	snprintf(path, sizeof(path), "%s/maps/shift_rings", dir);
	if (!ASSERT_OK(t, unlink(path) ? -errno : 0, "unpin the rings"))
		goto out;
	old_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "shift_rings", 4, 4, 4096, NULL);
	if (!ASSERT_TRUE(t, old_fd >= 0, "create an old-layout ring map"))
		goto out;
	old_id = map_id(old_fd);
	ASSERT_OK(t, bpf_obj_pin(old_fd, path) ? -errno : 0, "pin it");

	skel = shift_skel_load_pinned(&o, &adopted);
	if (!ASSERT_TRUE(t, skel != NULL, "second load over the old-layout rings"))
		goto out_old;
	ASSERT_TRUE(t, adopted, "the second load adopted the pinned maps");
	ASSERT_EQ(t, map_id(bpf_map__fd(skel->maps.shift_flows4)), flows_id,
		  "shift_flows4: the pinned table, adopted");
	rings_id = map_id(bpf_map__fd(skel->maps.shift_rings));
	ASSERT_TRUE(t, rings_id != old_id, "shift_rings: a new map, not the old one");
	ASSERT_EQ(t, pinned_id(dir, "shift_rings", &info), rings_id,
		  "the new rings are pinned in place of the old");
	ASSERT_EQ(t, info.value_size, sizeof(struct shift_ring_chunk), "pinned rings' value size");
	ASSERT_TRUE(t, info.map_flags & BPF_F_MMAPABLE, "pinned rings are mmapable");
	shift__destroy(skel);

	skel = shift_skel_load_pinned(&o, &adopted);
	if (ASSERT_TRUE(t, skel != NULL, "third load")) {
		ASSERT_EQ(t, map_id(bpf_map__fd(skel->maps.shift_rings)), rings_id,
			  "the new-layout rings, adopted on the next start");
		shift__destroy(skel);
	}
out_old:
	close(old_fd);
out:
	rm_pins(dir);
}

TEST(rings)
{
	struct harness h;

	if (test_sub(t, "rings: every slot reads back, other rings untouched, bad ids refused")) {
		if (ASSERT_OK(t, harness_open(&h, 1, 1024, 1024), "load")) {
			check_write_read(t, &h);
			harness_close(&h);
		}
	}
	if (test_sub(t, "rings: a restart over old-layout pinned rings replaces them"))
		check_old_layout(t);
}
