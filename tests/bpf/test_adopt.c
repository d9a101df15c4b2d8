// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shiftd adopts the maps an earlier shiftd pinned (the connection table,
 * weights and latches outlive it). A map whose layout changed is the map ABI's
 * business, except for the loader's relayout rules, checked here on a pin
 * directory of its own: a table and a SYN slot array sized differently by
 * the config keep their pinned size; rings in the older layout (one 4-byte
 * slot per value), counters missing a drop reason and a VIP filter of the
 * older hash (its size) are replaced by new maps, pinned in place of the old
 * ones, and adopted on the next start. The new filter is rebuilt from the
 * adopted VIPs.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/flow_hash.h>

#include "shift.skel.h"
#include "harness.h"
#include "datapath/dataplane.h"
#include "datapath/loader.h"
#include "test.h"

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

/* Pin over name, in dir, a map of another layout; its fd, or -1. */
static int pin_other(struct tctx *t, const char *dir, const char *name, enum bpf_map_type type,
		     __u32 value_size, __u32 max_entries)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/maps/%s", dir, name);
	if (!ASSERT_OK(t, unlink(path) ? -errno : 0, name))
		return -1;
	fd = bpf_map_create(type, name, 4, value_size, max_entries, NULL);
	if (!ASSERT_TRUE(t, fd >= 0, "create a map of another layout"))
		return -1;
	if (!ASSERT_OK(t, bpf_obj_pin(fd, path) ? -errno : 0, "pin it")) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A first start, pinning under a directory of the test's own (bpffs refuses
 * dots in names): dir holds its path, o the options, to start again with.
 */
static struct shift *first_start(struct tctx *t, struct loader_opts *o, char *dir, size_t len,
				 const char *name)
{
	struct shift *skel;
	bool adopted;

	snprintf(dir, len, "/sys/fs/bpf/shift-test-%s-%d", name, getpid());
	*o = (struct loader_opts){
		.pin_dir = dir,
		.hash_seed = 7,
		.max_flows4 = 1024,
		.max_flows6 = 1024,
		.syn_slots = 4096,
		.compat = harness_compat(),
	};
	if (!ASSERT_OK(t, bpffs_prepare(dir), "bpffs"))
		return NULL;
	skel = shift_skel_load_pinned(o, &adopted);
	ASSERT_TRUE(t, skel != NULL, "first load, pinning");
	return skel;
}

static void check_relayout(struct tctx *t)
{
	struct loader_opts o;
	__u32 flows_id, rings_id, stats_id, old_rings_id, old_stats_id, key, vips_id, old_vipset_id,
		vipset_id = 0;
	int old_rings = -1, old_stats = -1, old_vipset = -1, ncpu, c;
	/* 192.0.2.10, a VIP the first shiftd put */
	struct shift_vip_addr vip = { .addr = { htonl(0xc000020a) }, .family = SHIFT_AF_INET };
	static struct shift_vip_filter vf;
	struct shift_maps m;
	__u32 refs = 1, bit, zero = 0;
	__u64 pc[1024];
	struct bpf_map_info info;
	struct shift *skel;
	char dir[128];
	bool adopted;

	skel = first_start(t, &o, dir, sizeof(dir), "adopt");
	if (!skel)
		goto out;
	flows_id = map_id(bpf_map__fd(skel->maps.shift_flows4));
	stats_id = map_id(bpf_map__fd(skel->maps.shift_stats));
	vips_id = map_id(bpf_map__fd(skel->maps.shift_vips));
	ASSERT_OK(t,
		  bpf_map_update_elem(bpf_map__fd(skel->maps.shift_vips), &vip, &refs, BPF_ANY) ?
			  -errno :
			  0,
		  "a VIP in the pinned vips map");
	shift__destroy(skel);

	/* What an older shiftd pinned: rings of one 4-byte slot per value, one
	 * counter fewer. */
	old_rings = pin_other(t, dir, "shift_rings", BPF_MAP_TYPE_ARRAY, 4, 4096);
	old_stats =
		pin_other(t, dir, "shift_stats", BPF_MAP_TYPE_PERCPU_ARRAY, 8, SHIFT_STAT_MAX - 1);
	/* And the filter of the older hash: 1024 words, the VIP's bit not set. */
	old_vipset = pin_other(t, dir, "shift_vipset", BPF_MAP_TYPE_ARRAY, 8 * 1024, 1);
	if (old_rings < 0 || old_stats < 0 || old_vipset < 0)
		goto out;
	old_rings_id = map_id(old_rings);
	old_stats_id = map_id(old_stats);
	old_vipset_id = map_id(old_vipset);
	/* Counts the older programs made: the new map must carry them. */
	ncpu = libbpf_num_possible_cpus();
	if (!ASSERT_TRUE(t, ncpu > 0 && ncpu <= 1024, "possible CPUs"))
		goto out;
	for (c = 0; c < ncpu; c++)
		pc[c] = 1000 + c;
	key = SHIFT_STAT_FLOW_NEW;
	if (!ASSERT_OK(t, bpf_map_update_elem(old_stats, &key, pc, BPF_ANY) ? -errno : 0,
		       "count in the old counters"))
		goto out;

	/* And a config that asks for a bigger table. */
	o.max_flows4 = 4096;
	o.syn_slots = 8192;
	skel = shift_skel_load_pinned(&o, &adopted);
	if (!ASSERT_TRUE(t, skel != NULL, "second load over the older layouts"))
		goto out;
	ASSERT_TRUE(t, adopted, "the second load adopted the pinned maps");
	ASSERT_EQ(t, map_id(bpf_map__fd(skel->maps.shift_flows4)), flows_id,
		  "shift_flows4: the pinned table, adopted");
	ASSERT_EQ(t, bpf_map__max_entries(skel->maps.shift_flows4), 1024,
		  "shift_flows4 keeps its pinned size");
	ASSERT_EQ(t, bpf_map__max_entries(skel->maps.shift_syns), 4096,
		  "shift_syns keeps its pinned size");
	ASSERT_EQ(t, skel->rodata->syn_slot_mask, 4095,
		  "the programs index the pinned SYN slot array");
	rings_id = map_id(bpf_map__fd(skel->maps.shift_rings));
	ASSERT_TRUE(t, rings_id != old_rings_id, "shift_rings: a new map, not the old one");
	ASSERT_EQ(t, pinned_id(dir, "shift_rings", &info), rings_id,
		  "the new rings are pinned in place of the old");
	ASSERT_EQ(t, info.value_size, sizeof(struct shift_ring_chunk), "pinned rings' value size");
	ASSERT_TRUE(t, info.map_flags & BPF_F_MMAPABLE, "pinned rings are mmapable");
	stats_id = map_id(bpf_map__fd(skel->maps.shift_stats));
	ASSERT_TRUE(t, stats_id != old_stats_id, "shift_stats: a new map, not the old one");
	ASSERT_EQ(t, pinned_id(dir, "shift_stats", &info), stats_id,
		  "the new counters are pinned in place of the old");
	ASSERT_EQ(t, info.max_entries, SHIFT_STAT_MAX, "pinned counters: one per reason");
	memset(pc, 0, sizeof(pc));
	if (ASSERT_OK(t,
		      bpf_map_lookup_elem(bpf_map__fd(skel->maps.shift_stats), &key, pc) ? -errno :
											   0,
		      "read the new counters"))
		for (c = 0; c < ncpu; c++)
			if (!ASSERT_EQ(t, pc[c], 1000 + c, "flow_new carried over, CPU by CPU"))
				break;
	ASSERT_EQ(t, map_id(bpf_map__fd(skel->maps.shift_vips)), vips_id,
		  "shift_vips: the pinned VIPs, adopted");
	vipset_id = map_id(bpf_map__fd(skel->maps.shift_vipset));
	ASSERT_TRUE(t, vipset_id != old_vipset_id, "shift_vipset: a new map, not the old one");
	ASSERT_EQ(t, pinned_id(dir, "shift_vipset", &info), vipset_id,
		  "the new VIP filter is pinned in place of the old");
	/* What shiftd does before it attaches the programs. */
	dp_maps_from_skel(&m, skel);
	ASSERT_OK(t, dp_vip_filter_rebuild(&m), "rebuild the VIP filter");
	bit = shift_vip_filter_bit(vip.addr);
	if (ASSERT_OK(t,
		      bpf_map_lookup_elem(bpf_map__fd(skel->maps.shift_vipset), &zero, &vf) ?
			      -errno :
			      0,
		      "read the new VIP filter"))
		ASSERT_TRUE(t, (vf.w[bit >> 6] >> (bit & 63)) & 1,
			    "the adopted VIP's bit is set in the new filter");
	shift__destroy(skel);

	skel = shift_skel_load_pinned(&o, &adopted);
	if (ASSERT_TRUE(t, skel != NULL, "third load")) {
		ASSERT_EQ(t, map_id(bpf_map__fd(skel->maps.shift_rings)), rings_id,
			  "the new rings, adopted on the next start");
		ASSERT_EQ(t, map_id(bpf_map__fd(skel->maps.shift_stats)), stats_id,
			  "the new counters, adopted on the next start");
		ASSERT_EQ(t, map_id(bpf_map__fd(skel->maps.shift_vipset)), vipset_id,
			  "the new VIP filter, adopted on the next start");
		shift__destroy(skel);
	}
out:
	if (old_rings >= 0)
		close(old_rings);
	if (old_stats >= 0)
		close(old_stats);
	if (old_vipset >= 0)
		close(old_vipset);
	rm_pins(dir);
}

/*
 * Maps an older map ABI pinned: its config map says so, and its IPv6 table is
 * keyed otherwise (ABI 5: the whole VIP, 36 bytes). The start is refused,
 * naming the ABI (EPROTO), and the pinned table stays as it was: the
 * connections of the programs still attached keep their entries.
 */
static void check_old_abi(struct tctx *t)
{
	struct loader_opts o;
	struct shift_config cfg;
	struct bpf_map_info info;
	__u32 zero = 0, old_id;
	struct shift *skel;
	char dir[128], path[512];
	bool adopted;
	int fd = -1;

	skel = first_start(t, &o, dir, sizeof(dir), "abi");
	if (!skel)
		goto out;
	memset(&cfg, 0, sizeof(cfg));
	ASSERT_OK(t,
		  bpf_map_lookup_elem(bpf_map__fd(skel->maps.shift_config), &zero, &cfg) ? -errno :
											   0,
		  "read the pinned config");
	cfg.abi_version = SHIFT_ABI_VERSION - 1;
	ASSERT_OK(t,
		  bpf_map_update_elem(bpf_map__fd(skel->maps.shift_config), &zero, &cfg, BPF_ANY) ?
			  -errno :
			  0,
		  "the config an older shiftd wrote");
	shift__destroy(skel);
	snprintf(path, sizeof(path), "%s/maps/shift_flows6", dir);
	if (!ASSERT_OK(t, unlink(path) ? -errno : 0, "unpin shift_flows6"))
		goto out;
	fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "shift_flows6", 36, sizeof(struct shift_flow),
			    1024, NULL);
	if (!ASSERT_TRUE(t, fd >= 0, "an IPv6 table keyed as in ABI 5") ||
	    !ASSERT_OK(t, bpf_obj_pin(fd, path) ? -errno : 0, "pin it"))
		goto out;
	old_id = map_id(fd);

	errno = 0;
	skel = shift_skel_load_pinned(&o, &adopted);
	if (!ASSERT_TRUE(t, skel == NULL, "a start over an older map ABI is refused"))
		shift__destroy(skel);
	else
		ASSERT_EQ(t, errno, EPROTO, "refused for the ABI (EPROTO)");
	ASSERT_EQ(t, pinned_id(dir, "shift_flows6", &info), old_id,
		  "the older table stays pinned, untouched");
	ASSERT_EQ(t, info.key_size, 36, "with its key");
out:
	if (fd >= 0)
		close(fd);
	rm_pins(dir);
}

/*
 * Maps pinned without shift_config and no program attached: what a first
 * start that died while pinning leaves (shift_config is pinned last). Used to
 * read as "map ABI 0" and be refused at every start; now replaced by new
 * maps, not adopted, and the set completed.
 */
static void check_leftovers(struct tctx *t)
{
	struct loader_opts o;
	struct bpf_map_info info;
	struct shift_config cfg;
	struct shift *skel;
	__u32 old_id, zero = 0;
	char dir[128], path[512];
	bool adopted = true;

	skel = first_start(t, &o, dir, sizeof(dir), "left");
	if (!skel)
		goto out;
	old_id = map_id(bpf_map__fd(skel->maps.shift_weights));
	shift__destroy(skel);
	snprintf(path, sizeof(path), "%s/maps/shift_config", dir);
	if (!ASSERT_OK(t, unlink(path) ? -errno : 0, "unpin shift_config"))
		goto out;

	skel = shift_skel_load_pinned(&o, &adopted);
	if (!ASSERT_TRUE(t, skel != NULL, "a start over leftover pins goes on"))
		goto out;
	ASSERT_TRUE(t, !adopted, "the leftovers are not adopted");
	ASSERT_TRUE(t, map_id(bpf_map__fd(skel->maps.shift_weights)) != old_id,
		    "a new weights map");
	ASSERT_EQ(t, pinned_id(dir, "shift_weights", &info),
		  map_id(bpf_map__fd(skel->maps.shift_weights)), "pinned in place of the old one");
	ASSERT_EQ(t, pinned_id(dir, "shift_config", &info),
		  map_id(bpf_map__fd(skel->maps.shift_config)), "shift_config pinned");
	memset(&cfg, 0, sizeof(cfg));
	ASSERT_OK(t,
		  bpf_map_lookup_elem(bpf_map__fd(skel->maps.shift_config), &zero, &cfg) ? -errno :
											   0,
		  "read the new config");
	ASSERT_EQ(t, cfg.abi_version, SHIFT_ABI_VERSION, "with this map ABI");
	shift__destroy(skel);
out:
	rm_pins(dir);
}

/*
 * Maps without shift_config while a link is pinned (a program runs on them):
 * no shiftd leaves this, and their ABI is unknown. Refused (EUCLEAN) before
 * the load, every pin left as it was.
 */
static void check_incomplete(struct tctx *t)
{
	struct loader_opts o;
	struct bpf_map_info info;
	struct shift *skel;
	__u32 old_id;
	char dir[128], path[512], links[256];
	bool adopted;
	int fd = -1;

	skel = first_start(t, &o, dir, sizeof(dir), "inc");
	if (!skel)
		goto out;
	old_id = map_id(bpf_map__fd(skel->maps.shift_weights));
	shift__destroy(skel);
	snprintf(path, sizeof(path), "%s/maps/shift_config", dir);
	if (!ASSERT_OK(t, unlink(path) ? -errno : 0, "unpin shift_config"))
		goto out;
	/* Any object will do for a link pin here: the loader only counts them. */
	snprintf(links, sizeof(links), "%s/links", dir);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "shift_t_link", 4, 4, 1, NULL);
	snprintf(path, sizeof(path), "%s/eth9", links);
	if (!ASSERT_OK(t, mkdir(links, 0700) ? -errno : 0, "mkdir links") ||
	    !ASSERT_TRUE(t, fd >= 0, "an object to pin") ||
	    !ASSERT_OK(t, bpf_obj_pin(fd, path) ? -errno : 0, "pin it as links/eth9"))
		goto out;

	errno = 0;
	skel = shift_skel_load_pinned(&o, &adopted);
	if (!ASSERT_TRUE(t, skel == NULL, "a start over incomplete pins with a link is refused"))
		shift__destroy(skel);
	else
		ASSERT_EQ(t, errno, EUCLEAN, "refused as incomplete pins (EUCLEAN)");
	ASSERT_EQ(t, pinned_id(dir, "shift_weights", &info), old_id, "the pins stay as they were");
	snprintf(path, sizeof(path), "%s/maps/shift_config", dir);
	ASSERT_TRUE(t, access(path, F_OK) != 0, "no shift_config pinned by the refused start");
out:
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/links/eth9", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/links", dir);
	rmdir(path);
	rm_pins(dir);
}

TEST(adopt)
{
	if (test_sub(t, "adopt: a restart over pinned maps of older layouts: the table kept at its "
			"pinned size, the rings, counters and VIP filter replaced, the counts "
			"carried over, the filter rebuilt from the adopted VIPs"))
		check_relayout(t);
	if (test_sub(t, "adopt: maps of an older map ABI: the start refused, naming the ABI; "
			"the pinned table untouched"))
		check_old_abi(t);
	if (test_sub(t, "adopt: maps pinned without shift_config and no program attached (a "
			"first start that died pinning): replaced, not adopted"))
		check_leftovers(t);
	if (test_sub(t, "adopt: maps pinned without shift_config beside a link: refused "
			"(EUCLEAN), the pins untouched"))
		check_incomplete(t);
}
