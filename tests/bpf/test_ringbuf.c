// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The sample rings under overload (SPEC "Signals from the return path":
 * samples the ring buffer could not take are counted, never block the
 * datapath; errors must still reach the agent):
 *  - N ordinary samples with nobody consuming: every one is either in the
 *    ring or counted in SHIFT_STAT_RINGBUF_DROPPED, exactly N together, and
 *    the packets carrying them are forwarded all the same;
 *  - an error right after such a flood (sample ring full) still lands in the
 *    error ring, whole, and nothing is counted lost;
 *  - M errors with nobody consuming: in the error ring or counted in
 *    SHIFT_STAT_ERRBUF_DROPPED, exactly M; the per-backend error counter
 *    counts every one of them.
 * Every lost sample is also counted by its service, color and kind (struct
 * shift_lost), which shiftd counts in that service's window in its place.
 * Samples come from real packets through the real programs: a keep-alive
 * HTTP flow (client "GET", blue "HTTP/1.1 200": one RESPONSE sample per pair)
 * and RSTs from green on a green flow (one ERROR sample each).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include <shift/sample.h>
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

/* Ring buffer record: 8-byte header + the sample, 8-byte aligned. */
#define RB_RECORD ((sizeof(struct shift_sample) + 8 + 7) & ~(size_t)7)
#define SAMPLE_CAP (SHIFT_RINGBUF_BYTES / RB_RECORD)
#define ERROR_CAP (SHIFT_ERRBUF_BYTES / RB_RECORD)

#define RB_BLUE_ID 0
#define RB_GREEN_ID 1
#define RB_SVC 0

static const struct topo_service rb_svc = { RB_SVC, 4, IPPROTO_TCP, VIP4, 80, SHIFT_SVC_F_HTTP };
static const struct topo_backend rb_bes[2] = {
	{ RB_BLUE_ID,
	  RB_SVC,
	  SHIFT_BLUE,
	  4,
	  IPPROTO_TCP,
	  { 10, 1, 0, 11 },
	  8080,
	  true,
	  0,
	  { 0x02, 0xbe, 0, 0, 0, 0x11 } },
	{ RB_GREEN_ID,
	  RB_SVC,
	  SHIFT_GREEN,
	  4,
	  IPPROTO_TCP,
	  { 10, 1, 0, 21 },
	  8080,
	  true,
	  0,
	  { 0x02, 0xbe, 0, 0, 0, 0x21 } },
};

#define BLUE_PORT 40000
#define GREEN_PORT 40001

/* What a ring delivered. */
struct rb_count {
	__u64 n;
	__u64 response_blue; /* RESPONSE, status 200, blue backend */
	__u64 error_green; /* ERROR, RST, green backend */
	__u64 other;
};

static int count_cb(void *ctx, void *data, size_t len)
{
	const struct shift_sample *s = data;
	struct rb_count *c = ctx;

	c->n++;
	if (len < sizeof(*s))
		c->other++;
	else if (s->kind == SHIFT_SAMPLE_RESPONSE && s->status == 200 && s->color == SHIFT_BLUE &&
		 s->backend_id == RB_BLUE_ID && s->service_id == RB_SVC)
		c->response_blue++;
	else if (s->kind == SHIFT_SAMPLE_ERROR && s->err == SHIFT_ERR_RST &&
		 s->color == SHIFT_GREEN && s->backend_id == RB_GREEN_ID && s->service_id == RB_SVC)
		c->error_green++;
	else
		c->other++;
	return 0;
}

struct rb_env {
	struct harness h;
	struct fib_env env;
	struct ring_buffer *samples, *errors;
	struct rb_count cs, ce;
	__u8 req[PKT_MAX], resp[PKT_MAX], rst[PKT_MAX];
	__u32 req_len, resp_len, rst_len;
	__u32 resp_verdict; /* of the first answer, before any ring was full */
};

static __u32 build_text(const struct pkt_spec *s, const char *text, __u8 *buf)
{
	return pkt_build_payload(s, text, buf, PKT_MAX, NULL);
}

static int run(struct rb_env *e, enum h_prog p, const __u8 *f, __u32 len, __u32 *verdict)
{
	__u32 v;

	return harness_run(e->h.prog[p], f, len,
			   p == H_CLIENT ? (__u32)e->env.if_cl : (__u32)e->env.if_be, NULL, NULL,
			   verdict ? verdict : &v);
}

/* Both rings empty, counts reset. */
static int drain(struct rb_env *e)
{
	int n1 = ring_buffer__consume(e->errors), n2 = ring_buffer__consume(e->samples);

	memset(&e->cs, 0, sizeof(e->cs));
	memset(&e->ce, 0, sizeof(e->ce));
	return n1 < 0 ? n1 : n2 < 0 ? n2 : 0;
}

static int consume(struct rb_env *e)
{
	int n1 = ring_buffer__consume(e->errors), n2 = ring_buffer__consume(e->samples);

	return n1 < 0 ? n1 : n2 < 0 ? n2 : 0;
}

static __u64 stat_of(struct rb_env *e, enum shift_stat which)
{
	__u64 st[SHIFT_STAT_MAX];

	return dp_stats(&e->h.m, st) ? ~0ull : st[which];
}

/* The datapath's lost count of service RB_SVC, color c, kind (struct shift_lost). */
static __u64 lost_of(struct rb_env *e, enum shift_color c, __u8 kind)
{
	struct shift_lost *l = malloc(sizeof(*l));
	__u64 n = ~0ull;

	if (l && !dp_lost(&e->h.m, l))
		n = l->n[RB_SVC][c][kind & (SHIFT_LOST_KINDS - 1)];
	free(l);
	return n;
}

static __u64 green_rst(struct rb_env *e)
{
	struct shift_backend_stats bs;

	return harness_be_stats(&e->h, RB_GREEN_ID, &bs) ? ~0ull : bs.errors[SHIFT_ERR_RST];
}

/* n request/answer pairs on the blue flow; counts answers not forwarded as the first. */
static int flood(struct rb_env *e, __u64 n, __u64 *changed)
{
	__u64 i;
	__u32 v;
	int err;

	*changed = 0;
	for (i = 0; i < n; i++) {
		err = run(e, H_CLIENT, e->req, e->req_len, NULL);
		if (!err)
			err = run(e, H_BACKEND, e->resp, e->resp_len, &v);
		if (err)
			return err;
		*changed += v != e->resp_verdict;
	}
	return 0;
}

static int rb_setup(struct tctx *t, struct rb_env *e)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct pkt_spec syn = PKT4(CL4, VIP4, IPPROTO_TCP, BLUE_PORT, 80, .payload = 0);
	struct pkt_spec s;
	__u32 blue = RB_BLUE_ID, green = RB_GREEN_ID, i, v;
	__u8 f[PKT_MAX];
	__u32 len;

	if (!ASSERT_OK(t, harness_open_hooks(&e->h, H_SEED, 0, 0, 0, SHIFT_LOAD_XDP),
		       "harness_open"))
		return -1;
	if (fib_env_setup(&e->env)) {
		/* The return path signals only replies it can route to a client. */
		test_skip(t, "no FIB environment (veth pair)");
		return 1;
	}
	if (!ASSERT_OK(t, harness_add_service(&e->h, &rb_svc), "service"))
		return -1;
	for (i = 0; i < 2; i++)
		if (!ASSERT_OK(t, harness_add_backend(&e->h, &rb_bes[i]), "backend"))
			return -1;
	if (!ASSERT_OK(t, harness_pool(&e->h, RB_SVC, SHIFT_BLUE, &blue, 1), "blue pool") ||
	    !ASSERT_OK(t, harness_pool(&e->h, RB_SVC, SHIFT_GREEN, &green, 1), "green pool") ||
	    !ASSERT_OK(t, dp_weight_set(&e->h.m, RB_SVC, 0), "weight 0"))
		return -1;

	/* The blue keep-alive flow: SYN at weight 0, SYN-ACK. */
	len = build_text(&syn, NULL, f);
	if (!ASSERT_OK(t, run(e, H_CLIENT, f, len, NULL), "blue SYN"))
		return -1;
	s = (struct pkt_spec)REPLY4(BE0A, CL4, IPPROTO_TCP, 8080, BLUE_PORT,
				    .smac = { 0x02, 0xbe, 0, 0, 0, 0x11 }, .payload = 0);
	len = build_text(&s, NULL, f);
	if (!ASSERT_OK(t, run(e, H_BACKEND, f, len, NULL), "blue SYN-ACK"))
		return -1;
	s.tcp_flags = TH_ACK | TH_PSH;
	s.payload = (__u16)strlen(resp);
	e->resp_len = build_text(&s, resp, e->resp);
	syn.tcp_flags = TH_ACK | TH_PSH;
	syn.payload = (__u16)strlen(req);
	syn.ack = 5001;
	/* After the SYN, the client's bytes start at its ISN + 1: that is how its
	 * first ACK finds the SYN's slot (and so its backend) again. */
	syn.seq += 1;
	e->req_len = build_text(&syn, req, e->req);

	/* The green flow: SYN at 100 %; its backend will answer with RSTs. */
	if (!ASSERT_OK(t, dp_weight_set(&e->h.m, RB_SVC, SHIFT_WEIGHT_MAX), "weight 100%"))
		return -1;
	syn = (struct pkt_spec)PKT4(CL4, VIP4, IPPROTO_TCP, GREEN_PORT, 80, .payload = 0);
	len = build_text(&syn, NULL, f);
	if (!ASSERT_OK(t, run(e, H_CLIENT, f, len, NULL), "green SYN"))
		return -1;
	s = (struct pkt_spec){ .dmac = MAC_EDGE,
			       .smac = { 0x02, 0xbe, 0, 0, 0, 0x21 },
			       .family = 4,
			       .proto = IPPROTO_TCP,
			       .saddr = { 10, 1, 0, 21 },
			       .daddr = CL4,
			       .sport = 8080,
			       .dport = GREEN_PORT,
			       .ttl = 64,
			       .tcp_flags = TH_RST | TH_ACK,
			       .seq = 5000,
			       .ack = 1001 };
	e->rst_len = build_text(&s, NULL, e->rst);
	if (!ASSERT_TRUE(t, e->req_len && e->resp_len && e->rst_len, "frames built"))
		return -1;

	e->samples = ring_buffer__new(e->h.m.fd[SHIFT_MAP_SAMPLES], count_cb, &e->cs, NULL);
	e->errors = ring_buffer__new(e->h.m.fd[SHIFT_MAP_ERRORS], count_cb, &e->ce, NULL);
	if (!ASSERT_TRUE(t, e->samples && e->errors, "ring_buffer__new"))
		return -1;
	/* One answer to learn its verdict, and a check that the flow makes samples. */
	if (!ASSERT_OK(t, drain(e), "drain") ||
	    !ASSERT_OK(t, run(e, H_CLIENT, e->req, e->req_len, NULL), "request") ||
	    !ASSERT_OK(t, run(e, H_BACKEND, e->resp, e->resp_len, &v), "answer") ||
	    !ASSERT_OK(t, consume(e), "consume") ||
	    !ASSERT_EQ(t, e->cs.response_blue, 1, "one RESPONSE sample per request/answer"))
		return -1;
	e->resp_verdict = v;
	test_debug(t, "answer verdict %u; sample ring %llu samples, error ring %llu", v,
		   (unsigned long long)SAMPLE_CAP, (unsigned long long)ERROR_CAP);
	return 0;
}

static void rb_teardown(struct rb_env *e)
{
	if (e->samples)
		ring_buffer__free(e->samples);
	if (e->errors)
		ring_buffer__free(e->errors);
	harness_close(&e->h);
}

TEST(ringbuf)
{
	static const char *const subs[] = {
		"sample ring: 2x its size with no consumer: consumed + ringbuf_dropped = produced",
		"sample ring full: an error still reaches the error ring, nothing lost",
		"error ring: more than its size with no consumer: consumed + errbuf_dropped = produced",
	};
	struct rb_env *e;
	__u64 n, d0, ed0, r0, l0, changed;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (test_would_run(t, subs[i]))
			break;
	if (i == sizeof(subs) / sizeof(subs[0]))
		return;
	e = calloc(1, sizeof(*e));
	if (!ASSERT_TRUE(t, e != NULL, "calloc"))
		return;
	rc = rb_setup(t, e);
	if (rc)
		goto out;

	if (test_sub(t, "%s", subs[0])) {
		n = 2 * SAMPLE_CAP + 1234;
		d0 = stat_of(e, SHIFT_STAT_RINGBUF_DROPPED);
		ed0 = stat_of(e, SHIFT_STAT_ERRBUF_DROPPED);
		l0 = lost_of(e, SHIFT_BLUE, SHIFT_SAMPLE_RESPONSE);
		if (ASSERT_OK(t, drain(e), "drain") &&
		    ASSERT_OK(t, flood(e, n, &changed), "flood") &&
		    ASSERT_OK(t, consume(e), "consume")) {
			__u64 dropped = stat_of(e, SHIFT_STAT_RINGBUF_DROPPED) - d0;

			ASSERT_EQ(t, e->cs.n + dropped, n, "consumed + dropped");
			/* What shiftd counts in the service's window in their place. */
			ASSERT_EQ(t, lost_of(e, SHIFT_BLUE, SHIFT_SAMPLE_RESPONSE) - l0, dropped,
				  "lost by service, color and kind: the service's blue responses");
			ASSERT_EQ(t, lost_of(e, SHIFT_GREEN, SHIFT_SAMPLE_RESPONSE), 0,
				  "no green response lost");
			ASSERT_EQ(t, e->cs.response_blue, e->cs.n, "every sample whole and right");
			ASSERT_EQ(t, e->cs.n, SAMPLE_CAP, "the ring held exactly its size");
			ASSERT_EQ(t, changed, 0, "answers forwarded as before the ring filled");
			ASSERT_EQ(t, e->ce.n, 0, "nothing in the error ring");
			ASSERT_EQ(t, stat_of(e, SHIFT_STAT_ERRBUF_DROPPED) - ed0, 0,
				  "errbuf_dropped");
			test_note(
				t,
				"%llu samples produced: %llu consumed + %llu dropped (ring of %llu); "
				"all %llu answers forwarded (verdict %u)",
				(unsigned long long)n, (unsigned long long)e->cs.n,
				(unsigned long long)dropped, (unsigned long long)SAMPLE_CAP,
				(unsigned long long)n, e->resp_verdict);
		}
	}

	if (test_sub(t, "%s", subs[1])) {
		n = SAMPLE_CAP + 100;
		d0 = stat_of(e, SHIFT_STAT_RINGBUF_DROPPED);
		ed0 = stat_of(e, SHIFT_STAT_ERRBUF_DROPPED);
		r0 = green_rst(e);
		if (ASSERT_OK(t, drain(e), "drain") &&
		    ASSERT_OK(t, flood(e, n, &changed), "flood") &&
		    ASSERT_OK(t, run(e, H_BACKEND, e->rst, e->rst_len, NULL), "green RST") &&
		    ASSERT_TRUE(t, ring_buffer__consume(e->errors) >= 0, "consume errors")) {
			/* The error ring alone, before the full sample ring is read. */
			ASSERT_EQ(t, e->ce.n, 1, "error samples delivered");
			ASSERT_EQ(t, e->ce.error_green, 1, "the green RST, whole");
			ASSERT_EQ(t, stat_of(e, SHIFT_STAT_ERRBUF_DROPPED) - ed0, 0,
				  "errbuf_dropped");
			ASSERT_EQ(t, green_rst(e) - r0, 1, "green backend RST counter");
			ASSERT_TRUE(t, ring_buffer__consume(e->samples) >= 0, "consume samples");
			ASSERT_EQ(t, e->cs.n + stat_of(e, SHIFT_STAT_RINGBUF_DROPPED) - d0, n,
				  "ordinary samples: consumed + dropped");
			ASSERT_EQ(t, stat_of(e, SHIFT_STAT_RINGBUF_DROPPED) - d0, 100,
				  "ringbuf_dropped (the ring was full)");
			test_note(
				t,
				"sample ring full (%llu in, %llu dropped): the green RST arrived in "
				"the error ring",
				(unsigned long long)e->cs.n,
				(unsigned long long)(stat_of(e, SHIFT_STAT_RINGBUF_DROPPED) - d0));
		}
	}

	if (test_sub(t, "%s", subs[2])) {
		__u64 k;

		n = ERROR_CAP + 77;
		ed0 = stat_of(e, SHIFT_STAT_ERRBUF_DROPPED);
		r0 = green_rst(e);
		l0 = lost_of(e, SHIFT_GREEN, SHIFT_SAMPLE_ERROR);
		rc = drain(e);
		for (k = 0; k < n && !rc; k++)
			rc = run(e, H_BACKEND, e->rst, e->rst_len, NULL);
		if (ASSERT_OK(t, rc, "green RSTs") && ASSERT_OK(t, consume(e), "consume")) {
			__u64 dropped = stat_of(e, SHIFT_STAT_ERRBUF_DROPPED) - ed0;

			ASSERT_EQ(t, e->ce.n + dropped, n, "consumed + errbuf_dropped");
			ASSERT_EQ(t, lost_of(e, SHIFT_GREEN, SHIFT_SAMPLE_ERROR) - l0, dropped,
				  "lost by service, color and kind: the service's green errors");
			ASSERT_EQ(t, e->ce.error_green, e->ce.n, "every error whole and right");
			ASSERT_EQ(t, e->ce.n, ERROR_CAP, "the error ring held exactly its size");
			ASSERT_EQ(t, green_rst(e) - r0, n, "green backend RST counter counts all");
			ASSERT_EQ(t, e->cs.n, 0, "no ordinary sample");
			test_note(
				t,
				"%llu errors: %llu consumed + %llu errbuf_dropped (ring of %llu); "
				"per-backend RST counter +%llu",
				(unsigned long long)n, (unsigned long long)e->ce.n,
				(unsigned long long)dropped, (unsigned long long)ERROR_CAP,
				(unsigned long long)(green_rst(e) - r0));
		}
	}
out:
	rb_teardown(e);
	free(e);
}
