// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench_datapath: per-packet cost of the real datapath programs, measured with
 * BPF_PROG_TEST_RUN one packet per call (repeat = 1, STYLE habit 7: the
 * programs rewrite the packet, so every call starts from the pristine input;
 * the kernel copies data_in afresh on every call and nothing is copied back).
 * Each case is reported minus an XDP_PASS program timed in the same run,
 * interleaved batch by batch: that is the harness's fixed cost.
 *
 * One case is an HTTP answer that closes a request: the request goes through
 * the client program before each call, untimed, so that every timed answer
 * makes a RESPONSE sample (and every 64th its forced wakeup). The sample ring
 * is drained between batches, and the samples counted must match the calls.
 *
 *   bench_datapath [--out FILE] [--iters N] [--batches B] [--flows N]
 *
 * --only TEXT measures only the cases whose name contains TEXT.
 * --flows sizes both connection tables (default: the loader's, 1M / 256k),
 * to compare the per-packet cost of a small and a large table.
 *
 * Needs root; runs in a private network namespace (veth pair + permanent
 * neighbours for the bpf_fib_lookup cases). Not part of `make check`.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/utsname.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>
#include <shift/sample.h>

#include "bench.h"
#include "harness.h"
#include "ops/log.h"
#include "pkt.h"

#define MAX_BATCHES 15

/* Raw BPF instructions for the two reference programs: no extra objects. */

static const struct bpf_insn prog_pass[] = {
	MOV64_IMM(BPF_REG_0, XDP_PASS),
	EXIT(),
};

/* The TC floor: TC_ACT_OK (0). */
static const struct bpf_insn prog_tc_ok[] = {
	MOV64_IMM(BPF_REG_0, 0),
	EXIT(),
};

/*
 * One call of a helper that does next to nothing, and its return: the host's
 * price of each kernel function the datapath calls (its table lookups, the
 * send, the clock). Mitigations make it differ by host, several times over
 * (BENCHMARKS §7zn): with AMD's SRSO "Safe RET" every kernel return
 * mispredicts. The verdicts are those of a non-VIP packet.
 */
static const struct bpf_insn prog_call[] = {
	CALL(BPF_FUNC_get_numa_node_id),
	MOV64_IMM(BPF_REG_0, XDP_PASS),
	EXIT(),
};

static const struct bpf_insn prog_tc_call[] = {
	CALL(BPF_FUNC_get_numa_node_id),
	MOV64_IMM(BPF_REG_0, TC_ACT_UNSPEC),
	EXIT(),
};

/* Swap the Ethernet addresses and bounce the frame: the cheapest XDP_TX. */
static const struct bpf_insn prog_macswap[] = {
	LDX(BPF_W, BPF_REG_2, BPF_REG_1, 0), /* data */
	LDX(BPF_W, BPF_REG_3, BPF_REG_1, 4), /* data_end */
	MOV64_IMM(BPF_REG_0, XDP_PASS),
	MOV64_REG(BPF_REG_4, BPF_REG_2),
	ADD64_IMM(BPF_REG_4, 12),
	JGT_REG(BPF_REG_4, BPF_REG_3, 9), /* too short: to the exit */
	LDX(BPF_W, BPF_REG_4, BPF_REG_2, 0),
	LDX(BPF_H, BPF_REG_5, BPF_REG_2, 4),
	LDX(BPF_W, BPF_REG_6, BPF_REG_2, 6),
	LDX(BPF_H, BPF_REG_7, BPF_REG_2, 10),
	STX(BPF_W, BPF_REG_2, BPF_REG_6, 0),
	STX(BPF_H, BPF_REG_2, BPF_REG_7, 4),
	STX(BPF_W, BPF_REG_2, BPF_REG_4, 6),
	STX(BPF_H, BPF_REG_2, BPF_REG_5, 10),
	MOV64_IMM(BPF_REG_0, XDP_TX),
	EXIT(),
};

enum mutate {
	MUT_NONE, /* the same packet every call */
	MUT_NEW_FLOW, /* a fresh source address and port every call: really a new flow
		       * (measure(): fresh across the whole run, not only in a case) */
	MUT_REQUEST, /* the answer to a request: bcase.pre goes through the client
		      * program first, untimed, so every timed call makes a sample */
};

struct bcase {
	const char *name;
	int prog_fd;
	int pass_fd; /* the floor of its kind: XDP_PASS, or TC_ACT_OK for TC */
	bool tc; /* a __sk_buff context (TC entry point) */
	__u8 pkt[PKT_MAX];
	__u32 len;
	__u32 ifindex;
	__u32 verdict;
	enum mutate mut;
	__u8 family;
	__u32 l3;
	int target; /* ns above XDP_PASS, 0 = none */
	/* results */
	double ns; /* median of batch means (kernel-timed) */
	double floor; /* median of the interleaved XDP_PASS batch means */
	double wall; /* median per-call wall clock, syscall included */
	__u32 bad_verdicts;
	int katran; /* SPEC's Katran figure for the same path, 0 = none */
	bool snat; /* a source-NATed case: start from free ports */
	/* MUT_REQUEST: the request, its program, and the sample ring drained
	 * (untimed) after every batch, so that no sample finds it full */
	__u8 pre[PKT_MAX];
	__u32 pre_len;
	int pre_fd;
	struct ring_buffer *rb;
	/* A SYN-ACK's SYN, sent once (untimed) before the case's runs, in on
	 * syn_ifindex: its slot then names the way back (bpf/client_nh.h) */
	__u8 syn[PKT_MAX];
	__u32 syn_len;
	int syn_fd;
	__u32 syn_ifindex;
	__u64 calls; /* of prog_fd */
};

struct opts {
	const char *out;
	__u32 iters;
	__u32 batches;
	__u32 flows; /* 0: the loader's default */
	const char *only; /* measure only the cases whose name holds this */
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void new_flow(struct bcase *c, __u64 i)
{
	__u8 *sa = c->pkt + c->l3 + (c->family == 4 ? 12 : 8 + 12);
	__u8 *sp = c->pkt + c->l3 + (c->family == 4 ? 20 : 40);
	__u32 a = (__u32)(i / 50000), port = 10000 + (__u32)(i % 50000);

	/* Checksums are left stale: the datapath never verifies them, and the
	 * incremental update costs the same either way. */
	sa[0] = 100;
	sa[1] = (__u8)(64 | ((a >> 16) & 0x3f));
	sa[2] = (__u8)(a >> 8);
	sa[3] = (__u8)a;
	sp[0] = (__u8)(port >> 8);
	sp[1] = (__u8)port;
}

/* The context of a test run of a frame of len bytes, as ingress ifindex. */
static void ctx_init(struct bpf_test_run_opts *o, bool tc, __u32 ifindex, __u32 len,
		     struct xdp_md *ctx, struct __sk_buff *skb)
{
	if (tc) {
		memset(skb, 0, sizeof(*skb));
		skb->ifindex = ifindex;
		skb->ingress_ifindex = ifindex;
		o->ctx_in = skb;
		o->ctx_size_in = sizeof(*skb);
	} else {
		memset(ctx, 0, sizeof(*ctx));
		ctx->data_end = len;
		ctx->ingress_ifindex = ifindex;
		o->ctx_in = ctx;
		o->ctx_size_in = sizeof(*ctx);
	}
}

/* One frame through fd, in on ifindex, untimed (what: for the error). */
static int run_once(const struct bcase *c, __u8 *frame, __u32 len, int fd, __u32 ifindex,
		    const char *what)
{
	struct xdp_md ctx;
	struct __sk_buff skb;
	LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = 1);
	int err;

	o.data_in = frame;
	o.data_size_in = len;
	ctx_init(&o, c->tc, ifindex, len, &ctx, &skb);
	err = bpf_prog_test_run_opts(fd, &o);
	if (err)
		fprintf(stderr, "bench: %s: %s: BPF_PROG_TEST_RUN: %s\n", c->name, what,
			strerror(-err));
	return err;
}

/* MUT_REQUEST's request. */
static int run_pre(struct bcase *c)
{
	return run_once(c, c->pre, c->pre_len, c->pre_fd, c->ifindex, "the request");
}

/* The case's SYN (bcase.syn). */
static int run_syn(struct bcase *c)
{
	return run_once(c, c->syn, c->syn_len, c->syn_fd, c->syn_ifindex, "its SYN");
}

/* One batch of n calls; mean kernel-timed ns per call and wall ns per call. */
static int run_batch(int prog_fd, struct bcase *c, __u32 n, __u64 *seq, double *mean, double *wall,
		     __u32 *bad)
{
	struct xdp_md ctx;
	struct __sk_buff skb;
	LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = 1);
	double sum = 0, t0;
	__u32 i;
	int err;

	o.data_in = c->pkt;
	o.data_size_in = c->len;
	ctx_init(&o, c->tc, c->ifindex, c->len, &ctx, &skb);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		if (c->mut == MUT_NEW_FLOW && prog_fd == c->prog_fd)
			new_flow(c, (*seq)++);
		/* Its wall clock is the batch's; only o.duration is the case's. */
		if (c->mut == MUT_REQUEST && prog_fd == c->prog_fd) {
			err = run_pre(c);
			if (err)
				return err;
		}
		err = bpf_prog_test_run_opts(prog_fd, &o);
		if (err) {
			fprintf(stderr, "bench: %s: BPF_PROG_TEST_RUN: %s\n", c->name,
				strerror(-err));
			return err;
		}
		sum += o.duration;
		c->calls += prog_fd == c->prog_fd;
		if (prog_fd == c->prog_fd && o.retval != c->verdict && !(*bad)++)
			fprintf(stderr, "bench: %s: verdict %u, expected %u\n", c->name, o.retval,
				c->verdict);
	}
	*wall = (now_ns() - t0) / n;
	*mean = sum / n;
	return 0;
}

/* MUT_REQUEST: empty the sample ring after a batch, outside the timed calls. */
static int drain(const struct bcase *c)
{
	int n;

	if (!c->rb)
		return 0;
	n = ring_buffer__consume(c->rb);
	if (n < 0)
		fprintf(stderr, "bench: %s: ring_buffer__consume: %s\n", c->name, strerror(-n));
	return n < 0 ? n : 0;
}

/*
 * seq: the run's count of new flows, so that no case sends a tuple an earlier
 * one sent. Counted per case, a case's TC half re-sent its XDP half's tuples
 * some 0.3 s later: the 0.2 % whose SYN slot still held them were SYN
 * retransmits, each an error sample with a forced wakeup (411 of 204,001 TC
 * v6 SYNs, +19 ns on the case's mean; BENCHMARKS §7v).
 */
static int measure(struct bcase *c, const struct opts *op, __u64 *seq)
{
	int pass_fd = c->pass_fd;
	double ns[MAX_BATCHES], fl[MAX_BATCHES], wall[MAX_BATCHES], w;
	__u32 per = op->iters / op->batches, b;
	int err;

	/* Warm up both (caches, the connection table's first inserts), from an
	 * empty sample ring; a SYN-ACK's SYN first, since the cases before may
	 * have taken its slot. */
	err = c->syn_len ? run_syn(c) : 0;
	if (!err)
		err = drain(c);
	if (!err)
		err = run_batch(c->prog_fd, c, per / 10 + 1, seq, &ns[0], &w, &c->bad_verdicts);
	if (!err)
		err = drain(c);
	if (!err)
		err = run_batch(pass_fd, c, per / 10 + 1, seq, &fl[0], &w, &c->bad_verdicts);
	c->bad_verdicts = 0;
	for (b = 0; b < op->batches && !err; b++) {
		err = run_batch(pass_fd, c, per, seq, &fl[b], &w, &c->bad_verdicts);
		if (!err)
			err = run_batch(c->prog_fd, c, per, seq, &ns[b], &wall[b],
					&c->bad_verdicts);
		if (!err)
			err = drain(c);
	}
	if (err)
		return err;
	c->ns = median(ns, op->batches);
	c->floor = median(fl, op->batches);
	c->wall = median(wall, op->batches);
	return 0;
}

/* text: s's payload, or NULL (pkt_build()'s). */
static __u32 build(struct bcase *c, const struct pkt_spec *s, const char *text)
{
	struct pkt_layout lo;

	c->len = pkt_build_payload(s, text, c->pkt, sizeof(c->pkt), &lo);
	c->l3 = lo.l3;
	c->family = s->family;
	return c->len;
}

/*
 * A source-NATed flow's SYN and its backend be's SYN-ACK, which comes to the
 * edge's address and port that the SYN left from, not to the client.
 */
static int snat_handshake(struct harness *h, const struct pkt_spec *ack,
			  const struct topo_backend *be)
{
	struct pkt_spec syn = *ack, r;
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen = sizeof(out), verdict;
	struct pkt_info info;
	int err;

	syn.tcp_flags = 0x02; /* SYN */
	syn.seq = ack->seq - 1;
	syn.payload = 0;
	len = pkt_build(&syn, in, sizeof(in), NULL);
	err = harness_run_prog(h, H_CLIENT, in, len, H_LO_IFINDEX, out, &olen, &verdict);
	if (err)
		return err;
	if (pkt_verify(out, olen, &info, NULL, 0))
		return -EBADMSG;
	memset(&r, 0, sizeof(r));
	memcpy(r.dmac, info.smac, sizeof(r.dmac));
	memcpy(r.smac, be->mac, sizeof(r.smac));
	r.family = 4;
	r.proto = IPPROTO_TCP;
	memcpy(r.saddr, be->addr, sizeof(r.saddr));
	memcpy(r.daddr, info.saddr, sizeof(r.daddr));
	r.sport = be->port;
	r.dport = info.sport;
	r.ttl = 64;
	r.tcp_flags = 0x12; /* SYN | ACK */
	r.seq = ack->ack - 1;
	r.ack = ack->seq;
	len = pkt_build(&r, in, sizeof(in), NULL);
	olen = sizeof(out);
	return harness_run_prog(h, H_BACKEND, in, len, H_LO_IFINDEX, out, &olen, &verdict);
}

/* Open a flow once (SYN, the backend's SYN-ACK, then the client's first ACK,
 * which writes the entry) so the case measures the established path. The
 * first ACK is the SYN's sequence number + 1 and acknowledges the SYN-ACK: any
 * other ACK without an entry is steered by the weight and writes none.
 * be: the backend of a service of this bench's own (source NAT when snat:
 * snat_handshake(); HTTP), else NULL: the harness's topology. */
static int establish(struct harness *h, const struct pkt_spec *ack, const struct topo_backend *be,
		     bool snat)
{
	struct shift_flow f;
	__u8 buf[PKT_MAX];
	__u32 len, verdict;
	int err, idx;

	if (snat)
		err = snat_handshake(h, ack, be);
	else if (be)
		err = harness_handshake(h, H_CLIENT, ack, be, 1, &idx);
	else
		err = harness_handshake(h, H_CLIENT, ack, topo_backends, topo_n_backends, &idx);
	if (err)
		return err;
	len = pkt_build(ack, buf, sizeof(buf), NULL);
	err = harness_run(h->prog[H_CLIENT], buf, len, H_LO_IFINDEX, NULL, NULL, &verdict);
	if (err)
		return err;
	/* Else the case would time the stateless path of an ACK without an entry. */
	return harness_flow_get(h, ack, &f);
}

/*
 * Point syn (a bare SYN, sequence number isn) at a source port from 'from'
 * up whose flow the weights send to topo_backends[want], so that its
 * backend's SYN-ACK answers it; the port, or -1. The search's SYNs carry
 * another ISN: the case's own SYN (run_syn()) is then a new handshake, which
 * writes its slot afresh.
 */
static int syn_to(struct harness *h, struct pkt_spec *syn, int want, __u16 from, __u32 isn)
{
	struct pkt_spec probe = *syn;
	__u32 verdict;
	int idx, port;

	probe.seq = isn - 1;
	for (port = from; port < from + 1000; port++) {
		probe.sport = (__u16)port;
		if (harness_steer(h, H_CLIENT, &probe, topo_backends, topo_n_backends, &idx,
				  &verdict))
			return -1;
		if (idx == want) {
			syn->sport = (__u16)port;
			syn->seq = isn;
			return port;
		}
	}
	return -1;
}

/*
 * Fill a connection table to its max_entries from userspace with flows no
 * case uses (source 100.127.x.x / fd00::x), so every case runs against a full
 * table: what an edge host under a SYN flood had before (each SYN insert then
 * evicted).
 */
static int fill_table(int fd, bool v6, __u64 *filled)
{
	/* The fill's VIP, 2001:db8::99, folded as the IPv6 key holds it. */
	const __u32 vip6[4] = { htonl(0x20010db8), 0, 0, htonl(0x99) };
	struct bpf_map_info info;
	__u32 ilen = sizeof(info), i, vip6w = shift_flow_vip6(vip6);
	struct shift_flow v;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		fprintf(stderr, "bench: map info: %s\n", strerror(errno));
		return -1;
	}
	memset(&v, 0, sizeof(v));
	v.backend_id = 0;
	v.state = SHIFT_FS_SYNACK;
	for (i = 0; i < info.max_entries; i++) {
		struct shift_flow_key4 k4;
		struct shift_flow_key6 k6;
		int err;

		if (v6) {
			memset(&k6, 0, sizeof(k6));
			k6.saddr[0] = htonl(0xfd000000);
			k6.saddr[3] = htonl(i);
			k6.vip = vip6w;
			k6.sport = htons(1);
			k6.dport = htons(80);
			err = bpf_map_update_elem(fd, &k6, &v, BPF_ANY);
		} else {
			memset(&k4, 0, sizeof(k4));
			k4.saddr = htonl((100u << 24) | (1u << 22) | i);
			k4.daddr = htonl(0x0a000063);
			k4.sport = htons(1);
			k4.dport = htons(80);
			err = bpf_map_update_elem(fd, &k4, &v, BPF_ANY);
		}
		if (err) {
			fprintf(stderr, "bench: filling the table: %s\n", strerror(errno));
			return -1;
		}
	}
	*filled = info.max_entries;
	return 0;
}

#define V4(dst_b3, sp, flags)                                                             \
	{                                                                                 \
		.dmac = MAC_EDGE, .smac = MAC_CLIENT, .family = 4, .proto = IPPROTO_TCP,  \
		.saddr = { 198, 51, 100, 7 }, .daddr = { 10, 0, 0, dst_b3 }, .sport = sp, \
		.dport = 80, .ttl = 64, .tcp_flags = flags, .payload = 64, .seq = 1       \
	}
/* A reply from the v4 / v6 blue backend (be 0 / be 4) to the client port cp. */
#define R4(cp, flags)                                                                          \
	{                                                                                      \
		.dmac = MAC_EDGE, .smac = { 0x02, 0xbe, 0, 0, 0, 0 }, .family = 4,             \
		.proto = IPPROTO_TCP, .saddr = { 10, 1, 0, 11 }, .daddr = { 198, 51, 100, 7 }, \
		.sport = 8080, .dport = cp, .ttl = 64, .tcp_flags = flags, .payload = 64,      \
		.seq = 5000, .ack = 1001                                                       \
	}
#define R6(cp, flags)                                                                       \
	{                                                                                   \
		.dmac = MAC_EDGE, .smac = { 0x02, 0xbe, 0, 0, 0, 0 }, .family = 6,          \
		.proto = IPPROTO_TCP,                                                       \
		.saddr = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11 }, \
		.daddr = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7 }, \
		.sport = 8443, .dport = cp, .ttl = 64, .tcp_flags = flags, .payload = 64,   \
		.seq = 5000, .ack = 1001                                                    \
	}
#define V6(dst_last, dp, sp, flags)                                                              \
	{                                                                                        \
		.dmac = MAC_EDGE, .smac = MAC_CLIENT, .family = 6, .proto = IPPROTO_TCP,         \
		.saddr = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7 },      \
		.daddr = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, dst_last },  \
		.sport = sp, .dport = dp, .ttl = 64, .tcp_flags = flags, .payload = 64, .seq = 1 \
	}

static double above(const struct bcase *c)
{
	return c->ns - c->floor;
}

/* cs[] holds pairs: XDP at 2i, TC at 2i+1. */
/* The TC verdict of an internal (XDP) one, as the TC entry points map it. */
static __u32 tc_of(__u32 xdp)
{
	switch (xdp) {
	case XDP_DROP:
		return TC_ACT_SHOT;
	case XDP_TX:
	case XDP_REDIRECT:
		return TC_ACT_REDIRECT;
	default:
		return (__u32)TC_ACT_UNSPEC; /* bpf/ctx.h: the next program or the stack */
	}
}

/* A CPU vulnerability's state as sysfs words it ("?" when unreadable). */
static void vuln_state(const char *name, char *buf, size_t n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/vulnerabilities/%s", name);
	f = fopen(path, "r");
	if (!f || !fgets(buf, (int)n, f))
		snprintf(buf, n, "?");
	if (f)
		fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

static void print_table(FILE *f, const struct bcase *cs, size_t n, const struct opts *op,
			__u64 full4, __u64 full6)
{
	char srso[128], v2[160];
	struct utsname u;
	double load[3] = { 0, 0, 0 };
	size_t i;

	if (uname(&u))
		memset(&u, 0, sizeof(u));
	if (getloadavg(load, 3) < 0)
		load[0] = -1;
	fprintf(f,
		"# bench_datapath: BPF_PROG_TEST_RUN, repeat = 1, %u calls per case in %u "
		"batches, median of batch means\n",
		op->iters, op->batches);
	fprintf(f,
		"# kernel %s %s, load average %.2f; connection tables full (%llu v4, %llu v6 "
		"entries) before any case\n",
		u.release, u.machine, load[0], (unsigned long long)full4,
		(unsigned long long)full6);
	/* What sets the price of a helper call on this host (the "host:" row). */
	vuln_state("spec_rstack_overflow", srso, sizeof(srso));
	vuln_state("spectre_v2", v2, sizeof(v2));
	fprintf(f, "# CPU mitigations: spec_rstack_overflow: %s; spectre_v2: %s\n", srso, v2);
	fprintf(f, "# above = ns above the floor of the same kind timed in the same run (XDP_PASS "
		   "for XDP, TC_ACT_OK for TC); Katran = SPEC's figure measured the same way\n");
	fprintf(f, "%-40s %9s %9s %9s %9s  %-8s %-14s %s\n", "case", "XDP ns", "XDP above", "TC ns",
		"TC above", "target", "met (XDP/TC)", "Katran (SPEC)");
	for (i = 0; i + 1 < n; i += 2) {
		const struct bcase *x = &cs[i], *t = &cs[i + 1];
		char target[16] = "-", met[16] = "-", kat[32] = "-";

		if (x->target) {
			snprintf(target, sizeof(target), "<= %d", x->target);
			snprintf(met, sizeof(met), "%s/%s",
				 above(x) <= x->target ? "met" : "MISSED",
				 above(t) <= x->target ? "met" : "MISSED");
		}
		if (x->katran)
			snprintf(kat, sizeof(kat), "%d%s", x->katran,
				 x->katran == 296 ? " (496 evicting)" : "");
		fprintf(f, "%-40s %9.1f %9.1f %9.1f %9.1f  %-8s %-14s %s%s\n", x->name, x->ns,
			above(x), t->ns, above(t), target, met, kat,
			x->bad_verdicts || t->bad_verdicts ? "  (unexpected verdicts!)" : "");
	}
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--out FILE] [--iters N] [--batches B] [--flows N] [--only TEXT]\n",
		argv0);
}

/*
 * A source-NATed service for the SNAT cases: 10.0.0.90:80 -> backend 20
 * (next hop cached), eight edge addresses 10.1.0.1-8, ports 1024-65535: room
 * for 516k flows to the one backend. The ~210k SYNs of a case claim ports
 * half-open: after the first 32768 the half-open table is full and each claim
 * evicts its oldest, as under a flood (snat_flush() empties both tables
 * between cases).
 */
static const struct topo_backend snat_be = {
	20,	     20,
	SHIFT_BLUE,  4,
	IPPROTO_TCP, { 10, 1, 0, 90 },
	8080,	     true,
	0,	     { 0x02, 0xbe, 0, 0, 0, 20 },
};

/* A service of this bench's own, be its one backend, blue; what names it. */
static int own_service(struct harness *h, const struct topo_service *svc,
		       const struct topo_backend *be, const char *what)
{
	__u32 id = be->id;

	if (harness_add_service(h, svc) || harness_add_backend(h, be) ||
	    harness_pool(h, svc->id, SHIFT_BLUE, &id, 1)) {
		fprintf(stderr, "bench: cannot set up the %s service\n", what);
		return -1;
	}
	return 0;
}

static int snat_service(struct harness *h)
{
	static const struct topo_service svc = {
		20, 4, IPPROTO_TCP, { 10, 0, 0, 90 }, 80, SHIFT_SVC_F_SNAT,
	};
	struct shift_snat_cfg cfg;
	__u32 id = svc.id;

	memset(&cfg, 0, sizeof(cfg));
	for (cfg.n_addrs = 0; cfg.n_addrs < SHIFT_SNAT_MAX_ADDRS; cfg.n_addrs++)
		cfg.addr[cfg.n_addrs][0] = htonl(0x0a010001 + cfg.n_addrs);
	cfg.run_lo[0] = 1024;
	cfg.run_n[0] = 65535 - 1024 + 1;
	if (bpf_map_update_elem(h->m.fd[SHIFT_MAP_SNAT_CFG], &id, &cfg, BPF_ANY)) {
		fprintf(stderr, "bench: the SNAT service's addresses: %s\n", strerror(errno));
		return -1;
	}
	return own_service(h, &svc, &snat_be, "SNAT");
}

/*
 * An HTTP/1.x service for the case of an answer that makes a sample:
 * 10.0.0.91:80 -> backend 21 (next hop cached), analysis = http.
 */
static const struct topo_backend http_be = {
	.id = 21,
	.svc = 21,
	.color = SHIFT_BLUE,
	.family = 4,
	.proto = IPPROTO_TCP,
	.addr = { 10, 1, 0, 91 },
	.port = 8080,
	.nh = true,
	.mac = { 0x02, 0xbe, 0, 0, 0, 21 },
};

static int http_service(struct harness *h)
{
	static const struct topo_service svc = {
		21, 4, IPPROTO_TCP, { 10, 0, 0, 91 }, 80, SHIFT_SVC_F_HTTP,
	};

	return own_service(h, &svc, &http_be, "HTTP");
}

/* ctx: the count of RESPONSE samples of the HTTP service's backend. */
static int count_sample(void *ctx, void *data, size_t len)
{
	const struct shift_sample *s = data;

	if (len >= sizeof(*s) && s->kind == SHIFT_SAMPLE_RESPONSE && s->status == 200 &&
	    s->backend_id == http_be.id)
		++*(__u64 *)ctx;
	return 0;
}

/*
 * Address r, a reply of snat_be, to the edge's address and port that the
 * source-NATed client flow ack left from: its entry's snat_idx into its
 * service's addresses (shift_snat_cfg, as the datapath reads them), and its
 * snat_port.
 */
static int snat_reply_to(struct harness *h, const struct pkt_spec *ack, struct pkt_spec *r)
{
	struct shift_snat_cfg cfg;
	struct shift_flow f;
	__u32 sid;

	if (harness_flow_get(h, ack, &f) || !f.snat_port || f.snat_idx >= SHIFT_SNAT_MAX_ADDRS)
		return -1;
	sid = f.service_id;
	if (bpf_map_lookup_elem(h->m.fd[SHIFT_MAP_SNAT_CFG], &sid, &cfg))
		return -1;
	memcpy(r->daddr, cfg.addr[f.snat_idx], 4);
	r->dport = ntohs(f.snat_port);
	return 0;
}

/*
 * Empty one table of reverse mappings. The keys are read first, then
 * deleted: a walk restarted after each delete scans the emptied buckets
 * again, quadratic in the table (most of a run's time went there).
 */
static void snat_flush_map(int fd, __u32 max)
{
	struct shift_snat_key *keys;
	__u32 n = 0, i;

	keys = calloc(max, sizeof(*keys));
	if (!keys) {
		fprintf(stderr, "bench: snat_flush: out of memory\n");
		return;
	}
	while (n < max && bpf_map_get_next_key(fd, n ? &keys[n - 1] : NULL, &keys[n]) == 0)
		n++;
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &keys[i]);
	free(keys);
}

/*
 * Empty the reverse mappings, confirmed and half-open, so each SNAT case
 * (XDP, then TC) starts from free ports and an empty half-open table.
 */
static void snat_flush(const struct harness *h)
{
	snat_flush_map(h->m.fd[SHIFT_MAP_SNAT], SHIFT_DEFAULT_SNAT);
	snat_flush_map(h->m.fd[SHIFT_MAP_SNAT_HALF], SHIFT_SNAT_HALF_ENTRIES);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "iters", required_argument, NULL, 'n' },
		{ "batches", required_argument, NULL, 'b' },
		{ "flows", required_argument, NULL, 'f' },
		{ "only", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts op = { .out = NULL, .iters = 200000, .batches = 5 };
	struct bcase *cs = NULL;
	struct harness h = { 0 };
	struct fib_env env;
	/* ref_fd[v6][send][tc] (ref_lookup_prog()); XDP's send is XDP_TX, the
	 * lookup alone's program: [v6][1][0] stays -1 and [v6][0][0] serves both. */
	int pass_fd = -1, tcpass_fd = -1, swap_fd = -1, opt, err = 1, no_ref = 0;
	int call_fd[2] = { -1, -1 }; /* prog_call, prog_tc_call */
	int ref_fd[2][2][2] = { { { -1, -1 }, { -1, -1 } }, { { -1, -1 }, { -1, -1 } } };
	struct bpf_insn ref[REF_LOOKUP_INSNS];
	__u64 full4 = 0, full6 = 0, seq = 0;
	__u64 answered = 0; /* count_sample()'s */
	struct ring_buffer *rb = NULL;
	size_t n = 0, i;

	while ((opt = getopt_long(argc, argv, "o:n:b:f:O:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			op.out = optarg;
			break;
		case 'n':
			op.iters = (__u32)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			op.batches = (__u32)strtoul(optarg, NULL, 0);
			break;
		case 'f':
			op.flows = (__u32)strtoul(optarg, NULL, 0);
			break;
		case 'O':
			op.only = optarg;
			break;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (op.batches < 1 || op.batches > MAX_BATCHES || op.iters < op.batches * 10) {
		fprintf(stderr, "bench: need 1..%d batches and at least 10 calls per batch\n",
			MAX_BATCHES);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench: needs root\n");
		return 1;
	}
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bench: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	shift_log_init("bench_datapath", SHIFT_LOG_WARN);
	shift_log_libbpf();
	if (fib_env_setup(&env) || harness_open(&h, H_SEED, op.flows, op.flows) ||
	    harness_topology(&h))
		goto out;
	pass_fd = bench_load_raw(BPF_PROG_TYPE_XDP, "bench_pass", prog_pass,
				 sizeof(prog_pass) / sizeof(prog_pass[0]));
	tcpass_fd = bench_load_raw(BPF_PROG_TYPE_SCHED_CLS, "bench_tcpass", prog_tc_ok,
				   sizeof(prog_tc_ok) / sizeof(prog_tc_ok[0]));
	swap_fd = bench_load_raw(BPF_PROG_TYPE_XDP, "bench_macswap", prog_macswap,
				 sizeof(prog_macswap) / sizeof(prog_macswap[0]));
	call_fd[0] = bench_load_raw(BPF_PROG_TYPE_XDP, "bench_call", prog_call,
				    sizeof(prog_call) / sizeof(prog_call[0]));
	call_fd[1] = bench_load_raw(BPF_PROG_TYPE_SCHED_CLS, "bench_tccall", prog_tc_call,
				    sizeof(prog_tc_call) / sizeof(prog_tc_call[0]));
	no_ref |= call_fd[0] < 0 || call_fd[1] < 0;
	for (i = 0; i < 8; i++) {
		/* [v6][0]: the lookup alone; [v6][1]: and the send (TC: bpf_redirect()) */
		int v6 = i >> 2, send = (i >> 1) & 1, tc = i & 1,
		    flows = h.m.fd[v6 ? SHIFT_MAP_FLOWS6 : SHIFT_MAP_FLOWS4];
		unsigned int ni;

		if (send && !tc)
			continue;
		ni = ref_lookup_prog(ref, flows, tc, send ? H_LO_IFINDEX : 0, v6);
		ref_fd[v6][send][tc] = bench_load_raw(
			tc ? BPF_PROG_TYPE_SCHED_CLS : BPF_PROG_TYPE_XDP,
			tc ? (send ? "bench_tcredirect" : "bench_tclookup") : "bench_lookup", ref,
			ni);
		no_ref |= ref_fd[v6][send][tc] < 0;
	}
	cs = calloc(64, sizeof(*cs));
	if (no_ref || pass_fd < 0 || tcpass_fd < 0 || swap_fd < 0 || !cs || snat_service(&h) ||
	    http_service(&h))
		goto out;
	rb = ring_buffer__new(h.m.fd[SHIFT_MAP_SAMPLES], count_sample, &answered, NULL);
	if (!rb) {
		fprintf(stderr, "bench: ring_buffer__new: %s\n", strerror(errno));
		goto out;
	}
	if (fill_table(h.m.fd[SHIFT_MAP_FLOWS4], false, &full4) ||
	    fill_table(h.m.fd[SHIFT_MAP_FLOWS6], true, &full6))
		goto out;

	{
		const struct pkt_spec ack4 = V4(10, 40001, 0x10), other4 = V4(99, 40002, 0x10),
				      syn4 = V4(10, 40000, 0x02), fsyn4 = V4(60, 40003, 0x02),
				      fack4 = V4(60, 40004, 0x10), rep4 = R4(40001, 0x18),
				      synack4 = R4(40010, 0x12), syn6 = V6(0x10, 443, 40005, 0x02),
				      ack6 = V6(0x10, 443, 40006, 0x10),
				      other6 = V6(0x99, 443, 40007, 0x10), rep6 = R6(40006, 0x18),
				      synack6 = R6(40011, 0x12), nsyn4 = V4(90, 40020, 0x02),
				      nack4 = V4(90, 40021, 0x10);
		/* The HTTP service's flow: opened without payload, then a request
		 * and its answer, each one segment. */
		static const char http_req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
		static const char http_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
		struct pkt_spec hack4 = V4(91, 40030, 0x10), hreq4, hrep4 = R4(40030, 0x18);
		/* The source-NATed flow's reply: to the edge's address and port
		 * that nack4's mapping holds, set once its flow is open. */
		struct pkt_spec nrep4 = R4(0, 0x18);
		/* A SYN from the client side (the edge's shv1 MAC, in on shv1)
		 * and its blue backend's SYN-ACK (syn_to() sets the port). */
		static const __u8 shv1_mac[6] = FIB_MAC_SHV1;
		struct pkt_spec nhsyn4 = V4(10, 0, 0x02), nhack4 = R4(0, 0x12),
				nhsyn6 = V6(0x10, 443, 0, 0x02), nhack6 = R6(0, 0x12);

		const struct {
			const char *name;
			enum h_prog prog;
			const struct pkt_spec *s;
			__u32 ifindex, verdict;
			enum mutate mut;
			const struct pkt_spec *est; /* open this client flow first */
			int target, katran;
			bool snat;
			/* not shift: 1 the table's lookup alone, 2 and the send
			 * (ref_lookup_prog()); 3, 4 the same with the v6 table;
			 * 5 a helper's call and return (prog_call) */
			int ref;
			const struct topo_backend *be; /* est's, of this bench's HTTP service */
			const char *text; /* s's payload */
			const struct pkt_spec *pre; /* MUT_REQUEST's request */
			const char *pre_text;
			const struct pkt_spec *syn; /* bcase.syn: in on the client side */
		} def[] = {
			{ "host: a helper's call and return", H_CLIENT, &other4, H_LO_IFINDEX,
			  XDP_PASS, MUT_NONE, NULL, 0, 0, false, 5 },
			{ "v4 non-VIP (pass)", H_CLIENT, &other4, H_LO_IFINDEX, XDP_PASS },
			{ "v4 SYN new flow, table full", H_CLIENT, &syn4, H_LO_IFINDEX, XDP_TX,
			  MUT_NEW_FLOW, NULL, 150, 296 },
			{ "v4 SYN again (same tuple)", H_CLIENT, &syn4, H_LO_IFINDEX, XDP_TX },
			{ "v4 established", H_CLIENT, &ack4, H_LO_IFINDEX, XDP_TX, MUT_NONE, &ack4,
			  50, 151 },
			{ "  its floor: the table's lookup alone", H_CLIENT, &ack4, H_LO_IFINDEX,
			  XDP_TX, MUT_NONE, &ack4, 0, 0, false, 1 },
			{ "  and the send (XDP_TX / bpf_redirect())", H_CLIENT, &ack4, H_LO_IFINDEX,
			  XDP_TX, MUT_NONE, &ack4, 0, 0, false, 2 },
			{ "v4 reply, next hop in the entry", H_BACKEND, &rep4, H_LO_IFINDEX, XDP_TX,
			  MUT_NONE, &ack4, 100 },
			/* An answer whose status line closes a request: a RESPONSE
			 * sample into the ring, every 64th with a forced wakeup. */
			{ "v4 reply, HTTP answer (a sample)", H_BACKEND, &hrep4, H_LO_IFINDEX,
			  XDP_TX, MUT_REQUEST, &hack4, 0, 0, false, 0, &http_be, http_resp, &hreq4,
			  http_req },
			{ "v4 SYN-ACK reply (no entry: FIB)", H_BACKEND, &synack4, (__u32)env.if_be,
			  XDP_REDIRECT },
			/* Its SYN came in on the client side: back that way. */
			{ "v4 SYN-ACK reply (its SYN's next hop)", H_BACKEND, &nhack4,
			  (__u32)env.if_be, XDP_REDIRECT, .syn = &nhsyn4 },
			/* Before the SYN case below: its snat_flush() would empty
			 * nack4's mapping, which gives this reply its port. */
			{ "v4 reply, SNAT (the mapping's lookup)", H_BACKEND, &nrep4, H_LO_IFINDEX,
			  XDP_TX, MUT_NONE, &nack4, 0, 0, true },
			/* Source NAT claims a port at the SYN (README): its cost beside. */
			{ "v4 SYN new flow, SNAT (claims a port)", H_CLIENT, &nsyn4, H_LO_IFINDEX,
			  XDP_TX, MUT_NEW_FLOW, NULL, 0, 0, true },
			{ "v4 established, SNAT", H_CLIENT, &nack4, H_LO_IFINDEX, XDP_TX, MUT_NONE,
			  &nack4, 0, 0, true },
			{ "v4 SYN new flow, bpf_fib_lookup", H_CLIENT, &fsyn4, (__u32)env.if_cl,
			  XDP_REDIRECT, MUT_NEW_FLOW },
			{ "v4 established, bpf_fib_lookup", H_CLIENT, &fack4, (__u32)env.if_cl,
			  XDP_REDIRECT, MUT_NONE, &fack4 },
			{ "v6 non-VIP (pass)", H_CLIENT, &other6, H_LO_IFINDEX, XDP_PASS },
			{ "v6 SYN new flow, table full", H_CLIENT, &syn6, H_LO_IFINDEX, XDP_TX,
			  MUT_NEW_FLOW, NULL, 150 },
			{ "v6 established", H_CLIENT, &ack6, H_LO_IFINDEX, XDP_TX, MUT_NONE, &ack6,
			  50 },
			{ "  its floor: the v6 table's lookup alone", H_CLIENT, &ack6, H_LO_IFINDEX,
			  XDP_TX, MUT_NONE, &ack6, 0, 0, false, 3 },
			{ "  and the send (XDP_TX / bpf_redirect())", H_CLIENT, &ack6, H_LO_IFINDEX,
			  XDP_TX, MUT_NONE, &ack6, 0, 0, false, 4 },
			{ "v6 reply, next hop in the entry", H_BACKEND, &rep6, H_LO_IFINDEX, XDP_TX,
			  MUT_NONE, &ack6, 100 },
			{ "v6 SYN-ACK reply (no entry: FIB)", H_BACKEND, &synack6, (__u32)env.if_be,
			  XDP_REDIRECT },
			{ "v6 SYN-ACK reply (its SYN's next hop)", H_BACKEND, &nhack6,
			  (__u32)env.if_be, XDP_REDIRECT, .syn = &nhsyn6 },
		};

		memcpy(nhsyn4.dmac, shv1_mac, 6);
		memcpy(nhsyn6.dmac, shv1_mac, 6);
		nhsyn4.payload = nhsyn6.payload = 0;
		/* Blue backends 0 and 4 (R4's, R6's), whose SYN-ACKs answer ISN 1000. */
		if (syn_to(&h, &nhsyn4, 0, 40040, 1000) < 0 ||
		    syn_to(&h, &nhsyn6, 4, 40040, 1000) < 0) {
			fprintf(stderr, "bench: no client port whose SYN goes to blue\n");
			goto out;
		}
		nhack4.dport = nhsyn4.sport;
		nhack6.dport = nhsyn6.sport;
		hack4.payload = 0;
		hreq4 = hack4;
		hreq4.tcp_flags = 0x18; /* ACK | PSH */
		hreq4.payload = (__u16)strlen(http_req);
		memcpy(hrep4.saddr, http_be.addr, 4);
		memcpy(nrep4.saddr, snat_be.addr, 4);
		memcpy(nrep4.smac, snat_be.mac, 6);
		memcpy(hrep4.smac, http_be.mac, 6);
		hrep4.payload = (__u16)strlen(http_resp);
		for (i = 0; i < sizeof(def) / sizeof(def[0]); i++) {
			int k;

			if (op.only && !strstr(def[i].name, op.only))
				continue;
			if (def[i].est &&
			    establish(&h, def[i].est, def[i].snat ? &snat_be : def[i].be,
				      def[i].snat)) {
				fprintf(stderr, "bench: %s: opening the flow failed\n",
					def[i].name);
				goto out;
			}
			if (def[i].snat && def[i].prog == H_BACKEND &&
			    snat_reply_to(&h, def[i].est, &nrep4)) {
				fprintf(stderr, "bench: %s: the flow has no source port\n",
					def[i].name);
				goto out;
			}
			for (k = 0; k < 2; k++, n++) {
				struct bcase *c = &cs[n];

				c->name = def[i].name;
				c->tc = k == 1;
				c->prog_fd = c->tc ? h.tc_prog[def[i].prog] : h.prog[def[i].prog];
				if (def[i].ref == 5)
					c->prog_fd = call_fd[k];
				else if (def[i].ref)
					c->prog_fd = ref_fd[(def[i].ref - 1) >> 1]
							   [k ? (def[i].ref - 1) & 1 : 0][k];
				c->pass_fd = c->tc ? tcpass_fd : pass_fd;
				c->ifindex = def[i].ifindex;
				c->verdict = c->tc ? tc_of(def[i].verdict) : def[i].verdict;
				c->mut = def[i].mut;
				c->target = def[i].target;
				c->katran = def[i].katran;
				c->snat = def[i].snat;
				if (!build(c, def[i].s, def[i].text))
					goto out;
				if (def[i].syn) {
					c->syn_len =
						pkt_build(def[i].syn, c->syn, sizeof(c->syn), NULL);
					c->syn_fd = c->tc ? h.tc_prog[H_CLIENT] : h.prog[H_CLIENT];
					c->syn_ifindex = (__u32)env.if_cl;
					if (!c->syn_len)
						goto out;
				}
				if (def[i].pre) {
					c->pre_len = pkt_build_payload(def[i].pre, def[i].pre_text,
								       c->pre, sizeof(c->pre),
								       NULL);
					c->pre_fd = c->tc ? h.tc_prog[H_CLIENT] : h.prog[H_CLIENT];
					c->rb = rb;
					if (!c->pre_len)
						goto out;
				}
			}
		}
	}
	for (i = 0; i < n; i++) {
		__u64 made = answered;

		if (cs[i].snat && cs[i].mut == MUT_NEW_FLOW)
			snat_flush(&h);
		if (measure(&cs[i], &op, &seq))
			goto out;
		/* Else the case timed answers that made no sample. */
		if (cs[i].rb && answered - made != cs[i].calls) {
			fprintf(stderr, "bench: %s: %llu answers made %llu samples\n", cs[i].name,
				(unsigned long long)cs[i].calls,
				(unsigned long long)(answered - made));
			goto out;
		}
		fprintf(stderr, "bench: %-3s %-40s %8.1f ns (floor %.1f)\n",
			cs[i].tc ? "TC" : "XDP", cs[i].name, cs[i].ns, cs[i].floor);
	}
	print_table(stdout, cs, n, &op, full4, full6);
	if (op.out) {
		FILE *f = fopen(op.out, "w");

		if (!f) {
			fprintf(stderr, "bench: %s: %s\n", op.out, strerror(errno));
			goto out;
		}
		print_table(f, cs, n, &op, full4, full6);
		if (fclose(f)) {
			fprintf(stderr, "bench: %s: %s\n", op.out, strerror(errno));
			goto out;
		}
	}
	err = 0;
	for (i = 0; i < n; i++)
		if (cs[i].bad_verdicts) {
			fprintf(stderr, "bench: %s: %u calls returned an unexpected verdict\n",
				cs[i].name, cs[i].bad_verdicts);
			err = 1;
		}
out:
	if (pass_fd >= 0)
		close(pass_fd);
	if (swap_fd >= 0)
		close(swap_fd);
	for (i = 0; i < 2; i++)
		if (call_fd[i] >= 0)
			close(call_fd[i]);
	for (i = 0; i < 8; i++)
		if (ref_fd[i >> 2][(i >> 1) & 1][i & 1] >= 0)
			close(ref_fd[i >> 2][(i >> 1) & 1][i & 1]);
	if (tcpass_fd >= 0)
		close(tcpass_fd);
	ring_buffer__free(rb);
	free(cs);
	harness_close(&h);
	return err;
}
