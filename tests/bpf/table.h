/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Table-driven packet tests (Katran's BpfTester shape): one row = description,
 * input packet, expected verdict, expected output packet, expected counter
 * deltas. The runner (test_table.c) builds the input, runs the real program
 * once, and checks
 *   - the verdict,
 *   - the output frame byte for byte against one built from scratch by pkt.c
 *     (hex dump diff on a mismatch),
 *   - every checksum of the output, recomputed from scratch,
 *   - every global counter delta (all of them, not only the expected ones),
 *   - every topology backend's packets/bytes/new_flows/reply_* deltas,
 *   - for a DNAT'ed new flow, the connection-table entry (backend, hash,
 *     service, color) against the userspace flow hash, or (a bare SYN, a row's
 *     no_entry) that there is none.
 */
#ifndef SHIFT_TEST_TABLE_H
#define SHIFT_TEST_TABLE_H

#include <netinet/in.h>
#include <linux/bpf.h>

#include "harness.h"
#include "pkt.h"
#include "test.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

/* Addresses (bytes on the wire). Object-like, so they can be macro arguments. */
#define CL4                     \
	{                       \
		198, 51, 100, 7 \
	}
#define VIP4                 \
	{                    \
		10, 0, 0, 10 \
	}
#define NONVIP4              \
	{                    \
		10, 0, 0, 99 \
	}
#define CL6                                                                   \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7 \
	}
#define VIP6                                                                  \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 \
	}
#define NONVIP6                                                               \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99 \
	}

/* A client -> service packet with defaults; named fields after it override them. */
#define PKT4(src, dst, proto_, sp, dp, ...)                                                       \
	{                                                                                         \
		.dmac = MAC_EDGE, .smac = MAC_CLIENT, .family = 4, .proto = proto_, .saddr = src, \
		.daddr = dst, .sport = sp, .dport = dp, .ttl = 64,                                \
		.tcp_flags = (int)(proto_) == (int)IPPROTO_TCP ? TH_SYN : 0, .payload = 16,       \
		.seq = 1000, __VA_ARGS__                                                          \
	}
#define PKT6(src, dst, proto_, sp, dp, ...)                                                       \
	{                                                                                         \
		.dmac = MAC_EDGE, .smac = MAC_CLIENT, .family = 6, .proto = proto_, .saddr = src, \
		.daddr = dst, .sport = sp, .dport = dp, .ttl = 64,                                \
		.tcp_flags = (int)(proto_) == (int)IPPROTO_TCP ? TH_SYN : 0, .payload = 16,       \
		.seq = 1000, __VA_ARGS__                                                          \
	}

/* Blue backend 0 of SVC_V4_TCP (topo_backends[0]). */
#define BE0A                 \
	{                    \
		10, 1, 0, 11 \
	}

/* A backend -> client packet: the backend's MAC to the edge host (its gateway).
 * Spelled out, not via PKT4(): a nested macro would split the address braces. */
#define REPLY4(src, dst, proto_, sp, dp, ...)                                                     \
	{                                                                                         \
		.dmac = MAC_EDGE, .smac = { 0x02, 0xbe, 0, 0, 0, 0 }, .family = 4,                \
		.proto = proto_, .saddr = src, .daddr = dst, .sport = sp, .dport = dp, .ttl = 64, \
		.tcp_flags = (int)(proto_) == (int)IPPROTO_TCP ? TH_SYN | TH_ACK : 0,             \
		.payload = 16, .seq = 5000, .ack = 1001, __VA_ARGS__                              \
	}
#define REPLY6(src, dst, proto_, sp, dp, ...)                                                     \
	{                                                                                         \
		.dmac = MAC_EDGE, .smac = { 0x02, 0xbe, 0, 0, 0, 0 }, .family = 6,                \
		.proto = proto_, .saddr = src, .daddr = dst, .sport = sp, .dport = dp, .ttl = 64, \
		.tcp_flags = (int)(proto_) == (int)IPPROTO_TCP ? TH_SYN | TH_ACK : 0,             \
		.payload = 16, .seq = 5000, .ack = 1001, __VA_ARGS__                              \
	}

enum out_kind {
	OUT_NONE, /* dropped: the output is not looked at */
	OUT_SAME, /* byte for byte the input */
	OUT_DNAT, /* dst -> backend addr:port, TTL - 1, MACs per .macs */
	OUT_SNAT, /* src -> the backend's VIP:port, TTL - 1, MACs per .macs */
};

enum mac_kind {
	MACS_KEEP, /* unchanged (XDP_PASS to the kernel) */
	MACS_NH, /* the backend entry's cached next hop */
	MACS_FIB_BE, /* FIB towards a backend on shv0 */
	MACS_FIB_CL, /* FIB towards the client on shv1 */
	MACS_SYN_CL, /* a SYN-ACK: back the way its SYN came (MAC_CLIENT <- MAC_EDGE) */
};

enum ingress {
	IN_LO = 0, /* lo */
	IN_BE, /* shv0, the backend-facing side */
	IN_CL, /* shv1, the client-facing side */
};

struct row;
typedef void (*row_hook)(struct tctx *t, struct harness *h, const struct row *r);
typedef void (*row_mangle)(__u8 *p, __u32 *len, const struct pkt_layout *lo);

struct row {
	const char *desc;
	enum h_prog prog;
	enum ingress ingress;
	struct pkt_spec in;
	row_mangle mangle; /* make the input malformed after building it */
	__u32 weight; /* weight word of every service during the row */
	row_hook before; /* runs before the counters are read */
	row_hook after; /* extra checks */
	__u32 verdict;
	enum out_kind out;
	__u32 be; /* BE(id): the backend targeted and counted; 0 = none */
	enum mac_kind macs;
	__u8 st[SHIFT_STAT_MAX]; /* expected global counter deltas */
	__u32 dontcare; /* STAT_BIT()s not checked (besides the always-ignored ones) */
	__u8 new_flow; /* expect the backend's new_flows + 1 */
	__u8 be_unchecked; /* backend counters not checked (the contract leaves them open) */
	__u8 no_entry; /* a TCP packet steered without its handshake: no entry written */
};

#define BE(id) ((id) + 1)
#define STAT_BIT(s) (1u << (s))

/*
 * A skeleton opened on first use, so that a test whose subtests are all
 * filtered out by -t loads nothing (a load costs tenths of a second).
 */
struct fixture {
	__u32 seed;
	__u32 flows4;
	__u32 flows6;
	__u32 syn_slots; /* 0: the default */
	bool tc; /* run the TC entry points (see struct harness) */
	bool csum_complete;
	/* After the load; NULL: fib_env_setup + the standard topology + overrides. */
	int (*setup)(struct tctx *t, struct fixture *f);
	struct harness h;
	struct fib_env env;
	bool opened;
	bool failed;
};

/* The harness, or NULL (and the current subtest failed) if it cannot load. */
struct harness *fixture_get(struct tctx *t, struct fixture *f);
void fixture_put(struct fixture *f);

/* Run every row as a subtest "<group>: <desc>". */
void table_run(struct tctx *t, struct fixture *f, const char *group, const struct row *rows,
	       size_t n);

/* One row, already inside a subtest. */
void table_run_row(struct tctx *t, struct harness *h, const struct fib_env *env,
		   const struct row *r);

/* The tables and sweeps sharing the standard fixture (test_*.c). */
extern const struct row fwd_rows[];
extern const size_t fwd_rows_n;
extern const struct row ret_rows[];
extern const size_t ret_rows_n;
extern const struct row both_rows[];
extern const size_t both_rows_n;
int fwd_overrides(struct tctx *t, struct harness *h);
void trunc_run(struct tctx *t, struct fixture *f);
void csum_run(struct tctx *t, struct fixture *f);
void pmtu_run(struct tctx *t, struct fixture *f);

#endif
