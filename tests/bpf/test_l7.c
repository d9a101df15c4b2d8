// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * analysis = auto on real packets through the real programs: a conversation
 * per row (client and backend segments with their TCP sequence numbers),
 * and the samples it must produce. For TLS and HTTP/2: valid exchanges,
 * truncated headers, records and frames split across segments, and bytes
 * inside a record that look like a header (they must not be read as one).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/sample.h>
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define L7_SVC 0
#define L7_BE 0
#define MAX_STEPS 8

static const struct topo_service l7_svc = { L7_SVC, 4, IPPROTO_TCP, VIP4, 443, SHIFT_SVC_F_AUTO };
static const struct topo_backend l7_be = { L7_BE,	L7_SVC,
					   SHIFT_BLUE,	4,
					   IPPROTO_TCP, { 10, 1, 0, 11 },
					   8443,	true,
					   0,		{ 0x02, 0xbe, 0, 0, 0, 0x11 } };

struct step {
	char from; /* 'c' client, 'b' backend, 'a' age the open timer by seq ms */
	__u8 flags;
	__u32 seq; /* relative: client ISN 1000, backend 5000 */
	const char *data; /* payload bytes */
	__u32 len;
};

#define C(fl, sq, d)                                   \
	{                                              \
		'c', fl, 1000 + (sq), d, sizeof(d) - 1 \
	}
#define B(fl, sq, d)                                   \
	{                                              \
		'b', fl, 5000 + (sq), d, sizeof(d) - 1 \
	}
#define PA (TH_PSH | TH_ACK)
/* As if ms had passed since the flow's open timer (req_ns) started. */
#define AGE(ms)                   \
	{                         \
		'a', 0, ms, "", 0 \
	}

struct l7_row {
	const char *desc;
	struct step steps[MAX_STEPS];
	__u32 responses, tcp, errors[SHIFT_ERR_MAX];
	__u32 r1xx; /* responses the backend's stats count as 1xx (101 among them) */
};

/* 5-byte record header + body. */
#define HELLO_C "\x16\x03\x01\x00\x05hello"
#define HELLO_S "\x16\x03\x03\x00\x04helo"
#define APP_C "\x17\x03\x03\x00\x08GET /abc"
#define APP_S "\x17\x03\x03\x00\x0aHTTP 200 x"
#define FATAL "\x15\x03\x03\x00\x02\x02\x28"
/* An HTTP/2 preface and a client HEADERS frame (":method GET" = 0x82). */
#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_REQ "\x00\x00\x01\x01\x05\x00\x00\x00\x01\x82"
#define H2_SETTINGS "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
#define H2_200 "\x00\x00\x01\x01\x04\x00\x00\x00\x01\x88"
#define H2_500 "\x00\x00\x01\x01\x04\x00\x00\x00\x01\x8e"
/* RST_STREAM of stream 1 and GOAWAY (last stream 1), with an error code. */
#define H2_RST(code) "\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00" code
/* An interim response with headers (RFC 8297), 101 bytes. */
#define EARLY_HINTS                                                                 \
	"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n" \
	"Link: </app.js>; rel=preload\r\n\r\n"
#define H2_GOAWAY(code) "\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00" code

static const struct l7_row rows[] = {
	{ "tls: hello, answer, one request answered -> 1 response",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(PA, 11, APP_C), B(PA, 10, APP_S) },
	  .responses = 1 },
	{ "tls: two records in one segment, the answer in the second -> 1 response",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(PA, 11, APP_C),
	    B(PA, 10, "\x14\x03\x03\x00\x01\x01" APP_S) },
	  .responses = 1 },
	{ "tls: answer split over 2 segments, the 2nd looks like a fatal alert -> 1 response",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(PA, 11, APP_C),
	    B(PA, 10,
	      "\x17\x03\x03\x00\x20"
	      "0123456789"),
	    B(PA, 25, FATAL "abcdefghijklmnopqrstuvw") },
	  .responses = 1 },
	{ "tls: truncated record header ends the reading -> nothing",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(PA, 11, APP_C), B(PA, 10, "\x17\x03\x03") },
	  .responses = 0 },
	{ "tls: garbage where a header must start ends the reading -> nothing",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(PA, 11, APP_C),
	    B(PA, 10, "\x99\x03\x03\x00\x01x") },
	  .responses = 0 },
	{ "tls: hello split over 2 segments, then a request answered -> 1 response",
	  { C(PA, 1, "\x16\x03\x01\x00\x05hel"), C(PA, 9, "lo"), B(PA, 1, HELLO_S),
	    C(PA, 11, APP_C), B(PA, 10, APP_S) },
	  .responses = 1 },
	{ "tls: fatal alert answering the hello -> tls_alert",
	  { C(PA, 1, HELLO_C), B(PA, 1, FATAL) },
	  .errors = { [SHIFT_ERR_TLS_ALERT] = 1 } },
	{ "tls: backend FIN before answering the hello -> tls_handshake",
	  { C(PA, 1, HELLO_C), B(TH_FIN | TH_ACK, 1, "") },
	  .errors = { [SHIFT_ERR_TLS_HANDSHAKE] = 1 } },
	/* A client's giving up is the backend's failure only after it waited. */
	{ "tls: client RST right after its hello (a scanner, a cancelled page) -> nothing",
	  { C(PA, 1, HELLO_C), C(TH_RST | TH_ACK, 11, "") } },
	{ "tls: client FIN right after its hello, then backend FIN -> nothing",
	  { C(PA, 1, HELLO_C), C(TH_FIN | TH_ACK, 11, ""), B(TH_FIN | TH_ACK, 1, "") } },
	{ "tls: client FIN after its hello waited 3 s unanswered -> tls_handshake",
	  { C(PA, 1, HELLO_C), AGE(3100), C(TH_FIN | TH_ACK, 11, "") },
	  .errors = { [SHIFT_ERR_TLS_HANDSHAKE] = 1 } },
	{ "tls: hello answered 3 s late, then the client's close -> nothing",
	  { C(PA, 1, HELLO_C), AGE(3100), B(PA, 1, HELLO_S), C(TH_FIN | TH_ACK, 11, "") } },
	{ "tls: backend FIN with a request open -> early_close",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(PA, 11, APP_C), B(TH_FIN | TH_ACK, 10, "") },
	  .errors = { [SHIFT_ERR_EARLY_CLOSE] = 1 } },
	{ "tls: close_notify and FIN after the answer (healthy) -> 1 response, no error",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(PA, 11, APP_C), B(PA, 10, APP_S),
	    B(PA, 25,
	      "\x15\x03\x03\x00\x1a"
	      "01234567890123456789012345"),
	    B(TH_FIN | TH_ACK, 56, "") },
	  .responses = 1 },
	{ "tls: client FIN, then backend FIN (healthy close) -> no error",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(TH_FIN | TH_ACK, 11, ""),
	    B(TH_FIN | TH_ACK, 10, "") } },
	{ "h2: preface + HEADERS; SETTINGS + HEADERS 0x88 -> 1 response",
	  { C(PA, 1, PREFACE H2_REQ), B(PA, 1, H2_SETTINGS H2_200) },
	  .responses = 1 },
	{ "h2: HEADERS 0x8e (500) -> http_5xx",
	  { C(PA, 1, PREFACE H2_REQ), B(PA, 1, H2_SETTINGS), B(PA, 10, H2_500) },
	  .errors = { [SHIFT_ERR_HTTP5XX] = 1 } },
	{ "h2: the backend resets the stream, INTERNAL_ERROR (a handler's panic) -> http_5xx",
	  { C(PA, 1, PREFACE H2_REQ), B(PA, 1, H2_SETTINGS), B(PA, 10, H2_RST("\x02")) },
	  .errors = { [SHIFT_ERR_HTTP5XX] = 1 } },
	{ "h2: the backend's GOAWAY with PROTOCOL_ERROR -> http_5xx",
	  { C(PA, 1, PREFACE H2_REQ), B(PA, 1, H2_SETTINGS), B(PA, 10, H2_GOAWAY("\x01")) },
	  .errors = { [SHIFT_ERR_HTTP5XX] = 1 } },
	{ "h2: the client cancels, the backend's graceful GOAWAY and FIN -> no error",
	  { C(PA, 1, PREFACE H2_REQ), B(PA, 1, H2_SETTINGS), C(PA, 35, H2_RST("\x08")),
	    B(PA, 10, H2_GOAWAY("\x00")), B(TH_FIN | TH_ACK, 27, "") } },
	{ "h2: DATA split over 2 segments, its bytes look like HEADERS 500 -> 1 response",
	  { C(PA, 1, PREFACE H2_REQ),
	    B(PA, 1,
	      H2_200 "\x00\x00\x0c\x00\x00\x00\x00\x00\x01"
		     "ab"),
	    B(PA, 21, H2_500) },
	  .responses = 1 },
	{ "h2: truncated frame header ends the reading -> nothing",
	  { C(PA, 1, PREFACE H2_REQ), B(PA, 1, "\x00\x00\x01\x01") } },
	{ "h2: garbage where a frame header must start (reserved bit) -> nothing",
	  { C(PA, 1, PREFACE H2_REQ), B(PA, 1, "\x00\x00\x01\x01\x04\x80\x00\x00\x01\x8e") } },
	{ "tcp: neither HTTP, TLS nor HTTP/2 -> 1 tcp sample",
	  { C(PA, 1, "SSH-2.0-x\r\n"), B(PA, 1, "SSH-2.0-y\r\n") },
	  .tcp = 1 },
	/* Client segments the entry answers inline (client_segment_idle()): the
	 * FIN after them still counts, a new request after an answer is read. */
	{ "tcp: more client bytes, client FIN, backend FIN -> 1 tcp sample, no error",
	  { C(PA, 1, "SSH-2.0-x\r\n"), B(PA, 1, "SSH-2.0-y\r\n"), C(PA, 12, "more bytes"),
	    C(TH_FIN | TH_ACK, 22, ""), B(TH_FIN | TH_ACK, 12, "") },
	  .tcp = 1 },
	{ "tls: reading lost, more client bytes, client FIN, backend FIN -> nothing",
	  { C(PA, 1, HELLO_C), B(PA, 1, HELLO_S), C(PA, 11, APP_C),
	    B(PA, 10, "\x99\x03\x03\x00\x01x"), C(PA, 24, "more bytes"), C(TH_FIN | TH_ACK, 34, ""),
	    B(TH_FIN | TH_ACK, 16, "") } },
	{ "http1: a request's body, its 200; the next request's 500 -> 1 response, http_5xx",
	  { C(PA, 1, "POST / HTTP/1.1\r\n\r\n"), C(PA, 20, "GET body"),
	    B(PA, 1, "HTTP/1.1 200 OK\r\n\r\n"), C(PA, 28, "GET /b HTTP/1.1\r\n\r\n"),
	    B(PA, 20, "HTTP/1.1 500 Oops\r\n\r\n") },
	  .responses = 1,
	  .errors = { [SHIFT_ERR_HTTP5XX] = 1 } },
	{ "http1: request open, client FIN, backend FIN -> no early_close",
	  { C(PA, 1, "GET / HTTP/1.1\r\n\r\n"), C(TH_FIN | TH_ACK, 19, ""),
	    B(TH_FIN | TH_ACK, 1, "") } },
	{ "http1: request open, backend FIN -> early_close",
	  { C(PA, 1, "GET / HTTP/1.1\r\n\r\n"), B(TH_FIN | TH_ACK, 1, "") },
	  .errors = { [SHIFT_ERR_EARLY_CLOSE] = 1 } },
	/* A WebSocket: 101 ends the HTTP exchange. Its frames are no requests
	 * (one that starts like a request line included), and the backend's
	 * close first, as RFC 6455 has servers do, is no unanswered request. */
	{ "http1: 101 (WebSocket), frames both ways, backend FIN first -> 1 response, no error",
	  { C(PA, 1, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
	    B(PA, 1, "HTTP/1.1 101 Switching Protocols\r\n\r\n"), C(PA, 41, "GET frame"),
	    B(PA, 37, "\x81\x02hi"), B(TH_FIN | TH_ACK, 41, ""), C(TH_FIN | TH_ACK, 50, "") },
	  .responses = 1,
	  .r1xx = 1 },
	{ "http1: 100 Continue, then the 500 -> http_5xx, nothing else",
	  { C(PA, 1, "POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"),
	    B(PA, 1, "HTTP/1.1 100 Continue\r\n\r\n"), C(PA, 42, "body"),
	    B(PA, 26, "HTTP/1.1 500 Oops\r\n\r\n"), B(TH_FIN | TH_ACK, 47, "") },
	  .errors = { [SHIFT_ERR_HTTP5XX] = 1 },
	  .r1xx = 1 },
	/* Interim responses and the final one in one segment (a server that
	 * writes them together; GRO merging them before TC): the final status
	 * line is read after the interim ones' blank lines. */
	{ "http1: 100 Continue and the 500 in one segment -> http_5xx, nothing else",
	  { C(PA, 1, "POST / HTTP/1.1\r\n\r\n"),
	    B(PA, 1, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\n\r\n"),
	    B(TH_FIN | TH_ACK, 47, "") },
	  .errors = { [SHIFT_ERR_HTTP5XX] = 1 },
	  .r1xx = 1 },
	{ "http1: 103 Early Hints (a Link header) and the 200 in one segment, backend FIN -> 1 response",
	  { C(PA, 1, "GET / HTTP/1.1\r\n\r\n"), B(PA, 1, EARLY_HINTS "HTTP/1.1 200 OK\r\n\r\n"),
	    B(TH_FIN | TH_ACK, sizeof(EARLY_HINTS) + 19, "") },
	  .responses = 1,
	  .r1xx = 1 },
	{ "http1: 100, 103 and the 200 in one segment, then the next request's 500 -> 1 response, http_5xx",
	  { C(PA, 1, "POST / HTTP/1.1\r\n\r\n"),
	    B(PA, 1, "HTTP/1.1 100 Continue\r\n\r\n" EARLY_HINTS "HTTP/1.1 200 OK\r\n\r\n"),
	    C(PA, 20, "GET /b HTTP/1.1\r\n\r\n"), B(PA, 146, "HTTP/1.1 500 Oops\r\n\r\n") },
	  .responses = 1,
	  .errors = { [SHIFT_ERR_HTTP5XX] = 1 },
	  .r1xx = 2 },
	/* Reading stops at the final status line: its body is no response. */
	{ "http1: 100 and a 200 whose body holds a blank line and a 500 status line -> 1 response",
	  { C(PA, 1, "POST / HTTP/1.1\r\n\r\n"),
	    B(PA, 1,
	      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nx\r\n\r\nHTTP/1.1 500 body"),
	    B(TH_FIN | TH_ACK, 67, "") },
	  .responses = 1,
	  .r1xx = 1 },
	/* Interim responses filling the segment: the final one starts the next. */
	{ "http1: 103 Early Hints alone, the 200 in the next segment -> 1 response",
	  { C(PA, 1, "GET / HTTP/1.1\r\n\r\n"), B(PA, 1, EARLY_HINTS),
	    B(PA, sizeof(EARLY_HINTS), "HTTP/1.1 200 OK\r\n\r\n"),
	    B(TH_FIN | TH_ACK, sizeof(EARLY_HINTS) + 19, "") },
	  .responses = 1,
	  .r1xx = 1 },
	/* What follows an interim response is no status line: nothing read. */
	{ "http1: 100 Continue, then bytes that are no status line, backend FIN -> early_close",
	  { C(PA, 1, "POST / HTTP/1.1\r\n\r\n"),
	    B(PA, 1, "HTTP/1.1 100 Continue\r\n\r\nHTTX/1.1 200 OK\r\n\r\n"),
	    B(TH_FIN | TH_ACK, 45, "") },
	  .errors = { [SHIFT_ERR_EARLY_CLOSE] = 1 },
	  .r1xx = 1 },
	{ "http1: upload refused with a RST, each segment in flight drawing another -> 1 rst",
	  { C(PA, 1, "POST / HTTP/1.1\r\n\r\n"), B(TH_RST | TH_ACK, 1, ""), C(PA, 20, "body 1"),
	    B(TH_RST, 1, ""), C(PA, 26, "body 2"), B(TH_RST, 1, ""), C(PA, 32, "body 3"),
	    B(TH_RST, 1, "") },
	  .errors = { [SHIFT_ERR_RST] = 1 } },
	{ "tls: reset after the hello, then again -> 1 rst",
	  { C(PA, 1, HELLO_C), B(TH_RST | TH_ACK, 1, ""), C(PA, 11, APP_C), B(TH_RST, 1, "") },
	  .errors = { [SHIFT_ERR_RST] = 1 } },
};

struct l7_count {
	__u32 responses, tcp, other, errors[SHIFT_ERR_MAX];
};

static int count_cb(void *ctx, void *data, size_t len)
{
	const struct shift_sample *s = data;
	struct l7_count *c = ctx;

	if (len < sizeof(*s))
		c->other++;
	else if (s->kind == SHIFT_SAMPLE_RESPONSE)
		c->responses++;
	else if (s->kind == SHIFT_SAMPLE_TCP)
		c->tcp++;
	else if (s->kind == SHIFT_SAMPLE_ERROR && s->err < SHIFT_ERR_MAX)
		c->errors[s->err]++;
	else if (s->kind != SHIFT_SAMPLE_CONNECT)
		c->other++;
	return 0;
}

static int send_step(struct harness *h, const struct fib_env *env, const struct step *st,
		     __u16 cport)
{
	struct pkt_spec s;
	__u8 f[PKT_MAX];
	__u32 len, v;

	if (st->from == 'a') {
		struct shift_flow fl;

		s = (struct pkt_spec)PKT4(CL4, VIP4, IPPROTO_TCP, cport, 443, .payload = 0);
		if (harness_flow_get(h, &s, &fl))
			return -ENOENT;
		fl.req_ns -= (__u64)st->seq * 1000000ull;
		return harness_flow_put(h, &s, &fl);
	}
	if (st->from == 'c') {
		s = (struct pkt_spec)PKT4(CL4, VIP4, IPPROTO_TCP, cport, 443, .payload = 0);
		s.ack = 5001;
	} else {
		s = (struct pkt_spec)REPLY4(BE0A, CL4, IPPROTO_TCP, 8443, cport,
					    .smac = { 0x02, 0xbe, 0, 0, 0, 0x11 });
	}
	s.tcp_flags = st->flags;
	s.seq = st->seq;
	s.payload = (__u16)st->len;
	len = pkt_build_payload(&s, st->data, f, PKT_MAX, NULL);
	if (!len)
		return -EINVAL;
	return harness_run_prog(h, st->from == 'c' ? H_CLIENT : H_BACKEND, f, len,
				st->from == 'c' ? (__u32)env->if_cl : (__u32)env->if_be, NULL, NULL,
				&v);
}

/* The one-backend service svc, weight 0, through XDP or TC (hooks): 0, else
 * not to run (failed or skipped). */
static int l7_setup(struct tctx *t, struct harness *h, struct fib_env *env,
		    const struct topo_service *svc, __u32 hooks)
{
	__u32 be = L7_BE;

	if (!ASSERT_OK(t, harness_open_hooks(h, H_SEED, 0, 0, 0, hooks), "harness_open"))
		return -1;
	h->tc = hooks == SHIFT_LOAD_TC;
	if (fib_env_setup(env)) {
		test_skip(t, "no FIB environment (veth pair)");
		return 1;
	}
	if (!ASSERT_OK(t, harness_add_service(h, svc), "service") ||
	    !ASSERT_OK(t, harness_add_backend(h, &l7_be), "backend") ||
	    !ASSERT_OK(t, harness_pool(h, L7_SVC, SHIFT_BLUE, &be, 1), "pool") ||
	    !ASSERT_OK(t, dp_weight_set(&h->m, L7_SVC, 0), "weight"))
		return -1;
	return 0;
}

/*
 * analysis = http (no auto): a 101 answers its request (a response sample)
 * and ends the reading of the connection: a WebSocket frame that starts
 * like a request line opens no request. The final status line after an
 * interim one in the same segment is read as under auto (interim.h).
 */
static const struct topo_service http_svc = { L7_SVC, 4, IPPROTO_TCP, VIP4, 443, SHIFT_SVC_F_HTTP };
static const struct l7_row http_rows[] = {
	{ "http: 101 (WebSocket), frames both ways, backend FIN first -> 1 response, no error",
	  { C(PA, 1, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
	    B(PA, 1, "HTTP/1.1 101 Switching Protocols\r\n\r\n"), C(PA, 41, "GET frame"),
	    B(PA, 37, "\x81\x02hi"), B(TH_FIN | TH_ACK, 41, ""), C(TH_FIN | TH_ACK, 50, "") },
	  .responses = 1,
	  .r1xx = 1 },
	{ "http: 100 Continue and the 503 in one segment -> http_5xx",
	  { C(PA, 1, "POST / HTTP/1.1\r\n\r\n"),
	    B(PA, 1, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\n\r\n"),
	    B(TH_FIN | TH_ACK, 47, "") },
	  .errors = { [SHIFT_ERR_HTTP5XX] = 1 },
	  .r1xx = 1 },
};

/* Each row of list (n) on a flow of its own through svc, and its samples:
 * through XDP (hooks), or TC, which reads the payload with the skb's helpers. */
static void l7_rows(struct tctx *t, const struct topo_service *svc, const struct l7_row *list,
		    size_t n, __u32 hooks)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct fib_env env;
	struct ring_buffer *rb = NULL, *eb = NULL;
	struct shift_backend_stats bs;
	struct l7_count c;
	__u64 r1xx;
	size_t i, k;
	int e;

	if (!ASSERT_TRUE(t, h != NULL, "calloc") || l7_setup(t, h, &env, svc, hooks))
		goto out;
	rb = ring_buffer__new(h->m.fd[SHIFT_MAP_SAMPLES], count_cb, &c, NULL);
	eb = ring_buffer__new(h->m.fd[SHIFT_MAP_ERRORS], count_cb, &c, NULL);
	if (!ASSERT_TRUE(t, rb && eb, "ring_buffer__new"))
		goto out;
	for (i = 0; i < n; i++) {
		const struct l7_row *r = &list[i];
		__u16 cport = (__u16)(42000 + i);
		struct step syn = { 'c', TH_SYN, 1000, "", 0 };
		struct step synack = { 'b', TH_SYN | TH_ACK, 5000, "", 0 };
		/* The entry is written at the client's first ACK (no SYN entries). */
		struct step ack = { 'c', TH_ACK, 1001, "", 0 };

		if (!test_sub(t, "%s: %s", h->tc ? "tc" : "xdp", r->desc))
			continue;
		ring_buffer__consume(rb);
		ring_buffer__consume(eb);
		memset(&c, 0, sizeof(c));
		if (!ASSERT_OK(t, harness_be_stats(h, L7_BE, &bs), "stats"))
			continue;
		r1xx = bs.responses[1];
		if (!ASSERT_OK(t, send_step(h, &env, &syn, cport), "SYN") ||
		    !ASSERT_OK(t, send_step(h, &env, &synack, cport), "SYN-ACK") ||
		    !ASSERT_OK(t, send_step(h, &env, &ack, cport), "ACK"))
			continue;
		for (k = 0; k < MAX_STEPS && r->steps[k].from; k++)
			if (!ASSERT_OK(t, send_step(h, &env, &r->steps[k], cport), "step"))
				break;
		ring_buffer__consume(eb);
		ring_buffer__consume(rb);
		ASSERT_EQ(t, c.responses, r->responses, "response samples");
		ASSERT_EQ(t, c.tcp, r->tcp, "tcp samples");
		ASSERT_EQ(t, c.other, 0, "other samples");
		for (e = 1; e < SHIFT_ERR_MAX; e++)
			ASSERT_EQ(t, c.errors[e], r->errors[e], dp_err_name(e));
		if (ASSERT_OK(t, harness_be_stats(h, L7_BE, &bs), "stats"))
			ASSERT_EQ(t, bs.responses[1] - r1xx, r->r1xx, "1xx responses counted");
	}
out:
	if (rb)
		ring_buffer__free(rb);
	if (eb)
		ring_buffer__free(eb);
	if (h) {
		harness_close(h);
		free(h);
	}
}

TEST(l7)
{
	l7_rows(t, &l7_svc, rows, sizeof(rows) / sizeof(rows[0]), SHIFT_LOAD_XDP);
	l7_rows(t, &l7_svc, rows, sizeof(rows) / sizeof(rows[0]), SHIFT_LOAD_TC);
}

TEST(http_upgrade)
{
	l7_rows(t, &http_svc, http_rows, sizeof(http_rows) / sizeof(http_rows[0]), SHIFT_LOAD_XDP);
	l7_rows(t, &http_svc, http_rows, sizeof(http_rows) / sizeof(http_rows[0]), SHIFT_LOAD_TC);
}

/*
 * ICMP destination unreachable from the backend about a packet of a flow
 * without an entry (here a SYN's: a backend's firewall rejecting it; with
 * snat, every flow's quote looks so): an error sample for that backend, not
 * only its counter, so the triggers see it.
 */
TEST(icmp_unreach_no_entry)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct fib_env env;
	struct ring_buffer *eb = NULL;
	struct shift_backend_stats bs;
	struct l7_count c;
	struct pkt_spec s;
	__u8 f[PKT_MAX], *q;
	__u32 len, v;
	__u64 e0 = 0;
	struct step syn = { 'c', TH_SYN, 1000, "", 0 };

	if (!ASSERT_TRUE(t, h != NULL, "calloc") || l7_setup(t, h, &env, &l7_svc, SHIFT_LOAD_XDP))
		goto out;
	eb = ring_buffer__new(h->m.fd[SHIFT_MAP_ERRORS], count_cb, &c, NULL);
	if (!ASSERT_TRUE(t, eb != NULL, "ring_buffer__new"))
		goto out;
	if (!test_sub(t,
		      "port unreachable quoting a SYN (no entry): an error sample and its count"))
		goto out;
	ring_buffer__consume(eb);
	memset(&c, 0, sizeof(c));
	if (!ASSERT_OK(t, send_step(h, &env, &syn, 43000), "SYN"))
		goto out;
	if (ASSERT_OK(t, harness_be_stats(h, L7_BE, &bs), "stats"))
		e0 = bs.errors[SHIFT_ERR_ICMP_UNREACH];
	/* From the backend to the client: port unreachable, quoting client -> backend. */
	s = (struct pkt_spec)REPLY4(BE0A, CL4, IPPROTO_ICMP, 0, 0,
				    .smac = { 0x02, 0xbe, 0, 0, 0, 0x11 }, .payload = 28);
	len = pkt_build_payload(&s, NULL, f, PKT_MAX, NULL);
	if (!ASSERT_TRUE(t, len >= 14 + 20 + 8 + 28, "ICMP frame built"))
		goto out;
	q = f + 14 + 20;
	q[0] = 3; /* destination unreachable */
	q[1] = 3; /* port */
	q += 8;
	memset(q, 0, 28);
	q[0] = 0x45;
	q[3] = 40;
	q[8] = 63;
	q[9] = IPPROTO_TCP;
	memcpy(q + 12, (const __u8[4])CL4, 4);
	memcpy(q + 16, (const __u8[4])BE0A, 4);
	q[20] = 43000 >> 8;
	q[21] = 43000 & 0xff;
	q[22] = 8443 >> 8;
	q[23] = 8443 & 0xff;
	if (!ASSERT_OK(t, harness_run(h->prog[H_BACKEND], f, len, (__u32)env.if_be, NULL, NULL, &v),
		       "ICMP"))
		goto out;
	ring_buffer__consume(eb);
	ASSERT_EQ(t, c.errors[SHIFT_ERR_ICMP_UNREACH], 1, "icmp_unreachable error sample");
	if (ASSERT_OK(t, harness_be_stats(h, L7_BE, &bs), "stats"))
		ASSERT_EQ(t, bs.errors[SHIFT_ERR_ICMP_UNREACH] - e0, 1, "icmp_unreachable counter");
out:
	if (eb)
		ring_buffer__free(eb);
	if (h) {
		harness_close(h);
		free(h);
	}
}
