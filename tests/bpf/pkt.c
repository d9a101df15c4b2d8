// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test packet builder and checker. Everything here is written from the RFCs,
 * independently of the datapath: the builder is the oracle for expected
 * output packets, so it must not share code with bpf/.
 */
#include <stdarg.h>
#include <string.h>
#include <netinet/in.h>

#include "pkt.h"

#define ETH_HLEN_ 14
#define TPID_8021Q 0x8100
#define TPID_8021AD 0x88a8
#define ETYPE_IP 0x0800
#define ETYPE_IPV6 0x86dd

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static __u32 sum16(const void *data, size_t len, __u32 sum)
{
	const __u8 *p = data;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (__u32)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (__u32)p[len - 1] << 8;
	return sum;
}

static __u16 fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

__u16 pkt_csum(const void *data, size_t len, __u32 initial)
{
	return fold(sum16(data, len, initial));
}

/* Sum of the pseudo-header (RFC 768 / RFC 793 for v4, RFC 8200 8.1 for v6). */
static __u32 pseudo_sum(int family, const __u8 *saddr, const __u8 *daddr, __u8 proto, __u32 l4len)
{
	__u32 sum = 0;

	if (family == 4) {
		sum = sum16(saddr, 4, sum);
		sum = sum16(daddr, 4, sum);
		sum += proto;
		sum += l4len;
	} else {
		sum = sum16(saddr, 16, sum);
		sum = sum16(daddr, 16, sum);
		sum += l4len >> 16;
		sum += l4len & 0xffff;
		sum += proto;
	}
	return sum;
}

static __u32 l4_hdr_len(const struct pkt_spec *s)
{
	if (s->proto == IPPROTO_TCP)
		return 20u + s->tcp_opts;
	return 8; /* UDP, ICMP, ICMPv6, and an 8-byte stub for anything else */
}

static __u32 ext_len(const struct pkt_spec *s, int i)
{
	return s->ext[i] == 44 ? 8u : ((__u32)s->ext_hdrlen[i] + 1) * 8;
}

static void build_ext(const struct pkt_spec *s, int i, __u8 *p)
{
	__u32 n = ext_len(s, i);

	memset(p, 0, n);
	p[0] = i + 1 < s->n_ext ? s->ext[i + 1] : s->proto;
	switch (s->ext[i]) {
	case 44: /* Fragment: offset 0, M = 1 */
		put16(p + 2, 0x0001);
		put32(p + 4, 0xdeadbeef);
		break;
	case 43: /* Routing type 253 (experimental), segments left 0: dst is final */
		p[1] = s->ext_hdrlen[i];
		p[2] = 253;
		p[3] = 0;
		break;
	default: /* Hop-by-Hop / Destination Options: one PadN filling the rest */
		p[1] = s->ext_hdrlen[i];
		p[2] = 1;
		p[3] = (__u8)(n - 4);
		break;
	}
}

static void build_l4(const struct pkt_spec *s, __u8 *l4, __u32 l4len)
{
	__u32 i;

	if (s->proto == IPPROTO_TCP) {
		__u32 hl = l4_hdr_len(s);

		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put32(l4 + 4, s->seq);
		put32(l4 + 8, s->ack);
		l4[12] = (__u8)((hl / 4) << 4);
		l4[13] = s->tcp_flags;
		put16(l4 + 14, 0xfaf0);
		put16(l4 + 16, 0);
		put16(l4 + 18, 0);
		for (i = 20; i < hl; i++)
			l4[i] = 1; /* NOP */
		if (hl >= 24) { /* MSS 1460 */
			l4[20] = 2;
			l4[21] = 4;
			put16(l4 + 22, 1460);
		}
	} else if (s->proto == IPPROTO_UDP) {
		put16(l4, s->sport);
		put16(l4 + 2, s->dport);
		put16(l4 + 4, (__u16)l4len);
		put16(l4 + 6, 0);
	} else if (s->proto == IPPROTO_ICMP || s->proto == IPPROTO_ICMPV6) {
		l4[0] = s->proto == IPPROTO_ICMP ? 8 : 128; /* echo request */
		l4[1] = 0;
		put16(l4 + 2, 0);
		put16(l4 + 4, s->sport);
		put16(l4 + 6, s->dport);
	} else {
		for (i = 0; i < 8; i++)
			l4[i] = (__u8)(0xa0 + i);
	}
	for (i = l4_hdr_len(s); i < l4len; i++)
		l4[i] = (__u8)(i * 7 + 3);
}

static void l4_csum(const struct pkt_spec *s, __u8 *l4, __u32 l4len)
{
	__u16 c;

	if (s->proto == IPPROTO_TCP) {
		c = pkt_csum(l4, l4len, pseudo_sum(s->family, s->saddr, s->daddr, s->proto, l4len));
		put16(l4 + 16, c);
	} else if (s->proto == IPPROTO_UDP) {
		if (s->family == 4 && s->udp_csum_zero)
			return;
		c = pkt_csum(l4, l4len, pseudo_sum(s->family, s->saddr, s->daddr, s->proto, l4len));
		put16(l4 + 6, c ? c : 0xffff);
	} else if (s->proto == IPPROTO_ICMP) {
		put16(l4 + 2, pkt_csum(l4, l4len, 0));
	} else if (s->proto == IPPROTO_ICMPV6) {
		c = pkt_csum(l4, l4len, pseudo_sum(6, s->saddr, s->daddr, s->proto, l4len));
		put16(l4 + 2, c);
	}
}

__u32 pkt_build(const struct pkt_spec *s, __u8 *buf, __u32 cap, struct pkt_layout *lo)
{
	struct pkt_layout l;
	__u32 off = 12, l4len, iplen, hl = 0, ext_total = 0, i;
	int t;

	memset(&l, 0, sizeof(l));
	l4len = l4_hdr_len(s) + s->payload;
	if (s->family == 4) {
		hl = 20u + s->ip_opts;
		iplen = hl + l4len;
	} else if (s->family == 6) {
		for (t = 0; t < s->n_ext && t < PKT_MAX_EXT; t++)
			ext_total += ext_len(s, t);
		iplen = 40 + ext_total + l4len;
	} else {
		iplen = s->payload;
	}
	if (s->ip_opts > 40 || (s->ip_opts & 3) || s->tcp_opts > 40 || (s->tcp_opts & 3) ||
	    s->n_ext > PKT_MAX_EXT)
		return 0;
	if (14u + 8 + iplen + s->eth_pad > cap)
		return 0;
	memset(buf, 0, cap < PKT_MAX ? cap : PKT_MAX);
	memcpy(buf, s->dmac, 6);
	memcpy(buf + 6, s->smac, 6);
	for (t = 0; t < 2 && s->tpid[t]; t++) {
		put16(buf + off, s->tpid[t]);
		put16(buf + off + 2, s->tci[t]);
		off += 4;
	}
	put16(buf + off, s->family == 4 ? ETYPE_IP : s->family == 6 ? ETYPE_IPV6 : s->ethertype);
	off += 2;
	l.l3 = off;
	if (s->family == 4) {
		__u8 *ip = buf + off;

		ip[0] = (__u8)(0x40 | (hl / 4));
		ip[1] = 0;
		put16(ip + 2, (__u16)iplen);
		put16(ip + 4, 0x1234);
		put16(ip + 6, s->frag);
		ip[8] = s->ttl;
		ip[9] = s->proto;
		memcpy(ip + 12, s->saddr, 4);
		memcpy(ip + 16, s->daddr, 4);
		if (s->ip_opts) {
			/* Router Alert, then NOPs, the last byte End of Options. */
			ip[20] = 0x94;
			ip[21] = 4;
			for (i = 24; i < hl; i++)
				ip[i] = 1;
			if (hl > 24)
				ip[hl - 1] = 0;
		}
		put16(ip + 10, pkt_csum(ip, hl, 0));
		l.l4 = off + hl;
	} else if (s->family == 6) {
		__u8 *ip = buf + off;
		__u32 e = off + 40;

		put32(ip, 0x60000000u | 0x12345);
		put16(ip + 4, (__u16)(iplen - 40));
		ip[6] = s->n_ext ? s->ext[0] : s->proto;
		ip[7] = s->ttl;
		memcpy(ip + 8, s->saddr, 16);
		memcpy(ip + 24, s->daddr, 16);
		for (t = 0; t < s->n_ext; t++) {
			build_ext(s, t, buf + e);
			e += ext_len(s, t);
		}
		l.l4 = e;
	} else {
		for (i = 0; i < iplen; i++)
			buf[off + i] = (__u8)(i * 13 + 5);
		l.l4 = off;
		l.data = off;
		l.ip_end = off + iplen;
		l.len = l.ip_end + s->eth_pad;
		if (lo)
			*lo = l;
		return l.len;
	}
	build_l4(s, buf + l.l4, l4len);
	l4_csum(s, buf + l.l4, l4len);
	l.data = l.l4 + l4_hdr_len(s);
	l.ip_end = l.l4 + l4len;
	l.len = l.ip_end + s->eth_pad;
	if (lo)
		*lo = l;
	return l.len;
}

__u32 pkt_build_payload(const struct pkt_spec *s, const void *payload, __u8 *buf, __u32 cap,
			struct pkt_layout *lo)
{
	struct pkt_layout l;
	__u32 len;

	if (!payload)
		return pkt_build(s, buf, cap, lo);
	len = pkt_build(s, buf, cap, &l);
	if (!len)
		return 0;
	memcpy(buf + l.data, payload, s->payload);
	if (pkt_fix_csums(buf, len))
		return 0;
	if (lo)
		*lo = l;
	return len;
}

/* --- parsing back ------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int why_set(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (why && n) {
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool is_v6_ext(__u8 nh)
{
	return nh == 0 || nh == 43 || nh == 60;
}

static int verify_l4(const __u8 *p, struct pkt_info *in, char *why, size_t n, __u8 *fix)
{
	const __u8 *l4 = p + in->l4;
	__u32 l4len = in->ip_end - in->l4;
	__u8 tmp[PKT_MAX];
	__u16 got, want;
	int cso;

	if (in->proto == IPPROTO_TCP) {
		if (l4len < 20 || (__u32)(l4[12] >> 4) * 4 > l4len || (l4[12] >> 4) < 5)
			return why_set(why, n, "tcp header truncated (%u bytes, doff %u)", l4len,
				       l4[12] >> 4);
		cso = 16;
	} else if (in->proto == IPPROTO_UDP) {
		if (l4len < 8)
			return why_set(why, n, "udp header truncated (%u bytes)", l4len);
		if (pkt_get16(l4 + 4) != l4len)
			return why_set(why, n, "udp.len %u != %u bytes after the IP header",
				       pkt_get16(l4 + 4), l4len);
		cso = 6;
	} else if (in->proto == IPPROTO_ICMP || in->proto == IPPROTO_ICMPV6) {
		if (l4len < 8)
			return why_set(why, n, "icmp truncated (%u bytes)", l4len);
		cso = 2;
	} else {
		return 0;
	}
	in->sport = pkt_get16(l4);
	in->dport = pkt_get16(l4 + 2);
	if (in->proto == IPPROTO_ICMP || in->proto == IPPROTO_ICMPV6) {
		in->sport = 0;
		in->dport = 0;
	}
	got = pkt_get16(l4 + cso);
	if (in->proto == IPPROTO_UDP && in->family == 4 && got == 0)
		return 0; /* no checksum */
	if (l4len > sizeof(tmp))
		return why_set(why, n, "l4 too long %u", l4len);
	/* From scratch: zero the field, sum everything, compare. */
	memcpy(tmp, l4, l4len);
	tmp[cso] = 0;
	tmp[cso + 1] = 0;
	if (in->proto == IPPROTO_ICMP)
		want = pkt_csum(tmp, l4len, 0);
	else
		want = pkt_csum(tmp, l4len,
				pseudo_sum(in->family, in->saddr, in->daddr, in->proto, l4len));
	if (in->proto == IPPROTO_UDP && want == 0)
		want = 0xffff;
	if (fix) {
		put16(fix + in->l4 + cso, want);
		return 0;
	}
	if (got != want)
		return why_set(why, n,
			       in->proto == IPPROTO_TCP ? "tcp.check is 0x%04x, recomputed 0x%04x" :
			       in->proto == IPPROTO_UDP ? "udp.check is 0x%04x, recomputed 0x%04x" :
							  "icmp.check is 0x%04x, recomputed 0x%04x",
			       got, want);
	return 0;
}

/* Parse; verify every checksum from scratch, or (fix != NULL, the same buffer) rewrite them. */
static int parse_check(const __u8 *p, __u32 len, struct pkt_info *info, char *why, size_t n,
		       __u8 *fix)
{
	struct pkt_info in;
	__u32 off = 12;
	__u16 et;
	int t;

	memset(&in, 0, sizeof(in));
	if (why && n)
		why[0] = '\0';
	if (len < ETH_HLEN_)
		return why_set(why, n, "frame of %u bytes is shorter than Ethernet", len);
	memcpy(in.dmac, p, 6);
	memcpy(in.smac, p + 6, 6);
	et = pkt_get16(p + off);
	for (t = 0; t < 2 && (et == TPID_8021Q || et == TPID_8021AD); t++) {
		off += 4;
		if (off + 2 > len)
			return why_set(why, n, "VLAN tag truncated at %u", off);
		et = pkt_get16(p + off);
	}
	off += 2;
	in.l3 = off;
	if (et == ETYPE_IP) {
		__u8 hdr[60];
		__u32 hl, tot;
		__u16 want;

		if (len - off < 20)
			return why_set(why, n, "IPv4 header truncated (%u bytes)", len - off);
		hl = (p[off] & 0xf) * 4u;
		tot = pkt_get16(p + off + 2);
		if ((p[off] >> 4) != 4 || hl < 20 || hl > len - off)
			return why_set(why, n, "bad IPv4 version/IHL byte 0x%02x", p[off]);
		if (tot < hl || tot > len - off)
			return why_set(why, n, "IPv4 tot_len %u, %u bytes there", tot, len - off);
		memcpy(hdr, p + off, hl);
		hdr[10] = hdr[11] = 0;
		want = pkt_csum(hdr, hl, 0);
		if (fix)
			put16(fix + off + 10, want);
		else if (want != pkt_get16(p + off + 10))
			return why_set(why, n, "ipv4.check is 0x%04x, recomputed 0x%04x",
				       pkt_get16(p + off + 10), want);
		in.family = 4;
		in.ttl = p[off + 8];
		in.proto = p[off + 9];
		in.is_frag = (pkt_get16(p + off + 6) & 0x3fff) != 0;
		memcpy(in.saddr, p + off + 12, 4);
		memcpy(in.daddr, p + off + 16, 4);
		in.l4 = off + hl;
		in.ip_end = off + tot;
	} else if (et == ETYPE_IPV6) {
		__u32 plen, e;
		__u8 nh;

		if (len - off < 40)
			return why_set(why, n, "IPv6 header truncated (%u bytes)", len - off);
		plen = pkt_get16(p + off + 4);
		if (plen > len - off - 40)
			return why_set(why, n, "IPv6 payload_len %u, %u bytes there", plen,
				       len - off - 40);
		in.family = 6;
		in.ttl = p[off + 7];
		memcpy(in.saddr, p + off + 8, 16);
		memcpy(in.daddr, p + off + 24, 16);
		in.ip_end = off + 40 + plen;
		nh = p[off + 6];
		e = off + 40;
		for (t = 0; t < 16 && is_v6_ext(nh); t++) {
			if (e + 8 > in.ip_end || e + (p[e + 1] + 1u) * 8 > in.ip_end)
				return why_set(why, n, "IPv6 extension header %u truncated at %u",
					       (unsigned int)t, e);
			nh = p[e];
			e += (p[e + 1] + 1u) * 8;
		}
		if (nh == 44)
			in.is_frag = 1;
		in.proto = nh;
		in.l4 = e;
	} else {
		in.l4 = off;
		in.ip_end = len;
		if (info)
			*info = in;
		return 0;
	}
	if (!in.is_frag && verify_l4(p, &in, why, n, fix))
		return -1;
	if (info)
		*info = in;
	return 0;
}

int pkt_verify(const __u8 *p, __u32 len, struct pkt_info *info, char *why, size_t n)
{
	return parse_check(p, len, info, why, n, NULL);
}

int pkt_fix_csums(__u8 *p, __u32 len)
{
	return parse_check(p, len, NULL, NULL, 0, p);
}

/* --- describing and diffing ----------------------------------------------- */

struct field {
	__u8 off;
	__u8 len;
	const char *name;
};

static const struct field v4_fields[] = {
	{ 0, 1, "ipv4.ver_ihl" },  { 1, 1, "ipv4.tos" },      { 2, 2, "ipv4.tot_len" },
	{ 4, 2, "ipv4.id" },	   { 6, 2, "ipv4.frag_off" }, { 8, 1, "ipv4.ttl" },
	{ 9, 1, "ipv4.protocol" }, { 10, 2, "ipv4.check" },   { 12, 4, "ipv4.saddr" },
	{ 16, 4, "ipv4.daddr" },
};

static const struct field v6_fields[] = {
	{ 0, 4, "ipv6.ver_tc_flow" }, { 4, 2, "ipv6.payload_len" }, { 6, 1, "ipv6.nexthdr" },
	{ 7, 1, "ipv6.hop_limit" },   { 8, 16, "ipv6.saddr" },	    { 24, 16, "ipv6.daddr" },
};

static const struct field tcp_fields[] = {
	{ 0, 2, "tcp.sport" },	 { 2, 2, "tcp.dport" },	 { 4, 4, "tcp.seq" },
	{ 8, 4, "tcp.ack" },	 { 12, 1, "tcp.doff" },	 { 13, 1, "tcp.flags" },
	{ 14, 2, "tcp.window" }, { 16, 2, "tcp.check" }, { 18, 2, "tcp.urg" },
};

static const struct field udp_fields[] = {
	{ 0, 2, "udp.sport" },
	{ 2, 2, "udp.dport" },
	{ 4, 2, "udp.len" },
	{ 6, 2, "udp.check" },
};

static const char *lookup(const struct field *f, size_t n, __u32 rel, const char *dflt)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (rel >= f[i].off && rel < (__u32)f[i].off + f[i].len)
			return f[i].name;
	return dflt;
}

const char *pkt_field_at(const __u8 *p, __u32 len, __u32 off)
{
	struct pkt_info in;

	if (off < 6)
		return "eth.dst";
	if (off < 12)
		return "eth.src";
	/* Parse loosely: a frame that fails the checksums still has a layout. */
	if (pkt_verify(p, len, &in, NULL, 0) && in.l3 == 0) {
		__u32 o = 12;

		while (o + 2 <= len &&
		       (pkt_get16(p + o) == TPID_8021Q || pkt_get16(p + o) == TPID_8021AD))
			o += 4;
		in.l3 = o + 2;
		in.family = o + 2 <= len ? (pkt_get16(p + o) == ETYPE_IP   ? 4 :
					    pkt_get16(p + o) == ETYPE_IPV6 ? 6 :
									     0) :
					   0;
		in.l4 = in.family == 4 && in.l3 < len ? in.l3 + (p[in.l3] & 0xf) * 4u :
			in.family == 6		      ? in.l3 + 40 :
							in.l3;
		in.proto = in.family == 4 && in.l3 + 10 <= len ? p[in.l3 + 9] :
			   in.family == 6 && in.l3 + 7 <= len  ? p[in.l3 + 6] :
								 0;
		in.ip_end = len;
	}
	if (off < in.l3 - 2)
		return "vlan";
	if (off < in.l3)
		return "eth.type";
	if (in.family == 4 && off < in.l3 + 20)
		return lookup(v4_fields, sizeof(v4_fields) / sizeof(v4_fields[0]), off - in.l3,
			      "ipv4");
	if (in.family == 4 && off < in.l4)
		return "ipv4.options";
	if (in.family == 6 && off < in.l3 + 40)
		return lookup(v6_fields, sizeof(v6_fields) / sizeof(v6_fields[0]), off - in.l3,
			      "ipv6");
	if (in.family == 6 && off < in.l4)
		return "ipv6.ext";
	if (in.ip_end && off >= in.ip_end)
		return "padding";
	if (in.proto == IPPROTO_TCP && off < in.l4 + 20)
		return lookup(tcp_fields, sizeof(tcp_fields) / sizeof(tcp_fields[0]), off - in.l4,
			      "tcp");
	if (in.proto == IPPROTO_UDP && off < in.l4 + 8)
		return lookup(udp_fields, sizeof(udp_fields) / sizeof(udp_fields[0]), off - in.l4,
			      "udp");
	return "payload";
}

static void hex_line(FILE *f, const __u8 *p, __u32 len, __u32 start, const __u8 *other, __u32 olen)
{
	__u32 i;

	for (i = start; i < start + 16; i++) {
		if (i < len)
			fprintf(f, "%s%02x", (i >= olen || other[i] != p[i]) ? "*" : " ", p[i]);
		else
			fprintf(f, "   ");
	}
}

size_t pkt_hexdiff(FILE *f, const __u8 *exp, __u32 elen, const __u8 *got, __u32 glen)
{
	__u32 max = elen > glen ? elen : glen, off, i, shown = 0;
	size_t ndiff = 0;

	for (i = 0; i < max; i++)
		if (i >= elen || i >= glen || exp[i] != got[i])
			ndiff++;
	fprintf(f, "      expected %u bytes, got %u bytes, %zu differ (* marks them)\n", elen, glen,
		ndiff);
	fprintf(f, "      off   %-48s   %s\n", "expected", "got");
	for (off = 0; off < max; off += 16) {
		fprintf(f, "      %04x ", off);
		hex_line(f, exp, elen, off, got, glen);
		fprintf(f, " | ");
		hex_line(f, got, glen, off, exp, elen);
		fprintf(f, "\n");
	}
	for (i = 0; i < max && shown < 8; i++) {
		if (i < elen && i < glen && exp[i] == got[i])
			continue;
		char e[8] = "none", g[8] = "none";

		if (i < elen)
			snprintf(e, sizeof(e), "0x%02x", exp[i]);
		if (i < glen)
			snprintf(g, sizeof(g), "0x%02x", got[i]);
		fprintf(f, "      byte %u (%s): expected %s, got %s\n", i,
			pkt_field_at(i < elen ? exp : got, i < elen ? elen : glen, i), e, g);
		shown++;
	}
	return ndiff;
}
