// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * pktgen: a small AF_PACKET traffic generator and an XDP packet counter, in one
 * process so both see the same measurement window.
 *
 *   pktgen --tx-netns NS --tx-dev IF --dmac MAC --dst IP:PORT[@WEIGHT][,...]
 *          [--src IP] [--flows N] [--flags syn|ack] [--threads T] [--burst B]
 *          [--warmup S] [--duration S] [--sink-netns NS --sink-dev IF] [--open]
 *
 * Senders: T threads (thread i pinned to CPU i mod ncpus), each with its own
 * AF_PACKET socket on IF (PACKET_QDISC_BYPASS, sendmmsg of B frames), send TCP
 * frames (Ethernet + IPv4 + TCP, 54 bytes, correct checksums: conntrack checks
 * them) with the given flags from N flows: flow i has source address SRC + i/64000
 * and source port 1024 + i%64000 (thread t sends flows t, t+T, ... and wraps at N),
 * and goes to one of the --dst endpoints, chosen by a hash of i against the
 * weights (several endpoints: plain forwarding with the split done by the sender).
 * Every packet of an --flags syn run is a new 5-tuple until the N flows wrap.
 * With --open (an ack run, needs the sink), each sender first opens its flows with
 * a whole handshake, so that a datapath that writes an entry only for a handshake
 * it saw (and checks that the client's first ACK acknowledges the backend's
 * SYN-ACK) has every flow in its table before the run. A sender sends the SYNs of
 * OPEN_BATCH flows, one per call; the sink hands every SYN it receives to a
 * responder thread (a BPF ring buffer), which answers it out of the sink device
 * with the SYN-ACK its backend would send, its sequence number the one the
 * client's ACK of flow i acknowledges - 1; once the batch's SYN-ACKs are out the
 * sender sends the batch's first ACKs. The warmup starts when all senders are done.
 *
 * Sink: an XDP program (raw instructions, no object file) attached with a bpf_link
 * to IF in the sink namespace counts, per destination address (its last byte), the
 * IPv4 TCP packets from 198.18.0.0/16 (the rig's clients) and drops them; every
 * other packet passes. The link goes away with the process.
 *
 * After --warmup seconds both sides are sampled, again after --duration more, and
 * one JSON object goes to stdout: sent and delivered packets and rates over the
 * window, delivered per destination. Needs root. Traffic stays inside the given
 * namespaces.
 *
 * --check-dups swaps the counter for a check that no 5-tuple is sent twice: the sink
 * inserts each (source address, source port) into a hash map with BPF_NOEXIST and
 * counts first sightings and repeats (unique_total, repeated_total).
 * Why --burst defaults to 1: on this kernel (6.18, veth, PACKET_QDISC_BYPASS), two
 * senders with sendmmsg bursts of 64 that overflow the peer's ring made the frames
 * of one 5-tuple arrive twice (~15 % of them, measured with --check-dups); one frame
 * per call never did, and went as fast.
 *
 *   pktgen --ct-flush NS
 *
 * flushes the IPv4 conntrack table of namespace NS (ctnetlink, as `conntrack -F`),
 * so that every nftables run starts from an empty table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "bench.h"

#define MAX_DST 16
#define MAX_THREADS 16
#define MAX_BURST 256
#define FRAME_LEN 54
#define PORTS_PER_SRC 64000u
#define SINK_SLOTS 256
/* --open: flows per batch of SYNs before their ACKs. Every handshake in flight
 * holds one of shift's SYN slots (32,768 by default), and a SYN that lands on
 * another's slot leaves that flow unopened: 256 per sender left 1 % of 100k flows
 * without an entry, 32 leave about 0.1 %. */
#define OPEN_BATCH 32u
/* The responder's ring: 64 bytes a SYN, room for every batch of every sender. */
#define ANSWER_RING_BYTES (1u << 22)

struct dst {
	__u32 addr; /* network order */
	__u16 port; /* host order */
	__u32 weight;
	__u32 cum; /* cumulative weight, scaled to 10000 */
};

struct opts {
	const char *tx_netns, *tx_dev, *sink_netns, *sink_dev;
	__u8 dmac[6];
	__u32 src; /* host order */
	struct dst dst[MAX_DST];
	unsigned int n_dst;
	__u64 flows;
	__u8 flags; /* TCP flags */
	unsigned int threads, burst;
	double warmup, duration;
	bool open; /* open each flow with a whole handshake first */
};

/* --open: answers the SYNs the sink receives (see the top). */
struct answerer {
	pthread_t th;
	const struct opts *o;
	int fd; /* AF_PACKET on the sink device */
	int rb_fd; /* the sink's SYNs */
	struct ring_buffer *rb;
	_Atomic __u64 answered[MAX_THREADS]; /* SYN-ACKs sent, per sender of the flow */
	_Atomic __u64 ignored; /* SYNs of no flow of this run, or not sent */
	atomic_bool stop;
	int err;
};

struct sender {
	pthread_t th;
	unsigned int idx, cpu;
	int fd;
	const struct opts *o;
	__u8 smac[6];
	_Atomic __u64 sent;
	_Atomic __u64 failed; /* frames the socket refused (ENOBUFS, ...) */
	atomic_bool opened; /* --open: its flows are open, the run may start */
	struct answerer *ans;
	__u64 unanswered; /* --open: SYNs whose SYN-ACK did not come in time */
	int err;
};

static atomic_bool stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR && !atomic_load(&stop))
		;
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, true);
}

/* --- checksums ----------------------------------------------------------------- */

static __u32 csum_add(__u32 sum, const void *data, size_t len)
{
	const __u8 *p = data;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (__u32)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (__u32)(p[len - 1] << 8);
	return sum;
}

static __u16 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* murmur3's finalizer: spreads flow indexes over the weights. */
static __u32 mix32(__u64 x)
{
	__u32 h = (__u32)(x ^ (x >> 32));

	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* The checksums of a 54-byte frame (Ethernet, IPv4 without options, TCP without
 * options or payload): conntrack checks them. */
static void set_csums(__u8 *f)
{
	__u8 *ip = f + 14, *tcp = f + 34, pseudo[12];
	__u32 sum;

	ip[10] = ip[11] = 0;
	sum = csum_fold(csum_add(0, ip, 20));
	ip[10] = (__u8)(sum >> 8);
	ip[11] = (__u8)sum;
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = 20;
	tcp[16] = tcp[17] = 0;
	sum = csum_fold(csum_add(csum_add(0, pseudo, 12), tcp, 20));
	tcp[16] = (__u8)(sum >> 8);
	tcp[17] = (__u8)sum;
}

/* Flow i's client ISN, and the backend ISN its first ACK acknowledges (+ 1). */
static __u32 flow_isn(__u64 i)
{
	return mix32(i * 2 + 1);
}

static __u32 flow_ack(__u64 i)
{
	return mix32(i * 2 + 2);
}

/* Flow i as one frame with TCP flags `flags`, its sequence number the flow's
 * ISN + seq_add. */
static void build_frame(__u8 *f, const struct opts *o, const __u8 *smac, __u64 i, __u8 flags,
			__u32 seq_add)
{
	const struct dst *d = &o->dst[0];
	__u32 saddr = htonl(o->src + (__u32)(i / PORTS_PER_SRC));
	__u16 sport = (__u16)(1024 + i % PORTS_PER_SRC);
	__u8 *ip = f + 14, *tcp = f + 34;
	__u32 seq = flow_isn(i) + seq_add;
	unsigned int k;

	if (o->n_dst > 1) {
		__u32 slot = mix32(i) % 10000;

		for (k = 0; k < o->n_dst; k++)
			if (slot < o->dst[k].cum) {
				d = &o->dst[k];
				break;
			}
	}
	memcpy(f, o->dmac, 6);
	memcpy(f + 6, smac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	/* IPv4: 20 bytes, DF, TTL 64 */
	ip[0] = 0x45;
	ip[1] = 0;
	ip[2] = 0;
	ip[3] = 40;
	ip[4] = (__u8)(i >> 8);
	ip[5] = (__u8)i;
	ip[6] = 0x40;
	ip[7] = 0;
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, &saddr, 4);
	memcpy(ip + 16, &d->addr, 4);
	/* TCP: 20 bytes, no options, no payload */
	memset(tcp, 0, 20);
	tcp[0] = (__u8)(sport >> 8);
	tcp[1] = (__u8)sport;
	tcp[2] = (__u8)(d->port >> 8);
	tcp[3] = (__u8)d->port;
	tcp[4] = (__u8)(seq >> 24);
	tcp[5] = (__u8)(seq >> 16);
	tcp[6] = (__u8)(seq >> 8);
	tcp[7] = (__u8)seq;
	if (flags & 0x10) {
		__u32 ack = flow_ack(i);

		tcp[8] = (__u8)(ack >> 24);
		tcp[9] = (__u8)(ack >> 16);
		tcp[10] = (__u8)(ack >> 8);
		tcp[11] = (__u8)ack;
	}
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	tcp[14] = 0xfa; /* window 64240 */
	tcp[15] = 0xf0;
	set_csums(f);
}

/* One frame, a refused one sent again (bounded). 0, or an errno. */
static int send_frame(int fd, const __u8 *f)
{
	unsigned int tries;

	for (tries = 0;; tries++) {
		ssize_t n = send(fd, f, FRAME_LEN, 0);

		if (n == FRAME_LEN)
			return 0;
		if (n >= 0 || errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
			if (tries < 1000) {
				sleep_s(50e-6);
				continue;
			}
			return n >= 0 ? ENOBUFS : errno;
		}
		return errno;
	}
}

/* --open: the handshakes of this sender's flows, OPEN_BATCH at a time: the SYNs,
 * then (once the responder has answered them, or after 1 s) the first ACKs. A
 * SYN the datapath dropped gets no SYN-ACK; its flow is counted unanswered and
 * still gets its ACK. 0, or an errno. */
static int open_flows(struct sender *s, __u8 *frame)
{
	const struct opts *o = s->o;
	__u64 i, first, want, got = 0;
	unsigned int n, k;
	int err;

	for (first = s->idx; first < o->flows && !atomic_load(&stop);) {
		double give_up;

		for (n = 0, i = first; n < OPEN_BATCH && i < o->flows; n++, i += o->threads) {
			build_frame(frame, o, s->smac, i, 0x02, 0);
			err = send_frame(s->fd, frame);
			if (err)
				return err;
		}
		want = got + n;
		give_up = now_s() + 1;
		while ((got = atomic_load(&s->ans->answered[s->idx])) < want && now_s() < give_up &&
		       !atomic_load(&stop))
			sleep_s(20e-6);
		if (got < want) {
			s->unanswered += want - got;
			got = want;
		}
		for (k = 0, i = first; k < n; k++, i += o->threads) {
			build_frame(frame, o, s->smac, i, 0x10, 1);
			err = send_frame(s->fd, frame);
			if (err)
				return err;
		}
		first = i;
	}
	return 0;
}

static void *send_loop(void *arg)
{
	struct sender *s = arg;
	const struct opts *o = s->o;
	static __thread __u8 frames[MAX_BURST][FRAME_LEN];
	struct mmsghdr msgs[MAX_BURST];
	struct iovec iov[MAX_BURST];
	__u64 i = s->idx;
	cpu_set_t set;
	unsigned int k;

	CPU_ZERO(&set);
	CPU_SET(s->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	memset(msgs, 0, sizeof(msgs));
	for (k = 0; k < o->burst; k++) {
		iov[k].iov_base = frames[k];
		iov[k].iov_len = FRAME_LEN;
		msgs[k].msg_hdr.msg_iov = &iov[k];
		msgs[k].msg_hdr.msg_iovlen = 1;
	}
	if (o->open) {
		s->err = open_flows(s, frames[0]);
		if (s->err)
			return NULL;
	}
	atomic_store(&s->opened, true);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int n;

		for (k = 0; k < o->burst; k++) {
			build_frame(frames[k], o, s->smac, i, o->flags, 0);
			i += o->threads;
			if (i >= o->flows)
				i = s->idx;
		}
		n = sendmmsg(s->fd, msgs, o->burst, 0);
		if (n < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
				atomic_fetch_add_explicit(&s->failed, o->burst,
							  memory_order_relaxed);
				continue;
			}
			s->err = errno;
			break;
		}
		atomic_fetch_add_explicit(&s->sent, (__u64)n, memory_order_relaxed);
		if ((unsigned int)n < o->burst)
			atomic_fetch_add_explicit(&s->failed, o->burst - (unsigned int)n,
						  memory_order_relaxed);
	}
	return NULL;
}

/* --- the sink ---------------------------------------------------------------- */

/*
 * The counting sink: per destination (last byte), IPv4 TCP from 198.18.0.0/16.
 * With dup_fd >= 0 instead: each (saddr, sport) is inserted into a hash map with
 * BPF_NOEXIST, and slot 1 counts first sightings, slot 2 repeats (--check-dups).
 */
static int sink_load(int map_fd, int dup_fd)
{
	/* Jump offsets count instructions; "pass" is the last two. */
	const struct bpf_insn insns[] = {
		/* 0 */ LDX(BPF_W, BPF_REG_2, BPF_REG_1, 0), /* data */
		/* 1 */ LDX(BPF_W, BPF_REG_3, BPF_REG_1, 4), /* data_end */
		/* 2 */ MOV64_REG(BPF_REG_4, BPF_REG_2),
		/* 3 */ ADD64_IMM(BPF_REG_4, 34), /* Ethernet + IPv4 header */
		/* 4 */ JGT_REG(BPF_REG_4, BPF_REG_3, 21), /* -> 26 pass */
		/* 5 */ LDX(BPF_H, BPF_REG_5, BPF_REG_2, 12),
		/* 6 */ JNE_IMM(BPF_REG_5, 0x0008, 19), /* not IPv4 (0x0800 read LE) */
		/* 7 */ LDX(BPF_B, BPF_REG_5, BPF_REG_2, 23),
		/* 8 */ JNE_IMM(BPF_REG_5, IPPROTO_TCP, 17),
		/* 9 */ LDX(BPF_B, BPF_REG_5, BPF_REG_2, 26),
		/* 10 */ JNE_IMM(BPF_REG_5, 198, 15),
		/* 11 */ LDX(BPF_B, BPF_REG_5, BPF_REG_2, 27),
		/* 12 */ JNE_IMM(BPF_REG_5, 18, 13),
		/* 13 */ LDX(BPF_B, BPF_REG_5, BPF_REG_2, 33), /* last byte of daddr */
		/* 14 */ STX(BPF_W, BPF_REG_10, BPF_REG_5, -4),
		/* 15 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
		/* 16 */ ADD64_IMM(BPF_REG_2, -4),
		/* 17 */ LD_MAP_FD(BPF_REG_1, map_fd),
		/* 19 */ CALL(BPF_FUNC_map_lookup_elem),
		/* 20 */ JEQ_IMM(BPF_REG_0, 0, 3), /* -> 24 drop */
		/* 21 */ LDX(BPF_DW, BPF_REG_1, BPF_REG_0, 0),
		/* 22 */ ADD64_IMM(BPF_REG_1, 1),
		/* 23 */ STX(BPF_DW, BPF_REG_0, BPF_REG_1, 0),
		/* 24 */ MOV64_IMM(BPF_REG_0, XDP_DROP),
		/* 25 */ EXIT(),
		/* 26 */ MOV64_IMM(BPF_REG_0, XDP_PASS),
		/* 27 */ EXIT(),
	};
	const struct bpf_insn dup_insns[] = {
		/* 0 */ LDX(BPF_W, BPF_REG_2, BPF_REG_1, 0),
		/* 1 */ LDX(BPF_W, BPF_REG_3, BPF_REG_1, 4),
		/* 2 */ MOV64_REG(BPF_REG_4, BPF_REG_2),
		/* 3 */ ADD64_IMM(BPF_REG_4, 38),
		/* 4 */ JGT_REG(BPF_REG_4, BPF_REG_3, 37), /* -> 42 pass */
		/* 5 */ LDX(BPF_H, BPF_REG_5, BPF_REG_2, 12),
		/* 6 */ JNE_IMM(BPF_REG_5, 0x0008, 35),
		/* 7 */ LDX(BPF_B, BPF_REG_5, BPF_REG_2, 23),
		/* 8 */ JNE_IMM(BPF_REG_5, IPPROTO_TCP, 33),
		/* 9 */ LDX(BPF_B, BPF_REG_5, BPF_REG_2, 26),
		/* 10 */ JNE_IMM(BPF_REG_5, 198, 31),
		/* 11 */ LDX(BPF_B, BPF_REG_5, BPF_REG_2, 27),
		/* 12 */ JNE_IMM(BPF_REG_5, 18, 29),
		/* 13 */ LDX(BPF_W, BPF_REG_7, BPF_REG_2, 26),
		/* 14 */ LDX(BPF_H, BPF_REG_8, BPF_REG_2, 34),
		/* 15 */ STX(BPF_W, BPF_REG_10, BPF_REG_7, -8),
		/* 16 */ STX(BPF_W, BPF_REG_10, BPF_REG_8, -4),
		/* 17 */ MOV64_IMM(BPF_REG_1, 0),
		/* 18 */ STX(BPF_DW, BPF_REG_10, BPF_REG_1, -16),
		/* 19 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
		/* 20 */ ADD64_IMM(BPF_REG_2, -8),
		/* 21 */ MOV64_REG(BPF_REG_3, BPF_REG_10),
		/* 22 */ ADD64_IMM(BPF_REG_3, -16),
		/* 23 */ MOV64_IMM(BPF_REG_4, 1),
		/* 24 */ LD_MAP_FD(BPF_REG_1, dup_fd),
		/* 26 */ CALL(BPF_FUNC_map_update_elem),
		/* 27 */ MOV64_IMM(BPF_REG_1, 1),
		/* 28 */ JEQ_IMM(BPF_REG_0, 0, 1), /* new: key 1 */
		/* 29 */ MOV64_IMM(BPF_REG_1, 2), /* dup: key 2 */
		/* 30 */ STX(BPF_W, BPF_REG_10, BPF_REG_1, -20),
		/* 31 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
		/* 32 */ ADD64_IMM(BPF_REG_2, -20),
		/* 33 */ LD_MAP_FD(BPF_REG_1, map_fd),
		/* 35 */ CALL(BPF_FUNC_map_lookup_elem),
		/* 36 */ JEQ_IMM(BPF_REG_0, 0, 3),
		/* 37 */ LDX(BPF_DW, BPF_REG_1, BPF_REG_0, 0),
		/* 38 */ ADD64_IMM(BPF_REG_1, 1),
		/* 39 */ STX(BPF_DW, BPF_REG_0, BPF_REG_1, 0),
		/* 40 */ MOV64_IMM(BPF_REG_0, XDP_DROP),
		/* 41 */ EXIT(),
		/* 42 */ MOV64_IMM(BPF_REG_0, XDP_PASS),
		/* 43 */ EXIT(),
	};
	char log[16384] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, po, .log_buf = log, .log_size = sizeof(log),
		    .log_level = 1);
	int fd;

	if (dup_fd >= 0)
		fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "pktgen_dups", "GPL", dup_insns,
				   sizeof(dup_insns) / sizeof(dup_insns[0]), &po);
	else
		fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "pktgen_sink", "GPL", insns,
				   sizeof(insns) / sizeof(insns[0]), &po);
	if (fd < 0)
		fprintf(stderr, "pktgen: loading the sink: %s\n%s\n", strerror(-fd), log);
	return fd;
}

/* Bytes [off, off + size) of the frame (r6) to the stack at -56 + off. */
#define FRAME_TO_STACK(off, size) \
	LDX(size, BPF_REG_5, BPF_REG_6, off), STX(size, BPF_REG_10, BPF_REG_5, -56 + (off))

/*
 * --open's sink: the counting sink, and before it counts a SYN (flags exactly SYN)
 * it copies the whole 54-byte frame into the ring buffer rb_fd for the responder
 * (by way of the stack: helpers may not read the packet).
 */
static int answer_sink_load(int map_fd, int rb_fd)
{
	/* r6 keeps the frame across the helper call. */
	const struct bpf_insn insns[] = {
		/* 0 */ LDX(BPF_W, BPF_REG_6, BPF_REG_1, 0), /* data */
		/* 1 */ LDX(BPF_W, BPF_REG_3, BPF_REG_1, 4), /* data_end */
		/* 2 */ MOV64_REG(BPF_REG_4, BPF_REG_6),
		/* 3 */ ADD64_IMM(BPF_REG_4, FRAME_LEN),
		/* 4 */ JGT_REG(BPF_REG_4, BPF_REG_3, 46), /* -> 51 pass */
		/* 5 */ LDX(BPF_H, BPF_REG_5, BPF_REG_6, 12),
		/* 6 */ JNE_IMM(BPF_REG_5, 0x0008, 44),
		/* 7 */ LDX(BPF_B, BPF_REG_5, BPF_REG_6, 23),
		/* 8 */ JNE_IMM(BPF_REG_5, IPPROTO_TCP, 42),
		/* 9 */ LDX(BPF_B, BPF_REG_5, BPF_REG_6, 26),
		/* 10 */ JNE_IMM(BPF_REG_5, 198, 40),
		/* 11 */ LDX(BPF_B, BPF_REG_5, BPF_REG_6, 27),
		/* 12 */ JNE_IMM(BPF_REG_5, 18, 38),
		/* 13 */ LDX(BPF_B, BPF_REG_5, BPF_REG_6, 47), /* TCP flags */
		/* 14 */ JNE_IMM(BPF_REG_5, 0x02, 23), /* -> 38 count */
		/* 15 */ FRAME_TO_STACK(0, BPF_DW),
		/* 17 */ FRAME_TO_STACK(8, BPF_DW),
		/* 19 */ FRAME_TO_STACK(16, BPF_DW),
		/* 21 */ FRAME_TO_STACK(24, BPF_DW),
		/* 23 */ FRAME_TO_STACK(32, BPF_DW),
		/* 25 */ FRAME_TO_STACK(40, BPF_DW),
		/* 27 */ FRAME_TO_STACK(48, BPF_W),
		/* 29 */ FRAME_TO_STACK(52, BPF_H),
		/* 31 */ LD_MAP_FD(BPF_REG_1, rb_fd),
		/* 33 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
		/* 34 */ ADD64_IMM(BPF_REG_2, -56),
		/* 35 */ MOV64_IMM(BPF_REG_3, FRAME_LEN),
		/* 36 */ MOV64_IMM(BPF_REG_4, 0),
		/* 37 */ CALL(BPF_FUNC_ringbuf_output), /* a full ring: unanswered */
		/* 38 */ LDX(BPF_B, BPF_REG_5, BPF_REG_6, 33), /* last byte of daddr */
		/* 39 */ STX(BPF_W, BPF_REG_10, BPF_REG_5, -64),
		/* 40 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
		/* 41 */ ADD64_IMM(BPF_REG_2, -64),
		/* 42 */ LD_MAP_FD(BPF_REG_1, map_fd),
		/* 44 */ CALL(BPF_FUNC_map_lookup_elem),
		/* 45 */ JEQ_IMM(BPF_REG_0, 0, 3), /* -> 49 drop */
		/* 46 */ LDX(BPF_DW, BPF_REG_1, BPF_REG_0, 0),
		/* 47 */ ADD64_IMM(BPF_REG_1, 1),
		/* 48 */ STX(BPF_DW, BPF_REG_0, BPF_REG_1, 0),
		/* 49 */ MOV64_IMM(BPF_REG_0, XDP_DROP),
		/* 50 */ EXIT(),
		/* 51 */ MOV64_IMM(BPF_REG_0, XDP_PASS),
		/* 52 */ EXIT(),
	};
	char log[16384] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, po, .log_buf = log, .log_size = sizeof(log),
		    .log_level = 1);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "pktgen_answer", "GPL", insns,
			       sizeof(insns) / sizeof(insns[0]), &po);

	if (fd < 0)
		fprintf(stderr, "pktgen: loading the answering sink: %s\n%s\n", strerror(-fd), log);
	return fd;
}

/* --- the responder (--open) -------------------------------------------------- */

/* A SYN of flow i, turned into its backend's SYN-ACK: addresses, ports and MACs
 * swapped, the backend ISN the one flow i's first ACK acknowledges. */
static int on_syn(void *ctx, void *data, size_t len)
{
	struct answerer *a = ctx;
	const struct opts *o = a->o;
	__u8 f[FRAME_LEN], tmp[6], *ip = f + 14, *tcp = f + 34;
	__u32 saddr, seq, ack;
	__u16 sport;
	__u64 i;

	if (len < FRAME_LEN)
		goto ignore;
	memcpy(f, data, FRAME_LEN);
	memcpy(&saddr, ip + 12, 4);
	saddr = ntohl(saddr);
	sport = (__u16)(tcp[0] << 8 | tcp[1]);
	if (saddr < o->src || sport < 1024 || sport >= 1024 + PORTS_PER_SRC)
		goto ignore;
	i = (__u64)(saddr - o->src) * PORTS_PER_SRC + (sport - 1024);
	if (i >= o->flows)
		goto ignore;
	memcpy(tmp, f, 6);
	memcpy(f, f + 6, 6);
	memcpy(f + 6, tmp, 6);
	memcpy(tmp, ip + 12, 4);
	memcpy(ip + 12, ip + 16, 4);
	memcpy(ip + 16, tmp, 4);
	memcpy(tmp, tcp, 2);
	memcpy(tcp, tcp + 2, 2);
	memcpy(tcp + 2, tmp, 2);
	ip[8] = 64;
	ack = ((__u32)tcp[4] << 24 | (__u32)tcp[5] << 16 | (__u32)tcp[6] << 8 | tcp[7]) + 1;
	seq = flow_ack(i) - 1;
	tcp[4] = (__u8)(seq >> 24);
	tcp[5] = (__u8)(seq >> 16);
	tcp[6] = (__u8)(seq >> 8);
	tcp[7] = (__u8)seq;
	tcp[8] = (__u8)(ack >> 24);
	tcp[9] = (__u8)(ack >> 16);
	tcp[10] = (__u8)(ack >> 8);
	tcp[11] = (__u8)ack;
	tcp[13] = 0x12;
	set_csums(f);
	a->err = send_frame(a->fd, f);
	if (a->err)
		return -a->err;
	atomic_fetch_add(&a->answered[i % o->threads], 1);
	return 0;
ignore:
	atomic_fetch_add(&a->ignored, 1);
	return 0;
}

static void *answer_loop(void *arg)
{
	struct answerer *a = arg;

	while (!atomic_load(&a->stop) && !a->err) {
		int n = ring_buffer__poll(a->rb, 20);

		if (n < 0 && n != -EINTR) {
			a->err = -n;
			break;
		}
	}
	return NULL;
}

/* The SYN ring, its reader and the socket the SYN-ACKs leave by: the sink device,
 * towards the edge, as the backends' would. 0, or -1 (said). */
static int answerer_open(struct answerer *a, const char *dev, int ifindex)
{
	LIBBPF_OPTS(bpf_map_create_opts, ro);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = ifindex };

	a->rb_fd =
		bpf_map_create(BPF_MAP_TYPE_RINGBUF, "pktgen_syns", 0, 0, ANSWER_RING_BYTES, &ro);
	if (a->rb_fd < 0) {
		fprintf(stderr, "pktgen: SYN ring: %s\n", strerror(-a->rb_fd));
		return -1;
	}
	a->rb = ring_buffer__new(a->rb_fd, on_syn, a, NULL);
	if (!a->rb) {
		fprintf(stderr, "pktgen: SYN ring reader: %s\n", strerror(errno));
		return -1;
	}
	a->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); /* protocol 0: no receiving */
	if (a->fd < 0 || bind(a->fd, (struct sockaddr *)&sll, sizeof(sll))) {
		fprintf(stderr, "pktgen: AF_PACKET socket on %s: %s\n", dev, strerror(errno));
		return -1;
	}
	return 0;
}

static void answerer_close(struct answerer *a)
{
	ring_buffer__free(a->rb);
	if (a->fd >= 0)
		close(a->fd);
	if (a->rb_fd >= 0)
		close(a->rb_fd);
}

static int sink_read(int map_fd, int ncpu, __u64 out[SINK_SLOTS])
{
	__u64 *v = calloc((size_t)ncpu, sizeof(*v));
	__u32 k;
	int c;

	if (!v)
		return -ENOMEM;
	for (k = 0; k < SINK_SLOTS; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(map_fd, &k, v)) {
			free(v);
			return -errno;
		}
		for (c = 0; c < ncpu; c++)
			out[k] += v[c];
	}
	free(v);
	return 0;
}

/* --- set-up ---------------------------------------------------------------- */

static int parse_mac(const char *s, __u8 *mac)
{
	unsigned int b[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (i = 0; i < 6; i++)
		mac[i] = (__u8)b[i];
	return 0;
}

static int parse_dsts(char *s, struct opts *o)
{
	__u32 total = 0, acc = 0;
	char *tok, *save = NULL;
	unsigned int k;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct dst *d = &o->dst[o->n_dst];
		char *colon = strrchr(tok, ':'), *at;
		struct in_addr a;

		if (o->n_dst == MAX_DST || !colon)
			return -1;
		*colon = 0;
		at = strchr(colon + 1, '@');
		d->weight = 1;
		if (at) {
			*at = 0;
			d->weight = (__u32)strtoul(at + 1, NULL, 10);
		}
		if (inet_pton(AF_INET, tok, &a) != 1)
			return -1;
		d->addr = a.s_addr;
		d->port = (__u16)strtoul(colon + 1, NULL, 10);
		total += d->weight;
		o->n_dst++;
	}
	if (!o->n_dst || !total)
		return -1;
	for (k = 0; k < o->n_dst; k++) {
		acc += o->dst[k].weight;
		o->dst[k].cum = (__u32)((__u64)acc * 10000 / total);
	}
	return 0;
}

static int dev_mac(int fd, const char *dev, __u8 *mac)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		return -errno;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

static int open_tx(struct sender *s, const char *dev)
{
	struct sockaddr_ll sll;
	int one = 1, sndbuf = 4 << 20;

	s->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); /* protocol 0: no receiving */
	if (s->fd < 0)
		return -errno;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = (int)if_nametoindex(dev);
	if (!sll.sll_ifindex)
		return -ENODEV;
	if (bind(s->fd, (struct sockaddr *)&sll, sizeof(sll)))
		return -errno;
	setsockopt(s->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	return dev_mac(s->fd, dev, s->smac);
}

/* IPCTNL_MSG_CT_DELETE without attributes: every IPv4 entry of the namespace. */
static int ct_flush(const char *netns)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfh;
	unsigned int seq = (unsigned int)time(NULL), portid;
	int rc = -1;
	ssize_t n;

	if (bench_enter_netns("pktgen", netns))
		return -1;
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID)) {
		fprintf(stderr, "pktgen: netlink: %s\n", strerror(errno));
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_INET;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		fprintf(stderr, "pktgen: conntrack flush: %s\n", strerror(errno));
		goto out;
	}
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0 || mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) < 0) {
		/* ENOENT: nothing to flush (conntrack never ran in this namespace) */
		if (errno != ENOENT) {
			fprintf(stderr, "pktgen: conntrack flush: %s\n", strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	if (nl)
		mnl_socket_close(nl);
	return rc;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pktgen --tx-netns NS --tx-dev IF --dmac MAC --dst IP:PORT[@W][,...]\n"
		"              [--src IP] [--flows N] [--flags syn|ack] [--threads T] [--burst B]\n"
		"              [--warmup S] [--duration S] [--sink-netns NS --sink-dev IF]\n"
		"              [--check-dups] [--open]\n"
		"       pktgen --ct-flush NS\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "tx-netns", required_argument, NULL, 'n' },
		{ "tx-dev", required_argument, NULL, 'd' },
		{ "dmac", required_argument, NULL, 'm' },
		{ "dst", required_argument, NULL, 'D' },
		{ "src", required_argument, NULL, 's' },
		{ "flows", required_argument, NULL, 'f' },
		{ "flags", required_argument, NULL, 'F' },
		{ "threads", required_argument, NULL, 't' },
		{ "burst", required_argument, NULL, 'b' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'T' },
		{ "sink-netns", required_argument, NULL, 'N' },
		{ "sink-dev", required_argument, NULL, 'S' },
		{ "ct-flush", required_argument, NULL, 'C' },
		{ "check-dups", no_argument, NULL, 'U' },
		{ "open", no_argument, NULL, 'O' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.flows = 10000, .flags = 0x10, .threads = 1, .burst = 1, .warmup = 1, .duration = 3
	};
	struct sender *snd = NULL;
	__u64 sink0[SINK_SLOTS], sinkw[SINK_SLOTS], sink1[SINK_SLOTS], sent0 = 0, sent1 = 0,
								       fail0 = 0, fail1 = 0;
	int opt, map_fd = -1, dup_fd = -1, prog_fd = -1, link_fd = -1, ncpu, rc = 1,
		 sink_ifindex = 0;
	struct answerer ans = { .o = &o, .fd = -1, .rb_fd = -1 };
	bool answering = false;
	__u64 unanswered = 0;
	bool check_dups = false;
	double t0 = 0, t1 = 0;
	unsigned int k, started = 0;
	bool have_dst = false, have_mac = false;
	struct in_addr src = { .s_addr = htonl(0xc612010a) }; /* 198.18.1.10 */

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'n':
			o.tx_netns = optarg;
			break;
		case 'd':
			o.tx_dev = optarg;
			break;
		case 'm':
			have_mac = !parse_mac(optarg, o.dmac);
			break;
		case 'D':
			have_dst = !parse_dsts(optarg, &o);
			break;
		case 's':
			if (inet_pton(AF_INET, optarg, &src) != 1) {
				usage();
				return 2;
			}
			break;
		case 'f':
			o.flows = strtoull(optarg, NULL, 0);
			break;
		case 'F':
			o.flags = !strcmp(optarg, "syn") ? 0x02 : 0x10;
			break;
		case 't':
			o.threads = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			o.burst = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			o.warmup = strtod(optarg, NULL);
			break;
		case 'T':
			o.duration = strtod(optarg, NULL);
			break;
		case 'N':
			o.sink_netns = optarg;
			break;
		case 'S':
			o.sink_dev = optarg;
			break;
		case 'C':
			return ct_flush(optarg) ? 1 : 0;
		case 'U':
			check_dups = true;
			break;
		case 'O':
			o.open = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	o.src = ntohl(src.s_addr);
	if (!o.tx_dev || !have_mac || !have_dst || o.threads < 1 || o.threads > MAX_THREADS ||
	    o.burst < 1 || o.burst > MAX_BURST || o.flows < o.threads || o.duration <= 0 ||
	    o.duration > 600 || o.warmup < 0 || o.warmup > 60 || !!o.sink_netns != !!o.sink_dev ||
	    o.flows / PORTS_PER_SRC > 200) {
		usage();
		return 2;
	}
	if (o.open && (o.flags != 0x10 || !o.sink_dev)) {
		fprintf(stderr, "pktgen: --open needs --flags ack and the sink (--sink-netns, "
				"--sink-dev), which answers the SYNs\n");
		return 2;
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu < 1)
		return 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	if (o.sink_dev) {
		LIBBPF_OPTS(bpf_map_create_opts, mo);

		if (bench_enter_netns("pktgen", o.sink_netns))
			goto out;
		sink_ifindex = (int)if_nametoindex(o.sink_dev);
		if (!sink_ifindex) {
			fprintf(stderr, "pktgen: no device %s in %s\n", o.sink_dev, o.sink_netns);
			goto out;
		}
		map_fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "pktgen_sink", 4, 8, SINK_SLOTS,
					&mo);
		if (map_fd < 0) {
			fprintf(stderr, "pktgen: sink map: %s\n", strerror(-map_fd));
			goto out;
		}
		if (check_dups) {
			LIBBPF_OPTS(bpf_map_create_opts, ho, .map_flags = BPF_F_NO_PREALLOC);

			dup_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "pktgen_dups", 8, 8, 4u << 20,
						&ho);
			if (dup_fd < 0) {
				fprintf(stderr, "pktgen: dup map: %s\n", strerror(-dup_fd));
				goto out;
			}
		}
		if (o.open) {
			if (answerer_open(&ans, o.sink_dev, sink_ifindex))
				goto out;
			prog_fd = answer_sink_load(map_fd, ans.rb_fd);
		} else {
			prog_fd = sink_load(map_fd, dup_fd);
		}
		if (prog_fd < 0)
			goto out;
		link_fd = bpf_link_create(prog_fd, sink_ifindex, BPF_XDP, NULL);
		if (link_fd < 0) {
			fprintf(stderr, "pktgen: attaching the sink to %s: %s\n", o.sink_dev,
				strerror(-link_fd));
			goto out;
		}
	}
	if (o.tx_netns && bench_enter_netns("pktgen", o.tx_netns))
		goto out;
	snd = calloc(o.threads, sizeof(*snd));
	if (!snd)
		goto out;
	for (k = 0; k < o.threads; k++) {
		int err;

		snd[k].idx = k;
		snd[k].cpu = k % (unsigned int)ncpu;
		snd[k].o = &o;
		snd[k].fd = -1;
		snd[k].ans = &ans;
		err = open_tx(&snd[k], o.tx_dev);
		if (err) {
			fprintf(stderr, "pktgen: AF_PACKET socket on %s: %s\n", o.tx_dev,
				strerror(-err));
			goto out;
		}
	}
	if (o.open) {
		if (pthread_create(&ans.th, NULL, answer_loop, &ans)) {
			fprintf(stderr, "pktgen: pthread_create failed\n");
			goto out;
		}
		answering = true;
	}
	for (k = 0; k < o.threads; k++, started++)
		if (pthread_create(&snd[k].th, NULL, send_loop, &snd[k])) {
			fprintf(stderr, "pktgen: pthread_create failed\n");
			atomic_store(&stop, true);
			goto join;
		}

	/* --open: the warmup starts when every flow is open (at most 60 s). */
	for (k = 0; k < o.threads; k++) {
		double give_up = now_s() + 60;

		while (!atomic_load(&snd[k].opened) && !snd[k].err && now_s() < give_up)
			sleep_s(0.01);
		if (!atomic_load(&snd[k].opened)) {
			fprintf(stderr, "pktgen: sender %u could not open its flows%s%s\n", k,
				snd[k].err ? ": " : " within 60 s",
				snd[k].err ? strerror(snd[k].err) : "");
			goto join;
		}
	}
	for (k = 0; k < o.threads; k++)
		unanswered += snd[k].unanswered;
	if (ans.err) {
		fprintf(stderr, "pktgen: answering SYNs: %s\n", strerror(ans.err));
		goto join;
	}
	sleep_s(o.warmup);
	if (map_fd >= 0 && sink_read(map_fd, ncpu, sinkw))
		goto join;
	t0 = now_s();
	for (k = 0; k < o.threads; k++) {
		sent0 += atomic_load(&snd[k].sent);
		fail0 += atomic_load(&snd[k].failed);
	}
	sleep_s(o.duration);
	for (k = 0; k < o.threads; k++) {
		sent1 += atomic_load(&snd[k].sent);
		fail1 += atomic_load(&snd[k].failed);
	}
	t1 = now_s();
	if (map_fd >= 0 && sink_read(map_fd, ncpu, sink1))
		goto join;
	atomic_store(&stop, true);
	rc = 0;
join:
	atomic_store(&stop, true);
	for (k = 0; k < started; k++) {
		pthread_join(snd[k].th, NULL);
		if (snd[k].err) {
			fprintf(stderr, "pktgen: sender %u: %s\n", k, strerror(snd[k].err));
			rc = 1;
		}
	}
	if (answering) {
		atomic_store(&ans.stop, true);
		pthread_join(ans.th, NULL);
	}
	if (!rc) {
		double w = t1 - t0;
		__u64 delivered = 0, all_sent = 0, all_delivered = 0;
		bool first = true;

		for (k = 0; k < o.threads; k++)
			all_sent += atomic_load(&snd[k].sent);
		if (map_fd >= 0 && !sink_read(map_fd, ncpu, sink0))
			for (k = 0; k < SINK_SLOTS; k++)
				all_delivered += sink0[k];

		if (map_fd >= 0)
			for (k = 0; k < SINK_SLOTS; k++)
				delivered += sink1[k] - sinkw[k];
		printf("{\"flags\": \"%s\", \"flows\": %llu, \"threads\": %u, \"window_s\": %.3f, "
		       "\"sent\": %llu, \"refused\": %llu, \"sent_pps\": %.0f, \"sent_total\": %llu",
		       o.flags == 0x02 ? "syn" : "ack", (unsigned long long)o.flows, o.threads, w,
		       (unsigned long long)(sent1 - sent0), (unsigned long long)(fail1 - fail0),
		       (double)(sent1 - sent0) / w, (unsigned long long)all_sent);
		if (map_fd >= 0) {
			printf(", \"delivered_total\": %llu", (unsigned long long)all_delivered);
			printf(", \"delivered\": %llu, \"delivered_pps\": %.0f, \"by_dst_last_byte\": {",
			       (unsigned long long)delivered, (double)delivered / w);
			for (k = 0; k < SINK_SLOTS; k++)
				if (sink1[k] != sinkw[k]) {
					printf("%s\"%u\": %llu", first ? "" : ", ", k,
					       (unsigned long long)(sink1[k] - sinkw[k]));
					first = false;
				}
			printf("}");
			if (check_dups)
				printf(", \"unique_total\": %llu, \"repeated_total\": %llu",
				       (unsigned long long)sink0[1], (unsigned long long)sink0[2]);
			if (o.open) {
				__u64 answered = 0;

				for (k = 0; k < o.threads; k++)
					answered += atomic_load(&ans.answered[k]);
				printf(", \"open_synacks\": %llu, \"open_unanswered\": %llu, "
				       "\"open_ignored\": %llu",
				       (unsigned long long)answered, (unsigned long long)unanswered,
				       (unsigned long long)atomic_load(&ans.ignored));
			}
		}
		printf("}\n");
	}
out:
	if (snd)
		for (k = 0; k < o.threads; k++)
			if (snd[k].fd >= 0)
				close(snd[k].fd);
	free(snd);
	if (link_fd >= 0)
		close(link_fd);
	if (prog_fd >= 0)
		close(prog_fd);
	if (map_fd >= 0)
		close(map_fd);
	if (dup_fd >= 0)
		close(dup_fd);
	answerer_close(&ans);
	return rc;
}
