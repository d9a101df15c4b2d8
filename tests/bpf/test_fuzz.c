// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A packet fuzzer over the real XDP programs (shift_xdp_client, _backend,
 * _both) through BPF_PROG_TEST_RUN, on the standard topology with the
 * overrides, the FIB namespace and HTTP parsing on, weights re-drawn every
 * FZ_EPOCH packets (latched ones included).
 *
 * Packets are generated and mutated: random bytes, a valid header prefix
 * followed by random bytes, valid packets from random specs, valid VIP packets
 * with bit flips / truncations / corrupted length fields / changed protocol
 * bytes, VLAN stacks of 0-6 tags, IPv6 extension-header chains of 0-7 headers,
 * random TCP options and data offsets, tiny (14 bytes up) and jumbo frames (to
 * 9000 bytes), later packets of flows already steered (established path, HTTP
 * requests), the backends' replies and ICMP errors to them (return path).
 *
 * Sizes (fz_limits() measures them, on this kernel and Debian 12's 6.1 alike):
 * BPF_PROG_TEST_RUN refuses an XDP frame under 14 bytes (EINVAL) and over
 * 73152 (ENOMEM): PAGE_SIZE - XDP_PACKET_HEADROOM (256) -
 * SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) (320) = 3520 bytes of linear
 * data, plus MAX_SKB_FRAGS (17) pages of fragments. A program not loaded as
 * xdp.frags (ours) sees only the linear 3520 bytes: data_end - data, the
 * bytes counted, and the limit its length checks meet, so a valid VIP packet
 * above 3520 bytes is dropped as bad_length here. On a NIC, a program without
 * frags support cannot be attached natively to an MTU that large, and generic
 * XDP linearizes the frame first.
 *
 * Checked for every packet:
 *   - BPF_PROG_TEST_RUN succeeds and the verdict is one the program documents:
 *     client and both PASS/DROP/TX/REDIRECT, backend PASS/TX/REDIRECT (what it
 *     cannot parse is the kernel's business), and DROP only for a SYN-ACK of a
 *     backend that does not hold the handshake (synack_moved); never ABORTED;
 *   - data_size_out <= the input size (the programs never grow a frame);
 *   - DROP: exactly one drop counter moved, by one, and no new flow counted;
 *     any other verdict: no drop counter moved; no counter moves by more than 1;
 *   - TX and REDIRECT always rewrite the frame; PASS rewrites it exactly when
 *     pass_no_neigh moves (steered, but no next hop at XDP level);
 *   - traffic that is not ours passes untouched: for the client program a
 *     frame whose IP destination (found as the datapath finds it: Ethernet, at
 *     most one 802.1Q/802.1ad tag, 20/40 bytes of IP header) is no VIP address,
 *     with no counter moved; for the backend program one whose source is no
 *     backend address (an ICMP error quoting a flow may count a lost sample);
 *     for both, neither;
 *   - for an input with right checksums (frames up to PKT_MAX, pkt_verify): a
 *     rewritten output has right checksums too, differs only in the MACs, the
 *     TTL (down by exactly one), the IPv4 header checksum, the address and port
 *     of one side and the L4 checksum;
 *   - and if it is a clean packet to a service (not a fragment, TTL above 1,
 *     one VLAN tag at most, at most IPV6_EXT_MAX extension headers), the
 *     steering rules (see fz_pre): never dropped unless no pool has a backend;
 *     an established flow goes to its entry's backend; a new flow to the
 *     backend the rules name (color by shift_slice(h) vs the weight, the latch,
 *     the override prefixes and the empty-pool fallback; backend by the ring
 *     slot shift_ring_slot(h)) and gets an entry saying so when it is UDP or
 *     the first ACK its SYN slot holds (any other TCP packet without an entry
 *     plants none: the backend's answer does); a SYN without ACK
 *     on an entry whose handshake completed (SHIFT_FS_SYNACK) is a new flow on
 *     a reused 5-tuple, and leaves that entry as it was (the backend's SYN-ACK
 *     re-points it); a RST steered afresh plants or replaces no entry.
 * After the run:
 *   - every connection-table entry (v4 and v6) is for a configured service:
 *     its daddr:dport/proto is a VIP key of the services map, service_id is that
 *     service's id, backend_id a backend of that service in the pool of the
 *     entry's color, hash == shift_flow_hash4/6(key, seed), no unknown state
 *     bits, zero key padding;
 *   - counters: sum of per-backend new_flows == flow_new (the datapath counts
 *     both for every packet it steers afresh but a RST, whether the insert
 *     worked or not); entries
 *     in both tables <= flow_insert (the LRU evicts); sum of per-backend
 *     packets + reply_packets == packets answered TX or REDIRECT plus those
 *     passed with pass_no_neigh (the only
 *     outcomes that follow the count); the same for bytes (the linear length);
 *     new_flows <= packets per backend; every backend id outside the topology
 *     has all-zero counters.
 *
 * Deterministic: SHIFT_FUZZ_SEED (default FZ_SEED) and SHIFT_FUZZ_PACKETS
 * (default FZ_PACKETS) say what runs; both are printed. A failing packet is
 * dumped as hex and saved under <build dir>/fuzz-failures/ (SHIFT_FUZZ_OUT
 * overrides) in the format of the tests/fuzz/packets files, which every run
 * replays first with the same checks (and their `expect` line): copy a saved
 * file there to make it a regression row (SHIFT_FUZZ_REGRESSIONS names another
 * directory; see its README).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/flow_hash.h>
#include <shift/shadow.h>
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define FZ_PACKETS 100000ull
#define FZ_SEED 0x5eedf00dull
#define FZ_EPOCH 2048 /* packets between weight changes */
#define FZ_JUMBO 9000u /* the largest frame asked for: a 9000-byte MTU and more */
#define FZ_BUF 16384u
#define FZ_PROBE (256u << 10) /* the size limit is looked for up to here */
#define FZ_REPORTS 5 /* failures described in full */
#define FZ_SAVES 20 /* failures saved to files */
#define FZ_FLOWS 128 /* flows remembered for later packets and replies */
#define FZ_DUMP 512 /* hex bytes printed of a failing frame (the file has all) */
#define FZ_REG_DIR "tests/fuzz/packets"
#define FZ_FLOWS_MAX 4096

#define FS_KNOWN                                                                                 \
	(SHIFT_FS_SYNACK | SHIFT_FS_HTTP | SHIFT_FS_ERR_SEEN | SHIFT_FS_SVC_HTTP | SHIFT_FS_NH | \
	 SHIFT_FS_SHADOW_DONE | SHIFT_FS_CLI_CLOSED | SHIFT_FS_ANSWERED)

enum fz_gen {
	G_RANDOM,
	G_RAND_HDR,
	G_VALID,
	G_MUTATE,
	G_VLAN,
	G_EXT6,
	G_TCPOPT,
	G_TINY,
	G_JUMBO,
	G_FLOW,
	G_REPLY,
	G_ICMP,
	G_REPLAY, /* a saved regression packet */
	G__N,
};

static const char *const gen_names[G__N] = {
	"random", "rand_hdr", "valid", "mutate", "vlan", "ext6",   "tcpopt",
	"tiny",	  "jumbo",    "flow",  "reply",	 "icmp", "replay",
};

/* Share of each generator, in percent (G_REPLAY is not drawn). */
static const __u8 gen_weight[G__N - 1] = { 8, 8, 12, 25, 5, 8, 6, 5, 5, 8, 8, 2 };

static const char *const prog_names[H_PROGS] = { "client", "backend", "both" };

/* A flow steered by the datapath: what the later packets and replies use. */
struct fz_flow {
	__u8 family;
	__u8 proto;
	__u8 client[16];
	__u8 vip[16];
	__u8 backend[16];
	__u16 cport, vport, bport;
};

struct fz {
	struct tctx *t;
	struct harness *h;
	const struct fib_env *env;
	__u64 seed, rng, n_packets;
	__u32 max_len; /* largest frame BPF_PROG_TEST_RUN takes */
	__u32 lin_max; /* largest frame the program sees whole (data_end - data) */
	int ncpu;
	bool no_batch;
	__u64 *vals; /* per-CPU values of the stats map */
	__u64 st[SHIFT_STAT_MAX]; /* the stats map after the last packet */
	__u32 weights[SVC_TOPO_COUNT];
	/* the packet being run */
	enum fz_gen gen;
	__u64 pkt_no;
	/* tallies */
	__u64 verdicts[H_PROGS][5];
	__u64 gens[G__N];
	__u64 drops[SHIFT_STAT_MAX];
	__u64 fwd_pkts, fwd_bytes, csum_checked, steer_checked, ran;
	__u32 last_verdict; /* of the last packet run, ~0u: it did not run */
	int last_drop; /* its drop reason, -1: none */
	__u32 lens[4]; /* < 64, < 1514, <= lin_max, larger */
	__u32 failures, saved;
	char out_dir[PATH_MAX];
	struct fz_flow flows[FZ_FLOWS];
	__u32 n_flows, flow_next;
	__u8 in[FZ_BUF], out[FZ_BUF];
};

static __u64 rnd(struct fz *z)
{
	return h_rand(&z->rng);
}

static __u32 below(struct fz *z, __u32 n)
{
	return n ? (__u32)(rnd(z) % n) : 0;
}

static bool chance(struct fz *z, __u32 pct)
{
	return below(z, 100) < pct;
}

static void rnd_bytes(struct fz *z, __u8 *p, __u32 n)
{
	__u32 i;

	for (i = 0; i < n; i++)
		p[i] = (__u8)rnd(z);
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

static const char *verdict_name(__u32 v)
{
	static const char *const n[] = { "ABORTED", "DROP", "PASS", "TX", "REDIRECT" };

	return v < 5 ? n[v] : "?";
}

/* --- what the packet is, seen from outside the datapath ----------------------- */

/* The IP header as the datapath finds it: Ethernet, at most one VLAN tag. */
static int frame_l3(const __u8 *p, __u32 len, __u32 *l3)
{
	__u32 off = 12;
	__u16 et;

	et = pkt_get16(p + off);
	if (et == 0x8100 || et == 0x88a8) {
		if (len < 18)
			return 0;
		off += 4;
		et = pkt_get16(p + off);
	}
	*l3 = off + 2;
	if (et == 0x0800 && len >= *l3 + 20)
		return 4;
	if (et == 0x86dd && len >= *l3 + 40)
		return 6;
	return 0;
}

static bool is_vip(__u8 family, const __u8 *a)
{
	__u32 i;

	for (i = 0; i < SVC_TOPO_COUNT; i++)
		if (topo_services[i].family == family &&
		    !memcmp(topo_services[i].vip, a, family == 4 ? 4 : 16))
			return true;
	return false;
}

static bool is_backend(__u8 family, const __u8 *a)
{
	__u32 i;

	for (i = 0; i < topo_n_backends; i++)
		if (topo_backends[i].family == family &&
		    !memcmp(topo_backends[i].addr, a, family == 4 ? 4 : 16))
			return true;
	return false;
}

/* Could the program touch this frame at all? */
static bool frame_ours(enum h_prog prog, const __u8 *p, __u32 len)
{
	__u32 l3;
	int fam = frame_l3(p, len, &l3);
	const __u8 *src, *dst;

	if (!fam)
		return false;
	src = p + l3 + (fam == 4 ? 12 : 8);
	dst = p + l3 + (fam == 4 ? 16 : 24);
	if (prog == H_CLIENT)
		return is_vip((__u8)fam, dst);
	if (prog == H_BACKEND)
		return is_backend((__u8)fam, src);
	return is_vip((__u8)fam, dst) || is_backend((__u8)fam, src);
}

/* --- counters ------------------------------------------------------------------- */

static int fz_stats(struct fz *z, __u64 out[SHIFT_STAT_MAX])
{
	__u32 keys[SHIFT_STAT_MAX], count = SHIFT_STAT_MAX, out_batch = 0, k;
	int fd = z->h->m.fd[SHIFT_MAP_STATS], err, c;
	LIBBPF_OPTS(bpf_map_batch_opts, o);

	if (z->no_batch)
		return dp_stats(&z->h->m, out);
	/* One syscall for the whole per-CPU array (ENOENT: the end was reached). */
	err = bpf_map_lookup_batch(fd, NULL, &out_batch, keys, z->vals, &count, &o);
	if ((err && err != -ENOENT) || count != SHIFT_STAT_MAX) {
		z->no_batch = true;
		return dp_stats(&z->h->m, out);
	}
	for (k = 0; k < count; k++) {
		out[keys[k]] = 0;
		for (c = 0; c < z->ncpu; c++)
			out[keys[k]] += z->vals[k * z->ncpu + c];
	}
	return 0;
}

/* --- reporting ------------------------------------------------------------------- */

static void hex_line(char *buf, const __u8 *p, __u32 n)
{
	__u32 i;

	for (i = 0; i < n; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	buf[2 * n] = '\0';
}

static void fz_save(struct fz *z, enum h_prog prog, __u32 ifindex, const __u8 *p, __u32 len,
		    const char *why, char *path, size_t plen)
{
	char line[2 * 32 + 1];
	const char *ing;
	__u32 i;
	FILE *f;

	path[0] = '\0';
	if (!z->out_dir[0] || z->saved >= FZ_SAVES)
		return;
	mkdir(z->out_dir, 0755);
	snprintf(path, plen, "%s/bpf-%llx-%llu.pkt", z->out_dir, (unsigned long long)z->seed,
		 (unsigned long long)z->pkt_no);
	f = fopen(path, "w");
	if (!f) {
		test_note(z->t, "cannot save the packet to %s: %s", path, strerror(errno));
		path[0] = '\0';
		return;
	}
	ing = z->env->if_be && ifindex == (__u32)z->env->if_be ? "be" :
	      z->env->if_cl && ifindex == (__u32)z->env->if_cl ? "cl" :
								 "lo";
	fprintf(f, "# shift packet fuzzer: a frame that broke a datapath property\n");
	fprintf(f, "# seed 0x%llx, packet %llu, generator %s\n", (unsigned long long)z->seed,
		(unsigned long long)z->pkt_no, gen_names[z->gen]);
	fprintf(f, "# %s\n# weights:", why);
	for (i = 0; i < SVC_TOPO_COUNT; i++)
		fprintf(f, " %u:0x%x", i, z->weights[i]);
	fprintf(f,
		"\n# A regression row: copy this file to " FZ_REG_DIR "/ (bpf_test replays it),\n"
		"# with a line 'expect VERDICT [drop reason]' once the right answer is known.\n"
		"prog %s\ningress %s\n",
		prog_names[prog], ing);
	for (i = 0; i < len; i += 32) {
		hex_line(line, p + i, len - i < 32 ? len - i : 32);
		fprintf(f, "hex %s\n", line);
	}
	if (fclose(f)) {
		test_note(z->t, "cannot save the packet to %s: %s", path, strerror(errno));
		path[0] = '\0';
		return;
	}
	z->saved++;
}

static void __attribute__((format(printf, 6, 7)))
fz_fail(struct fz *z, enum h_prog prog, __u32 ifindex, const __u8 *p, __u32 len, const char *fmt,
	...)
{
	char why[300], path[PATH_MAX + 64], line[2 * 32 + 1];
	va_list ap;
	__u32 i;

	z->failures++;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fz_save(z, prog, ifindex, p, len, why, path, sizeof(path));
	if (z->failures > FZ_REPORTS)
		return;
	test_failf(z->t, __FILE__, __LINE__, "packet %llu (%s, %s, ingress %u, %u bytes): %s",
		   (unsigned long long)z->pkt_no, gen_names[z->gen], prog_names[prog], ifindex, len,
		   why);
	for (i = 0; i < len && i < FZ_DUMP; i += 32) {
		hex_line(line, p + i, len - i < 32 ? len - i : 32);
		test_note(z->t, "  %04x: %s", i, line);
	}
	if (len > FZ_DUMP)
		test_note(z->t, "  ... %u more bytes", len - FZ_DUMP);
	if (path[0])
		test_note(z->t, "  saved to %s", path);
}

/* --- the steering oracle ------------------------------------------------------------ */

static const struct topo_backend *topo_be(__u32 id)
{
	__u32 i;

	for (i = 0; i < topo_n_backends; i++)
		if (topo_backends[i].id == id)
			return &topo_backends[i];
	return NULL;
}

/* Backend 15 is defined but in no pool (harness_topology). */
static bool in_pool(__u32 svc, __u8 color, __u32 id)
{
	const struct topo_backend *b = topo_be(id);

	return b && id != 15 && b->svc == svc && b->color == color;
}

/* The prefixes fwd_overrides() pins, longest first: what the datapath must honour. */
static const struct {
	__u32 svc;
	__u8 family;
	__u8 addr[16];
	__u8 plen;
	__u8 color;
} fz_ovr[] = {
	{ SVC_V4_OVR, 4, { 192, 0, 2, 128 }, 25, SHIFT_BLUE },
	{ SVC_V4_OVR, 4, { 192, 0, 2, 0 }, 24, SHIFT_GREEN },
	{ SVC_V4_OVR, 4, { 203, 0, 113, 0 }, 24, SHIFT_BLUE },
	{ SVC_V6_OVR, 6, { 0x20, 0x01, 0x0d, 0xb8, 0, 0xaa }, 48, SHIFT_GREEN },
	{ SVC_V6_OVR, 6, { 0x20, 0x01, 0x0d, 0xb8, 0, 0xbb }, 48, SHIFT_BLUE },
};

static int override_color(__u32 svc, __u8 family, const __u8 *a)
{
	__u32 i, bits;

	for (i = 0; i < sizeof(fz_ovr) / sizeof(fz_ovr[0]); i++) {
		if (fz_ovr[i].svc != svc || fz_ovr[i].family != family)
			continue;
		bits = fz_ovr[i].plen;
		if (!memcmp(a, fz_ovr[i].addr, bits / 8) &&
		    (!(bits % 8) ||
		     !((a[bits / 8] ^ fz_ovr[i].addr[bits / 8]) & (0xff00 >> (bits % 8)))))
			return fz_ovr[i].color;
	}
	return -1;
}

static bool pool_empty(__u32 svc, __u8 color)
{
	__u32 i;

	for (i = 0; i < topo_n_backends; i++)
		if (in_pool(svc, color, topo_backends[i].id))
			return false;
	return true;
}

/*
 * What the steering rules say about a clean packet (checksums right, not a
 * fragment, one VLAN tag at most, at most IPV6_EXT_MAX extension headers, TTL
 * above 1) to a configured service: never dropped unless the pools are empty;
 * a flow with an entry goes to the entry's backend; a new flow goes green iff
 * shift_slice(h) < weight (blue only when latched, the pinned color for an
 * override prefix, the other pool when the chosen one is empty) to the
 * backend of the pool's ring slot shift_ring_slot(h), and gets an entry
 * saying so (except a RST).
 */
struct fz_pre {
	bool on;
	const struct topo_service *svc;
	struct pkt_info in;
	bool existed; /* an entry was there before the packet */
	bool had; /* and the packet follows it */
	bool syn; /* a bare SYN: steered statelessly, never inserted */
	bool rst;
	__u32 seq; /* TCP sequence number, host order */
	struct shift_syn_slot slot; /* its SYN slot before the packet (TCP) */
	struct shift_flow f;
	union {
		struct shift_flow_key4 k4;
		struct shift_flow_key6 k6;
	};
};

static const struct topo_service *find_service(const struct pkt_info *in)
{
	__u32 i;

	for (i = 0; i < SVC_TOPO_COUNT; i++) {
		const struct topo_service *s = &topo_services[i];

		if (s->family == in->family && s->proto == in->proto && s->port == in->dport &&
		    !memcmp(s->vip, in->daddr, in->family == 4 ? 4 : 16))
			return s;
	}
	return NULL;
}

static int flow_get(struct fz *z, struct fz_pre *pre, struct shift_flow *f)
{
	if (pre->in.family == 4)
		return bpf_map_lookup_elem(z->h->m.fd[SHIFT_MAP_FLOWS4], &pre->k4, f) ? -errno : 0;
	return bpf_map_lookup_elem(z->h->m.fd[SHIFT_MAP_FLOWS6], &pre->k6, f) ? -errno : 0;
}

static __u32 pre_hash(struct fz *z, const struct fz_pre *pre);

static void pre_steer(struct fz *z, enum h_prog prog, const __u8 *in, __u32 len,
		      const struct pkt_info *info, struct fz_pre *pre)
{
	__u32 l3, e, n;
	__u8 nh;

	pre->on = false;
	if (prog == H_BACKEND || !frame_l3(in, len, &l3) || l3 != info->l3 || info->is_frag ||
	    info->ttl <= 1 || (info->proto != IPPROTO_TCP && info->proto != IPPROTO_UDP))
		return;
	if (info->family == 6) {
		for (n = 0, e = l3 + 40, nh = in [l3 + 6]; nh == 0 || nh == 43 || nh == 60; n++) {
			nh = in[e];
			e += (in[e + 1] + 1u) * 8;
		}
		if (n > 4) /* IPV6_EXT_MAX */
			return;
	}
	pre->svc = find_service(info);
	if (!pre->svc)
		return;
	pre->on = true;
	pre->in = *info;
	memset(&pre->k6, 0, sizeof(pre->k6));
	if (info->family == 4)
		harness_key4_of(info->saddr, info->daddr, info->sport, info->dport, info->proto,
				&pre->k4);
	else
		harness_key6_of(info->saddr, info->daddr, info->sport, info->dport, info->proto,
				&pre->k6);
	pre->existed = !flow_get(z, pre, &pre->f);
	/* A bare SYN is a new flow, steered afresh whatever the table holds (no
	 * service here has source NAT, whose SYNs look at their entry). */
	pre->had = pre->existed && !(info->proto == IPPROTO_TCP &&
				     (in[info->l4 + 13] & (TH_SYN | TH_ACK)) == TH_SYN);
	pre->syn = info->proto == IPPROTO_TCP && (in[info->l4 + 13] & (TH_SYN | TH_ACK)) == TH_SYN;
	pre->rst = info->proto == IPPROTO_TCP && (in[info->l4 + 13] & TH_RST);
	pre->seq = info->proto == IPPROTO_TCP ?
			   (__u32)in[info->l4 + 4] << 24 | (__u32)in[info->l4 + 5] << 16 |
				   (__u32)in[info->l4 + 6] << 8 | in[info->l4 + 7] :
			   0;
	memset(&pre->slot, 0, sizeof(pre->slot));
	if (info->proto == IPPROTO_TCP) {
		__u32 idx = harness_syn_slot_idx(z->h, pre_hash(z, pre));

		if (bpf_map_lookup_elem(harness_syn_slots_fd(z->h), &idx, &pre->slot))
			memset(&pre->slot, 0, sizeof(pre->slot));
	}
}

/* A first ACK (no entry) follows its SYN's slot while the slot holds it, and
 * so does a retransmit of an answered SYN (not one connect_fallback moves). */
static int slot_backend(struct fz *z, const struct fz_pre *pre, __u32 h, __u8 *color)
{
	struct shift_backend be;

	if (pre->in.proto != IPPROTO_TCP || !shift_syn_tag_is(pre->slot.hash, h) ||
	    pre->slot.service_id != pre->svc->id)
		return -1;
	if (pre->syn ? pre->seq != pre->slot.isn ||
			       (pre->slot.flags & (SHIFT_SS_ANSWERED | SHIFT_SS_FALLBACK)) !=
				       SHIFT_SS_ANSWERED :
		       pre->existed || pre->seq != pre->slot.isn + 1)
		return -1;
	if (dp_backend_get(&z->h->m, pre->slot.backend_id, &be) ||
	    !(be.flags & SHIFT_BE_F_ACTIVE) || be.service_id != pre->svc->id)
		return -1;
	*color = SHIFT_SS_COLOR_OF(pre->slot.flags);
	return (int)pre->slot.backend_id;
}

static __u32 pre_hash(struct fz *z, const struct fz_pre *pre)
{
	__u32 s[4], d[4];

	memcpy(s, pre->in.saddr, sizeof(s));
	memcpy(d, pre->in.daddr, sizeof(d));
	if (pre->in.family == 4)
		return shift_flow_hash4(s[0], d[0], htons(pre->in.sport), htons(pre->in.dport),
					pre->in.proto, z->h->seed);
	return shift_flow_hash6(s, d, htons(pre->in.sport), htons(pre->in.dport), pre->in.proto,
				z->h->seed);
}

/* The backend a new flow must get, or -1: dropped (no backend). *color is the pool. */
static int expected_backend(struct fz *z, const struct fz_pre *pre, __u32 h, __u8 *color)
{
	__u32 id = pre->svc->id, word = z->weights[id], be;
	int ovr = -1;

	if (word & SHIFT_WEIGHT_LATCHED) {
		*color = SHIFT_BLUE;
		if (pool_empty(id, SHIFT_BLUE))
			return -1;
	} else {
		if (pre->svc->flags & SHIFT_SVC_F_OVERRIDES)
			ovr = override_color(id, pre->in.family, pre->in.saddr);
		if (ovr >= 0)
			*color = (__u8)ovr;
		else
			*color = shift_slice(h) < (word & SHIFT_WEIGHT_MASK) ? SHIFT_GREEN :
									       SHIFT_BLUE;
		if (pool_empty(id, *color))
			*color ^= 1;
		if (pool_empty(id, *color))
			return -1;
	}
	if (dp_ring_get(&z->h->m, id, *color, shift_ring_slot(h), &be))
		return -1;
	return (int)be;
}

static void post_steer(struct fz *z, struct fz_pre *pre, enum h_prog prog, __u32 ifindex,
		       const __u8 *in, __u32 len, __u32 verdict, bool changed, __u32 olen,
		       bool insert_failed)
{
	const struct topo_backend *b = NULL;
	struct pkt_info out;
	struct shift_flow after;
	__u32 h = pre_hash(z, pre), i;
	int want;
	__u8 color = 0;

	if (!pre->on)
		return;
	z->steer_checked++;
	if (pre->had) {
		want = (int)pre->f.backend_id;
		color = pre->f.color;
	} else {
		want = slot_backend(z, pre, h, &color);
		if (want < 0)
			want = expected_backend(z, pre, h, &color);
	}
	if (want < 0) {
		if (verdict != XDP_DROP)
			fz_fail(z, prog, ifindex, in, len,
				"service %u has no backend for this flow, but %s", pre->svc->id,
				verdict_name(verdict));
		return;
	}
	if (verdict == XDP_DROP || !changed) {
		fz_fail(z, prog, ifindex, in, len,
			"a valid packet of service %u for backend %d: %s%s", pre->svc->id, want,
			verdict_name(verdict), changed ? "" : ", not rewritten");
		return;
	}
	if (pkt_verify(z->out, olen, &out, NULL, 0))
		return; /* the checksum check said why */
	for (i = 0; i < topo_n_backends; i++) {
		const struct topo_backend *c = &topo_backends[i];

		if (c->family == out.family && c->port == out.dport &&
		    !memcmp(c->addr, out.daddr, out.family == 4 ? 4 : 16) && c->svc == pre->svc->id)
			b = c;
	}
	if (!b || (int)b->id != want) {
		fz_fail(z, prog, ifindex, in, len,
			"%s flow of service %u sent to backend %d, "
			"expected %d (%s, weight word 0x%x, slice %u)",
			pre->had ? "an established" : "a new", pre->svc->id, b ? (int)b->id : -1,
			want, color ? "green" : "blue", z->weights[pre->svc->id], shift_slice(h));
		return;
	}
	if (pre->in.proto == IPPROTO_TCP && (in[pre->in.l4 + 13] & TH_RST) && !pre->had) {
		/* Steered afresh, but a RST plants nothing: whatever was there stays. */
		if (!flow_get(z, pre, &after) &&
		    (!pre->existed || after.backend_id != pre->f.backend_id ||
		     after.hash != pre->f.hash || after.color != pre->f.color))
			fz_fail(z, prog, ifindex, in, len, "a RST steered afresh %s an entry",
				pre->existed ? "replaced" : "planted");
		return;
	}
	if (insert_failed)
		return;
	if (pre->syn) {
		/* No service here has source NAT: a bare SYN writes nothing. */
		if (!flow_get(z, pre, &after) &&
		    (!pre->existed || after.backend_id != pre->f.backend_id ||
		     after.hash != pre->f.hash || after.color != pre->f.color ||
		     after.state != pre->f.state))
			fz_fail(z, prog, ifindex, in, len, "a bare SYN %s an entry",
				pre->existed ? "changed" : "planted");
		return;
	}
	if (!pre->existed && pre->in.proto == IPPROTO_TCP && slot_backend(z, pre, h, &color) < 0) {
		/* Neither an entry nor its handshake's SYN slot (mid-stream,
		 * evicted, spoofed): steered by the weight, nothing written; the
		 * backend's answer writes the entry (flow_adopt()). */
		if (!flow_get(z, pre, &after))
			fz_fail(z, prog, ifindex, in, len,
				"a TCP packet without its handshake planted an entry");
		return;
	}
	if (flow_get(z, pre, &after)) {
		fz_fail(z, prog, ifindex, in, len, "no connection-table entry after the packet");
		return;
	}
	if (after.backend_id != (__u32)want || after.color != color || after.hash != h ||
	    after.service_id != pre->svc->id)
		fz_fail(z, prog, ifindex, in, len,
			"entry backend %u color %u hash 0x%08x service %u, expected %d %u 0x%08x %u",
			after.backend_id, after.color, after.hash, after.service_id, want, color, h,
			pre->svc->id);
}

/*
 * A rewritten frame differs from its input only where NAT and forwarding
 * write: MACs, TTL / hop limit (down by exactly one), the IPv4 header
 * checksum, the addresses and ports of one side, the L4 checksum.
 */
static void check_diff(struct fz *z, enum h_prog prog, __u32 ifindex, const __u8 *in, __u32 len,
		       const struct pkt_info *info, __u32 olen)
{
	const __u8 *out = z->out;
	__u32 l3 = info->l3, l4 = info->l4, off, ttl = l3 + (info->family == 4 ? 8 : 7);
	__u32 csum = l4 + (info->proto == IPPROTO_TCP ? 16 : 6), alen = info->family == 4 ? 4 : 16;
	__u32 sa = l3 + (info->family == 4 ? 12 : 8), da = sa + alen;
	bool src = false, dst = false;

	if (olen != len) {
		fz_fail(z, prog, ifindex, in, len, "output of %u bytes from %u", olen, len);
		return;
	}
	for (off = 0; off < len; off++) {
		if (in[off] == out[off] || off < 12 || off == ttl ||
		    (info->family == 4 && (off == l3 + 10 || off == l3 + 11)) || off == csum ||
		    off == csum + 1)
			continue;
		if ((off >= sa && off < sa + alen) || off == l4 || off == l4 + 1) {
			src = true;
			continue;
		}
		if ((off >= da && off < da + alen) || off == l4 + 2 || off == l4 + 3) {
			dst = true;
			continue;
		}
		fz_fail(z, prog, ifindex, in, len, "output byte %u (%s) changed 0x%02x -> 0x%02x",
			off, pkt_field_at(in, len, off), in[off], out[off]);
		return;
	}
	if (src && dst)
		fz_fail(z, prog, ifindex, in, len, "both the source and the destination rewritten");
	if (out[ttl] != (__u8)(in[ttl] - 1))
		fz_fail(z, prog, ifindex, in, len, "TTL %u -> %u", in[ttl], out[ttl]);
}

/* --- one packet ------------------------------------------------------------------ */

static void remember_flow(struct fz *z, const __u8 *in, __u32 len, const __u8 *out, __u32 olen)
{
	struct pkt_info a, b;
	struct fz_flow *f;

	if (len > PKT_MAX || pkt_verify(in, len, &a, NULL, 0) || pkt_verify(out, olen, &b, NULL, 0))
		return;
	if ((a.proto != IPPROTO_TCP && a.proto != IPPROTO_UDP) || a.is_frag ||
	    !is_vip(a.family, a.daddr))
		return;
	f = &z->flows[z->flow_next];
	z->flow_next = (z->flow_next + 1) % FZ_FLOWS;
	if (z->n_flows < FZ_FLOWS)
		z->n_flows++;
	memset(f, 0, sizeof(*f));
	f->family = a.family;
	f->proto = a.proto;
	memcpy(f->client, a.saddr, 16);
	memcpy(f->vip, a.daddr, 16);
	memcpy(f->backend, b.daddr, 16);
	f->cport = a.sport;
	f->vport = a.dport;
	f->bport = b.dport;
}

static void fz_run(struct fz *z, enum h_prog prog, __u32 ifindex, const __u8 *in, __u32 len)
{
	__u64 st[SHIFT_STAT_MAX];
	__u32 olen = FZ_BUF, verdict = ~0u, i, moved = 0, drop_moved = 0, big = 0;
	bool ours, changed, clean, no_neigh;
	struct pkt_info info;
	struct fz_pre pre;
	char why[160];
	int err;

	z->gens[z->gen]++;
	z->ran++;
	z->lens[len < 64 ? 0 : len <= PKT_MAX ? 1 : len <= z->lin_max ? 2 : 3]++;
	z->last_verdict = ~0u;
	z->last_drop = -1;
	/* Checksums right (pkt_verify reads frames up to PKT_MAX): the stronger checks apply. */
	clean = len <= PKT_MAX && !pkt_verify(in, len, &info, NULL, 0);
	pre.on = false;
	if (clean)
		pre_steer(z, prog, in, len, &info, &pre);
	err = harness_run(z->h->prog[prog], in, len, ifindex, z->out, &olen, &verdict);
	if (err) {
		fz_fail(z, prog, ifindex, in, len, "BPF_PROG_TEST_RUN: %s", strerror(-err));
		return;
	}
	err = fz_stats(z, st);
	if (err) {
		fz_fail(z, prog, ifindex, in, len, "reading the stats map: %s", strerror(-err));
		return;
	}
	for (i = 0; i < SHIFT_STAT_MAX; i++) {
		__u64 d = st[i] - z->st[i];

		if (d > 1)
			big |= 1u << i;
		if (d && dp_stat_is_drop(i)) {
			drop_moved++;
			if (d == 1)
				moved = i;
		}
	}
	if (verdict < 5)
		z->verdicts[prog][verdict]++;
	z->last_verdict = verdict;
	if (drop_moved == 1)
		z->last_drop = (int)moved;

	if (verdict != XDP_PASS && verdict != XDP_TX && verdict != XDP_REDIRECT &&
	    (verdict != XDP_DROP ||
	     (prog == H_BACKEND && (drop_moved != 1 || moved != SHIFT_STAT_DROP_SYNACK_MOVED))))
		fz_fail(z, prog, ifindex, in, len, "verdict %s (%u): not one %s documents",
			verdict_name(verdict), verdict, prog_names[prog]);
	if (olen > len)
		fz_fail(z, prog, ifindex, in, len, "data_size_out %u > input %u", olen, len);
	if (big)
		fz_fail(z, prog, ifindex, in, len, "counters 0x%x moved by more than one", big);
	if (verdict == XDP_DROP) {
		if (drop_moved != 1 || st[moved] - z->st[moved] != 1)
			fz_fail(z, prog, ifindex, in, len,
				"XDP_DROP moved %u drop counters, expected exactly one",
				drop_moved);
		else
			z->drops[moved]++;
		if (st[SHIFT_STAT_FLOW_NEW] != z->st[SHIFT_STAT_FLOW_NEW])
			fz_fail(z, prog, ifindex, in, len, "XDP_DROP counted a new flow");
	} else if (drop_moved) {
		fz_fail(z, prog, ifindex, in, len, "verdict %s moved %u drop counters (%s...)",
			verdict_name(verdict), drop_moved, dp_stat_name(moved));
	}

	changed = olen != len || memcmp(in, z->out, len);
	no_neigh = st[SHIFT_STAT_PASS_NO_NEIGH] != z->st[SHIFT_STAT_PASS_NO_NEIGH];
	/* Rewritten frames are sent on, or passed to the kernel counted as pass_no_neigh. */
	if ((verdict == XDP_TX || verdict == XDP_REDIRECT) && !changed)
		fz_fail(z, prog, ifindex, in, len, "%s without a rewrite", verdict_name(verdict));
	if (verdict == XDP_PASS && changed != no_neigh)
		fz_fail(z, prog, ifindex, in, len, "XDP_PASS, output %s, pass_no_neigh %s",
			changed ? "rewritten" : "untouched", no_neigh ? "moved" : "did not move");
	ours = frame_ours(prog, in, len);
	if (!ours) {
		if (verdict != XDP_PASS || changed)
			fz_fail(z, prog, ifindex, in, len,
				"not ours (no VIP destination / backend source) but %s%s",
				verdict_name(verdict), changed ? ", output changed" : "");
		if (prog != H_BACKEND && memcmp(st, z->st, sizeof(st)))
			fz_fail(z, prog, ifindex, in, len, "not ours but a counter moved");
	}
	if (changed && verdict != XDP_DROP && clean) {
		z->csum_checked++;
		if (pkt_verify(z->out, olen, NULL, why, sizeof(why)))
			fz_fail(z, prog, ifindex, in, len,
				"input checksums right, output's wrong after %s: %s",
				verdict_name(verdict), why);
		check_diff(z, prog, ifindex, in, len, &info, olen);
	}
	post_steer(z, &pre, prog, ifindex, in, len, verdict, changed, olen,
		   st[SHIFT_STAT_FLOW_INSERT_FAIL] != z->st[SHIFT_STAT_FLOW_INSERT_FAIL]);
	if (verdict == XDP_TX || verdict == XDP_REDIRECT || (verdict == XDP_PASS && no_neigh)) {
		z->fwd_pkts++;
		z->fwd_bytes += len < z->lin_max ? len : z->lin_max;
	}
	if (changed && verdict != XDP_DROP && prog != H_BACKEND)
		remember_flow(z, in, len, z->out, olen);
	memcpy(z->st, st, sizeof(st));
}

/* --- generators -------------------------------------------------------------------- */

static const __u8 mac_edge[6] = MAC_EDGE, mac_client[6] = MAC_CLIENT;

/*
 * A client address: the fixed ones of the tables (overrides included), the
 * client side's /24 and /64 (routed by the namespace, so replies forward), a
 * few other prefixes (so flows meet again), or anything.
 */
static void rand_client(struct fz *z, __u8 family, __u8 *a)
{
	static const __u8 cl4[][4] = {
		CL4, { 192, 0, 2, 9 }, { 192, 0, 2, 200 }, { 203, 0, 113, 5 }
	};
	static const __u8 net4[][3] = { { 198, 51, 100 }, { 198, 51, 100 }, { 100, 64, 0 } };
	static const __u8 cl6[][16] = {
		CL6,
		{ 0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9 },
		{ 0x20, 0x01, 0x0d, 0xb8, 0, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9 }
	};
	static const __u8 net6[][8] = { { 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0 },
					{ 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0 },
					{ 0x20, 0x01, 0x0d, 0xb8, 0, 0xcc, 0, 0 } };
	__u32 r = below(z, 8);

	memset(a, 0, 16);
	if (family == 4) {
		if (r < 4) {
			memcpy(a, cl4[r], 4);
		} else {
			rnd_bytes(z, a, 4);
			if (r < 7)
				memcpy(a, net4[r - 4], 3);
		}
	} else {
		if (r < 3) {
			memcpy(a, cl6[r], 16);
		} else {
			rnd_bytes(z, a, 16);
			if (r < 6)
				memcpy(a, net6[r - 3], 8);
		}
	}
	if (r < 7 && chance(z, 70))
		a[family == 4 ? 3 : 15] = (__u8)below(z, 32);
}

/* A spec to a VIP (its service's port and protocol, mostly) or elsewhere. */
static void rand_spec(struct fz *z, struct pkt_spec *s, bool to_vip)
{
	static const __u8 tflags[] = { TH_SYN, TH_SYN,		TH_SYN,
				       TH_ACK, TH_ACK | TH_PSH, TH_SYN | TH_ACK,
				       TH_RST, TH_FIN | TH_ACK, TH_RST | TH_ACK };
	const struct topo_service *svc = &topo_services[below(z, SVC_TOPO_COUNT)];
	__u32 r;

	memset(s, 0, sizeof(*s));
	memcpy(s->dmac, mac_edge, 6);
	memcpy(s->smac, mac_client, 6);
	s->family = svc->family;
	if (!to_vip && chance(z, 50))
		s->family = chance(z, 50) ? 4 : 6;
	s->proto = svc->proto;
	if (chance(z, 10))
		s->proto = chance(z, 50) ? IPPROTO_TCP : IPPROTO_UDP;
	rand_client(z, s->family, s->saddr);
	if (to_vip && s->family == svc->family) {
		memcpy(s->daddr, svc->vip, 16);
		s->dport = chance(z, 92) ? svc->port : (__u16)rnd(z);
	} else {
		rnd_bytes(z, s->daddr, s->family == 4 ? 4 : 16);
		if (chance(z, 50)) /* a backend address: the return path's key space */
			memcpy(s->daddr, topo_backends[below(z, topo_n_backends)].addr, 16);
		s->dport = (__u16)rnd(z);
	}
	s->sport = chance(z, 3) ? 0 : (__u16)(1024 + below(z, 64512));
	r = below(z, 100);
	s->ttl = r < 3 ? 0 : r < 6 ? 1 : r < 8 ? 2 : 64;
	s->tcp_flags = s->proto == IPPROTO_TCP ?
			       (chance(z, 90) ? tflags[below(z, sizeof(tflags))] : (__u8)rnd(z)) :
			       0;
	s->seq = (__u32)rnd(z);
	s->ack = (__u32)rnd(z);
	if (s->family == 4) {
		r = below(z, 100);
		s->frag = r < 50 ? 0x4000 : r < 54 ? 0x2000 : r < 57 ? (__u16)below(z, 0x2000) : 0;
		if (chance(z, 8))
			s->ip_opts = (__u8)(4 * below(z, 11));
	} else if (chance(z, 12)) {
		static const __u8 ext[] = { 0, 43, 60, 60, 44 };
		__u32 i;

		s->n_ext = (__u8)(1 + below(z, PKT_MAX_EXT));
		for (i = 0; i < s->n_ext; i++) {
			s->ext[i] = ext[below(z, sizeof(ext))];
			s->ext_hdrlen[i] = (__u8)below(z, 3);
		}
	}
	if (s->proto == IPPROTO_TCP && chance(z, 15))
		s->tcp_opts = (__u8)(4 * below(z, 11));
	s->payload = (__u16)(chance(z, 70) ? below(z, 64) : below(z, 1400));
	s->udp_csum_zero = chance(z, 5);
	s->eth_pad = chance(z, 5) ? (__u8)below(z, 20) : 0;
	if (chance(z, 12)) {
		s->tpid[0] = chance(z, 60) ? 0x8100 : 0x88a8;
		s->tci[0] = (__u16)rnd(z);
		if (chance(z, 25)) {
			s->tpid[1] = 0x8100;
			s->tci[1] = (__u16)rnd(z);
		}
	}
}

static __u32 build(struct fz *z, struct pkt_spec *s, struct pkt_layout *lo)
{
	__u32 len;

	memset(z->in, 0, z->max_len);
	len = pkt_build(s, z->in, z->max_len, lo);
	if (!len) {
		s->payload = 0;
		s->eth_pad = 0;
		len = pkt_build(s, z->in, z->max_len, lo);
	}
	return len;
}

/* 16-bit values a length field is worth trying with. */
static __u16 odd16(struct fz *z, __u32 real)
{
	switch (below(z, 10)) {
	case 0:
		return 0;
	case 1:
		return 0xffff;
	case 2:
		return (__u16)(real + 1);
	case 3:
		return (__u16)(real - 1);
	case 4:
		return (__u16)(real + 8 * (1 + below(z, 4)));
	case 5:
		return (__u16)(real > 8 ? real - 8 * (1 + below(z, 2)) : 0);
	case 6:
		return (__u16)below(z, 64);
	case 7:
		return 0x8000;
	default:
		return (__u16)rnd(z);
	}
}

static __u8 odd8(struct fz *z)
{
	static const __u8 v[] = { 0, 1, 0x7f, 0x80, 0xff, 0x0f, 0xf0, 0x45, 0x60, 6, 17, 44 };

	return chance(z, 70) ? v[below(z, sizeof(v))] : (__u8)rnd(z);
}

/* One random change of a built frame; lo describes it before any change. */
static void mutate_once(struct fz *z, __u8 *p, __u32 *len, const struct pkt_layout *lo, bool v6)
{
	static const __u8 protos[] = { 6, 17, 1, 58, 0, 43, 44, 60, 50, 51, 59, 135, 255 };
	__u32 b[] = { 12,	   lo->l3,	lo->l3 + 2,  lo->l3 + 4, lo->l3 + 6,
		      lo->l3 + 9,  lo->l3 + 20, lo->l3 + 40, lo->l4,	 lo->l4 + 4,
		      lo->l4 + 12, lo->l4 + 13, lo->data,    lo->ip_end };
	__u32 off, n, i, hdr = lo->data + 4 < *len ? lo->data + 4 : *len;

	switch (below(z, 9)) {
	case 0: /* bit flips, mostly in the headers */
		for (n = 1 + below(z, 4), i = 0; i < n; i++) {
			off = chance(z, 80) ? below(z, hdr) : below(z, *len);
			p[off] ^= (__u8)(1u << below(z, 8));
		}
		break;
	case 1: /* an odd byte at or next to a header boundary */
		off = b[below(z, sizeof(b) / sizeof(b[0]))] + below(z, 3) - 1;
		if (off < *len)
			p[off] = odd8(z);
		break;
	case 2: /* truncation: at a header boundary (+-3), or anywhere */
		if (chance(z, 70))
			off = b[below(z, sizeof(b) / sizeof(b[0]))] + below(z, 7) - 3;
		else
			off = 14 + below(z, *len - 13);
		if (off >= 14 && off < *len)
			*len = off;
		break;
	case 3: /* a length field: tot_len / payload_len, IHL, UDP length, doff, hdrlen */
		switch (below(z, 4)) {
		case 0:
			off = v6 ? lo->l3 + 4 : lo->l3 + 2;
			if (off + 2 <= *len)
				put16(p + off, odd16(z, pkt_get16(p + off)));
			break;
		case 1:
			if (!v6 && lo->l3 < *len)
				p[lo->l3] = (__u8)((p[lo->l3] & 0xf0) | below(z, 16));
			else if (v6 && lo->l3 + 42 <= *len && lo->l4 > lo->l3 + 40)
				p[lo->l3 + 41] = odd8(z);
			break;
		case 2:
			if (lo->l4 + 6 <= *len)
				put16(p + lo->l4 + 4, odd16(z, pkt_get16(p + lo->l4 + 4)));
			break;
		default:
			if (lo->l4 + 13 <= *len)
				p[lo->l4 + 12] =
					(__u8)((p[lo->l4 + 12] & 0x0f) | below(z, 16) << 4);
			break;
		}
		break;
	case 4: /* garbage after the datagram (padding the length fields do not claim) */
		n = below(z, 64);
		if (*len + n <= z->max_len) {
			rnd_bytes(z, p + *len, n);
			*len += n;
		}
		break;
	case 5: /* a longer frame that the IP length field claims */
		n = 1 + below(z, 64);
		off = v6 ? lo->l3 + 4 : lo->l3 + 2;
		if (*len + n <= z->max_len && off + 2 <= *len) {
			rnd_bytes(z, p + *len, n);
			*len += n;
			put16(p + off, (__u16)(pkt_get16(p + off) + n));
		}
		break;
	case 6: /* the protocol / next header byte */
		off = v6 ? lo->l3 + 6 : lo->l3 + 9;
		if (off < *len)
			p[off] = protos[below(z, sizeof(protos))];
		break;
	case 7: /* IPv4 fragment field, IPv6 version / ethertype */
		if (!v6 && lo->l3 + 8 <= *len)
			put16(p + lo->l3 + 6, chance(z, 50) ? 0x2000 : (__u16)rnd(z));
		else if (lo->l3 >= 2)
			put16(p + lo->l3 - 2, chance(z, 50) ? 0x0800 : 0x86dd);
		break;
	default: /* one byte anywhere */
		p[below(z, *len)] = (__u8)rnd(z);
		break;
	}
}

static void mutate(struct fz *z, __u8 *p, __u32 *len, const struct pkt_layout *lo, bool v6)
{
	__u32 n = 1 + below(z, 3);

	while (n--)
		mutate_once(z, p, len, lo, v6);
}

/* Insert n bytes at off (the frame must have room). */
static bool insert(struct fz *z, __u32 *len, __u32 off, __u32 n)
{
	if (*len + n > z->max_len || off > *len)
		return false;
	memmove(z->in + off + n, z->in + off, *len - off);
	*len += n;
	return true;
}

static __u32 gen_vlan(struct fz *z)
{
	static const __u16 tpids[] = { 0x8100, 0x88a8, 0x9100, 0x8100 };
	struct pkt_layout lo;
	struct pkt_spec s;
	__u32 len, n, i;

	rand_spec(z, &s, chance(z, 85));
	s.tpid[0] = s.tpid[1] = 0;
	len = build(z, &s, &lo);
	for (n = below(z, 7), i = 0; i < n; i++) {
		if (!insert(z, &len, 12, 4))
			break;
		put16(z->in + 12, tpids[below(z, 4)]);
		put16(z->in + 14, (__u16)rnd(z));
	}
	return len;
}

static __u32 gen_ext6(struct fz *z)
{
	static const __u8 types[] = { 0, 43, 60, 60, 0, 44, 51, 50, 59, 135, 139, 140 };
	struct pkt_layout lo;
	struct pkt_spec s;
	__u32 len, n, i, off, size, total = 0;
	__u8 ty[8], nh;

	do
		rand_spec(z, &s, chance(z, 85));
	while (s.family != 6);
	s.n_ext = 0;
	len = build(z, &s, &lo);
	nh = z->in[lo.l3 + 6];
	n = below(z, 8);
	for (i = 0; i < n; i++)
		ty[i] = chance(z, 90) ? types[below(z, sizeof(types))] : (__u8)rnd(z);
	/* Built back to front: each header names the one after it. */
	for (i = n; i-- > 0;) {
		__u8 hl = (__u8)(chance(z, 95) ? below(z, 3) : rnd(z));

		size = ty[i] == 44 ? 8 : ty[i] == 51 ? (hl + 2u) * 4 : (hl + 1u) * 8;
		off = lo.l3 + 40;
		if (!insert(z, &len, off, size))
			break;
		rnd_bytes(z, z->in + off, size);
		z->in[off] = nh;
		z->in[off + 1] = hl;
		if (ty[i] == 44 && chance(z, 50)) /* an atomic fragment: offset 0, M 0 */
			put16(z->in + off + 2, 0);
		nh = ty[i];
		total += size;
	}
	z->in[lo.l3 + 6] = nh;
	put16(z->in + lo.l3 + 4, (__u16)(pkt_get16(z->in + lo.l3 + 4) + total));
	if (chance(z, 20))
		put16(z->in + lo.l3 + 4, odd16(z, pkt_get16(z->in + lo.l3 + 4)));
	return len;
}

static __u32 gen_tcpopt(struct fz *z)
{
	static const __u8 kinds[] = { 0, 1, 2, 3, 4, 5, 8, 28, 30, 34, 254 };
	struct pkt_layout lo;
	struct pkt_spec s;
	__u32 len, off, end;

	rand_spec(z, &s, chance(z, 90));
	s.proto = IPPROTO_TCP;
	s.tcp_flags = chance(z, 50) ? TH_SYN : (__u8)rnd(z);
	s.tcp_opts = (__u8)(4 * below(z, 11));
	len = build(z, &s, &lo);
	end = lo.data < len ? lo.data : len;
	for (off = lo.l4 + 20; off < end;) {
		z->in[off++] = kinds[below(z, sizeof(kinds))];
		if (off < end)
			z->in[off++] = chance(z, 80) ? (__u8)below(z, 12) : (__u8)rnd(z);
	}
	if (chance(z, 30) && lo.l4 + 13 <= len)
		z->in[lo.l4 + 12] = (__u8)(below(z, 16) << 4 | (z->in[lo.l4 + 12] & 0xf));
	if (chance(z, 50))
		pkt_fix_csums(z->in, len);
	return len;
}

static __u32 gen_tiny(struct fz *z)
{
	static const __u16 types[] = { 0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806 };
	__u32 len = 14 + below(z, 51);

	rnd_bytes(z, z->in, len);
	memcpy(z->in, mac_edge, 6);
	if (chance(z, 80))
		put16(z->in + 12, types[below(z, 5)]);
	if (len > 14 && chance(z, 70))
		z->in[14] = chance(z, 50) ? 0x45 : 0x60;
	if (len >= 34 && z->in[14] == 0x45 && chance(z, 70)) /* a VIP destination */
		memcpy(z->in + 30, topo_services[below(z, SVC_TOPO_COUNT)].vip, 4);
	return len;
}

static __u32 gen_jumbo(struct fz *z)
{
	struct pkt_layout lo;
	struct pkt_spec s;
	__u32 len, room;

	rand_spec(z, &s, chance(z, 85));
	s.tpid[1] = 0;
	/* Room for the largest headers rand_spec() writes. */
	room = z->max_len - 14 - 4 - 40 - 40 - 8 * 6 * 3 - 60;
	s.payload = (__u16)(room > 1400 ? 1400 + below(z, room - 1400) : below(z, room));
	len = build(z, &s, &lo);
	if (chance(z, 40))
		mutate(z, z->in, &len, &lo, s.family == 6);
	return len;
}

static struct fz_flow *pick_flow(struct fz *z)
{
	return z->n_flows ? &z->flows[below(z, z->n_flows)] : NULL;
}

static void put_payload(struct fz *z, __u32 len, const struct pkt_layout *lo, const char *text)
{
	size_t n = strlen(text);

	if (lo->data + n <= len) {
		memcpy(z->in + lo->data, text, n);
		pkt_fix_csums(z->in, len);
	}
}

/* A later client packet of a known flow: established path, HTTP requests. */
static __u32 gen_flow(struct fz *z)
{
	static const __u8 fl[] = { TH_ACK, TH_ACK | TH_PSH, TH_ACK | TH_PSH,
				   TH_SYN, TH_FIN | TH_ACK, TH_RST };
	static const char *const req[] = { "GET / HTTP/1.1\r\n", "POST /x HTTP/1.1\r\n",
					   "HEAD / HTTP/1.0\r\n", "GE" };
	struct fz_flow *f = pick_flow(z);
	struct pkt_layout lo;
	struct pkt_spec s;
	__u32 len;

	if (!f)
		return 0;
	memset(&s, 0, sizeof(s));
	memcpy(s.dmac, mac_edge, 6);
	memcpy(s.smac, mac_client, 6);
	s.family = f->family;
	s.proto = f->proto;
	memcpy(s.saddr, f->client, 16);
	memcpy(s.daddr, f->vip, 16);
	s.sport = f->cport;
	s.dport = f->vport;
	s.ttl = 64;
	s.tcp_flags = s.proto == IPPROTO_TCP ? fl[below(z, sizeof(fl))] : 0;
	s.payload =
		(__u16)(s.tcp_flags & TH_PSH || s.proto == IPPROTO_UDP ? 24 + below(z, 100) : 0);
	s.frag = 0x4000;
	len = build(z, &s, &lo);
	if (s.payload)
		put_payload(z, len, &lo, req[below(z, 4)]);
	if (chance(z, 15))
		mutate(z, z->in, &len, &lo, s.family == 6);
	return len;
}

/* A backend's reply to a known flow: SYN-ACK, RST, HTTP status lines. */
static __u32 gen_reply(struct fz *z)
{
	static const __u8 fl[] = { TH_SYN | TH_ACK, TH_ACK | TH_PSH, TH_ACK | TH_PSH,
				   TH_RST,	    TH_RST | TH_ACK, TH_FIN | TH_ACK };
	static const char *const st[] = {
		"HTTP/1.1 200 OK\r\n", "HTTP/1.1 503 Unavailable\r\n", "HTTP/1.1 100 Continue\r\n",
		"HTTP/1.0 404 No\r\n", "HTTP/1.1 9xx bad\r\n",	       "HTTP/2 500\r\n"
	};
	static const __u8 be_mac[6] = { 0x02, 0xbe, 0, 0, 0, 0 };
	struct fz_flow *f = pick_flow(z);
	struct pkt_layout lo;
	struct pkt_spec s;
	__u32 len;

	if (!f)
		return 0;
	memset(&s, 0, sizeof(s));
	memcpy(s.dmac, mac_edge, 6);
	memcpy(s.smac, be_mac, 6);
	s.family = f->family;
	s.proto = f->proto;
	memcpy(s.saddr, f->backend, 16);
	memcpy(s.daddr, f->client, 16);
	s.sport = f->bport;
	s.dport = f->cport;
	s.ttl = chance(z, 5) ? 1 : 64;
	s.tcp_flags = s.proto == IPPROTO_TCP ? fl[below(z, sizeof(fl))] : 0;
	s.payload =
		(__u16)(s.tcp_flags & TH_PSH || s.proto == IPPROTO_UDP ? 24 + below(z, 100) : 0);
	len = build(z, &s, &lo);
	if (s.payload)
		put_payload(z, len, &lo, st[below(z, 6)]);
	if (chance(z, 15))
		mutate(z, z->in, &len, &lo, s.family == 6);
	return len;
}

/* ICMP destination unreachable from a backend, quoting a packet of a known flow. */
static __u32 gen_icmp(struct fz *z)
{
	struct fz_flow *f = pick_flow(z);
	struct pkt_layout lo;
	struct pkt_spec s;
	__u32 len, alen;
	__u8 *q;

	if (!f)
		return 0;
	alen = f->family == 4 ? 4 : 16;
	memset(&s, 0, sizeof(s));
	memcpy(s.dmac, mac_edge, 6);
	memcpy(s.smac, mac_client, 6);
	s.family = f->family;
	s.proto = f->family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	memcpy(s.saddr, f->backend, 16);
	memcpy(s.daddr, f->client, 16);
	s.ttl = 64;
	s.payload = (__u16)(f->family == 4 ? 28 : 48);
	len = build(z, &s, &lo);
	q = z->in + lo.l4;
	q[0] = f->family == 4 ? 3 : 1; /* destination unreachable */
	q[1] = (__u8)below(z, 16);
	q += 8; /* the quoted packet: client -> backend */
	if (f->family == 4) {
		memset(q, 0, 20);
		q[0] = 0x45;
		put16(q + 2, 40);
		q[8] = 63;
		q[9] = f->proto;
		memcpy(q + 12, f->client, alen);
		memcpy(q + 16, f->backend, alen);
		q += 20;
	} else {
		memset(q, 0, 40);
		q[0] = 0x60;
		put16(q + 4, 20);
		q[6] = f->proto;
		q[7] = 63;
		memcpy(q + 8, f->client, alen);
		memcpy(q + 24, f->backend, alen);
		q += 40;
	}
	put16(q, f->cport);
	put16(q + 2, f->bport);
	pkt_fix_csums(z->in, len);
	if (chance(z, 30))
		mutate(z, z->in, &len, &lo, s.family == 6);
	return len;
}

/* Build the next packet into z->in; returns its length. */
static __u32 gen_packet(struct fz *z)
{
	struct pkt_layout lo;
	struct pkt_spec s;
	__u32 r = below(z, 100), g, len = 0, from;

	for (g = 0; g < G__N - 1 && r >= gen_weight[g]; g++)
		r -= gen_weight[g];
	z->gen = (enum fz_gen)g;
	switch (z->gen) {
	case G_RANDOM:
		len = 14 + below(z, chance(z, 90) ? 200 : z->max_len - 13);
		rnd_bytes(z, z->in, len);
		break;
	case G_RAND_HDR:
		rand_spec(z, &s, chance(z, 80));
		len = build(z, &s, &lo);
		from = lo.l3 + below(z, len - lo.l3 + 1);
		rnd_bytes(z, z->in + from, len - from);
		break;
	case G_VALID:
		rand_spec(z, &s, chance(z, 75));
		len = build(z, &s, &lo);
		break;
	case G_MUTATE:
		rand_spec(z, &s, true);
		len = build(z, &s, &lo);
		mutate(z, z->in, &len, &lo, s.family == 6);
		break;
	case G_VLAN:
		len = gen_vlan(z);
		break;
	case G_EXT6:
		len = gen_ext6(z);
		break;
	case G_TCPOPT:
		len = gen_tcpopt(z);
		break;
	case G_TINY:
		len = gen_tiny(z);
		break;
	case G_JUMBO:
		len = gen_jumbo(z);
		break;
	case G_FLOW:
		len = gen_flow(z);
		break;
	case G_REPLY:
		len = gen_reply(z);
		break;
	case G_ICMP:
		len = gen_icmp(z);
		break;
	default:
		break;
	}
	if (!len) { /* no flow known yet */
		z->gen = G_VALID;
		rand_spec(z, &s, true);
		len = build(z, &s, &lo);
	}
	return len < 14 ? 14 : len;
}

static enum h_prog pick_prog(struct fz *z)
{
	__u32 r = below(z, 100);

	if (z->gen == G_REPLY || z->gen == G_ICMP)
		return r < 60 ? H_BACKEND : r < 90 ? H_BOTH : H_CLIENT;
	return r < 55 ? H_CLIENT : r < 85 ? H_BOTH : H_BACKEND;
}

static __u32 pick_ingress(struct fz *z)
{
	__u32 r = below(z, 100);

	if (z->env->if_be && r < 10)
		return (__u32)z->env->if_be;
	if (z->env->if_cl && r < 20)
		return (__u32)z->env->if_cl;
	return H_LO_IFINDEX;
}

static int new_weights(struct fz *z)
{
	__u32 i, w;
	int err;

	for (i = 0; i < SVC_TOPO_COUNT; i++) {
		switch (below(z, 8)) {
		case 0:
			w = 0;
			break;
		case 1:
			w = SHIFT_WEIGHT_MAX;
			break;
		case 2:
			w = SHIFT_WEIGHT_LATCHED | below(z, SHIFT_WEIGHT_MAX + 1);
			break;
		default:
			w = below(z, SHIFT_WEIGHT_MAX + 1);
			break;
		}
		err = dp_weight_set(&z->h->m, i, w);
		if (err)
			return err;
		z->weights[i] = w;
	}
	return 0;
}

/* --- limits of BPF_PROG_TEST_RUN --------------------------------------------------- */

/*
 * The largest frame BPF_PROG_TEST_RUN takes for XDP, and how much of it the
 * program sees: data_end - data is read back from the stats (bytes of a
 * forwarded packet) rather than assumed. Kernels since 5.18 take frames above
 * PAGE_SIZE - XDP_PACKET_HEADROOM - SKB_DATA_ALIGN(sizeof(skb_shared_info))
 * (4096 - 256 - 320 = 3520 on x86_64) and put the rest in fragments, which a
 * program not loaded with BPF_F_XDP_HAS_FRAGS cannot see.
 */
static int fz_limits(struct fz *z)
{
	struct shift_backend_stats b0, b1;
	struct pkt_spec s = PKT4(CL4, VIP4, IPPROTO_UDP, 40000, 53, .payload = 0);
	__u32 lo = 14, hi, mid, olen, verdict, len, taken;
	__u8 *big;
	int err, err_above;

	memset(z->in, 0, FZ_BUF);
	err = harness_run(z->h->prog[H_CLIENT], z->in, 13, H_LO_IFINDEX, NULL, NULL, &verdict);
	test_note(z->t, "a 13-byte frame: %s", err ? strerror(-err) : "taken");
	err = harness_run(z->h->prog[H_CLIENT], z->in, 14, H_LO_IFINDEX, NULL, NULL, &verdict);
	if (!ASSERT_OK(z->t, err, "a 14-byte frame"))
		return err;
	/* The largest size taken (one limit: a size is taken iff it is below it). */
	big = calloc(2, FZ_PROBE);
	if (!ASSERT_TRUE(z->t, big != NULL, "memory"))
		return -ENOMEM;
	for (hi = FZ_PROBE; lo < hi;) {
		mid = lo + (hi - lo + 1) / 2;
		olen = FZ_PROBE;
		if (harness_run(z->h->prog[H_CLIENT], big, mid, H_LO_IFINDEX, big + FZ_PROBE, &olen,
				&verdict))
			hi = mid - 1;
		else
			lo = mid;
	}
	olen = FZ_PROBE;
	err = harness_run(z->h->prog[H_CLIENT], big, lo + 1, H_LO_IFINDEX, big + FZ_PROBE, &olen,
			  &verdict);
	free(big);
	err_above = err;
	taken = lo;
	z->max_len = taken < FZ_JUMBO ? taken : FZ_JUMBO;
	/* How much of it a program sees: a forwarded packet counts data_end - data. */
	s.payload = (__u16)(z->max_len - 14 - 20 - 8);
	len = pkt_build(&s, z->in, FZ_BUF, NULL);
	err = dp_weight_set(&z->h->m, SVC_V4_UDP, 0);
	if (!err)
		err = harness_be_stats(z->h, 2, &b0);
	olen = FZ_BUF;
	if (!err)
		err = harness_run(z->h->prog[H_CLIENT], z->in, len, H_LO_IFINDEX, z->out, &olen,
				  &verdict);
	if (!err)
		err = harness_be_stats(z->h, 2, &b1);
	if (!ASSERT_OK(z->t, err, "a frame of the largest size"))
		return err;
	z->lin_max = verdict == XDP_TX ? (__u32)(b1.bytes - b0.bytes) : 0;
	if (!z->lin_max) {
		/* Dropped: the program saw less than tot_len claims. Find how much it sees. */
		for (lo = 14 + 20 + 8, hi = z->max_len; lo < hi;) {
			mid = lo + (hi - lo + 1) / 2;
			s.payload = (__u16)(mid - 14 - 20 - 8);
			len = pkt_build(&s, z->in, FZ_BUF, NULL);
			olen = FZ_BUF;
			err = harness_run(z->h->prog[H_CLIENT], z->in, len, H_LO_IFINDEX, z->out,
					  &olen, &verdict);
			if (err)
				return err;
			if (verdict == XDP_TX)
				lo = mid;
			else
				hi = mid - 1;
		}
		z->lin_max = lo;
	}
	if (taken == FZ_PROBE)
		test_note(z->t, "BPF_PROG_TEST_RUN (XDP) takes frames of 14 to at least %u bytes",
			  FZ_PROBE);
	else
		test_note(z->t, "BPF_PROG_TEST_RUN (XDP) takes frames of 14..%u bytes (%u: %s)",
			  taken, taken + 1, strerror(-err_above));
	test_note(z->t, "fuzzing frames of 14..%u bytes; the program sees the first %u bytes%s",
		  z->max_len, z->lin_max,
		  z->lin_max < z->max_len ?
			  " (the rest is in fragments: not an xdp.frags program)" :
			  "");
	return 0;
}

/* Zero the counters and connection tables the probes touched: the books start here. */
static int fz_reset(struct fz *z)
{
	__u64 *zero = calloc((size_t)z->ncpu, sizeof(__u64)), evicted;
	__u32 i;
	int err = zero ? 0 : -ENOMEM;

	for (i = 0; !err && i < SHIFT_STAT_MAX; i++)
		if (bpf_map_update_elem(z->h->m.fd[SHIFT_MAP_STATS], &i, zero, BPF_ANY))
			err = -errno;
	free(zero);
	for (i = 0; !err && i < topo_n_backends; i++)
		err = dp_backend_stats_reset(&z->h->m, topo_backends[i].id);
	for (i = 0; !err && i < SVC_TOPO_COUNT; i++)
		err = dp_flows_evict(&z->h->m, i, -1, &evicted);
	memset(z->st, 0, sizeof(z->st));
	return err;
}

/* --- invariants after the run ------------------------------------------------------ */

/*
 * The service a key's VIP word and port name (shift_flow_key_vip0()): TCP's
 * VIP as it stands, UDP's with its word complemented; an IPv6 VIP folded to
 * its word first (shift_flow_vip6()), so the services are walked for the one
 * whose VIP folds to it. 0 and *proto when exactly one service matches; -1
 * when none or more do (the config check keeps more from happening).
 */
static int key_service(struct fz *z, __u8 family, __u32 kvip, __u16 dport,
		       struct shift_addr_key *sk, struct shift_service *svc, __u8 *proto)
{
	int fd = z->h->m.fd[SHIFT_MAP_SERVICES];
	struct shift_addr_key key, next;
	struct shift_service s;
	void *prev = NULL;
	int found = 0, guard = 0;

	while (!bpf_map_get_next_key(fd, prev, &next) && guard++ < 100000) {
		key = next;
		prev = &key;
		if (key.family != (family == 4 ? SHIFT_AF_INET : SHIFT_AF_INET6) ||
		    key.port != dport || bpf_map_lookup_elem(fd, &key, &s))
			continue;
		if (shift_flow_key_word(&key) != kvip)
			continue;
		found++;
		*sk = key;
		*svc = s;
		*proto = key.proto;
	}
	return found == 1 ? 0 : -1;
}

static void check_entry(struct fz *z, __u8 family, const void *key, const struct shift_flow *f,
			__u32 *bad)
{
	const struct shift_flow_key4 *k4 = key;
	const struct shift_flow_key6 *k6 = key;
	struct shift_addr_key sk;
	struct shift_service svc;
	char what[200];
	__u32 hash = 0;
	__u8 proto = 0;
	int known;

	memset(&sk, 0, sizeof(sk));
	if (family == 4) {
		known = !key_service(z, family, k4->daddr, k4->dport, &sk, &svc, &proto);
		if (known)
			hash = shift_flow_hash4(k4->saddr, sk.addr[0], k4->sport, k4->dport, proto,
						z->h->seed);
	} else {
		known = !key_service(z, family, k6->vip, k6->dport, &sk, &svc, &proto);
		if (known)
			hash = shift_flow_hash6(k6->saddr, sk.addr, k6->sport, k6->dport, proto,
						z->h->seed);
	}
	what[0] = '\0';
	if (!known)
		snprintf(what, sizeof(what),
			 "for a non-VIP flow (daddr:dport is no service, or a TCP and a UDP one)");
	else if (f->service_id != svc.id)
		snprintf(what, sizeof(what), "service_id %u, the VIP's service is %u",
			 f->service_id, svc.id);
	else if (!in_pool(svc.id, f->color, f->backend_id))
		snprintf(what, sizeof(what), "backend %u is not in service %u's %s pool",
			 f->backend_id, svc.id, f->color ? "green" : "blue");
	else if (f->hash != hash)
		snprintf(what, sizeof(what), "hash 0x%08x, shift_flow_hash%d gives 0x%08x", f->hash,
			 family, hash);
	else if (f->state & ~FS_KNOWN)
		snprintf(what, sizeof(what), "unknown state bits 0x%x", f->state);
	if (!what[0])
		return;
	if ((*bad)++ < FZ_REPORTS) {
		char key_hex[2 * sizeof(struct shift_flow_key6) + 1];

		hex_line(key_hex, key, family == 4 ? sizeof(*k4) : sizeof(*k6));
		test_failf(z->t, __FILE__, __LINE__, "flows%d entry %s: %s", family == 4 ? 4 : 6,
			   key_hex, what);
	}
}

static __u32 walk_flows(struct fz *z, __u8 family)
{
	int fd = z->h->m.fd[family == 4 ? SHIFT_MAP_FLOWS4 : SHIFT_MAP_FLOWS6];
	struct shift_flow_key6 key, next;
	struct shift_flow f;
	__u32 n = 0, bad = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &f))
			continue; /* evicted meanwhile: cannot happen here, nothing runs */
		n++;
		check_entry(z, family, &key, &f, &bad);
	}
	if (bad)
		test_failf(z->t, __FILE__, __LINE__, "%u bad flows%d entries of %u", bad,
			   family == 4 ? 4 : 6, n);
	return n;
}

static void be_add(struct shift_backend_stats *to, const struct shift_backend_stats *v)
{
	__u64 *t = (__u64 *)to;
	const __u64 *w = (const __u64 *)v;
	size_t i;

	for (i = 0; i < sizeof(*v) / sizeof(__u64); i++)
		t[i] += w[i];
}

static bool be_zero(const struct shift_backend_stats *v)
{
	static const struct shift_backend_stats zero;

	return !memcmp(v, &zero, sizeof(zero));
}

static void check_counters(struct fz *z, __u32 entries)
{
	struct shift_backend_stats *v, sum, one;
	__u32 keys[1024], count, out_batch = 0, k, bad = 0;
	int fd = z->h->m.fd[SHIFT_MAP_BE_STATS], err, c;
	const __u64 *st = z->st;
	void *in_batch = NULL;
	LIBBPF_OPTS(bpf_map_batch_opts, o);

	memset(&sum, 0, sizeof(sum));
	v = calloc(1024 * (size_t)z->ncpu, sizeof(*v));
	if (!ASSERT_TRUE(z->t, v != NULL, "memory"))
		return;
	/* Every slot of the per-CPU array, 1024 at a time. */
	for (;;) {
		count = 1024;
		err = bpf_map_lookup_batch(fd, in_batch, &out_batch, keys, v, &count, &o);
		if (err && err != -ENOENT) {
			test_failf(z->t, __FILE__, __LINE__, "be_stats batch lookup: %s",
				   strerror(-err));
			break;
		}
		for (k = 0; k < count; k++) {
			memset(&one, 0, sizeof(one));
			for (c = 0; c < z->ncpu; c++)
				be_add(&one, &v[k * z->ncpu + c]);
			if (!topo_be(keys[k]) && !be_zero(&one) && bad++ < FZ_REPORTS)
				test_failf(z->t, __FILE__, __LINE__,
					   "backend id %u is in no topology but has counters",
					   keys[k]);
			if (one.new_flows > one.packets)
				test_failf(z->t, __FILE__, __LINE__,
					   "backend %u: new_flows %llu > packets %llu", keys[k],
					   (unsigned long long)one.new_flows,
					   (unsigned long long)one.packets);
			be_add(&sum, &one);
		}
		if (err == -ENOENT || !count)
			break;
		in_batch = &out_batch;
	}
	free(v);
	ASSERT_EQ(z->t, sum.new_flows, st[SHIFT_STAT_FLOW_NEW], "sum of new_flows vs flow_new");
	ASSERT_EQ(z->t, sum.packets + sum.reply_packets, z->fwd_pkts,
		  "sum of packets + reply_packets vs packets forwarded (TX, REDIRECT, "
		  "pass_no_neigh)");
	ASSERT_EQ(z->t, sum.bytes + sum.reply_bytes, z->fwd_bytes,
		  "sum of bytes + reply_bytes vs their lengths");
	/* Not flow_new: a backend's answer writes the entry of a flow its
	 * first packet steered without one. */
	ASSERT_LE(z->t, entries, st[SHIFT_STAT_FLOW_INSERT],
		  "connection-table entries vs flow_insert");
	test_note(z->t,
		  "backends: %llu packets, %llu replies, %llu new flows; errors: rst %llu http5xx "
		  "%llu syn_retrans %llu icmp %llu; responses 1xx..5xx %llu %llu %llu %llu %llu",
		  (unsigned long long)sum.packets, (unsigned long long)sum.reply_packets,
		  (unsigned long long)sum.new_flows, (unsigned long long)sum.errors[SHIFT_ERR_RST],
		  (unsigned long long)sum.errors[SHIFT_ERR_HTTP5XX],
		  (unsigned long long)sum.errors[SHIFT_ERR_SYN_RETRANS],
		  (unsigned long long)sum.errors[SHIFT_ERR_ICMP_UNREACH],
		  (unsigned long long)sum.responses[1], (unsigned long long)sum.responses[2],
		  (unsigned long long)sum.responses[3], (unsigned long long)sum.responses[4],
		  (unsigned long long)sum.responses[5]);
}

/* --- saved regression packets --------------------------------------------------------- */

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' :
	       c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 :
				      -1;
}

/* Read a .pkt file; returns the frame length (0: unreadable, with a note). */
static __u32 read_pkt(struct fz *z, const char *path, enum h_prog *prog, __u32 *ifindex,
		      int *exp_verdict, int *exp_drop)
{
	char line[4096], *p, *reason;
	__u32 len = 0, i;
	int hi, lo;
	FILE *f = fopen(path, "r");

	*prog = H_CLIENT;
	*ifindex = H_LO_IFINDEX;
	*exp_verdict = *exp_drop = -1;
	if (!f) {
		test_failf(z->t, __FILE__, __LINE__, "%s: %s", path, strerror(errno));
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!strncmp(line, "prog ", 5)) {
			*prog = !strcmp(line + 5, "backend") ? H_BACKEND :
				!strcmp(line + 5, "both")    ? H_BOTH :
							       H_CLIENT;
		} else if (!strncmp(line, "ingress ", 8)) {
			if (!strcmp(line + 8, "be") && z->env->if_be)
				*ifindex = (__u32)z->env->if_be;
			else if (!strcmp(line + 8, "cl") && z->env->if_cl)
				*ifindex = (__u32)z->env->if_cl;
		} else if (!strncmp(line, "expect ", 7)) {
			/* "expect VERDICT [drop reason]": what the row pins once a bug is fixed */
			reason = strchr(line + 7, ' ');
			if (reason)
				*reason++ = '\0';
			for (i = 0; i < 5; i++)
				if (!strcmp(line + 7, verdict_name(i)))
					*exp_verdict = (int)i;
			for (i = 0; reason && i < SHIFT_STAT_DROP_MAX_; i++)
				if (!strcmp(reason, dp_stat_name(i)))
					*exp_drop = (int)i;
			if (*exp_verdict < 0 || (reason && *exp_drop < 0))
				test_failf(z->t, __FILE__, __LINE__, "%s: bad line 'expect %s%s%s'",
					   path, line + 7, reason ? " " : "", reason ? reason : "");
		} else if (!strncmp(line, "hex ", 4)) {
			for (p = line + 4; p[0] && p[1] && len < z->max_len; p += 2) {
				hi = hexval(p[0]);
				lo = hexval(p[1]);
				if (hi < 0 || lo < 0)
					break;
				z->in[len++] = (__u8)(hi << 4 | lo);
			}
		}
	}
	fclose(f);
	if (len < 14)
		test_failf(z->t, __FILE__, __LINE__, "%s: no frame of 14 bytes or more", path);
	return len < 14 ? 0 : len;
}

static void replay_saved(struct fz *z)
{
	const char *dir = getenv("SHIFT_FUZZ_REGRESSIONS");
	char path[PATH_MAX];
	struct dirent *de;
	enum h_prog prog;
	__u32 n = 0, len, ifindex;
	int exp_verdict, exp_drop;
	DIR *d;

	if (!dir)
		dir = FZ_REG_DIR;
	d = opendir(dir);
	if (!d) {
		test_note(z->t, "%s: %s (no saved packets to replay)", dir, strerror(errno));
		return;
	}
	z->gen = G_REPLAY;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l < 5 || strcmp(de->d_name + l - 4, ".pkt"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = read_pkt(z, path, &prog, &ifindex, &exp_verdict, &exp_drop);
		if (!len)
			continue;
		z->pkt_no = n++;
		fz_run(z, prog, ifindex, z->in, len);
		if ((exp_verdict >= 0 && z->last_verdict != (__u32)exp_verdict) ||
		    (exp_drop >= 0 && z->last_drop != exp_drop))
			test_failf(z->t, __FILE__, __LINE__, "%s: %s %s, expected %s %s", path,
				   verdict_name(z->last_verdict),
				   z->last_drop >= 0 ? dp_stat_name(z->last_drop) : "",
				   verdict_name((__u32)exp_verdict),
				   exp_drop >= 0 ? dp_stat_name(exp_drop) : "");
	}
	closedir(d);
	test_note(z->t, "%u saved packets replayed from %s", n, dir);
}

/* --- the test ---------------------------------------------------------------------- */

static __u64 env_u64(const char *name, __u64 dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long x;

	if (!v || !*v)
		return dflt;
	errno = 0;
	x = strtoull(v, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "bpf_test: %s='%s' is not a number, using %llu\n", name, v,
			(unsigned long long)dflt);
		return dflt;
	}
	return x;
}

static void out_dir(struct fz *z)
{
	const char *o = getenv("SHIFT_FUZZ_OUT");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (o) {
		snprintf(z->out_dir, sizeof(z->out_dir), "%s", o);
		return;
	}
	/* <build dir>/tests/bpf_test -> <build dir>/fuzz-failures */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(z->out_dir, sizeof(z->out_dir), "%.*s/fuzz-failures",
		 (int)(sizeof(z->out_dir) - 16), exe);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fz_setup(struct tctx *t, struct fz *z)
{
	static const __u32 http[] = { SVC_V4_TCP, SVC_V6_TCP, SVC_V4_OVR };
	__u32 i;

	z->ncpu = libbpf_num_possible_cpus();
	if (!ASSERT_TRUE(t, z->ncpu > 0, "possible CPUs"))
		return -1;
	z->vals = calloc((size_t)z->ncpu * SHIFT_STAT_MAX, sizeof(__u64));
	if (!ASSERT_TRUE(t, z->vals != NULL, "memory"))
		return -1;
	/* HTTP parsing on for some services: the request/response signals run too. */
	for (i = 0; i < sizeof(http) / sizeof(http[0]); i++) {
		const struct topo_service *s = &topo_services[http[i]];
		struct shift_addr_key k;

		memset(&k, 0, sizeof(k));
		memcpy(k.addr, s->vip, s->family == 4 ? 4 : 16);
		k.port = htons(s->port);
		k.proto = s->proto;
		k.family = s->family == 4 ? SHIFT_AF_INET : SHIFT_AF_INET6;
		/* Odd services read TLS / HTTP/2 / TCP too (analysis = auto). */
		if (!ASSERT_OK(t,
			       dp_service_put(&z->h->m, s->id, &k,
					      s->flags | ((s->id & 1) ? SHIFT_SVC_F_AUTO :
									SHIFT_SVC_F_HTTP)),
			       "HTTP flag"))
			return -1;
	}
	return 0;
}

static void report(struct fz *z, double secs)
{
	char line[600];
	size_t o;
	__u32 p, v, i;

	test_note(z->t,
		  "seed 0x%llx: %llu packets in %.2f s (%.0f/s), frames 14..%u bytes "
		  "(<64: %u, <=%u: %u, <=%u: %u, larger: %u)",
		  (unsigned long long)z->seed, (unsigned long long)z->ran, secs,
		  secs > 0 ? z->ran / secs : 0, z->max_len, z->lens[0], PKT_MAX, z->lens[1],
		  z->lin_max, z->lens[2], z->lens[3]);
	for (p = 0; p < H_PROGS; p++) {
		o = (size_t)snprintf(line, sizeof(line), "%-7s", prog_names[p]);
		for (v = 0; v < 5; v++)
			o += (size_t)snprintf(line + o, sizeof(line) - o, " %s %llu",
					      verdict_name(v),
					      (unsigned long long)z->verdicts[p][v]);
		test_note(z->t, "%s", line);
	}
	o = (size_t)snprintf(line, sizeof(line), "drops:");
	for (i = 0; i < SHIFT_STAT_MAX; i++)
		if (dp_stat_is_drop(i))
			o += (size_t)snprintf(line + o, sizeof(line) - o, " %s %llu",
					      dp_stat_name(i), (unsigned long long)z->drops[i]);
	test_note(z->t, "%s", line);
	o = (size_t)snprintf(line, sizeof(line), "counters:");
	for (i = SHIFT_STAT_DROP_MAX_; i < SHIFT_STAT_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " %s %llu", dp_stat_name(i),
				      (unsigned long long)z->st[i]);
	test_note(z->t, "%s", line);
	o = (size_t)snprintf(line, sizeof(line), "generators:");
	for (i = 0; i < G__N; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " %s %llu", gen_names[i],
				      (unsigned long long)z->gens[i]);
	test_note(z->t, "%s", line);
	test_note(z->t,
		  "forwarded %llu (%llu bytes); output checksums and fields checked on %llu, "
		  "steering on %llu",
		  (unsigned long long)z->fwd_pkts, (unsigned long long)z->fwd_bytes,
		  (unsigned long long)z->csum_checked, (unsigned long long)z->steer_checked);
}

TEST(fuzz)
{
	struct fixture f = { .seed = H_SEED, .flows4 = FZ_FLOWS_MAX, .flows6 = FZ_FLOWS_MAX };
	struct harness *h;
	struct fz *z;
	__u32 entries = 0, len;
	double t0;
	__u64 i;

	if (!test_would_run(t, "limits") && !test_would_run(t, "packets") &&
	    !test_would_run(t, "invariants"))
		return;
	z = calloc(1, sizeof(*z));
	if (!ASSERT_TRUE(t, z != NULL, "memory"))
		return;
	z->t = t;
	z->seed = env_u64("SHIFT_FUZZ_SEED", FZ_SEED);
	z->n_packets = env_u64("SHIFT_FUZZ_PACKETS", FZ_PACKETS);
	z->rng = z->seed ? z->seed : 1;
	out_dir(z);

	test_sub(t, "limits");
	h = fixture_get(t, &f);
	if (!h)
		goto out;
	z->h = h;
	z->env = &f.env;
	if (fz_setup(t, z) || fz_limits(z))
		goto out;
	if (!ASSERT_OK(t, fz_reset(z), "resetting the counters"))
		goto out;

	if (test_sub(t, "packets")) {
		test_note(t,
			  "SHIFT_FUZZ_SEED=0x%llx SHIFT_FUZZ_PACKETS=%llu; failures saved under %s",
			  (unsigned long long)z->seed, (unsigned long long)z->n_packets,
			  z->out_dir[0] ? z->out_dir : "(nowhere)");
		replay_saved(z);
		t0 = now_s();
		for (i = 0; i < z->n_packets; i++) {
			if (i % FZ_EPOCH == 0 && !ASSERT_OK(t, new_weights(z), "weights"))
				break;
			len = gen_packet(z);
			z->pkt_no = i;
			fz_run(z, pick_prog(z), pick_ingress(z), z->in, len);
		}
		report(z, now_s() - t0);
		if (z->failures)
			test_failf(t, __FILE__, __LINE__,
				   "%u packet failures (%u described, %u saved)", z->failures,
				   z->failures < FZ_REPORTS ? z->failures : FZ_REPORTS, z->saved);
	}
	if (test_sub(t, "invariants")) {
		entries = walk_flows(z, 4);
		entries += walk_flows(z, 6);
		test_note(t, "connection tables: %u entries", entries);
		check_counters(z, entries);
	}
out:
	fixture_put(&f);
	free(z->vals);
	free(z);
}
