/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Map keys and values shared by the BPF datapath and userspace.
 *
 * These layouts are an ABI: shiftd adopts maps pinned by an older shiftd, so a
 * field may only be added in reserved space, never moved. SHIFT_ABI_VERSION is
 * stored in the pinned config map; a mismatch makes shiftd refuse to adopt
 * instead of misreading the connection table.
 */
#ifndef SHIFT_MAPS_H
#define SHIFT_MAPS_H

#include <linux/types.h>

#define SHIFT_ABI_VERSION 6

/* Green weight in basis points; 10000 = 100 %. */
#define SHIFT_WEIGHT_MAX 10000
/* Bit in the weight word: a rollback latched the service to blue. */
#define SHIFT_WEIGHT_LATCHED (1u << 31)
/* With LATCHED: the latch is a rollback drill's, which shiftd lifts when the
 * drill's hold ends. The datapath ignores it (a latch is a latch); any other
 * writer of the word drops it, so a real rollback is never undone by a drill. */
#define SHIFT_WEIGHT_DRILL (1u << 30)
#define SHIFT_WEIGHT_MASK 0xffffu

/*
 * The context of shift_weight_cas (bpf/weight_cas.bpf.c), a syscall program
 * run by BPF_PROG_TEST_RUN: the word of service_id becomes word only while it
 * is expect. The program writes back the word it found (seen). Not a map
 * layout: it lives only for one call.
 */
struct shift_weight_cas {
	__u32 service_id;
	__u32 expect;
	__u32 word;
	__u32 seen;
};

/*
 * Consistent-hash ring per pool. Prime, and at least 100 x the largest pool so
 * Maglev's disruption on a backend removal stays well under 1 % of the others.
 */
#define SHIFT_RING_SIZE 16381
#define SHIFT_MAX_POOL_BACKENDS 128
#define SHIFT_MAX_SERVICES 256
#define SHIFT_MAX_BACKENDS (SHIFT_MAX_SERVICES * 2 * 64)
/* Backend id for "none" (an empty pool, no port). */
#define SHIFT_NO_BACKEND 0xffffffffu

/*
 * A ring's slots are packed 32 to a map value: 2-byte backend ids in one
 * 64-byte cache line. An array map rounds every value up to 8 bytes, so one
 * slot per value made a ring 128 KiB, and a SYN's ring read at a random slot
 * missed the cache; packed, a ring is 32 KiB (docs/BENCHMARKS.md section 7g).
 * The map is mmapable: shiftd stores each 2-byte slot with one atomic write,
 * so a reader never sees half of an old id and half of a new one.
 */
#define SHIFT_RING_CHUNK_SLOTS 32
#define SHIFT_RING_CHUNKS ((SHIFT_RING_SIZE + SHIFT_RING_CHUNK_SLOTS - 1) / SHIFT_RING_CHUNK_SLOTS)
#define SHIFT_RING_ENTRIES (SHIFT_MAX_SERVICES * 2 * SHIFT_RING_CHUNKS)
/* A ring slot's "pool is empty" (SHIFT_NO_BACKEND in 2 bytes). */
#define SHIFT_RING_NONE 0xffffu
/* The map value holding a ring slot, and the backend id a slot's value names
 * (v read once: an argument, not a map load): one definition for the datapath
 * and for shiftd. */
#define SHIFT_RING_CHUNK_OF(service_id, color, slot) \
	(((service_id)*2 + (color)) * SHIFT_RING_CHUNKS + (slot) / SHIFT_RING_CHUNK_SLOTS)
#define SHIFT_RING_BACKEND(v) ((v) == SHIFT_RING_NONE ? SHIFT_NO_BACKEND : (__u32)(v))

struct shift_ring_chunk {
	__u16 be[SHIFT_RING_CHUNK_SLOTS];
};

_Static_assert(sizeof(struct shift_ring_chunk) == 64, "a ring chunk is one cache line");
_Static_assert(SHIFT_MAX_BACKENDS < SHIFT_RING_NONE, "a backend id fits a ring slot");

#define SHIFT_DEFAULT_FLOWS (1u << 20)
#define SHIFT_DEFAULT_FLOWS6 (1u << 18)
#define SHIFT_MAX_OVERRIDES 4096

enum shift_color {
	SHIFT_BLUE = 0,
	SHIFT_GREEN = 1,
	SHIFT_COLORS = 2,
};

/* shift_addr_key.family; the Linux AF_ values so userspace needs no table. */
#define SHIFT_AF_INET 2
#define SHIFT_AF_INET6 10

/*
 * An address + L4 port + protocol: a VIP service (services map) or a backend
 * (backend_idx map, for the return path). Addresses and port are in network
 * byte order; an IPv4 address lives in addr[0] with addr[1..3] zero.
 */
struct shift_addr_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto;
	__u8 family;
};

/* services map value. */
struct shift_service {
	__u32 id; /* index into weights, svc_info and rings */
	__u32 flags; /* SHIFT_SVC_F_* */
};

#define SHIFT_SVC_F_OVERRIDES (1u << 0) /* consult the source-prefix tries */
#define SHIFT_SVC_F_IN_USE (1u << 1) /* svc_info slot holds a configured service */
#define SHIFT_SVC_F_HTTP (1u << 2) /* parse HTTP/1.x for response signals */
#define SHIFT_SVC_F_SNAT (1u << 3) /* source NAT to the service's shift_snat_cfg */
/*
 * Client affinity: the color comes from the client hash of the source address
 * masked to the prefix in the flags' top bytes (v4 bits 16..23, v6 24..31),
 * not from the flow hash. Packed into flags so the services map's value keeps
 * its size: maps pinned by an older shiftd are adopted as they are (no bit,
 * flow affinity).
 */
#define SHIFT_SVC_F_CLIENT_AFFINITY (1u << 15)
#define SHIFT_SVC_PREFIX4_SHIFT 16
#define SHIFT_SVC_PREFIX6_SHIFT 24
#define SHIFT_SVC_PREFIX4(flags) (((flags) >> SHIFT_SVC_PREFIX4_SHIFT) & 0xffu)
#define SHIFT_SVC_PREFIX6(flags) (((flags) >> SHIFT_SVC_PREFIX6_SHIFT) & 0xffu)
/* connect_fallback: a green backend's refusing RST is dropped, the client's
 * retransmitted SYN goes to blue (bpf/synslot.h). A high bit: other flags
 * are being added below it. */
#define SHIFT_SVC_F_FALLBACK (1u << 7)
/* analysis = auto: tell HTTP/1.x, TLS, cleartext HTTP/2 and other TCP apart per flow */
#define SHIFT_SVC_F_AUTO (1u << 4)

#define SHIFT_NAME_LEN 64

/*
 * svc_info map value (array indexed by service id): what the return path
 * needs, and the service's name so the pinned maps describe themselves:
 * shiftctl finds a service by name even while shiftd is down.
 */
struct shift_svc_info {
	__u32 vip[4];
	__u16 vport; /* network order */
	__u8 proto;
	__u8 family;
	__u32 flags; /* SHIFT_SVC_F_*; SHIFT_SVC_F_IN_USE marks a live slot */
	__u32 pool_size[SHIFT_COLORS];
	char name[SHIFT_NAME_LEN];
	__u32 reserved[4];
};

/* vips map key: the bare VIP address, to tell "malformed, to a VIP" (drop) from
 * "malformed, not ours" (pass to the kernel). */
struct shift_vip_addr {
	__u32 addr[4];
	__u32 family;
};

/* backends map value (array indexed by backend id). */
struct shift_backend {
	__u32 addr[4];
	__u16 port; /* network order */
	__u8 family;
	__u8 flags; /* SHIFT_BE_F_* */
	__u16 service_id;
	__u8 color;
	__u8 pad;
	/* Next hop kept by the agent from netlink, so the datapath skips the FIB. */
	__u32 nh_ifindex;
	__u8 nh_smac[6];
	__u8 nh_dmac[6];
	__u32 reserved[2];
};

#define SHIFT_BE_F_ACTIVE (1u << 0) /* slot in use */
#define SHIFT_BE_F_NH_VALID (1u << 1) /* nh_* are resolved */

/*
 * Connection table keys: client address, VIP, client port, VIP port, in
 * network order. No protocol field: the kernel hashes a key in rounds of
 * three 32-bit words (jhash2), and 12 bytes take one round fewer than the 16
 * a protocol byte and its padding made (an established packet: 3 to 7 ns
 * less, docs/BENCHMARKS.md 7q). TCP and UDP services may share a VIP and port
 * (HTTPS and QUIC), so a UDP flow's key holds its VIP word complemented
 * (shift_flow_key_vip0()); the two stay apart unless a TCP VIP is exactly that
 * complement of a UDP VIP on the same port, which the config check refuses.
 */
struct shift_flow_key4 {
	__u32 saddr;
	__u32 daddr; /* shift_flow_key_vip0() */
	__u16 sport;
	__u16 dport;
};

/*
 * An IPv6 key holds its VIP folded to one word (shift_flow_vip6()): 24 bytes
 * are six words, one round of mixing fewer than the 36 the whole VIP made
 * (docs/BENCHMARKS.md 7y). The client's address stays whole: clients are
 * anybody, VIPs are the config's, and the config check refuses two VIPs on a
 * port whose keys' words are equal (check_flow_keys()).
 */
struct shift_flow_key6 {
	__u32 saddr[4];
	__u32 vip; /* shift_flow_key_vip0(shift_flow_vip6(VIP)) */
	__u16 sport;
	__u16 dport;
};

/*
 * The IPv6 VIP's word: each 32-bit word (as loaded, network order) times an
 * odd constant, summed. Two VIPs that differ in one word never fold alike (an
 * odd multiplier is a bijection); others only where the config check says so.
 * Three multiplications side by side, not a round on the hash's serial chain.
 * The constants have names for bench/bench.h's raw floor program.
 */
#define SHIFT_VIP6_FOLD0 0x9e3779b1u
#define SHIFT_VIP6_FOLD1 0x85ebca77u
#define SHIFT_VIP6_FOLD2 0xc2b2ae3du
static inline __attribute__((always_inline)) __u32 shift_flow_vip6(const __u32 *a)
{
	return a[0] * SHIFT_VIP6_FOLD0 + a[1] * SHIFT_VIP6_FOLD1 + a[2] * SHIFT_VIP6_FOLD2 + a[3];
}

/*
 * The key's VIP word for a flow of proto (the IPv4 VIP, the IPv6 VIP's
 * fold), and back (its own inverse). The tables hold TCP (6) and UDP (17)
 * flows only, which bit 4 of the protocol number tells apart without a
 * branch: a branch here is a path the 6.1 verifier walks twice
 * (shift_tc_both: 783k instructions with one, 757k without).
 */
static inline __attribute__((always_inline)) __u32 shift_flow_key_vip0(__u32 vip0, __u8 proto)
{
	return vip0 ^ -(__u32)((proto >> 4) & 1);
}

/* The VIP word the keys of a service's flows hold, from its VIP (userspace:
 * the config check, the tests; the datapath builds it in flow_key_fill()). */
static inline __u32 shift_flow_key_word(const struct shift_addr_key *vip)
{
	__u32 w = vip->family == SHIFT_AF_INET6 ? shift_flow_vip6(vip->addr) : vip->addr[0];

	return shift_flow_key_vip0(w, vip->proto);
}

/*
 * Connection table value (48 bytes). An entry is written when the handshake
 * completes (the client's first ACK), never for a bare SYN: SYNs are steered
 * statelessly and remembered in shift_syn_slot. It carries the client-side
 * next hop seen on the client's packets, so a reply leaves without a FIB
 * lookup.
 */
struct shift_flow {
	__u32 backend_id;
	__u32 hash; /* the flow hash h that chose it */
	__u16 service_id;
	__u8 color;
	__u8 state; /* SHIFT_FS_* bits, return-path signals */
	__u8 app_flags; /* analysis = auto: enum shift_app | SHIFT_AF_* (was the SYN count) */
	__u8 snat_idx; /* source NAT: index into the service's snat addresses */
	__u16 snat_port; /* source NAT: the port, network order; 0 = no source NAT */
	__u64 req_ns; /* request start, for response latency; 0 = none open */
	/* Client-side next hop (SHIFT_FS_NH): where replies go, as the client's
	 * packets came in: the interface, and their MACs swapped. */
	__u32 cl_ifindex;
	__u8 cl_dmac[6]; /* the client's (or its router's) MAC */
	__u8 cl_smac[6]; /* ours, as the client addressed us */
	/* analysis = auto: TCP sequence number where the next TLS record / HTTP/2
	 * frame header starts; [0] client -> backend, [1] backend -> client. */
	__u32 next_hdr[2];
};

#define SHIFT_FS_SYNACK (1u << 0) /* backend answered the handshake */
#define SHIFT_FS_HTTP (1u << 1) /* payload looked like HTTP/1.x */
#define SHIFT_FS_ERR_SEEN (1u << 2) /* the backend's RST was counted (one per connection) */
#define SHIFT_FS_SVC_HTTP (1u << 3) /* the service parses HTTP (copied at creation) */
#define SHIFT_FS_NH (1u << 4) /* cl_* hold the client-side next hop */
/* analysis = auto (bit 7 is SHIFT_FS_SHADOW_DONE, include/shift/shadow.h) */
#define SHIFT_FS_CLI_CLOSED (1u << 5) /* the client sent FIN or RST */
#define SHIFT_FS_ANSWERED (1u << 6) /* a response was seen on this flow */

/* analysis = auto classifies a flow by its first payload: app_flags bits 0..2. */
enum shift_app {
	SHIFT_APP_OFF = 0, /* not an auto flow */
	SHIFT_APP_NEW, /* auto, no payload read yet: req_ns holds the connect latency */
	SHIFT_APP_HTTP1, /* HTTP/1.x request line */
	SHIFT_APP_TLS, /* TLS record header */
	SHIFT_APP_H2, /* cleartext HTTP/2 preface */
	/* From here on nothing more is read (bpf/signals.h, client_segment_idle()). */
	SHIFT_APP_TCP, /* anything else: the connection is the request */
	SHIFT_APP_LOST, /* a record boundary was missed: no more reading */
	SHIFT_APP_UPGRADED, /* HTTP/1.x switched protocols (101): no more reading */
};

/* shift_flow.app_flags */
#define SHIFT_AF_APP_MASK 7u /* enum shift_app */
#define SHIFT_AF_BE_SYNC (1u << 3) /* next_hdr[1] is known */
#define SHIFT_AF_HELLO (1u << 4) /* TLS: the client sent its hello */
#define SHIFT_AF_SRV_HS (1u << 5) /* TLS: the backend answered the handshake */
#define SHIFT_AF_CLI_APP (1u << 6) /* TLS: the client sent application data */
#define SHIFT_AF_SKIP_FIN (1u << 7) /* TLS 1.3: the client's next record is its Finished */

/*
 * SYN slots: a direct-mapped array indexed by the flow hash, one slot per
 * recent SYN (overwritten by the next SYN that hashes there; a miss is
 * counted). What a SYN would otherwise have stored in the connection table:
 * where it went (so its retransmits and the client's first ACK follow it even
 * if the weight moves meanwhile) and when (connect latency, SYN retransmits).
 * Shared by all CPUs, not per-CPU: the SYN and the backend's SYN-ACK arrive
 * on different interfaces, usually on different CPUs.
 */
/* The default; syn_slots in shiftd.conf sizes it (a power of two in range). */
#define SHIFT_SYN_SLOTS (1u << 15)
#define SHIFT_SYN_SLOTS_MIN (1u << 12)
#define SHIFT_SYN_SLOTS_MAX (1u << 22)
/*
 * 16 bytes, so that the default array (512 KiB) stays in a core's L2 cache: a
 * SYN reads its slot at a random place, and in an 8 MiB array of 32-byte slots
 * that read was a third of a SYN's cost (docs/BENCHMARKS.md section 7d).
 * The time is ktime >> SHIFT_SYN_T_SHIFT (1.024 us units) in 32 bits; ages
 * are taken modulo 2^42 ns (73 minutes), far beyond a slot's 64 s life. A
 * slot left alone for a multiple of that looks young again for 64 s, and
 * still speaks only for a packet with its flow's hash, service and sequence
 * number: a client repeating its old ISN on the same 5-tuple.
 */
#define SHIFT_SYN_T_SHIFT 10
struct shift_syn_slot {
	/* The flow hash: the tag (0 = empty). With SHIFT_SS_NH, its low
	 * SHIFT_SYN_NH_BITS are instead the index of the SYN's client-side next
	 * hop in shift_client_nhs: they repeat the slot's own index (there are
	 * at least SHIFT_SYN_SLOTS_MIN slots), so the tag loses nothing; tags
	 * are compared with shift_syn_tag_is(). */
	__u32 hash;
	/* The SYN's sequence number (host order). Its low SHIFT_SYN_ISN_BITS
	 * name the SYN: a retransmit repeats them, a new connection on the same
	 * 5-tuple does not (but for 1 in 4096), and the client's first ACK
	 * carries them + 1. Once the backend's SYN-ACK went by (SHIFT_SS_SYNACK),
	 * the other 20 bits hold that SYN-ACK's sequence number's low 20 bits:
	 * the first ACK must acknowledge it + 1, which a blind spoofer guesses
	 * once in 2^20 (syn_slot_acked()). The slot stays 16 bytes: its size is
	 * what a SYN costs (the array stays in L2). */
	__u32 isn;
	__u32 syn_t; /* the flow's first SYN */
	/* Who holds the handshake, also as one word: the client's retransmitted
	 * SYN moving it to another backend and a backend's SYN-ACK answering it
	 * may meet on two CPUs, and each changes the word by compare-and-swap,
	 * so that one of them comes first. */
	union {
		struct {
			__u16 backend_id; /* where its SYN went */
			__u8 service_id;
			__u8 flags; /* SHIFT_SS_*, its color included */
		};
		__u32 owner;
	};
};

#define SHIFT_SS_ANSWERED (1u << 0) /* the backend sent something back (SYN-ACK, ACK, RST) */
#define SHIFT_SS_ERR_SEEN (1u << 1) /* the retransmit error was already sent */
#define SHIFT_SS_FALLBACK (1u << 2) /* green failed it: its retransmits go to blue */
#define SHIFT_SS_COLOR_BIT 3 /* its SYN went to this color (enum shift_color) */
/* its backend's SYN-ACK went by: isn's upper bits hold its ISN's low ones */
#define SHIFT_SS_SYNACK (1u << 4)
#define SHIFT_SYN_ISN_BITS 12
/* the tag's low bits name its SYN's client-side next hop (shift_client_nhs) */
#define SHIFT_SS_NH (1u << 5)
/* The flags bit of a color, and the color a slot's flags hold. */
#define SHIFT_SS_COLOR(color) (((color)&1u) << SHIFT_SS_COLOR_BIT)
#define SHIFT_SS_COLOR_OF(flags) (((flags) >> SHIFT_SS_COLOR_BIT) & 1u)

_Static_assert(sizeof(struct shift_syn_slot) == 16, "a SYN slot is 16 bytes");
_Static_assert(SHIFT_MAX_BACKENDS <= 0x10000 && SHIFT_MAX_SERVICES <= 0x100,
	       "a SYN slot's backend and service ids fit their fields");

/*
 * The client-side next hops SYNs came in by (their ingress interface and
 * MACs, swapped), for the backend's SYN-ACK: a bare SYN writes no entry, so
 * its SYN-ACK has none to take the way back from, and a FIB lookup cost it
 * more than the SYN itself (docs/BENCHMARKS.md section 7z). A SYN names its
 * next hop here by index, in its slot's tag (SHIFT_SS_NH). Entries are
 * written once, by the first SYN that hashes a next hop to a free one, and
 * never change while their interface lives: an index in a slot names what its
 * SYN saw. A next hop whose index another one holds takes the first free of
 * the next few (bpf/client_nh.h), else names none (its SYN-ACKs take the
 * FIB); index 0 is never used. When an interface goes, shiftd retires
 * its entries (agent/datapath/client_nh.c): a retired entry names no next hop,
 * and no SYN claims it for SHIFT_CLIENT_NH_QUARANTINE, so a SYN-ACK still
 * answering a SYN that came by the gone interface takes the FIB rather than
 * another next hop.
 */
#define SHIFT_SYN_NH_BITS 8
#define SHIFT_SYN_NH_MASK ((1u << SHIFT_SYN_NH_BITS) - 1)
#define SHIFT_CLIENT_NHS (1u << SHIFT_SYN_NH_BITS)
/* ifindex of an entry a SYN is writing (never an interface's: they are > 0 as
 * an int) */
#define SHIFT_CLIENT_NH_BUSY 0xffffffffu
/* ifindex of an entry shiftd retired (its interface is gone), since retired_at */
#define SHIFT_CLIENT_NH_RETIRED 0xfffffffeu
/* retired_at's clock: CLOCK_MONOTONIC in ns >> 30 (units of 1.07 s), the
 * datapath's from bpf_ktime_get_coarse_ns() */
#define SHIFT_CLIENT_NH_CLOCK_SHIFT 30
/* 120 units (129 s): longer than a backend retransmits a SYN-ACK (Linux's
 * tcp_synack_retries = 5: 63 s) */
#define SHIFT_CLIENT_NH_QUARANTINE 120
struct shift_client_nh {
	__u32 ifindex; /* 0: free */
	union {
		struct {
			__u8 dmac[6]; /* the client side's: the SYN's source */
			__u8 smac[6]; /* ours: the SYN's destination */
		};
		__u32 retired_at; /* SHIFT_CLIENT_NH_RETIRED: when */
	};
};

_Static_assert(sizeof(struct shift_client_nh) == 16, "a client next hop is 16 bytes");

/* Does an entry whose ifindex word reads ifindex name a next hop (not free,
 * not being written, not retired)? */
static inline int shift_client_nh_published(__u32 ifindex)
{
	return ifindex && ifindex != SHIFT_CLIENT_NH_BUSY && ifindex != SHIFT_CLIENT_NH_RETIRED;
}
_Static_assert(SHIFT_SYN_SLOTS_MIN > SHIFT_SYN_NH_MASK,
	       "a slot's index covers the tag bits that name its next hop");

/*
 * A next hop's index in shift_client_nhs, 1 to SHIFT_CLIENT_NHS - 1 (0 names
 * none): its ingress interface and MACs as four words (the client side's
 * first four bytes, the two MACs' last two, ours' first four), multiplied by
 * odd constants and summed, the sum's top bits scaled onto the range.
 */
static inline __u32 shift_client_nh_index(__u32 ifindex, __u32 w0, __u32 w1, __u32 w2)
{
	__u32 m = ifindex * 0x9e3779b1u + w0 * 0x85ebca77u + w1 * 0xc2b2ae3du + w2 * 0x27d4eb2fu;

	return 1 + (((m >> 16) * (SHIFT_CLIENT_NHS - 1)) >> 16);
}

/* Does slot tag tag (struct shift_syn_slot.hash) stand for flow hash h? */
static inline int shift_syn_tag_is(__u32 tag, __u32 h)
{
	return !((tag ^ h) & ~SHIFT_SYN_NH_MASK);
}

/*
 * A bit per hashed VIP address: most packets that are not for a VIP leave
 * after one inlined array lookup instead of a hash-map lookup. A set bit only
 * means "maybe"; the service or flow lookup decides. At most 512 VIP
 * addresses set at most 1 bit in 64.
 *
 * The bit's hash is part of the layout: a new hash needs a new size, so that
 * an upgrading shiftd builds a new map (loader.c, relayout_rules) instead of
 * adopting one whose bits the old programs still read. 65536 bits before the
 * multiplicative hash.
 */
#define SHIFT_VIP_FILTER_LOG2 15
#define SHIFT_VIP_FILTER_WORDS (1u << (SHIFT_VIP_FILTER_LOG2 - 6)) /* x 64 = 32768 bits */
struct shift_vip_filter {
	__u64 w[SHIFT_VIP_FILTER_WORDS];
};

/*
 * Source NAT ("full NAT", SPEC "Where the backends live"). Per service (array
 * indexed by service id): the edge's addresses of the service's family and the
 * ports to use, as at most two runs (the configured snat_ports minus the
 * host's own ip_local_port_range, so the edge's sockets, its health checks
 * included, never share a 4-tuple with a mapping). Host order.
 */
#define SHIFT_SNAT_MAX_ADDRS 8
struct shift_snat_cfg {
	__u32 addr[SHIFT_SNAT_MAX_ADDRS][4]; /* network order */
	__u32 n_addrs; /* 0: no source NAT */
	__u16 run_lo[2]; /* first port of each run */
	__u16 run_n[2]; /* ports in each run */
	__u32 reserved[4];
};

/*
 * The reverse mapping, one per source-NATed flow: a reply from the backend to
 * snat addr:port finds its client here. Written with BPF_NOEXIST, so a port is
 * never handed to two flows; an LRU map, so mappings age out with their flows.
 */
struct shift_snat_key {
	__u32 baddr[4]; /* backend */
	__u32 saddr[4]; /* the edge's address */
	__u16 bport;
	__u16 sport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

struct shift_snat_val {
	__u32 caddr[4]; /* client */
	__u16 cport;
	__u16 service_id;
	__u32 backend_id; /* | SHIFT_SNAT_HALF_OPEN */
	__u64 last_ns; /* last packet either way: the kernel's coarse clock, refreshed at most
			 * once a second (bpf/snat.h, snat_now()) */
};

/* In shift_snat_val.backend_id: no completed handshake confirmed the mapping
 * yet (bpf/snat.h): every shift_snat_half entry, never a shift_snat one.
 * Backend ids are far smaller. */
#define SHIFT_SNAT_HALF_OPEN (1u << 31)

#define SHIFT_DEFAULT_SNAT (1u << 18)
/*
 * Half-open claims (a SYN's, a spoofed ACK's) live in a table of their own,
 * shift_snat_half, so that a flood of them can evict only each other, never
 * a confirmed connection's mapping. Half the default port range (64,512 per
 * backend and address): a flood cannot hold every port of even one backend,
 * so a real client's SYN still finds one; under a flood of R spoofed SYNs a
 * second a real claim lasts about this many / R seconds (33 ms at 1M/s),
 * longer once its SYN-ACK has looked it up (the LRU's second chance).
 */
#define SHIFT_SNAT_HALF_ENTRIES (1u << 15)

/* Source-prefix override tries: prefixlen counts the 32 service-id bits. */
struct shift_lpm_key4 {
	__u32 prefixlen;
	__u32 service_id; /* network order so it sorts as a prefix */
	__u32 addr;
};

struct shift_lpm_key6 {
	__u32 prefixlen;
	__u32 service_id;
	__u32 addr[4];
};

/* Return-path error kinds (per-backend counters and samples). */
enum shift_err {
	SHIFT_ERR_NONE = 0,
	SHIFT_ERR_RST, /* backend sent RST */
	SHIFT_ERR_HTTP5XX, /* HTTP 5xx response */
	SHIFT_ERR_SYN_RETRANS, /* client retransmitted an unanswered SYN */
	SHIFT_ERR_ICMP_UNREACH, /* ICMP unreachable from the backend */
	SHIFT_ERR_TLS_ALERT, /* a fatal TLS alert, or any alert with a request open */
	SHIFT_ERR_TLS_HANDSHAKE, /* the backend never answered the client's hello */
	SHIFT_ERR_EARLY_CLOSE, /* backend FIN with a request open, no response */
	SHIFT_ERR_MAX,
};
/* Slots for error counters in shift_backend_stats; new kinds take reserved space. */
#define SHIFT_ERR_SLOTS 9

/* Per-backend per-CPU counters (be_stats map, indexed by backend id). */
struct shift_backend_stats {
	__u64 packets; /* client -> backend */
	__u64 bytes;
	__u64 reply_packets; /* backend -> client */
	__u64 reply_bytes;
	__u64 new_flows;
	__u64 responses[6]; /* HTTP status class, [1]=1xx .. [5]=5xx, [0] unused */
	__u64 errors[SHIFT_ERR_MAX];
	__u64 reserved[SHIFT_ERR_SLOTS - SHIFT_ERR_MAX];
};

/* Latency histograms (lat_hist map, index backend_id * SHIFT_LAT_KINDS + kind):
 * bucket i counts samples < 2^i microseconds (the last one is +Inf). */
#define SHIFT_LAT_BUCKETS 28
enum shift_lat_kind {
	SHIFT_LAT_CONNECT = 0,
	SHIFT_LAT_RESPONSE = 1,
	SHIFT_LAT_KINDS = 2,
};

struct shift_lat_hist {
	__u64 bucket[SHIFT_LAT_BUCKETS];
	__u64 sum_ns;
	__u64 count;
};

/*
 * Samples a ring could not take, by service, color and kind (the sample's
 * kind & 3: TCP 0, CONNECT 1, RESPONSE 2, ERROR 3), and their total. The
 * agent counts them in that service's windows: a full ring's lost successes
 * still count in an error rate's denominator, its lost errors in the
 * numerator, where the totals alone (SHIFT_STAT_RINGBUF_DROPPED, _ERRBUF_)
 * could only restart every service's windows. One array element, mapped into
 * shiftd (BPF_F_MMAPABLE): it looks at total on every pass over the rings
 * without a syscall. Shared, not per-CPU, so the datapath adds atomically;
 * it does so only when a ring is full, where the ring's own lock is shared.
 */
#define SHIFT_LOST_KINDS 4
struct shift_lost {
	__u64 total;
	__u64 n[SHIFT_MAX_SERVICES][SHIFT_COLORS][SHIFT_LOST_KINDS];
};
/* The datapath indexes it with masks. */
_Static_assert((SHIFT_MAX_SERVICES & (SHIFT_MAX_SERVICES - 1)) == 0 &&
		       (SHIFT_COLORS & (SHIFT_COLORS - 1)) == 0,
	       "shift_lost is indexed with masks");

/* Global per-CPU datapath counters (stats map). Drops are counted by reason. */
enum shift_stat {
	SHIFT_STAT_DROP_TRUNCATED = 0,
	SHIFT_STAT_DROP_BAD_IHL,
	SHIFT_STAT_DROP_BAD_LENGTH,
	SHIFT_STAT_DROP_FRAGMENT,
	SHIFT_STAT_DROP_IPV6_EXT,
	SHIFT_STAT_DROP_NO_BACKEND,
	SHIFT_STAT_DROP_BAD_BACKEND,
	SHIFT_STAT_DROP_MAX_, /* drops end here */
	SHIFT_STAT_PASS_NO_NEIGH = SHIFT_STAT_DROP_MAX_, /* next hop unresolved: kernel forwards */
	SHIFT_STAT_PASS_TTL, /* TTL/hop limit expired: kernel sends ICMP */
	SHIFT_STAT_PASS_VIP_OTHER, /* VIP address, no such port/proto service */
	SHIFT_STAT_FLOW_NEW,
	SHIFT_STAT_FLOW_INSERT_FAIL,
	SHIFT_STAT_RINGBUF_DROPPED,
	SHIFT_STAT_OVERRIDE_HIT,
	SHIFT_STAT_ERRBUF_DROPPED, /* error samples lost: the agent is far behind */
	/* A drop, appended so the older slots keep their numbers. */
	SHIFT_STAT_DROP_SNAT_EXHAUSTED, /* no free source NAT port for a new flow */
	SHIFT_STAT_FLOW_INSERT, /* connection-table entries written (handshakes completed, UDP
				 * flows, mid-stream flows their backend answered) */
	SHIFT_STAT_SYN_SLOT_MISS, /* a SYN-ACK, or a TCP packet without an entry, whose SYN slot
				   * does not hold its handshake (taken, or never seen) */
	SHIFT_STAT_REPLY_FIB, /* replies forwarded by a FIB lookup (no next hop in an entry) */
	SHIFT_STAT_FALLBACK, /* green RSTs to a SYN dropped by connect_fallback */
	SHIFT_STAT_DROP_SYNACK_MOVED, /* a SYN-ACK of a backend that does not hold the
				       * client's handshake (its SYN slot or its entry
				       * names another) */
	SHIFT_STAT_ACK_UNMATCHED, /* a client ACK of its SYN slot's handshake that does not
				   * acknowledge the backend's SYN-ACK (a blind spoofer's, or
				   * none went by): steered by the weight, no entry written */
	SHIFT_STAT_ICMP_TOO_BIG, /* ICMP "fragmentation needed" / "packet too big" about a
				  * flow's answer, translated and sent to its backend */
	SHIFT_STAT_PASS_ICMP_NO_FLOW, /* such a message to a VIP naming no entry (or a
				       * source-NATed one whose edge address the service
				       * no longer has): to the kernel */
	SHIFT_STAT_MAX,
};

/* config map (array of one): set by the agent, read by the datapath. */
struct shift_config {
	__u32 abi_version;
	__u32 flags;
	__u32 hash_seed; /* the seed the attached programs were loaded with */
	__u32 reserved[13];
};

#endif /* SHIFT_MAPS_H */
