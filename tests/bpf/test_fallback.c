// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connect_fallback and honest SYN errors (bpf/synslot.h, bpf/signals.h
 * syn_answer()), XDP and TC, IPv4 and IPv6:
 *   - green refuses a SYN (RST, no entry): the RST is dropped, counted as
 *     green's RST error and a fallback, the client's retransmitted SYN and
 *     its first ACK go to blue; without the flag the RST goes on;
 *   - green leaves a SYN unanswered: its retransmit (>= 200 ms later) is one
 *     SYN-retransmit error for green and goes to blue;
 *   - a backend the handshake has left (its SYN-ACK lost, the retransmitted
 *     SYN sent to blue, or elsewhere by a weight moved in between): its own
 *     retransmitted SYN-ACK is dropped, the slot's backend completes; the
 *     other order (its SYN-ACK passed, then the retransmit): the retransmit
 *     follows it, whatever the weight does. On two CPUs at once, the slot's
 *     compare-and-swap makes it one of the two;
 *   - a healthy backend's patterns count nothing: it answers a SYN with a
 *     bare ACK (TIME_WAIT / PAWS), the client resets and re-sends the SYN at
 *     once, or late; a client's own quick duplicate SYN.
 * TEST_RUN cannot wait 200 ms: a "late" retransmit is made by moving the
 * slot's first-SYN time back (the map is writable from here).
 */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>

#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define FB_ISN 70000u
#define FB_SRV_ISN 9000u /* every backend's SYN-ACK: the first ACK acknowledges it */

struct fb_case {
	const char *name;
	__u32 svc;
	const struct topo_backend *be; /* [0] blue, [1] green */
	struct pkt_spec syn; /* client -> VIP */
};

static __u64 stat_of(struct harness *h, enum shift_stat s)
{
	__u64 st[SHIFT_STAT_MAX];

	return dp_stats(&h->m, st) ? ~0ull : st[s];
}

static __u64 err_of(struct harness *h, __u32 id, enum shift_err e)
{
	struct shift_backend_stats bs;

	return harness_be_stats(h, id, &bs) ? ~0ull : bs.errors[e];
}

/* Set or clear connect_fallback on service id, in both maps that carry it. */
static int set_fallback(struct harness *h, __u32 id, bool on)
{
	struct shift_addr_key k, next;
	struct shift_service v;
	struct shift_svc_info info;
	void *prev = NULL;
	int found = 0;

	while (!bpf_map_get_next_key(h->m.fd[SHIFT_MAP_SERVICES], prev, &next)) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(h->m.fd[SHIFT_MAP_SERVICES], &k, &v) || v.id != id)
			continue;
		v.flags = on ? v.flags | SHIFT_SVC_F_FALLBACK : v.flags & ~SHIFT_SVC_F_FALLBACK;
		if (bpf_map_update_elem(h->m.fd[SHIFT_MAP_SERVICES], &k, &v, BPF_EXIST))
			return -errno;
		found = 1;
	}
	if (!found || bpf_map_lookup_elem(h->m.fd[SHIFT_MAP_SVC_INFO], &id, &info))
		return -ENOENT;
	info.flags = on ? info.flags | SHIFT_SVC_F_FALLBACK : info.flags & ~SHIFT_SVC_F_FALLBACK;
	return bpf_map_update_elem(h->m.fd[SHIFT_MAP_SVC_INFO], &id, &info, BPF_EXIST) ? -errno : 0;
}

/* Make the slot's SYN ms milliseconds older than it is. */
static int age_slot(struct harness *h, const struct pkt_spec *s, __u64 ms)
{
	__u32 idx = harness_syn_slot_idx(h, harness_hash(s, h->seed));
	struct shift_syn_slot sl;

	if (bpf_map_lookup_elem(harness_syn_slots_fd(h), &idx, &sl))
		return -errno;
	sl.syn_t -= (__u32)((ms * 1000000ull) >> SHIFT_SYN_T_SHIFT);
	return bpf_map_update_elem(harness_syn_slots_fd(h), &idx, &sl, BPF_EXIST) ? -errno : 0;
}

/* 0 blue, 1 green, -1 elsewhere or failed. */
static int steer(struct tctx *t, struct harness *h, const struct fb_case *c,
		 const struct pkt_spec *s)
{
	__u32 verdict;
	int idx = -1;

	if (!ASSERT_OK(t, harness_steer(h, H_CLIENT, s, c->be, 2, &idx, &verdict), "harness_steer"))
		return -1;
	return idx;
}

/* A packet from backend be to the client of c's flow, acknowledging ack;
 * returns the verdict. */
static __u32 reply_ack(struct tctx *t, struct harness *h, const struct fb_case *c,
		       const struct topo_backend *be, __u16 cport, __u8 flags, __u32 ack)
{
	struct pkt_spec r = {
		.dmac = MAC_EDGE,
		.smac = { 0x02, 0xbe, 0, 0, 0, 0 },
		.family = c->syn.family,
		.proto = IPPROTO_TCP,
		.sport = be->port,
		.dport = cport,
		.ttl = 64,
		.tcp_flags = flags,
		.seq = FB_SRV_ISN,
		.ack = ack,
	};
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen = sizeof(out), verdict = ~0u;

	memcpy(r.saddr, be->addr, sizeof(r.saddr));
	memcpy(r.daddr, c->syn.saddr, sizeof(r.daddr));
	len = pkt_build(&r, in, sizeof(in), NULL);
	ASSERT_OK(t, harness_run_prog(h, H_BACKEND, in, len, H_LO_IFINDEX, out, &olen, &verdict),
		  "BPF_PROG_TEST_RUN (reply)");
	return verdict;
}

/* The same, acknowledging the client's SYN of ISN FB_ISN. */
static __u32 reply(struct tctx *t, struct harness *h, const struct fb_case *c,
		   const struct topo_backend *be, __u16 cport, __u8 flags)
{
	return reply_ack(t, h, c, be, cport, flags, FB_ISN + 1);
}

/* Client c's first SYN from port sport (ISN FB_ISN). */
static struct pkt_spec fb_syn(const struct fb_case *c, __u16 sport)
{
	struct pkt_spec s = c->syn;

	s.sport = sport;
	s.seq = FB_ISN;
	s.tcp_flags = TH_SYN;
	return s;
}

/*
 * With connect_fallback at 100 %: the SYN s goes to green, green's RST is
 * dropped, counted as green's error and as one fallback, and the
 * retransmitted SYN goes to blue.
 */
static void green_refuses(struct tctx *t, struct harness *h, const struct fb_case *c,
			  const struct pkt_spec *s)
{
	const struct topo_backend *green = &c->be[1];
	__u64 rst0 = err_of(h, green->id, SHIFT_ERR_RST), fb0 = stat_of(h, SHIFT_STAT_FALLBACK);
	__u32 v;

	ASSERT_EQ(t, steer(t, h, c, s), 1, "the SYN at 100 %: green");
	v = reply(t, h, c, green, s->sport, TH_RST | TH_ACK);
	ASSERT_EQ(t, v, harness_expect(h, XDP_DROP), "green's RST dropped");
	ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_RST) - rst0, 1, "green RST errors");
	ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FALLBACK) - fb0, 1, "connect_fallback stat");
	ASSERT_EQ(t, steer(t, h, c, s), 0, "the retransmitted SYN: blue");
}

static void fb_run(struct tctx *t, struct harness *h, const struct fb_case *c, const char *mode)
{
	const struct topo_backend *blue = &c->be[0], *green = &c->be[1];
	struct pkt_spec s;
	struct shift_syn_slot sl;
	struct shift_flow fl;
	__u64 rst0, syn0, fb0, bsyn0, mv0;
	__u32 v;
	char name[160];

	dp_weight_set(&h->m, c->svc, SHIFT_WEIGHT_MAX);

	snprintf(name, sizeof(name), "%s %s: green RST to a SYN: dropped, an error, retry on blue",
		 mode, c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, true), "set flag")) {
		s = fb_syn(c, 41000);
		fb0 = stat_of(h, SHIFT_STAT_FALLBACK);
		green_refuses(t, h, c, &s);
		if (ASSERT_OK(t, harness_syn_slot_get(h, &s, &sl), "slot"))
			ASSERT_EQ(t, sl.backend_id, blue->id, "the slot follows it to blue");
		v = reply(t, h, c, blue, s.sport, TH_SYN | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "blue's SYN-ACK goes on");
		s.tcp_flags = TH_ACK;
		s.seq = FB_ISN + 1;
		s.ack = FB_SRV_ISN + 1;
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "the first ACK: blue");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "entry"))
			ASSERT_EQ(t, fl.backend_id, blue->id, "entry backend");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FALLBACK) - fb0, 1, "one fallback in all");
	}

	snprintf(name, sizeof(name),
		 "%s %s: a reused 5-tuple, its old entry blue's: green's RST to the new SYN is "
		 "green's error, dropped, retry on blue",
		 mode, c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, true), "set flag")) {
		__u64 brst0 = err_of(h, blue->id, SHIFT_ERR_RST);

		/* The old connection, on blue, with another ISN. */
		dp_weight_set(&h->m, c->svc, 0);
		s = fb_syn(c, 41050);
		s.seq = FB_ISN - 5000;
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "the old connection's SYN at 0 %: blue");
		reply_ack(t, h, c, blue, s.sport, TH_SYN | TH_ACK, FB_ISN - 4999);
		s.tcp_flags = TH_ACK;
		s.seq = FB_ISN - 4999;
		s.ack = FB_SRV_ISN + 1;
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "its first ACK: blue");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "old entry"))
			ASSERT_EQ(t, fl.backend_id, blue->id, "old entry backend");
		/* The client reuses the port: a new SYN, to green, which refuses it. */
		dp_weight_set(&h->m, c->svc, SHIFT_WEIGHT_MAX);
		s = fb_syn(c, 41050);
		brst0 = err_of(h, blue->id, SHIFT_ERR_RST);
		green_refuses(t, h, c, &s);
		ASSERT_EQ(t, err_of(h, blue->id, SHIFT_ERR_RST) - brst0, 0,
			  "no RST error for the old entry's blue");
		/* Without the flag the refusal goes on, still green's error alone. */
		ASSERT_OK(t, set_fallback(h, c->svc, false), "clear flag");
		s = fb_syn(c, 41050);
		s.seq = FB_ISN + 77777;
		rst0 = err_of(h, green->id, SHIFT_ERR_RST);
		brst0 = err_of(h, blue->id, SHIFT_ERR_RST);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "a later SYN on it: green");
		v = reply_ack(t, h, c, green, s.sport, TH_RST | TH_ACK, FB_ISN + 77778);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "RST not dropped");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_RST) - rst0, 1, "green RST errors");
		ASSERT_EQ(t, err_of(h, blue->id, SHIFT_ERR_RST) - brst0, 0,
			  "no RST error for the old entry's blue");
	}

	snprintf(name, sizeof(name), "%s %s: connect_fallback = no: green's RST goes on", mode,
		 c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, false), "clear flag")) {
		s = fb_syn(c, 41001);
		rst0 = err_of(h, green->id, SHIFT_ERR_RST);
		fb0 = stat_of(h, SHIFT_STAT_FALLBACK);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "SYN: green");
		v = reply(t, h, c, green, s.sport, TH_RST | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "RST not dropped");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_RST) - rst0, 1, "green RST errors");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FALLBACK) - fb0, 0, "no fallback");
	}

	snprintf(name, sizeof(name),
		 "%s %s: SYN unanswered, re-SYN 300 ms later: one error, retry on blue", mode,
		 c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, true), "set flag")) {
		s = fb_syn(c, 41002);
		syn0 = err_of(h, green->id, SHIFT_ERR_SYN_RETRANS);
		bsyn0 = err_of(h, blue->id, SHIFT_ERR_SYN_RETRANS);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "SYN: green");
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "its quick duplicate: green still");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_SYN_RETRANS) - syn0, 0,
			  "a duplicate within 200 ms is no error");
		ASSERT_OK(t, age_slot(h, &s, 300), "age the slot");
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "the retransmit: blue");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_SYN_RETRANS) - syn0, 1,
			  "one SYN-retransmit error for green");
		ASSERT_OK(t, age_slot(h, &s, 300), "age the slot");
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "blue silent too: the next one stays blue");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_SYN_RETRANS) - syn0, 1,
			  "still one for green");
		ASSERT_EQ(t, err_of(h, blue->id, SHIFT_ERR_SYN_RETRANS) - bsyn0, 1,
			  "blue's own silence is blue's error");
	}

	snprintf(name, sizeof(name), "%s %s: SYN unanswered, no fallback: one error, stays green",
		 mode, c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, false), "clear flag")) {
		s = fb_syn(c, 41003);
		syn0 = err_of(h, green->id, SHIFT_ERR_SYN_RETRANS);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "SYN: green");
		ASSERT_OK(t, age_slot(h, &s, 300), "age the slot");
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "the retransmit: green");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_SYN_RETRANS) - syn0, 1, "one error");
	}

	snprintf(name, sizeof(name),
		 "%s %s: backend ACKs the SYN (TIME_WAIT), client RST, re-SYN: no error", mode,
		 c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, true), "set flag")) {
		s = fb_syn(c, 41004);
		syn0 = err_of(h, green->id, SHIFT_ERR_SYN_RETRANS);
		rst0 = err_of(h, green->id, SHIFT_ERR_RST);
		fb0 = stat_of(h, SHIFT_STAT_FALLBACK);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "SYN: green");
		v = reply(t, h, c, green, s.sport, TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "the bare ACK goes on");
		if (ASSERT_OK(t, harness_syn_slot_get(h, &s, &sl), "slot"))
			ASSERT_TRUE(t, sl.flags & SHIFT_SS_ANSWERED, "the ACK answered the SYN");
		s.tcp_flags = TH_RST;
		s.seq = 9000;
		steer(t, h, c, &s);
		s.tcp_flags = TH_SYN;
		s.seq = FB_ISN;
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "re-SYN at once: green");
		ASSERT_OK(t, age_slot(h, &s, 1000), "age the slot");
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "re-SYN a second later: green");
		s.seq = FB_ISN + 5000;
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "a new ISN: green");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_SYN_RETRANS) - syn0, 0,
			  "no SYN-retransmit error");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_RST) - rst0, 0, "no RST error");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FALLBACK) - fb0, 0, "no fallback");
	}

	snprintf(name, sizeof(name),
		 "%s %s: green's SYN-ACK lost, re-SYN on blue: green's retransmitted SYN-ACK "
		 "dropped, blue's completes",
		 mode, c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, true), "set flag")) {
		s = fb_syn(c, 41006);
		mv0 = stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "SYN: green");
		ASSERT_OK(t, age_slot(h, &s, 1000), "age the slot");
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "the retransmit: blue");
		v = reply(t, h, c, green, s.sport, TH_SYN | TH_ACK);
		ASSERT_EQ(t, v, harness_expect(h, XDP_DROP), "green's SYN-ACK dropped");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED) - mv0, 1,
			  "synack_moved stat");
		v = reply(t, h, c, blue, s.sport, TH_SYN | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "blue's SYN-ACK goes on");
		v = reply(t, h, c, green, s.sport, TH_SYN | TH_ACK);
		ASSERT_EQ(t, v, harness_expect(h, XDP_DROP), "green's next one too");
		s.tcp_flags = TH_ACK;
		s.seq = FB_ISN + 1;
		s.ack = FB_SRV_ISN + 1;
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "the first ACK: blue");
		if (ASSERT_OK(t, harness_flow_get(h, &s, &fl), "entry"))
			ASSERT_EQ(t, fl.backend_id, blue->id, "entry backend");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED) - mv0, 2,
			  "two dropped in all");
	}

	snprintf(name, sizeof(name),
		 "%s %s: green's SYN-ACK passed, then the re-SYN (lost on the way, or crossing "
		 "it): it follows green, no error",
		 mode, c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, true), "set flag")) {
		s = fb_syn(c, 41009);
		mv0 = stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED);
		syn0 = err_of(h, green->id, SHIFT_ERR_SYN_RETRANS);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "SYN: green");
		v = reply(t, h, c, green, s.sport, TH_SYN | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "green's SYN-ACK goes on");
		ASSERT_OK(t, age_slot(h, &s, 1000), "age the slot");
		dp_weight_set(&h->m, c->svc, 0);
		ASSERT_EQ(t, steer(t, h, c, &s), 1,
			  "the retransmit: green, though the weight moved to 0 meanwhile");
		v = reply(t, h, c, green, s.sport, TH_SYN | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "green's next SYN-ACK goes on");
		s.tcp_flags = TH_ACK;
		s.seq = FB_ISN + 1;
		s.ack = FB_SRV_ISN + 1;
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "the first ACK: green");
		ASSERT_EQ(t, err_of(h, green->id, SHIFT_ERR_SYN_RETRANS) - syn0, 0,
			  "an answered SYN's retransmit is no error");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED) - mv0, 0, "nothing dropped");
		dp_weight_set(&h->m, c->svc, SHIFT_WEIGHT_MAX);
	}

	snprintf(name, sizeof(name),
		 "%s %s: weight moved between a SYN and its retransmit: the first backend's "
		 "SYN-ACK dropped",
		 mode, c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, false), "clear flag")) {
		s = fb_syn(c, 41007);
		mv0 = stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "SYN at 100 %: green");
		dp_weight_set(&h->m, c->svc, 0);
		ASSERT_OK(t, age_slot(h, &s, 1000), "age the slot");
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "the retransmit at 0 %: blue");
		v = reply(t, h, c, green, s.sport, TH_SYN | TH_ACK);
		ASSERT_EQ(t, v, harness_expect(h, XDP_DROP), "green's SYN-ACK dropped");
		v = reply(t, h, c, blue, s.sport, TH_SYN | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "blue's SYN-ACK goes on");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED) - mv0, 1,
			  "synack_moved stat");
		dp_weight_set(&h->m, c->svc, SHIFT_WEIGHT_MAX);
	}

	snprintf(name, sizeof(name),
		 "%s %s: another backend's RST goes on; its SYN-ACK after the first ACK: dropped "
		 "by the entry",
		 mode, c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, false), "clear flag")) {
		s = fb_syn(c, 41008);
		mv0 = stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED);
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "SYN: green");
		v = reply(t, h, c, blue, s.sport, TH_RST | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "another backend's RST goes on");
		v = reply(t, h, c, green, s.sport, TH_SYN | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "green's SYN-ACK goes on");
		s.tcp_flags = TH_ACK;
		s.seq = FB_ISN + 1;
		s.ack = FB_SRV_ISN + 1;
		ASSERT_EQ(t, steer(t, h, c, &s), 1, "the first ACK: green");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED) - mv0, 0, "nothing dropped");
		v = reply(t, h, c, blue, s.sport, TH_SYN | TH_ACK);
		ASSERT_EQ(
			t, v, harness_expect(h, XDP_DROP),
			"blue's SYN-ACK after the first ACK spent the slot: the entry is green's");
		v = reply(t, h, c, green, s.sport, TH_SYN | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP),
			    "green's own retransmitted SYN-ACK goes on");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_DROP_SYNACK_MOVED) - mv0, 1, "one dropped");
	}

	snprintf(name, sizeof(name), "%s %s: latched service: the SYN goes blue, a blue RST passes",
		 mode, c->name);
	if (test_sub(t, "%s", name) && ASSERT_OK(t, set_fallback(h, c->svc, true), "set flag")) {
		s = fb_syn(c, 41005);
		fb0 = stat_of(h, SHIFT_STAT_FALLBACK);
		rst0 = err_of(h, blue->id, SHIFT_ERR_RST);
		dp_weight_set(&h->m, c->svc, SHIFT_WEIGHT_MAX | SHIFT_WEIGHT_LATCHED);
		ASSERT_EQ(t, steer(t, h, c, &s), 0, "SYN: blue");
		v = reply(t, h, c, blue, s.sport, TH_RST | TH_ACK);
		ASSERT_TRUE(t, v != harness_expect(h, XDP_DROP), "blue's RST goes on");
		ASSERT_EQ(t, err_of(h, blue->id, SHIFT_ERR_RST) - rst0, 1, "blue RST error");
		ASSERT_EQ(t, stat_of(h, SHIFT_STAT_FALLBACK) - fb0, 0, "no fallback");
	}
	set_fallback(h, c->svc, false);
	dp_weight_set(&h->m, c->svc, 0);
}

TEST(fallback)
{
	const struct fb_case cases[] = {
		{ "v4", SVC_V4_TCP, &topo_backends[0],
		  PKT4(CL4, VIP4, IPPROTO_TCP, 41000, 80, .payload = 0) },
		{ "v6", SVC_V6_TCP, &topo_backends[4],
		  PKT6(CL6, VIP6, IPPROTO_TCP, 41000, 443, .payload = 0) },
	};
	int tc;
	__u32 i;

	for (tc = 0; tc < 2; tc++) {
		struct fixture f = { .seed = H_SEED, .flows4 = 4096, .flows6 = 1024, .tc = tc };
		struct harness *h = fixture_get(t, &f);

		if (!h)
			return;
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			fb_run(t, h, &cases[i], tc ? "tc" : "xdp");
		fixture_put(&f);
	}
}
