/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Return-path signals: how each backend is doing, seen from the packets that
 * already pass through us. Per backend: connect latency (client SYN ->
 * backend SYN-ACK), HTTP/1.x status class and request -> first response byte
 * latency, and errors (backend RST, HTTP 5xx, a client SYN retransmitted
 * without an answer, ICMP unreachable from the backend).
 *
 * Exact per-CPU counters and histograms feed the metrics; samples go to the
 * agent through the ring buffer. An error wakes the agent at once (it may roll
 * back on it); other samples wake it only every SHIFT_WAKEUP_BATCH. A full
 * ring buffer costs the sample, counted, never the packet.
 */
#ifndef SHIFT_SIGNALS_H
#define SHIFT_SIGNALS_H

#include "maps.bpf.h"
#include "parse.h"
#include "conntrack.h"
#include "synslot.h"
#include "ctx.h"

/* linux/icmp.h drags in libc headers the BPF target lacks: the 8 bytes we need. */
struct icmp_hdr_ {
	__u8 type;
	__u8 code;
	__u16 check;
	__u32 rest;
};
#define ICMP_DEST_UNREACH_ 3
#define ICMPV6_DEST_UNREACH_ 1
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

/* Approximate by design: a racy shared counter only paces wakeups. */
__u32 sample_seq = 0;

/*
 * A sample no ring could take, counted by service, color and kind (struct
 * shift_lost). Inline: a function of its own would add a frame to call chains
 * whose stacks are at the 512-byte limit already.
 */
static __always_inline void sample_lost(__u32 service_id, __u32 color, __u32 kind)
{
	struct shift_lost *l;
	__u32 zero = 0;

	l = bpf_map_lookup_elem(&shift_lost, &zero);
	if (!l)
		return;
	__sync_fetch_and_add(&l->n[service_id & (SHIFT_MAX_SERVICES - 1)]
				  [color & (SHIFT_COLORS - 1)][kind & (SHIFT_LOST_KINDS - 1)],
			     1);
	/* Last: shiftd reads the total first, then the counts it covers. */
	__sync_fetch_and_add(&l->total, 1);
}

/* The flow's ids as values: a SYN slot has them too, and a copy would cost stack. */
static __always_inline void emit_sample_ids(__u32 backend_id, __u16 service_id, __u8 color,
					    __u32 flow_hash, __u8 kind, __u64 now, __u64 value,
					    __u16 status, __u8 err)
{
	struct shift_sample *s;
	__u64 flags;

	if (kind == SHIFT_SAMPLE_ERROR)
		s = bpf_ringbuf_reserve(&shift_errors, sizeof(*s), 0);
	else
		s = bpf_ringbuf_reserve(&shift_samples, sizeof(*s), 0);
	if (!s) {
		stat_inc(kind == SHIFT_SAMPLE_ERROR ? SHIFT_STAT_ERRBUF_DROPPED :
						      SHIFT_STAT_RINGBUF_DROPPED);
		sample_lost(service_id, color, kind);
		return;
	}
	s->ts_ns = now;
	s->value_ns = value;
	s->backend_id = backend_id;
	s->service_id = service_id;
	s->color = color;
	s->kind = kind;
	s->status = status;
	s->err = err;
	s->flow_hash = flow_hash; /* shadow pairs blue's answers with its copies by it */
	__builtin_memset(s->pad, 0, sizeof(s->pad));
	/*
	 * An error wakes the agent at once: with flag 0 (the kernel's adaptive
	 * wakeup) a record wakes it when it is the first the agent has not
	 * read, so an agent that has read everything is woken by the error,
	 * and one still reading finds it in the same pass. A forced wakeup
	 * queued an irq_work (a self-IPI) for every error, read or not: about
	 * 10 us of the packet's CPU each in a VM (BENCHMARKS §7v).
	 */
	if (kind == SHIFT_SAMPLE_ERROR)
		flags = 0;
	else
		flags = ++sample_seq % SHIFT_WAKEUP_BATCH ? BPF_RB_NO_WAKEUP : BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(s, flags);
}

static __always_inline void emit_sample(const struct shift_flow *f, __u8 kind, __u64 now,
					__u64 value, __u16 status, __u8 err)
{
	emit_sample_ids(f->backend_id, f->service_id, f->color, f->hash, kind, now, value, status,
			err);
}

/*
 * ns / 1000. The BPF backend leaves a constant divisor as a division, a
 * 64-bit div once JITed; below 2^32 ns (4.3 s: nearly every latency) a
 * multiplication is exact instead (m = ceil(2^41 / 1000); Granlund and
 * Montgomery's condition, as for shift_div10000()).
 */
#define NS_TO_US_M 2199023256ull
_Static_assert(NS_TO_US_M * 1000 - (1ull << 41) <= (1ull << 9), "ns / 1000 below 2^32");

static __always_inline __u64 ns_to_us(__u64 ns)
{
	if (ns >> 32)
		return ns / 1000;
	return (ns * NS_TO_US_M) >> 41;
}

/* Bucket i holds latencies < 2^i microseconds. */
static __always_inline __u32 lat_bucket(__u64 ns)
{
	__u64 us = ns_to_us(ns);
	__u32 b = 0;

	if (us >= (1ull << 16)) {
		us >>= 16;
		b += 16;
	}
	if (us >= (1ull << 8)) {
		us >>= 8;
		b += 8;
	}
	if (us >= (1ull << 4)) {
		us >>= 4;
		b += 4;
	}
	if (us >= (1ull << 2)) {
		us >>= 2;
		b += 2;
	}
	if (us >= 2)
		b += 1;
	b += us ? 1 : 0;
	return b < SHIFT_LAT_BUCKETS ? b : SHIFT_LAT_BUCKETS - 1;
}

static __always_inline void record_latency(__u32 backend_id, __u32 kind, __u64 ns)
{
	__u32 key = backend_id * SHIFT_LAT_KINDS + kind;
	struct shift_lat_hist *h = bpf_map_lookup_elem(&shift_lat_hist, &key);
	__u32 b = lat_bucket(ns);

	if (!h)
		return;
	if (b < SHIFT_LAT_BUCKETS)
		h->bucket[b]++;
	h->sum_ns += ns;
	h->count++;
}

static __always_inline void count_error(__u32 backend_id, __u32 err)
{
	struct shift_backend_stats *st = bpf_map_lookup_elem(&shift_be_stats, &backend_id);

	if (st && err < SHIFT_ERR_MAX)
		st->errors[err]++;
}

static __always_inline void signal_error(struct shift_flow *f, __u8 err, __u64 now, __u64 value,
					 __u16 status)
{
	count_error(f->backend_id, err);
	emit_sample(f, SHIFT_SAMPLE_ERROR, now, value, status, err);
}

/* An error of the handshake a SYN slot's owner word o names. */
static __always_inline void owner_error(const union syn_owner *o, __u8 err, __u64 now)
{
	count_error(o->backend_id, err);
	emit_sample_ids(o->backend_id, o->service_id, SHIFT_SS_COLOR_OF(o->flags), 0,
			SHIFT_SAMPLE_ERROR, now, 0, 0, err);
}

/* Payload bytes the signal readers look at ("HTTP/1.1 200"). */
#define SHIFT_SIG_HEAD 12

/* The mask restates what parse_l4 checked (a TCP header is at most 60 bytes):
 * the verifier does not keep the bound of a value spilled to the stack. */
static __always_inline __u8 *payload(const struct pkt *p)
{
	return p->l4 + (p->l4_hlen & 0x3c);
}

/* The payload's offset in the frame, for the load-bytes helpers. */
static __always_inline __u32 payload_off(const struct pkt *p)
{
	return (__u32)p->l4_off + (p->l4_hlen & 0x3c);
}

/* The payload's length | the TCP flags << 16: one argument of a global call. */
static __always_inline __u32 payload_len_flags(const struct pkt *p)
{
	return p->payload_len | (__u32)p->tcp_flags << 16;
}

/* First 4 payload bytes look like an HTTP/1.x request line. */
static __always_inline int is_http_request(__u32 w)
{
	switch (w) {
	case 0x20544547: /* "GET " */
	case 0x54534f50: /* "POST" */
	case 0x20545550: /* "PUT " */
	case 0x44414548: /* "HEAD" */
	case 0x454c4544: /* "DELE" */
	case 0x43544150: /* "PATC" */
	case 0x4954504f: /* "OPTI" */
		return 1;
	}
	return 0;
}

/*
 * The signal readers below are global functions of scalars and memory
 * (the entry, a copy of the payload's first bytes), not of packet pointers:
 * the verifier checks each once, on its own, rather than once for every
 * state of the forward or return path that reaches it. That is what keeps
 * the programs within 6.1's budget of 1M instructions.
 */
struct sig_head {
	__u8 b[SHIFT_SIG_HEAD];
};

/* The payload's first bytes (zeros past its end), and how many are real. */
static __always_inline __u32 sig_head_copy(const struct pkt *p, void *data_end, struct sig_head *h)
{
	__u8 *pl = payload(p);

	__builtin_memset(h, 0, sizeof(*h));
	if (p->payload_len < SHIFT_SIG_HEAD || (void *)(pl + SHIFT_SIG_HEAD) > data_end) {
		if (p->payload_len >= 4 && (void *)(pl + 4) <= data_end) {
			__builtin_memcpy(h->b, pl, 4);
			return 4;
		}
		return 0;
	}
	__builtin_memcpy(h->b, pl, SHIFT_SIG_HEAD);
	return SHIFT_SIG_HEAD;
}

/* analysis = auto: TLS, cleartext HTTP/2 and plain TCP (global functions). */
#include "l7.h"
/* HTTP/1.x interim responses before the final one in a segment. */
#include "interim.h"

/* A segment of an auto flow, either way: one global call does the reading. */
static __always_inline int l7_signal(const struct sctx *c, struct pkt *p, struct shift_flow *f,
				     __u32 from_backend)
{
	__u32 off = payload_off(p) | (from_backend ? L7_DIR_BACKEND : 0);
	__u32 nf = payload_len_flags(p);
	int r;

	if (c->tc)
		r = l7_tc(c->ctx, f, off, nf, p->l4_off);
	else
		r = l7_xdp(c->ctx, f, off, nf, p->l4_off);
	if (r == L7_AFTER)
		l7_after(f, from_backend | ((p->tcp_flags & TCPF_FIN_) ? 2 : 0));
	return r;
}

/*
 * A client segment that l7_entry() would leave as it found it: most of an
 * established flow's. Outside analysis = auto only a request line counts,
 * when no request is open on an HTTP service; an auto flow read as plain
 * TCP, one whose reading stopped (LOST) and an HTTP/1.x one with a request
 * open wait only for the client's FIN or RST. Answered inline, this spares
 * those segments the global call and its scratch lookup (~20 ns on XDP,
 * ~30 on TC, bench_datapath's established case).
 */
static __always_inline int client_segment_idle(const struct pkt *p, const struct shift_flow *f)
{
	__u32 app = l7_app(f);

	if (app == SHIFT_APP_OFF)
		return !(f->state & SHIFT_FS_SVC_HTTP) || f->req_ns || p->payload_len < 4;
	if (p->tcp_flags & (TCPF_FIN_ | TCPF_RST_))
		return 0;
	/* TCP, LOST and UPGRADED, the last three: one compare. */
	return app >= SHIFT_APP_TCP || (app == SHIFT_APP_HTTP1 && f->req_ns);
}

/*
 * A client packet of a known flow (its SYNs are the SYN slot's business):
 * an HTTP/1.x request line, or what analysis = auto reads, in one global call.
 */
static __always_inline void signal_client(const struct sctx *c, struct pkt *p, struct shift_flow *f)
{
	if (p->proto != IPPROTO_TCP || (p->tcp_flags & TCPF_SYN_) ||
	    (!p->payload_len && !(p->tcp_flags & (TCPF_FIN_ | TCPF_RST_))) ||
	    client_segment_idle(p, f))
		return;
	l7_signal(c, p, f, 0);
}

/* backend_signal(): the status line was an interim one (http1_interim()). */
#define SIG_INTERIM 1

/* A backend packet of flow f, before the reverse NAT: h holds n payload bytes. */
__noinline int backend_signal(struct shift_flow *f, const struct sig_head *h, __u32 n,
			      __u32 tcp_flags)
{
	__u64 now, lat;
	__u32 status, cls, id;

	if (!f || !h)
		return 0;
	if (tcp_flags & TCPF_RST_) {
		/* One error per connection: after its RST a backend answers each
		 * segment still in flight with another (a large upload refused),
		 * and one client's would make a run of consecutive errors. */
		if (f->state & SHIFT_FS_ERR_SEEN)
			return 0;
		f->state |= SHIFT_FS_ERR_SEEN;
		signal_error(f, SHIFT_ERR_RST, bpf_ktime_get_ns(), 0, 0);
		return 0;
	}
	if ((tcp_flags & (TCPF_SYN_ | TCPF_ACK_)) == (TCPF_SYN_ | TCPF_ACK_)) {
		/* Connect latency comes from the SYN slot (signal_syn_answer()). */
		f->state |= SHIFT_FS_SYNACK;
		return 0;
	}
	if (!f->req_ns || n < SHIFT_SIG_HEAD)
		return 0;
	status = http1_status(h->b);
	if (!status)
		return 0;
	/* Not status / 100: a division instruction, on every answer. */
	cls = h->b[9] - '0';
	id = f->backend_id;
	{
		struct shift_backend_stats *st = bpf_map_lookup_elem(&shift_be_stats, &id);

		if (st && cls < 6) {
			/* The 6.1 verifier may lose the bound through a spill. */
			asm volatile("%[c] &= 7" : [c] "+r"(cls));
			st->responses[cls]++;
		}
	}
	/* 1xx is not the answer: the request stays open (the caller looks for
	 * the answer after it, interim.h). But for 101: the connection speaks
	 * another protocol from here on (a WebSocket), whose frames are no
	 * requests and whose close, which RFC 6455 has the server start, is no
	 * request left unanswered. */
	if (http1_interim(status))
		return SIG_INTERIM;
	if (status == 101) {
		f->state &= ~SHIFT_FS_SVC_HTTP;
		if (l7_app(f) != SHIFT_APP_OFF)
			l7_set_app(f, SHIFT_APP_UPGRADED);
	}
	now = bpf_ktime_get_ns();
	lat = now > f->req_ns ? now - f->req_ns : 0;
	f->req_ns = 0;
	record_latency(f->backend_id, SHIFT_LAT_RESPONSE, lat);
	if (cls == 5)
		signal_error(f, SHIFT_ERR_HTTP5XX, now, lat, status);
	else
		emit_sample(f, SHIFT_SAMPLE_RESPONSE, now, lat, status, 0);
	return 0;
}

/*
 * Signals of a backend reply, f its flow's entry (NULL: none yet, as for a
 * SYN-ACK). Only packets that can carry one go further: resets, handshake
 * answers and payload starting like a status line.
 */
static __always_inline void signal_backend(const struct sctx *c, struct pkt *p,
					   struct shift_flow *f, void *data_end)
{
	struct sig_head h;
	__u32 n;

	if (p->proto != IPPROTO_TCP || !f)
		return;
	/* An auto flow reads every segment with payload, and FINs; its HTTP/1.x
	 * status lines go on below. SYN-ACKs and RSTs are the same for all. */
	if ((f->app_flags & SHIFT_AF_APP_MASK) && !(p->tcp_flags & (TCPF_SYN_ | TCPF_RST_)) &&
	    l7_signal(c, p, f, 1) != L7_HTTP1)
		return;
	n = sig_head_copy(p, data_end, &h);
	if (!(p->tcp_flags & (TCPF_SYN_ | TCPF_RST_)) &&
	    (n < 12 || h.b[0] != 'H' || h.b[1] != 'T' || h.b[2] != 'T' || h.b[3] != 'P'))
		return;
	if (backend_signal(f, &h, n, p->tcp_flags) != SIG_INTERIM ||
	    p->payload_len <= SHIFT_SIG_HEAD)
		return;
	/* The answer may follow in the same segment. */
	if (c->tc)
		http1_final_tc(c->ctx, f, payload_off(p), payload_len_flags(p), &h);
	else
		http1_final_xdp(c->ctx, f, payload_off(p), payload_len_flags(p), &h);
}

/*
 * A client SYN of a handshake its slot already holds. It counts as a
 * retransmit of an unanswered SYN (one error per handshake, against the
 * backend that did not answer) only when that backend sent nothing back and
 * it came SHIFT_SYN_RETRANS_MIN_NS or more after the first SYN. Sets
 * SHIFT_SS_ERR_SEEN in the owner word n, and returns 1, when it does.
 */
static __always_inline int syn_again_error(const struct shift_syn_slot *s, union syn_owner *n,
					   __u64 now)
{
	if (n->flags & (SHIFT_SS_ANSWERED | SHIFT_SS_ERR_SEEN) ||
	    syn_slot_age(s, now) < SHIFT_SYN_RETRANS_MIN_NS)
		return 0;
	n->flags |= SHIFT_SS_ERR_SEEN;
	return 1;
}

/*
 * A backend packet of a flow without an entry (a SYN-ACK, a RST, or the bare
 * ACK a backend in TIME_WAIT answers a SYN with), or any SYN-ACK/RST, found
 * in the SYN slot by the reply's client -> VIP hash h. Anything the backend
 * sends back answers the SYN: no SYN-retransmit error after it (a client's
 * quick re-SYN after the backend's ACK or RST is a new attempt). The first
 * SYN-ACK gives the connect latency. A RST that refuses the slot's SYN (a
 * refused connect) is the slot's backend's RST error, as signal_backend()
 * reports one for a flow's own backend; when the 5-tuple still has an older
 * connection's entry (has_entry), SYN_ANSWER_REFUSED tells the caller not to
 * count it against that entry too. With connect_fallback (svc_flags) and a
 * green backend it is also dropped (returns 1): the client retransmits its
 * SYN, which syn_fallback() sends to blue. A SYN-ACK of another backend than the
 * slot's is dropped too (returns 1), and so is one of another backend than
 * the entry's (has_entry) when the slot holds no handshake. A bare ACK
 * answering the slot's SYN (TIME_WAIT) returns SYN_ANSWER_HELD: it is no
 * established flow to adopt. A SYN-ACK's sequence number (num) goes into the
 * slot, for the client's first ACK to acknowledge (syn_slot_acked()).
 *
 * A RST refuses the SYN only when it acknowledges it (num: its
 * acknowledgment number): RFC 9293 answers a segment without ACK with
 * <ACK = its SEQ + 1, RST, ACK>, and a closed port answers a SYN so. A RST
 * without that, or after the backend's SYN-ACK, answers a later client ACK
 * that matched no handshake of the backend's: a blind spoofer's guessed ACK
 * (a real client's first ACK writes the entry, and a RST then is that flow's
 * error), the spoofed SYN before it lost or not yet answered. It is no error
 * and answers nothing.
 *
 * how: the TCP flags (low byte) and SYN_ENTRY_* << 8, so that num fits in a
 * global function's five arguments.
 *
 * A global function of scalars: the verifier checks it once, not once per
 * state of the return path that reaches it (6.1's 1M-instruction budget).
 */
#define SYN_ANSWER_DROP 1 /* green's RST (connect_fallback), a left backend's SYN-ACK */
#define SYN_ANSWER_HELD 2 /* a bare ACK answering the handshake the slot holds */
/* A refusal of the slot's handshake on a 5-tuple whose entry is an older
 * connection's: counted against the slot's backend, so not the entry's too. */
#define SYN_ANSWER_REFUSED 3

/* has_entry: the reply's flow has no entry, one of this backend, one of another. */
#define SYN_ENTRY_NONE 0
#define SYN_ENTRY_SAME 1
#define SYN_ENTRY_OTHER 2

__noinline int syn_answer(__u32 h, __u32 backend_id, __u32 how, __u32 svc_flags, __u32 num)
{
	__u32 tcp_flags = how & 0xff, has_entry = (how >> 8) & 3;
	struct shift_syn_slot *s;
	union syn_owner o, n;
	int i, refused = 0, rst_other;
	__u64 now, lat;

	s = syn_slot(h);
	if (!s || !shift_syn_tag_is(s->hash, h)) {
		if (tcp_flags & TCPF_SYN_)
			stat_inc(SHIFT_STAT_SYN_SLOT_MISS);
		/*
		 * A SYN-ACK the entry's backend did not send, and no handshake
		 * in the slot to re-point the entry to its sender (syn_reuse()):
		 * a backend the handshake left, answering after the first ACK
		 * spent the slot, or a reused 5-tuple whose slot another SYN
		 * took. A client that took it would send its ACK to the entry's
		 * backend and be reset; without it, its retransmitted SYN writes
		 * the slot again and the backend's next SYN-ACK re-points the
		 * entry.
		 */
		if (has_entry == SYN_ENTRY_OTHER &&
		    (tcp_flags & (TCPF_SYN_ | TCPF_RST_)) == TCPF_SYN_) {
			stat_inc(SHIFT_STAT_DROP_SYNACK_MOVED);
			return SYN_ANSWER_DROP;
		}
		return 0;
	}
	/* Whatever entry the 5-tuple has: before the slot's SYN-ACK an entry is
	 * an older connection's (a client reusing its port), and a RST that
	 * acknowledges the slot's SYN refuses the new handshake, not that one. */
	rst_other = (tcp_flags & TCPF_RST_) &&
		    (!(tcp_flags & TCPF_ACK_) || !syn_slot_isn_is(s, num - 1));
	/* Marked answered by compare-and-swap, against the client's
	 * retransmitted SYN moving the handshake at the same moment (syn_again()):
	 * one of the two comes first. */
	for (i = 0; i < SYN_OWNER_TRIES; i++) {
		o.word = syn_owner_read(s);
		if (o.backend_id != backend_id)
			break;
		if ((tcp_flags & TCPF_RST_) && (rst_other || (o.flags & SHIFT_SS_SYNACK)))
			return 0;
		n = o;
		n.flags |= SHIFT_SS_ANSWERED;
		if ((tcp_flags & (TCPF_SYN_ | TCPF_RST_)) == TCPF_SYN_)
			n.flags |= SHIFT_SS_SYNACK;
		refused = (tcp_flags & TCPF_RST_) && (svc_flags & SHIFT_SVC_F_FALLBACK) &&
			  SHIFT_SS_COLOR_OF(o.flags) == SHIFT_GREEN;
		if (refused)
			n.flags |= SHIFT_SS_FALLBACK;
		if (syn_owner_swap(s, o.word, n.word))
			break;
	}
	if (i == SYN_OWNER_TRIES)
		return 0;
	if (o.backend_id != backend_id) {
		/*
		 * A SYN-ACK of a backend the handshake has left: the client's
		 * retransmitted SYN went elsewhere (connect_fallback, or the
		 * weight moved in between) because this backend's answer was
		 * lost or late, and the backend retransmits it about when the
		 * client does. A client that took it would send its ACK to the
		 * slot's backend, which answers with a RST: only the slot's
		 * backend may complete the handshake. The dropped backend's
		 * half-open request times out there.
		 */
		if ((tcp_flags & (TCPF_SYN_ | TCPF_RST_)) == TCPF_SYN_ &&
		    syn_slot_age(s, bpf_ktime_get_ns()) < SHIFT_SYN_SLOT_TTL_NS) {
			stat_inc(SHIFT_STAT_DROP_SYNACK_MOVED);
			return SYN_ANSWER_DROP;
		}
		if (tcp_flags & TCPF_SYN_)
			stat_inc(SHIFT_STAT_SYN_SLOT_MISS);
		return 0;
	}
	if (tcp_flags & TCPF_RST_) {
		/* The slot's backend refused: its error, not the old entry's. */
		owner_error(&o, SHIFT_ERR_RST, bpf_ktime_get_ns());
		if (!refused)
			return has_entry ? SYN_ANSWER_REFUSED : 0;
		stat_inc(SHIFT_STAT_FALLBACK);
		return SYN_ANSWER_DROP;
	}
	if (!(tcp_flags & TCPF_SYN_))
		return SYN_ANSWER_HELD;
	syn_slot_note_synack(s, num);
	if (o.flags & SHIFT_SS_ANSWERED)
		return 0;
	now = bpf_ktime_get_ns();
	lat = syn_slot_age(s, now);
	if (!lat)
		return 0;
	record_latency(o.backend_id, SHIFT_LAT_CONNECT, lat);
	emit_sample_ids(o.backend_id, o.service_id, SHIFT_SS_COLOR_OF(o.flags), 0,
			SHIFT_SAMPLE_CONNECT, now, lat, 0, 0);
	return 0;
}

/* Does a reply read its SYN slot (and so need reply_hash())? */
static __always_inline int reply_wants_slot(const struct pkt *p, const struct shift_flow *entry)
{
	return p->proto == IPPROTO_TCP && (!entry || (p->tcp_flags & (TCPF_SYN_ | TCPF_RST_)));
}

/* h: reply_hash() when reply_wants_slot(). Returns SYN_ANSWER_DROP when the
 * packet is to be dropped (connect_fallback), SYN_ANSWER_HELD for a bare ACK
 * answering the handshake its SYN slot holds, else 0. */
static __always_inline int signal_syn_answer(struct pkt *p, __u32 h,
					     const struct shift_svc_info *info, __u32 backend_id,
					     const struct shift_flow *entry, void *data_end)
{
	__u32 has_entry;

	if (!reply_wants_slot(p, entry))
		return 0;
	has_entry = !entry			    ? SYN_ENTRY_NONE :
		    entry->backend_id == backend_id ? SYN_ENTRY_SAME :
						      SYN_ENTRY_OTHER;
	return syn_answer(h, backend_id, (p->tcp_flags & 0xff) | has_entry << 8, info->flags,
			  (p->tcp_flags & TCPF_RST_) ? tcp_ack_seq(p, data_end) :
						       tcp_seq(p, data_end));
}

/*
 * ICMP destination unreachable from a backend about a packet we sent it:
 * an error for that backend. The message itself goes on to the kernel.
 */
static __always_inline void signal_icmp(struct pkt *p, void *data, void *data_end)
{
	struct shift_addr_key bk;
	struct shift_svc_info *info;
	struct shift_backend *be;
	struct shift_flow *f;
	union flow_key k;
	__u32 *id, sid;
	__u8 *l4;
	__u16 *ports;
	__u32 inner_s[4] = {}, inner_d[4] = {};
	__u8 inner_proto;

	if (p->family == SHIFT_AF_INET) {
		struct iphdr *iph = p->l3, *in;
		struct icmp_hdr_ *ic;

		if ((void *)(iph + 1) > data_end || iph->protocol != IPPROTO_ICMP)
			return;
		l4 = p->l3 + iph->ihl * 4;
		ic = (void *)l4;
		if ((void *)(ic + 1) > data_end || ic->type != ICMP_DEST_UNREACH_)
			return;
		in = (void *)(ic + 1);
		if ((void *)(in + 1) > data_end || in->ihl != 5)
			return;
		inner_proto = in->protocol;
		inner_s[0] = in->saddr;
		inner_d[0] = in->daddr;
		ports = (void *)(in + 1);
	} else {
		struct ipv6hdr *ip6 = p->l3, *in;
		struct icmp_hdr_ *ic;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_ICMPV6)
			return;
		ic = (void *)(ip6 + 1);
		if ((void *)(ic + 1) > data_end || ic->type != ICMPV6_DEST_UNREACH_)
			return;
		in = (void *)(ic + 1);
		if ((void *)(in + 1) > data_end)
			return;
		inner_proto = in->nexthdr;
		__builtin_memcpy(inner_s, &in->saddr, 16);
		__builtin_memcpy(inner_d, &in->daddr, 16);
		ports = (void *)(in + 1);
	}
	if ((inner_proto != IPPROTO_TCP && inner_proto != IPPROTO_UDP) ||
	    (void *)(ports + 2) > data_end)
		return;
	/* Only the backend itself speaks for the backend: anyone else on the
	 * backend side could otherwise forge errors into its rollback triggers. */
	if (p->saddr[0] != inner_d[0] || p->saddr[1] != inner_d[1] || p->saddr[2] != inner_d[2] ||
	    p->saddr[3] != inner_d[3])
		return;
	/* The quoted packet is client -> backend: find the backend, then the flow. */
	__builtin_memset(&bk, 0, sizeof(bk));
	__builtin_memcpy(bk.addr, inner_d, sizeof(bk.addr));
	bk.port = ports[1];
	bk.proto = inner_proto;
	bk.family = p->family;
	id = bpf_map_lookup_elem(&shift_be_idx, &bk);
	if (!id)
		return;
	be = bpf_map_lookup_elem(&shift_backends, id);
	if (!be)
		return;
	sid = be->service_id;
	info = bpf_map_lookup_elem(&shift_svc_info, &sid);
	if (!info)
		return;
	flow_key_fill(&k, p->family, inner_s, info->vip, ports[0], info->vport, inner_proto);
	f = flow_lookup(p->family, &k);
	if (f) {
		signal_error(f, SHIFT_ERR_ICMP_UNREACH, bpf_ktime_get_ns(), 0, 0);
	} else {
		/* No entry: a SYN's (SYNs write none), or any packet of a
		 * service with snat (the quote holds the edge's address, not
		 * the client's). The backend's error all the same, for the
		 * triggers too: with snat a UDP service has no other. */
		count_error(*id, SHIFT_ERR_ICMP_UNREACH);
		emit_sample_ids(*id, (__u16)sid, be->color, 0, SHIFT_SAMPLE_ERROR,
				bpf_ktime_get_ns(), 0, 0, SHIFT_ERR_ICMP_UNREACH);
	}
}

#endif
