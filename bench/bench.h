/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What the benchmark programs share: medians, and raw BPF instructions for the
 * small reference programs they load without an object file. */
#ifndef SHIFT_BENCH_H
#define SHIFT_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include <shift/maps.h>

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v in place. */
static inline double median(double *v, __u32 n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Move this thread into the network namespace /run/netns/NAME; on failure say
 * which step failed (who: the tool's name) and return -1. */
static inline int bench_enter_netns(const char *who, const char *name)
{
	char path[256];
	int fd, rc;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", who, path, strerror(errno));
		return -1;
	}
	rc = setns(fd, CLONE_NEWNET);
	if (rc)
		fprintf(stderr, "%s: setns %s: %s\n", who, name, strerror(errno));
	close(fd);
	return rc ? -1 : 0;
}

#define INSN(c, d, s, o, i)                                                         \
	{                                                                           \
		.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) \
	}
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX(sz, d, s, o) INSN(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX(sz, d, s, o) INSN(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define JGT_REG(d, s, o) INSN(BPF_JMP | BPF_JGT | BPF_X, d, s, o, 0)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define LD_MAP_FD(d, fd) \
	INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Load a program of raw instructions; on failure, say which and print the
 * verifier's log. The fd, or a negative errno. */
static inline int bench_load_raw(enum bpf_prog_type type, const char *name,
				 const struct bpf_insn *insns, size_t n)
{
	char log[4096] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, o, .log_buf = log, .log_size = sizeof(log), .log_level = 1);
	int fd = bpf_prog_load(type, name, "GPL", insns, n, &o);

	if (fd < 0)
		fprintf(stderr, "bench: loading %s: %s\n%s\n", name, strerror(-fd), log);
	return fd;
}

/*
 * The connection table's lookup alone, a floor under an established packet's
 * cost: the key (struct shift_flow_key4, or with v6 struct shift_flow_key6,
 * its VIP folded as shift_flow_vip6() folds it) built from an untagged
 * Ethernet + IPv4 frame without options (v6: + IPv6 without extension
 * headers), one lookup in the table `flows`, then XDP_TX (TC:
 * TC_ACT_REDIRECT), found or not. With redirect_ifindex, the TC twin ends as a
 * TC forwarding program must: bpf_redirect(redirect_ifindex, 0), a helper
 * call XDP_TX does not need. Fills insn[] (room for REF_LOOKUP_INSNS); returns
 * the count.
 */
#define REF_LOOKUP_INSNS 48
static inline unsigned int ref_lookup_prog(struct bpf_insn *insn, int flows, int tc,
					   int redirect_ifindex, int v6)
{
	/* xdp_md's data, data_end; __sk_buff's */
	const __s16 d = tc ? 76 : 0, de = tc ? 80 : 4;
	/* From the frame start: the source address, the destination's, the ports;
	 * and the key's size (TCP: no VIP word complemented). */
	const int saddr = v6 ? 22 : 26, daddr = v6 ? 38 : 30, ports = v6 ? 54 : 34;
	const int key = v6 ? (int)sizeof(struct shift_flow_key6) :
			     (int)sizeof(struct shift_flow_key4);
	static const __u32 fold[3] = { SHIFT_VIP6_FOLD0, SHIFT_VIP6_FOLD1, SHIFT_VIP6_FOLD2 };
	unsigned int n = 0, bounds, i;

	insn[n++] = (struct bpf_insn)LDX(BPF_W, BPF_REG_2, BPF_REG_1, d);
	insn[n++] = (struct bpf_insn)LDX(BPF_W, BPF_REG_3, BPF_REG_1, de);
	insn[n++] = (struct bpf_insn)MOV64_IMM(BPF_REG_0, tc ? 0 /* TC_ACT_OK */ : XDP_PASS);
	insn[n++] = (struct bpf_insn)MOV64_REG(BPF_REG_4, BPF_REG_2);
	insn[n++] = (struct bpf_insn)ADD64_IMM(BPF_REG_4, ports + 4);
	bounds = n++; /* to the EXIT, once the tail's length is known */
	for (i = 0; i < (v6 ? 4u : 1u); i++) {
		insn[n++] = (struct bpf_insn)LDX(BPF_W, BPF_REG_4, BPF_REG_2, saddr + 4 * i);
		insn[n++] = (struct bpf_insn)STX(BPF_W, BPF_REG_10, BPF_REG_4, -key + 4 * i);
	}
	/* The VIP's word: v4's address; v6's words times fold[], summed. */
	insn[n++] = (struct bpf_insn)LDX(BPF_W, BPF_REG_4, BPF_REG_2, daddr);
	for (i = 0; v6 && i < 3; i++) {
		if (i)
			insn[n++] =
				(struct bpf_insn)LDX(BPF_W, BPF_REG_5, BPF_REG_2, daddr + 4 * i);
		insn[n++] = (struct bpf_insn)INSN(BPF_ALU | BPF_MUL | BPF_K,
						  i ? BPF_REG_5 : BPF_REG_4, 0, 0, (__s32)fold[i]);
		if (i)
			insn[n++] = (struct bpf_insn)INSN(BPF_ALU | BPF_ADD | BPF_X, BPF_REG_4,
							  BPF_REG_5, 0, 0);
	}
	if (v6) {
		insn[n++] = (struct bpf_insn)LDX(BPF_W, BPF_REG_5, BPF_REG_2, daddr + 12);
		insn[n++] = (struct bpf_insn)INSN(BPF_ALU | BPF_ADD | BPF_X, BPF_REG_4, BPF_REG_5,
						  0, 0);
	}
	insn[n++] = (struct bpf_insn)STX(BPF_W, BPF_REG_10, BPF_REG_4, -8);
	insn[n++] = (struct bpf_insn)LDX(BPF_W, BPF_REG_4, BPF_REG_2, ports);
	insn[n++] = (struct bpf_insn)STX(BPF_W, BPF_REG_10, BPF_REG_4, -4);
	{
		const struct bpf_insn ld[2] = { LD_MAP_FD(BPF_REG_1, flows) };

		insn[n++] = ld[0];
		insn[n++] = ld[1];
	}
	insn[n++] = (struct bpf_insn)MOV64_REG(BPF_REG_2, BPF_REG_10);
	insn[n++] = (struct bpf_insn)ADD64_IMM(BPF_REG_2, -key);
	insn[n++] = (struct bpf_insn)CALL(BPF_FUNC_map_lookup_elem);
	if (tc && redirect_ifindex) {
		insn[n++] = (struct bpf_insn)MOV64_IMM(BPF_REG_1, redirect_ifindex);
		insn[n++] = (struct bpf_insn)MOV64_IMM(BPF_REG_2, 0);
		insn[n++] = (struct bpf_insn)CALL(BPF_FUNC_redirect); /* TC_ACT_REDIRECT */
	} else {
		insn[n++] = (struct bpf_insn)MOV64_IMM(BPF_REG_0,
						       tc ? 7 /* TC_ACT_REDIRECT */ : XDP_TX);
	}
	insn[n++] = (struct bpf_insn)EXIT();
	insn[bounds] = (struct bpf_insn)JGT_REG(BPF_REG_4, BPF_REG_3, (int)(n - 1 - bounds - 1));
	return n;
}

#endif
