/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The dataplane API: everything userspace writes into or reads out of the BPF
 * maps. It works on map fds only, so shiftd (which loaded the skeleton) and
 * shiftctl (which opened the pins) share it.
 *
 * Functions return 0 or a negative errno; they never print.
 */
#ifndef SHIFT_DATAPLANE_H
#define SHIFT_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <shift/maps.h>

enum shift_map_id {
	SHIFT_MAP_SERVICES,
	SHIFT_MAP_VIPS,
	SHIFT_MAP_WEIGHTS,
	SHIFT_MAP_SVC_INFO,
	SHIFT_MAP_BACKENDS,
	SHIFT_MAP_BACKEND_IDX,
	SHIFT_MAP_RINGS,
	SHIFT_MAP_FLOWS4,
	SHIFT_MAP_FLOWS6,
	SHIFT_MAP_OVR4,
	SHIFT_MAP_OVR6,
	SHIFT_MAP_BE_STATS,
	SHIFT_MAP_STATS,
	SHIFT_MAP_LAT_HIST,
	SHIFT_MAP_SAMPLES,
	SHIFT_MAP_CONFIG,
	SHIFT_MAP_ERRORS,
	SHIFT_MAP_VIPSET,
	SHIFT_MAP_SHADOW, /* shadow mode: copied requests (ring) */
	SHIFT_MAP_SHADOW_CFG,
	SHIFT_MAP_SHADOW_STATS,
	SHIFT_MAP_SNAT_CFG,
	SHIFT_MAP_SNAT,
	SHIFT_MAP_SNAT_HALF,
	SHIFT_MAP_LOST, /* samples no ring could take, by service, color and kind */
	SHIFT_MAP__COUNT,
};

/* BPF map names; also the file names of the pins under <bpffs_dir>/maps/. */
extern const char *const shift_map_names[SHIFT_MAP__COUNT];

struct shift_maps {
	int fd[SHIFT_MAP__COUNT];
	/* shift_weight_cas loaded against fd[SHIFT_MAP_WEIGHTS] by the first
	 * dp_weight_cas(), or -1; owned (dp_maps_close()). */
	int weight_cas_fd;
};

struct shift;
/* Take the fds of a loaded skeleton (not dup'ed: the skeleton owns them). */
void dp_maps_from_skel(struct shift_maps *m, const struct shift *skel);
/* Open pinned maps under dir/maps/; fds owned by the caller (dp_maps_close). */
int dp_maps_open_pinned(struct shift_maps *m, const char *dir);
void dp_maps_close(struct shift_maps *m);

/* Services. The VIP key's family/proto/port/addr must be filled; id < SHIFT_MAX_SERVICES. */
int dp_service_put(const struct shift_maps *m, __u32 id, const struct shift_addr_key *vip,
		   __u32 flags);
int dp_service_del(const struct shift_maps *m, __u32 id, const struct shift_addr_key *vip);
/* The VIP filter, from the VIPs the maps hold (at start: a new filter map
 * beside adopted services). */
int dp_vip_filter_rebuild(const struct shift_maps *m);
int dp_service_set_name(const struct shift_maps *m, __u32 id, const char *name);
int dp_svc_info_get(const struct shift_maps *m, __u32 id, struct shift_svc_info *info);
/* Find a live service by name in svc_info: 0 and *id, or -ENOENT. */
int dp_service_find(const struct shift_maps *m, const char *name, __u32 *id,
		    struct shift_svc_info *info);

/* The weight word: basis points | SHIFT_WEIGHT_LATCHED. One map write. */
int dp_weight_set(const struct shift_maps *m, __u32 service_id, __u32 word);
int dp_weight_get(const struct shift_maps *m, __u32 service_id, __u32 *word);
/*
 * The word becomes word only while it is expect, atomically (weight_cas.c): a
 * write decided from a word read earlier cannot overwrite a rollback written
 * since. 0 when written, or when the word already was word; -EAGAIN when it
 * was another (*seen, if not NULL, says which), nothing written; another
 * negative errno when the check cannot run (a kernel without syscall
 * programs: the caller may write with dp_weight_set() and say so).
 */
int dp_weight_cas(struct shift_maps *m, __u32 service_id, __u32 expect, __u32 word, __u32 *seen);
/* Does err (from dp_weight_cas()) say the check could not run, rather than that
 * the word or the arguments were wrong? Then dp_weight_set() is the fallback. */
bool dp_weight_cas_unchecked(int err);
/* Unload it (dp_maps_close() does; maps taken from a skeleton need this alone). */
void dp_weight_cas_close(struct shift_maps *m);

/* Backends: the array slot and the return-path index (addr+port+proto -> id). */
int dp_backend_put(const struct shift_maps *m, __u32 id, const struct shift_backend *be,
		   __u8 proto);
int dp_backend_get(const struct shift_maps *m, __u32 id, struct shift_backend *be);
int dp_backend_del(const struct shift_maps *m, __u32 id, __u8 proto);
/* Backend id by address + port + proto (the return path's index). */
int dp_backend_find(const struct shift_maps *m, const struct shift_addr_key *k, __u32 *id);

/*
 * Fill a pool's consistent-hash ring from its backends (ids[i] is the backend
 * id of addrs[i]); n == 0 empties the pool. The ring depends on the set of
 * addresses only, so every edge host with the same config builds the same one.
 */
int dp_pool_set(const struct shift_maps *m, __u32 service_id, enum shift_color color,
		const __u32 *ids, const struct shift_addr_key *addrs, __u32 n);
/* Backend id at a ring slot (for tests and `shiftctl explain`). */
int dp_ring_get(const struct shift_maps *m, __u32 service_id, enum shift_color color, __u32 slot,
		__u32 *backend_id);

/* Source-prefix overrides: family SHIFT_AF_INET(6), addr in network order. */
int dp_override_put(const struct shift_maps *m, __u32 service_id, __u8 family, const __u32 *addr,
		    __u8 prefixlen, enum shift_color color);
int dp_override_del(const struct shift_maps *m, __u32 service_id, __u8 family, const __u32 *addr,
		    __u8 prefixlen);
/*
 * Delete every override for which keep() says no: the whole of both tries,
 * whatever service wrote it, so that entries of a service gone or of a
 * prefix dropped while shiftd was down go too. *removed counts them.
 */
typedef bool (*dp_override_keep_fn)(void *ctx, __u32 service_id, __u8 family, const __u32 *addr,
				    __u8 prefixlen);
int dp_overrides_prune(const struct shift_maps *m, dp_override_keep_fn keep, void *ctx,
		       __u32 *removed);

/*
 * A walk over both connection tables that deletes one service's entries, a
 * step at a time, so that a caller with other work (shiftd's loop) can spread
 * a table of a million entries over many turns. Entries are read in batches
 * (BPF_MAP_LOOKUP_BATCH: the cursor is a hash bucket, which deletions in
 * between do not move) and the matching ones deleted in one call
 * (BPF_MAP_DELETE_BATCH); a kernel without batch operations on these maps
 * gets a walk key by key. Every entry present when the walk starts and still
 * present when it passes is deleted.
 */
struct dp_evict {
	__u32 service_id;
	int color; /* < 0: every color */
	int table; /* 0 IPv4, 1 IPv6, 2 done */
	bool started; /* the cursor (or key) is set for table */
	bool key_walk; /* no batch operations on this kernel: key by key */
	__u64 cursor; /* BPF_MAP_LOOKUP_BATCH's out_batch (a bucket index) */
	unsigned char key[sizeof(struct shift_flow_key6)]; /* the key walk's next key */
	__u64 evicted; /* entries deleted so far */
	__u64 visited; /* entries looked at so far */
};

void dp_evict_init(struct dp_evict *e, __u32 service_id, int color);
/* Look at about max entries (64 at least): 1 when the walk is over, 0 when
 * more is left, or -errno (the walk may be stepped again). */
int dp_evict_step(const struct shift_maps *m, struct dp_evict *e, __u32 max);

/* Delete the connection-table entries of a service (color < 0: all colors): a
 * whole dp_evict walk at once. */
int dp_flows_evict(const struct shift_maps *m, __u32 service_id, int color, __u64 *evicted);

/* Counters, summed over CPUs. */
int dp_backend_stats(const struct shift_maps *m, __u32 backend_id, struct shift_backend_stats *out);
int dp_lat_hist(const struct shift_maps *m, __u32 backend_id, enum shift_lat_kind kind,
		struct shift_lat_hist *out);
int dp_stats(const struct shift_maps *m, __u64 out[SHIFT_STAT_MAX]);
/* One slot of the stats map, summed over CPUs (one syscall). */
int dp_stat(const struct shift_maps *m, enum shift_stat s, __u64 *out);
/* A copy of struct shift_lost (shiftd maps it instead: samples.c). */
int dp_lost(const struct shift_maps *m, struct shift_lost *out);
/* Reset a backend's per-CPU counters and histograms (a slot being reused). */
int dp_backend_stats_reset(const struct shift_maps *m, __u32 backend_id);

int dp_config_set(const struct shift_maps *m, const struct shift_config *cfg);
int dp_config_get(const struct shift_maps *m, struct shift_config *cfg);

/* Metric-friendly name of a stats slot ("truncated", "no_backend", ...). */
const char *dp_stat_name(enum shift_stat s);
bool dp_stat_is_drop(enum shift_stat s);
const char *dp_err_name(enum shift_err e);

#endif
