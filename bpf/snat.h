/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Source NAT ("full NAT"): a new flow of a service with snat addresses gets
 * one of them and a port, so the backend answers the edge host whatever its
 * routing. No lock anywhere: the port search starts at the flow's hash and
 * probes a bounded number of candidates, each claimed by inserting its
 * reverse mapping with BPF_NOEXIST; whichever CPU inserts first owns it.
 * Nothing claimed after SNAT_PROBES tries is a counted drop (snat_exhausted),
 * never a shared port. The flow's SYN claims; its connection-table entry,
 * which keeps the port, comes with the client's first ACK (new_flow()).
 *
 * A port is claimed in one of two tables: shift_snat_half for a claim no
 * handshake vouches for yet (a SYN's, a spoofed ACK's), shift_snat once the
 * client's first ACK acknowledged the backend's SYN-ACK (or for a flow that
 * has its entry, and for UDP). The first ACK moves its SYN's claim across.
 * A flood of spoofed SYNs then fills the small half-open table, where the
 * LRU evicts the oldest claims: it can neither evict a connection's mapping
 * nor hold every port of a backend. A port is free when neither table holds
 * it; a claimer inserts into its table, then looks at the other one and
 * backs off if a racing CPU claimed the port there (of two racers, at least
 * one sees the other's insert).
 */
#ifndef SHIFT_SNAT_H
#define SHIFT_SNAT_H

#include "maps.bpf.h"
#include "parse.h"

#define SNAT_PROBES 32
/* A mapping idle this long may be taken over by another flow (longer than
 * TIME_WAIT, so the backend has forgotten the old connection). */
#define SNAT_IDLE_NS (120ull * 1000000000ull)
/*
 * A half-open mapping: claimed by a SYN, or by a packet past the SYN that no
 * handshake vouched for (a spoofed ACK, a flow met in mid-stream), and not
 * since confirmed by the client's first ACK acknowledging the backend's
 * SYN-ACK: SHIFT_SNAT_HALF_OPEN in the value's backend_id, in
 * shift_snat_half (shift_snat holds no such claim). Such a mapping writes no
 * connection-table entry and may be taken over once idle for
 * SNAT_HALF_OPEN_NS, so that spoofed SYNs hold a port for seconds, not
 * minutes. Each retransmit of the SYN restarts the clock; Linux's first
 * four come 1, 2, 4 and 8 s apart. A handshake unanswered for longer may
 * lose its port, and its next retransmit claims another.
 */
#define SNAT_HALF_OPEN_NS (10ull * 1000000000ull)

/*
 * The clock of a mapping's idle time (last_ns). Idle limits count seconds,
 * so the tick-old time the kernel keeps does: bpf_ktime_get_coarse_ns()
 * reads it, where bpf_ktime_get_ns() reads the clock source (an ordered
 * TSC read, in a guest pvclock's too): 4 ns against 28 per call on the
 * development guest, and source NAT read the clock on every packet of a
 * flow, both ways. Both are CLOCK_MONOTONIC, the coarse one behind by up to
 * a tick: a mapping stamped from the fine clock (the tests stamp them with
 * CLOCK_MONOTONIC) may look a few milliseconds newer than "now", so ages
 * are compared signed (snat_older()): an unsigned difference would wrap to
 * "idle for ever" and free a live mapping.
 */
static __always_inline __u64 snat_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* Whether a mapping last used at last is idle for more than ns at now. */
static __always_inline int snat_older(__u64 now, __u64 last, __u64 ns)
{
	return (__s64)(now - last) > (__s64)ns;
}

/* An address index the verifier can see is in range: the compiler drops a
 * comparison it can prove redundant (x % n with n <= 8), the verifier cannot
 * prove it. SHIFT_SNAT_MAX_ADDRS is a power of two. */
static __always_inline __u32 snat_idx(__u32 idx)
{
	asm volatile("%[i] &= %[m]" : [i] "+r"(idx) : [m] "i"(SHIFT_SNAT_MAX_ADDRS - 1));
	return idx;
}

static __always_inline struct shift_snat_cfg *snat_cfg(__u32 service_id)
{
	return bpf_map_lookup_elem(&shift_snat_cfg, &service_id);
}

static __always_inline void snat_key_fill(struct shift_snat_key *k, const struct pkt *p,
					  const struct shift_backend *be, const __u32 *saddr,
					  __u16 sport)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->baddr, be->addr, sizeof(k->baddr));
	__builtin_memcpy(k->saddr, saddr, sizeof(k->saddr));
	k->bport = be->port;
	k->sport = sport;
	k->proto = p->proto;
	k->family = p->family;
}

static __always_inline int same_client(const struct shift_snat_val *v, const __u32 *caddr,
				       __u16 cport, __u32 backend_id)
{
	return v->cport == cport && (v->backend_id & ~SHIFT_SNAT_HALF_OPEN) == backend_id &&
	       v->caddr[0] == caddr[0] && v->caddr[1] == caddr[1] && v->caddr[2] == caddr[2] &&
	       v->caddr[3] == caddr[3];
}

/* What a request asks of snat_claim() (struct snat_req's how). */
#define SNAT_REQ_OWN (1u << 0) /* the flow claimed its port already: find that one first */
#define SNAT_REQ_HALF (1u << 1) /* no handshake vouches for the flow: claim half-open */
#define SNAT_REQ_FIND (1u << 2) /* find the flow's own mapping only, claim nothing */

/* What snat_claim() needs, copied out of the packet: it is a function of its own. */
struct snat_req {
	__u32 caddr[4];
	__u32 baddr[4];
	__u32 backend_id;
	__u32 hash;
	__u16 cport;
	__u16 bport;
	__u16 service_id;
	__u8 proto;
	__u8 family;
	__u32 how; /* SNAT_REQ_* */
	__u32 idx; /* out */
	__u32 port; /* out, network order */
};

/* Per-CPU scratch of the claim: the entry points' stacks are nearly full. */
struct snat_scratch {
	struct snat_req r;
	struct shift_snat_key k;
	struct shift_snat_val v;
	struct shift_snat_val reply; /* snat_reply()'s answer */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct snat_scratch);
} shift_snat_tmp SEC(".maps");

/*
 * Candidate i of the request's search, host order, its address's index in
 * *idx; t->k (address, port) is set to it. The search starts at the flow's
 * hash and steps through the port range by 1, 2, 3, ... (triangular
 * numbers), moving to the next address each time around. Steps of one
 * walk runs of taken ports: with half a backend's range held (70,000
 * spoofed SYNs, test_snat), one SYN in 70 met 32 taken ports in a row.
 */
static __always_inline __u16 snat_candidate(struct snat_scratch *t,
					    const struct shift_snat_cfg *cfg, __u32 i, __u32 r0,
					    __u32 total, __u32 n_addrs, __u32 *idx)
{
	__u32 off = i * (i + 1) / 2;
	__u32 slot = (t->r.hash + off) % total;
	__u16 port;

	*idx = snat_idx(((t->r.hash >> 16) + off / total) % n_addrs);
	port = slot < r0 ? cfg->run_lo[0] + slot : cfg->run_lo[1] + (slot - r0);
	__builtin_memcpy(t->k.saddr, cfg->addr[*idx], sizeof(t->k.saddr));
	t->k.sport = bpf_htons(port);
	return port;
}

/*
 * The flow's own mapping v in shift_snat, found: confirmed, since only
 * shift_snat_half holds half-open claims (map ABI 6 adopts no table of a
 * version before it). Its idle clock restarts; 1, as snat_claim() returns
 * for a confirmed mapping.
 */
static __always_inline int snat_own(struct shift_snat_val *v, __u64 now)
{
	v->last_ns = now;
	return 1;
}

/*
 * Confirm the half-open claim at k: v, its confirmed mapping, into shift_snat
 * first, then the claim out of shift_snat_half, so that the port is never in
 * neither (a claimer would take it). 0, or -1 when a racing CPU confirmed
 * another flow at k first.
 */
static __always_inline int snat_move(const struct shift_snat_key *k, const struct shift_snat_val *v)
{
	if (bpf_map_update_elem(&shift_snat, k, v, BPF_NOEXIST))
		return -1;
	bpf_map_delete_elem(&shift_snat_half, k);
	return 0;
}

/*
 * The flow's own half-open claim v (key t->k), found: a request that no
 * handshake vouches for leaves it half-open (0), any other moves it to
 * shift_snat, confirmed (1); -1 when a racing CPU confirmed another flow
 * there first (the port is not the flow's any more).
 */
static __always_inline int snat_own_half(struct snat_scratch *t, struct shift_snat_val *v,
					 __u64 now)
{
	v->last_ns = now;
	if (t->r.how & SNAT_REQ_HALF)
		return 0;
	/* t->v: this flow's mapping, confirmed (the request is not half). */
	return snat_move(&t->k, &t->v) ? -1 : 1;
}

/* What a candidate port is to the request, in one table (snat_probe()). */
#define SNAT_FREE 0 /* no mapping, or an idle one, removed */
#define SNAT_MINE 1 /* the flow's own: *vp */
#define SNAT_TAKEN 2

static __always_inline int snat_probe(void *table, struct snat_scratch *t, __u64 now,
				      struct shift_snat_val **vp)
{
	struct shift_snat_val *old = bpf_map_lookup_elem(table, &t->k);
	__u64 idle;

	*vp = old;
	if (!old)
		return SNAT_FREE;
	if (same_client(old, t->r.caddr, t->r.cport, t->r.backend_id))
		return SNAT_MINE;
	/* Idle for long (half-open: for seconds): free it, then claim it like
	 * any free port (a racing CPU may win it: NOEXIST decides). */
	idle = old->backend_id & SHIFT_SNAT_HALF_OPEN ? SNAT_HALF_OPEN_NS : SNAT_IDLE_NS;
	if (snat_older(now, old->last_ns, idle)) {
		bpf_map_delete_elem(table, &t->k);
		return SNAT_FREE;
	}
	return SNAT_TAKEN;
}

/*
 * Claim the free port t->k in table, with other the other table: 1, or 0
 * when a racing CPU took it (in this table first, or in the other one, seen
 * after the insert: then the insert is taken back).
 */
static __always_inline int snat_take(void *table, void *other, struct snat_scratch *t)
{
	struct shift_snat_val *o;

	if (bpf_map_update_elem(table, &t->k, &t->v, BPF_NOEXIST))
		return 0;
	o = bpf_map_lookup_elem(other, &t->k);
	if (o && !same_client(o, t->r.caddr, t->r.cport, t->r.backend_id)) {
		bpf_map_delete_elem(table, &t->k);
		return 0;
	}
	return 1;
}

/*
 * Claim a source address and port for the flow in this CPU's scratch
 * request: r.idx/r.port and 1 (its own confirmed mapping) or 0 (a port
 * claimed now, or its own half-open one), or -1 (exhausted). A global
 * function: the verifier checks its probing loops once, not once per path
 * of every entry point that reaches it.
 */
__noinline int snat_claim(__u32 unused)
{
	struct shift_snat_cfg *cfg;
	struct shift_snat_val *old;
	struct snat_scratch *t;
	__u32 i, n_addrs, r0, total, idx, sid, zero = 0;
	__u64 now;
	__u16 port;
	int rc = 0, s;

	t = bpf_map_lookup_elem(&shift_snat_tmp, &zero);
	if (!t)
		return -1;
	sid = t->r.service_id;
	cfg = bpf_map_lookup_elem(&shift_snat_cfg, &sid);
	if (!cfg)
		return -1;
	n_addrs = cfg->n_addrs;
	r0 = cfg->run_n[0];
	total = r0 + cfg->run_n[1];
	if (n_addrs == 0 || n_addrs > SHIFT_SNAT_MAX_ADDRS || total == 0)
		return -1;
	now = snat_now();
	__builtin_memset(&t->v, 0, sizeof(t->v));
	__builtin_memcpy(t->v.caddr, t->r.caddr, sizeof(t->v.caddr));
	t->v.cport = t->r.cport;
	t->v.service_id = t->r.service_id;
	t->v.backend_id = t->r.backend_id | (t->r.how & SNAT_REQ_HALF ? SHIFT_SNAT_HALF_OPEN : 0);
	t->v.last_ns = now;
	__builtin_memset(&t->k, 0, sizeof(t->k));
	__builtin_memcpy(t->k.baddr, t->r.baddr, sizeof(t->k.baddr));
	t->k.bport = t->r.bport;
	t->k.proto = t->r.proto;
	t->k.family = t->r.family;
	/*
	 * The flow's SYN claimed a port (a retransmitted SYN, the first ACK):
	 * that port, wherever among the candidates it is. Claiming in order
	 * would hand it an earlier candidate freed since (an LRU eviction), a
	 * port its backend has never seen. Lookups only; a flow whose mapping
	 * is gone (evicted) claims afresh below.
	 */
	if (t->r.how & SNAT_REQ_OWN) {
		for (i = 0; i < SNAT_PROBES; i++) {
			port = snat_candidate(t, cfg, i, r0, total, n_addrs, &idx);
			old = bpf_map_lookup_elem(&shift_snat, &t->k);
			if (old && same_client(old, t->r.caddr, t->r.cport, t->r.backend_id)) {
				rc = snat_own(old, now);
				goto claimed;
			}
			old = bpf_map_lookup_elem(&shift_snat_half, &t->k);
			if (old && same_client(old, t->r.caddr, t->r.cport, t->r.backend_id)) {
				rc = snat_own_half(t, old, now);
				if (rc < 0)
					break;
				goto claimed;
			}
		}
	}
	if (t->r.how & SNAT_REQ_FIND)
		return -1;
	/*
	 * Lookups first: an LRU insert takes a free node before it looks, and
	 * gives it back when the key is there, under two locks; a taken port
	 * costs lookups only. The insert finds the bucket in the cache.
	 */
	for (i = 0; i < SNAT_PROBES; i++) {
		port = snat_candidate(t, cfg, i, r0, total, n_addrs, &idx);
		s = snat_probe(&shift_snat, t, now, &old);
		if (s == SNAT_MINE) {
			/* Ours already: the flow entry aged out before the mapping did. */
			rc = snat_own(old, now);
			goto claimed;
		}
		if (s == SNAT_TAKEN)
			continue;
		s = snat_probe(&shift_snat_half, t, now, &old);
		if (s == SNAT_MINE) {
			rc = snat_own_half(t, old, now);
			if (rc < 0)
				continue;
			goto claimed;
		}
		if (s == SNAT_TAKEN)
			continue;
		if (t->r.how & SNAT_REQ_HALF) {
			if (snat_take(&shift_snat_half, &shift_snat, t))
				goto claimed;
		} else if (snat_take(&shift_snat, &shift_snat_half, t)) {
			goto claimed;
		}
	}
	return -1;
claimed:
	t->r.idx = idx;
	t->r.port = bpf_htons(port);
	return rc;
}

/*
 * This CPU's request for the flow of client caddr:cport (network order) and
 * backend be (its id: backend_id), flow hash hash, p's protocol and family,
 * run through snat_claim(): its result, and on success the address index
 * << 16 | the port (network order) in *at.
 */
static __always_inline int snat_request(const struct pkt *p, const __u32 *caddr, __u16 cport,
					const struct shift_backend *be, __u32 backend_id,
					__u32 hash, __u32 how, __u32 *at)
{
	struct snat_scratch *t;
	__u32 zero = 0;
	int rc;

	t = bpf_map_lookup_elem(&shift_snat_tmp, &zero);
	if (!t)
		return -1;
	__builtin_memcpy(t->r.caddr, caddr, sizeof(t->r.caddr));
	__builtin_memcpy(t->r.baddr, be->addr, sizeof(t->r.baddr));
	t->r.cport = cport;
	t->r.bport = be->port;
	t->r.service_id = be->service_id;
	t->r.backend_id = backend_id;
	t->r.hash = hash;
	t->r.proto = p->proto;
	t->r.family = p->family;
	t->r.how = how;
	rc = snat_claim(0);
	if (rc < 0)
		return -1;
	/* The scratch is this CPU's and the program is not preempted: still ours. */
	t = bpf_map_lookup_elem(&shift_snat_tmp, &zero);
	if (!t)
		return -1;
	*at = t->r.idx << 16 | t->r.port;
	return rc;
}

/*
 * Claim a source address and port for a new flow to backend be; on success
 * f->snat_idx / f->snat_port say which. how: SNAT_REQ_OWN (the flow's SYN
 * claimed one already), SNAT_REQ_HALF (no handshake vouches for the flow).
 * Returns 1 (the flow's own confirmed mapping), 0 (claimed, or half-open), or
 * -1 (exhausted).
 */
static __always_inline int snat_alloc(const struct pkt *p, const struct shift_backend *be,
				      struct shift_flow *f, __u32 how)
{
	__u32 at;
	int rc;

	rc = snat_request(p, p->saddr, p->sport, be, f->backend_id, f->hash, how, &at);
	if (rc < 0)
		return -1;
	f->snat_idx = at >> 16;
	f->snat_port = (__u16)at;
	return rc;
}

/*
 * The mapping a reused 5-tuple's new SYN claimed, found (not claimed) from
 * its backend's SYN-ACK p (p's destination already the client's; be, id: the
 * backend; h: the flow hash), for syn_reuse(): the address index << 16 | the
 * port (network order), or 0 when there is none. It leaves the mapping
 * half-open: the client's first ACK confirms it.
 */
static __always_inline __u32 snat_find(const struct pkt *p, const struct shift_backend *be,
				       __u32 id, __u32 h)
{
	__u32 at;

	if (snat_request(p, p->daddr, p->dport, be, id, h,
			 SNAT_REQ_OWN | SNAT_REQ_HALF | SNAT_REQ_FIND, &at) < 0)
		return 0;
	return at;
}

/*
 * A flow with an entry, whose port k is still half-open in shift_snat_half
 * (a reused 5-tuple's, re-pointed by the SYN-ACK): confirm it, moving it to
 * shift_snat. 0, or -1 when the port's mapping is not the flow's.
 */
static __always_inline int snat_confirm(const struct shift_snat_key *k, const struct pkt *p,
					const struct shift_flow *f)
{
	struct shift_snat_val *h = bpf_map_lookup_elem(&shift_snat_half, k);
	struct shift_snat_val v;

	if (!h || !same_client(h, p->saddr, p->sport, f->backend_id))
		return -1;
	v = *h;
	v.backend_id = f->backend_id;
	v.last_ns = snat_now();
	return snat_move(k, &v);
}

/*
 * An established flow's source address (NULL: none, or its mapping is gone).
 * The mapping is checked to still be the flow's own: one that aged out (LRU)
 * or was taken over after idling is claimed afresh (snat_alloc) rather than
 * shared, and its idle clock restarts.
 */
static __always_inline const __u32 *
snat_established(const struct pkt *p, const struct shift_backend *be, struct shift_flow *f)
{
	struct shift_snat_cfg *cfg = snat_cfg(f->service_id);
	struct shift_snat_key k;
	struct shift_snat_val *v;
	__u32 idx = snat_idx(f->snat_idx);
	__u64 now;

	if (!cfg)
		return NULL;
	snat_key_fill(&k, p, be, cfg->addr[idx], f->snat_port);
	v = bpf_map_lookup_elem(&shift_snat, &k);
	if (!v || !same_client(v, p->saddr, p->sport, f->backend_id)) {
		/* A flow with an entry is vouched for: the half-open claim of a
		 * reused 5-tuple's SYN is confirmed here. */
		if (!v && snat_confirm(&k, p, f) == 0)
			return cfg->addr[idx];
		/* The flow has its entry: no half-open claim. */
		if (snat_alloc(p, be, f, 0) < 0)
			return NULL;
		return cfg->addr[snat_idx(f->snat_idx)];
	}
	now = snat_now();
	if (snat_older(now, v->last_ns, 1000000000ull))
		v->last_ns = now;
	return cfg->addr[idx];
}

/*
 * A backend's packet to one of the edge's snat addresses: a copy of the
 * mapping of its flow, with the client in it, or NULL (the edge's own
 * traffic: health checks). A connection's is confirmed, a SYN-ACK's still
 * half-open; the copy is this CPU's scratch either way: a pointer into one
 * of two tables would have the verifier walk the rest of the path once for
 * each.
 */
static __always_inline struct shift_snat_val *snat_reply(const struct pkt *p,
							 const struct shift_backend *be)
{
	struct shift_snat_key k;
	struct shift_snat_val *v;
	struct snat_scratch *t;
	__u32 zero = 0;
	__u64 now;

	snat_key_fill(&k, p, be, p->daddr, p->dport);
	/* The key's backend side is the reply's source. */
	__builtin_memcpy(k.baddr, p->saddr, sizeof(k.baddr));
	k.bport = p->sport;
	v = bpf_map_lookup_elem(&shift_snat, &k);
	if (!v)
		v = bpf_map_lookup_elem(&shift_snat_half, &k);
	if (!v)
		return NULL;
	now = snat_now();
	if (snat_older(now, v->last_ns, 1000000000ull))
		v->last_ns = now;
	t = bpf_map_lookup_elem(&shift_snat_tmp, &zero);
	if (!t)
		return NULL;
	t->reply = *v;
	return &t->reply;
}

#endif
