// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Stateless SYNs (bpf/synslot.h): a bare SYN writes no connection-table
 * entry, the client's first ACK (seq = ISN + 1, acknowledging the backend's
 * SYN-ACK) writes it and follows the SYN's backend even when the weight moved
 * in between, a blind spoofer's SYN and guessed ACK write nothing, and a
 * reply leaves by the client-side next hop the entry keeps (no FIB lookup).
 */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "shift.skel.h"
#include "datapath/client_nh.h"
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

static __u64 count4(struct harness *h)
{
	return harness_map_count(h->m.fd[SHIFT_MAP_FLOWS4], sizeof(struct shift_flow_key4));
}

static __u64 stat_of(struct harness *h, enum shift_stat s)
{
	__u64 st[SHIFT_STAT_MAX];

	return dp_stats(&h->m, st) ? ~0ull : st[s];
}

/* be 0 (blue) or 1 (green) of SVC_V4_TCP, -1 otherwise. */
static int steer(struct tctx *t, struct harness *h, const struct pkt_spec *s)
{
	__u32 verdict;
	int idx = -1;

	if (!ASSERT_OK(t, harness_steer(h, H_CLIENT, s, topo_backends, 2, &idx, &verdict),
		       "harness_steer"))
		return -1;
	return idx;
}

/*
 * A reply of backend 10.1.0.<octet>:8080 (0 or 1 of SVC_V4_TCP) to the test's
 * client port cport, acknowledgment number ack, run through the backend
 * program as if it came in on ifindex; out gets the frame.
 */
static int backend_reply_ack(struct harness *h, __u16 cport, __u32 ifindex, __u8 octet, __u8 flags,
			     __u16 payload, __u32 seq, __u32 ack, __u8 *out, __u32 *olen,
			     __u32 *verdict)
{
	struct pkt_spec r = REPLY4(BE0A, CL4, IPPROTO_TCP, 8080, cport, .tcp_flags = flags,
				   .payload = payload, .seq = seq, .ack = ack);
	__u8 in[PKT_MAX];
	__u32 len;

	r.smac[5] = octet;
	r.saddr[3] = octet;
	len = pkt_build(&r, in, sizeof(in), NULL);

	*olen = PKT_MAX;
	return harness_run_prog(h, H_BACKEND, in, len, ifindex, out, olen, verdict);
}

/* The same, acknowledgment number 0. */
static int backend_reply_to(struct harness *h, __u16 cport, __u32 ifindex, __u8 octet, __u8 flags,
			    __u16 payload, __u32 seq, __u8 *out, __u32 *olen, __u32 *verdict)
{
	return backend_reply_ack(h, cport, ifindex, octet, flags, payload, seq, 0, out, olen,
				 verdict);
}

/* The same, to client 45000, in on lo. */
static int backend_reply(struct harness *h, __u8 octet, __u8 flags, __u16 payload, __u32 seq,
			 __u8 *out, __u32 *olen, __u32 *verdict)
{
	return backend_reply_to(h, 45000, H_LO_IFINDEX, octet, flags, payload, seq, out, olen,
				verdict);
}

/* Spoofed packet i of a flood: its own source 198.18.128.0/17 and port. */
static void spoofed(struct pkt_spec *x, __u32 i)
{
	x->saddr[0] = 198;
	x->saddr[1] = 18;
	x->saddr[2] = (__u8)(128 + (i >> 8));
	x->saddr[3] = (__u8)i;
	x->sport = (__u16)(1024 + i);
}

/* The entry after idx in a next hop's probes (bpf/client_nh.h). */
static __u32 nh_next(__u32 idx)
{
	return idx >= SHIFT_CLIENT_NHS - 1 ? 1 : idx + 1;
}

/*
 * shiftd retires the next hops of an interface that is gone (its
 * client_nhs_forget(), on lo here): a's SYN-ACK, whose slot names a's retired
 * index, takes the FIB instead of the index; b's SYN passes over the retired
 * entries (its own and a's) while they are in quarantine, and a's SYN claims
 * its old index back once the quarantine is over. a holds index ia, b the
 * next one, ib; b's next hop hashes to ia too.
 */
static void retired_nh(struct tctx *t, struct harness *h, struct pkt_spec *a, struct pkt_spec *b,
		       __u32 ia, __u32 ib, __u32 ifb)
{
	static const __u8 cl_mac[6] = MAC_CLIENT, shv1_mac[6] = FIB_MAC_SHV1;
	int nfd = bpf_map__fd(h->skel->maps.shift_client_nhs);
	struct shift_client_nh e;
	struct shift_syn_slot sl;
	__u32 retired = 0, olen, verdict = 0, idx;
	__u8 out[PKT_MAX];
	__u64 fib1;

	ASSERT_OK(t, client_nhs_forget(nfd, H_LO_IFINDEX, &retired), "client_nhs_forget(lo)");
	ASSERT_TRUE(t, retired >= 2, "a's and b's next hops retired");
	if (!ASSERT_OK(t, harness_client_nh_get(h, ia, &e), "a's entry"))
		return;
	ASSERT_EQ(t, e.ifindex, SHIFT_CLIENT_NH_RETIRED, "a's entry: retired");
	fib1 = stat_of(h, SHIFT_STAT_REPLY_FIB);
	ASSERT_OK(t,
		  backend_reply_ack(h, a->sport, ifb, 11, TH_SYN | TH_ACK, 0, 4000, a->seq + 1, out,
				    &olen, &verdict),
		  "BPF_PROG_TEST_RUN (a's SYN-ACK again, its next hop retired)");
	ASSERT_EQ(t, verdict, harness_expect(h, XDP_REDIRECT), "a's SYN-ACK: by the FIB");
	ASSERT_TRUE(t, olen >= 12 && !memcmp(out, cl_mac, 6) && !memcmp(out + 6, shv1_mac, 6),
		    "a's SYN-ACK: the FIB's MACs, not the retired entry's");
	ASSERT_EQ(t, stat_of(h, SHIFT_STAT_REPLY_FIB) - fib1, 1, "reply_fib (retired)");

	b->seq += 1000;
	ASSERT_EQ(t, steer(t, h, b), 0, "b's SYN, both entries in quarantine: blue");
	if (ASSERT_OK(t, harness_syn_slot_get(h, b, &sl), "b's slot")) {
		idx = sl.hash & SHIFT_SYN_NH_MASK;
		ASSERT_TRUE(t, (sl.flags & SHIFT_SS_NH) && idx == nh_next(ib),
			    "b's slot names the entry after the two in quarantine");
	}
	if (ASSERT_OK(t, harness_client_nh_get(h, ia, &e), "a's entry after b's SYN"))
		ASSERT_EQ(t, e.ifindex, SHIFT_CLIENT_NH_RETIRED, "a's: still retired");
	if (ASSERT_OK(t, harness_client_nh_get(h, ib, &e), "b's old entry after b's SYN"))
		ASSERT_EQ(t, e.ifindex, SHIFT_CLIENT_NH_RETIRED, "b's old: still retired");

	/* Retired a quarantine and a unit ago (the datapath's clock is the
	 * coarse CLOCK_MONOTONIC; a unit is 2^30 ns). */
	if (!ASSERT_OK(t, harness_client_nh_get(h, ia, &e), "a's entry"))
		return;
	e.retired_at -= SHIFT_CLIENT_NH_QUARANTINE + 1;
	ASSERT_OK(t, bpf_map_update_elem(nfd, &ia, &e, BPF_ANY) ? -errno : 0,
		  "a's entry retired long ago");
	a->seq += 1000;
	ASSERT_EQ(t, steer(t, h, a), 0, "a's SYN, the quarantine over: blue");
	if (ASSERT_OK(t, harness_syn_slot_get(h, a, &sl), "a's slot")) {
		ASSERT_TRUE(t, sl.flags & SHIFT_SS_NH, "a's slot names a next hop");
		ASSERT_EQ(t, sl.hash & SHIFT_SYN_NH_MASK, ia, "a's next-hop index: its old one");
	}
	if (ASSERT_OK(t, harness_client_nh_get(h, ia, &e), "the entry after a's SYN")) {
		ASSERT_EQ(t, e.ifindex, H_LO_IFINDEX, "a's entry: lo");
		ASSERT_TRUE(t, !memcmp(e.dmac, a->smac, 6) && !memcmp(e.smac, a->dmac, 6),
			    "a's entry: its SYN's MACs, swapped");
	}
	if (ASSERT_OK(t, harness_client_nh_get(h, ib, &e), "b's old entry after a's SYN"))
		ASSERT_EQ(t, e.ifindex, SHIFT_CLIENT_NH_RETIRED,
			  "b's old: still retired (b has its new one)");
}

/* A client MAC for p other than those of avoid[0..n) whose next hop (on lo)
 * hashes to idx: 0, or -1 without one. */
static int mac_hashing_to(struct pkt_spec *p, __u32 idx, const struct pkt_spec *avoid, int n)
{
	__u32 k;
	int i;

	for (k = 1; k < 65536; k++) {
		p->smac[4] = (__u8)(k >> 8);
		p->smac[5] = (__u8)k;
		for (i = 0; i < n && memcmp(p->smac, avoid[i].smac, 6); i++)
			;
		if (i == n && harness_client_nh_index(H_LO_IFINDEX, p->smac, p->dmac) == idx)
			return 0;
	}
	return -1;
}

TEST(synslot)
{
	struct fixture f = { .seed = H_SEED, .flows4 = 4096, .flows6 = 1024 };
	struct pkt_spec s = PKT4(CL4, VIP4, IPPROTO_TCP, 45000, 80, .payload = 0, .seq = 7000);
	struct harness *h = fixture_get(t, &f);
	struct shift_flow fl;
	__u64 n0, new0, ins0, fib0;
	__u8 out[PKT_MAX];
	__u32 i, ifb, olen, verdict = 0;

	if (!h)
		return;
	/* The veth the replies without an entry come in on (0: none, their FIB
	 * lookup cannot be set up). */
	ifb = (__u32)f.env.if_be;
	if (test_sub(t, "5000 spoofed SYNs: flow_new +5000, no entry, no insert")) {
		struct pkt_spec x = s;

		dp_weight_set(&h->m, SVC_V4_TCP, 3000);
		n0 = count4(h);
		new0 = stat_of(h, SHIFT_STAT_FLOW_NEW);
		ins0 = stat_of(h, SHIFT_STAT_FLOW_INSERT);
		for (i = 0; i < 5000; i++) {
			spoofed(&x, i);
			x.tcp_flags = TH_SYN;
			if (steer(t, h, &x) < 0)
				break;
		}
		ASSERT_EQ(t, count4(h), n0, "connection-table entries after the SYNs");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FLOW_NEW) - new0, 5000, "flow_new");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FLOW_INSERT) - ins0, 0, "flow_insert");
	}
	if (test_sub(t, "the first ACK (ISN + 1) follows its SYN across a weight move")) {
		struct pkt_spec other = s;
		int be;

		dp_weight_set(&h->m, SVC_V4_TCP, 0);
		s.tcp_flags = TH_SYN;
		ASSERT_EQ(t, steer(t, h, &s), 0, "SYN at weight 0: blue");
		ASSERT_OK(t, backend_reply(h, 11, TH_SYN | TH_ACK, 0, 3000, out, &olen, &verdict),
			  "BPF_PROG_TEST_RUN (blue's SYN-ACK)");
		dp_weight_set(&h->m, SVC_V4_TCP, SHIFT_WEIGHT_MAX);
		s.tcp_flags = TH_ACK;
		s.seq = 7001;
		s.ack = 3001;
		be = steer(t, h, &s);
		ASSERT_EQ(t, be, 0, "its first ACK at weight 100 %: still blue");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "entry written by the first ACK")) {
			ASSERT_EQ(t, fl.backend_id, 0, "entry backend");
			ASSERT_TRUE(t, (fl.state & SHIFT_FS_NH) && fl.cl_ifindex == H_LO_IFINDEX,
				    "entry keeps the client-side next hop");
		}
		/* Another client's ACK with no SYN behind it: steered by the weight. */
		other.sport = 45001;
		other.tcp_flags = TH_ACK;
		other.seq = 123;
		ASSERT_EQ(t, steer(t, h, &other), 1, "an ACK without a SYN at 100 %: green");
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
	}
	if (test_sub(t, "a reply leaves by the entry's next hop, no FIB lookup")) {
		static const __u8 cl_mac[6] = MAC_CLIENT, edge_mac[6] = MAC_EDGE;

		fib0 = stat_of(h, SHIFT_STAT_REPLY_FIB);
		if (ASSERT_OK(t, backend_reply(h, 11, TH_ACK, 32, 9000, out, &olen, &verdict),
			      "BPF_PROG_TEST_RUN")) {
			ASSERT_EQ(t, verdict, harness_expect(h, XDP_TX),
				  "verdict (back out of lo)");
			ASSERT_TRUE(t,
				    olen >= 12 && !memcmp(out, cl_mac, 6) &&
					    !memcmp(out + 6, edge_mac, 6),
				    "MACs: to the client's, from the one it addressed");
			ASSERT_EQ(t, stat_of(h, SHIFT_STAT_REPLY_FIB) - fib0, 0, "reply_fib");
		}
	}
	if (test_sub(t,
		     "a reused 5-tuple: the SYN leaves the old entry, the SYN-ACK re-points it")) {
		/* The first subtests left 45000's entry on blue, its handshake done. */
		dp_weight_set(&h->m, SVC_V4_TCP, SHIFT_WEIGHT_MAX);
		s.tcp_flags = TH_SYN;
		s.seq = 50000;
		ASSERT_EQ(t, steer(t, h, &s), 1, "the new SYN at 100 %: green");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "old entry"))
			ASSERT_EQ(t, fl.backend_id, 0, "old entry untouched by the SYN");
		/* Blue answering now (a stale SYN-ACK) re-points nothing. */
		ASSERT_OK(t, backend_reply(h, 11, TH_SYN | TH_ACK, 0, 777, out, &olen, &verdict),
			  "BPF_PROG_TEST_RUN (blue's SYN-ACK)");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "old entry"))
			ASSERT_EQ(t, fl.backend_id, 0, "entry after blue's SYN-ACK");
		ASSERT_OK(t, backend_reply(h, 21, TH_SYN | TH_ACK, 0, 777, out, &olen, &verdict),
			  "BPF_PROG_TEST_RUN (green's SYN-ACK)");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "entry")) {
			ASSERT_EQ(t, fl.backend_id, 1, "entry re-pointed by green's SYN-ACK");
			ASSERT_EQ(t, fl.color, SHIFT_GREEN, "entry color");
			ASSERT_TRUE(t, (fl.state & SHIFT_FS_SYNACK) && (fl.state & SHIFT_FS_NH),
				    "entry state: handshake done, next hop kept");
		}
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
		s.tcp_flags = TH_ACK;
		s.seq = 50001;
		s.ack = 778;
		ASSERT_EQ(t, steer(t, h, &s), 1, "its first ACK, weight back to 0: green");
		/* The slot is spent: a retransmitted SYN-ACK changes nothing more. */
		ASSERT_OK(t, backend_reply(h, 21, TH_SYN | TH_ACK, 0, 777, out, &olen, &verdict),
			  "BPF_PROG_TEST_RUN (green's SYN-ACK again)");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "entry"))
			ASSERT_EQ(t, fl.backend_id, 1, "entry after a retransmitted SYN-ACK");
	}
	if (test_sub(t, "a reused 5-tuple whose SYN slot another SYN took: the SYN-ACK dropped, "
			"the client's retransmit re-points the entry")) {
		__u32 idx = harness_syn_slot_idx(h, harness_hash(&s, h->seed));
		struct shift_syn_slot sl;
		__u64 mv0 = stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED);

		/* 45000's entry is green's now (above); the new connection goes blue. */
		s.tcp_flags = TH_SYN;
		s.seq = 60000;
		ASSERT_EQ(t, steer(t, h, &s), 0, "the new SYN at 0 %: blue");
		if (ASSERT_OK(t,
			      bpf_map_lookup_elem(harness_syn_slots_fd(h), &idx, &sl) ? -errno : 0,
			      "read the slot")) {
			/* another flow's SYN took it (a bit the tag compares: its low
			 * ones repeat the slot's index, or name a next hop) */
			sl.hash ^= 1u << 31;
			ASSERT_OK(t,
				  bpf_map_update_elem(harness_syn_slots_fd(h), &idx, &sl,
						      BPF_EXIST) ?
					  -errno :
					  0,
				  "overwrite the slot");
		}
		ASSERT_OK(t, backend_reply(h, 11, TH_SYN | TH_ACK, 0, 888, out, &olen, &verdict),
			  "BPF_PROG_TEST_RUN (blue's SYN-ACK)");
		ASSERT_EQ(t, verdict, harness_expect(h, XDP_DROP),
			  "blue's SYN-ACK dropped: the entry is green's, no slot says otherwise");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED) - mv0, 1, "synack_moved");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "entry"))
			ASSERT_EQ(t, fl.backend_id, 1, "entry still green's");
		ASSERT_EQ(t, steer(t, h, &s), 0, "the client's retransmitted SYN: blue");
		ASSERT_OK(t, backend_reply(h, 11, TH_SYN | TH_ACK, 0, 888, out, &olen, &verdict),
			  "BPF_PROG_TEST_RUN (blue's SYN-ACK again)");
		ASSERT_TRUE(t, verdict != harness_expect(h, XDP_DROP), "now it goes on");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "entry"))
			ASSERT_EQ(t, fl.backend_id, 0, "entry re-pointed to blue");
		s.tcp_flags = TH_ACK;
		s.seq = 60001;
		s.ack = 889;
		ASSERT_EQ(t, steer(t, h, &s), 0, "its first ACK: blue");
	}
	if (test_sub(t, "a blind spoofer's SYN and guessed ACK: no entry, ack_unmatched, the "
			"backend's RST no error; the real first ACK completes")) {
		struct pkt_spec b = s;
		struct shift_backend_stats bs;
		__u64 un0 = stat_of(h, SHIFT_STAT_ACK_UNMATCHED), ins1, rst0 = ~0ull;

		if (ASSERT_OK(t, harness_be_stats(h, 0, &bs), "blue's stats"))
			rst0 = bs.errors[SHIFT_ERR_RST];
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
		b.sport = 45100;
		b.tcp_flags = TH_SYN;
		b.seq = 8000;
		ASSERT_EQ(t, steer(t, h, &b), 0, "SYN at 0 %: blue");
		dp_weight_set(&h->m, SVC_V4_TCP, SHIFT_WEIGHT_MAX);
		ins1 = stat_of(h, SHIFT_STAT_FLOW_INSERT);
		/* Sent at once after the SYN, before any SYN-ACK went by. */
		b.tcp_flags = TH_ACK;
		b.seq = 8001;
		b.ack = 12345;
		ASSERT_EQ(t, steer(t, h, &b), 1,
			  "the ACK before the SYN-ACK: by the weight (green)");
		ASSERT_OK(t,
			  backend_reply_to(h, 45100, H_LO_IFINDEX, 11, TH_SYN | TH_ACK, 0, 20000,
					   out, &olen, &verdict),
			  "BPF_PROG_TEST_RUN (blue's SYN-ACK)");
		b.ack = 999; /* a guess after it: wrong but for 1 in 2^20 */
		ASSERT_EQ(t, steer(t, h, &b), 1, "a guessed ACK after the SYN-ACK: by the weight");
		ASSERT_EQ(t, harness_flow_get(h, &b, &fl), -ENOENT, "no entry from the guesses");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FLOW_INSERT) - ins1, 0, "flow_insert");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_ACK_UNMATCHED) - un0, 2, "ack_unmatched");
		/* Blue refuses a guessed ACK that reached it (seq = its ack number). */
		ASSERT_OK(t,
			  backend_reply_to(h, 45100, H_LO_IFINDEX, 11, TH_RST, 0, 12345, out, &olen,
					   &verdict),
			  "BPF_PROG_TEST_RUN (blue's RST)");
		ASSERT_TRUE(t, verdict != harness_expect(h, XDP_DROP), "the RST goes on");
		if (ASSERT_OK(t, harness_be_stats(h, 0, &bs), "blue's stats"))
			ASSERT_EQ(t, bs.errors[SHIFT_ERR_RST] - rst0, 0,
				  "a RST after the SYN-ACK is no RST error of blue's");
		b.ack = 20001;
		ASSERT_EQ(t, steer(t, h, &b), 0, "the real first ACK: blue, the SYN's backend");
		if (ASSERT_OK(t, harness_flow_get(h, &b, &fl), "entry"))
			ASSERT_EQ(t, fl.backend_id, 0, "entry backend");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_ACK_UNMATCHED) - un0, 2,
			  "ack_unmatched after it");
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
	}
	if (test_sub(t, "a RST refuses the SYN only when it acknowledges it: one that does not is "
			"no error")) {
		/* flags, acknowledgment number, counted as a refusal? */
		static const struct {
			__u8 flags;
			__u32 ack;
			int refusal;
		} rsts[] = {
			{ TH_RST, 0, 0 }, /* a RST of an ACK segment (seq = its ack) */
			{ TH_RST | TH_ACK, 8201, 0 }, /* acknowledges another ISN */
			{ TH_RST | TH_ACK, 8101, 1 }, /* a closed port's answer to the SYN */
		};
		struct shift_backend_stats bs;
		__u64 rst0 = ~0ull;
		__u32 k;

		dp_weight_set(&h->m, SVC_V4_TCP, 0);
		for (k = 0; k < sizeof(rsts) / sizeof(rsts[0]); k++) {
			struct pkt_spec b = s;
			__u16 port = (__u16)(45110 + k);

			if (ASSERT_OK(t, harness_be_stats(h, 0, &bs), "blue's stats"))
				rst0 = bs.errors[SHIFT_ERR_RST];
			b.sport = port;
			b.tcp_flags = TH_SYN;
			b.seq = 8100;
			ASSERT_EQ(t, steer(t, h, &b), 0, "SYN at 0 %: blue");
			ASSERT_OK(t,
				  backend_reply_ack(h, port, H_LO_IFINDEX, 11, rsts[k].flags, 0,
						    4444, rsts[k].ack, out, &olen, &verdict),
				  "BPF_PROG_TEST_RUN (blue's RST)");
			ASSERT_TRUE(t, verdict != harness_expect(h, XDP_DROP), "the RST goes on");
			if (ASSERT_OK(t, harness_be_stats(h, 0, &bs), "blue's stats"))
				ASSERT_EQ(t, bs.errors[SHIFT_ERR_RST] - rst0,
					  (__u64)rsts[k].refusal, "blue's RST errors");
		}
	}
	if (test_sub(t, "5000 spoofed ACKs: steered, no entry, no insert, syn_slot_miss "
			"(+ ack_unmatched) +5000")) {
		struct pkt_spec x = s;
		__u64 miss0 = stat_of(h, SHIFT_STAT_SYN_SLOT_MISS);
		__u64 un0 = stat_of(h, SHIFT_STAT_ACK_UNMATCHED);

		dp_weight_set(&h->m, SVC_V4_TCP, 3000);
		n0 = count4(h);
		ins0 = stat_of(h, SHIFT_STAT_FLOW_INSERT);
		for (i = 0; i < 5000; i++) {
			spoofed(&x, i);
			x.seq = 0x9e3779b9u * (i + 1);
			x.tcp_flags = i & 1 ? TH_ACK : TH_ACK | TH_PSH;
			x.payload = i & 1 ? 0 : 100;
			if (steer(t, h, &x) < 0)
				break;
		}
		ASSERT_EQ(t, i, 5000, "every spoofed ACK forwarded");
		ASSERT_EQ(t, count4(h), n0, "connection-table entries after the ACKs");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FLOW_INSERT) - ins0, 0, "flow_insert");
		/* These tuples' slots still hold the first subtest's spoofed SYNs:
		 * an ACK whose sequence number looks like its SYN's + 1 (1 in 4096)
		 * is an unmatched first ACK instead of a miss. */
		ASSERT_EQ(t,
			  stat_of(h, SHIFT_STAT_SYN_SLOT_MISS) - miss0 +
				  stat_of(h, SHIFT_STAT_ACK_UNMATCHED) - un0,
			  5000, "syn_slot_miss + ack_unmatched");
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
	}
	if (test_sub(t, "a SYN-ACK goes back the way its SYN came, no FIB lookup; a SYN whose "
			"next hop's index another holds takes the next one, and leaves its "
			"SYN-ACK to the FIB when its four are taken; a next hop retired (its "
			"interface gone) sends its SYN-ACKs to the FIB and its index to a SYN "
			"after its quarantine")) {
		static const __u8 cl_mac[6] = MAC_CLIENT, edge_mac[6] = MAC_EDGE,
				  shv1_mac[6] = FIB_MAC_SHV1;
		struct pkt_spec a = s, b = s, c = s;
		struct shift_syn_slot sl;
		__u32 ia = 0, ib;
		__u64 fib1;

		if (!ifb) {
			test_skip(
				t,
				"no veth pair: a SYN-ACK without its SYN's next hop needs the FIB");
			goto nh_done;
		}
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
		a.sport = 47000;
		a.tcp_flags = TH_SYN;
		a.seq = 9000;
		ASSERT_EQ(t, steer(t, h, &a), 0, "a's SYN (in on lo): blue");
		if (ASSERT_OK(t, harness_syn_slot_get(h, &a, &sl), "a's slot")) {
			ia = harness_client_nh_index(H_LO_IFINDEX, a.smac, a.dmac);
			ASSERT_TRUE(t, sl.flags & SHIFT_SS_NH, "a's slot names a next hop");
			ASSERT_EQ(t, sl.hash & SHIFT_SYN_NH_MASK, ia, "a's next-hop index");
		}
		fib1 = stat_of(h, SHIFT_STAT_REPLY_FIB);
		ASSERT_OK(t,
			  backend_reply_ack(h, 47000, ifb, 11, TH_SYN | TH_ACK, 0, 4000, 9001, out,
					    &olen, &verdict),
			  "BPF_PROG_TEST_RUN (a's SYN-ACK, in on shv0)");
		ASSERT_EQ(t, verdict, harness_expect(h, XDP_REDIRECT),
			  "a's SYN-ACK: redirected to lo");
		ASSERT_TRUE(t,
			    olen >= 12 && !memcmp(out, cl_mac, 6) && !memcmp(out + 6, edge_mac, 6),
			    "a's SYN-ACK: the SYN's MACs, swapped");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_REPLY_FIB) - fib1, 0, "reply_fib (a)");

		/* b: a client MAC whose next hop hashes to a's index, which a's holds:
		 * it takes the next entry. */
		ib = nh_next(ia);
		if (!ASSERT_OK(t, mac_hashing_to(&b, ia, &a, 1),
			       "a client MAC whose next hop shares a's index"))
			goto nh_done;
		b.sport = 47001;
		b.tcp_flags = TH_SYN;
		b.seq = 9100;
		ASSERT_EQ(t, steer(t, h, &b), 0, "b's SYN: blue");
		if (ASSERT_OK(t, harness_syn_slot_get(h, &b, &sl), "b's slot")) {
			ASSERT_TRUE(t, sl.flags & SHIFT_SS_NH, "b's slot names a next hop");
			ASSERT_EQ(t, sl.hash & SHIFT_SYN_NH_MASK, ib,
				  "b's next-hop index: the one after a's");
		}
		fib1 = stat_of(h, SHIFT_STAT_REPLY_FIB);
		ASSERT_OK(t,
			  backend_reply_ack(h, 47001, ifb, 11, TH_SYN | TH_ACK, 0, 4100, 9101, out,
					    &olen, &verdict),
			  "BPF_PROG_TEST_RUN (b's SYN-ACK)");
		ASSERT_EQ(t, verdict, harness_expect(h, XDP_REDIRECT),
			  "b's SYN-ACK: redirected to lo");
		ASSERT_TRUE(t, olen >= 12 && !memcmp(out, b.smac, 6) && !memcmp(out + 6, b.dmac, 6),
			    "b's SYN-ACK: b's SYN's MACs, swapped");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_REPLY_FIB) - fib1, 0, "reply_fib (b)");

		/* c: a third next hop hashing there, the two entries after b's taken
		 * (by an interface this test makes up): every probe taken, the FIB. */
		{
			struct shift_client_nh fake = { .ifindex = 0x7ffffff0 }, e;
			int nfd = bpf_map__fd(h->skel->maps.shift_client_nhs);
			struct pkt_spec avoid[2] = { a, b };
			__u32 fk[2] = { nh_next(ib), nh_next(nh_next(ib)) }, j, made[2] = { 0 };

			for (j = 0; j < 2; j++) {
				if (harness_client_nh_get(h, fk[j], &e) || e.ifindex)
					continue; /* taken already */
				made[j] = !bpf_map_update_elem(nfd, &fk[j], &fake, BPF_ANY);
				ASSERT_TRUE(t, made[j], "an entry taken by a made-up interface");
			}
			if (ASSERT_OK(t, mac_hashing_to(&c, ia, avoid, 2),
				      "a third client MAC whose next hop shares a's index")) {
				c.sport = 47002;
				c.tcp_flags = TH_SYN;
				c.seq = 9200;
				ASSERT_EQ(t, steer(t, h, &c), 0, "c's SYN: blue");
				if (ASSERT_OK(t, harness_syn_slot_get(h, &c, &sl), "c's slot"))
					ASSERT_TRUE(
						t, !(sl.flags & SHIFT_SS_NH),
						"c's slot names no next hop (its four probes taken)");
				fib1 = stat_of(h, SHIFT_STAT_REPLY_FIB);
				ASSERT_OK(t,
					  backend_reply_ack(h, 47002, ifb, 11, TH_SYN | TH_ACK, 0,
							    4200, 9201, out, &olen, &verdict),
					  "BPF_PROG_TEST_RUN (c's SYN-ACK)");
				ASSERT_EQ(t, verdict, harness_expect(h, XDP_REDIRECT),
					  "c's SYN-ACK: by the FIB");
				ASSERT_TRUE(
					t,
					olen >= 12 && !memcmp(out, cl_mac, 6) &&
						!memcmp(out + 6, shv1_mac, 6),
					"c's SYN-ACK: the FIB's MACs (shv1 towards the client)");
				ASSERT_EQ(t, stat_of(h, SHIFT_STAT_REPLY_FIB) - fib1, 1,
					  "reply_fib (c)");
			}
			/* Free again: nothing but this test saw the made-up interface. */
			for (j = 0; j < 2; j++) {
				struct shift_client_nh zero_nh = { 0 };

				if (made[j])
					bpf_map_update_elem(nfd, &fk[j], &zero_nh, BPF_ANY);
			}
		}
		/* A SYN-ACK that acknowledges no SYN of the slot: the FIB too. */
		fib1 = stat_of(h, SHIFT_STAT_REPLY_FIB);
		ASSERT_OK(t,
			  backend_reply_ack(h, 47000, ifb, 11, TH_SYN | TH_ACK, 0, 4000, 7777, out,
					    &olen, &verdict),
			  "BPF_PROG_TEST_RUN (a SYN-ACK of another ISN)");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_REPLY_FIB) - fib1, 1, "reply_fib (another ISN)");
		retired_nh(t, h, &a, &b, ia, ib, ifb);
nh_done:;
	}
	if (test_sub(t, "a flow met in mid-stream: the backend's answer writes its entry")) {
		struct pkt_spec m = s;
		__u64 fib1;

		m.sport = 46000;
		m.tcp_flags = TH_ACK | TH_PSH;
		m.seq = 424242;
		m.payload = 64;
		dp_weight_set(&h->m, SVC_V4_TCP, SHIFT_WEIGHT_MAX);
		ASSERT_EQ(t, steer(t, h, &m), 1, "mid-stream packet at 100 %: green");
		ASSERT_EQ(t, harness_flow_get(h, &m, &fl), -ENOENT, "no entry after it");
		if (!ifb) {
			test_skip(t, "no veth pair: a reply without an entry needs the FIB");
			goto midstream_done;
		}
		ins0 = stat_of(h, SHIFT_STAT_FLOW_INSERT);
		ASSERT_OK(t,
			  backend_reply_to(h, 46000, ifb, 21, TH_RST, 0, 1, out, &olen, &verdict),
			  "BPF_PROG_TEST_RUN (green's RST)");
		ASSERT_EQ(t, harness_flow_get(h, &m, &fl), -ENOENT, "no entry after a RST");
		ASSERT_OK(t,
			  backend_reply_to(h, 46000, ifb, 21, TH_SYN | TH_ACK, 0, 1, out, &olen,
					   &verdict),
			  "BPF_PROG_TEST_RUN (green's SYN-ACK)");
		ASSERT_EQ(t, harness_flow_get(h, &m, &fl), -ENOENT, "no entry after a SYN-ACK");
		fib0 = stat_of(h, SHIFT_STAT_REPLY_FIB);
		ASSERT_OK(t,
			  backend_reply_to(h, 46000, ifb, 21, TH_ACK, 200, 5000, out, &olen,
					   &verdict),
			  "BPF_PROG_TEST_RUN (green's data)");
		ASSERT_EQ(t, verdict, harness_expect(h, XDP_REDIRECT), "verdict (by the FIB)");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_REPLY_FIB) - fib0, 1, "reply_fib");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FLOW_INSERT) - ins0, 1, "flow_insert");
		if (ASSERT_OK(t, harness_flow_get(h, &m, &fl), "entry written by the answer")) {
			ASSERT_EQ(t, fl.backend_id, 1, "entry backend");
			ASSERT_EQ(t, fl.color, SHIFT_GREEN, "entry color");
			ASSERT_EQ(t, fl.service_id, SVC_V4_TCP, "entry service");
			ASSERT_EQ(t, fl.hash, harness_hash(&m, h->seed), "entry hash");
			ASSERT_TRUE(t,
				    (fl.state & SHIFT_FS_SYNACK) && (fl.state & SHIFT_FS_NH) &&
					    fl.cl_ifindex == (__u32)f.env.if_cl,
				    "entry state: established, the FIB's next hop to the client");
		}
		/* Pinned: the weight moves, the flow stays. */
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
		m.seq += 64;
		ASSERT_EQ(t, steer(t, h, &m), 1, "its next packet at weight 0: still green");
		fib1 = stat_of(h, SHIFT_STAT_REPLY_FIB);
		ASSERT_OK(t,
			  backend_reply_to(h, 46000, ifb, 21, TH_ACK, 200, 5200, out, &olen,
					   &verdict),
			  "BPF_PROG_TEST_RUN (green's next answer)");
		ASSERT_EQ(t, verdict, harness_expect(h, XDP_REDIRECT),
			  "verdict (by the entry's next hop)");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_REPLY_FIB) - fib1, 0, "reply_fib");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FLOW_INSERT) - ins0, 1, "no second insert");
midstream_done:;
	}
	if (test_sub(t, "rolled back: green's answers write no entry (after --evict), blue's do")) {
		struct pkt_spec g = s, b = s;

		g.sport = 46002;
		b.sport = 46003;
		dp_weight_set(&h->m, SVC_V4_TCP, SHIFT_WEIGHT_LATCHED);
		if (!ifb) {
			test_skip(t, "no veth pair: a reply without an entry needs the FIB");
		} else {
			ASSERT_OK(t,
				  backend_reply_to(h, 46002, ifb, 21, TH_ACK, 100, 1, out, &olen,
						   &verdict),
				  "BPF_PROG_TEST_RUN (green's data)");
			ASSERT_EQ(t, verdict, harness_expect(h, XDP_REDIRECT),
				  "verdict (green's answer still reaches its client)");
			ASSERT_EQ(t, harness_flow_get(h, &g, &fl), -ENOENT, "no entry for green");
			ASSERT_OK(t,
				  backend_reply_to(h, 46003, ifb, 11, TH_ACK, 100, 1, out, &olen,
						   &verdict),
				  "BPF_PROG_TEST_RUN (blue's data)");
			if (ASSERT_OK(t, harness_flow_get(h, &b, &fl), "blue's entry"))
				ASSERT_EQ(t, fl.backend_id, 0, "blue's entry backend");
		}
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
	}
	if (test_sub(t, "a backend in TIME_WAIT answering a SYN with a bare ACK: no entry")) {
		struct pkt_spec y = s;

		y.sport = 46001;
		y.tcp_flags = TH_SYN;
		y.seq = 31337;
		dp_weight_set(&h->m, SVC_V4_TCP, 0);
		ASSERT_EQ(t, steer(t, h, &y), 0, "the SYN at 0 %: blue");
		if (!ifb) {
			test_skip(t, "no veth pair: a reply without an entry needs the FIB");
		} else {
			ASSERT_OK(t,
				  backend_reply_to(h, 46001, ifb, 11, TH_ACK, 0, 99, out, &olen,
						   &verdict),
				  "BPF_PROG_TEST_RUN (blue's bare ACK)");
			ASSERT_EQ(t, verdict, harness_expect(h, XDP_REDIRECT), "verdict");
			ASSERT_EQ(t, harness_flow_get(h, &y, &fl), -ENOENT,
				  "no entry: the ACK answers the SYN its slot holds");
		}
	}
	fixture_put(&f);
}

/*
 * syn_slots sizes the array, and the programs index the array they were
 * loaded with: two flows whose hashes agree in their low 12 bits but not in
 * their low 15 share a slot of a 4096-slot array (they would not of the
 * default's), and the second SYN takes the first one's slot.
 */
TEST(synslot_sized)
{
	struct fixture f = { .seed = H_SEED, .flows4 = 4096, .flows6 = 1024, .syn_slots = 4096 };
	struct pkt_spec a = PKT4(CL4, VIP4, IPPROTO_TCP, 45000, 80, .payload = 0, .seq = 7000,
				 .tcp_flags = TH_SYN);
	struct pkt_spec b = a;
	struct harness *h = fixture_get(t, &f);
	struct shift_syn_slot sl;
	struct bpf_map_info info;
	__u32 ha, hb = 0, i, ilen = sizeof(info);

	if (!h)
		return;
	if (test_sub(t, "syn_slots = 4096: the array's size, and a SYN's slot is hash & 4095")) {
		memset(&info, 0, sizeof(info));
		if (ASSERT_OK(t, bpf_obj_get_info_by_fd(harness_syn_slots_fd(h), &info, &ilen),
			      "map info"))
			ASSERT_EQ(t, info.max_entries, 4096, "shift_syns max_entries");
		ha = harness_hash(&a, h->seed);
		for (i = 1; i < 65536; i++) {
			b.sport = (__u16)(45000 + i);
			hb = harness_hash(&b, h->seed);
			if ((hb & 4095) == (ha & 4095) && (hb & 32767) != (ha & 32767))
				break;
		}
		if (ASSERT_TRUE(t, i < 65536, "a port whose hash shares a's slot")) {
			ASSERT_TRUE(t, steer(t, h, &a) >= 0, "a's SYN steered");
			if (ASSERT_OK(t, harness_syn_slot_get(h, &a, &sl), "slot"))
				ASSERT_TRUE(t, shift_syn_tag_is(sl.hash, ha),
					    "a's SYN in slot hash & 4095");
			ASSERT_TRUE(t, steer(t, h, &b) >= 0, "b's SYN steered");
			if (ASSERT_OK(t, harness_syn_slot_get(h, &a, &sl), "slot"))
				ASSERT_TRUE(t, shift_syn_tag_is(sl.hash, hb),
					    "b's SYN took the same slot");
		}
	}
	fixture_put(&f);
}
