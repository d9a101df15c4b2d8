/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The harness around the real datapath: load the skeleton through the agent's
 * loader, configure it through the agent's dataplane API, run one packet with
 * BPF_PROG_TEST_RUN, and set up the private-netns plumbing the FIB branch
 * needs. Shared by bpf_test and bench_datapath; it never asserts, it returns
 * 0 or a negative errno and says why on stderr.
 */
#ifndef SHIFT_TEST_HARNESS_H
#define SHIFT_TEST_HARNESS_H

#include <stdbool.h>
#include <linux/types.h>
#include <shift/maps.h>

#include "datapath/dataplane.h"
#include "datapath/loader.h"
#include "pkt.h"

enum h_prog {
	H_CLIENT, /* shift_xdp_client: forward path */
	H_BACKEND, /* shift_xdp_backend: return path */
	H_BOTH, /* shift_xdp_both: one-armed */
	H_PROGS,
};

struct harness {
	struct shift *skel;
	struct shift_maps m;
	int prog[H_PROGS]; /* the XDP entry points */
	int tc_prog[H_PROGS]; /* the TC entry points, same order */
	__u32 seed;
	bool tc; /* harness_run_prog() runs the TC entry points */
	/* TC only: the skb is CHECKSUM_COMPLETE and the kernel checks after the
	 * run that skb->csum still matches the bytes (BPF_F_TEST_SKB_CHECKSUM_COMPLETE). */
	bool csum_complete;
};

/* BPF_F_TEST_SKB_CHECKSUM_COMPLETE (Linux 6.11); older UAPI headers lack it. */
#define H_TEST_SKB_CSUM_COMPLETE (1u << 2)

#define H_SEED 0x5eedu
#define H_LO_IFINDEX 1 /* lo in a fresh namespace */

/* SHIFT_TEST_COMPAT=1: load the shift_compat build (see loader.h) whatever the kernel. */
bool harness_compat(void);
int harness_open(struct harness *h, __u32 seed, __u32 max_flows4, __u32 max_flows6);
/* The same with a SYN slot array of syn_slots (0: the default) and only the entry
 * programs of hooks (SHIFT_LOAD_*, loader.h): the others' fds are -1. Each program
 * costs its verifier's time, the suite's largest. */
int harness_open_hooks(struct harness *h, __u32 seed, __u32 max_flows4, __u32 max_flows6,
		       __u32 syn_slots, __u32 hooks);
void harness_close(struct harness *h);

/*
 * One BPF_PROG_TEST_RUN with repeat = 1. ifindex != 0 is passed as the
 * xdp_md ingress_ifindex (ctx_in); 0 lets the kernel use lo. out may be NULL.
 * On return *out_len is the output length. Returns 0 or a negative errno.
 */
int harness_run(int prog_fd, const void *in, __u32 len, __u32 ifindex, void *out, __u32 *out_len,
		__u32 *verdict);

/*
 * The same with a __sk_buff context (TC programs): ifindex != 0 becomes the
 * skb's device and ingress interface. flags: BPF_PROG_TEST_RUN flags.
 */
int harness_run_skb(int prog_fd, const void *in, __u32 len, __u32 ifindex, void *out,
		    __u32 *out_len, __u32 *verdict, __u32 flags);
/* Entry point p of the harness's mode (XDP, or TC when h->tc). */
int harness_run_prog(const struct harness *h, enum h_prog p, const void *in, __u32 len,
		     __u32 ifindex, void *out, __u32 *out_len, __u32 *verdict);
/* The verdict the mode's entry point returns for an XDP one (TC: TC_ACT_*). */
__u32 harness_expect(const struct harness *h, __u32 xdp_verdict);
/* Does this kernel run skb tests as CHECKSUM_COMPLETE? (a feature probe) */
bool harness_has_csum_complete(const struct harness *h);

/* --- the standard topology (harness_topology) ------------------------------ */

/* MACs: the client, the edge host's client-facing side, the edge host's
 * backend-facing side as cached in backend entries (nh_smac). */
#define MAC_CLIENT                                 \
	{                                          \
		0x02, 0xc1, 0x00, 0x00, 0x00, 0x07 \
	}
#define MAC_EDGE                                   \
	{                                          \
		0x02, 0xed, 0x00, 0x00, 0x00, 0x01 \
	}
#define MAC_NH_SRC                                 \
	{                                          \
		0x02, 0xed, 0x00, 0x00, 0x00, 0x02 \
	}

struct topo_service {
	__u32 id;
	__u8 family; /* 4 / 6 */
	__u8 proto;
	__u8 vip[16];
	__u16 port; /* host order */
	__u32 flags;
};

struct topo_backend {
	__u32 id;
	__u32 svc;
	__u8 color;
	__u8 family;
	__u8 proto;
	__u8 addr[16];
	__u16 port; /* host order */
	bool nh; /* next hop cached in the entry (else the datapath uses the FIB) */
	__u32 nh_ifindex; /* 0: lo */
	__u8 mac[6]; /* nh_dmac */
};

enum topo_svc_id {
	SVC_V4_TCP = 0, /* 10.0.0.10:80/tcp      blue be 0, green be 1 */
	SVC_V4_UDP, /* 10.0.0.10:53/udp      blue be 2, green be 3 */
	SVC_V6_TCP, /* [2001:db8::10]:443    blue be 4, green be 5 */
	SVC_V6_UDP, /* [2001:db8::10]:53/udp blue be 6, green be 7 */
	SVC_V4_OVR, /* 10.0.0.20:80, overrides  blue be 8, green be 9 */
	SVC_V6_OVR, /* [2001:db8::20]:80, overrides  blue be 10, green be 11 */
	SVC_V4_NONE, /* 10.0.0.30:80, both pools empty */
	SVC_V4_BLUEONLY, /* 10.0.0.31:80, blue be 12, green pool empty */
	SVC_V4_REDIR, /* 10.0.0.40:80, blue be 13 whose next hop is ifindex 77 */
	SVC_V4_STALE, /* 10.0.0.50:80, blue be 14 (later 15) */
	SVC_V4_FIB, /* 10.0.0.60:80, blue be 16: no cached next hop, neighbour on shv0 */
	SVC_V6_FIB, /* [2001:db8::60]:80, blue be 17: ditto */
	SVC_V4_NONEIGH, /* 10.0.0.70:80, blue be 18: no cached next hop, no neighbour */
	SVC_V4_NOROUTE, /* 10.0.0.80:80, blue be 19 (10.9.0.1): no cached next hop, no route */
	SVC_TOPO_COUNT,
};

extern const struct topo_service topo_services[SVC_TOPO_COUNT];
extern const struct topo_backend topo_backends[];
extern const __u32 topo_n_backends;

/* Services, backends (backend 15 is defined but in no pool) and pools, weights 0. */
int harness_topology(struct harness *h);
int harness_add_service(struct harness *h, const struct topo_service *s);
/* The shift_services key of a topology service. */
void harness_service_key(const struct topo_service *s, struct shift_addr_key *k);
int harness_add_backend(struct harness *h, const struct topo_backend *b);
/* Fill a pool from backend ids (their addresses are read back from the map). */
int harness_pool(struct harness *h, __u32 svc, enum shift_color color, const __u32 *ids, __u32 n);

/*
 * The connection-table key of a client -> VIP tuple (ports in host order),
 * as the datapath's flow_key_fill() builds it: for a spec, or from fields.
 */
void harness_key4_of(const __u8 *saddr, const __u8 *daddr, __u16 sport, __u16 dport, __u8 proto,
		     struct shift_flow_key4 *k);
void harness_key6_of(const __u8 *saddr, const __u8 *daddr, __u16 sport, __u16 dport, __u8 proto,
		     struct shift_flow_key6 *k);
/* Connection-table access by the client-side tuple of a spec. */
void harness_flow_key4(const struct pkt_spec *s, struct shift_flow_key4 *k);
void harness_flow_key6(const struct pkt_spec *s, struct shift_flow_key6 *k);
int harness_flow_get(struct harness *h, const struct pkt_spec *s, struct shift_flow *f);
int harness_flow_del(struct harness *h, const struct pkt_spec *s);
/* Overwrite the entry (it must exist): a test's setting of what the datapath wrote. */
int harness_flow_put(struct harness *h, const struct pkt_spec *s, const struct shift_flow *f);
int harness_syn_slots_fd(const struct harness *h);
/* The SYN slot a spec's tuple hashes to (whatever flow holds it). */
int harness_syn_slot_get(struct harness *h, const struct pkt_spec *s, struct shift_syn_slot *slot);
/* The client-side next hop at index idx (struct shift_client_nh). */
int harness_client_nh_get(struct harness *h, __u32 idx, struct shift_client_nh *e);
/* The index a SYN in on ifindex from smac to dmac claims for its next hop. */
__u32 harness_client_nh_index(__u32 ifindex, const __u8 *smac, const __u8 *dmac);
/* The slot index of a flow hash in the array the programs were loaded with. */
__u32 harness_syn_slot_idx(const struct harness *h, __u32 hash);
/* The userspace flow hash of a spec's tuple (include/shift/flow_hash.h). */
__u32 harness_hash(const struct pkt_spec *s, __u32 seed);

/* --- the FIB plumbing in the private namespace ----------------------------- */

/*
 * A veth pair: shv0 faces the backends (10.1.0.1/24, 2001:db8:1::1/64),
 * shv1 faces the clients (198.51.100.1/24, 2001:db8:c::1/64), forwarding on,
 * permanent neighbours for backends 10.1.0.18 / 2001:db8:1::18 (FIB_MAC_BE)
 * and clients 198.51.100.7 / 2001:db8:c::7 (MAC_CLIENT). Idempotent.
 */
struct fib_env {
	int if_be; /* shv0 */
	int if_cl; /* shv1 */
};

#define FIB_MAC_SHV0                               \
	{                                          \
		0x02, 0xed, 0x00, 0x00, 0x0b, 0x00 \
	}
#define FIB_MAC_SHV1                               \
	{                                          \
		0x02, 0xed, 0x00, 0x00, 0x0c, 0x00 \
	}
#define FIB_MAC_BE                                 \
	{                                          \
		0x02, 0xbe, 0x00, 0x00, 0x00, 0x18 \
	}

int fib_env_setup(struct fib_env *e);

/*
 * Build s, run it through prog (ingress lo), and find which of bes[0..n) the
 * output is addressed to (destination addr:port, checksums verified from
 * scratch). *idx = -1 if none. Returns 0 or a negative errno (-EBADMSG: the
 * output does not parse or a checksum is wrong).
 */
int harness_steer(struct harness *h, enum h_prog prog, const struct pkt_spec *s,
		  const struct topo_backend *bes, __u32 n, int *idx, __u32 *verdict);
/* The same, and whether the output is the input byte for byte. */
int harness_steer_io(struct harness *h, enum h_prog prog, const struct pkt_spec *s,
		     const struct topo_backend *bes, __u32 n, int *idx, __u32 *verdict,
		     bool *unchanged);

/*
 * The SYN-ACK of backend be for the handshake whose first ACK is s: from be
 * to s's client, sequence number s->ack - 1, run through prog (ingress lo;
 * H_BACKEND, or H_BOTH one-armed). A first ACK writes its entry only when it
 * acknowledges a SYN-ACK that went by (bpf/synslot.h, syn_slot_acked()).
 */
int harness_synack(struct harness *h, enum h_prog prog, const struct pkt_spec *s,
		   const struct topo_backend *be, __u32 *verdict);
/*
 * A handshake up to the first ACK s: its SYN (s->seq - 1, no payload) through
 * prog, then the SYN-ACK of the backend among bes[0..n) it went to through
 * the return path (H_BOTH for H_BOTH, else H_BACKEND). *idx as
 * harness_steer(); no SYN-ACK when it is -1.
 */
int harness_handshake(struct harness *h, enum h_prog prog, const struct pkt_spec *s,
		      const struct topo_backend *bes, __u32 n, int *idx);

/* xorshift64*: deterministic test inputs. */
static inline __u64 h_rand(__u64 *state)
{
	__u64 x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Write a service's source NAT settings (shift_snat_cfg) as they are. */
int dp_snat_set_raw(struct harness *h, __u32 service_id, const struct shift_snat_cfg *cfg);

/* Backend stats fields the tests compare. */
int harness_be_stats(struct harness *h, __u32 id, struct shift_backend_stats *s);

/* The datapath's direct-mapped guesses (shift_be_cache, shift_svc_cache): an
 * array map with __u32 keys and values. Write v into every slot (0 or a
 * negative errno); how many slots hold v. */
struct bpf_map;
int harness_array_fill(const struct bpf_map *m, __u32 v);
__u32 harness_array_count(const struct bpf_map *m, __u32 v);

/* How many keys a hash map holds (fd; its keys key_size bytes, at most 64);
 * ~0 for a larger key. */
__u64 harness_map_count(int fd, __u32 key_size);

#endif
