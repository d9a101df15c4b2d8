// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench_datapath: per-packet cost of the real datapath programs, measured with
 * BPF_PROG_TEST_RUN one packet per call (repeat = 1, STYLE habit 7: the
 * programs rewrite the packet, so every call starts from the pristine input;
 * the kernel copies data_in afresh on every call and nothing is copied back).
 * Each case is reported minus an XDP_PASS program timed in the same run,
 * interleaved batch by batch: that is the harness's fixed cost. The TC entry
 * points run on an skb (a __sk_buff context): their floor is a TC program
 * returning TC_ACT_OK, timed the same way. Source NAT's cost is the SNAT
 * service's figure beside the plain one.
 *
 *   bench_datapath [--out FILE] [--iters N] [--batches B] [--flows N]
 *
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
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>

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

/* The TC floor: return TC_ACT_OK (0). */
static const struct bpf_insn prog_tc_pass[] = {
	MOV64_IMM(BPF_REG_0, 0),
	EXIT(),
};

enum mutate {
	MUT_NONE, /* the same packet every call */
	MUT_NEW_FLOW, /* a fresh source address and port every call: really a new flow */
};

struct bcase {
	const char *name;
	int prog_fd;
	__u8 pkt[PKT_MAX];
	__u32 len;
	__u32 ifindex;
	__u32 verdict;
	enum mutate mut;
	bool tc; /* a TC program: __sk_buff context, TC floor */
	__u8 family;
	__u32 l3;
	int target; /* ns above XDP_PASS, 0 = none */
	/* results */
	double ns; /* median of batch means (kernel-timed) */
	double floor; /* median of the interleaved XDP_PASS batch means */
	double wall; /* median per-call wall clock, syscall included */
	__u32 bad_verdicts;
};

struct opts {
	const char *out;
	__u32 iters;
	__u32 batches;
	__u32 flows; /* 0: the loader's default */
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

	memset(&ctx, 0, sizeof(ctx));
	ctx.data_end = c->len;
	ctx.ingress_ifindex = c->ifindex;
	memset(&skb, 0, sizeof(skb));
	skb.ifindex = c->ifindex;
	skb.ingress_ifindex = c->ifindex;
	o.data_in = c->pkt;
	o.data_size_in = c->len;
	if (c->tc) {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
	} else {
		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
	}
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		if (c->mut == MUT_NEW_FLOW && prog_fd == c->prog_fd)
			new_flow(c, (*seq)++);
		err = bpf_prog_test_run_opts(prog_fd, &o);
		if (err) {
			fprintf(stderr, "bench: %s: BPF_PROG_TEST_RUN: %s\n", c->name,
				strerror(-err));
			return err;
		}
		sum += o.duration;
		if (prog_fd == c->prog_fd && o.retval != c->verdict && !(*bad)++)
			fprintf(stderr, "bench: %s: verdict %u, expected %u\n", c->name, o.retval,
				c->verdict);
	}
	*wall = (now_ns() - t0) / n;
	*mean = sum / n;
	return 0;
}

static int measure(struct bcase *c, int pass_fd, const struct opts *op)
{
	double ns[MAX_BATCHES], fl[MAX_BATCHES], wall[MAX_BATCHES], w;
	__u32 per = op->iters / op->batches, b;
	__u64 seq = 0;
	int err;

	/* Warm up both (caches, the connection table's first inserts). */
	err = run_batch(c->prog_fd, c, per / 10 + 1, &seq, &ns[0], &w, &c->bad_verdicts);
	if (!err)
		err = run_batch(pass_fd, c, per / 10 + 1, &seq, &fl[0], &w, &c->bad_verdicts);
	c->bad_verdicts = 0;
	for (b = 0; b < op->batches && !err; b++) {
		err = run_batch(pass_fd, c, per, &seq, &fl[b], &w, &c->bad_verdicts);
		if (!err)
			err = run_batch(c->prog_fd, c, per, &seq, &ns[b], &wall[b],
					&c->bad_verdicts);
	}
	if (err)
		return err;
	c->ns = median(ns, op->batches);
	c->floor = median(fl, op->batches);
	c->wall = median(wall, op->batches);
	return 0;
}

static int load_raw(enum bpf_prog_type type, const char *name, const struct bpf_insn *insns,
		    size_t n)
{
	char log[4096] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, o, .log_buf = log, .log_size = sizeof(log), .log_level = 1);
	int fd = bpf_prog_load(type, name, "GPL", insns, n, &o);

	if (fd < 0)
		fprintf(stderr, "bench: loading %s: %s\n%s\n", name, strerror(-fd), log);
	return fd;
}

static __u32 build(struct bcase *c, const struct pkt_spec *s)
{
	struct pkt_layout lo;

	c->len = pkt_build(s, c->pkt, sizeof(c->pkt), &lo);
	c->l3 = lo.l3;
	c->family = s->family;
	return c->len;
}

/* Open a flow once so the case measures the established path. */
static int establish(struct bcase *c, const struct pkt_spec *ack)
{
	struct pkt_spec syn = *ack;
	__u8 buf[PKT_MAX];
	__u32 len, verdict;

	syn.tcp_flags = 0x02;
	len = pkt_build(&syn, buf, sizeof(buf), NULL);
	if (c->tc)
		return harness_run_skb(c->prog_fd, buf, len, c->ifindex, NULL, NULL, &verdict, 0);
	return harness_run(c->prog_fd, buf, len, c->ifindex, NULL, NULL, &verdict);
}

#define V4(dst_b3, sp, flags)                                                             \
	{                                                                                 \
		.dmac = MAC_EDGE, .smac = MAC_CLIENT, .family = 4, .proto = IPPROTO_TCP,  \
		.saddr = { 198, 51, 100, 7 }, .daddr = { 10, 0, 0, dst_b3 }, .sport = sp, \
		.dport = 80, .ttl = 64, .tcp_flags = flags, .payload = 64, .seq = 1       \
	}
#define V6(dst_last, dp, sp, flags)                                                              \
	{                                                                                        \
		.dmac = MAC_EDGE, .smac = MAC_CLIENT, .family = 6, .proto = IPPROTO_TCP,         \
		.saddr = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7 },      \
		.daddr = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, dst_last },  \
		.sport = sp, .dport = dp, .ttl = 64, .tcp_flags = flags, .payload = 64, .seq = 1 \
	}

static void print_table(FILE *f, const struct bcase *cs, size_t n, const struct opts *op)
{
	struct utsname u;
	char flows[32] = "default size";
	size_t i;

	if (op->flows)
		snprintf(flows, sizeof(flows), "%u entries", op->flows);
	if (uname(&u))
		memset(&u, 0, sizeof(u));
	fprintf(f,
		"# bench_datapath: BPF_PROG_TEST_RUN, repeat = 1, %u calls per case in %u "
		"batches, median of batch means\n",
		op->iters, op->batches);
	fprintf(f,
		"# kernel %s %s; ns = kernel-timed program run; above = ns - XDP_PASS of the "
		"same run; wall = per call incl. syscall\n",
		u.release, u.machine);
	fprintf(f, "%-44s %8s %8s %8s %10s %s\n", "case", "ns", "pass", "above", "wall ns",
		"target (above XDP_PASS)");
	for (i = 0; i < n; i++) {
		const struct bcase *c = &cs[i];
		double above = c->ns - c->floor;
		char target[48] = "-";

		if (c->target)
			snprintf(target, sizeof(target), "<= %d ns: %s", c->target,
				 above <= c->target ? "met" : "MISSED");
		fprintf(f, "%-44s %8.1f %8.1f %8.1f %10.0f %s%s\n", c->name, c->ns, c->floor, above,
			c->wall, target, c->bad_verdicts ? "  (unexpected verdicts!)" : "");
	}
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--out FILE] [--iters N] [--batches B] [--flows N]\n", argv0);
}

/*
 * A source-NATed service for the SNAT cases: 10.0.0.90:80 -> backend 20
 * (next hop cached), eight edge addresses 10.1.0.1-8, ports 1024-65535: room
 * for 516k flows to the one backend, so the ~210k new flows of a case claim
 * ports in a table at most 40 % full (snat_flush() empties it between cases).
 */
static int snat_service(struct harness *h)
{
	static const struct topo_service svc = {
		20, 4, IPPROTO_TCP, { 10, 0, 0, 90 }, 80, SHIFT_SVC_F_SNAT,
	};
	static const struct topo_backend be = {
		20,	     20,
		SHIFT_BLUE,  4,
		IPPROTO_TCP, { 10, 1, 0, 90 },
		8080,	     true,
		0,	     { 0x02, 0xbe, 0, 0, 0, 20 },
	};
	struct shift_snat_cfg cfg;
	__u32 id = 20;
	int err;

	memset(&cfg, 0, sizeof(cfg));
	for (cfg.n_addrs = 0; cfg.n_addrs < SHIFT_SNAT_MAX_ADDRS; cfg.n_addrs++)
		cfg.addr[cfg.n_addrs][0] = htonl(0x0a010001 + cfg.n_addrs);
	cfg.run_lo[0] = 1024;
	cfg.run_n[0] = 65535 - 1024 + 1;
	err = bpf_map_update_elem(h->m.fd[SHIFT_MAP_SNAT_CFG], &id, &cfg, BPF_ANY);
	if (err || harness_add_service(h, &svc) || harness_add_backend(h, &be) ||
	    harness_pool(h, 20, SHIFT_BLUE, &id, 1)) {
		fprintf(stderr, "bench: cannot set up the SNAT service\n");
		return -1;
	}
	return 0;
}

/* Empty the reverse mappings, so each SNAT case starts from free ports. */
static void snat_flush(const struct harness *h)
{
	struct shift_snat_key next;
	__u32 guard = 0;

	/* Each key deleted: ask for the first one again. */
	while (bpf_map_get_next_key(h->m.fd[SHIFT_MAP_SNAT], NULL, &next) == 0 &&
	       guard++ < 4 * SHIFT_DEFAULT_SNAT)
		bpf_map_delete_elem(h->m.fd[SHIFT_MAP_SNAT], &next);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "iters", required_argument, NULL, 'n' },
		{ "batches", required_argument, NULL, 'b' },
		{ "flows", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts op = { .out = NULL, .iters = 200000, .batches = 5 };
	struct bcase *cs = NULL;
	struct harness h = { 0 };
	struct fib_env env;
	int pass_fd = -1, swap_fd = -1, tc_pass_fd = -1, opt, err = 1;
	size_t n = 0, i;

	while ((opt = getopt_long(argc, argv, "o:n:b:f:h", lopts, NULL)) != -1) {
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
	pass_fd = load_raw(BPF_PROG_TYPE_XDP, "bench_pass", prog_pass,
			   sizeof(prog_pass) / sizeof(prog_pass[0]));
	swap_fd = load_raw(BPF_PROG_TYPE_XDP, "bench_macswap", prog_macswap,
			   sizeof(prog_macswap) / sizeof(prog_macswap[0]));
	tc_pass_fd = load_raw(BPF_PROG_TYPE_SCHED_CLS, "bench_tc_pass", prog_tc_pass,
			      sizeof(prog_tc_pass) / sizeof(prog_tc_pass[0]));
	cs = calloc(64, sizeof(*cs));
	if (pass_fd < 0 || swap_fd < 0 || tc_pass_fd < 0 || !cs || snat_service(&h))
		goto out;

	{
		const struct pkt_spec syn4 = V4(10, 40000, 0x02), ack4 = V4(10, 40001, 0x10),
				      other4 = V4(99, 40002, 0x10), fsyn4 = V4(60, 40003, 0x02),
				      fack4 = V4(60, 40004, 0x10),
				      syn6 = V6(0x10, 443, 40005, 0x02),
				      ack6 = V6(0x10, 443, 40006, 0x10),
				      other6 = V6(0x99, 443, 40007, 0x10),
				      fsyn6 = V6(0x60, 80, 40008, 0x02),
				      fack6 = V6(0x60, 80, 40009, 0x10),
				      nsyn4 = V4(90, 40010, 0x02), nack4 = V4(90, 40011, 0x10),
				      tsyn4 = V4(10, 40012, 0x02), tack4 = V4(10, 40013, 0x10),
				      tsyn6 = V6(0x10, 443, 40014, 0x02),
				      tack6 = V6(0x10, 443, 40015, 0x10),
				      tnsyn4 = V4(90, 40016, 0x02), tnack4 = V4(90, 40017, 0x10),
				      tfack4 = V4(60, 40018, 0x10);
		const __u32 TC_REDIR = 7, TC_NEXT = (__u32)-1;
		const struct {
			const char *name;
			int fd;
			const struct pkt_spec *s;
			__u32 ifindex, verdict;
			enum mutate mut;
			bool est;
			int target;
			bool tc;
		} def[] = {
			{ "XDP_PASS (the floor)", pass_fd, &ack4, H_LO_IFINDEX, XDP_PASS },
			{ "MAC swap + XDP_TX (reference)", swap_fd, &ack4, H_LO_IFINDEX, XDP_TX },
			{ "v4 non-VIP (pass)", h.prog[H_CLIENT], &other4, H_LO_IFINDEX, XDP_PASS },
			{ "v4 SYN new flow, next hop cached", h.prog[H_CLIENT], &syn4, H_LO_IFINDEX,
			  XDP_TX, MUT_NEW_FLOW, false, 150 },
			{ "v4 established, next hop cached", h.prog[H_CLIENT], &ack4, H_LO_IFINDEX,
			  XDP_TX, MUT_NONE, true, 50 },
			{ "v4 SYN new flow, bpf_fib_lookup", h.prog[H_CLIENT], &fsyn4,
			  (__u32)env.if_cl, XDP_REDIRECT, MUT_NEW_FLOW },
			{ "v4 established, bpf_fib_lookup", h.prog[H_CLIENT], &fack4,
			  (__u32)env.if_cl, XDP_REDIRECT, MUT_NONE, true },
			{ "v6 non-VIP (pass)", h.prog[H_CLIENT], &other6, H_LO_IFINDEX, XDP_PASS },
			{ "v6 SYN new flow, next hop cached", h.prog[H_CLIENT], &syn6, H_LO_IFINDEX,
			  XDP_TX, MUT_NEW_FLOW },
			{ "v6 established, next hop cached", h.prog[H_CLIENT], &ack6, H_LO_IFINDEX,
			  XDP_TX, MUT_NONE, true },
			{ "v6 SYN new flow, bpf_fib_lookup", h.prog[H_CLIENT], &fsyn6,
			  (__u32)env.if_cl, XDP_REDIRECT, MUT_NEW_FLOW },
			{ "v6 established, bpf_fib_lookup", h.prog[H_CLIENT], &fack6,
			  (__u32)env.if_cl, XDP_REDIRECT, MUT_NONE, true },
			{ "v4 SYN new flow, SNAT, next hop cached", h.prog[H_CLIENT], &nsyn4,
			  H_LO_IFINDEX, XDP_TX, MUT_NEW_FLOW },
			{ "v4 established, SNAT, next hop cached", h.prog[H_CLIENT], &nack4,
			  H_LO_IFINDEX, XDP_TX, MUT_NONE, true },
			/* The TC entry points, against the TC floor. */
			{ "TC: TC_ACT_OK (the TC floor)", tc_pass_fd, &ack4, H_LO_IFINDEX, 0,
			  MUT_NONE, false, 0, true },
			{ "TC: v4 non-VIP (pass)", h.tc_prog[H_CLIENT], &other4, H_LO_IFINDEX,
			  TC_NEXT, MUT_NONE, false, 0, true },
			{ "TC: v4 SYN new flow, next hop cached", h.tc_prog[H_CLIENT], &tsyn4,
			  H_LO_IFINDEX, TC_REDIR, MUT_NEW_FLOW, false, 0, true },
			{ "TC: v4 established, next hop cached", h.tc_prog[H_CLIENT], &tack4,
			  H_LO_IFINDEX, TC_REDIR, MUT_NONE, true, 0, true },
			{ "TC: v4 established, bpf_fib_lookup", h.tc_prog[H_CLIENT], &tfack4,
			  (__u32)env.if_cl, TC_REDIR, MUT_NONE, true, 0, true },
			{ "TC: v6 non-VIP (pass)", h.tc_prog[H_CLIENT], &other6, H_LO_IFINDEX,
			  TC_NEXT, MUT_NONE, false, 0, true },
			{ "TC: v6 SYN new flow, next hop cached", h.tc_prog[H_CLIENT], &tsyn6,
			  H_LO_IFINDEX, TC_REDIR, MUT_NEW_FLOW, false, 0, true },
			{ "TC: v6 established, next hop cached", h.tc_prog[H_CLIENT], &tack6,
			  H_LO_IFINDEX, TC_REDIR, MUT_NONE, true, 0, true },
			{ "TC: v4 SYN new flow, SNAT, next hop cached", h.tc_prog[H_CLIENT],
			  &tnsyn4, H_LO_IFINDEX, TC_REDIR, MUT_NEW_FLOW, false, 0, true },
			{ "TC: v4 established, SNAT, next hop cached", h.tc_prog[H_CLIENT], &tnack4,
			  H_LO_IFINDEX, TC_REDIR, MUT_NONE, true, 0, true },
		};

		for (i = 0; i < sizeof(def) / sizeof(def[0]); i++, n++) {
			struct bcase *c = &cs[n];

			c->name = def[i].name;
			c->prog_fd = def[i].fd;
			c->ifindex = def[i].ifindex;
			c->verdict = def[i].verdict;
			c->mut = def[i].mut;
			c->target = def[i].target;
			c->tc = def[i].tc;
			if (!build(c, def[i].s))
				goto out;
			if (def[i].est && establish(c, def[i].s)) {
				fprintf(stderr, "bench: %s: opening the flow failed\n", c->name);
				goto out;
			}
		}
	}
	for (i = 0; i < n; i++) {
		if (strstr(cs[i].name, "SYN new flow, SNAT"))
			snat_flush(&h);
		if (measure(&cs[i], cs[i].tc ? tc_pass_fd : pass_fd, &op))
			goto out;
		fprintf(stderr, "bench: %-44s %8.1f ns (%s %.1f)\n", cs[i].name, cs[i].ns,
			cs[i].tc ? "TC floor" : "XDP_PASS", cs[i].floor);
	}
	print_table(stdout, cs, n, &op);
	if (op.out) {
		FILE *f = fopen(op.out, "w");

		if (!f) {
			fprintf(stderr, "bench: %s: %s\n", op.out, strerror(errno));
			goto out;
		}
		print_table(f, cs, n, &op);
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
	if (tc_pass_fd >= 0)
		close(tc_pass_fd);
	free(cs);
	harness_close(&h);
	return err;
}
