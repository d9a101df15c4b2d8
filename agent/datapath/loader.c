// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>
#include "shift.skel.h"
#include "shift_compat.skel.h"
#include "datapath/dataplane.h"
#include "datapath/loader.h"
#include "ops/log.h"

int mkdir_p(const char *dir, unsigned int mode)
{
	char buf[4096];
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		buf[i] = dir[i];
	}
	return 0;
}

int bpffs_prepare(const char *dir)
{
	struct statfs st;

	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
			int err = -errno;

			log_err("cannot mount bpffs on /sys/fs/bpf: %s", strerror(-err));
			return err;
		}
		log_info("mounted bpffs on /sys/fs/bpf");
	}
	return mkdir_p(dir, 0700);
}

/*
 * What a start does with a pinned map whose layout is not this build's. The
 * pinned maps are state that must outlive shiftd, and a layout change of one
 * is a map ABI change (refused after the load). These are the exceptions.
 */
enum relayout {
	/* Sized by the config, and shared with the programs still running: the
	 * pinned size stays until 'shiftd --detach' (the tables, whose entries are
	 * the connections; the SYN slots, handshakes in flight). */
	RELAYOUT_PINNED_SIZE,
	/* Not adopted: a new map, pinned in place of the old once the new
	 * programs load (pin_new_maps()); the old programs keep theirs. */
	RELAYOUT_REPLACE,
};

static const struct {
	const char *name;
	enum relayout how;
	const char *what; /* for RELAYOUT_REPLACE: what the operator loses */
} relayout_rules[] = {
	{ "shift_flows4", RELAYOUT_PINNED_SIZE, NULL },
	{ "shift_flows6", RELAYOUT_PINNED_SIZE, NULL },
	{ "shift_snat", RELAYOUT_PINNED_SIZE, NULL },
	{ "shift_syns", RELAYOUT_PINNED_SIZE, NULL },
	/* A new drop reason adds a counter (appended: the old ones keep their
	 * slots, and their counts carry over, carry_counters()). */
	{ "shift_stats", RELAYOUT_REPLACE,
	  "the datapath counters carry over, but for what the old programs count until the new "
	  "ones attach" },
	/* Rebuilt from the config at every start. */
	{ "shift_rings", RELAYOUT_REPLACE, "the rings are rebuilt from the config" },
	/* Rebuilt from the VIPs at every start (dp_vip_filter_rebuild()). */
	{ "shift_vipset", RELAYOUT_REPLACE, "the VIP filter is rebuilt from the VIPs" },
};

static bool same_layout(const struct bpf_map *map, const struct bpf_map_info *info)
{
	return info->type == bpf_map__type(map) && info->key_size == bpf_map__key_size(map) &&
	       info->value_size == bpf_map__value_size(map) &&
	       info->max_entries == bpf_map__max_entries(map) &&
	       info->map_flags == bpf_map__map_flags(map);
}

/* A pinned map's info; the error logged with its path. */
static int pinned_map_info(int fd, const char *path, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);
	int err;

	memset(info, 0, sizeof(*info));
	if (!bpf_obj_get_info_by_fd(fd, info, &len))
		return 0;
	err = -errno;
	log_err("cannot inspect pinned map %s: %s", path, strerror(-err));
	return err;
}

/* Reuse a pinned map, unless its layout changed (relayout_rules). */
static int adopt_map(struct bpf_map *map, const char *dir, bool *found)
{
	const char *name = bpf_map__name(map);
	struct bpf_map_info info;
	char path[4096];
	size_t i;
	int fd, err;

	snprintf(path, sizeof(path), "%s/maps/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		err = -errno;
		log_err("cannot open pinned map %s: %s", path, strerror(-err));
		return err;
	}
	err = pinned_map_info(fd, path, &info);
	if (err) {
		close(fd);
		return err;
	}
	for (i = 0; i < sizeof(relayout_rules) / sizeof(relayout_rules[0]); i++) {
		if (strcmp(relayout_rules[i].name, name) || same_layout(map, &info))
			continue;
		if (relayout_rules[i].how == RELAYOUT_REPLACE) {
			log_warn("%s: the pinned map is %u x %u bytes, this version's %u x %u: a "
				 "new map (%s)",
				 name, info.max_entries, info.value_size, bpf_map__max_entries(map),
				 bpf_map__value_size(map), relayout_rules[i].what);
			close(fd);
			return 0;
		}
		/* bpf_map__reuse_fd() below takes the pinned size with the map. */
		if (info.max_entries != bpf_map__max_entries(map))
			log_warn("%s: keeping the pinned size %u (config asks %u); a new size "
				 "takes effect after 'shiftd --detach'",
				 name, info.max_entries, bpf_map__max_entries(map));
	}
	err = bpf_map__reuse_fd(map, fd);
	close(fd);
	if (err) {
		log_err("cannot reuse pinned map %s: %s", path, strerror(-err));
		return err;
	}
	*found = true;
	return 0;
}

/* Whether the map pinned at path is the map behind fd. */
static bool pinned_is(const char *path, int fd)
{
	struct bpf_map_info a, b;
	__u32 la = sizeof(a), lb = sizeof(b);
	int pfd = bpf_obj_get(path);
	bool same;

	if (pfd < 0)
		return false;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	same = !bpf_obj_get_info_by_fd(pfd, &a, &la) && !bpf_obj_get_info_by_fd(fd, &b, &lb) &&
	       a.id == b.id;
	close(pfd);
	return same;
}

/*
 * The counts of a replaced per-CPU counter array (pinned at path, a build
 * with fewer counters) into its successor new_fd, slot by slot, CPU by CPU:
 * an upgrade must not reset what operators graph. Before any program counts
 * into new_fd; what the old programs count after this copy, until the new
 * ones attach, is lost. A map that is not such an array is left alone.
 */
static int carry_counters(const char *path, int new_fd)
{
	int ncpu = libbpf_num_possible_cpus(), fd, err = 0;
	struct bpf_map_info info;
	__u32 len = sizeof(info), k, n;
	__u64 *v;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	if (info.type != BPF_MAP_TYPE_PERCPU_ARRAY || info.value_size != sizeof(__u64))
		goto out;
	n = info.max_entries < SHIFT_STAT_MAX ? info.max_entries : SHIFT_STAT_MAX;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v) {
		err = -ENOMEM;
		goto out;
	}
	for (k = 0; k < n && !err; k++) {
		if (bpf_map_lookup_elem(fd, &k, v) || bpf_map_update_elem(new_fd, &k, v, BPF_ANY))
			err = -errno;
	}
	free(v);
	if (!err)
		log_info("%s: %u counters carried over to the new map", path, n);
out:
	close(fd);
	return err;
}

static int pin_one(struct shift *skel, struct bpf_map *map, const char *dir)
{
	const char *name = bpf_map__name(map);
	char path[4096];
	int err;

	snprintf(path, sizeof(path), "%s/maps/%s", dir, name);
	if (access(path, F_OK) == 0) {
		if (pinned_is(path, bpf_map__fd(map)))
			return 0;
		/* Not adopted (RELAYOUT_REPLACE, or leftovers): this one replaces it. */
		if (map == skel->maps.shift_stats) {
			err = carry_counters(path, bpf_map__fd(map));
			if (err)
				log_warn("%s: the old counters not carried over: %s; they restart",
					 path, strerror(-err));
		}
		if (unlink(path)) {
			err = -errno;
			log_err("cannot unpin %s: %s", path, strerror(-err));
			return err;
		}
	}
	err = bpf_map__pin(map, path);
	if (err)
		log_err("cannot pin map %s: %s", path, strerror(-err));
	return err;
}

/*
 * shift_config last: a pinned shift_config says the set is complete, so a
 * start that dies half way leaves pins without it (pinned_abi() knows them).
 */
static int pin_new_maps(struct shift *skel, const char *dir)
{
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, skel->obj) {
		const char *name = bpf_map__name(map);

		/* .rodata holds the seed: per program load, never shared. */
		if (name[0] == '.' || strchr(name, '.') || map == skel->maps.shift_config)
			continue;
		err = pin_one(skel, map, dir);
		if (err)
			return err;
	}
	return pin_one(skel, skel->maps.shift_config, dir);
}

/* Entries of dir but . and ..; 0 when it does not exist, -errno when unreadable. */
static int dir_entries(const char *dir)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/*
 * The map ABI of the maps pinned under dir, read from their shift_config
 * before anything is loaded: a refusal costs no verifier time, and the caller
 * exits 2 for it (the unit restarting every second would load the programs
 * every second for a refusal that never changes). 0 to go on: *leftovers
 * says the pins are those of a first start that did not finish (not to be
 * adopted). -EPROTO: another map ABI. -EUCLEAN: pins no shiftd leaves.
 */
static int pinned_abi(const char *dir, bool *leftovers)
{
	char path[4096];
	struct bpf_map_info info;
	__u32 zero = 0, abi;
	int fd, maps, links, err;
	void *val;

	*leftovers = false;
	snprintf(path, sizeof(path), "%s/maps/shift_config", dir);
	fd = bpf_obj_get(path);
	if (fd < 0 && errno != ENOENT) {
		err = -errno;
		log_err("cannot open pinned map %s: %s", path, strerror(-err));
		return err;
	}
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/maps", dir);
		maps = dir_entries(path);
		snprintf(path, sizeof(path), "%s/links", dir);
		links = dir_entries(path);
		if (maps < 0 || links < 0) {
			err = maps < 0 ? maps : links;
			log_err("cannot read %s/%s: %s", dir, maps < 0 ? "maps" : "links",
				strerror(-err));
			return err;
		}
		if (!maps)
			return 0; /* a first start */
		/*
		 * A start pins shift_config last, and attaches only after: maps
		 * without it and no program attached are what a first start that
		 * died while pinning leaves. Empty maps no program ever used:
		 * replaced, nothing of value lost.
		 */
		if (!links) {
			log_warn("%s/maps: %d map(s) pinned without shift_config and no program "
				 "attached: leftovers of a first start that did not finish; "
				 "replacing them",
				 dir, maps);
			*leftovers = true;
			return 0;
		}
		/* Programs attached that use maps of an ABI no file says: a shiftd
		 * never leaves this (a pin removed by hand?). Adopting them blind
		 * could run this build's programs on another layout. */
		log_err("incomplete pins under %s: %d map(s) and %d link(s) but no "
			"maps/shift_config, which says their map ABI: not adopting them. "
			"'shiftd --detach' removes them all (and drops the connection table); "
			"then start shiftd again",
			dir, maps, links);
		return -EUCLEAN;
	}
	err = pinned_map_info(fd, path, &info);
	if (err) {
		close(fd);
		return err;
	}
	/* Its own value size: abi_version leads in every layout of it. */
	if (info.value_size < sizeof(abi) || info.key_size != sizeof(zero)) {
		log_err("pinned map %s is not a shift_config of any map ABI (key %u, value %u "
			"bytes): run 'shiftd --detach' with the shiftd that pinned it",
			path, info.key_size, info.value_size);
		close(fd);
		return -EPROTO;
	}
	val = calloc(1, info.value_size);
	if (!val) {
		close(fd);
		return -ENOMEM;
	}
	err = bpf_map_lookup_elem(fd, &zero, val) ? -errno : 0;
	memcpy(&abi, val, sizeof(abi));
	free(val);
	close(fd);
	if (err) {
		log_err("cannot read pinned map %s: %s", path, strerror(-err));
		return err;
	}
	if (abi != SHIFT_ABI_VERSION) {
		log_err("pinned maps under %s have map ABI %u, this shiftd speaks %u: not loading. "
			"Run 'shiftd --detach' with the shiftd of map ABI %u first (it unpins them "
			"and drops the connection table; weights and latches stay in state_dir), "
			"then start this one",
			dir, abi, SHIFT_ABI_VERSION, abi);
		return -EPROTO;
	}
	return 0;
}

bool shift_kern_ctx_supported(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int id;

	if (!vmlinux)
		return false;
	id = btf__find_by_name_kind(vmlinux, "bpf_cast_to_kern_ctx", BTF_KIND_FUNC);
	btf__free(vmlinux);
	return id > 0;
}

bool shift_use_compat(bool forced)
{
	return forced || !shift_kern_ctx_supported();
}

const void *shift_object_bytes(bool compat, size_t *sz)
{
	return compat ? shift_compat__elf_bytes(sz) : shift__elf_bytes(sz);
}

/*
 * shift__open() of either build: the two come from one source and differ
 * only in code, so the skeleton's maps, programs and .rodata are the same and
 * one skeleton type serves both (tests/bpf/test_compat.c checks it).
 */
static struct shift *shift_open(bool compat)
{
	struct shift *obj;
	int err;

	if (!compat)
		return shift__open();
	obj = calloc(1, sizeof(*obj));
	if (!obj) {
		errno = ENOMEM;
		return NULL;
	}
	err = shift__create_skeleton(obj);
	if (!err) {
		obj->skeleton->data = shift_compat__elf_bytes(&obj->skeleton->data_sz);
		err = bpf_object__open_skeleton(obj->skeleton, NULL);
	}
	if (err) {
		shift__destroy(obj);
		errno = -err;
		return NULL;
	}
	return obj;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && !strcmp(s + n - m, tail);
}

__u32 shift_prog_role(const char *prog_name)
{
	if (strncmp(prog_name, "shift_", 6))
		return 0;
	if (ends_with(prog_name, "_client"))
		return SHIFT_LOAD_ROLE_CLIENT;
	if (ends_with(prog_name, "_backend"))
		return SHIFT_LOAD_ROLE_BACKEND;
	if (ends_with(prog_name, "_both"))
		return SHIFT_LOAD_ROLE_BOTH;
	return 0;
}

struct shift *shift_skel_load_pinned(const struct loader_opts *o, bool *adopted)
{
	bool compat = shift_use_compat(o->compat);
	struct shift_maps maps;
	struct shift_config cfg;
	struct bpf_program *prog;
	struct bpf_map *map;
	struct shift *skel;
	bool found = false, leftovers = false;
	char path[4096];
	int err;

	if (o->pin_dir) {
		err = pinned_abi(o->pin_dir, &leftovers);
		if (err) {
			errno = -err;
			return NULL;
		}
	}
	skel = shift_open(compat);
	if (!skel) {
		err = -errno;
		log_err("cannot open the BPF object: %s", strerror(-err));
		errno = -err;
		return NULL;
	}
	log_info("datapath: %s", compat ? "shift_compat (no bpf_cast_to_kern_ctx: TC checksums "
					  "through the helpers)" :
					  "shift (TC checksums written directly)");
	skel->rodata->hash_seed = o->hash_seed;
	err = bpf_map__set_max_entries(skel->maps.shift_flows4,
				       o->max_flows4 ? o->max_flows4 : SHIFT_DEFAULT_FLOWS);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.shift_flows6,
					       o->max_flows6 ? o->max_flows6 :
							       SHIFT_DEFAULT_FLOWS6);
	if (err) {
		log_err("cannot size the connection table: %s", strerror(-err));
		goto fail;
	}
	err = bpf_map__set_max_entries(skel->maps.shift_syns,
				       o->syn_slots ? o->syn_slots : SHIFT_SYN_SLOTS);
	if (err) {
		log_err("cannot size the SYN slot array: %s", strerror(-err));
		goto fail;
	}
	if (o->pin_dir) {
		snprintf(path, sizeof(path), "%s/maps", o->pin_dir);
		err = mkdir_p(path, 0700);
		if (err) {
			log_err("cannot create %s: %s", path, strerror(-err));
			goto fail;
		}
		bpf_object__for_each_map(map, skel->obj) {
			if (strchr(bpf_map__name(map), '.') || leftovers)
				continue;
			err = adopt_map(map, o->pin_dir, &found);
			if (err)
				goto fail;
		}
	}
	/* The programs index the array they run with: the pinned one's size when
	 * adopted (a power of two either way: the config and the default are). */
	skel->rodata->syn_slot_mask = bpf_map__max_entries(skel->maps.shift_syns) - 1;
	bpf_object__for_each_program(prog, skel->obj) {
		enum bpf_prog_type t = bpf_program__type(prog);
		__u32 hook = t == BPF_PROG_TYPE_XDP ? SHIFT_LOAD_XDP : SHIFT_LOAD_TC;
		__u32 role = shift_prog_role(bpf_program__name(prog));

		if ((o->hooks && !(o->hooks & hook)) || (o->roles && role && !(o->roles & role))) {
			err = bpf_program__set_autoload(prog, false);
			if (err) {
				log_err("cannot leave %s unloaded: %s", bpf_program__name(prog),
					strerror(-err));
				goto fail;
			}
		}
	}
	/* On failure libbpf has printed the verifier log through shift_log. */
	err = shift__load(skel);
	if (err) {
		log_err("cannot load the BPF programs: %s", strerror(-err));
		goto fail;
	}
	dp_maps_from_skel(&maps, skel);
	if (found) {
		/* pinned_abi() read it before the load; this is the map adopted. */
		err = dp_config_get(&maps, &cfg);
		if (err) {
			log_err("cannot read the adopted shift_config: %s", strerror(-err));
			goto fail;
		}
		if (cfg.abi_version != SHIFT_ABI_VERSION) {
			log_err("pinned maps under %s have map ABI %u, this shiftd speaks %u: run "
				"'shiftd --detach' with the shiftd of map ABI %u first",
				o->pin_dir, cfg.abi_version, SHIFT_ABI_VERSION, cfg.abi_version);
			err = -EPROTO;
			goto fail;
		}
	} else {
		memset(&cfg, 0, sizeof(cfg));
		cfg.abi_version = SHIFT_ABI_VERSION;
		err = dp_config_set(&maps, &cfg);
		if (err) {
			log_err("cannot write the config map: %s", strerror(-err));
			goto fail;
		}
	}
	if (o->pin_dir) {
		err = pin_new_maps(skel, o->pin_dir);
		if (err)
			goto fail;
	}
	if (adopted)
		*adopted = found;
	return skel;
fail:
	shift__destroy(skel);
	errno = -err;
	return NULL;
}
