/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing: Ethernet (+ one VLAN tag), IPv4 (with options), IPv6 (with a
 * bounded extension-header walk), TCP, UDP. Every read is bounds-checked.
 *
 * The parser does not decide drops: it says OK, NOT_OURS (pass untouched) or
 * MALFORMED with a reason. Whether a malformed packet is dropped depends on
 * whether its destination is a VIP, which the caller checks: traffic that is
 * not ours must reach the kernel whatever it looks like.
 *
 * A malformed packet's reason and family ride in the return value, and its
 * destination is read again from the header by whoever needs it: every
 * value a failure hands over in struct pkt is one the compiler stores on
 * each of the parse's exits, the good packet's path included.
 */
#ifndef SHIFT_PARSE_H
#define SHIFT_PARSE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <shift/maps.h>

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IP_MF_ 0x2000
#define IP_OFFSET_ 0x1fff
#define IPV6_EXT_MAX 4

/*
 * A 16-bit length from the packet, with a range the verifier can see. The
 * 6.1 verifier (Debian 12) loses the range of a byte swap and then refuses
 * pointer arithmetic with the result; the asm keeps the compiler from
 * dropping a mask it knows is redundant.
 */
static __always_inline __u32 bound16(__u32 v)
{
	asm volatile("%[v] &= 0xffff" : [v] "+r"(v));
	return v;
}

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_OURS, /* not IP, not TCP/UDP, or too short to know the destination */
	PARSE_MALFORMED, /* destination known, packet broken: parse_reason(), parse_family() */
};

/* A result's kind (enum parse_result), its reason (enum shift_stat) and family. */
static __always_inline int parse_kind(int rc)
{
	return rc & 0xff;
}

static __always_inline __u32 parse_reason(int rc)
{
	return (rc >> 8) & 0xff;
}

static __always_inline __u8 parse_family(int rc)
{
	return (rc >> 16) & 0xff;
}

struct pkt {
	void *l3;
	void *l4; /* TCP or UDP header, fully inside the packet */
	/*
	 * Taken where the protocol is known: the verifier cannot tie a later
	 * "TCP or UDP?" branch back to the bounds check that covered the header.
	 */
	__u16 *l4_check;
	__u16 *l4_sport;
	__u16 *l4_dport;
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u16 l3_len; /* IP datagram length (IPv4 tot_len, IPv6 40 + payload) */
	__u16 l4_hlen; /* TCP header length with options; 8 for UDP */
	__u16 payload_len; /* L4 payload bytes inside the datagram */
	__u16 l3_off; /* offsets from the frame start, for the skb checksum helpers */
	__u16 l4_off;
	__u8 family;
	__u8 proto;
	__u8 tcp_flags; /* TCP flags byte (FIN 0x01 SYN 0x02 RST 0x04 ACK 0x10) */
	__u8 tos; /* IPv4 TOS, for the FIB lookup */
};

#define TCPF_FIN_ 0x01
#define TCPF_SYN_ 0x02
#define TCPF_RST_ 0x04
#define TCPF_ACK_ 0x10

/* p->family is a constant where this is inlined: so is the result. */
static __always_inline int parse_fail(const struct pkt *p, enum shift_stat reason)
{
	return PARSE_MALFORMED | (int)reason << 8 | (int)p->family << 16;
}

/*
 * TCP/UDP header at l4; `room` is the datagram's length from l4 on. The
 * datagram may extend past data_end (an skb's payload in pages): headers are
 * checked against data_end, lengths against the datagram.
 */
static __always_inline int parse_l4(struct pkt *p, void *l4, __u32 room, void *data_end)
{
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		__u32 doff;

		if ((void *)(th + 1) > data_end || room < sizeof(*th))
			return parse_fail(p, SHIFT_STAT_DROP_TRUNCATED);
		doff = th->doff;
		if (doff < 5 || doff * 4 > room)
			return parse_fail(p, SHIFT_STAT_DROP_BAD_LENGTH);
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->l4_check = &th->check;
		p->l4_sport = &th->source;
		p->l4_dport = &th->dest;
		p->l4_hlen = doff * 4;
		p->payload_len = room - doff * 4;
	} else {
		struct udphdr *uh = l4;
		__u32 ulen;

		if ((void *)(uh + 1) > data_end || room < sizeof(*uh))
			return parse_fail(p, SHIFT_STAT_DROP_TRUNCATED);
		ulen = bound16(bpf_ntohs(uh->len));
		if (ulen < sizeof(*uh) || ulen > room)
			return parse_fail(p, SHIFT_STAT_DROP_BAD_LENGTH);
		p->sport = uh->source;
		p->dport = uh->dest;
		p->tcp_flags = 0;
		p->l4_check = &uh->check;
		p->l4_sport = &uh->source;
		p->l4_dport = &uh->dest;
		p->l4_hlen = sizeof(*uh);
		p->payload_len = ulen - sizeof(*uh);
	}
	p->l4 = l4;
	return PARSE_OK;
}

/* l3_room: the frame's length from l3 on (the whole skb, not only its head). */
static __always_inline int parse_ipv4(struct pkt *p, void *l3, __u32 l3_room, void *data_end)
{
	struct iphdr *iph = l3;
	__u32 ihl, tot;

	if ((void *)(iph + 1) > data_end)
		return PARSE_NOT_OURS;
	p->family = SHIFT_AF_INET;
	p->saddr[0] = iph->saddr;
	p->daddr[0] = iph->daddr;
	p->proto = iph->protocol;
	p->tos = iph->tos;

	ihl = iph->ihl;
	if (ihl < 5)
		return parse_fail(p, SHIFT_STAT_DROP_BAD_IHL);
	tot = bound16(bpf_ntohs(iph->tot_len));
	if (tot < ihl * 4 || tot > l3_room)
		return parse_fail(p, SHIFT_STAT_DROP_BAD_LENGTH);
	p->l3_len = tot;
	if (iph->frag_off & bpf_htons(IP_MF_ | IP_OFFSET_))
		return parse_fail(p, SHIFT_STAT_DROP_FRAGMENT);
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return PARSE_NOT_OURS;
	p->l4_off = p->l3_off + ihl * 4;
	return parse_l4(p, l3 + ihl * 4, tot - ihl * 4, data_end);
}

struct ipv6_ext_ {
	__u8 nexthdr;
	__u8 hdrlen;
};

static __always_inline int parse_ipv6(struct pkt *p, void *l3, __u32 l3_room, void *data_end)
{
	struct ipv6hdr *ip6 = l3;
	__u32 off, len;
	void *cur;
	__u8 nh;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return PARSE_NOT_OURS;
	p->family = SHIFT_AF_INET6;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	len = sizeof(*ip6) + bound16(bpf_ntohs(ip6->payload_len));
	p->l3_len = len;
	if (len > l3_room)
		return parse_fail(p, SHIFT_STAT_DROP_BAD_LENGTH);

	nh = ip6->nexthdr;
	cur = ip6 + 1;
	off = sizeof(*ip6);
#pragma unroll
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		struct ipv6_ext_ *ext = cur;

		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS)
			break;
		if ((void *)(ext + 1) > data_end || off + sizeof(*ext) > len)
			return parse_fail(p, SHIFT_STAT_DROP_TRUNCATED);
		nh = ext->nexthdr;
		cur += (ext->hdrlen + 1) * 8;
		off += (ext->hdrlen + 1) * 8;
	}
	p->proto = nh;
	if (nh == IPPROTO_FRAGMENT)
		return parse_fail(p, SHIFT_STAT_DROP_FRAGMENT);
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS)
		return parse_fail(p, SHIFT_STAT_DROP_IPV6_EXT);
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP)
		return PARSE_NOT_OURS;
	if (off > len)
		return parse_fail(p, SHIFT_STAT_DROP_TRUNCATED);
	p->l4_off = p->l3_off + off;
	return parse_l4(p, cur, len - off, data_end);
}

/* Parse from the Ethernet header; len is the whole frame's (see sc_len()). */
static __always_inline int parse_packet(struct pkt *p, void *data, void *data_end, __u32 len)
{
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__u32 l3_off = sizeof(*eth);
	__u16 proto;

	if (l3 > data_end)
		return PARSE_NOT_OURS;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		__u16 *tag = l3;

		if ((void *)(tag + 2) > data_end)
			return PARSE_NOT_OURS;
		proto = tag[1];
		l3 = tag + 2;
		l3_off += 4;
	}
	p->l3 = l3;
	p->l3_off = l3_off;
	if (len < l3_off)
		return PARSE_NOT_OURS;
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(p, l3, len - l3_off, data_end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(p, l3, len - l3_off, data_end);
	return PARSE_NOT_OURS;
}

#endif
