// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The runner of the packet tables (see table.h); the tables are in test_forward.c
 * and test_return.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "table.h"

/* Counters no row pins: samples the ring buffer could not take (nobody reads
 * it here) and the informational "VIP address, other port" pass. */
/* Inserts, SYN-slot misses and FIB'ed replies follow from each row's history
 * (was there a SYN before?): test_synslot.c checks them. */
#define STAT_IGNORED                                                                  \
	(STAT_BIT(SHIFT_STAT_RINGBUF_DROPPED) | STAT_BIT(SHIFT_STAT_PASS_VIP_OTHER) | \
	 STAT_BIT(SHIFT_STAT_FLOW_INSERT) | STAT_BIT(SHIFT_STAT_SYN_SLOT_MISS) |      \
	 STAT_BIT(SHIFT_STAT_REPLY_FIB))

static const char *verdict_name(__u32 v)
{
	switch (v) {
	case XDP_ABORTED:
		return "XDP_ABORTED";
	case XDP_DROP:
		return "XDP_DROP";
	case XDP_PASS:
		return "XDP_PASS";
	case XDP_TX:
		return "XDP_TX";
	case XDP_REDIRECT:
		return "XDP_REDIRECT";
	default:
		return "?";
	}
}

static const struct topo_backend *topo_be(__u32 id)
{
	__u32 i;

	for (i = 0; i < topo_n_backends; i++)
		if (topo_backends[i].id == id)
			return &topo_backends[i];
	return NULL;
}

static void set_macs(struct pkt_spec *s, enum mac_kind k, const struct topo_backend *b)
{
	static const __u8 nh_src[6] = MAC_NH_SRC, shv0[6] = FIB_MAC_SHV0, shv1[6] = FIB_MAC_SHV1,
			  be_mac[6] = FIB_MAC_BE, client[6] = MAC_CLIENT, edge[6] = MAC_EDGE;

	switch (k) {
	case MACS_KEEP:
		break;
	case MACS_NH:
		memcpy(s->smac, nh_src, 6);
		memcpy(s->dmac, b->mac, 6);
		break;
	case MACS_FIB_BE:
		memcpy(s->smac, shv0, 6);
		memcpy(s->dmac, be_mac, 6);
		break;
	case MACS_FIB_CL:
		memcpy(s->smac, shv1, 6);
		memcpy(s->dmac, client, 6);
		break;
	case MACS_SYN_CL:
		memcpy(s->smac, edge, 6);
		memcpy(s->dmac, client, 6);
		break;
	}
}

/* The expected output frame, built from scratch. Returns its length (0: none). */
static __u32 expected_frame(const struct row *r, const __u8 *in, __u32 len, __u8 *exp)
{
	const struct topo_backend *b = r->be ? topo_be(r->be - 1) : NULL;
	struct pkt_spec s = r->in;

	switch (r->out) {
	case OUT_NONE:
		return 0;
	case OUT_SAME:
		memcpy(exp, in, len);
		return len;
	case OUT_DNAT:
		if (!b)
			return 0;
		memcpy(s.daddr, b->addr, 16);
		s.dport = b->port;
		break;
	case OUT_SNAT:
		if (!b)
			return 0;
		memcpy(s.saddr, topo_services[b->svc].vip, 16);
		s.sport = topo_services[b->svc].port;
		break;
	}
	s.ttl--;
	set_macs(&s, r->macs, b);
	return pkt_build(&s, exp, PKT_MAX, NULL);
}

static bool check_stats(struct tctx *t, const struct row *r, const __u64 *before,
			const __u64 *after)
{
	bool ok = true;
	int i;

	for (i = 0; i < SHIFT_STAT_MAX; i++) {
		if ((STAT_IGNORED | r->dontcare) & STAT_BIT(i))
			continue;
		if (after[i] - before[i] != r->st[i]) {
			test_failf(t, __FILE__, __LINE__, "counter %s moved by %llu, expected %u",
				   dp_stat_name(i), (unsigned long long)(after[i] - before[i]),
				   r->st[i]);
			ok = false;
		}
	}
	return ok;
}

struct be_snap {
	__u64 v[5]; /* packets, bytes, new_flows, reply_packets, reply_bytes */
};

static int be_snapshot(struct harness *h, struct be_snap *s)
{
	struct shift_backend_stats st;
	__u32 i;
	int err;

	for (i = 0; i < topo_n_backends; i++) {
		err = harness_be_stats(h, topo_backends[i].id, &st);
		if (err)
			return err;
		s[i].v[0] = st.packets;
		s[i].v[1] = st.bytes;
		s[i].v[2] = st.new_flows;
		s[i].v[3] = st.reply_packets;
		s[i].v[4] = st.reply_bytes;
	}
	return 0;
}

static void check_be_stats(struct tctx *t, const struct row *r, __u32 len, const struct be_snap *b0,
			   const struct be_snap *b1)
{
	static const char *const names[5] = { "packets", "bytes", "new_flows", "reply_packets",
					      "reply_bytes" };
	__u32 i, k;

	if (r->be_unchecked)
		return;
	for (i = 0; i < topo_n_backends; i++) {
		__u64 want[5] = { 0 };

		if (r->be && topo_backends[i].id == r->be - 1) {
			if (r->prog == H_BACKEND || r->out == OUT_SNAT) {
				want[3] = 1;
				want[4] = len;
			} else {
				want[0] = 1;
				want[1] = len;
				want[2] = r->new_flow;
			}
		}
		for (k = 0; k < 5; k++) {
			__u64 d = b1[i].v[k] - b0[i].v[k];

			if (d != want[k])
				test_failf(t, __FILE__, __LINE__,
					   "backend %u %s moved by %llu, expected %llu",
					   topo_backends[i].id, names[k], (unsigned long long)d,
					   (unsigned long long)want[k]);
		}
	}
}

/*
 * The next hop a bare SYN (in, in on ifindex) left for its SYN-ACK: its slot
 * s names it, with the SYN's interface and MACs swapped, unless its index
 * holds another next hop (written once, never replaced).
 */
static void check_syn_nh(struct tctx *t, struct harness *h, const struct shift_syn_slot *s,
			 __u32 ifindex, const struct pkt_spec *in)
{
	__u32 idx = harness_client_nh_index(ifindex, in->smac, in->dmac);
	struct shift_client_nh e;
	bool mine;

	if (!ASSERT_OK(t, harness_client_nh_get(h, idx, &e), "shift_client_nhs lookup"))
		return;
	mine = e.ifindex == ifindex && !memcmp(e.dmac, in->smac, 6) && !memcmp(e.smac, in->dmac, 6);
	if (!(s->flags & SHIFT_SS_NH)) {
		ASSERT_TRUE(t, e.ifindex && !mine,
			    "a SYN slot without a next hop: its index holds another one");
		return;
	}
	ASSERT_EQ(t, s->hash & SHIFT_SYN_NH_MASK, idx, "the SYN slot's next-hop index");
	ASSERT_TRUE(t, mine, "the SYN slot's next hop: the SYN's interface, its MACs swapped");
}

static void check_flow_entry(struct tctx *t, struct harness *h, const struct row *r, __u32 ifindex)
{
	const struct topo_backend *b = topo_be(r->be - 1);
	struct shift_syn_slot s;
	struct shift_flow f;

	if (!b)
		return;
	if (r->no_entry) {
		ASSERT_EQ(t, harness_flow_get(h, &r->in, &f), -ENOENT,
			  "no connection-table entry for a TCP packet without its handshake");
		return;
	}
	/* A bare SYN is steered statelessly: no entry, its SYN slot says where it went. */
	if (r->in.proto == IPPROTO_TCP && (r->in.tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN) {
		ASSERT_EQ(t, harness_flow_get(h, &r->in, &f), -ENOENT,
			  "no connection-table entry for a bare SYN");
		if (!ASSERT_OK(t, harness_syn_slot_get(h, &r->in, &s), "SYN slot"))
			return;
		ASSERT_TRUE(t, shift_syn_tag_is(s.hash, harness_hash(&r->in, h->seed)),
			    "SYN slot tag");
		check_syn_nh(t, h, &s, ifindex, &r->in);
		ASSERT_EQ(t, s.backend_id, b->id, "SYN slot backend_id");
		ASSERT_EQ(t, s.service_id, b->svc, "SYN slot service_id");
		ASSERT_EQ(t, SHIFT_SS_COLOR_OF(s.flags), b->color, "SYN slot color");
		return;
	}
	if (!ASSERT_OK(t, harness_flow_get(h, &r->in, &f), "connection-table entry"))
		return;
	ASSERT_EQ(t, f.backend_id, b->id, "entry backend_id");
	ASSERT_EQ(t, f.hash, harness_hash(&r->in, h->seed), "entry hash vs userspace hash");
	ASSERT_EQ(t, f.service_id, b->svc, "entry service_id");
	ASSERT_EQ(t, f.color, b->color, "entry color");
}

/* Does the row's outcome depend on the routes and neighbours of fib_env_setup()? */
static bool row_needs_fib(const struct row *r)
{
	const struct topo_backend *b = r->be ? topo_be(r->be - 1) : NULL;

	return r->ingress != IN_LO || r->prog == H_BACKEND || r->macs == MACS_FIB_BE ||
	       r->macs == MACS_FIB_CL || (b && !b->nh);
}

void table_run_row(struct tctx *t, struct harness *h, const struct fib_env *env,
		   const struct row *r)
{
	__u8 in[PKT_MAX], out[PKT_MAX], exp[PKT_MAX];
	struct be_snap b0[32], b1[32];
	__u64 s0[SHIFT_STAT_MAX], s1[SHIFT_STAT_MAX];
	__u32 len, olen = sizeof(out), elen, verdict = ~0u, ifindex, i;
	struct pkt_layout lo;
	struct pkt_info info;
	char why[160];
	int err;

	if (!env->if_be && row_needs_fib(r)) {
		test_skip(t, "no veth pair in this kernel: the FIB branch cannot be set up");
		return;
	}
	if (topo_n_backends > 32) {
		test_failf(t, __FILE__, __LINE__, "topology has %u backends, snapshot holds 32",
			   topo_n_backends);
		return;
	}
	for (i = 0; i < SVC_TOPO_COUNT; i++)
		if (!ASSERT_OK(t, dp_weight_set(&h->m, i, r->weight), "dp_weight_set"))
			return;
	if (r->before)
		r->before(t, h, r);
	if (test_failed(t))
		return;
	len = pkt_build(&r->in, in, sizeof(in), &lo);
	if (!ASSERT_TRUE(t, len > 0, "building the input packet"))
		return;
	if (r->mangle)
		r->mangle(in, &len, &lo);
	ifindex = r->ingress == IN_BE ? (__u32)env->if_be :
		  r->ingress == IN_CL ? (__u32)env->if_cl :
					H_LO_IFINDEX;

	if (!ASSERT_OK(t, dp_stats(&h->m, s0), "dp_stats") ||
	    !ASSERT_OK(t, be_snapshot(h, b0), "dp_backend_stats"))
		return;
	err = harness_run_prog(h, r->prog, in, len, ifindex, out, &olen, &verdict);
	if (h->tc && err == -EINVAL && len < lo.l3 + (r->in.family == 4 ? 20u : 40u)) {
		test_skip(t, "BPF_PROG_TEST_RUN refuses an skb whose IP header is cut short");
		return;
	}
	if (!ASSERT_OK(t, err, "BPF_PROG_TEST_RUN"))
		return;
	if (!ASSERT_OK(t, dp_stats(&h->m, s1), "dp_stats") ||
	    !ASSERT_OK(t, be_snapshot(h, b1), "dp_backend_stats"))
		return;

	if (verdict != harness_expect(h, r->verdict))
		test_failf(t, __FILE__, __LINE__, "verdict %s (%u), expected %s (%u)",
			   h->tc ? "" : verdict_name(verdict), verdict, verdict_name(r->verdict),
			   harness_expect(h, r->verdict));
	elen = expected_frame(r, in, len, exp);
	if (r->out != OUT_NONE && ASSERT_TRUE(t, elen > 0, "building the expected packet")) {
		ASSERT_PKT_EQ(t, exp, elen, out, olen, "output frame");
		if (r->out == OUT_DNAT || r->out == OUT_SNAT) {
			if (pkt_verify(out, olen, &info, why, sizeof(why)))
				test_failf(t, __FILE__, __LINE__,
					   "output checksums, recomputed from scratch: %s", why);
		}
	}
	check_stats(t, r, s0, s1);
	check_be_stats(t, r, len, b0, b1);
	if (r->out == OUT_DNAT && !(r->in.tcp_flags & TH_RST))
		check_flow_entry(t, h, r, ifindex);
	if (r->after)
		r->after(t, h, r);
	if (test_failed(t)) {
		char buf[PKT_MAX * 3 + 1];
		__u32 k;

		for (k = 0; k < len && k < PKT_MAX; k++)
			snprintf(buf + 3 * k, 4, "%02x ", in[k]);
		buf[3 * k] = '\0';
		test_note(t, "input (%u bytes): %s", len, buf);
	}
}

struct harness *fixture_get(struct tctx *t, struct fixture *f)
{
	struct timespec t0, t1;

	if (f->opened)
		return &f->h;
	if (f->failed) {
		test_failf(t, __FILE__, __LINE__, "the skeleton could not be set up (see above)");
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* A fixture runs one hook's programs (harness_run_prog(), by f->tc). */
	if (!ASSERT_OK(t,
		       harness_open_hooks(&f->h, f->seed, f->flows4, f->flows6, f->syn_slots,
					  f->tc ? SHIFT_LOAD_TC : SHIFT_LOAD_XDP),
		       "harness_open")) {
		f->failed = true;
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	test_debug(t, "skeleton loaded in %.0f ms",
		   (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	f->opened = true;
	f->h.tc = f->tc;
	f->h.csum_complete = f->csum_complete;
	/* Feature probe: without veth the FIB rows are skipped, not failed. */
	if (!f->setup && fib_env_setup(&f->env)) {
		memset(&f->env, 0, sizeof(f->env));
		test_note(t, "no FIB environment (veth pair): its rows will be skipped");
	}
	if (f->setup ? f->setup(t, f) :
		       (!ASSERT_OK(t, harness_topology(&f->h), "harness_topology") ||
			fwd_overrides(t, &f->h))) {
		fixture_put(f);
		f->failed = true;
		return NULL;
	}
	return &f->h;
}

void fixture_put(struct fixture *f)
{
	if (f->opened)
		harness_close(&f->h);
	f->opened = false;
}

void table_run(struct tctx *t, struct fixture *f, const char *group, const struct row *rows,
	       size_t n)
{
	struct harness *h;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!test_sub(t, "%s: %s", group, rows[i].desc))
			continue;
		h = fixture_get(t, f);
		if (h)
			table_run_row(t, h, &f->env, &rows[i]);
	}
}

/* One skeleton for all the packet tables, the truncation sweeps and the
 * checksum corner cases: they share the standard topology. */
TEST(packets)
{
	struct fixture f = { .seed = H_SEED, .flows4 = 8192, .flows6 = 8192 };

	table_run(t, &f, "forward", fwd_rows, fwd_rows_n);
	table_run(t, &f, "return", ret_rows, ret_rows_n);
	table_run(t, &f, "both", both_rows, both_rows_n);
	trunc_run(t, &f);
	csum_run(t, &f);
	pmtu_run(t, &f);
	fixture_put(&f);
}

/*
 * The same tables through the TC entry points (clsact/tcx on __sk_buff):
 * the same verdicts in TC's names (PASS -> TC_ACT_UNSPEC, the next program
 * or the stack; DROP -> TC_ACT_SHOT; TX and REDIRECT -> TC_ACT_REDIRECT),
 * the same output bytes and checksums.
 */
TEST(packets_tc)
{
	struct fixture f = { .seed = H_SEED, .flows4 = 8192, .flows6 = 8192, .tc = true };

	table_run(t, &f, "forward", fwd_rows, fwd_rows_n);
	table_run(t, &f, "return", ret_rows, ret_rows_n);
	table_run(t, &f, "both", both_rows, both_rows_n);
	trunc_run(t, &f);
	csum_run(t, &f);
	pmtu_run(t, &f);
	fixture_put(&f);
}

/*
 * Once more with a CHECKSUM_COMPLETE skb (a NIC that sums what it receives):
 * after every run the kernel checks that skb->csum still matches the
 * rewritten bytes, so a rewrite the checksum helpers were not told about
 * fails the row with EBADMSG. Skipped where the kernel lacks the flag (< 6.11).
 */
TEST(packets_tc_csum_complete)
{
	struct fixture f = {
		.seed = H_SEED, .flows4 = 8192, .flows6 = 8192, .tc = true, .csum_complete = true
	};
	struct harness *h;

	test_sub(t, "probe");
	h = fixture_get(t, &f);
	if (!h)
		return;
	if (!harness_has_csum_complete(h)) {
		test_skip(t, "BPF_F_TEST_SKB_CHECKSUM_COMPLETE unsupported by this kernel");
		fixture_put(&f);
		return;
	}
	table_run(t, &f, "forward", fwd_rows, fwd_rows_n);
	table_run(t, &f, "return", ret_rows, ret_rows_n);
	table_run(t, &f, "both", both_rows, both_rows_n);
	csum_run(t, &f);
	pmtu_run(t, &f);
	fixture_put(&f);
}
