/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shadow mode: the datapath copies the first request of a sample of new blue
 * HTTP/1.x connections to shiftd, which replays it to green and compares the
 * answers. This header is the contract between bpf/shadow.h and agent/shadow/.
 *
 * The copy and blue's answer (an ordinary return-path sample) meet in shiftd
 * by the flow hash, which both carry: shift_sample.flow_hash and
 * shift_shadow_req.flow_hash are the connection-table entry's hash.
 */
#ifndef SHIFT_SHADOW_H
#define SHIFT_SHADOW_H

#include <linux/types.h>
#include <shift/flow_hash.h>

/* One copy is at most one packet's payload; a larger request is skipped. */
#define SHIFT_SHADOW_DATA 2016
/* 128 copies: a burst beyond that is a counted loss, never a delay. */
#define SHIFT_SHADOW_RING_BYTES (1u << 18)

/*
 * shift_flow.state bit: the flow's first payload packet has been looked at.
 * The top bit, so the SHIFT_FS_* bits of maps.h can grow from the bottom.
 */
#define SHIFT_FS_SHADOW_DONE (1u << 7)

/* Methods a service may list (shadow_methods); bit (1 << method). */
enum shift_shadow_method {
	SHIFT_M_GET = 0,
	SHIFT_M_HEAD,
	SHIFT_M_POST,
	SHIFT_M_PUT,
	SHIFT_M_DELETE,
	SHIFT_M_PATCH,
	SHIFT_M_OPTIONS,
	SHIFT_M__COUNT,
};

/* shadow_cfg map value, by service id. sample_bp == 0: shadow off. */
struct shift_shadow_cfg {
	__u32 sample_bp; /* basis points of new blue connections sampled */
	__u32 methods; /* bit per enum shift_shadow_method */
};

/* Per-CPU counters (shadow_stats map, index service_id * SHIFT_SHADOW_STAT_MAX + stat). */
enum shift_shadow_stat {
	SHIFT_SHADOW_COPIED = 0, /* a copy went into the ring */
	SHIFT_SHADOW_SKIP_METHOD, /* method not in shadow_methods */
	SHIFT_SHADOW_SKIP_SPLIT, /* headers do not end in the first packet */
	SHIFT_SHADOW_SKIP_NOT_HTTP, /* first payload is not an HTTP/1.x request */
	SHIFT_SHADOW_SKIP_TOO_LARGE, /* more than SHIFT_SHADOW_DATA bytes */
	SHIFT_SHADOW_RING_FULL, /* the shadow ring had no room: copy lost */
	SHIFT_SHADOW_STAT_MAX,
};

/* A copied request, as it sits in the shadow ring. */
struct shift_shadow_req {
	__u64 ts_ns; /* bpf_ktime_get_ns() at the copy */
	__u32 flow_hash; /* shift_flow.hash: pairs with blue's samples */
	__u32 backend_id; /* blue backend that got the request */
	__u16 service_id;
	__u16 len; /* bytes in data */
	__u8 method; /* enum shift_shadow_method */
	__u8 pad[3];
	__u64 reserved;
	__u8 data[SHIFT_SHADOW_DATA];
};

/*
 * Whether a flow is in the sample: a rehash of the flow hash, so the sample
 * is independent of the color slice (hash % 10000 < weight) and the same on
 * every edge host.
 */
static inline __u32 shift_shadow_slot(__u32 h)
{
	h ^= 0x85ebca6bu;
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	h *= 0x846ca68bu;
	h ^= h >> 16;
	return shift_mod10000(h);
}

#endif /* SHIFT_SHADOW_H */
