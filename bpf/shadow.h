/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shadow mode: copy the first request of a sampled new blue connection to
 * shiftd, which replays it to green (agent/shadow/). Only a request whose
 * headers end within its first packet is copied, and only if its method is
 * listed for the service; everything else is counted by reason. The packet
 * itself is never held, changed or delayed: a full ring costs the copy.
 */
#ifndef SHIFT_SHADOW_BPF_H
#define SHIFT_SHADOW_BPF_H

#include "maps.bpf.h"
#include "parse.h"
#include <shift/shadow.h>

static __always_inline void shadow_stat(__u32 service_id, enum shift_shadow_stat s)
{
	__u32 key = service_id * SHIFT_SHADOW_STAT_MAX + s;
	__u64 *v = bpf_map_lookup_elem(&shift_shadowst, &key);

	if (v)
		*v += 1;
}

/* The request method from the first 8 payload bytes, or -1: not HTTP/1.x. */
static __always_inline int shadow_method(const __u8 *b)
{
	__u32 w;

	__builtin_memcpy(&w, b, 4);
	switch (w) {
	case 0x20544547: /* "GET " */
		return SHIFT_M_GET;
	case 0x44414548: /* "HEAD" */
		return b[4] == ' ' ? SHIFT_M_HEAD : -1;
	case 0x54534f50: /* "POST" */
		return b[4] == ' ' ? SHIFT_M_POST : -1;
	case 0x20545550: /* "PUT " */
		return SHIFT_M_PUT;
	case 0x454c4544: /* "DELE" */
		return b[4] == 'T' && b[5] == 'E' && b[6] == ' ' ? SHIFT_M_DELETE : -1;
	case 0x43544150: /* "PATC" */
		return b[4] == 'H' && b[5] == ' ' ? SHIFT_M_PATCH : -1;
	case 0x4954504f: /* "OPTI" */
		return b[4] == 'O' && b[5] == 'N' && b[6] == 'S' && b[7] == ' ' ? SHIFT_M_OPTIONS :
										  -1;
	}
	return -1;
}

struct shadow_scan {
	const __u8 *data; /* the copy in the ring */
	__u32 len;
	__u32 end; /* offset just past "\r\n\r\n", 0 = not found */
};

/* bpf_loop callback: the verifier checks one iteration, not two thousand. */
static long shadow_scan_one(__u32 i, void *arg)
{
	struct shadow_scan *sc = arg;
	const __u8 *d = sc->data;

	if (i + 4 > sc->len || i > SHIFT_SHADOW_DATA - 4)
		return 1;
	if (d[i] == '\r' && d[i + 1] == '\n' && d[i + 2] == '\r' && d[i + 3] == '\n') {
		sc->end = i + 4;
		return 1;
	}
	return 0;
}

/* What the copy needs of the flow: BPF functions take five arguments at most. */
struct shadow_meta {
	__u32 hash;
	__u32 backend_id;
	__u32 off; /* of the payload, from the frame's start */
	__u32 len; /* payload bytes */
	__u16 service_id;
	__u8 method;
	__u8 pad;
};

/*
 * Out of line: one copy of the ring and scan code per program rather than
 * one per call site, verified once.
 */
/*
 * ctx is a struct xdp_md * (tc == 0) or a struct __sk_buff * (tc == 1). A
 * static function is verified with its caller's arguments, so a constant tc
 * leaves the other program type's helper on a path never walked.
 */
static __noinline int shadow_copy(void *ctx, int tc, const struct shadow_meta *mt)
{
	__u32 service_id = mt->service_id, off = mt->off, len = mt->len;
	long err;
	struct shift_shadow_req *r;
	struct shadow_scan sc;

	if (len > SHIFT_SHADOW_DATA) {
		shadow_stat(service_id, SHIFT_SHADOW_SKIP_TOO_LARGE);
		return 0;
	}
	/*
	 * A discarded record still sits in the ring until the consumer passes it:
	 * discards use the adaptive wakeup (flag 0), never BPF_RB_NO_WAKEUP, or a
	 * consumer that had caught up would never hear of the copies behind it.
	 */
	r = bpf_ringbuf_reserve(&shift_shadow, sizeof(*r), 0);
	if (!r) {
		shadow_stat(service_id, SHIFT_SHADOW_RING_FULL);
		return 0;
	}
	if (len < 8) {
		err = -1;
	} else if (tc) {
		err = bpf_skb_load_bytes(ctx, off, r->data, len);
	} else {
		err = bpf_xdp_load_bytes(ctx, off, r->data, len);
	}
	if (err) {
		bpf_ringbuf_discard(r, 0);
		shadow_stat(service_id, SHIFT_SHADOW_SKIP_NOT_HTTP);
		return 0;
	}
	sc.data = r->data;
	sc.len = len;
	sc.end = 0;
	bpf_loop(SHIFT_SHADOW_DATA, shadow_scan_one, &sc, 0);
	if (!sc.end) {
		bpf_ringbuf_discard(r, 0);
		shadow_stat(service_id, SHIFT_SHADOW_SKIP_SPLIT);
		return 0;
	}
	r->ts_ns = bpf_ktime_get_ns();
	r->flow_hash = mt->hash;
	r->backend_id = mt->backend_id;
	r->service_id = service_id;
	r->len = len;
	r->method = mt->method;
	r->pad[0] = r->pad[1] = r->pad[2] = 0;
	r->reserved = 0;
	bpf_ringbuf_submit(r, 0);
	shadow_stat(service_id, SHIFT_SHADOW_COPIED);
	return 0;
}

/*
 * A client packet of an established flow. Looks at the flow's first payload
 * packet only (one bit test for every other packet); copies it when the
 * flow is blue, in the service's sample, and its request qualifies.
 */
struct shadow_head {
	__u8 b[8]; /* the payload's first bytes, zeros when it is shorter */
};

/*
 * Whether flow f's first payload is copied, and its meta in mt (off and len
 * set by the caller). A global function of the entry and a copy of the
 * bytes it reads: the verifier checks it once (6.1's 1M-instruction budget).
 */
__noinline int shadow_want(struct shift_flow *f, const struct shadow_head *h,
			   struct shadow_meta *mt)
{
	struct shift_shadow_cfg *cfg;
	__u32 sid;
	int m;

	if (!f || !h || !mt || (f->state & SHIFT_FS_SHADOW_DONE))
		return 0;
	f->state |= SHIFT_FS_SHADOW_DONE;
	if (f->color != SHIFT_BLUE)
		return 0;
	sid = f->service_id;
	cfg = bpf_map_lookup_elem(&shift_shadowcfg, &sid);
	if (!cfg || shift_shadow_slot(f->hash) >= cfg->sample_bp)
		return 0;
	m = shadow_method(h->b);
	if (m < 0) {
		shadow_stat(sid, SHIFT_SHADOW_SKIP_NOT_HTTP);
		return 0;
	}
	if (!(cfg->methods & (1u << m))) {
		shadow_stat(sid, SHIFT_SHADOW_SKIP_METHOD);
		return 0;
	}
	mt->hash = f->hash;
	mt->backend_id = f->backend_id;
	mt->service_id = sid;
	mt->method = m;
	mt->pad = 0;
	return 1;
}

static __always_inline void shadow_client(void *ctx, int tc, void *data, const struct pkt *p,
					  struct shift_flow *f, void *data_end)
{
	struct shadow_meta mt;
	__u8 head[8] = {};
	__u8 *pl;

	/* Once per flow: every later packet stops here, before any copy or call. */
	if ((f->state & SHIFT_FS_SHADOW_DONE) || p->proto != IPPROTO_TCP || !p->payload_len)
		return;
	/* The mask restates parse_l4's bound on the TCP header (<= 60 bytes). */
	pl = p->l4 + (p->l4_hlen & 0x3c);
	if ((void *)(pl + 8) <= data_end)
		__builtin_memcpy(head, pl, 8);
	mt.off = (__u32)((void *)pl - data);
	mt.len = p->payload_len;
	if (shadow_want(f, (const struct shadow_head *)head, &mt))
		shadow_copy(ctx, tc, &mt);
}

#endif
