// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>
#include "shift.skel.h"
#include "datapath/dataplane.h"
#include "datapath/maglev.h"
#include <shift/flow_hash.h>

const char *const shift_map_names[SHIFT_MAP__COUNT] = {
	[SHIFT_MAP_SERVICES] = "shift_services",
	[SHIFT_MAP_VIPS] = "shift_vips",
	[SHIFT_MAP_WEIGHTS] = "shift_weights",
	[SHIFT_MAP_SVC_INFO] = "shift_svc_info",
	[SHIFT_MAP_BACKENDS] = "shift_backends",
	[SHIFT_MAP_BACKEND_IDX] = "shift_be_idx",
	[SHIFT_MAP_RINGS] = "shift_rings",
	[SHIFT_MAP_FLOWS4] = "shift_flows4",
	[SHIFT_MAP_FLOWS6] = "shift_flows6",
	[SHIFT_MAP_OVR4] = "shift_ovr4",
	[SHIFT_MAP_OVR6] = "shift_ovr6",
	[SHIFT_MAP_BE_STATS] = "shift_be_stats",
	[SHIFT_MAP_STATS] = "shift_stats",
	[SHIFT_MAP_LAT_HIST] = "shift_lat_hist",
	[SHIFT_MAP_SAMPLES] = "shift_samples",
	[SHIFT_MAP_CONFIG] = "shift_config",
	[SHIFT_MAP_ERRORS] = "shift_errors",
	[SHIFT_MAP_VIPSET] = "shift_vipset",
	[SHIFT_MAP_SHADOW] = "shift_shadow",
	[SHIFT_MAP_SHADOW_CFG] = "shift_shadowcfg",
	[SHIFT_MAP_SHADOW_STATS] = "shift_shadowst",
	[SHIFT_MAP_SNAT_CFG] = "shift_snat_cfg",
	[SHIFT_MAP_SNAT] = "shift_snat",
	[SHIFT_MAP_SNAT_HALF] = "shift_snat_half",
	[SHIFT_MAP_LOST] = "shift_lost",
};

static int neg_errno(int rc)
{
	return rc < 0 ? -errno : rc;
}

void dp_maps_from_skel(struct shift_maps *m, const struct shift *skel)
{
	m->fd[SHIFT_MAP_SERVICES] = bpf_map__fd(skel->maps.shift_services);
	m->fd[SHIFT_MAP_VIPS] = bpf_map__fd(skel->maps.shift_vips);
	m->fd[SHIFT_MAP_WEIGHTS] = bpf_map__fd(skel->maps.shift_weights);
	m->fd[SHIFT_MAP_SVC_INFO] = bpf_map__fd(skel->maps.shift_svc_info);
	m->fd[SHIFT_MAP_BACKENDS] = bpf_map__fd(skel->maps.shift_backends);
	m->fd[SHIFT_MAP_BACKEND_IDX] = bpf_map__fd(skel->maps.shift_be_idx);
	m->fd[SHIFT_MAP_RINGS] = bpf_map__fd(skel->maps.shift_rings);
	m->fd[SHIFT_MAP_FLOWS4] = bpf_map__fd(skel->maps.shift_flows4);
	m->fd[SHIFT_MAP_FLOWS6] = bpf_map__fd(skel->maps.shift_flows6);
	m->fd[SHIFT_MAP_OVR4] = bpf_map__fd(skel->maps.shift_ovr4);
	m->fd[SHIFT_MAP_OVR6] = bpf_map__fd(skel->maps.shift_ovr6);
	m->fd[SHIFT_MAP_BE_STATS] = bpf_map__fd(skel->maps.shift_be_stats);
	m->fd[SHIFT_MAP_STATS] = bpf_map__fd(skel->maps.shift_stats);
	m->fd[SHIFT_MAP_LAT_HIST] = bpf_map__fd(skel->maps.shift_lat_hist);
	m->fd[SHIFT_MAP_SAMPLES] = bpf_map__fd(skel->maps.shift_samples);
	m->fd[SHIFT_MAP_CONFIG] = bpf_map__fd(skel->maps.shift_config);
	m->fd[SHIFT_MAP_ERRORS] = bpf_map__fd(skel->maps.shift_errors);
	m->fd[SHIFT_MAP_VIPSET] = bpf_map__fd(skel->maps.shift_vipset);
	m->fd[SHIFT_MAP_SHADOW] = bpf_map__fd(skel->maps.shift_shadow);
	m->fd[SHIFT_MAP_SHADOW_CFG] = bpf_map__fd(skel->maps.shift_shadowcfg);
	m->fd[SHIFT_MAP_SHADOW_STATS] = bpf_map__fd(skel->maps.shift_shadowst);
	m->fd[SHIFT_MAP_SNAT_CFG] = bpf_map__fd(skel->maps.shift_snat_cfg);
	m->fd[SHIFT_MAP_SNAT] = bpf_map__fd(skel->maps.shift_snat);
	m->fd[SHIFT_MAP_SNAT_HALF] = bpf_map__fd(skel->maps.shift_snat_half);
	m->fd[SHIFT_MAP_LOST] = bpf_map__fd(skel->maps.shift_lost);
	m->weight_cas_fd = -1;
}

int dp_maps_open_pinned(struct shift_maps *m, const char *dir)
{
	char path[4096];
	int i, err;

	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		m->fd[i] = -1;
	m->weight_cas_fd = -1;
	for (i = 0; i < SHIFT_MAP__COUNT; i++) {
		if (snprintf(path, sizeof(path), "%s/maps/%s", dir, shift_map_names[i]) >=
		    (int)sizeof(path)) {
			err = -ENAMETOOLONG;
			goto fail;
		}
		m->fd[i] = bpf_obj_get(path);
		if (m->fd[i] < 0) {
			err = -errno;
			/*
			 * Only the weights and the service names are needed for the
			 * emergency path (rollback, set-weight): a map that an older
			 * shiftd did not pin must not block it. Users of a missing
			 * map get EBADF from its fd of -1.
			 */
			if (err == -ENOENT && i != SHIFT_MAP_WEIGHTS && i != SHIFT_MAP_SVC_INFO) {
				m->fd[i] = -1;
				continue;
			}
			goto fail;
		}
	}
	return 0;
fail:
	dp_maps_close(m);
	return err;
}

void dp_maps_close(struct shift_maps *m)
{
	int i;

	for (i = 0; i < SHIFT_MAP__COUNT; i++) {
		if (m->fd[i] >= 0)
			close(m->fd[i]);
		m->fd[i] = -1;
	}
	dp_weight_cas_close(m);
}

/*
 * Rebuild the VIP filter from the vips map. Bits of VIPs that stay are set in
 * both the old and the new value, so a reader racing the copy never misses
 * a live VIP.
 */
int dp_vip_filter_rebuild(const struct shift_maps *m)
{
	struct shift_vip_filter *vf;
	struct shift_vip_addr k, next;
	void *prev = NULL;
	__u32 zero = 0;
	int err, guard = 0;

	if (m->fd[SHIFT_MAP_VIPSET] < 0)
		return 0;
	vf = calloc(1, sizeof(*vf));
	if (!vf)
		return -ENOMEM;
	while (bpf_map_get_next_key(m->fd[SHIFT_MAP_VIPS], prev, &next) == 0 &&
	       guard++ < 2 * SHIFT_MAX_SERVICES) {
		__u32 bit = shift_vip_filter_bit(next.addr);

		vf->w[bit >> 6] |= 1ull << (bit & 63);
		k = next;
		prev = &k;
	}
	err = neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_VIPSET], &zero, vf, BPF_ANY));
	free(vf);
	return err;
}

static void vip_addr_of(const struct shift_addr_key *k, struct shift_vip_addr *v)
{
	memset(v, 0, sizeof(*v));
	memcpy(v->addr, k->addr, sizeof(v->addr));
	v->family = k->family;
}

int dp_service_put(const struct shift_maps *m, __u32 id, const struct shift_addr_key *vip,
		   __u32 flags)
{
	struct shift_service svc = { .id = id, .flags = flags };
	struct shift_svc_info info;
	struct shift_vip_addr va;
	__u32 refs = 0;
	int err;

	if (id >= SHIFT_MAX_SERVICES)
		return -ERANGE;
	memset(&info, 0, sizeof(info));
	err = neg_errno(bpf_map_lookup_elem(m->fd[SHIFT_MAP_SVC_INFO], &id, &info));
	if (err)
		return err;
	memcpy(info.vip, vip->addr, sizeof(info.vip));
	info.vport = vip->port;
	info.proto = vip->proto;
	info.family = vip->family;
	info.flags = flags | SHIFT_SVC_F_IN_USE;
	/* Info first: the return path must know the VIP before any flow reaches a backend. */
	err = neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_SVC_INFO], &id, &info, BPF_ANY));
	if (err)
		return err;
	vip_addr_of(vip, &va);
	/* The vips map counts services per address; a re-put of the same service adds nothing. */
	if (bpf_map_lookup_elem(m->fd[SHIFT_MAP_SERVICES], vip, &svc) == 0) {
		svc.id = id;
		svc.flags = flags;
		return neg_errno(
			bpf_map_update_elem(m->fd[SHIFT_MAP_SERVICES], vip, &svc, BPF_ANY));
	}
	bpf_map_lookup_elem(m->fd[SHIFT_MAP_VIPS], &va, &refs);
	refs++;
	err = neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_VIPS], &va, &refs, BPF_ANY));
	if (!err)
		err = dp_vip_filter_rebuild(m);
	if (err)
		return err;
	return neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_SERVICES], vip, &svc, BPF_ANY));
}

int dp_service_del(const struct shift_maps *m, __u32 id, const struct shift_addr_key *vip)
{
	struct shift_service svc;
	struct shift_vip_addr va;
	__u32 refs = 0;
	int err, rc;

	if (bpf_map_lookup_elem(m->fd[SHIFT_MAP_SERVICES], vip, &svc))
		return -errno;
	if (svc.id != id)
		return -ESRCH;
	err = neg_errno(bpf_map_delete_elem(m->fd[SHIFT_MAP_SERVICES], vip));
	if (err)
		return err;
	/* The service is gone from here on; what follows tidies up, and its first
	 * failure is the answer (a VIP left in the filter passes its packets on). */
	vip_addr_of(vip, &va);
	if (bpf_map_lookup_elem(m->fd[SHIFT_MAP_VIPS], &va, &refs) == 0) {
		if (refs <= 1) {
			err = neg_errno(bpf_map_delete_elem(m->fd[SHIFT_MAP_VIPS], &va));
		} else {
			refs--;
			err = neg_errno(
				bpf_map_update_elem(m->fd[SHIFT_MAP_VIPS], &va, &refs, BPF_ANY));
		}
		rc = dp_vip_filter_rebuild(m);
		err = err ? err : rc;
	}
	{
		struct shift_svc_info info;

		memset(&info, 0, sizeof(info));
		rc = neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_SVC_INFO], &id, &info, BPF_ANY));
		err = err ? err : rc;
	}
	return err;
}

int dp_svc_info_get(const struct shift_maps *m, __u32 id, struct shift_svc_info *info)
{
	return neg_errno(bpf_map_lookup_elem(m->fd[SHIFT_MAP_SVC_INFO], &id, info));
}

int dp_service_set_name(const struct shift_maps *m, __u32 id, const char *name)
{
	struct shift_svc_info info;
	int err;

	err = dp_svc_info_get(m, id, &info);
	if (err)
		return err;
	if (strlen(name) >= sizeof(info.name))
		return -ENAMETOOLONG;
	memset(info.name, 0, sizeof(info.name));
	strcpy(info.name, name);
	return neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_SVC_INFO], &id, &info, BPF_ANY));
}

int dp_service_find(const struct shift_maps *m, const char *name, __u32 *id,
		    struct shift_svc_info *info)
{
	struct shift_svc_info tmp;
	__u32 i;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		if (dp_svc_info_get(m, i, &tmp))
			continue;
		if (!(tmp.flags & SHIFT_SVC_F_IN_USE) ||
		    strncmp(tmp.name, name, sizeof(tmp.name)) != 0)
			continue;
		*id = i;
		if (info)
			*info = tmp;
		return 0;
	}
	return -ENOENT;
}

int dp_weight_set(const struct shift_maps *m, __u32 service_id, __u32 word)
{
	if (service_id >= SHIFT_MAX_SERVICES)
		return -ERANGE;
	if ((word & SHIFT_WEIGHT_MASK) > SHIFT_WEIGHT_MAX)
		return -EINVAL;
	return neg_errno(
		bpf_map_update_elem(m->fd[SHIFT_MAP_WEIGHTS], &service_id, &word, BPF_ANY));
}

int dp_weight_get(const struct shift_maps *m, __u32 service_id, __u32 *word)
{
	return neg_errno(bpf_map_lookup_elem(m->fd[SHIFT_MAP_WEIGHTS], &service_id, word));
}

static void backend_key(const struct shift_backend *be, __u8 proto, struct shift_addr_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, be->addr, sizeof(k->addr));
	k->port = be->port;
	k->proto = proto;
	k->family = be->family;
}

int dp_backend_put(const struct shift_maps *m, __u32 id, const struct shift_backend *be, __u8 proto)
{
	struct shift_addr_key k;
	int err;

	if (id >= SHIFT_MAX_BACKENDS)
		return -ERANGE;
	err = neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_BACKENDS], &id, be, BPF_ANY));
	if (err)
		return err;
	backend_key(be, proto, &k);
	return neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_BACKEND_IDX], &k, &id, BPF_ANY));
}

int dp_backend_find(const struct shift_maps *m, const struct shift_addr_key *k, __u32 *id)
{
	return neg_errno(bpf_map_lookup_elem(m->fd[SHIFT_MAP_BACKEND_IDX], k, id));
}

int dp_backend_get(const struct shift_maps *m, __u32 id, struct shift_backend *be)
{
	return neg_errno(bpf_map_lookup_elem(m->fd[SHIFT_MAP_BACKENDS], &id, be));
}

int dp_backend_del(const struct shift_maps *m, __u32 id, __u8 proto)
{
	struct shift_backend be, empty;
	struct shift_addr_key k;
	__u32 cur;
	int err;

	err = dp_backend_get(m, id, &be);
	if (err)
		return err;
	backend_key(&be, proto, &k);
	/* Only drop the index entry if it still points at this slot. */
	if (bpf_map_lookup_elem(m->fd[SHIFT_MAP_BACKEND_IDX], &k, &cur) == 0 && cur == id)
		bpf_map_delete_elem(m->fd[SHIFT_MAP_BACKEND_IDX], &k);
	memset(&empty, 0, sizeof(empty));
	return neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_BACKENDS], &id, &empty, BPF_ANY));
}

int dp_pool_set(const struct shift_maps *m, __u32 service_id, enum shift_color color,
		const __u32 *ids, const struct shift_addr_key *addrs, __u32 n)
{
	const size_t len = SHIFT_RING_CHUNKS * sizeof(struct shift_ring_chunk);
	size_t page, off, skip, map_len;
	struct shift_ring_chunk *chunks;
	__u32 *ring, i;
	void *base;
	int err;

	if (service_id >= SHIFT_MAX_SERVICES || color >= SHIFT_COLORS)
		return -ERANGE;
	if (n > SHIFT_MAX_POOL_BACKENDS)
		return -E2BIG;
	for (i = 0; i < n; i++)
		if (ids[i] >= SHIFT_MAX_BACKENDS)
			return -ERANGE;
	ring = calloc(SHIFT_RING_SIZE, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	err = maglev_build(addrs, n, ring, SHIFT_RING_SIZE);
	if (err)
		goto out;
	/* Map the pages that hold this ring (32 KiB: 8 pages of 4 KiB, half of
	 * one of 64 KiB). */
	page = (size_t)sysconf(_SC_PAGESIZE);
	off = (size_t)SHIFT_RING_CHUNK_OF(service_id, color, 0) * sizeof(struct shift_ring_chunk);
	skip = off % page;
	map_len = (skip + len + page - 1) / page * page;
	base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd[SHIFT_MAP_RINGS],
		    (off_t)(off - skip));
	if (base == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	chunks = (struct shift_ring_chunk *)((char *)base + skip);
	/*
	 * One 2-byte store per slot, in place. Readers may briefly see a mix of
	 * the old and new ring, never a torn id; either way a slot names a live
	 * backend of this pool, which only affects flows created meanwhile.
	 */
	for (i = 0; i < SHIFT_RING_CHUNKS * SHIFT_RING_CHUNK_SLOTS; i++) {
		__u16 v = SHIFT_RING_NONE;

		if (i < SHIFT_RING_SIZE && ring[i] != SHIFT_NO_BACKEND)
			v = (__u16)ids[ring[i]];
		__atomic_store_n(&chunks[i / SHIFT_RING_CHUNK_SLOTS].be[i % SHIFT_RING_CHUNK_SLOTS],
				 v, __ATOMIC_RELAXED);
	}
	if (munmap(base, map_len))
		err = -errno;
out:
	free(ring);
	return err;
}

int dp_ring_get(const struct shift_maps *m, __u32 service_id, enum shift_color color, __u32 slot,
		__u32 *backend_id)
{
	struct shift_ring_chunk c;
	__u32 k;
	int err;

	if (service_id >= SHIFT_MAX_SERVICES || color >= SHIFT_COLORS || slot >= SHIFT_RING_SIZE)
		return -ERANGE;
	k = SHIFT_RING_CHUNK_OF(service_id, color, slot);
	err = neg_errno(bpf_map_lookup_elem(m->fd[SHIFT_MAP_RINGS], &k, &c));
	if (!err)
		*backend_id = SHIFT_RING_BACKEND(c.be[slot % SHIFT_RING_CHUNK_SLOTS]);
	return err;
}

union lpm_key {
	struct shift_lpm_key4 v4;
	struct shift_lpm_key6 v6;
};

/* The trie key puts the service id in front of the address, so one trie serves
 * every service and the prefix length counts the id's 32 bits too. */
static int override_key(const struct shift_maps *m, __u32 service_id, __u8 family,
			const __u32 *addr, __u8 prefixlen, union lpm_key *k, int *fd)
{
	memset(k, 0, sizeof(*k));
	if (family == SHIFT_AF_INET) {
		if (prefixlen > 32)
			return -EINVAL;
		k->v4.prefixlen = 32 + prefixlen;
		k->v4.service_id = htonl(service_id);
		k->v4.addr = addr[0];
		*fd = m->fd[SHIFT_MAP_OVR4];
	} else if (family == SHIFT_AF_INET6) {
		if (prefixlen > 128)
			return -EINVAL;
		k->v6.prefixlen = 32 + prefixlen;
		k->v6.service_id = htonl(service_id);
		memcpy(k->v6.addr, addr, 16);
		*fd = m->fd[SHIFT_MAP_OVR6];
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

int dp_override_put(const struct shift_maps *m, __u32 service_id, __u8 family, const __u32 *addr,
		    __u8 prefixlen, enum shift_color color)
{
	union lpm_key k;
	__u32 v = color;
	int fd, err;

	err = override_key(m, service_id, family, addr, prefixlen, &k, &fd);
	if (err)
		return err;
	return neg_errno(bpf_map_update_elem(fd, &k, &v, BPF_ANY));
}

int dp_override_del(const struct shift_maps *m, __u32 service_id, __u8 family, const __u32 *addr,
		    __u8 prefixlen)
{
	union lpm_key k;
	int fd, err;

	err = override_key(m, service_id, family, addr, prefixlen, &k, &fd);
	if (err)
		return err;
	return neg_errno(bpf_map_delete_elem(fd, &k));
}

/* One trie's keys that keep() refuses, collected first: an LPM trie's walk
 * from a deleted key starts over from its first key. */
static int prune_trie(int fd, __u8 family, dp_override_keep_fn keep, void *ctx, __u32 *removed)
{
	size_t ksz = family == SHIFT_AF_INET ? sizeof(struct shift_lpm_key4) :
					       sizeof(struct shift_lpm_key6);
	union lpm_key key, next, *drop = NULL;
	size_t n = 0, cap = 0, i;
	__u32 addr[4];
	int more, err = 0;

	more = bpf_map_get_next_key(fd, NULL, &key) == 0;
	while (more) {
		__u32 plen = family == SHIFT_AF_INET ? key.v4.prefixlen : key.v6.prefixlen;
		__u32 sid = ntohl(family == SHIFT_AF_INET ? key.v4.service_id : key.v6.service_id);

		memset(addr, 0, sizeof(addr));
		if (family == SHIFT_AF_INET)
			addr[0] = key.v4.addr;
		else
			memcpy(addr, key.v6.addr, sizeof(addr));
		if (plen < 32 || !keep(ctx, sid, family, addr, (__u8)(plen - 32))) {
			if (n == cap) {
				union lpm_key *nd =
					realloc(drop, (cap ? cap * 2 : 64) * sizeof(*nd));

				if (!nd) {
					err = -ENOMEM;
					break;
				}
				drop = nd;
				cap = cap ? cap * 2 : 64;
			}
			drop[n++] = key;
		}
		more = bpf_map_get_next_key(fd, &key, &next) == 0;
		memcpy(&key, &next, ksz);
	}
	for (i = 0; i < n; i++) {
		if (bpf_map_delete_elem(fd, &drop[i]) == 0)
			(*removed)++;
		else if (errno != ENOENT && !err)
			err = -errno;
	}
	free(drop);
	return err;
}

int dp_overrides_prune(const struct shift_maps *m, dp_override_keep_fn keep, void *ctx,
		       __u32 *removed)
{
	int e4, e6;

	*removed = 0;
	e4 = prune_trie(m->fd[SHIFT_MAP_OVR4], SHIFT_AF_INET, keep, ctx, removed);
	e6 = prune_trie(m->fd[SHIFT_MAP_OVR6], SHIFT_AF_INET6, keep, ctx, removed);
	return e4 ? e4 : e6;
}

/* Entries read per BPF_MAP_LOOKUP_BATCH at most: ~70 KiB of keys and values. */
#define EVICT_BATCH 1024
/* And at least: a bucket holds more only in a table far past its size. */
#define EVICT_BATCH_MIN 64
/* The kernel's own (include/linux/errno.h): a map type without batch operations. */
#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

static bool evict_match(const struct dp_evict *e, const struct shift_flow *f)
{
	return f->service_id == e->service_id && (e->color < 0 || f->color == e->color);
}

/*
 * Delete n keys in as few calls as the kernel allows. The delete batch stops
 * at the first key it cannot delete and says how many went before it: an
 * entry that closed or aged out since the lookup (-ENOENT) is skipped.
 */
static int delete_keys(int fd, unsigned char *keys, size_t ksz, __u32 n, __u64 *evicted)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 done = 0, count;
	int err;

	while (done < n) {
		count = n - done;
		err = bpf_map_delete_batch(fd, keys + (size_t)done * ksz, &count, &opts);
		*evicted += count;
		if (!err)
			return 0;
		if (errno != ENOENT)
			return -errno;
		done += count + 1;
	}
	return 0;
}

/* One batch of about want entries of table fd: 1 at its end, 0 if more,
 * -errno (-EOPNOTSUPP: no batches). */
static int evict_batch(int fd, size_t ksz, struct dp_evict *e, __u32 want, unsigned char *keys,
		       struct shift_flow *vals)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n = want > EVICT_BATCH ? EVICT_BATCH : want;
	__u32 i, del = 0;
	bool end = false;
	int err;

	if (n < EVICT_BATCH_MIN)
		n = EVICT_BATCH_MIN;
	err = bpf_map_lookup_batch(fd, e->started ? &e->cursor : NULL, &e->cursor, keys, vals, &n,
				   &opts);
	if (err) {
		err = -errno;
		if (err == -ENOENT) {
			end = true; /* the last buckets: n entries came with it */
		} else if (err == -ENOSPC || (!e->started && (err == -EINVAL || err == -ENOTSUPP ||
							      err == -EOPNOTSUPP))) {
			/* Before 5.6, a map type without them, or a bucket of more
			 * than EVICT_BATCH entries: key by key, this table afresh. */
			return -EOPNOTSUPP;
		} else {
			return err;
		}
	}
	e->started = true;
	e->visited += n;
	for (i = 0; i < n; i++) {
		if (!evict_match(e, &vals[i]))
			continue;
		if (del != i)
			memcpy(keys + (size_t)del * ksz, keys + (size_t)i * ksz, ksz);
		del++;
	}
	err = delete_keys(fd, keys, ksz, del, &e->evicted);
	if (err)
		return err;
	return end ? 1 : 0;
}

/*
 * Up to max entries of table fd key by key: the successor is fetched before
 * the current key is deleted (get_next_key on a deleted key restarts from
 * the first bucket, which made the walk quadratic); the key kept between
 * steps is one not deleted, unless the datapath deleted it meanwhile, and
 * then the walk starts over, which still visits every entry.
 */
static int evict_keys(int fd, size_t ksz, struct dp_evict *e, __u32 max)
{
	unsigned char next[sizeof(e->key)];
	struct shift_flow f;
	bool last;
	__u32 n;
	int err;

	if (!e->started) {
		if (bpf_map_get_next_key(fd, NULL, e->key))
			return errno == ENOENT ? 1 : -errno;
		e->started = true;
	}
	for (n = 0; n < max; n++) {
		if (e->visited > (1ull << 28))
			return -ELOOP;
		last = bpf_map_get_next_key(fd, e->key, next) != 0;
		err = last && errno != ENOENT ? -errno : 0;
		if (bpf_map_lookup_elem(fd, e->key, &f) == 0 && evict_match(e, &f) &&
		    bpf_map_delete_elem(fd, e->key) == 0)
			e->evicted++;
		e->visited++;
		if (last)
			return err ? err : 1;
		memcpy(e->key, next, ksz);
	}
	return 0;
}

void dp_evict_init(struct dp_evict *e, __u32 service_id, int color)
{
	memset(e, 0, sizeof(*e));
	e->service_id = service_id;
	e->color = color;
}

int dp_evict_step(const struct shift_maps *m, struct dp_evict *e, __u32 max)
{
	static const size_t ksz[2] = { sizeof(struct shift_flow_key4),
				       sizeof(struct shift_flow_key6) };
	unsigned char *keys = NULL;
	struct shift_flow *vals = NULL;
	__u32 seen = 0;
	__u64 v0;
	int rc = 0;

	while (e->table < 2 && seen < max) {
		int fd = m->fd[e->table ? SHIFT_MAP_FLOWS6 : SHIFT_MAP_FLOWS4];

		v0 = e->visited;
		if (e->key_walk) {
			rc = evict_keys(fd, ksz[e->table], e, max - seen);
		} else {
			if (!keys) {
				keys = malloc(EVICT_BATCH * sizeof(struct shift_flow_key6));
				vals = malloc(EVICT_BATCH * sizeof(*vals));
				if (!keys || !vals) {
					rc = -ENOMEM;
					break;
				}
			}
			rc = evict_batch(fd, ksz[e->table], e, max - seen, keys, vals);
			if (rc == -EOPNOTSUPP) {
				e->key_walk = true;
				e->started = false;
				continue;
			}
		}
		/* An empty batch still went over buckets: count it as one entry. */
		seen += e->visited - v0 ? (__u32)(e->visited - v0) : 1;
		if (rc < 0)
			break;
		if (rc == 1) {
			e->table++;
			e->started = false;
			e->cursor = 0;
		}
	}
	free(keys);
	free(vals);
	if (rc < 0)
		return rc;
	return e->table >= 2 ? 1 : 0;
}

int dp_flows_evict(const struct shift_maps *m, __u32 service_id, int color, __u64 *evicted)
{
	struct dp_evict e;
	int rc;

	dp_evict_init(&e, service_id, color);
	do
		rc = dp_evict_step(m, &e, 1u << 20);
	while (rc == 0);
	*evicted = e.evicted;
	return rc < 0 ? rc : 0;
}

static int percpu_sum(int fd, __u32 key, size_t words, __u64 *out)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;
	size_t i;
	int c, err;

	if (ncpu < 0)
		return ncpu;
	vals = calloc((size_t)ncpu * words, sizeof(__u64));
	if (!vals)
		return -ENOMEM;
	err = neg_errno(bpf_map_lookup_elem(fd, &key, vals));
	if (!err) {
		memset(out, 0, words * sizeof(__u64));
		for (c = 0; c < ncpu; c++)
			for (i = 0; i < words; i++)
				out[i] += vals[(size_t)c * words + i];
	}
	free(vals);
	return err;
}

int dp_backend_stats(const struct shift_maps *m, __u32 backend_id, struct shift_backend_stats *out)
{
	return percpu_sum(m->fd[SHIFT_MAP_BE_STATS], backend_id, sizeof(*out) / sizeof(__u64),
			  (__u64 *)out);
}

int dp_lat_hist(const struct shift_maps *m, __u32 backend_id, enum shift_lat_kind kind,
		struct shift_lat_hist *out)
{
	return percpu_sum(m->fd[SHIFT_MAP_LAT_HIST], backend_id * SHIFT_LAT_KINDS + kind,
			  sizeof(*out) / sizeof(__u64), (__u64 *)out);
}

int dp_stat(const struct shift_maps *m, enum shift_stat s, __u64 *out)
{
	return percpu_sum(m->fd[SHIFT_MAP_STATS], s, 1, out);
}

int dp_lost(const struct shift_maps *m, struct shift_lost *out)
{
	__u32 zero = 0;

	return neg_errno(bpf_map_lookup_elem(m->fd[SHIFT_MAP_LOST], &zero, out));
}

int dp_stats(const struct shift_maps *m, __u64 out[SHIFT_STAT_MAX])
{
	__u32 i;
	int err;

	for (i = 0; i < SHIFT_STAT_MAX; i++) {
		err = percpu_sum(m->fd[SHIFT_MAP_STATS], i, 1, &out[i]);
		if (err)
			return err;
	}
	return 0;
}

static int percpu_zero(int fd, __u32 key, size_t size)
{
	int ncpu = libbpf_num_possible_cpus();
	void *zero;
	int err;

	if (ncpu < 0)
		return ncpu;
	zero = calloc((size_t)ncpu, size);
	if (!zero)
		return -ENOMEM;
	err = neg_errno(bpf_map_update_elem(fd, &key, zero, BPF_ANY));
	free(zero);
	return err;
}

int dp_backend_stats_reset(const struct shift_maps *m, __u32 backend_id)
{
	int err, k;

	err = percpu_zero(m->fd[SHIFT_MAP_BE_STATS], backend_id,
			  sizeof(struct shift_backend_stats));
	for (k = 0; !err && k < SHIFT_LAT_KINDS; k++)
		err = percpu_zero(m->fd[SHIFT_MAP_LAT_HIST], backend_id * SHIFT_LAT_KINDS + k,
				  sizeof(struct shift_lat_hist));
	return err;
}

int dp_config_set(const struct shift_maps *m, const struct shift_config *cfg)
{
	__u32 zero = 0;

	return neg_errno(bpf_map_update_elem(m->fd[SHIFT_MAP_CONFIG], &zero, cfg, BPF_ANY));
}

int dp_config_get(const struct shift_maps *m, struct shift_config *cfg)
{
	__u32 zero = 0;

	return neg_errno(bpf_map_lookup_elem(m->fd[SHIFT_MAP_CONFIG], &zero, cfg));
}

static const char *const stat_names[SHIFT_STAT_MAX] = {
	[SHIFT_STAT_DROP_TRUNCATED] = "truncated",
	[SHIFT_STAT_DROP_BAD_IHL] = "bad_ihl",
	[SHIFT_STAT_DROP_BAD_LENGTH] = "bad_length",
	[SHIFT_STAT_DROP_FRAGMENT] = "fragment",
	[SHIFT_STAT_DROP_IPV6_EXT] = "ipv6_ext_chain",
	[SHIFT_STAT_DROP_NO_BACKEND] = "no_backend",
	[SHIFT_STAT_DROP_BAD_BACKEND] = "bad_backend",
	[SHIFT_STAT_PASS_NO_NEIGH] = "pass_no_neigh",
	[SHIFT_STAT_PASS_TTL] = "pass_ttl",
	[SHIFT_STAT_PASS_VIP_OTHER] = "pass_vip_other",
	[SHIFT_STAT_FLOW_NEW] = "flow_new",
	[SHIFT_STAT_FLOW_INSERT_FAIL] = "flow_insert_fail",
	[SHIFT_STAT_RINGBUF_DROPPED] = "ringbuf_dropped",
	[SHIFT_STAT_OVERRIDE_HIT] = "override_hit",
	[SHIFT_STAT_ERRBUF_DROPPED] = "errbuf_dropped",
	[SHIFT_STAT_DROP_SNAT_EXHAUSTED] = "snat_exhausted",
	[SHIFT_STAT_FLOW_INSERT] = "flow_insert",
	[SHIFT_STAT_SYN_SLOT_MISS] = "syn_slot_miss",
	[SHIFT_STAT_REPLY_FIB] = "reply_fib",
	[SHIFT_STAT_FALLBACK] = "connect_fallback",
	[SHIFT_STAT_DROP_SYNACK_MOVED] = "synack_moved",
	[SHIFT_STAT_ACK_UNMATCHED] = "ack_unmatched",
	[SHIFT_STAT_ICMP_TOO_BIG] = "icmp_too_big_forwarded",
	[SHIFT_STAT_PASS_ICMP_NO_FLOW] = "pass_icmp_no_flow",
};

const char *dp_stat_name(enum shift_stat s)
{
	return s < SHIFT_STAT_MAX && stat_names[s] ? stat_names[s] : "unknown";
}

bool dp_stat_is_drop(enum shift_stat s)
{
	return s < SHIFT_STAT_DROP_MAX_ || s == SHIFT_STAT_DROP_SNAT_EXHAUSTED ||
	       s == SHIFT_STAT_DROP_SYNACK_MOVED;
}

static const char *const err_names[SHIFT_ERR_MAX] = {
	[SHIFT_ERR_NONE] = "none",
	[SHIFT_ERR_RST] = "rst",
	[SHIFT_ERR_HTTP5XX] = "http_5xx",
	[SHIFT_ERR_SYN_RETRANS] = "syn_retransmit",
	[SHIFT_ERR_ICMP_UNREACH] = "icmp_unreachable",
	[SHIFT_ERR_TLS_ALERT] = "tls_alert",
	[SHIFT_ERR_TLS_HANDSHAKE] = "tls_handshake",
	[SHIFT_ERR_EARLY_CLOSE] = "early_close",
};

const char *dp_err_name(enum shift_err e)
{
	return e < SHIFT_ERR_MAX ? err_names[e] : "unknown";
}
