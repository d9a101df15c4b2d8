// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>
#include <shift/flow_hash.h>
#include "shift.skel.h"
#include "harness.h"
#include "datapath/loader.h"

/* Addresses as bytes on the wire. */
#define A4(a, b, c, d)     \
	{                  \
		a, b, c, d \
	}
#define A6(last)                                                              \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last \
	}
#define A6BE(last)                                                            \
	{                                                                     \
		0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, last \
	}
#define BEMAC(id)                                \
	{                                        \
		0x02, 0xbe, 0x00, 0x00, 0x00, id \
	}

const struct topo_service topo_services[SVC_TOPO_COUNT] = {
	{ SVC_V4_TCP, 4, IPPROTO_TCP, A4(10, 0, 0, 10), 80, 0 },
	{ SVC_V4_UDP, 4, IPPROTO_UDP, A4(10, 0, 0, 10), 53, 0 },
	{ SVC_V6_TCP, 6, IPPROTO_TCP, A6(0x10), 443, 0 },
	{ SVC_V6_UDP, 6, IPPROTO_UDP, A6(0x10), 53, 0 },
	{ SVC_V4_OVR, 4, IPPROTO_TCP, A4(10, 0, 0, 20), 80, SHIFT_SVC_F_OVERRIDES },
	{ SVC_V6_OVR, 6, IPPROTO_TCP, A6(0x20), 80, SHIFT_SVC_F_OVERRIDES },
	{ SVC_V4_NONE, 4, IPPROTO_TCP, A4(10, 0, 0, 30), 80, 0 },
	{ SVC_V4_BLUEONLY, 4, IPPROTO_TCP, A4(10, 0, 0, 31), 80, 0 },
	{ SVC_V4_REDIR, 4, IPPROTO_TCP, A4(10, 0, 0, 40), 80, 0 },
	{ SVC_V4_STALE, 4, IPPROTO_TCP, A4(10, 0, 0, 50), 80, 0 },
	{ SVC_V4_FIB, 4, IPPROTO_TCP, A4(10, 0, 0, 60), 80, 0 },
	{ SVC_V6_FIB, 6, IPPROTO_TCP, A6(0x60), 80, 0 },
	{ SVC_V4_NONEIGH, 4, IPPROTO_TCP, A4(10, 0, 0, 70), 80, 0 },
	{ SVC_V4_NOROUTE, 4, IPPROTO_TCP, A4(10, 0, 0, 80), 80, 0 },
};

const struct topo_backend topo_backends[] = {
	{ 0, SVC_V4_TCP, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 1, 0, 11), 8080, true, 0, BEMAC(0) },
	{ 1, SVC_V4_TCP, SHIFT_GREEN, 4, IPPROTO_TCP, A4(10, 1, 0, 21), 8080, true, 0, BEMAC(1) },
	{ 2, SVC_V4_UDP, SHIFT_BLUE, 4, IPPROTO_UDP, A4(10, 1, 0, 12), 5353, true, 0, BEMAC(2) },
	{ 3, SVC_V4_UDP, SHIFT_GREEN, 4, IPPROTO_UDP, A4(10, 1, 0, 22), 5353, true, 0, BEMAC(3) },
	{ 4, SVC_V6_TCP, SHIFT_BLUE, 6, IPPROTO_TCP, A6BE(0x11), 8443, true, 0, BEMAC(4) },
	{ 5, SVC_V6_TCP, SHIFT_GREEN, 6, IPPROTO_TCP, A6BE(0x21), 8443, true, 0, BEMAC(5) },
	{ 6, SVC_V6_UDP, SHIFT_BLUE, 6, IPPROTO_UDP, A6BE(0x12), 5353, true, 0, BEMAC(6) },
	{ 7, SVC_V6_UDP, SHIFT_GREEN, 6, IPPROTO_UDP, A6BE(0x22), 5353, true, 0, BEMAC(7) },
	{ 8, SVC_V4_OVR, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 1, 0, 13), 8080, true, 0, BEMAC(8) },
	{ 9, SVC_V4_OVR, SHIFT_GREEN, 4, IPPROTO_TCP, A4(10, 1, 0, 23), 8080, true, 0, BEMAC(9) },
	{ 10, SVC_V6_OVR, SHIFT_BLUE, 6, IPPROTO_TCP, A6BE(0x13), 8080, true, 0, BEMAC(10) },
	{ 11, SVC_V6_OVR, SHIFT_GREEN, 6, IPPROTO_TCP, A6BE(0x23), 8080, true, 0, BEMAC(11) },
	{ 12, SVC_V4_BLUEONLY, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 1, 0, 14), 8080, true, 0,
	  BEMAC(12) },
	{ 13, SVC_V4_REDIR, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 1, 0, 15), 8080, true, 77,
	  BEMAC(13) },
	{ 14, SVC_V4_STALE, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 1, 0, 16), 8080, true, 0,
	  BEMAC(14) },
	{ 15, SVC_V4_STALE, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 1, 0, 17), 8080, true, 0,
	  BEMAC(15) },
	{ 16, SVC_V4_FIB, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 1, 0, 18), 8080, false, 0,
	  FIB_MAC_BE },
	{ 17, SVC_V6_FIB, SHIFT_BLUE, 6, IPPROTO_TCP, A6BE(0x18), 8080, false, 0, FIB_MAC_BE },
	{ 18, SVC_V4_NONEIGH, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 1, 0, 19), 8080, false, 0,
	  BEMAC(18) },
	{ 19, SVC_V4_NOROUTE, SHIFT_BLUE, 4, IPPROTO_TCP, A4(10, 9, 0, 1), 8080, false, 0,
	  BEMAC(19) },
};

const __u32 topo_n_backends = sizeof(topo_backends) / sizeof(topo_backends[0]);

bool harness_compat(void)
{
	const char *v = getenv("SHIFT_TEST_COMPAT");

	return v && strcmp(v, "1") == 0;
}

int harness_open(struct harness *h, __u32 seed, __u32 max_flows4, __u32 max_flows6)
{
	return harness_open_hooks(h, seed, max_flows4, max_flows6, 0, SHIFT_LOAD_ALL);
}

int harness_open_hooks(struct harness *h, __u32 seed, __u32 max_flows4, __u32 max_flows6,
		       __u32 syn_slots, __u32 hooks)
{
	struct loader_opts o = {
		.hooks = hooks,
		.hash_seed = seed,
		.max_flows4 = max_flows4,
		.max_flows6 = max_flows6,
		.syn_slots = syn_slots,
		/* The object older kernels get, on this one (make check runs the
		 * TC suites once more with it; bench_datapath compares the two). */
		.compat = harness_compat(),
	};

	memset(h, 0, sizeof(*h));
	h->seed = seed;
	h->skel = shift_skel_load(&o);
	if (!h->skel) {
		int err = -errno;

		fprintf(stderr, "harness: loading the skeleton failed: %s\n", strerror(-err));
		return err;
	}
	dp_maps_from_skel(&h->m, h->skel);
	{
		/* As shiftd does once attached: the maps say which seed the
		 * programs run with, so userspace (which_compute) hashes alike. */
		struct shift_config cfg;

		if (dp_config_get(&h->m, &cfg) == 0) {
			cfg.hash_seed = seed;
			dp_config_set(&h->m, &cfg);
		}
	}
	h->prog[H_CLIENT] = bpf_program__fd(h->skel->progs.shift_xdp_client);
	h->prog[H_BACKEND] = bpf_program__fd(h->skel->progs.shift_xdp_backend);
	h->prog[H_BOTH] = bpf_program__fd(h->skel->progs.shift_xdp_both);
	h->tc_prog[H_CLIENT] = bpf_program__fd(h->skel->progs.shift_tc_client);
	h->tc_prog[H_BACKEND] = bpf_program__fd(h->skel->progs.shift_tc_backend);
	h->tc_prog[H_BOTH] = bpf_program__fd(h->skel->progs.shift_tc_both);
	return 0;
}

void harness_close(struct harness *h)
{
	if (h->skel) {
		dp_weight_cas_close(&h->m);
		shift__destroy(h->skel);
	}
	h->skel = NULL;
}

int harness_run(int prog_fd, const void *in, __u32 len, __u32 ifindex, void *out, __u32 *out_len,
		__u32 *verdict)
{
	struct xdp_md ctx;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .repeat = 1);
	int err;

	if (out) {
		o.data_out = out;
		o.data_size_out = *out_len;
	}
	if (ifindex) {
		memset(&ctx, 0, sizeof(ctx));
		ctx.data_end = len;
		ctx.ingress_ifindex = ifindex;
		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
	}
	err = bpf_prog_test_run_opts(prog_fd, &o);
	if (err)
		return err < 0 ? err : -errno;
	if (out_len)
		*out_len = out ? o.data_size_out : 0;
	*verdict = o.retval;
	return 0;
}

int harness_run_skb(int prog_fd, const void *in, __u32 len, __u32 ifindex, void *out,
		    __u32 *out_len, __u32 *verdict, __u32 flags)
{
	struct __sk_buff ctx;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .repeat = 1,
		    .flags = flags);
	int err;

	if (out) {
		o.data_out = out;
		o.data_size_out = *out_len;
	}
	if (ifindex) {
		memset(&ctx, 0, sizeof(ctx));
		ctx.ifindex = ifindex;
		ctx.ingress_ifindex = ifindex;
		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
	}
	err = bpf_prog_test_run_opts(prog_fd, &o);
	if (err)
		return err < 0 ? err : -errno;
	if (out_len)
		*out_len = out ? o.data_size_out : 0;
	*verdict = o.retval;
	return 0;
}

int harness_run_prog(const struct harness *h, enum h_prog p, const void *in, __u32 len,
		     __u32 ifindex, void *out, __u32 *out_len, __u32 *verdict)
{
	if (!h->tc)
		return harness_run(h->prog[p], in, len, ifindex, out, out_len, verdict);
	return harness_run_skb(h->tc_prog[p], in, len, ifindex, out, out_len, verdict,
			       h->csum_complete ? H_TEST_SKB_CSUM_COMPLETE : 0);
}

__u32 harness_expect(const struct harness *h, __u32 xdp_verdict)
{
	if (!h->tc)
		return xdp_verdict;
	switch (xdp_verdict) {
	case XDP_DROP:
	case XDP_ABORTED:
		return TC_ACT_SHOT;
	case XDP_TX:
	case XDP_REDIRECT:
		return TC_ACT_REDIRECT;
	default:
		return (__u32)TC_ACT_UNSPEC;
	}
}

bool harness_has_csum_complete(const struct harness *h)
{
	/* A minimal frame through the TC client entry: older kernels refuse the flag. */
	static const __u8 frame[ETH_HLEN + 20] = { [12] = 0x08, [13] = 0x00, [14] = 0x45 };
	__u8 out[sizeof(frame)];
	__u32 olen = sizeof(out), verdict;

	return harness_run_skb(h->tc_prog[H_CLIENT], frame, sizeof(frame), 0, out, &olen, &verdict,
			       H_TEST_SKB_CSUM_COMPLETE) == 0;
}

static void addr_key(__u8 family, const __u8 *addr, __u16 port, __u8 proto,
		     struct shift_addr_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, addr, family == 4 ? 4 : 16);
	k->port = htons(port);
	k->proto = proto;
	k->family = family == 4 ? SHIFT_AF_INET : SHIFT_AF_INET6;
}

void harness_service_key(const struct topo_service *s, struct shift_addr_key *k)
{
	addr_key(s->family, s->vip, s->port, s->proto, k);
}

int harness_add_service(struct harness *h, const struct topo_service *s)
{
	struct shift_addr_key k;
	int err;

	harness_service_key(s, &k);
	err = dp_service_put(&h->m, s->id, &k, s->flags);
	if (err)
		fprintf(stderr, "harness: dp_service_put(%u): %s\n", s->id, strerror(-err));
	return err;
}

int harness_add_backend(struct harness *h, const struct topo_backend *b)
{
	static const __u8 nh_src[6] = MAC_NH_SRC;
	struct shift_backend be;
	int err;

	memset(&be, 0, sizeof(be));
	memcpy(be.addr, b->addr, b->family == 4 ? 4 : 16);
	be.port = htons(b->port);
	be.family = b->family == 4 ? SHIFT_AF_INET : SHIFT_AF_INET6;
	be.flags = SHIFT_BE_F_ACTIVE;
	be.service_id = (__u16)b->svc;
	be.color = b->color;
	if (b->nh) {
		be.flags |= SHIFT_BE_F_NH_VALID;
		be.nh_ifindex = b->nh_ifindex ? b->nh_ifindex : H_LO_IFINDEX;
		memcpy(be.nh_smac, nh_src, 6);
		memcpy(be.nh_dmac, b->mac, 6);
	}
	err = dp_backend_put(&h->m, b->id, &be, b->proto);
	if (err)
		fprintf(stderr, "harness: dp_backend_put(%u): %s\n", b->id, strerror(-err));
	return err;
}

int harness_pool(struct harness *h, __u32 svc, enum shift_color color, const __u32 *ids, __u32 n)
{
	struct shift_addr_key *keys;
	struct shift_svc_info info;
	struct shift_backend be;
	__u32 i;
	int err = 0;

	memset(&info, 0, sizeof(info));
	if (bpf_map_lookup_elem(h->m.fd[SHIFT_MAP_SVC_INFO], &svc, &info))
		return -errno;
	keys = calloc(n ? n : 1, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (i = 0; i < n && !err; i++) {
		err = dp_backend_get(&h->m, ids[i], &be);
		if (err)
			break;
		memset(&keys[i], 0, sizeof(keys[i]));
		memcpy(keys[i].addr, be.addr, sizeof(be.addr));
		keys[i].port = be.port;
		keys[i].proto = info.proto;
		keys[i].family = be.family;
	}
	if (!err)
		err = dp_pool_set(&h->m, svc, color, ids, keys, n);
	if (err)
		fprintf(stderr, "harness: pool %u/%d: %s\n", svc, color, strerror(-err));
	free(keys);
	return err;
}

int harness_topology(struct harness *h)
{
	__u32 pools[SVC_TOPO_COUNT][SHIFT_COLORS][4], n[SVC_TOPO_COUNT][SHIFT_COLORS];
	__u32 i, c;
	int err;

	memset(n, 0, sizeof(n));
	for (i = 0; i < SVC_TOPO_COUNT; i++) {
		err = harness_add_service(h, &topo_services[i]);
		if (err)
			return err;
		err = dp_weight_set(&h->m, i, 0);
		if (err)
			return err;
	}
	for (i = 0; i < topo_n_backends; i++) {
		const struct topo_backend *b = &topo_backends[i];

		err = harness_add_backend(h, b);
		if (err)
			return err;
		if (b->id == 15) /* the stale test's replacement, not in a pool yet */
			continue;
		if (n[b->svc][b->color] < 4)
			pools[b->svc][b->color][n[b->svc][b->color]++] = b->id;
	}
	for (i = 0; i < SVC_TOPO_COUNT; i++)
		for (c = 0; c < SHIFT_COLORS; c++) {
			err = harness_pool(h, i, c, pools[i][c], n[i][c]);
			if (err)
				return err;
		}
	return 0;
}

void harness_key4_of(const __u8 *saddr, const __u8 *daddr, __u16 sport, __u16 dport, __u8 proto,
		     struct shift_flow_key4 *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(&k->saddr, saddr, 4);
	memcpy(&k->daddr, daddr, 4);
	k->daddr = shift_flow_key_vip0(k->daddr, proto);
	k->sport = htons(sport);
	k->dport = htons(dport);
}

void harness_key6_of(const __u8 *saddr, const __u8 *daddr, __u16 sport, __u16 dport, __u8 proto,
		     struct shift_flow_key6 *k)
{
	__u32 vip[4];

	memset(k, 0, sizeof(*k));
	memcpy(k->saddr, saddr, 16);
	memcpy(vip, daddr, 16);
	k->vip = shift_flow_key_vip0(shift_flow_vip6(vip), proto);
	k->sport = htons(sport);
	k->dport = htons(dport);
}

void harness_flow_key4(const struct pkt_spec *s, struct shift_flow_key4 *k)
{
	harness_key4_of(s->saddr, s->daddr, s->sport, s->dport, s->proto, k);
}

void harness_flow_key6(const struct pkt_spec *s, struct shift_flow_key6 *k)
{
	harness_key6_of(s->saddr, s->daddr, s->sport, s->dport, s->proto, k);
}

int harness_flow_get(struct harness *h, const struct pkt_spec *s, struct shift_flow *f)
{
	struct shift_flow_key4 k4;
	struct shift_flow_key6 k6;

	memset(f, 0, sizeof(*f));
	if (s->family == 4) {
		harness_flow_key4(s, &k4);
		return bpf_map_lookup_elem(h->m.fd[SHIFT_MAP_FLOWS4], &k4, f) ? -errno : 0;
	}
	harness_flow_key6(s, &k6);
	return bpf_map_lookup_elem(h->m.fd[SHIFT_MAP_FLOWS6], &k6, f) ? -errno : 0;
}

int harness_syn_slots_fd(const struct harness *h)
{
	return bpf_map__fd(h->skel->maps.shift_syns);
}

__u32 harness_syn_slot_idx(const struct harness *h, __u32 hash)
{
	return hash & (bpf_map__max_entries(h->skel->maps.shift_syns) - 1);
}

int harness_syn_slot_get(struct harness *h, const struct pkt_spec *s, struct shift_syn_slot *slot)
{
	__u32 idx = harness_syn_slot_idx(h, harness_hash(s, h->seed));

	memset(slot, 0, sizeof(*slot));
	return bpf_map_lookup_elem(harness_syn_slots_fd(h), &idx, slot) ? -errno : 0;
}

int harness_client_nh_get(struct harness *h, __u32 idx, struct shift_client_nh *e)
{
	memset(e, 0, sizeof(*e));
	return bpf_map_lookup_elem(bpf_map__fd(h->skel->maps.shift_client_nhs), &idx, e) ? -errno :
											   0;
}

/* The words as the datapath loads them from the frame (host order). */
__u32 harness_client_nh_index(__u32 ifindex, const __u8 *smac, const __u8 *dmac)
{
	__u32 s0, d0;
	__u16 s4, d4;

	memcpy(&s0, smac, 4);
	memcpy(&s4, smac + 4, 2);
	memcpy(&d0, dmac, 4);
	memcpy(&d4, dmac + 4, 2);
	return shift_client_nh_index(ifindex, s0, s4 | (__u32)d4 << 16, d0);
}

int harness_flow_put(struct harness *h, const struct pkt_spec *s, const struct shift_flow *f)
{
	struct shift_flow_key4 k4;
	struct shift_flow_key6 k6;

	if (s->family == 4) {
		harness_flow_key4(s, &k4);
		return bpf_map_update_elem(h->m.fd[SHIFT_MAP_FLOWS4], &k4, f, BPF_EXIST) ? -errno :
											   0;
	}
	harness_flow_key6(s, &k6);
	return bpf_map_update_elem(h->m.fd[SHIFT_MAP_FLOWS6], &k6, f, BPF_EXIST) ? -errno : 0;
}

int harness_flow_del(struct harness *h, const struct pkt_spec *s)
{
	struct shift_flow_key4 k4;
	struct shift_flow_key6 k6;

	if (s->family == 4) {
		harness_flow_key4(s, &k4);
		return bpf_map_delete_elem(h->m.fd[SHIFT_MAP_FLOWS4], &k4) ? -errno : 0;
	}
	harness_flow_key6(s, &k6);
	return bpf_map_delete_elem(h->m.fd[SHIFT_MAP_FLOWS6], &k6) ? -errno : 0;
}

__u32 harness_hash(const struct pkt_spec *s, __u32 seed)
{
	__u32 sa[4], da[4];

	memcpy(sa, s->saddr, 16);
	memcpy(da, s->daddr, 16);
	if (s->family == 4)
		return shift_flow_hash4(sa[0], da[0], htons(s->sport), htons(s->dport), s->proto,
					seed);
	return shift_flow_hash6(sa, da, htons(s->sport), htons(s->dport), s->proto, seed);
}

int harness_steer(struct harness *h, enum h_prog prog, const struct pkt_spec *s,
		  const struct topo_backend *bes, __u32 n, int *idx, __u32 *verdict)
{
	return harness_steer_io(h, prog, s, bes, n, idx, verdict, NULL);
}

int harness_steer_io(struct harness *h, enum h_prog prog, const struct pkt_spec *s,
		     const struct topo_backend *bes, __u32 n, int *idx, __u32 *verdict,
		     bool *unchanged)
{
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen = sizeof(out), i;
	struct pkt_info info;
	int err;

	*idx = -1;
	len = pkt_build(s, in, sizeof(in), NULL);
	if (!len)
		return -EINVAL;
	err = harness_run_prog(h, prog, in, len, H_LO_IFINDEX, out, &olen, verdict);
	if (err)
		return err;
	if (unchanged)
		*unchanged = olen == len && !memcmp(in, out, len);
	if (pkt_verify(out, olen, &info, NULL, 0))
		return -EBADMSG;
	for (i = 0; i < n; i++) {
		if (bes[i].family == info.family &&
		    !memcmp(bes[i].addr, info.daddr, info.family == 4 ? 4 : 16) &&
		    bes[i].port == info.dport) {
			*idx = (int)i;
			break;
		}
	}
	return 0;
}

int harness_synack(struct harness *h, enum h_prog prog, const struct pkt_spec *s,
		   const struct topo_backend *be, __u32 *verdict)
{
	struct pkt_spec r = {
		.dmac = MAC_EDGE,
		.smac = { 0x02, 0xbe, 0, 0, 0, 0 },
		.family = s->family,
		.proto = IPPROTO_TCP,
		.sport = be->port,
		.dport = s->sport,
		.ttl = 64,
		.tcp_flags = 0x12, /* SYN | ACK */
		.seq = s->ack - 1,
		.ack = s->seq,
	};
	__u8 in[PKT_MAX], out[PKT_MAX];
	__u32 len, olen = sizeof(out);

	memcpy(r.saddr, be->addr, sizeof(r.saddr));
	memcpy(r.daddr, s->saddr, sizeof(r.daddr));
	len = pkt_build(&r, in, sizeof(in), NULL);
	if (!len)
		return -EINVAL;
	return harness_run_prog(h, prog, in, len, H_LO_IFINDEX, out, &olen, verdict);
}

int harness_handshake(struct harness *h, enum h_prog prog, const struct pkt_spec *s,
		      const struct topo_backend *bes, __u32 n, int *idx)
{
	struct pkt_spec syn = *s;
	__u32 verdict;
	int err;

	syn.tcp_flags = 0x02; /* SYN */
	syn.seq = s->seq - 1;
	syn.payload = 0;
	err = harness_steer(h, prog, &syn, bes, n, idx, &verdict);
	if (err || *idx < 0)
		return err;
	return harness_synack(h, prog == H_BOTH ? H_BOTH : H_BACKEND, s, &bes[*idx], &verdict);
}

int harness_be_stats(struct harness *h, __u32 id, struct shift_backend_stats *s)
{
	return dp_backend_stats(&h->m, id, s);
}

int harness_array_fill(const struct bpf_map *m, __u32 v)
{
	__u32 i, n = bpf_map__max_entries(m);
	int fd = bpf_map__fd(m);

	for (i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, &i, &v, BPF_ANY))
			return -errno;
	return 0;
}

__u32 harness_array_count(const struct bpf_map *m, __u32 v)
{
	__u32 i, got, n = 0, slots = bpf_map__max_entries(m);
	int fd = bpf_map__fd(m);

	for (i = 0; i < slots; i++)
		if (!bpf_map_lookup_elem(fd, &i, &got) && got == v)
			n++;
	return n;
}

__u64 harness_map_count(int fd, __u32 key_size)
{
	__u8 key[64], next[64];
	void *prev = NULL;
	__u64 n = 0;

	if (key_size > sizeof(key))
		return ~0ull;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

/* --- FIB plumbing ------------------------------------------------------------ */

static int write_file(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");
	int err = 0;

	if (!f) {
		err = -errno;
		fprintf(stderr, "harness: %s: %s\n", path, strerror(errno));
		return err;
	}
	if (fputs(val, f) < 0)
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (err)
		fprintf(stderr, "harness: writing %s: %s\n", path, strerror(-err));
	return err;
}

static const char *const fib_cmds[] = {
	"link add shv0 address 02:ed:00:00:0b:00 type veth peer name shv1 address "
	"02:ed:00:00:0c:00",
	"link set shv0 up",
	"link set shv1 up",
	"addr add 10.1.0.1/24 dev shv0",
	"addr add 198.51.100.1/24 dev shv1",
	"addr add 2001:db8:1::1/64 dev shv0 nodad",
	"addr add 2001:db8:c::1/64 dev shv1 nodad",
	"neigh add 10.1.0.18 lladdr 02:be:00:00:00:18 dev shv0 nud permanent",
	"neigh add 2001:db8:1::18 lladdr 02:be:00:00:00:18 dev shv0 nud permanent",
	"neigh add 198.51.100.7 lladdr 02:c1:00:00:00:07 dev shv1 nud permanent",
	"neigh add 2001:db8:c::7 lladdr 02:c1:00:00:00:07 dev shv1 nud permanent",
	/* Clients of many addresses (test_sticky's, bench_flows'): their SYN-ACKs
	 * need a route. */
	"route add 172.16.0.0/12 via 198.51.100.7 dev shv1",
	"route add 100.64.0.0/10 via 198.51.100.7 dev shv1",
};

int fib_env_setup(struct fib_env *e)
{
	FILE *ip;
	size_t i;
	int status, err;

	e->if_be = (int)if_nametoindex("shv0");
	e->if_cl = (int)if_nametoindex("shv1");
	if (e->if_be && e->if_cl)
		return 0;
	/* One `ip -batch` for all the commands: the namespace is ours alone. */
	ip = popen("ip -batch -", "w");
	if (!ip) {
		err = -errno;
		fprintf(stderr, "harness: popen(ip -batch -): %s\n", strerror(errno));
		return err;
	}
	for (i = 0; i < sizeof(fib_cmds) / sizeof(fib_cmds[0]); i++)
		fprintf(ip, "%s\n", fib_cmds[i]);
	status = pclose(ip);
	if (status == -1) {
		err = -errno;
		fprintf(stderr, "harness: pclose(ip): %s\n", strerror(errno));
		return err;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "harness: `ip -batch` failed (status 0x%x)\n", status);
		/* Leave nothing half set up for the next caller. */
		if (system("ip link del shv0 2>/dev/null") == -1)
			fprintf(stderr, "harness: system(): %s\n", strerror(errno));
		return -EIO;
	}
	/* Forwarding on, or bpf_fib_lookup answers "forwarding disabled". */
	err = write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1");
	if (!err)
		err = write_file("/proc/sys/net/ipv6/conf/all/forwarding", "1");
	if (err)
		return err;
	e->if_be = (int)if_nametoindex("shv0");
	e->if_cl = (int)if_nametoindex("shv1");
	if (!e->if_be || !e->if_cl) {
		fprintf(stderr, "harness: shv0/shv1 missing after set-up\n");
		return -ENODEV;
	}
	return 0;
}

int dp_snat_set_raw(struct harness *h, __u32 service_id, const struct shift_snat_cfg *cfg)
{
	return bpf_map_update_elem(h->m.fd[SHIFT_MAP_SNAT_CFG], &service_id, cfg, BPF_ANY) ?
		       -errno :
		       0;
}
