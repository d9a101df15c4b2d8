// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shift's datapath: program entries only. Follow one packet through
 *   parse.h (parse) -> here (service lookup) -> conntrack.h / flow_choice.h
 *   (which backend) -> nat.h (rewrite) -> forward.h (send on)
 * and one reply back through reverse_path() below. Each path has two entry
 * points, XDP and TC (clsact ingress), over the same code: ctx.h is all that
 * differs between them.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"
#include "ctx.h"
#include "parse.h"
#include "conntrack.h"
#include "flow_choice.h"
#include "nat.h"
#include "snat.h"
#include "forward.h"
#include "synslot.h"
#include "client_nh.h"
#include "signals.h"
#include "shadow.h"
#include "pmtu.h"

#define NOT_A_SERVICE (-1)

/*
 * A broken packet (rc: parse_packet()'s verdict) to a VIP is dropped and
 * counted; one not to us goes to the kernel. Its destination comes from the
 * header again (see parse.h): the parse checked the fixed header's bounds
 * before it could call a packet malformed.
 */
static __always_inline int malformed(const struct sctx *c, const struct pkt *p, int rc)
{
	void *data_end = sc_data_end(c);
	struct shift_vip_addr k;

	__builtin_memset(&k, 0, sizeof(k));
	k.family = parse_family(rc);
	if (k.family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3;

		if ((void *)(iph + 1) > data_end)
			return XDP_PASS;
		k.addr[0] = iph->daddr;
	} else {
		struct ipv6hdr *ip6 = p->l3;

		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		__builtin_memcpy(k.addr, &ip6->daddr, sizeof(k.addr));
	}
	if (!bpf_map_lookup_elem(&shift_vips, &k))
		return XDP_PASS;
	stat_inc(parse_reason(rc));
	return XDP_DROP;
}

/*
 * The backend's counters. id points at the backend's id where it already
 * sits in memory (a flow entry): the inlined array lookup reads its key
 * through the pointer, and a copy on the stack would cost a store and a
 * store-to-load forward on every packet's dependency chain.
 */
static __always_inline void count_backend(const __u32 *id, __u64 bytes, int reply, int new_flow)
{
	struct shift_backend_stats *st = bpf_map_lookup_elem(&shift_be_stats, id);

	if (!st)
		return;
	if (reply) {
		st->reply_packets++;
		st->reply_bytes += bytes;
	} else {
		st->packets++;
		st->bytes += bytes;
		st->new_flows += new_flow;
	}
}

static __always_inline struct shift_backend *active_backend(__u32 id, __u32 service_id)
{
	return backend_at(&id, service_id);
}

static __always_inline int vip_maybe(const struct pkt *p)
{
	__u32 zero = 0, bit = shift_vip_filter_bit(p->daddr), word = bit >> 6;
	struct shift_vip_filter *vf = bpf_map_lookup_elem(&shift_vipset, &zero);

	/* The 6.1 verifier loses the hash's range through its last XOR and the
	 * compiler drops a mask it thinks redundant: the asm keeps the bound. */
	asm volatile("%[w] &= %[m]" : [w] "+r"(word) : [m] "i"(SHIFT_VIP_FILTER_WORDS - 1));
	return !vf || ((vf->w[word] >> (bit & 63)) & 1);
}

/* DNAT to the chosen backend (and SNAT to snat:sport when set), send it on. */
static __always_inline int to_backend(const struct sctx *c, struct pkt *p,
				      const struct shift_backend *be, const __u32 *snat,
				      __u16 sport)
{
	void *data_end = sc_data_end(c);

	if (nat_rewrite(c, p, data_end, be->addr, be->port, snat, sport))
		return XDP_PASS;
	if (be->flags & SHIFT_BE_F_NH_VALID)
		return forward_cached(c, be);
	return forward_fib(c, p);
}

/* Remember where replies go: the client's packets came in here, MACs swapped. */
static __always_inline void flow_set_nh(const struct sctx *c, struct shift_flow *f)
{
	struct ethhdr *eth = sc_data(c);

	if ((void *)(eth + 1) > sc_data_end(c))
		return;
	f->cl_ifindex = sc_ingress(c);
	mac_copy(f->cl_dmac, eth->h_source);
	mac_copy(f->cl_smac, eth->h_dest);
	f->state |= SHIFT_FS_NH;
}

static __always_inline int is_bare_syn(const struct pkt *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (TCPF_SYN_ | TCPF_ACK_)) == TCPF_SYN_;
}

static __always_inline int is_synack(const struct pkt *p)
{
	return p->proto == IPPROTO_TCP &&
	       (p->tcp_flags & (TCPF_SYN_ | TCPF_ACK_)) == (TCPF_SYN_ | TCPF_ACK_);
}

static __always_inline __u32 svc_cache_slot(const struct pkt *p)
{
	__u32 x = p->daddr[0] ^ p->daddr[1] ^ p->daddr[2] ^ p->daddr[3] ^
		  ((__u32)p->dport << 8 | p->proto);

	/* The product's high bits: its low ones see only x's low bits. */
	return (x * 0x9e3779b1u) >> (32 - SHIFT_SVC_CACHE_BITS);
}

/*
 * The service p is addressed to, copied into *out, or NULL: shift_svc_cache's
 * guess when shift_svc_info confirms it, else shift_services, whose answer
 * then becomes the guess. The agent writes a service's info before its
 * services entry and drops it after, so a confirmed guess is a service the
 * table holds, give or take the microseconds of that write.
 */
static __always_inline struct shift_service *service_of(const struct pkt *p,
							struct shift_service *out)
{
	__u32 slot = svc_cache_slot(p), *c, id;
	const struct shift_svc_info *info;
	struct shift_service *s;
	struct shift_addr_key sk;

	c = bpf_map_lookup_elem(&shift_svc_cache, &slot);
	if (!c)
		return NULL;
	id = *c;
	info = bpf_map_lookup_elem(&shift_svc_info, &id);
	if (info && (info->flags & SHIFT_SVC_F_IN_USE) && info->vport == p->dport &&
	    info->proto == p->proto && info->family == p->family && info->vip[0] == p->daddr[0] &&
	    info->vip[1] == p->daddr[1] && info->vip[2] == p->daddr[2] &&
	    info->vip[3] == p->daddr[3]) {
		out->id = id;
		out->flags = info->flags & ~SHIFT_SVC_F_IN_USE;
		return out;
	}
	__builtin_memset(&sk, 0, sizeof(sk));
	__builtin_memcpy(sk.addr, p->daddr, sizeof(sk.addr));
	sk.port = p->dport;
	sk.proto = p->proto;
	sk.family = p->family;
	s = bpf_map_lookup_elem(&shift_services, &sk);
	if (!s)
		return NULL;
	*c = s->id;
	*out = *s;
	return out;
}

/*
 * A retransmit of the SYN slot s holds; nf: where the weight steers it now.
 *   - Answered (the backend's SYN-ACK was lost on the way, or is crossing this
 *     SYN): it follows the slot's backend, which answers it again. An
 *     answered handshake never moves, whatever the weight does.
 *   - Unanswered: it goes where nf says (the weight may have moved), and the
 *     slot follows it. SHIFT_SYN_RETRANS_MIN_NS after the first SYN it is the
 *     silent backend's SYN-retransmit error; with connect_fallback (fallback)
 *     a SYN green refused or left unanswered goes to blue (syn_fallback()).
 * The owner word changes by one compare-and-swap: the backend's SYN-ACK may
 * be marking it answered on another CPU at this moment (syn_answer()). One
 * of the two comes first: that SYN-ACK goes on to the client and this SYN
 * follows it to its backend, or this SYN moves the handshake and that SYN-ACK
 * is dropped. A client never completes a handshake with a backend its ACK
 * will not reach.
 */
static __always_inline void syn_again(struct shift_syn_slot *s, struct shift_flow *nf, __u64 now,
				      int fallback)
{
	__u32 be0 = nf->backend_id;
	__u8 color0 = nf->color;
	union syn_owner o, n;
	int i, err, restamp;

	for (i = 0; i < SYN_OWNER_TRIES; i++) {
		o.word = syn_owner_read(s);
		if ((o.flags & (SHIFT_SS_ANSWERED | SHIFT_SS_FALLBACK)) == SHIFT_SS_ANSWERED &&
		    active_backend(o.backend_id, o.service_id)) {
			nf->backend_id = o.backend_id;
			nf->color = SHIFT_SS_COLOR_OF(o.flags);
			return;
		}
		nf->backend_id = be0;
		nf->color = color0;
		n = o;
		err = syn_again_error(s, &n, now);
		restamp = fallback ? syn_fallback(&n, nf) : 0;
		n.backend_id = nf->backend_id;
		n.flags = (n.flags & ~SHIFT_SS_COLOR(1)) | SHIFT_SS_COLOR(nf->color);
		if (syn_owner_swap(s, o.word, n.word)) {
			if (err)
				owner_error(&o, SHIFT_ERR_SYN_RETRANS, now);
			if (restamp)
				syn_slot_stamp(s, now);
			return;
		}
	}
}

#define SYN_STEP_FALLBACK (1u << 9)
/* how's bits 16-23: a bare SYN's client-side next hop (client_nh_learn()), 0 for none */
#define SYN_STEP_NH_SHIFT 16

/*
 * The SYN slot's part of a new flow nf (its backend chosen by the weight),
 * for a TCP packet with sequence and acknowledgment numbers seq, ack; how: its TCP flags (low byte),
 * SYN_STEP_FALLBACK for a connect_fallback service, a bare SYN's client-side
 * next hop from SYN_STEP_NH_SHIFT (a global function takes at most five
 * arguments), which its slot names for its SYN-ACK. Returns 0 when the
 * packet continues a handshake the slot holds (not a new flow), else 1.
 *   - a bare SYN: its slot is overwritten or, for a retransmit of a recent
 *     SYN (same sequence number), updated (syn_again());
 *   - the client's first ACK (the SYN's sequence number + 1, acknowledging
 *     the backend's SYN-ACK: syn_slot_acked()): it follows the SYN's backend,
 *     which answered it, when that backend is still active. The slot is
 *     spent: a later packet without an entry (evicted, or dropped by
 *     `rollback --evict`) is steered by the weight. An ACK that does not
 *     acknowledge the SYN-ACK (a blind spoofer's) is steered by the weight
 *     and leaves the slot to the real handshake;
 *   - the client's RST of the handshake follows the SYN's backend (its
 *     half-open request goes), whatever it acknowledges.
 * A global function: the verifier checks it once (6.1's budget).
 */
__noinline int syn_slot_step(struct shift_flow *nf, __u32 service_id, __u32 seq, __u32 how,
			     __u32 ack)
{
	__u32 tcp_flags = how & 0xff;
	struct shift_syn_slot *slot;
	int fresh = 1;
	__u64 now;

	if (!nf)
		return 1;
	slot = syn_slot(nf->hash);
	if (!slot)
		return 1;
	now = bpf_ktime_get_ns();
	if ((tcp_flags & (TCPF_SYN_ | TCPF_ACK_)) == TCPF_SYN_) {
		if (syn_slot_is(slot, nf->hash, service_id, now) && syn_slot_isn_is(slot, seq)) {
			syn_again(slot, nf, now, how & SYN_STEP_FALLBACK);
			return 0;
		}
		syn_slot_write(slot, nf, now, seq, how >> SYN_STEP_NH_SHIFT & SHIFT_SYN_NH_MASK);
		return 1;
	}
	if (syn_slot_is(slot, nf->hash, service_id, now) && syn_slot_isn_is(slot, seq - 1)) {
		union syn_owner o = { .word = syn_owner_read(slot) };

		if (!(tcp_flags & TCPF_RST_) && !syn_slot_acked(slot, o.flags, ack)) {
			stat_inc(SHIFT_STAT_ACK_UNMATCHED);
			return 1;
		}
		if (active_backend(slot->backend_id, service_id)) {
			nf->backend_id = slot->backend_id;
			nf->color = syn_slot_color(slot);
			/* The handshake's time, for l7_flow_init() (req_ns is free
			 * until the entry is written). */
			nf->req_ns = syn_slot_age(slot, now);
			fresh = 0;
		}
		if (!(tcp_flags & TCPF_RST_))
			slot->hash = 0;
		return fresh;
	}
	if (!(tcp_flags & TCPF_RST_))
		stat_inc(SHIFT_STAT_SYN_SLOT_MISS);
	return 1;
}

/*
 * A packet of a flow the table does not hold, or any bare SYN (stale: an
 * entry whose backend a reload removed is there; fk: the flow's key):
 * choose the backend, and
 *   - a bare SYN: no insert, steered by hash and weight. Its SYN slot is
 *     overwritten, or, for a retransmit of a recent SYN, updated (its
 *     backend). An entry of a reused 5-tuple is left alone until the
 *     backend's SYN-ACK (syn_reuse()). A source-NATed SYN claims its port;
 *   - the client's first ACK, found in its SYN slot: the entry is written,
 *     with the backend the SYN went to (and the port it claimed);
 *   - any other TCP packet (a flow met in mid-stream or evicted, a first ACK
 *     whose slot another SYN took, or a spoofed ACK): steered by the weight,
 *     no insert. Nothing here tells a real flow from a spoofed one; the
 *     backend does: it answers a real one and sends a RST to a spoofed one,
 *     so the return path writes the entry (flow_adopt()). A flood of spoofed
 *     ACKs then grows the table no more than a flood of SYNs. A stale entry
 *     is rewritten (the key is there already: nothing is evicted). With
 *     source NAT, such a packet claims a port half-open, and finding its
 *     own confirmed mapping (a flow whose entry went) writes the entry;
 *   - a UDP datagram: the entry is written. UDP has no handshake, and a
 *     backend answers a spoofed datagram like a real one.
 */
static __always_inline int new_flow(const struct sctx *c, struct pkt *p, union flow_key *fk,
				    int stale)
{
	void *data_end = sc_data_end(c);
	struct shift_service svc_buf, *svc;
	const __u32 *snat = NULL;
	struct shift_backend *be;
	struct shift_flow *nf;
	__u32 zero = 0, h;
	int syn = is_bare_syn(p), fresh = 1, own = 0, insert;

	/*
	 * The flow hash before the service: MurmurHash3's chain through h (ten
	 * serial steps for IPv6) needs only the packet, and computed first it
	 * runs while the service's lookups wait on memory. After them, the
	 * backend's choice waited for both in turn.
	 */
	h = flow_hash(p);
	svc = service_of(p, &svc_buf);
	if (!svc)
		return NOT_A_SERVICE;
	if (ttl_check(p, data_end)) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}

	nf = bpf_map_lookup_elem(&shift_nf_tmp, &zero);
	if (!nf)
		return XDP_PASS;
	__builtin_memset(nf, 0, sizeof(*nf));
	if (choose_backend(p, svc, nf, h)) {
		stat_inc(SHIFT_STAT_DROP_NO_BACKEND);
		return XDP_DROP;
	}
	if (p->proto == IPPROTO_TCP) {
		__u32 nh = 0;

		/* A bare SYN leaves the way back for its SYN-ACK (client_nh.h):
		 * nf carries it, and how its index, to its slot. Learnt here, not in
		 * syn_slot_step(): client_nh_probe() called from there would make
		 * three frames, past 6.1's 512 bytes of combined stack. */
		if (syn) {
			flow_set_nh(c, nf);
			if (nf->state & SHIFT_FS_NH)
				nh = client_nh_learn(nf);
		}
		fresh = syn_slot_step(
			nf, svc->id, tcp_seq(p, data_end),
			(p->tcp_flags & 0xff) |
				(svc->flags & SHIFT_SVC_F_FALLBACK ? SYN_STEP_FALLBACK : 0) |
				nh << SYN_STEP_NH_SHIFT,
			tcp_ack_seq(p, data_end));
	}
	be = active_backend(nf->backend_id, svc->id);
	if (!be) {
		stat_inc(SHIFT_STAT_DROP_BAD_BACKEND);
		return XDP_DROP;
	}
	/*
	 * Source NAT claims its port with the flow's first packet, SYN included:
	 * the backend's SYN-ACK needs the reverse mapping. Like any bare SYN it
	 * writes no entry; its retransmits and the client's first ACK (both
	 * found in the SYN slot: !fresh) find the port it claimed, and the ACK
	 * confirms it and writes the entry. A TCP claim no handshake vouches
	 * for is half-open (SHIFT_SNAT_HALF_OPEN): a SYN's, or a packet's past the SYN
	 * that its SYN slot does not know (a spoofed ACK). A flood of either
	 * holds ports for seconds (bounded by the range: snat_exhausted) and
	 * writes no connection-table entries.
	 */
	if (svc->flags & SHIFT_SVC_F_SNAT) {
		struct shift_snat_cfg *sc = snat_cfg(svc->id);
		__u32 how = fresh ? 0 : SNAT_REQ_OWN;

		if (p->proto == IPPROTO_TCP && (syn || (fresh && !stale)))
			how |= SNAT_REQ_HALF;
		own = sc ? snat_alloc(p, be, nf, how) : -1;
		if (own < 0) {
			stat_inc(SHIFT_STAT_DROP_SNAT_EXHAUSTED);
			return XDP_DROP;
		}
		snat = sc->addr[snat_idx(nf->snat_idx)];
	}
	/*
	 * A stray RST must not plant an entry for a connection that is gone.
	 * Source NAT's packet past the SYN with a confirmed mapping (own: a flow
	 * whose entry went) keeps its port in the entry.
	 */
	insert = !(p->tcp_flags & TCPF_RST_) &&
		 (p->proto != IPPROTO_TCP || (!syn && (!fresh || stale || own > 0)));
	if (insert) {
		/*
		 * What the signals read of the entry (HTTP/1.x, or analysis =
		 * auto). Only a packet that writes one needs it: a bare SYN's nf
		 * goes no further than its slot, and the call's return costs a
		 * mispredict on hosts with AMD's SRSO mitigation (BENCHMARKS §7zn).
		 */
		l7_flow_init(nf, svc->flags, nf->req_ns);
		if (p->proto == IPPROTO_TCP && !syn)
			nf->state |= SHIFT_FS_SYNACK;
		flow_set_nh(c, nf);
		/* The first ACK may carry the request already. */
		signal_client(c, p, nf);
		flow_insert(p->family, fk, nf, BPF_ANY);
	}
	/*
	 * A new connection is a SYN its slot did not know, or an entry written
	 * without a handshake (UDP, a re-steered or re-inserted flow). Every
	 * other packet its SYN slot does not know is its backend's packet but
	 * no new connection: a first ACK or a request whose slot another SYN
	 * took (its SYN was counted), a spoofed ACK, a stray RST (a client
	 * answering a rolled-back green's retransmit after the re-steered ACK's
	 * reset closed its socket). Counted, each would look like one.
	 */
	if (fresh && (syn || insert)) {
		stat_inc(SHIFT_STAT_FLOW_NEW);
		count_backend(&nf->backend_id, sc_len(c), 0, 1);
	} else {
		count_backend(&nf->backend_id, sc_len(c), 0, 0);
	}
	return to_backend(c, p, be, snat, nf->snat_port);
}

#define FLOW_MISS (-2)

/*
 * Client -> VIP, the common case: an established flow whose backend's next
 * hop is cached, without source NAT. fam is a constant: forward_path()
 * inlines one copy per family, each compiled for its own family alone. With
 * one path for both, the compiler merged the families' code into one tail
 * that tested the family again at each step and kept both families' parsed
 * fields on the stack across it. FLOW_MISS, with *fp and *bep as found,
 * leaves the packet to the general path: no entry, a source-NATed entry (its
 * port's mapping is checked there, and *bep is not looked up), an entry whose
 * backend is gone, or a backend whose next hop takes a FIB lookup.
 */
static __always_inline int flow_established(const struct sctx *c, struct pkt *p, const __u8 fam,
					    union flow_key *k, struct shift_flow **fp,
					    struct shift_backend **bep)
{
	void *data_end = sc_data_end(c);
	struct shift_backend *be;
	struct shift_flow *f;

	flow_key_fill(k, fam, p->saddr, p->daddr, p->sport, p->dport, p->proto);
	f = flow_lookup(fam, k);
	*fp = f;
	if (!f || f->snat_port)
		return FLOW_MISS;
	be = backend_at(&f->backend_id, f->service_id);
	*bep = be;
	if (!be || !(be->flags & SHIFT_BE_F_NH_VALID))
		return FLOW_MISS;
	if (ttl_check(p, data_end)) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}
	count_backend(&f->backend_id, sc_len(c), 0, 0);
	shadow_client(c->ctx, c->tc, sc_data(c), p, f, data_end);
	signal_client(c, p, f);
	if (nat_rewrite(c, p, data_end, be->addr, be->port, NULL, 0))
		return XDP_PASS;
	return forward_cached(c, be);
}

/*
 * Client -> VIP: steer, DNAT to the backend, forward. The connection table
 * comes first: an established flow's entry says everything (backend, service,
 * flags), so it needs no service lookup (flow_established()). Only a miss
 * looks the service up.
 */
static __always_inline int forward_path(const struct sctx *c, struct pkt *p)
{
	union flow_key fk, *k = &fk;
	void *data_end = sc_data_end(c);
	const __u32 *snat = NULL;
	struct shift_backend *be = NULL;
	struct shift_flow *f = NULL;
	int stale = 0, rc;

	if (!vip_maybe(p))
		return NOT_A_SERVICE;
	if (!is_bare_syn(p)) {
		if (p->family == SHIFT_AF_INET)
			rc = flow_established(c, p, SHIFT_AF_INET, k, &f, &be);
		else
			rc = flow_established(c, p, SHIFT_AF_INET6, k, &f, &be);
		if (rc != FLOW_MISS)
			return rc;
	} else {
		/*
		 * A bare SYN is a new flow (SPEC), steered by hash and weight: it
		 * does not look at the connection table, whose lookup in a full
		 * table is the cache misses that made a SYN cost what it did. An
		 * entry a reused 5-tuple left behind is re-pointed when the
		 * backend's SYN-ACK comes back (syn_reuse()), with source NAT
		 * to the port the SYN claimed. It writes no entry, but its key
		 * is filled all the same: with the key's stack unset on this
		 * path only, the 6.1 verifier could not prune the SYN's states
		 * in new_flow() against the other paths' (shift_xdp_both 548k
		 * instructions with the key, 686k without).
		 */
		flow_key_fill(k, p->family, p->saddr, p->daddr, p->sport, p->dport, p->proto);
	}
	/*
	 * The backend of an entry flow_established() left (source NAT). An entry
	 * whose backend is gone (reload) is steered afresh and rewritten.
	 */
	if (f && !be) {
		be = backend_at(&f->backend_id, f->service_id);
		if (!be) {
			f = NULL;
			stale = 1;
		}
	}
	/* One call of new_flow() for every way into it: inlined once, the
	 * verifier walks it once. */
	if (!be)
		return new_flow(c, p, k, stale);
	/* An established flow's packet that takes a FIB lookup or source NAT
	 * (flow_established() left it). */
	if (ttl_check(p, data_end)) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}
	if (f->snat_port) {
		snat = snat_established(p, be, f);
		if (!snat) {
			stat_inc(SHIFT_STAT_DROP_SNAT_EXHAUSTED);
			return XDP_DROP;
		}
	}
	count_backend(&f->backend_id, sc_len(c), 0, 0);
	shadow_client(c->ctx, c->tc, sc_data(c), p, f, data_end);
	signal_client(c, p, f);
	return to_backend(c, p, be, snat, f->snat_port);
}

/*
 * The backend's SYN-ACK (h: the flow hash, from the reply) found an entry
 * whose handshake completed: when the SYN slot holds a newer handshake on the
 * same 5-tuple answered by this backend, the entry is the old connection's
 * (a client reusing its port; SYNs do not look at the table) and now becomes
 * the new one's, before the client's first ACK can follow it: the backend the
 * SYN went to, signals from scratch, and with source NAT (snat: the address
 * index << 16 | the port, network order, that the SYN-ACK came to; else 0)
 * the port the SYN claimed. The slot is spent, as a first ACK spends it.
 * Runs after syn_answer(), which took the connect latency from the slot.
 * A global function: checked once.
 */
__noinline int syn_reuse(struct shift_flow *f, __u32 h, __u32 backend_id, __u32 svc_flags,
			 __u32 snat)
{
	struct shift_syn_slot *s;
	__u64 now;
	__u8 nh;

	if (!f || !(f->state & SHIFT_FS_SYNACK))
		return 0;
	s = syn_slot(h);
	now = bpf_ktime_get_ns();
	if (!s || !syn_slot_is(s, h, f->service_id, now) || s->backend_id != backend_id)
		return 0;
	nh = f->state & SHIFT_FS_NH;
	f->backend_id = s->backend_id;
	f->hash = h;
	f->color = syn_slot_color(s);
	f->state = 0;
	f->app_flags = 0;
	f->next_hdr[0] = 0;
	f->next_hdr[1] = 0;
	if (snat) {
		f->snat_idx = snat >> 16;
		f->snat_port = (__u16)snat;
	}
	l7_flow_init(f, svc_flags, syn_slot_age(s, now));
	f->state |= nh | SHIFT_FS_SYNACK;
	s->hash = 0;
	return 1;
}

static __always_inline __u32 be_cache_slot(const struct pkt *p)
{
	__u32 x = p->saddr[0] ^ p->saddr[1] ^ p->saddr[2] ^ p->saddr[3] ^
		  ((__u32)p->sport << 8 | p->proto);

	/* The product's high bits: its low ones see only x's low bits. */
	return (x * 0x9e3779b1u) >> (32 - SHIFT_BE_CACHE_BITS);
}

/* Is be, active, the backend p came from? Its service's protocol included
 * (one address and port may serve a TCP and a UDP service): that service's
 * info when it is, else NULL. */
static __always_inline struct shift_svc_info *be_sent(const struct shift_backend *be,
						      const struct pkt *p)
{
	__u32 sid = be->service_id;
	struct shift_svc_info *info;

	if (!(be->flags & SHIFT_BE_F_ACTIVE) || be->port != p->sport || be->family != p->family ||
	    be->addr[0] != p->saddr[0] || be->addr[1] != p->saddr[1] ||
	    be->addr[2] != p->saddr[2] || be->addr[3] != p->saddr[3])
		return NULL;
	info = bpf_map_lookup_elem(&shift_svc_info, &sid);
	return info && info->proto == p->proto ? info : NULL;
}

/*
 * The backend that sent p (*id: its slot; *info: its service), or NULL:
 * shift_be_cache's guess when it holds, else shift_be_idx, whose answer then
 * becomes the guess.
 */
static __always_inline struct shift_backend *backend_of(const struct pkt *p, __u32 *id,
							struct shift_svc_info **info)
{
	__u32 slot = be_cache_slot(p), *c, *ix, sid;
	struct shift_backend *be;
	struct shift_addr_key bk;

	c = bpf_map_lookup_elem(&shift_be_cache, &slot);
	if (!c)
		return NULL;
	*id = *c;
	be = bpf_map_lookup_elem(&shift_backends, id);
	if (be) {
		*info = be_sent(be, p);
		if (*info)
			return be;
	}
	__builtin_memset(&bk, 0, sizeof(bk));
	__builtin_memcpy(bk.addr, p->saddr, sizeof(bk.addr));
	bk.port = p->sport;
	bk.proto = p->proto;
	bk.family = p->family;
	ix = bpf_map_lookup_elem(&shift_be_idx, &bk);
	if (!ix)
		return NULL;
	*id = *ix;
	be = bpf_map_lookup_elem(&shift_backends, id);
	if (!be)
		return NULL;
	sid = be->service_id;
	*info = bpf_map_lookup_elem(&shift_svc_info, &sid);
	if (!*info)
		return NULL;
	*c = *id;
	return be;
}

/*
 * The backend answered a TCP flow the table does not hold, with neither SYN
 * nor RST: a flow met in mid-stream (an edge host taking over a fleet peer's
 * flows, a restart without the pins), evicted, or whose first ACK lost its
 * SYN slot. The forward path steered it by the weight without an entry (a
 * spoofed ACK looks the same from there); a backend answers only a
 * connection it holds, so here the entry is written, pinning the flow
 * before the weight can move. Its client-side next hop is the FIB's answer
 * for this reply (rc, fib), when it had one. It may be anywhere in a
 * request: analysis = auto does not classify it (SHIFT_APP_LOST), HTTP/1.x
 * starts at the next request line. With source NAT the reply came to the
 * flow's own mapping (snat: snat_reply() found one; p's destination is its
 * client): the entry keeps that port, whose claim the backend's answer
 * confirms when it was still half-open (a first ACK that found its SYN slot
 * taken claims nothing more). A rolled-back service's green flows are not
 * adopted: `rollback --evict`
 * dropped their entries so that they re-steer to blue, and green's answers
 * still on the wire must not write them back.
 */
static __always_inline void flow_adopt(const struct pkt *p, union flow_key *k, __u32 h,
				       const struct shift_backend *be, __u32 id,
				       const struct shift_svc_info *info, long rc,
				       const struct bpf_fib_lookup *fib, const __u32 *snat)
{
	__u32 zero = 0, sid = be->service_id, *w, at = 0;
	struct shift_flow *nf;

	if (p->proto != IPPROTO_TCP || (p->tcp_flags & (TCPF_SYN_ | TCPF_RST_)) ||
	    !(p->tcp_flags & TCPF_ACK_) || ((info->flags & SHIFT_SVC_F_SNAT) && !snat) ||
	    !(be->flags & SHIFT_BE_F_ACTIVE))
		return;
	w = bpf_map_lookup_elem(&shift_weights, &sid);
	if (!w || (be->color == SHIFT_GREEN && (*w & SHIFT_WEIGHT_LATCHED)))
		return;
	if ((info->flags & SHIFT_SVC_F_SNAT) &&
	    snat_request(p, p->daddr, p->dport, be, id, h, SNAT_REQ_OWN | SNAT_REQ_FIND, &at) < 0)
		return;
	nf = bpf_map_lookup_elem(&shift_nf_tmp, &zero);
	if (!nf)
		return;
	__builtin_memset(nf, 0, sizeof(*nf));
	nf->snat_idx = at >> 16;
	nf->snat_port = (__u16)at;
	nf->backend_id = id;
	nf->hash = h;
	nf->service_id = be->service_id;
	nf->color = be->color;
	l7_flow_init(nf, info->flags, 0);
	if (info->flags & SHIFT_SVC_F_AUTO)
		l7_set_app(nf, SHIFT_APP_LOST);
	nf->state |= SHIFT_FS_SYNACK;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		nf->cl_ifindex = fib->ifindex;
		__builtin_memcpy(nf->cl_dmac, fib->dmac, ETH_ALEN);
		__builtin_memcpy(nf->cl_smac, fib->smac, ETH_ALEN);
		nf->state |= SHIFT_FS_NH;
	}
	flow_insert(p->family, k, nf, BPF_NOEXIST);
}

/* Send a reply on to the client by the next hop its entry keeps. */
static __always_inline int forward_to_client(const struct sctx *c, const struct shift_flow *f)
{
	return forward_to(c, f->cl_ifindex, f->cl_dmac, f->cl_smac);
}

/*
 * Backend -> client: SNAT back to VIP:port, forward. The flow's entry, found
 * by the reply's reverse key, holds the client-side next hop; a reply without
 * one (a SYN-ACK: entries come with the client's ACK) takes a FIB lookup,
 * which also tells replies addressed to the edge host itself (the agent's
 * health checks) from a client's: those are left alone. A backend's answer
 * to a client's flow without an entry writes it (flow_adopt()).
 */
static __always_inline int reverse_path(const struct sctx *c, struct pkt *p)
{
	union flow_key fk, *k = &fk;
	void *data_end = sc_data_end(c);
	struct bpf_fib_lookup fib;
	struct shift_svc_info *info;
	struct shift_backend *be;
	const __u32 *to_client = NULL;
	struct shift_flow *f;
	__u32 id, h = 0;
	__u16 cport = 0;
	int answer;
	long rc = 0;

	be = backend_of(p, &id, &info);
	if (!be)
		return XDP_PASS;
	if (info->flags & SHIFT_SVC_F_SNAT) {
		struct shift_snat_val *v = snat_reply(p, be);

		/* To the client from here on: the signals find the flow by it, the
		 * route goes to it, the NAT below writes it. Without a mapping the
		 * packet is the edge's own (a health check) or a stale one. */
		if (v) {
			cport = v->cport;
			__builtin_memcpy(p->daddr, v->caddr, sizeof(p->daddr));
			p->dport = cport;
			to_client = v->caddr;
		}
	}
	if (ttl_check(p, data_end)) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}
	flow_key_fill(k, p->family, p->daddr, info->vip, p->dport, info->vport, p->proto);
	f = flow_lookup(p->family, k);
	/* The flow hash, from the reply's client -> VIP tuple: only what reads
	 * the SYN slot or writes an entry needs it, not an established reply. */
	if (reply_wants_slot(p, f))
		h = reply_hash(p, info);
	/* A SYN-ACK goes back the way its SYN came, any other reply without
	 * its entry's next hop by the FIB (client_nh.h). */
	if (!f || !(f->state & SHIFT_FS_NH)) {
		fib_request(c, p, info->vip, &fib);
		rc = reply_route_of(c, &fib, h,
				    !f && is_synack(p) ? be->service_id : CLIENT_NH_NO_SERVICE,
				    tcp_ack_seq(p, data_end));
		/* Local (or unroutable) destination: not a client of ours. */
		if (rc == BPF_FIB_LKUP_RET_NOT_FWDED || rc < 0)
			return XDP_PASS;
	}
	/* Not for the client: green's refusal under connect_fallback (the client
	 * retransmits its SYN, which goes to blue), a SYN-ACK of a backend its
	 * handshake has left. */
	answer = signal_syn_answer(p, h, info, id, f, data_end);
	if (answer == SYN_ANSWER_DROP)
		return XDP_DROP;
	count_backend(&id, sc_len(c), 1, 0);
	/* A backend in TIME_WAIT answers a SYN with a bare ACK: no flow. */
	if (!f && answer != SYN_ANSWER_HELD)
		flow_adopt(p, k, h, be, id, info, rc, &fib, to_client);
	else if (is_synack(p) && !(info->flags & SHIFT_SVC_F_SNAT))
		syn_reuse(f, h, id, info->flags, 0);
	else if (is_synack(p) && to_client && f && (f->state & SHIFT_FS_SYNACK)) {
		/* A reused 5-tuple's entry, with the port the new SYN claimed. */
		__u32 at = snat_find(p, be, id, h);

		if (at)
			syn_reuse(f, h, id, info->flags, at);
	}
	if (answer != SYN_ANSWER_REFUSED)
		signal_backend(c, p, f, data_end);
	if (nat_rewrite(c, p, data_end, to_client, cport, info->vip, info->vport))
		return XDP_PASS;
	if (f && (f->state & SHIFT_FS_NH))
		return forward_to_client(c, f);
	return forward_by(c, rc, &fib);
}

/* Client -> VIP. */
static __always_inline int client_entry(const struct sctx *c)
{
	void *data = sc_data(c);
	void *data_end = sc_data_end(c);
	struct pkt p = {};
	int rc;

#ifdef SHIFT_UPGRADE_TEST
	/* A different program (new tag) for the in-place upgrade test, same
	 * behaviour and maps: a helper call whose result is unused. */
	bpf_get_smp_processor_id();
#endif

	rc = parse_packet(&p, data, data_end, sc_len(c));
	if (parse_kind(rc) == PARSE_NOT_OURS)
		return too_big(c);
	if (parse_kind(rc) == PARSE_MALFORMED)
		return malformed(c, &p, rc);
	rc = forward_path(c, &p);
	return rc == NOT_A_SERVICE ? XDP_PASS : rc;
}

/* Backend -> client. */
static __always_inline int backend_entry(const struct sctx *c)
{
	void *data = sc_data(c);
	void *data_end = sc_data_end(c);
	struct pkt p = {};

	/* Whatever a backend sends that we cannot parse is the kernel's business. */
	if (parse_packet(&p, data, data_end, sc_len(c)) != PARSE_OK) {
		if (p.proto == IPPROTO_ICMP || p.proto == IPPROTO_ICMPV6)
			signal_icmp(&p, data, data_end);
		return XDP_PASS;
	}
	return reverse_path(c, &p);
}

/* One-armed: clients and backends on the same interface. */
static __always_inline int both_entry(const struct sctx *c)
{
	void *data = sc_data(c);
	void *data_end = sc_data_end(c);
	struct pkt p = {};
	int rc;

	rc = parse_packet(&p, data, data_end, sc_len(c));
	if (parse_kind(rc) == PARSE_NOT_OURS) {
		/* A backend's unreachable, or a client-side router's too-big. */
		if (p.proto == IPPROTO_ICMP || p.proto == IPPROTO_ICMPV6)
			signal_icmp(&p, data, data_end);
		return too_big(c);
	}
	if (parse_kind(rc) == PARSE_MALFORMED)
		return malformed(c, &p, rc);
	rc = forward_path(c, &p);
	if (rc != NOT_A_SERVICE)
		return rc;
	return reverse_path(c, &p);
}

SEC("xdp")
int shift_xdp_client(struct xdp_md *ctx)
{
	const struct sctx c = SCTX_XDP(ctx);

	return client_entry(&c);
}

SEC("xdp")
int shift_xdp_backend(struct xdp_md *ctx)
{
	const struct sctx c = SCTX_XDP(ctx);

	return backend_entry(&c);
}

SEC("xdp")
int shift_xdp_both(struct xdp_md *ctx)
{
	const struct sctx c = SCTX_XDP(ctx);

	return both_entry(&c);
}

/*
 * The TC entry points (clsact ingress, or tcx): where a local sender's
 * CHECKSUM_PARTIAL packets arrive (containers on veth, the edge host itself).
 * A head that cannot be pulled goes on untouched.
 */
SEC("tc")
int shift_tc_client(struct __sk_buff *skb)
{
	const struct sctx c = SCTX_TC(skb);

	if (sc_tc_pull(skb))
		return TC_ACT_UNSPEC;
	return tc_verdict(client_entry(&c));
}

SEC("tc")
int shift_tc_backend(struct __sk_buff *skb)
{
	const struct sctx c = SCTX_TC(skb);

	if (sc_tc_pull(skb))
		return TC_ACT_UNSPEC;
	return tc_verdict(backend_entry(&c));
}

SEC("tc")
int shift_tc_both(struct __sk_buff *skb)
{
	const struct sctx c = SCTX_TC(skb);

	if (sc_tc_pull(skb))
		return TC_ACT_UNSPEC;
	return tc_verdict(both_entry(&c));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
