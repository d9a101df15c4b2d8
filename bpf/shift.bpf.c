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
#include "signals.h"
#include "shadow.h"

#define NOT_A_SERVICE (-1)

static __always_inline int is_vip_addr(const struct pkt *p)
{
	struct shift_vip_addr k;

	__builtin_memset(&k, 0, sizeof(k));
	__builtin_memcpy(k.addr, p->daddr, sizeof(k.addr));
	k.family = p->family;
	return bpf_map_lookup_elem(&shift_vips, &k) != NULL;
}

/* A broken packet to a VIP is dropped and counted; one not to us goes to the kernel. */
static __always_inline int malformed(const struct pkt *p)
{
	if (!is_vip_addr(p))
		return XDP_PASS;
	stat_inc(p->reason);
	return XDP_DROP;
}

static __always_inline void count_backend(__u32 id, __u64 bytes, int reply, int new_flow)
{
	struct shift_backend_stats *st = bpf_map_lookup_elem(&shift_be_stats, &id);

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

/* A slot freed by a reload may be reused by another service: check both. */
static __always_inline struct shift_backend *active_backend(__u32 id, __u32 service_id)
{
	struct shift_backend *be = bpf_map_lookup_elem(&shift_backends, &id);

	return be && (be->flags & SHIFT_BE_F_ACTIVE) && be->service_id == service_id ? be : NULL;
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

/* DNAT to the chosen backend (and SNAT to snat:sport when set), send it on.
 * The TTL goes first: on TC no packet pointer survives the NAT's checksum
 * helpers. */
static __always_inline int to_backend(const struct sctx *c, struct pkt *p,
				      const struct shift_backend *be, const __u32 *snat,
				      __u16 sport)
{
	void *data_end = sc_data_end(c);

	ttl_decrement(c, p, data_end);
	if (nat_rewrite(c, p, data_end, be->addr, be->port, snat, sport))
		return XDP_PASS;
	if (be->flags & SHIFT_BE_F_NH_VALID)
		return forward_cached(c, be);
	return forward_fib(c, p);
}

/*
 * Client -> VIP: steer, DNAT to the backend, forward. The connection table
 * comes first: an established flow's entry says everything (backend, service,
 * flags), so it needs no service lookup. Only a miss looks the service up.
 */
static __always_inline int forward_path(const struct sctx *c, struct pkt *p)
{
	void *data_end = sc_data_end(c);
	const __u32 *snat = NULL;
	struct shift_addr_key sk;
	struct shift_service *svc;
	struct shift_backend *be;
	struct shift_flow *f;
	struct shift_flow nf;
	union flow_key fk;

	if (!vip_maybe(p))
		return NOT_A_SERVICE;
	flow_key_fill(&fk, p->family, p->saddr, p->daddr, p->sport, p->dport, p->proto);
	f = flow_lookup(p->family, &fk);
	/*
	 * A SYN on an entry whose handshake completed is a new connection on a
	 * reused 5-tuple, not a retransmit: it is steered afresh (SPEC: a SYN
	 * without ACK is a new flow). An unanswered entry keeps its backend, so
	 * retransmitted SYNs are counted against it.
	 */
	if (f && !((p->tcp_flags & (TCPF_SYN_ | TCPF_ACK_)) == TCPF_SYN_ &&
		   (f->state & SHIFT_FS_SYNACK))) {
		be = active_backend(f->backend_id, f->service_id);
		if (be) {
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
			count_backend(f->backend_id, sc_len(c), 0, 0);
			shadow_client(c->ctx, c->tc, sc_data(c), p, f, data_end);
			signal_client(p, f, (f->state & SHIFT_FS_SVC_HTTP) ? SHIFT_SVC_F_HTTP : 0,
				      data_end);
			return to_backend(c, p, be, snat, f->snat_port);
		}
	}

	__builtin_memset(&sk, 0, sizeof(sk));
	__builtin_memcpy(sk.addr, p->daddr, sizeof(sk.addr));
	sk.port = p->dport;
	sk.proto = p->proto;
	sk.family = p->family;
	svc = bpf_map_lookup_elem(&shift_services, &sk);
	if (!svc)
		return NOT_A_SERVICE;
	if (ttl_check(p, data_end)) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}

	/* Unknown flow, a reused 5-tuple, or its backend is gone (reload). */
	__builtin_memset(&nf, 0, sizeof(nf));
	if (choose_backend(p, svc, &nf)) {
		stat_inc(SHIFT_STAT_DROP_NO_BACKEND);
		return XDP_DROP;
	}
	be = active_backend(nf.backend_id, svc->id);
	if (!be) {
		stat_inc(SHIFT_STAT_DROP_BAD_BACKEND);
		return XDP_DROP;
	}
	if (svc->flags & SHIFT_SVC_F_HTTP)
		nf.state = SHIFT_FS_SVC_HTTP;
	if ((p->tcp_flags & (TCPF_SYN_ | TCPF_ACK_)) == TCPF_SYN_) {
		nf.syn_ns = bpf_ktime_get_ns();
		nf.syn_count = 1;
	}
	if (svc->flags & SHIFT_SVC_F_SNAT) {
		struct shift_snat_cfg *sc = snat_cfg(svc->id);

		if (!sc || snat_alloc(p, be, &nf)) {
			stat_inc(SHIFT_STAT_DROP_SNAT_EXHAUSTED);
			return XDP_DROP;
		}
		snat = sc->addr[snat_idx(nf.snat_idx)];
	}
	/* A stray RST must not plant an entry for a connection that is gone. */
	if (!(p->tcp_flags & TCPF_RST_))
		flow_insert(p->family, &fk, &nf);
	stat_inc(SHIFT_STAT_FLOW_NEW);
	count_backend(nf.backend_id, sc_len(c), 0, 1);
	return to_backend(c, p, be, snat, nf.snat_port);
}

/*
 * Backend -> client: SNAT back to VIP:port, forward. Replies addressed to the
 * edge host itself (the agent's health checks) are left alone: the route to
 * the destination is looked up first, which the forwarding needs anyway.
 */
static __always_inline int reverse_path(const struct sctx *c, struct pkt *p)
{
	void *data_end = sc_data_end(c);
	struct bpf_fib_lookup fib;
	struct shift_svc_info *info;
	struct shift_backend *be;
	struct shift_addr_key bk;
	const __u32 *to_client = NULL;
	__u32 *id, sid, cl[4];
	__u16 cport = 0;
	long rc;

	__builtin_memset(&bk, 0, sizeof(bk));
	__builtin_memcpy(bk.addr, p->saddr, sizeof(bk.addr));
	bk.port = p->sport;
	bk.proto = p->proto;
	bk.family = p->family;
	id = bpf_map_lookup_elem(&shift_be_idx, &bk);
	if (!id)
		return XDP_PASS;
	be = bpf_map_lookup_elem(&shift_backends, id);
	if (!be)
		return XDP_PASS;
	sid = be->service_id;
	info = bpf_map_lookup_elem(&shift_svc_info, &sid);
	if (!info)
		return XDP_PASS;
	if (info->flags & SHIFT_SVC_F_SNAT) {
		struct shift_snat_val *v = snat_reply(p, be);

		/* To the client from here on: the signals find the flow by it, the
		 * route goes to it, the NAT below writes it. Without a mapping the
		 * packet is the edge's own (a health check) or a stale one. */
		if (v) {
			__builtin_memcpy(cl, v->caddr, sizeof(cl));
			cport = v->cport;
			__builtin_memcpy(p->daddr, cl, sizeof(p->daddr));
			p->dport = cport;
			to_client = cl;
		}
	}
	if (ttl_check(p, data_end)) {
		stat_inc(SHIFT_STAT_PASS_TTL);
		return XDP_PASS;
	}
	rc = fib_lookup(c, p, info->vip, &fib);
	/* Local (or unroutable) destination: not a client of ours. */
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED || rc < 0)
		return XDP_PASS;
	count_backend(*id, sc_len(c), 1, 0);
	signal_backend(p, info, data_end);
	ttl_decrement(c, p, data_end);
	if (nat_rewrite(c, p, data_end, to_client, cport, info->vip, info->vport))
		return XDP_PASS;
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
	if (rc == PARSE_NOT_OURS)
		return XDP_PASS;
	if (rc == PARSE_MALFORMED)
		return malformed(&p);
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
	if (rc == PARSE_NOT_OURS) {
		if (p.proto == IPPROTO_ICMP || p.proto == IPPROTO_ICMPV6)
			signal_icmp(&p, data, data_end);
		return XDP_PASS;
	}
	if (rc == PARSE_MALFORMED)
		return malformed(&p);
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
