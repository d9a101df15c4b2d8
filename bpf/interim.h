/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP/1.x interim responses (1xx but 101, RFC 9110 15.2) and the final
 * response in one backend segment: a server that writes "100 Continue" or
 * "103 Early Hints" and its answer together, or GRO merging them before a TC
 * hook. signals.h reads a segment's first 12 bytes, the interim status line;
 * the answer would go unseen, its request stay open, and under analysis =
 * auto the backend's keep-alive close count as an early_close. So after an
 * interim status line this finds the next response after the blank line that
 * ends its header, and so on until a final one.
 *
 * Only within one segment: an interim response split across segments leaves
 * the next segment starting inside it, not with a status line, as before.
 */
#ifndef SHIFT_INTERIM_H
#define SHIFT_INTERIM_H

/* Payload bytes searched for the interim responses' ends: a segment of a
 * 1500-byte MTU whole (a larger GRO packet, its first 1.5 KB). A final
 * status line that starts past them goes unseen, as when none follows. */
#define HTTP1_INTERIM_SCAN 1536
/* 16 turns of the loop; 64 made 28, and the verifier walked ~30 % more. */
#define HTTP1_CHUNK 128
/* The loop's bound: every chunk of HTTP1_INTERIM_SCAN, and this many status
 * lines of interim responses after the first. */
#define HTTP1_MAX_INTERIM 4

/*
 * Off the stack, as l7.h's scratch: the callers' chains use most of it.
 * And the loop's position and end in memory, read and written as volatile,
 * not kept in registers: the verifier then sees each turn of the loop below
 * arrive the same way whichever way the last one went, and prunes all but
 * one. Kept in registers, their ranges differ from path to path, and the
 * paths multiply with every turn.
 */
struct http1_scan {
	/* A chunk after the 3 bytes before it: a "\r\n\r\n" across two
	 * chunks is whole in the second. */
	__u8 b[3 + HTTP1_CHUNK];
	__u32 pos; /* payload bytes read */
	__u32 end; /* payload bytes to read */
};

#define SCAN_VAR(s, v) (*(volatile __u32 *)&(s)->v)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http1_scan);
} shift_http1_tmp SEC(".maps");

/* "HTTP/1.x NNN": NNN (100..599), or 0 when pl does not start so. */
static __always_inline __u32 http1_status(const __u8 *pl)
{
	if (pl[0] != 'H' || pl[1] != 'T' || pl[2] != 'T' || pl[3] != 'P' || pl[4] != '/' ||
	    pl[5] != '1' || pl[6] != '.' || pl[8] != ' ')
		return 0;
	if (pl[9] < '1' || pl[9] > '5' || pl[10] < '0' || pl[10] > '9' || pl[11] < '0' ||
	    pl[11] > '9')
		return 0;
	return (pl[9] - '0') * 100 + (pl[10] - '0') * 10 + (pl[11] - '0');
}

/* Not the answer: the request stays open (101 ends it, signals.h). */
static __always_inline int http1_interim(__u32 status)
{
	return status >= 100 && status < 200 && status != 101;
}

/*
 * Where the first header end, "\r\n\r\n", in s->b's first 3 + n bytes
 * ends (an index past its last byte), or -1. A global function: checked
 * once, not once per chunk of the caller's loop.
 */
__noinline int http1_blank_line(struct http1_scan *s, __u32 n)
{
	__u32 i, w;

	if (!s)
		return -1;
	for (i = 0; i < HTTP1_CHUNK; i++) {
		if (i >= n)
			break;
		__builtin_memcpy(&w, &s->b[i], 4);
		if (w == 0x0a0d0a0d)
			return i + 4;
	}
	return -1;
}

/* signals.h: a status line's signals. */
__noinline int backend_signal(struct shift_flow *f, const struct sig_head *h, __u32 n,
			      __u32 tcp_flags);

/*
 * After an interim status line at the start of a backend segment of flow f
 * (its payload at off in the frame; len_flags: the payload's length | the
 * TCP flags << 16): the final response's status line, when the segment has
 * one in its first HTTP1_INTERIM_SCAN bytes, goes to backend_signal() as a
 * first one would. The interim ones on the way count in the backend's 1xx
 * responses, as the first one did. h: room for a status line.
 *
 * The signal call is made here, not by the entry: an entry that branched on
 * what this found would carry both ways through the rest of its program, and
 * 6.1's verifier then walked ~14k instructions more for tc_both than for
 * this nested call (~1.5k).
 */
static __always_inline int http1_final(void *ctx, int tc, struct shift_flow *f, __u32 off,
				       __u32 len_flags, struct sig_head *h)
{
	__u32 zero = 0, len = len_flags & 0xffff, id = f->backend_id, n, k, status;
	struct shift_backend_stats *st;
	struct http1_scan *s;
	int r;

	s = bpf_map_lookup_elem(&shift_http1_tmp, &zero);
	if (!s)
		return 0;
	SCAN_VAR(s, pos) = SHIFT_SIG_HEAD;
	SCAN_VAR(s, end) = len < HTTP1_INTERIM_SCAN ? len : HTTP1_INTERIM_SCAN;
	/* Each turn reads a chunk or one interim response's status line. */
	for (k = 0; k < HTTP1_INTERIM_SCAN / HTTP1_CHUNK + HTTP1_MAX_INTERIM; k++) {
		if (SCAN_VAR(s, pos) >= SCAN_VAR(s, end))
			return 0;
		/* 1..HTTP1_CHUNK in a form 6.1 can bound (see l7_segment()). */
		n = SCAN_VAR(s, end) - SCAN_VAR(s, pos) - 1;
		if (n >= HTTP1_CHUNK)
			n = HTTP1_CHUNK - 1;
		asm volatile("%[n] &= 127" : [n] "+r"(n));
		n += 1;
		/* From 3 bytes back: the status line's last ones, or the last
		 * chunk's, which may start a header end. */
		if (l7_load(ctx, tc, off + SCAN_VAR(s, pos) - 3, s->b, n + 3))
			return 0;
		r = http1_blank_line(s, n);
		if (r < 0) {
			SCAN_VAR(s, pos) += n;
			continue;
		}
		/* The next response: it starts in a later segment, or here. */
		SCAN_VAR(s, pos) += r - 3;
		if (SCAN_VAR(s, pos) + SHIFT_SIG_HEAD > len ||
		    l7_load(ctx, tc, off + SCAN_VAR(s, pos), h->b, SHIFT_SIG_HEAD))
			return 0;
		status = http1_status(h->b);
		if (!status)
			return 0;
		if (!http1_interim(status))
			return backend_signal(f, h, SHIFT_SIG_HEAD, len_flags >> 16);
		st = bpf_map_lookup_elem(&shift_be_stats, &id);
		if (st)
			st->responses[1]++;
		SCAN_VAR(s, pos) += SHIFT_SIG_HEAD;
	}
	return 0;
}

/* The same for each program type: a global function takes its own context. */
__noinline int http1_final_xdp(struct xdp_md *ctx, struct shift_flow *f, __u32 off, __u32 len_flags,
			       struct sig_head *h)
{
	if (!ctx || !f || !h)
		return 0;
	return http1_final(ctx, 0, f, off, len_flags, h);
}

__noinline int http1_final_tc(struct __sk_buff *ctx, struct shift_flow *f, __u32 off,
			      __u32 len_flags, struct sig_head *h)
{
	if (!ctx || !f || !h)
		return 0;
	return http1_final(ctx, 1, f, off, len_flags, h);
}

#endif
