/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test packets: a builder that writes a frame from a spec with every checksum
 * computed from scratch, a parser that reads one back and recomputes its
 * checksums (also from scratch, never incrementally), and a hex dump diff.
 * Shared by the BPF tests and bench_datapath; it never touches BPF.
 */
#ifndef SHIFT_TEST_PKT_H
#define SHIFT_TEST_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

/* Largest frame the tests build (BPF_PROG_TEST_RUN takes up to a page). */
#define PKT_MAX 1514
#define PKT_MAX_EXT 6

/* Addresses are bytes as on the wire, ports are host order. */
struct pkt_spec {
	__u8 dmac[6];
	__u8 smac[6];
	__u16 tpid[2]; /* VLAN tags, outer first; 0 = none */
	__u16 tci[2];
	__u8 family; /* 4, 6, or 0: raw ethertype, then payload bytes */
	__u16 ethertype; /* family 0 only */
	__u8 proto; /* IPPROTO_TCP / UDP / ICMP / ICMPV6 / anything (8-byte stub) */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 ttl; /* TTL or hop limit */
	__u8 tcp_flags;
	__u16 frag; /* IPv4 flags | offset, host order (0x4000 = DF) */
	__u8 ip_opts; /* IPv4 option bytes, multiple of 4, <= 40 */
	__u8 n_ext; /* IPv6 extension headers, in order */
	__u8 ext[PKT_MAX_EXT]; /* their types (0, 43, 44, 60, ...) */
	__u8 ext_hdrlen[PKT_MAX_EXT]; /* their hdrlen fields: (hdrlen + 1) * 8 bytes */
	__u8 tcp_opts; /* TCP option bytes, multiple of 4, <= 40 */
	__u16 payload; /* L4 payload bytes (a fixed pattern) */
	__u8 udp_csum_zero; /* IPv4 UDP without checksum */
	__u8 eth_pad; /* bytes after the IP packet (Ethernet padding) */
	__u32 seq;
	__u32 ack;
};

/* Where the builder put things (offsets from the frame start). */
struct pkt_layout {
	__u32 l3; /* IP header */
	__u32 l4; /* TCP/UDP header (after options / extension headers) */
	__u32 data; /* L4 payload */
	__u32 ip_end; /* end of the IP packet (before padding) */
	__u32 len; /* whole frame */
};

/* Build; returns the frame length, or 0 if the spec does not fit cap. */
__u32 pkt_build(const struct pkt_spec *s, __u8 *buf, __u32 cap, struct pkt_layout *lo);
/* The same with s->payload bytes of payload as its payload (an HTTP request, a
 * TLS record), checksums over them; 0 if it does not fit or does not parse.
 * payload NULL: pkt_build()'s frame, as it is. */
__u32 pkt_build_payload(const struct pkt_spec *s, const void *payload, __u8 *buf, __u32 cap,
			struct pkt_layout *lo);

/* What the parser found (addresses as bytes on the wire, ports host order). */
struct pkt_info {
	__u8 family; /* 4, 6, 0 = not IP */
	__u8 proto; /* final L4 protocol */
	__u8 ttl;
	__u8 is_frag;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 l3;
	__u32 l4;
	__u32 ip_end;
	__u8 dmac[6];
	__u8 smac[6];
};

/*
 * Parse a frame and recompute every checksum from scratch (IPv4 header,
 * TCP/UDP with the pseudo-header, v4 and v6). Returns 0 if the frame parses
 * and all checksums are right; else -1 and a reason in why.
 */
int pkt_verify(const __u8 *p, __u32 len, struct pkt_info *info, char *why, size_t whylen);

/* Recompute every checksum of a frame in place (after editing it); -1 if it
 * does not parse (then whatever could be fixed is). */
int pkt_fix_csums(__u8 *p, __u32 len);

/* A 16-bit field of a frame, network order, as a host number. */
static inline __u16 pkt_get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

/* The Internet checksum of a buffer (one's complement of the folded sum). */
__u16 pkt_csum(const void *data, size_t len, __u32 initial);

/* Name of the header field at offset off of a frame ("ipv4.check", "tcp.dport"). */
const char *pkt_field_at(const __u8 *p, __u32 len, __u32 off);

/* Hex dump of both frames side by side, differing bytes marked; returns the
 * number of differing bytes (a length mismatch counts the extra bytes). */
size_t pkt_hexdiff(FILE *f, const __u8 *exp, __u32 elen, const __u8 *got, __u32 glen);

#endif
