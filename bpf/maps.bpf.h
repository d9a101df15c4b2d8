/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map of the datapath. Names are the pin file names (agent/datapath/dataplane.c). */
#ifndef SHIFT_MAPS_BPF_H
#define SHIFT_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <shift/maps.h>
#include <shift/sample.h>
#include <shift/shadow.h>

/* VIP + port + proto -> service. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHIFT_MAX_SERVICES);
	__type(key, struct shift_addr_key);
	__type(value, struct shift_service);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} shift_services SEC(".maps");

/* Bare VIP addresses: decides drop (malformed, to us) vs pass (malformed, not ours). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHIFT_MAX_SERVICES);
	__type(key, struct shift_vip_addr);
	__type(value, __u32);
} shift_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shift_vip_filter);
} shift_vipset SEC(".maps");

#include "weights_map.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIFT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct shift_svc_info);
} shift_svc_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIFT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct shift_backend);
} shift_backends SEC(".maps");

/* Backend addr + port + proto -> backend id, for the return path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHIFT_MAX_BACKENDS);
	__type(key, struct shift_addr_key);
	__type(value, __u32);
} shift_be_idx SEC(".maps");

/*
 * The reply path's first question, which backend sent this, asked of every
 * backend packet. shift_be_idx answers it with a jhash and a bucket walk;
 * this direct-mapped array (by a hash of source address, port and protocol)
 * answers it with one inlined load. The datapath fills it from shift_be_idx
 * and trusts a slot only when the backend it names is active and has the
 * packet's address and port and its service the packet's protocol, so a
 * stale or colliding slot costs the hash lookup it would have saved and
 * nothing else. The agent never writes it. Value: a backend id.
 */
#define SHIFT_BE_CACHE_BITS 12
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1u << SHIFT_BE_CACHE_BITS);
	__type(key, __u32);
	__type(value, __u32);
} shift_be_cache SEC(".maps");

/*
 * A new flow's first question, which service is VIP:port/proto, asked of
 * every SYN. shift_services answers it with a jhash and a bucket walk; this
 * direct-mapped array (by a hash of destination address, port and protocol)
 * answers it with two inlined loads. The datapath fills it from
 * shift_services and trusts a slot only when the shift_svc_info entry it
 * names is live and has the packet's VIP, port, protocol and family; so a
 * stale or colliding slot costs the hash lookup it would have saved and
 * nothing else. The agent never writes it. Value: a service id.
 */
#define SHIFT_SVC_CACHE_BITS 10
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1u << SHIFT_SVC_CACHE_BITS);
	__type(key, __u32);
	__type(value, __u32);
} shift_svc_cache SEC(".maps");

/* Consistent-hash rings, 32 slots to a value (include/shift/maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIFT_RING_ENTRIES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct shift_ring_chunk);
} shift_rings SEC(".maps");

/*
 * Connection tables; sized by the agent at load time. One LRU list for all
 * CPUs (no BPF_F_NO_COMMON_LRU): a per-CPU list would give each CPU only
 * max_entries / CPUs, and an edge whose handshakes all land on one CPU would
 * hold half (on 2 CPUs) of what it was sized for. Only completed handshakes
 * insert, so the common list's lock is not on a SYN flood's path.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHIFT_DEFAULT_FLOWS);
	__type(key, struct shift_flow_key4);
	__type(value, struct shift_flow);
} shift_flows4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHIFT_DEFAULT_FLOWS6);
	__type(key, struct shift_flow_key6);
	__type(value, struct shift_flow);
} shift_flows6 SEC(".maps");

/* A new flow's entry while it is built: off the stack, which source NAT's
 * claim loop (a subprogram) shares with the one-armed program. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shift_flow);
} shift_nf_tmp SEC(".maps");

/* Recent SYNs by flow hash (include/shift/maps.h, struct shift_syn_slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIFT_SYN_SLOTS);
	__type(key, __u32);
	__type(value, struct shift_syn_slot);
} shift_syns SEC(".maps");

/* Client-side next hops for SYN-ACKs, named by SYN slots (include/shift/maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIFT_CLIENT_NHS);
	__type(key, __u32);
	__type(value, struct shift_client_nh);
} shift_client_nhs SEC(".maps");

/* Source-prefix overrides: value is the forced enum shift_color. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SHIFT_MAX_OVERRIDES);
	__type(key, struct shift_lpm_key4);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} shift_ovr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SHIFT_MAX_OVERRIDES);
	__type(key, struct shift_lpm_key6);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} shift_ovr6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHIFT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct shift_backend_stats);
} shift_be_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHIFT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} shift_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct shift_lost);
} shift_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHIFT_MAX_BACKENDS *SHIFT_LAT_KINDS);
	__type(key, __u32);
	__type(value, struct shift_lat_hist);
} shift_lat_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SHIFT_RINGBUF_BYTES);
} shift_samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SHIFT_ERRBUF_BYTES);
} shift_errors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shift_config);
} shift_config SEC(".maps");

/* Shadow mode (bpf/shadow.h): copied requests, per-service settings, skip counters. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SHIFT_SHADOW_RING_BYTES);
} shift_shadow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIFT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct shift_shadow_cfg);
} shift_shadowcfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHIFT_MAX_SERVICES *SHIFT_SHADOW_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} shift_shadowst SEC(".maps");

/* Source NAT: per-service addresses and ports, and the reverse mappings. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIFT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct shift_snat_cfg);
} shift_snat_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHIFT_DEFAULT_SNAT);
	__type(key, struct shift_snat_key);
	__type(value, struct shift_snat_val);
} shift_snat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHIFT_SNAT_HALF_ENTRIES);
	__type(key, struct shift_snat_key);
	__type(value, struct shift_snat_val);
} shift_snat_half SEC(".maps");

static __always_inline void stat_inc(enum shift_stat s)
{
	__u32 key = s;
	__u64 *v = bpf_map_lookup_elem(&shift_stats, &key);

	if (v)
		*v += 1;
}

#endif
