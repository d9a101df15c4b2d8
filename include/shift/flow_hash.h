/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow hash. The very same source is compiled into the BPF datapath and
 * into userspace, so both sides agree bit for bit by construction (and a test
 * checks it against the loaded program).
 *
 * It is MurmurHash3 (x86_32) over the 5-tuple as host-order 32-bit words, so
 * the choice depends only on the tuple and the seed: every edge host of a fleet,
 * whatever its endianness, sends a given flow to the same color and backend.
 *
 *   v4 words: saddr, daddr, sport << 16 | dport, proto
 *   v6 words: saddr[0..3], daddr[0..3], sport << 16 | dport, proto
 *
 * Inputs are in network byte order, as they sit in the packet.
 */
#ifndef SHIFT_FLOW_HASH_H
#define SHIFT_FLOW_HASH_H

#include <linux/types.h>
#include <shift/maps.h>

#ifdef __bpf__
#include <bpf/bpf_endian.h>
#define shift_ntohl(x) bpf_ntohl(x)
#define shift_ntohs(x) bpf_ntohs(x)
#define SHIFT_HASH_INLINE static __always_inline
#else
#include <arpa/inet.h>
#define shift_ntohl(x) ntohl(x)
#define shift_ntohs(x) ntohs(x)
#define SHIFT_HASH_INLINE static inline
#endif

SHIFT_HASH_INLINE __u32 shift_rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

SHIFT_HASH_INLINE __u32 shift_mix_word(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51u;
	k = shift_rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = shift_rotl32(h, 13);
#ifdef __bpf__
	{
		/* h * 5 + c sits on the serial chain through h that every
		 * word extends (ten for IPv6), and the JIT emits an imul for
		 * it. h << 2 and h + c run side by side and one add joins
		 * them; the empty asm keeps the compiler from folding that
		 * back into a multiplication, or into (h + (h << 2)) + c,
		 * three serial steps. */
		__u32 h4 = h << 2, hc = h + 0xe6546b64u;

		asm("" : "+r"(h4), "+r"(hc));
		return h4 + hc;
	}
#else
	return h * 5 + 0xe6546b64u;
#endif
}

SHIFT_HASH_INLINE __u32 shift_fmix32(__u32 h, __u32 len_bytes)
{
	h ^= len_bytes;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

SHIFT_HASH_INLINE __u32 shift_ports_word(__u16 sport_be, __u16 dport_be)
{
	return ((__u32)shift_ntohs(sport_be) << 16) | shift_ntohs(dport_be);
}

SHIFT_HASH_INLINE __u32 shift_flow_hash4(__u32 saddr, __u32 daddr, __u16 sport, __u16 dport,
					 __u8 proto, __u32 seed)
{
	__u32 h = seed;

	h = shift_mix_word(h, shift_ntohl(saddr));
	h = shift_mix_word(h, shift_ntohl(daddr));
	h = shift_mix_word(h, shift_ports_word(sport, dport));
	h = shift_mix_word(h, proto);
	return shift_fmix32(h, 16);
}

SHIFT_HASH_INLINE __u32 shift_flow_hash6(const __u32 *saddr, const __u32 *daddr, __u16 sport,
					 __u16 dport, __u8 proto, __u32 seed)
{
	__u32 h = seed;

	h = shift_mix_word(h, shift_ntohl(saddr[0]));
	h = shift_mix_word(h, shift_ntohl(saddr[1]));
	h = shift_mix_word(h, shift_ntohl(saddr[2]));
	h = shift_mix_word(h, shift_ntohl(saddr[3]));
	h = shift_mix_word(h, shift_ntohl(daddr[0]));
	h = shift_mix_word(h, shift_ntohl(daddr[1]));
	h = shift_mix_word(h, shift_ntohl(daddr[2]));
	h = shift_mix_word(h, shift_ntohl(daddr[3]));
	h = shift_mix_word(h, shift_ports_word(sport, dport));
	h = shift_mix_word(h, proto);
	return shift_fmix32(h, 40);
}

/*
 * The client hash, for client affinity: the source address masked to the
 * service's prefix, mixed with the seed and the prefix length (so /24 and /32
 * views of one address are independent draws). Host-order words like the flow
 * hash; a tag word keeps it from equalling any flow hash by construction.
 *
 *   v4 words: tag 4, prefix, saddr & mask
 *   v6 words: tag 6, prefix, saddr[0..3] & mask
 *
 * Its slice against the weight chooses the color: every connection of one
 * client gets the same color, and raising the weight only adds clients.
 */
SHIFT_HASH_INLINE __u32 shift_prefix_mask(__u32 prefix, __u32 word)
{
	/* Bits of the prefix that fall into 32-bit word `word` (0..3), host order. */
	__u32 bits = prefix > word * 32 ? prefix - word * 32 : 0;

	if (bits >= 32)
		return 0xffffffffu;
	if (!bits)
		return 0;
	return 0xffffffffu << (32 - bits);
}

SHIFT_HASH_INLINE __u32 shift_client_hash4(__u32 saddr, __u32 prefix, __u32 seed)
{
	__u32 h = seed;

	if (prefix > 32)
		prefix = 32;
	h = shift_mix_word(h, 4);
	h = shift_mix_word(h, prefix);
	h = shift_mix_word(h, shift_ntohl(saddr) & shift_prefix_mask(prefix, 0));
	return shift_fmix32(h, 12);
}

SHIFT_HASH_INLINE __u32 shift_client_hash6(const __u32 *saddr, __u32 prefix, __u32 seed)
{
	__u32 h = seed;

	if (prefix > 128)
		prefix = 128;
	h = shift_mix_word(h, 6);
	h = shift_mix_word(h, prefix);
	h = shift_mix_word(h, shift_ntohl(saddr[0]) & shift_prefix_mask(prefix, 0));
	h = shift_mix_word(h, shift_ntohl(saddr[1]) & shift_prefix_mask(prefix, 1));
	h = shift_mix_word(h, shift_ntohl(saddr[2]) & shift_prefix_mask(prefix, 2));
	h = shift_mix_word(h, shift_ntohl(saddr[3]) & shift_prefix_mask(prefix, 3));
	return shift_fmix32(h, 24);
}

/*
 * x / 10000 and x / SHIFT_RING_SIZE for every 32-bit x, by a multiplication
 * (Granlund and Montgomery, "Division by invariant integers using
 * multiplication", 1994): q = floor(x * m / 2^(32 + l)) with
 * m = ceil(2^(32 + l) / d) is exact for all x < 2^32 when
 * m * d - 2^(32 + l) <= 2^l, which the asserts below check. The BPF backend
 * keeps a division by a constant as a division (it calls them cheap), and the
 * JIT turns each into an x86 div wrapped in register moves, two per new flow.
 * Exact, so every flow lands where it did with the % operator.
 */
#define SHIFT_DIV10000_M 3518437209ull /* l = 13 */
_Static_assert(SHIFT_DIV10000_M == ((1ull << 45) + 9999) / 10000 &&
		       SHIFT_DIV10000_M * 10000 - (1ull << 45) <= (1ull << 13),
	       "x / 10000 by multiplication is exact for 32-bit x");

SHIFT_HASH_INLINE __u32 shift_div10000(__u32 x)
{
	return (__u32)(((__u64)x * SHIFT_DIV10000_M) >> 45);
}

SHIFT_HASH_INLINE __u32 shift_mod10000(__u32 x)
{
	return x - shift_div10000(x) * 10000;
}

/* m (l = 14) needs 33 bits, so x * m could overflow 64: x * 2^32 is added as
 * x after the first shift, floor(floor(a / 2^32) / 2^14) = floor(a / 2^46). */
#define SHIFT_DIVRING_M 4295753873ull /* 2^32 + 786577 */
_Static_assert(SHIFT_RING_SIZE == 16381 &&
		       SHIFT_DIVRING_M == ((1ull << 46) + SHIFT_RING_SIZE - 1) / SHIFT_RING_SIZE &&
		       SHIFT_DIVRING_M * SHIFT_RING_SIZE - (1ull << 46) <= (1ull << 14),
	       "x / SHIFT_RING_SIZE by multiplication is exact for 32-bit x");

SHIFT_HASH_INLINE __u32 shift_div_ring(__u32 x)
{
	__u64 lo = ((__u64)x * (SHIFT_DIVRING_M - (1ull << 32))) >> 32;

	return (__u32)(((__u64)x + lo) >> 14);
}

/* Green iff the flow's slice lies under the weight (basis points). */
SHIFT_HASH_INLINE __u32 shift_slice(__u32 h)
{
	return shift_mod10000(h);
}

/*
 * Ring slot inside the chosen pool (SHIFT_RING_SIZE slots). Rehashed so the
 * slot is independent of the color slice: within a slice [0, w) the low
 * digits of h are not uniform mod the ring size.
 */
SHIFT_HASH_INLINE __u32 shift_ring_slot(__u32 h)
{
	__u32 x = shift_fmix32(h ^ 0x9e3779b9u, 4);

	return x - shift_div_ring(x) * SHIFT_RING_SIZE; /* x % SHIFT_RING_SIZE */
}

/*
 * The VIP filter's bit for an address (network order; IPv4 in a[0], rest 0),
 * on every packet's path: a multiplicative hash, whose high bits depend on
 * all of the folded address. A weak hash costs nothing but a false "maybe".
 */
SHIFT_HASH_INLINE __u32 shift_vip_filter_bit(const __u32 *a)
{
	return ((a[0] ^ a[1] ^ a[2] ^ a[3]) * 0x9e3779b1u) >> (32 - SHIFT_VIP_FILTER_LOG2);
}

#endif /* SHIFT_FLOW_HASH_H */
