/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * analysis = auto (SPEC "Analysis of traffic shift cannot read"): what a flow
 * carries decides what one request is. The client's first payload classifies
 * the flow (enum shift_app in app_flags):
 *   an HTTP/1.x request line -> HTTP/1.x, its status line read by signals.h;
 *   a TLS handshake record   -> TLS: one request = one client application-data
 *                               record answered by the backend's first one;
 *                               errors: an alert, a handshake never answered,
 *                               a backend FIN with a request open;
 *   the HTTP/2 preface       -> cleartext HTTP/2: :status of HEADERS frames
 *                               through the HPACK static table;
 *   anything else            -> TCP: the connection is the request, counted
 *                               once (SHIFT_SAMPLE_TCP) with its connect latency.
 * So does a backend that speaks first, or a client that closes without a word.
 *
 * TLS records and HTTP/2 frames span TCP segments, several share one, and the
 * bytes of an encrypted record can look like anything, a record header
 * included. So a header is only read where the previous one said the next one
 * starts: the entry keeps that sequence number per direction (next_hdr). A
 * segment wholly inside a record is skipped; one that starts past an unread
 * header or that splits one ends the reading of the flow (SHIFT_APP_LOST): a
 * wrong boundary would turn ciphertext into alerts.
 *
 * The entries make one call per segment of an auto flow, to a global
 * function (see struct sig_head in signals.h) of the program's context, the
 * entry and scalars: l7_xdp() or l7_tc(). It copies what it reads (the
 * payload's first bytes, each record or frame header) to its stack with the
 * load-bytes helper, so no packet range is tracked at all, and hands each
 * header to another global, l7_header(). Each is verified once, whatever
 * path of the entry reaches it.
 */
#ifndef SHIFT_L7_H
#define SHIFT_L7_H

/* Included by signals.h after its sample helpers. */

#define TLS_CCS 20
#define TLS_ALERT 21
#define TLS_HANDSHAKE 22
#define TLS_APPDATA 23
#define TLS_HDR 5
/* A TLS 1.3 alert, encrypted: 2 bytes + the inner type + a 16-byte AEAD tag.
 * Nothing else is that short: an HTTP request alone is longer. */
#define TLS13_ALERT_LEN 19
/* 2^14 plaintext + the most any cipher adds (RFC 8446 5.2 allows 2^14 + 256;
 * TLS 1.2 CBC with padding and MAC up to 2^14 + 2048). */
#define TLS_MAX_RECORD (16384 + 2048)

#define H2_PREFACE_LEN 24
#define H2_HDR 9
#define H2_HEADERS 1
#define H2_RST_STREAM 3
#define H2_GOAWAY 7
#define H2_CANCEL 8 /* RST_STREAM's error code: the stream is not wanted any more */
#define H2_F_END_STREAM 0x1
#define H2_F_PADDED 0x8
#define H2_F_PRIORITY 0x20
/* "PRI " of "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", read as a little-endian word. */
#define H2_PRI_WORD 0x20495250

/* Headers read per segment; a segment with more is given up (LOST). A
 * 1500-byte segment of HTTP/2 holds a handful of small frames. */
#define L7_MAX_HDRS 8
/* Bytes copied per header: an HTTP/2 frame header (9), its pad length and
 * priority fields (6) and the first 6 bytes of its header block. */
#define L7_BUF 24

struct l7_buf {
	__u8 b[L7_BUF];
};

/*
 * The reader's working state, off the stack: the entry programs use most of
 * its 512 bytes, and a global function's frame adds to theirs. pend: what a
 * segment's records answered, sampled after its reading loop (a sample's
 * branches inside the loop multiplied the verifier's paths by every
 * iteration). Low byte: answers, second byte: errors, bits 16..31: the last
 * status.
 */
struct l7_scratch {
	struct l7_buf b;
	__u32 pos, n, off, seq, dir, pend;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7_scratch);
} shift_l7_tmp SEC(".maps");

/* What the entry does after l7_client/l7_backend. */
enum l7_next {
	L7_NONE = 0,
	L7_READ, /* walk the segment's record/frame headers (l7_read_*) */
	L7_HTTP1, /* backend: signals.h reads the HTTP/1.x status line */
	L7_AFTER, /* the entry calls l7_after(): samples, then a backend FIN */
};

static __always_inline __u32 l7_app(const struct shift_flow *f)
{
	return f->app_flags & SHIFT_AF_APP_MASK;
}

static __always_inline void l7_set_app(struct shift_flow *f, __u32 app)
{
	f->app_flags = (f->app_flags & ~SHIFT_AF_APP_MASK) | (app & SHIFT_AF_APP_MASK);
}

/*
 * A new entry of an auto service; connlat: the client's SYN to its first ACK
 * (the SYN slot's time), kept in req_ns until the flow is classified.
 */
__noinline int l7_flow_init(struct shift_flow *f, __u32 svc_flags, __u64 connlat)
{
	if (!f)
		return 0;
	if (svc_flags & SHIFT_SVC_F_HTTP)
		f->state = SHIFT_FS_SVC_HTTP;
	if (!(svc_flags & SHIFT_SVC_F_AUTO)) {
		/* It held the handshake's time: no request is open yet. */
		f->req_ns = 0;
		return 0;
	}
	f->app_flags = SHIFT_APP_NEW;
	/* Nonsense from a slot reused meanwhile: not timed. */
	f->req_ns = connlat < 60ull * 1000000000 ? connlat : 0;
	return 0;
}

static __always_inline void l7_take_connlat(struct shift_flow *f)
{
	if (l7_app(f) == SHIFT_APP_NEW)
		f->req_ns = 0;
}

/* Classified as plain TCP: the connection is one request. */
static __always_inline void l7_tcp(struct shift_flow *f)
{
	__u64 lat = l7_app(f) == SHIFT_APP_NEW ? f->req_ns : 0;

	l7_take_connlat(f);
	l7_set_app(f, SHIFT_APP_TCP);
	emit_sample(f, SHIFT_SAMPLE_TCP, bpf_ktime_get_ns(), lat, 0, 0);
}

/* A FIN from the backend with a request open: it was never answered. */
static __always_inline void l7_close_unanswered(struct shift_flow *f)
{
	__u64 now, lat;

	if (!f->req_ns)
		return;
	now = bpf_ktime_get_ns();
	lat = now > f->req_ns ? now - f->req_ns : 0;
	f->req_ns = 0;
	signal_error(f, SHIFT_ERR_EARLY_CLOSE, now, lat, 0);
}

/* How long a client waits on its hello before its giving up speaks against
 * the backend. */
#define TLS_HELLO_PATIENCE_NS (3ull * 1000000000ull)

/*
 * TLS: a FIN or RST from either side: a hello never answered, or a request
 * dropped. The backend's close before its handshake is its failure. The
 * client's only after it waited TLS_HELLO_PATIENCE_NS (req_ns holds the
 * hello's time until the server's first record): sooner, it is a scanner, a
 * cancelled page, or a client charging green errors it did not cause.
 */
static __always_inline void tls_close(struct shift_flow *f, int from_backend)
{
	__u64 now;

	if ((f->app_flags & SHIFT_AF_HELLO) && !(f->app_flags & SHIFT_AF_SRV_HS)) {
		now = bpf_ktime_get_ns();
		f->app_flags |= SHIFT_AF_SRV_HS; /* once */
		if (from_backend || (f->req_ns && now - f->req_ns >= TLS_HELLO_PATIENCE_NS))
			signal_error(f, SHIFT_ERR_TLS_HANDSHAKE, now, 0, 0);
		f->req_ns = 0;
		return;
	}
	if (from_backend)
		l7_close_unanswered(f);
}

/* The client's first payload: a TLS handshake record (its hello). */
static __always_inline int tls_is_hello(const __u8 *pl)
{
	return pl[0] == TLS_HANDSHAKE && pl[1] == 3 && pl[2] <= 4;
}

/*
 * A client segment of an auto flow (not a SYN); h holds its first hn bytes
 * (flags_hn = TCP flags | hn << 16), n its payload length, seq its sequence
 * number. Returns enum l7_next.
 */
static __always_inline int l7_client(struct shift_flow *f, const struct l7_buf *h, __u32 n,
				     __u32 flags_hn, __u32 seq)
{
	__u32 hn = flags_hn >> 16, app, w;

	app = l7_app(f);
	if (flags_hn & (TCPF_FIN_ | TCPF_RST_)) {
		f->state |= SHIFT_FS_CLI_CLOSED;
		if (app == SHIFT_APP_NEW && !n)
			l7_tcp(f);
		else if (app == SHIFT_APP_TLS)
			tls_close(f, 0);
	}
	if (!n)
		return L7_NONE;
	switch (app) {
	case SHIFT_APP_NEW:
		if (hn < 4) {
			l7_tcp(f);
			return L7_NONE;
		}
		__builtin_memcpy(&w, h->b, 4);
		l7_take_connlat(f);
		if (is_http_request(w)) {
			l7_set_app(f, SHIFT_APP_HTTP1);
			f->state |= SHIFT_FS_HTTP;
			f->req_ns = bpf_ktime_get_ns();
		} else if (tls_is_hello(h->b)) {
			l7_set_app(f, SHIFT_APP_TLS);
			f->app_flags |= SHIFT_AF_HELLO;
			f->req_ns = bpf_ktime_get_ns(); /* the hello's, for tls_close() */
			f->next_hdr[0] = seq;
			return L7_READ;
		} else if (w == H2_PRI_WORD) {
			l7_set_app(f, SHIFT_APP_H2);
			f->next_hdr[0] = seq + H2_PREFACE_LEN;
			return L7_READ;
		} else {
			l7_tcp(f);
		}
		return L7_NONE;
	case SHIFT_APP_HTTP1:
		if (f->req_ns || hn < 4)
			return L7_NONE;
		__builtin_memcpy(&w, h->b, 4);
		if (is_http_request(w))
			f->req_ns = bpf_ktime_get_ns();
		return L7_NONE;
	case SHIFT_APP_TLS:
	case SHIFT_APP_H2:
		return L7_READ;
	}
	return L7_NONE;
}

/* A backend segment of an auto flow, neither SYN nor RST (those are signals.h's). */
static __always_inline int l7_backend(struct shift_flow *f, const struct l7_buf *h, __u32 n,
				      __u32 flags_hn, __u32 seq)
{
	__u32 hn = flags_hn >> 16;
	const __u8 *b;

	if (n && !(f->app_flags & SHIFT_AF_BE_SYNC)) {
		f->next_hdr[1] = seq;
		f->app_flags |= SHIFT_AF_BE_SYNC;
	}
	switch (l7_app(f)) {
	case SHIFT_APP_NEW:
		/* The backend speaks first: not a protocol we read. */
		if (n)
			l7_tcp(f);
		return L7_NONE;
	case SHIFT_APP_HTTP1:
		b = h->b;
		if (n && !(f->state & SHIFT_FS_ANSWERED)) {
			if (hn < 5 || b[0] != 'H' || b[1] != 'T' || b[2] != 'T' || b[3] != 'P' ||
			    b[4] != '/') {
				/* An HTTP request answered in something else. */
				f->req_ns = 0;
				f->state &= ~SHIFT_FS_HTTP;
				l7_tcp(f);
				return L7_NONE;
			}
			f->state |= SHIFT_FS_ANSWERED;
		}
		if ((flags_hn & TCPF_FIN_) && !(f->state & SHIFT_FS_CLI_CLOSED) && !n)
			l7_close_unanswered(f);
		return L7_HTTP1;
	case SHIFT_APP_TLS:
	case SHIFT_APP_H2:
		return n ? L7_READ : L7_NONE;
	}
	return L7_NONE;
}

/* A backend FIN, after its segment was read: a request left unanswered. */
static __always_inline void l7_fin(struct shift_flow *f)
{
	if (f->state & SHIFT_FS_CLI_CLOSED)
		return;
	if (l7_app(f) == SHIFT_APP_TLS)
		tls_close(f, 1);
	else if (l7_app(f) == SHIFT_APP_H2)
		l7_close_unanswered(f);
}

#define PEND_OK(p) (*(p)&0xff)
#define PEND_ERR(p) ((*(p) >> 8) & 0xff)
#define PEND_ADD_OK(p) (*(p) += PEND_OK(p) < 15 ? 1 : 0)
#define PEND_ADD_ERR(p) (*(p) += PEND_ERR(p) < 15 ? 0x100 : 0)

/* A record header: known type, version 3.x, sane length. */
static __always_inline int tls_header_ok(const __u8 *h)
{
	__u32 len = ((__u32)h[3] << 8) | h[4];

	return h[0] >= TLS_CCS && h[0] <= TLS_APPDATA && h[1] == 3 && h[2] <= 4 &&
	       len <= TLS_MAX_RECORD;
}

/* One TLS record header (and the alert level after it, when avail says so). */
static __always_inline int tls_header(struct shift_flow *f, __u32 *pend, const __u8 *h, __u32 avail,
				      __u32 from_backend, __u64 now)
{
	__u32 len;
	__u8 type;
	int fatal;

	if (avail < TLS_HDR || !tls_header_ok(h))
		return -1;
	len = ((__u32)h[3] << 8) | h[4];
	type = h[0];
	fatal = type == TLS_ALERT && len == 2 && avail > TLS_HDR && h[TLS_HDR] == 2;
	if (type == TLS_APPDATA && len == TLS13_ALERT_LEN && (f->app_flags & SHIFT_AF_CLI_APP))
		type = TLS_ALERT;
	if (!from_backend) {
		if (type != TLS_APPDATA)
			return TLS_HDR + len;
		f->app_flags |= SHIFT_AF_CLI_APP;
		if (f->app_flags & SHIFT_AF_SKIP_FIN)
			/* TLS 1.3: this one is the client's Finished. */
			f->app_flags &= ~SHIFT_AF_SKIP_FIN;
		else if (!f->req_ns)
			f->req_ns = now;
		return TLS_HDR + len;
	}
	/* The server's first record answers the hello: its time times nothing. */
	if (!(f->app_flags & SHIFT_AF_SRV_HS))
		f->req_ns = 0;
	if (type == TLS_HANDSHAKE || type == TLS_CCS) {
		f->app_flags |= SHIFT_AF_SRV_HS;
	} else if (type == TLS_ALERT) {
		/* A close_notify after the answer is how TLS says goodbye. */
		if (fatal || (f->req_ns && !PEND_OK(pend)) || !(f->app_flags & SHIFT_AF_SRV_HS))
			PEND_ADD_ERR(pend);
		/* An answer all the same: the close is not a second error. */
		f->app_flags |= SHIFT_AF_SRV_HS;
	} else if (!(f->app_flags & SHIFT_AF_CLI_APP)) {
		/* TLS 1.3: the server's encrypted handshake. */
		f->app_flags |= SHIFT_AF_SRV_HS | SHIFT_AF_SKIP_FIN;
	} else if (f->req_ns && !PEND_OK(pend) && !PEND_ERR(pend)) {
		f->state |= SHIFT_FS_ANSWERED;
		PEND_ADD_OK(pend);
	}
	return TLS_HDR + len;
}

/* After the loop: the answer to the open request, or the alert that ended it. */
static __always_inline void tls_samples(struct shift_flow *f, __u32 pend, __u64 now)
{
	__u64 lat;

	if (!pend)
		return;
	lat = f->req_ns && now > f->req_ns ? now - f->req_ns : 0;
	f->req_ns = 0;
	if (pend & 0xff) {
		record_latency(f->backend_id, SHIFT_LAT_RESPONSE, lat);
		emit_sample(f, SHIFT_SAMPLE_RESPONSE, now, lat, 0, 0);
		lat = 0;
	}
	if (pend & 0xff00)
		signal_error(f, SHIFT_ERR_TLS_ALERT, now, lat, 0);
}

/* HPACK static table entries 8..14 are ":status" with these values. */
static __always_inline __u16 h2_static_status(__u8 b)
{
	switch (b) {
	case 0x88:
		return 200;
	case 0x89:
		return 204;
	case 0x8a:
		return 206;
	case 0x8b:
		return 304;
	case 0x8c:
		return 400;
	case 0x8d:
		return 404;
	case 0x8e:
		return 500;
	}
	return 0;
}

static __always_inline int l7_digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/* :status at the start of a header block b[0..5]; 0 if not readable. */
static __always_inline __u16 h2_status(const __u8 *b)
{
	__u8 x = b[0];

	/* A dynamic table size update may come first (RFC 7541 4.2). */
	if ((x & 0xe0) == 0x20 && x != 0x3f) {
		b++;
		x = b[0];
	}
	if (x & 0x80)
		return h2_static_status(x);
	/* Literal with the static name 8 (":status"): with indexing (0x48),
	 * without (0x08), never indexed (0x18); a 3-byte plain value. */
	if ((x == 0x48 || x == 0x08 || x == 0x18) && b[1] == 3 && l7_digit(b[2]) &&
	    l7_digit(b[3]) && l7_digit(b[4]))
		return (b[2] - '0') * 100 + (b[3] - '0') * 10 + (b[4] - '0');
	return 0;
}

/* One response read from a HEADERS frame (status 0: none readable). */
static __always_inline void h2_response(struct shift_flow *f, __u32 *pend, __u16 status)
{
	struct shift_backend_stats *st;
	__u32 cls, id = f->backend_id; /* 6.1 takes a key from the stack, not from f */

	if (status >= 100 && status < 200)
		return; /* informational: the answer is still to come */
	f->state |= SHIFT_FS_ANSWERED;
	if (status >= 200 && status < 600) {
		/* Not status / 100: the verifier does not bound a division. */
		cls = status >= 500 ? 5 : status >= 400 ? 4 : status >= 300 ? 3 : 2;
		st = bpf_map_lookup_elem(&shift_be_stats, &id);
		if (st && cls < 6) {
			asm volatile("%[c] &= 7" : [c] "+r"(cls));
			st->responses[cls]++;
		}
	}
	if (status >= 500 && status < 600)
		PEND_ADD_ERR(pend);
	else
		PEND_ADD_OK(pend);
	*pend = (*pend & 0xffff) | (__u32)status << 16;
}

/*
 * RST_STREAM (error code after the header) or GOAWAY (after the last stream
 * id). The backend's, with an error code other than NO_ERROR (or CANCEL for a
 * stream): a request it failed without a status (a handler's panic is
 * INTERNAL_ERROR), an error like a 5xx. Its graceful GOAWAY, or the client's
 * cancel: the open timer times nothing any more (the connection's one timer,
 * of the first request opened while none was).
 */
static __always_inline void h2_abort(struct shift_flow *f, __u32 *pend, const __u8 *h, __u32 len,
				     __u32 avail, __u32 from_backend)
{
	__u32 at = h[3] == H2_RST_STREAM ? H2_HDR : H2_HDR + 4, code;

	if (len < at - H2_HDR + 4 || avail < at + 4)
		return;
	code = (__u32)h[at] << 24 | (__u32)h[at + 1] << 16 | (__u32)h[at + 2] << 8 | h[at + 3];
	if (from_backend && code && !(h[3] == H2_RST_STREAM && code == H2_CANCEL)) {
		f->state |= SHIFT_FS_ANSWERED;
		PEND_ADD_ERR(pend);
	} else if (!from_backend || h[3] == H2_GOAWAY) {
		f->req_ns = 0;
	}
}

/* One HTTP/2 frame header (with what follows it in the copy). */
static __always_inline int h2_header(struct shift_flow *f, __u32 *pend, const __u8 *h, __u32 avail,
				     __u32 from_backend, __u64 now)
{
	__u32 len, skip;
	__u16 status = 0;
	__u8 fl;

	/* The reserved bit is never sent: not a frame header. */
	if (avail < H2_HDR || (h[5] & 0x80))
		return -1;
	len = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
	fl = h[4];
	if (h[3] == H2_RST_STREAM || h[3] == H2_GOAWAY) {
		h2_abort(f, pend, h, len, avail, from_backend);
		return H2_HDR + len;
	}
	if (h[3] != H2_HEADERS)
		return H2_HDR + len;
	if (!from_backend) {
		if (!f->req_ns)
			f->req_ns = now;
		return H2_HDR + len;
	}
	skip = ((fl & H2_F_PADDED) ? 1 : 0) + ((fl & H2_F_PRIORITY) ? 5 : 0);
	if (avail == L7_BUF && skip + 6 <= len)
		status = h2_status(h + H2_HDR + skip);
	else if (skip + 1 <= len && H2_HDR + skip + 1 <= avail)
		status = h2_static_status(h[(H2_HDR + skip) & 15]); /* a block of one byte */
	/* Without a :status and ending the stream: trailers. */
	if (status || !(fl & H2_F_END_STREAM))
		h2_response(f, pend, status);
	return H2_HDR + len;
}

/*
 * After the loop: one sample per response, the first with the latency of the
 * open request; 5xx first, so a burst of errors is not hidden behind
 * successes.
 */
static __always_inline void h2_samples(struct shift_flow *f, __u32 pend, __u64 now)
{
	__u32 nok = pend & 0xff, nerr = (pend >> 8) & 0xff, i;
	__u16 status = pend >> 16;
	__u64 lat;

	if (!(pend & 0xffff))
		return;
	lat = f->req_ns && now > f->req_ns ? now - f->req_ns : 0;
	f->req_ns = 0;
	if (lat)
		record_latency(f->backend_id, SHIFT_LAT_RESPONSE, lat);
	for (i = 0; i < 15; i++) {
		if (i >= nerr)
			break;
		signal_error(f, SHIFT_ERR_HTTP5XX, now, lat, status >= 500 ? status : 500);
		lat = 0;
	}
	for (i = 0; i < 15; i++) {
		if (i >= nok)
			break;
		emit_sample(f, SHIFT_SAMPLE_RESPONSE, now, lat, status < 500 ? status : 0, 0);
		lat = 0;
	}
}

/* off_dir: the payload's offset in the frame | 1 << 31 for the backend's side. */
#define L7_DIR_BACKEND (1u << 31)

static __always_inline long l7_load(void *ctx, int tc, __u32 off, void *to, __u32 len)
{
	if (tc)
		return bpf_skb_load_bytes(ctx, off, to, len);
	return bpf_xdp_load_bytes(ctx, off, to, len);
}

/* One header copied to s->b (avail bytes real): the bytes to the next
 * header, or -1 when this is not one. */
__noinline int l7_header(struct shift_flow *f, struct l7_scratch *s, __u32 avail)
{
	if (!f || !s)
		return -1;
	if (l7_app(f) == SHIFT_APP_TLS)
		return tls_header(f, &s->pend, s->b.b, avail, s->dir, bpf_ktime_get_ns());
	if (l7_app(f) == SHIFT_APP_H2)
		return h2_header(f, &s->pend, s->b.b, avail, s->dir, bpf_ktime_get_ns());
	return -1;
}

/* First payload bytes in s->b (hn of them): classify, keep the protocol's state. */
__noinline int l7_classify(struct shift_flow *f, struct l7_scratch *s, __u32 flags_hn)
{
	if (!f || !s)
		return L7_NONE;
	if (s->dir)
		return l7_backend(f, &s->b, s->n, flags_hn, s->seq);
	return l7_client(f, &s->b, s->n, flags_hn, s->seq);
}

/*
 * After l7_xdp/l7_tc said L7_AFTER, called by the entry itself (a nested
 * call would add this frame to theirs): the segment's samples, then what a
 * backend FIN means. dir_fin: 1 for the backend's side | 2 for a FIN.
 */
__noinline int l7_after(struct shift_flow *f, __u32 dir_fin)
{
	__u32 zero = 0, pend;
	struct l7_scratch *s;
	__u64 now;

	if (!f)
		return 0;
	s = bpf_map_lookup_elem(&shift_l7_tmp, &zero);
	if (s && s->pend) {
		pend = s->pend;
		s->pend = 0;
		now = bpf_ktime_get_ns();
		if (l7_app(f) == SHIFT_APP_TLS)
			tls_samples(f, pend, now);
		else if (dir_fin & 1)
			h2_samples(f, pend, now);
	}
	if ((dir_fin & 3) == 3)
		l7_fin(f);
	return 0;
}

/* The headers of one segment (s->pos..s->n), from where the last one ended. */
static __always_inline void l7_segment(void *ctx, int tc, struct shift_flow *f,
				       struct l7_scratch *s)
{
	__u32 len, i;
	int adv;

	s->pos = f->next_hdr[s->dir & 1] - s->seq;
	if ((__s32)s->pos < 0) {
		/* The header was in bytes we never saw. */
		l7_set_app(f, SHIFT_APP_LOST);
		return;
	}
	if (s->pos >= s->n)
		return; /* inside a record, or old bytes again */
	for (i = 0; i < L7_MAX_HDRS; i++) {
		if (s->pos >= s->n)
			break;
		/* 1..L7_BUF in a form 6.1 can bound: it learns nothing from
		 * "!= 0", so the size is a masked value plus one. */
		len = s->n - s->pos - 1;
		if (len >= L7_BUF)
			len = L7_BUF - 1;
		asm volatile("%[l] &= 31" : [l] "+r"(len));
		if (len >= L7_BUF)
			break;
		len += 1;
		__builtin_memset(&s->b, 0, sizeof(s->b));
		if (l7_load(ctx, tc, s->off + s->pos, s->b.b, len))
			break;
		adv = l7_header(f, s, len);
		if (adv <= 0)
			break;
		s->pos += adv;
	}
	if (s->pos < s->n) {
		/* A split header, too many, or not a header where one must start. */
		l7_set_app(f, SHIFT_APP_LOST);
		return;
	}
	f->next_hdr[s->dir & 1] = s->seq + s->pos;
}

/*
 * A TCP segment of an auto flow (not a SYN; not a backend RST), either way:
 * off_dir = its payload's offset in the frame | L7_DIR_BACKEND, n_flags =
 * payload length | TCP flags << 16, l4_off = its TCP header's offset. All
 * the reading happens here, in one call from the entry. Returns enum
 * l7_next (L7_HTTP1: the caller reads an HTTP/1.x status line).
 */
static __always_inline int l7_entry(void *ctx, int tc, struct shift_flow *f, __u32 off_dir,
				    __u32 n_flags, __u32 l4_off)
{
	__u32 n = n_flags & 0xffff, flags = (n_flags >> 16) & 0xff, hn = 0, zero = 0;
	struct l7_scratch *s;
	int r;

	if (!n && !(flags & (TCPF_FIN_ | TCPF_RST_)))
		return L7_NONE;
	s = bpf_map_lookup_elem(&shift_l7_tmp, &zero);
	if (!s)
		return L7_NONE;
	if (!(f->app_flags & SHIFT_AF_APP_MASK)) {
		/* analysis = http: a request line starts the response clock. */
		if ((off_dir >> 31) || !(f->state & SHIFT_FS_SVC_HTTP) || n < 4 || f->req_ns ||
		    l7_load(ctx, tc, off_dir & 0xffff, &s->seq, 4) || !is_http_request(s->seq))
			return L7_NONE;
		f->req_ns = bpf_ktime_get_ns();
		f->state |= SHIFT_FS_HTTP;
		return L7_NONE;
	}
	s->n = n;
	s->dir = off_dir >> 31;
	s->off = off_dir & 0xffff;
	if (l7_load(ctx, tc, (l4_off & 0xffff) + 4, &s->seq, 4))
		return L7_NONE;
	s->seq = bpf_ntohl(s->seq);
	__builtin_memset(&s->b, 0, sizeof(s->b));
	if (n >= SHIFT_SIG_HEAD && !l7_load(ctx, tc, s->off, s->b.b, SHIFT_SIG_HEAD))
		hn = SHIFT_SIG_HEAD;
	else if (n >= 4 && !l7_load(ctx, tc, s->off, s->b.b, 4))
		hn = 4;
	s->pend = 0;
	r = l7_classify(f, s, flags | hn << 16);
	if (r == L7_READ)
		l7_segment(ctx, tc, f, s);
	if (r == L7_HTTP1)
		return r;
	return s->pend || (s->dir && (flags & TCPF_FIN_)) ? L7_AFTER : L7_NONE;
}

__noinline int l7_xdp(struct xdp_md *ctx, struct shift_flow *f, __u32 off_dir, __u32 n_flags,
		      __u32 l4_off)
{
	if (!ctx || !f)
		return L7_NONE;
	return l7_entry(ctx, 0, f, off_dir, n_flags, l4_off);
}

__noinline int l7_tc(struct __sk_buff *ctx, struct shift_flow *f, __u32 off_dir, __u32 n_flags,
		     __u32 l4_off)
{
	if (!ctx || !f)
		return L7_NONE;
	return l7_entry(ctx, 1, f, off_dir, n_flags, l4_off);
}

#endif
