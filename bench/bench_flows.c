// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench_flows: the connection table at scale (SPEC "Performance targets": 1M
 * concurrent flows; memory and per-packet cost at 1M vs 1k flows).
 *
 * For each table size N (--sizes, default 1000 and 1048576), in a private network
 * namespace, with the real skeleton and the standard test topology:
 *   - memory: the IPv4 table's memlock (fdinfo, what `bpftool map show` prints),
 *     all maps' memlock, and what creating the table alone (same type, flags, key
 *     and value) takes from /proc/meminfo: MemAvailable and Vmalloc+Percpu+Slab;
 *   - "SYN into a table with room": fresh 5-tuples while the table fills;
 *   - fill: N distinct flows inserted through the real program (a SYN, the
 *     backend's SYN-ACK and the client's first ACK each: a bare SYN inserts
 *     nothing, the ACK of the SYN-ACK does), the
 *     flows of CPU c's block sent from a thread pinned to CPU c, then counted;
 *   - "established, random among N": every call an ACK of a flow drawn at random
 *     among the N in the table (at 1M the entries spread over ~112 MB: cache misses,
 *     which a single hot flow, as bench_datapath measures, never has), and beside it
 *     two floors in the same order of flows: the table's lookup alone, and one
 *     64-byte array line per flow (ref_lru_load(), ref_line_load());
 *   - "SYN, table full": fresh 5-tuples at the full table (steered statelessly:
 *     no insert, no eviction).
 * and, for the largest size, the same N flows opened from ONE CPU: how many the
 * table keeps when every handshake lands on one CPU (one common LRU list: all N).
 *
 * Method as bench_datapath (STYLE habit 7): BPF_PROG_TEST_RUN with repeat = 1,
 * the packet rewritten in userspace before every call, kernel-timed duration,
 * batches interleaved with an XDP_PASS program, median of batch means, reported
 * as ns above XDP_PASS.
 *
 *   bench_flows [--out FILE.json] [--sizes N,N,...] [--iters N] [--batches B]
 *
 * Needs root. Not part of `make check`.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
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
#define MAX_SIZES 4
#define FRESH_BASE 8000000ull /* flow indexes of "fresh" tuples: never filled */

static const struct bpf_insn prog_pass[] = {
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
	{ .code = BPF_JMP | BPF_EXIT },
};

struct pkt {
	__u8 buf[PKT_MAX];
	__u32 len, l3;
};

struct fig {
	double ns, floor; /* medians of batch means */
	int done;
};

struct size_res {
	__u32 n;
	long long memlock, all_memlock, d_avail_kb, d_kernel_kb;
	__u64 filled; /* entries counted after the fill */
	double fill_s;
	struct fig syn_room, est, syn_full;
	struct fig ref_lru, ref_line; /* the floors of "est": measure_refs() */
};

struct opts {
	const char *out;
	__u32 sizes[MAX_SIZES];
	unsigned int n_sizes;
	__u32 iters, batches;
};

static int ncpu;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* MemAvailable and the kernel allocations a map can make (VmallocUsed + Percpu +
 * Slab), in kB. */
static void meminfo(long long *avail, long long *kern)
{
	char line[256];
	long long v;
	FILE *f = fopen("/proc/meminfo", "r");

	*avail = *kern = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemAvailable: %lld", &v) == 1)
			*avail = v;
		else if (sscanf(line, "VmallocUsed: %lld", &v) == 1 ||
			 sscanf(line, "Percpu: %lld", &v) == 1 ||
			 sscanf(line, "Slab: %lld", &v) == 1)
			*kern += v;
	}
	fclose(f);
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/*
 * The table alone, created the way the loader does (LRU hash, one common list, the
 * same key and value): what creating it takes from /proc/meminfo, median of 3
 * (other processes allocate and free meanwhile on a shared machine).
 */
static void table_mem(__u32 n, long long *d_avail, long long *d_kern)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = 0);
	long long a[3], k[3], a0, k0, a1, k1;
	int i, fd[3];

	/* All three stay open until the end: a map's memory is freed later, by a work
	 * item, which would blur the next measurement. */
	for (i = 0; i < 3; i++) {
		meminfo(&a0, &k0);
		fd[i] = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "bench_flows",
				       sizeof(struct shift_flow_key4), sizeof(struct shift_flow), n,
				       &mo);
		meminfo(&a1, &k1);
		a[i] = a0 - a1;
		k[i] = k1 - k0;
	}
	for (i = 0; i < 3; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	qsort(a, 3, sizeof(a[0]), cmp_ll);
	qsort(k, 3, sizeof(k[0]), cmp_ll);
	*d_avail = a[1];
	*d_kern = k[1];
}

static long long fd_memlock(int fd)
{
	char path[64], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* memlock of every map of the skeleton (what bpftool map show adds up to). */
static long long all_memlock(const struct harness *h)
{
	long long sum = 0, v;
	int i;

	for (i = 0; i < SHIFT_MAP__COUNT; i++) {
		v = fd_memlock(h->m.fd[i]);
		if (v > 0)
			sum += v;
	}
	return sum;
}

/* The standard v4 service 10.0.0.10:80, next hop cached (as bench_datapath). */
static int build(struct pkt *p, __u8 flags)
{
	const struct pkt_spec s = {
		.dmac = MAC_EDGE,
		.smac = MAC_CLIENT,
		.family = 4,
		.proto = IPPROTO_TCP,
		.saddr = { 100, 64, 0, 0 },
		.daddr = { 10, 0, 0, 10 },
		.sport = 10000,
		.dport = 80,
		.ttl = 64,
		.tcp_flags = flags,
		.payload = 64,
		/* The first ACK is the SYN's sequence number + 1. */
		.seq = flags == 0x02 ? 0 : 1,
	};
	struct pkt_layout lo;

	p->len = pkt_build(&s, p->buf, sizeof(p->buf), &lo);
	p->l3 = lo.l3;
	return p->len ? 0 : -EINVAL;
}

/* The blue backend's SYN-ACK to flow 0's client (set_reply_flow() moves it):
 * the first ACK (acknowledgment number 0) acknowledges its sequence number + 1. */
static int build_synack(struct pkt *p)
{
	const struct pkt_spec s = {
		.dmac = MAC_EDGE,
		.smac = { 0x02, 0xbe, 0, 0, 0, 0 },
		.family = 4,
		.proto = IPPROTO_TCP,
		.saddr = { 10, 1, 0, 11 },
		.daddr = { 100, 64, 0, 0 },
		.sport = 8080,
		.dport = 10000,
		.ttl = 64,
		.tcp_flags = 0x12,
		.seq = 0xffffffffu,
		.ack = 1,
	};
	struct pkt_layout lo;

	p->len = pkt_build(&s, p->buf, sizeof(p->buf), &lo);
	p->l3 = lo.l3;
	return p->len ? 0 : -EINVAL;
}

/* Flow i's client: address 100.64.0.0/10 + i / 50000, port 10000 + i % 50000,
 * written at the IPv4 header's offset addr and the TCP header's port (stale
 * checksums: the datapath never verifies them and the incremental update costs
 * the same). */
static void put_client(struct pkt *p, __u64 i, __u32 addr, __u32 port_off)
{
	__u8 *a4 = p->buf + p->l3 + addr, *pt = p->buf + p->l3 + 20 + port_off;
	__u32 a = (__u32)(i / 50000), port = 10000 + (__u32)(i % 50000);

	a4[0] = 100;
	a4[1] = (__u8)(64 | ((a >> 16) & 0x3f));
	a4[2] = (__u8)(a >> 8);
	a4[3] = (__u8)a;
	pt[0] = (__u8)(port >> 8);
	pt[1] = (__u8)port;
}

/* Flow i, from its client. */
static void set_flow(struct pkt *p, __u64 i)
{
	put_client(p, i, 12, 0);
}

static int run1(int fd, struct pkt *p, __u32 *dur, __u32 *ret)
{
	struct xdp_md ctx;
	LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = 1);
	int err;

	memset(&ctx, 0, sizeof(ctx));
	ctx.data_end = p->len;
	ctx.ingress_ifindex = H_LO_IFINDEX;
	o.data_in = p->buf;
	o.data_size_in = p->len;
	o.ctx_in = &ctx;
	o.ctx_size_in = sizeof(ctx);
	err = bpf_prog_test_run_opts(fd, &o);
	if (err) {
		fprintf(stderr, "bench_flows: BPF_PROG_TEST_RUN: %s\n", strerror(-err));
		return err;
	}
	*dur = o.duration;
	*ret = o.retval;
	return 0;
}

/*
 * Two floors for "established, random among N", loaded beside the real program:
 *   - ref_lru: the connection table's lookup alone, the same LRU hash and the same
 *     filled entries, the key copied from the packet, nothing else;
 *   - ref_line: one 64-byte array element per flow read and written, indexed by a
 *     multiplicative hash of the source address and ports: the least any table of
 *     N flows touches per packet (one cache line in N * 64 bytes).
 * Their cost at 1M less their cost at 1k is what the memory, not the program,
 * adds per packet on this host. Both answer XDP_TX (a flow the LRU evicted during
 * the fill, see "entries after the fill", is looked up and missed, as the real
 * program's lookup misses it).
 */
static int ref_lru_load(int flows4)
{
	struct bpf_insn insns[REF_LOOKUP_INSNS];
	unsigned int n = ref_lookup_prog(insns, flows4, 0, 0, 0);

	return bench_load_raw(BPF_PROG_TYPE_XDP, "bench_ref_lru", insns, n);
}

/* lines: a power of two, 2^bits. */
static int ref_line_load(int lines, int bits)
{
	const struct bpf_insn insns[] = {
		/* 0 */ LDX(BPF_W, BPF_REG_2, BPF_REG_1, 0),
		/* 1 */ LDX(BPF_W, BPF_REG_3, BPF_REG_1, 4),
		/* 2 */ MOV64_IMM(BPF_REG_0, XDP_PASS),
		/* 3 */ MOV64_REG(BPF_REG_4, BPF_REG_2),
		/* 4 */ ADD64_IMM(BPF_REG_4, 38),
		/* 5 */ JGT_REG(BPF_REG_4, BPF_REG_3, 18),
		/* 6 */ LDX(BPF_W, BPF_REG_4, BPF_REG_2, 26), /* saddr */
		/* 7 */ LDX(BPF_W, BPF_REG_5, BPF_REG_2, 34), /* ports */
		/* 8 */ INSN(BPF_ALU | BPF_XOR | BPF_X, BPF_REG_4, BPF_REG_5, 0, 0),
		/* 9 */ INSN(BPF_ALU | BPF_MUL | BPF_K, BPF_REG_4, 0, 0, (__s32)0x9e3779b1u),
		/* 10 */ INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_4, 0, 0, 32 - bits),
		/* 11 */ STX(BPF_W, BPF_REG_10, BPF_REG_4, -4),
		/* 12 */ LD_MAP_FD(BPF_REG_1, lines),
		/* 14 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
		/* 15 */ ADD64_IMM(BPF_REG_2, -4),
		/* 16 */ CALL(BPF_FUNC_map_lookup_elem),
		/* 17 */ MOV64_REG(BPF_REG_1, BPF_REG_0),
		/* 18 */ MOV64_IMM(BPF_REG_0, XDP_PASS),
		/* 19 */ JEQ_IMM(BPF_REG_1, 0, 4),
		/* 20 */ LDX(BPF_DW, BPF_REG_2, BPF_REG_1, 0),
		/* 21 */ ADD64_IMM(BPF_REG_2, 1),
		/* 22 */ STX(BPF_DW, BPF_REG_1, BPF_REG_2, 0),
		/* 23 */ MOV64_IMM(BPF_REG_0, XDP_TX),
		/* 24 */ EXIT(),
	};

	return bench_load_raw(BPF_PROG_TYPE_XDP, "bench_ref_line", insns,
			      sizeof(insns) / sizeof(insns[0]));
}

/* How the flow of each call is chosen. */
enum pick {
	PICK_SEQ, /* *next, *next + 1, ... (fresh tuples) */
	PICK_RANDOM, /* uniformly among [0, range) */
};

struct walk {
	enum pick pick;
	__u64 next, range, rng;
};

static __u64 walk_next(struct walk *w)
{
	if (w->pick == PICK_SEQ)
		return w->next++;
	return h_rand(&w->rng) % w->range;
}

/* Batches of `per` calls, XDP_PASS and the program interleaved. */
static int measure(int prog, int pass, struct pkt *p, struct walk *w, const struct opts *op,
		   struct fig *f)
{
	double ns[MAX_BATCHES], fl[MAX_BATCHES];
	__u32 per = op->iters / op->batches, b, i, d, r, bad = 0;
	int err;

	for (b = 0; b < op->batches; b++) {
		double s = 0, sp = 0;

		for (i = 0; i < per; i++) {
			err = run1(pass, p, &d, &r);
			if (err)
				return err;
			sp += d;
		}
		for (i = 0; i < per; i++) {
			set_flow(p, walk_next(w));
			err = run1(prog, p, &d, &r);
			if (err)
				return err;
			if (r != XDP_TX && !bad++)
				fprintf(stderr, "bench_flows: verdict %u, expected XDP_TX\n", r);
			s += d;
		}
		fl[b] = sp / per;
		ns[b] = s / per;
	}
	f->ns = median(ns, op->batches);
	f->floor = median(fl, op->batches);
	f->done = 1;
	return bad ? -EPROTO : 0;
}

/* Flow i, to its client (a reply). */
static void set_reply_flow(struct pkt *p, __u64 i)
{
	put_client(p, i, 16, 2);
}

/* Handshakes for flows [from, to): the SYN, the backend's SYN-ACK, the first
 * ACK, each CPU's block from a thread pinned to it. */
static int fill(const struct harness *h, struct pkt *syn, struct pkt *synack, struct pkt *ack,
		__u64 from, __u64 to, __u32 n, bool one_cpu)
{
	__u32 d, r;
	__u64 i;
	int cpu = -1, err;

	for (i = from; i < to; i++) {
		int c = one_cpu ? 0 : (int)(i * (__u64)ncpu / n);

		if (c != cpu) {
			cpu = c;
			if (pin(cpu))
				return -EINVAL;
		}
		set_flow(syn, i);
		err = run1(h->prog[H_CLIENT], syn, &d, &r);
		if (err)
			return err;
		set_reply_flow(synack, i);
		err = run1(h->prog[H_BACKEND], synack, &d, &r);
		if (err)
			return err;
		set_flow(ack, i);
		err = run1(h->prog[H_CLIENT], ack, &d, &r);
		if (err)
			return err;
	}
	return 0;
}

static __u64 count_entries(int fd)
{
	struct shift_flow_key4 k, next;
	__u64 n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

/* The two floors of "established, random among N", the same flows drawn in the same
 * order. */
static int measure_refs(int flows4, __u32 n, int pass, struct pkt *ack, const struct opts *op,
			struct size_res *res)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo);
	struct walk w = { .pick = PICK_RANDOM, .range = n, .rng = 0x5eed5eedull + n };
	int bits = 0, lines, prog, err;

	prog = ref_lru_load(flows4);
	if (prog < 0)
		return prog;
	err = measure(prog, pass, ack, &w, op, &res->ref_lru);
	close(prog);
	if (err)
		return err;
	while ((1u << bits) < n)
		bits++;
	lines = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_lines", sizeof(__u32), 64, 1u << bits,
			       &mo);
	if (lines < 0) {
		fprintf(stderr, "bench_flows: array of %u lines: %s\n", 1u << bits,
			strerror(-lines));
		return lines;
	}
	prog = ref_line_load(lines, bits);
	if (prog < 0) {
		close(lines);
		return prog;
	}
	w.rng = 0x5eed5eedull + n;
	err = measure(prog, pass, ack, &w, op, &res->ref_line);
	close(prog);
	close(lines);
	return err;
}

static int bench_size(__u32 n, int pass, const struct opts *op, struct size_res *res)
{
	struct harness h;
	struct pkt syn, synack, ack;
	struct walk w = { 0 };
	__u64 room;
	double t0;
	int err;

	memset(res, 0, sizeof(*res));
	res->n = n;
	if (build(&syn, 0x02) || build(&ack, 0x10) || build_synack(&synack))
		return -EINVAL;
	table_mem(n, &res->d_avail_kb, &res->d_kernel_kb);
	err = harness_open(&h, H_SEED, n, 1024);
	if (err)
		return err;
	res->memlock = fd_memlock(h.m.fd[SHIFT_MAP_FLOWS4]);
	res->all_memlock = all_memlock(&h);
	err = harness_topology(&h);
	if (err)
		goto out;

	/* SYNs while the table has room: the first flows of CPU 0's block. */
	room = op->iters + op->iters / 10;
	if (room * (__u64)ncpu < n / 2) {
		pin(0);
		w.pick = PICK_SEQ;
		w.next = 0;
		err = measure(h.prog[H_CLIENT], pass, &syn, &w, op, &res->syn_room);
		if (err)
			goto out;
	} else {
		w.next = 0;
	}
	/* The client's first ACK writes an entry; the SYNs wrote none. */
	t0 = now_s();
	err = fill(&h, &syn, &synack, &ack, 0, n, n, false);
	if (err)
		goto out;
	res->fill_s = now_s() - t0;
	res->filled = count_entries(h.m.fd[SHIFT_MAP_FLOWS4]);

	pin(0);
	w.pick = PICK_RANDOM;
	w.range = n;
	w.rng = 0x5eed5eedull + n;
	err = measure(h.prog[H_CLIENT], pass, &ack, &w, op, &res->est);
	if (!err)
		err = measure_refs(h.m.fd[SHIFT_MAP_FLOWS4], n, pass, &ack, op, res);
	if (err)
		goto out;
	w.pick = PICK_SEQ;
	w.next = FRESH_BASE;
	err = measure(h.prog[H_CLIENT], pass, &syn, &w, op, &res->syn_full);
out:
	harness_close(&h);
	return err;
}

/* N flows all from CPU 0: what the table keeps. */
static int one_cpu_fill(__u32 n, __u64 *kept)
{
	struct harness h;
	struct pkt syn, synack, ack;
	int err;

	if (build(&syn, 0x02) || build(&ack, 0x10) || build_synack(&synack))
		return -EINVAL;
	err = harness_open(&h, H_SEED, n, 1024);
	if (!err)
		err = harness_topology(&h);
	if (!err)
		err = fill(&h, &syn, &synack, &ack, 0, n, n, true);
	if (!err)
		*kept = count_entries(h.m.fd[SHIFT_MAP_FLOWS4]);
	harness_close(&h);
	return err;
}

static void fig_json(FILE *f, const char *name, const struct fig *g)
{
	if (!g->done) {
		fprintf(f, "\"%s\": null", name);
		return;
	}
	fprintf(f, "\"%s\": {\"ns\": %.1f, \"pass_ns\": %.1f, \"above_ns\": %.1f}", name, g->ns,
		g->floor, g->ns - g->floor);
}

static void fig_txt(FILE *f, const char *name, __u32 n, const struct fig *g)
{
	if (!g->done)
		fprintf(f, "%-40s %9u %8s %8s %8s\n", name, n, "-", "-", "-");
	else
		fprintf(f, "%-40s %9u %8.1f %8.1f %8.1f\n", name, n, g->ns, g->floor,
			g->ns - g->floor);
}

static void report_txt(FILE *f, const struct size_res *r, unsigned int nr, __u32 one_n,
		       __u64 one_kept, const struct opts *op, const char *rel, double load)
{
	unsigned int i;

	fprintf(f,
		"# bench_flows: BPF_PROG_TEST_RUN, repeat = 1, %u calls per case in %u batches, "
		"median of batch means; kernel %s, %d CPUs, load %.2f\n",
		op->iters, op->batches, rel, ncpu, load);
	fprintf(f, "%-40s %9s %8s %8s %8s\n", "case", "flows", "ns", "pass", "above");
	for (i = 0; i < nr; i++) {
		fig_txt(f, "v4 SYN new flow, table with room", r[i].n, &r[i].syn_room);
		fig_txt(f, "v4 established, random among N flows", r[i].n, &r[i].est);
		fig_txt(f, "  floor: the table's lookup alone", r[i].n, &r[i].ref_lru);
		fig_txt(f, "  floor: one 64-B line per flow", r[i].n, &r[i].ref_line);
		fig_txt(f, "v4 SYN new flow, table full (stateless)", r[i].n, &r[i].syn_full);
	}
	for (i = 0; i < nr; i++)
		fprintf(f,
			"# N=%u: %llu entries after the fill (%.1f s); table memlock %lld B (%.1f B/flow), "
			"all maps %lld B; creating the table alone: MemAvailable -%lld kB, "
			"Vmalloc+Percpu+Slab +%lld kB\n",
			r[i].n, (unsigned long long)r[i].filled, r[i].fill_s, r[i].memlock,
			(double)r[i].memlock / r[i].n, r[i].all_memlock, r[i].d_avail_kb,
			r[i].d_kernel_kb);
	if (one_n)
		fprintf(f,
			"# N=%u flows all opened from one CPU: %llu kept (one common LRU list)\n",
			one_n, (unsigned long long)one_kept);
}

static void report_json(FILE *f, const struct size_res *r, unsigned int nr, __u32 one_n,
			__u64 one_kept, const struct opts *op, const char *rel, double load)
{
	unsigned int i;

	fprintf(f,
		"{\"kernel\": \"%s\", \"cpus\": %d, \"load1\": %.2f, \"iters\": %u, \"sizes\": [",
		rel, ncpu, load, op->iters);
	for (i = 0; i < nr; i++) {
		fprintf(f,
			"%s{\"flows\": %u, \"filled\": %llu, \"fill_s\": %.2f, \"memlock_bytes\": %lld, "
			"\"all_maps_memlock_bytes\": %lld, \"table_memavailable_drop_kb\": %lld, "
			"\"table_kernel_alloc_kb\": %lld, ",
			i ? ", " : "", r[i].n, (unsigned long long)r[i].filled, r[i].fill_s,
			r[i].memlock, r[i].all_memlock, r[i].d_avail_kb, r[i].d_kernel_kb);
		fig_json(f, "syn_room", &r[i].syn_room);
		fprintf(f, ", ");
		fig_json(f, "established_random", &r[i].est);
		fprintf(f, ", ");
		fig_json(f, "floor_table_lookup", &r[i].ref_lru);
		fprintf(f, ", ");
		fig_json(f, "floor_one_line", &r[i].ref_line);
		fprintf(f, ", ");
		fig_json(f, "syn_full", &r[i].syn_full);
		fprintf(f, "}");
	}
	fprintf(f, "], \"one_cpu_fill\": {\"flows\": %u, \"kept\": %llu}}\n", one_n,
		(unsigned long long)one_kept);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "sizes", required_argument, NULL, 's' },
		{ "iters", required_argument, NULL, 'n' },
		{ "batches", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts op = { .iters = 200000, .batches = 5, .sizes = { 1000, 1048576 }, .n_sizes = 2 };
	struct size_res res[MAX_SIZES];
	struct fib_env env;
	__u32 one_n = 0;
	__u64 one_kept = 0;
	unsigned int i;
	int opt, pass = -1, err = 1;
	char *tok, *save = NULL;

	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			op.out = optarg;
			break;
		case 's':
			op.n_sizes = 0;
			for (tok = strtok_r(optarg, ",", &save); tok && op.n_sizes < MAX_SIZES;
			     tok = strtok_r(NULL, ",", &save))
				op.sizes[op.n_sizes++] = (__u32)strtoul(tok, NULL, 0);
			break;
		case 'n':
			op.iters = (__u32)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			op.batches = (__u32)strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s [--out FILE.json] [--sizes N,...] [--iters N] "
				"[--batches B]\n",
				argv[0]);
			return 2;
		}
	}
	if (!op.n_sizes || op.batches < 1 || op.batches > MAX_BATCHES ||
	    op.iters < op.batches * 10) {
		fprintf(stderr, "bench_flows: bad arguments\n");
		return 2;
	}
	for (i = 0; i < op.n_sizes; i++)
		if (op.sizes[i] < 64 || op.sizes[i] > 16u << 20) {
			fprintf(stderr, "bench_flows: sizes 64 .. 16M\n");
			return 2;
		}
	if (geteuid() != 0) {
		fprintf(stderr, "bench_flows: needs root\n");
		return 1;
	}
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bench_flows: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu < 1)
		return 1;
	shift_log_init("bench_flows", SHIFT_LOG_WARN);
	shift_log_libbpf();
	if (fib_env_setup(&env))
		return 1;
	pass = bench_load_raw(BPF_PROG_TYPE_XDP, "bench_pass", prog_pass, 2);
	if (pass < 0)
		return 1;
	for (i = 0; i < op.n_sizes; i++) {
		if (bench_size(op.sizes[i], pass, &op, &res[i])) {
			fprintf(stderr, "bench_flows: table of %u failed\n", op.sizes[i]);
			goto out;
		}
		fprintf(stderr,
			"bench_flows: N=%u: %llu filled, established %.1f ns, SYN full %.1f ns\n",
			res[i].n, (unsigned long long)res[i].filled,
			res[i].est.ns - res[i].est.floor,
			res[i].syn_full.ns - res[i].syn_full.floor);
		if (!one_n || op.sizes[i] > one_n)
			one_n = op.sizes[i];
	}
	if (one_cpu_fill(one_n, &one_kept))
		goto out;
	{
		struct utsname u;
		double load[3] = { 0, 0, 0 };

		uname(&u);
		if (getloadavg(load, 3) < 0)
			load[0] = -1;
		report_txt(stdout, res, op.n_sizes, one_n, one_kept, &op, u.release, load[0]);
		if (op.out) {
			FILE *f = fopen(op.out, "w");

			if (!f) {
				fprintf(stderr, "bench_flows: %s: %s\n", op.out, strerror(errno));
				goto out;
			}
			report_json(f, res, op.n_sizes, one_n, one_kept, &op, u.release, load[0]);
			if (fclose(f))
				goto out;
		}
	}
	err = 0;
out:
	close(pass);
	return err;
}
