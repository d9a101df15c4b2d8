// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Shadow mode's datapath (bpf/shadow.h), one case per row: a flow's first
 * request through the real client program, then what reached the shadow ring
 * and which per-service counter moved. Every row also checks the packet's
 * verdict is the one a flow without shadow gets: the copy never changes the
 * packet's fate.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/flow_hash.h>
#include <shift/shadow.h>
#include "table.h"

#pragma GCC diagnostic ignored "-Woverride-init"

#define SV_SVC 0
static const struct topo_service sv_svc = { SV_SVC, 4, IPPROTO_TCP, VIP4, 80, SHIFT_SVC_F_HTTP };
static const struct topo_backend sv_bes[2] = {
	{ 0,
	  SV_SVC,
	  SHIFT_BLUE,
	  4,
	  IPPROTO_TCP,
	  { 10, 1, 0, 11 },
	  8080,
	  true,
	  0,
	  { 0x02, 0xbe, 0, 0, 0, 0x11 } },
	{ 1,
	  SV_SVC,
	  SHIFT_GREEN,
	  4,
	  IPPROTO_TCP,
	  { 10, 1, 0, 21 },
	  8080,
	  true,
	  0,
	  { 0x02, 0xbe, 0, 0, 0, 0x21 } },
};

/* A ring record: 8-byte header + the copy, 8-byte aligned. */
#define SV_RECORD ((sizeof(struct shift_shadow_req) + 8 + 7) & ~(size_t)7)
#define SV_CAP (SHIFT_SHADOW_RING_BYTES / SV_RECORD)

struct sv_seen {
	__u64 n;
	struct shift_shadow_req last;
};

static int sv_cb(void *ctx, void *data, size_t len)
{
	struct sv_seen *s = ctx;

	s->n++;
	memcpy(&s->last, data, len < sizeof(s->last) ? len : sizeof(s->last));
	return 0;
}

struct sv_env {
	struct harness h;
	struct ring_buffer *rb;
	struct sv_seen seen;
	__u32 verdict; /* of a request on a flow shadow does not copy */
};

static int sv_cfg(struct sv_env *e, __u32 sample_bp, __u32 methods)
{
	struct shift_shadow_cfg c = { .sample_bp = sample_bp, .methods = methods };
	__u32 id = SV_SVC;

	return bpf_map_update_elem(e->h.m.fd[SHIFT_MAP_SHADOW_CFG], &id, &c, BPF_ANY) ? -errno : 0;
}

static __u64 sv_stat(struct sv_env *e, enum shift_shadow_stat k)
{
	int ncpu = libbpf_num_possible_cpus();
	__u32 key = SV_SVC * SHIFT_SHADOW_STAT_MAX + k;
	__u64 *v, sum = 0;

	if (ncpu <= 0)
		return ~0ull;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return ~0ull;
	if (bpf_map_lookup_elem(e->h.m.fd[SHIFT_MAP_SHADOW_STATS], &key, v))
		sum = ~0ull;
	else
		for (int c = 0; c < ncpu; c++)
			sum += v[c];
	free(v);
	return sum;
}

/* A payload packet `text` of an established flow (from the client's port). */
static int sv_payload(struct sv_env *e, __u16 port, const char *text, __u32 *verdict)
{
	struct pkt_spec s = PKT4(CL4, VIP4, IPPROTO_TCP, port, 80, .payload = 0);
	__u8 f[PKT_MAX];
	__u32 len;

	s.tcp_flags = TH_ACK | TH_PSH;
	s.payload = (__u16)strlen(text);
	s.seq = 1001;
	s.ack = 5001;
	len = pkt_build_payload(&s, text, f, sizeof(f), NULL);
	if (!len)
		return -EINVAL;
	return harness_run(e->h.prog[H_CLIENT], f, len, 0, NULL, NULL, verdict);
}

/* SYN, the backend's SYN-ACK, the handshake's ACK (the entry is written there:
 * bpf/synslot.h), then the first payload packet `text` (split: without its
 * end) on a new flow. */
static int sv_flow(struct sv_env *e, __u16 port, const char *text, __u32 *verdict)
{
	struct pkt_spec s = PKT4(CL4, VIP4, IPPROTO_TCP, port, 80, .payload = 0);
	__u8 f[PKT_MAX];
	__u32 len, v;
	int err, idx;

	s.tcp_flags = TH_ACK;
	s.seq = 1001;
	s.ack = 5001;
	err = harness_handshake(&e->h, H_CLIENT, &s, topo_backends, topo_n_backends, &idx);
	if (err)
		return err;
	if (idx < 0)
		return -ENOENT;
	len = pkt_build(&s, f, sizeof(f), NULL);
	err = len ? harness_run(e->h.prog[H_CLIENT], f, len, 0, NULL, NULL, &v) : -EINVAL;
	if (err)
		return err;
	s.tcp_flags = TH_ACK | TH_PSH;
	s.payload = (__u16)strlen(text);
	len = pkt_build_payload(&s, text, f, sizeof(f), NULL);
	if (!len)
		return -EINVAL;
	return harness_run(e->h.prog[H_CLIENT], f, len, 0, NULL, NULL, verdict);
}

static const char get_req[] = "GET /x HTTP/1.1\r\nHost: t\r\nUser-Agent: test\r\n\r\n";

static int sv_setup(struct tctx *t, struct sv_env *e)
{
	__u32 blue = 0, green = 1;

	if (!ASSERT_OK(t, harness_open_hooks(&e->h, H_SEED, 0, 0, 0, SHIFT_LOAD_XDP),
		       "harness_open") ||
	    !ASSERT_OK(t, harness_add_service(&e->h, &sv_svc), "service") ||
	    !ASSERT_OK(t, harness_add_backend(&e->h, &sv_bes[0]), "blue backend") ||
	    !ASSERT_OK(t, harness_add_backend(&e->h, &sv_bes[1]), "green backend") ||
	    !ASSERT_OK(t, harness_pool(&e->h, SV_SVC, SHIFT_BLUE, &blue, 1), "blue pool") ||
	    !ASSERT_OK(t, harness_pool(&e->h, SV_SVC, SHIFT_GREEN, &green, 1), "green pool") ||
	    !ASSERT_OK(t, dp_weight_set(&e->h.m, SV_SVC, 0), "weight 0"))
		return -1;
	e->rb = ring_buffer__new(e->h.m.fd[SHIFT_MAP_SHADOW], sv_cb, &e->seen, NULL);
	if (!ASSERT_TRUE(t, e->rb != NULL, "ring_buffer__new"))
		return -1;
	/* Shadow off: the verdict every later row must match. */
	if (!ASSERT_OK(t, sv_cfg(e, 0, 0), "cfg off") ||
	    !ASSERT_OK(t, sv_flow(e, 30000, get_req, &e->verdict), "request, shadow off"))
		return -1;
	ring_buffer__consume(e->rb);
	if (!ASSERT_EQ(t, e->seen.n, 0, "shadow off: nothing copied"))
		return -1;
	return sv_cfg(e, SHIFT_WEIGHT_MAX, (1u << SHIFT_M_GET) | (1u << SHIFT_M_HEAD));
}

struct sv_row {
	const char *desc;
	const char *text;
	__u32 weight; /* green weight for the flow */
	__u32 sample_bp;
	int stat; /* counter expected to move by one, -1 none */
	bool copied;
};

static const struct sv_row sv_rows[] = {
	{ "sampled GET on a blue flow: copied whole", get_req, 0, 10000, SHIFT_SHADOW_COPIED,
	  true },
	{ "HEAD is listed too", "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", 0, 10000, SHIFT_SHADOW_COPIED,
	  true },
	{ "POST (not in shadow_methods): skipped, method",
	  "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx", 0, 10000,
	  SHIFT_SHADOW_SKIP_METHOD, false },
	{ "headers not ended in the first packet: skipped, split", "GET / HTTP/1.1\r\nHost: t\r\n",
	  0, 10000, SHIFT_SHADOW_SKIP_SPLIT, false },
	{ "not HTTP: skipped, not_http", "SSH-2.0-OpenSSH_9.2\r\n", 0, 10000,
	  SHIFT_SHADOW_SKIP_NOT_HTTP, false },
	{ "a green flow is never copied", get_req, SHIFT_WEIGHT_MAX, 10000, -1, false },
	{ "sample 0.01 %: this flow is outside the sample", get_req, 0, 1, -1, false },
};

static void sv_row_run(struct tctx *t, struct sv_env *e, const struct sv_row *r, __u16 port)
{
	__u64 before[SHIFT_SHADOW_STAT_MAX], d;
	struct pkt_spec spec = PKT4(CL4, VIP4, IPPROTO_TCP, port, 80);
	__u32 v = ~0u, k;

	/* The 0.01 % row needs a flow the rule leaves out: nearly all are. */
	if (r->sample_bp == 1 && shift_shadow_slot(harness_hash(&spec, H_SEED)) < 1) {
		test_skip(t, "port %u happens to be in the 0.01 %% sample", port);
		return;
	}
	for (k = 0; k < SHIFT_SHADOW_STAT_MAX; k++)
		before[k] = sv_stat(e, k);
	e->seen.n = 0;
	if (!ASSERT_OK(t, sv_cfg(e, r->sample_bp, (1u << SHIFT_M_GET) | (1u << SHIFT_M_HEAD)),
		       "cfg") ||
	    !ASSERT_OK(t, dp_weight_set(&e->h.m, SV_SVC, r->weight), "weight") ||
	    !ASSERT_OK(t, sv_flow(e, port, r->text, &v), "flow"))
		return;
	ASSERT_EQ(t, v, e->verdict, "verdict as without shadow");
	ring_buffer__consume(e->rb);
	for (k = 0; k < SHIFT_SHADOW_STAT_MAX; k++) {
		d = sv_stat(e, k) - before[k];
		if (!ASSERT_EQ(t, d, (int)k == r->stat ? 1 : 0, "counter delta"))
			test_note(t, "counter %u moved by %llu", k, (unsigned long long)d);
	}
	ASSERT_EQ(t, e->seen.n, r->copied ? 1 : 0, "records in the shadow ring");
	if (r->copied && e->seen.n == 1) {
		const struct shift_shadow_req *q = &e->seen.last;

		ASSERT_EQ(t, q->len, strlen(r->text), "copy length");
		ASSERT_TRUE(t, !memcmp(q->data, r->text, strlen(r->text)), "copy bytes");
		ASSERT_EQ(t, q->flow_hash, harness_hash(&spec, H_SEED), "flow hash");
		ASSERT_EQ(t, q->service_id, SV_SVC, "service");
		ASSERT_EQ(t, q->backend_id, 0, "blue backend");
		ASSERT_EQ(t, q->method, r->text[0] == 'H' ? SHIFT_M_HEAD : SHIFT_M_GET, "method");
	}
	dp_weight_set(&e->h.m, SV_SVC, 0);
}

TEST(shadow)
{
	struct sv_env *e = calloc(1, sizeof(*e));
	size_t i;

	if (!ASSERT_TRUE(t, e != NULL, "calloc"))
		return;
	if (sv_setup(t, e))
		goto out;
	for (i = 0; i < sizeof(sv_rows) / sizeof(sv_rows[0]); i++)
		if (test_sub(t, "%s", sv_rows[i].desc))
			sv_row_run(t, e, &sv_rows[i], (__u16)(31000 + i));

	if (test_sub(t, "second request of a copied flow: not copied (first request only)")) {
		__u64 c0 = sv_stat(e, SHIFT_SHADOW_COPIED);
		__u32 v;

		sv_cfg(e, SHIFT_WEIGHT_MAX, 1u << SHIFT_M_GET);
		e->seen.n = 0;
		/* A second request on the same connection (no new SYN: a SYN on the
		 * completed 5-tuple would be a new connection, copied afresh). */
		if (ASSERT_OK(t, sv_flow(e, 32000, get_req, &v), "first") &&
		    ASSERT_OK(t, sv_payload(e, 32000, get_req, &v), "second")) {
			ring_buffer__consume(e->rb);
			ASSERT_EQ(t, sv_stat(e, SHIFT_SHADOW_COPIED) - c0, 1, "copied once");
			ASSERT_EQ(t, e->seen.n, 1, "one record");
		}
	}

	if (test_sub(t, "ring full, nobody consuming: counted (ring_full), packets unchanged")) {
		__u64 c0 = sv_stat(e, SHIFT_SHADOW_COPIED), f0 = sv_stat(e, SHIFT_SHADOW_RING_FULL);
		__u64 n = SV_CAP + 20, changed = 0, c, f;
		__u32 v;

		sv_cfg(e, SHIFT_WEIGHT_MAX, 1u << SHIFT_M_GET);
		for (__u64 k = 0; k < n; k++) {
			if (!ASSERT_OK(t, sv_flow(e, (__u16)(40000 + k), get_req, &v), "flow"))
				break;
			changed += v != e->verdict;
		}
		c = sv_stat(e, SHIFT_SHADOW_COPIED) - c0;
		f = sv_stat(e, SHIFT_SHADOW_RING_FULL) - f0;
		test_note(t, "%llu requests: %llu copied, %llu ring_full (ring of %zu copies)",
			  (unsigned long long)n, (unsigned long long)c, (unsigned long long)f,
			  (size_t)SV_CAP);
		ASSERT_EQ(t, c + f, n, "copied + ring_full = requests");
		ASSERT_TRUE(t, f >= 20, "at least the overflow counted");
		ASSERT_EQ(t, changed, 0, "verdicts unchanged");
		e->seen.n = 0;
		ring_buffer__consume(e->rb);
		ASSERT_EQ(t, e->seen.n, c, "the ring holds every copy counted");
	}
out:
	if (e->rb)
		ring_buffer__free(e->rb);
	harness_close(&e->h);
	free(e);
}
