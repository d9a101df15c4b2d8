// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench_rollback: rollback reaction time (SPEC "Performance targets": the
 * triggering sample's kernel timestamp -> green weight 0 written, p99 under
 * 100 us with background sample load), measured on the real path:
 *
 *   real skeleton (shift_skel_load) in a private network namespace
 *   real config: conf_parse() of the text below + apply_config()
 *   real consumer: samples_open() on an epoll loop thread pinned to one CPU,
 *     samples_poll() -> samples_handle() -> analysis_feed() -> rollback_fire()
 *   real datapath: packets through shift_xdp_client / shift_xdp_backend with
 *     BPF_PROG_TEST_RUN from a second thread pinned to another CPU
 *
 * Background load: keep-alive blue flows, each "GET" from the client followed
 * by the blue backend's "HTTP/1.1 200": one RESPONSE sample per pair, batched
 * wakeups (BPF_RB_NO_WAKEUP), all the time, also while a trigger is in flight.
 * Trigger: a new green flow, then a RST from the green backend: one ERROR
 * sample (it wakes the waiting loop at once); max_consecutive_errors = 1 fires
 * on it. The reaction is what rollback_fire() records (service_rt.reaction_ns).
 * The loop thread then clears the latch (rollback_clear + green weight back
 * to 100 %, on its own thread: the agent state is single-threaded) and the
 * next round starts after a random 200..1200 background samples.
 *
 * After the write, rollback_fire() goes on (start the eviction of green
 * flows, hand the state to the state file's writer thread, log) before the
 * loop reads the next sample: reported too, since any other service's error
 * waits that long. --persist-inline writes the state file on the loop
 * instead (two fsyncs, as shiftd did before its writer thread), for the
 * comparison. The eviction itself runs as in shiftd, a chunk per loop turn
 * after the turn's samples (analysis/evict.h).
 *
 * --overload: samples far beyond what the agent reads. The loop thread stops
 * consuming (ring fds out of its epoll set), the injector fills the sample
 * ring with ordinary samples (0.9 x and --fill x its capacity), and one error
 * comes either
 *   - while the agent is stopped: reported is resume -> weight written, i.e.
 *     whether the backlog delays the rollback once the agent reads again;
 *   - after it resumed, while it drains the backlog: the reaction proper.
 * Every round also checks consumed + SHIFT_STAT_RINGBUF_DROPPED +
 * SHIFT_STAT_ERRBUF_DROPPED = samples produced, exactly.
 *
 *   bench_rollback [--out FILE] [--rollbacks N] [--rate SAMPLES_PER_S]
 *                  [--overload [--rounds R] [--fill X]] [--fifo PRIO]
 *                  [--burst N [--rounds R]] [--persist-inline]
 *
 * --burst N: N more services, each rolled back by its first error; all N
 * errors come within microseconds (services failing together), --rounds
 * times, first with the state file written on the loop (as shiftd did before
 * its writer thread), then by the writer thread (not with --persist-inline).
 * Each service's reaction includes what the loop did for the ones before it.
 *
 * --fifo runs the loop thread SCHED_FIFO, as shiftd's systemd unit runs shiftd
 * (priority 20; started by hand it runs SCHED_OTHER, this bench's default): on
 * a host whose CPUs are busy, that is what separates a wake-up in microseconds
 * from one that waits for the scheduler's slice to end.
 *
 * --rate: the reaction depends on the background rate. Flat out the loop
 * thread's CPU hardly idles; at a few thousand samples/s it sleeps between
 * wakeups, and an error's wakeup then waits for that CPU to leave its idle
 * state (in a VM, a halted vCPU: BENCHMARKS §7w).
 *
 * Needs root. Not part of `make check`: figures, not verdicts (exit 0 unless
 * the set-up fails).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>
#include <shift/sample.h>
#include "agent.h"
#include "harness.h"
#include "ops/log.h"
#include "pkt.h"
#include "analysis/evict.h"
#include "analysis/rollback.h"
#include "analysis/samples.h"

#define SVC_NAME "web"
#define N_BG_FLOWS 256
#define BG_PORT0 20000
#define GREEN_PORT0 30000
#define GREEN_PORTS 30000
/* --burst: at most this many services roll back at once. */
#define BURST_MAX 64
#define WAIT_NS (2ull * 1000000000ull) /* a rollback not seen by then: missed */
/* The loop thread's answer to a command; it may be busy after a rollback (evict, fsync). */
#define CMD_WAIT_NS (30ull * 1000000000ull)
/* Ring buffer record: 8-byte header + the sample, 8-byte aligned. */
#define RB_RECORD ((sizeof(struct shift_sample) + 8 + 7) & ~7ul)

static const char conf_fmt[] = "[global]\n"
			       "interface = shv1\n"
			       "backend_interface = shv0\n"
			       "hash_seed = 0x5eed\n"
			       "bpffs_dir = /sys/fs/bpf/bench-rollback-unused\n"
			       "state_dir = %s\n"
			       "textfile_dir = %s\n"
			       "control_socket = %s/ctl.sock\n"
			       "\n"
			       "[service " SVC_NAME "]\n"
			       "vip = 10.0.0.10:80\n"
			       "protocol = tcp\n"
			       "blue = 10.1.0.18:8080\n"
			       "green = 10.1.0.21:8080\n"
			       "green_weight = 0%%\n"
			       "health_check = none\n"
			       "rollback_window = 10s\n"
			       "min_requests = 20\n"
			       "max_error_rate = 5%%\n"
			       "max_error_rate_increase = 1%%\n"
			       "max_latency_p99 = 500ms\n"
			       "max_latency_ratio = 2.0\n"
			       "max_consecutive_errors = 1\n"
			       "rollback_evict = yes\n";

static const __u8 ip_client[4] = { 198, 51, 100, 7 };
static const __u8 ip_vip[4] = { 10, 0, 0, 10 };
static const __u8 ip_blue[4] = { 10, 1, 0, 18 };
static const __u8 ip_green[4] = { 10, 1, 0, 21 };

enum cmd {
	CMD_NONE,
	CMD_CLEAR, /* rollback_clear + green weight back to 100 % */
	CMD_PAUSE, /* drain, then stop consuming */
	CMD_RESUME, /* consume again: drain the backlog, then acknowledge */
	CMD_RESUME_ASYNC, /* consume again: acknowledge, then drain from the epoll loop */
	CMD_BURST_CLEAR, /* --burst: copy out the burst services' reactions, clear them */
	CMD_PERSIST_START, /* --burst: start the state writer thread, as shiftd does */
	CMD_COUNT, /* read the rings (and their losses), then blue's window */
	CMD_STOP,
};

/* The loop thread owns the agent; the injector only sees these. */
struct shared {
	struct agent *a;
	struct service_rt *s;
	struct ring_buffer *rb;
	int epfd, rbfd, evfd;
	int pfd; /* persist_fd(): the state writer's eventfd, -1 with --persist-inline */
	int cpu;
	int fifo; /* SCHED_FIFO priority of the loop thread; 0 = SCHED_OTHER, as shiftd by hand */
	unsigned int burst; /* --burst: services b0.. */
	struct service_rt *bs[BURST_MAX];
	__u64 burst_r[BURST_MAX]; /* CMD_BURST_CLEAR's copy of their reaction_ns */
	bool paused; /* loop thread only: an event already returned must not consume */
	_Atomic int cmd;
	_Atomic unsigned int cmd_done; /* commands handled */
	_Atomic unsigned int rollbacks; /* rollbacks seen */
	_Atomic unsigned long long last_reaction_ns;
	_Atomic unsigned long long last_poll_end_ns; /* the poll that rolled back returned */
	_Atomic unsigned long long samples; /* agent.samples as of the last poll */
	_Atomic unsigned long long resume_ns; /* when the last resume started consuming */
	_Atomic unsigned long long blue_window; /* web's blue requests, as of CMD_PAUSE / _COUNT */
	_Atomic int err;
};

struct opts {
	const char *out;
	unsigned int rollbacks;
	double rate; /* background samples/s; 0 = as fast as the injector goes */
	bool overload;
	int fifo;
	unsigned int rounds;
	double fill;
	bool persist_inline; /* the state file written on the loop, as before the writer thread */
	unsigned int burst; /* services failing at once (0: the normal mode) */
};

struct frames {
	__u8 req[N_BG_FLOWS][PKT_MAX], resp[N_BG_FLOWS][PKT_MAX];
	__u32 req_len[N_BG_FLOWS], resp_len[N_BG_FLOWS];
};

struct bench {
	struct harness h;
	struct fib_env fib;
	struct agent *a;
	struct shared sh;
	struct frames *fr;
	__u64 bg_samples; /* background samples produced */
	__u64 trigger_ns; /* the last RST's BPF_PROG_TEST_RUN returned (>= its sample's ts) */
	/* The sample ring's positions, mapped read-only: where the agent's drain is. */
	volatile const unsigned long *cons_pos, *prod_pos;
	long page;
	__u64 rng;
	unsigned int green_seq;
	char dir[64];
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

/* Say why a call failed; returns -errno as it was. */
static int fail_errno(const char *what)
{
	int err = errno;

	fprintf(stderr, "bench: %s: %s\n", what, strerror(err));
	return -err;
}

static int pin_to(int cpu)
{
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err)
		fprintf(stderr, "bench: pinning to CPU %d: %s\n", cpu, strerror(err));
	return -err;
}

/* --- packets --------------------------------------------------------------- */

static void spec_client_to(struct pkt_spec *s, const __u8 *vip, __u16 sport, __u8 flags,
			   __u16 payload);

static void spec_client(struct pkt_spec *s, __u16 sport, __u8 flags, __u16 payload)
{
	spec_client_to(s, ip_vip, sport, flags, payload);
}

static void spec_client_to(struct pkt_spec *s, const __u8 *vip, __u16 sport, __u8 flags,
			   __u16 payload)
{
	static const __u8 edge[6] = MAC_EDGE, cl[6] = MAC_CLIENT;

	memset(s, 0, sizeof(*s));
	memcpy(s->dmac, edge, 6);
	memcpy(s->smac, cl, 6);
	s->family = 4;
	s->proto = IPPROTO_TCP;
	memcpy(s->saddr, ip_client, 4);
	memcpy(s->daddr, vip, 4);
	s->sport = sport;
	s->dport = 80;
	s->ttl = 64;
	s->tcp_flags = flags;
	s->payload = payload;
	/* After the SYN, its sequence number + 1 (and the SYN-ACK's + 1 as the
	 * acknowledgment): a client ACK with another is no handshake's first
	 * ACK (syn_slot_step()) and writes no entry, and a flow without one
	 * makes no sample of its requests and answers. */
	s->seq = flags & TH_SYN ? 1000 : 1001;
	s->ack = flags & TH_ACK ? 5001 : 0;
}

static void spec_backend(struct pkt_spec *s, const __u8 *be, __u16 cport, __u8 flags, __u16 payload)
{
	static const __u8 edge[6] = MAC_EDGE, bem[6] = FIB_MAC_BE;

	memset(s, 0, sizeof(*s));
	memcpy(s->dmac, edge, 6);
	memcpy(s->smac, bem, 6);
	s->family = 4;
	s->proto = IPPROTO_TCP;
	memcpy(s->saddr, be, 4);
	memcpy(s->daddr, ip_client, 4);
	s->sport = 8080;
	s->dport = cport;
	s->ttl = 64;
	s->tcp_flags = flags;
	s->payload = payload;
	s->seq = flags & TH_SYN ? 5000 : 5001;
	s->ack = 1001;
}

/* Build a frame whose L4 payload is text, or none (NULL). */
static __u32 build(const struct pkt_spec *s, const char *text, __u8 *buf)
{
	return pkt_build_payload(s, text, buf, PKT_MAX, NULL);
}

static int run(struct bench *b, enum h_prog p, const __u8 *f, __u32 len, __u32 want)
{
	__u32 ifindex = p == H_CLIENT ? (__u32)b->fib.if_cl : (__u32)b->fib.if_be;
	__u32 verdict;
	int err = harness_run(b->h.prog[p], f, len, ifindex, NULL, NULL, &verdict);

	if (err) {
		fprintf(stderr, "bench: BPF_PROG_TEST_RUN: %s\n", strerror(-err));
		return err;
	}
	if (want != ~0u && verdict != want) {
		fprintf(stderr, "bench: verdict %u, expected %u\n", verdict, want);
		return -EPROTO;
	}
	return 0;
}

/* A frame without payload, as s describes it, through program p. */
static int run_spec(struct bench *b, enum h_prog p, const struct pkt_spec *s)
{
	__u8 f[PKT_MAX];
	__u32 len = build(s, NULL, f);

	return len ? run(b, p, f, len, ~0u) : -EINVAL;
}

static const char http_req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char http_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/*
 * Blue keep-alive flows (the weight is 0 at this point): SYN, SYN-ACK, the
 * client's ACK, one flow after the other. With every SYN first, a later
 * flow's SYN could take an earlier one's SYN slot before its first ACK came
 * (256 flows in 32,768 slots: one such pair a run, on average), and that
 * flow, written nowhere, made none of its samples.
 */
static int make_bg_flows(struct bench *b)
{
	struct pkt_spec s;
	__u32 i;
	int err;

	for (i = 0; i < N_BG_FLOWS; i++) {
		__u16 port = (__u16)(BG_PORT0 + i);

		spec_client(&s, port, TH_SYN, 0);
		err = run_spec(b, H_CLIENT, &s);
		if (err)
			return err;
		spec_backend(&s, ip_blue, port, TH_SYN | TH_ACK, 0);
		err = run_spec(b, H_BACKEND, &s);
		if (err)
			return err;
		spec_client(&s, port, TH_ACK, 0);
		err = run_spec(b, H_CLIENT, &s);
		if (err)
			return err;
		spec_client(&s, port, TH_ACK | TH_PUSH, (__u16)strlen(http_req));
		b->fr->req_len[i] = build(&s, http_req, b->fr->req[i]);
		spec_backend(&s, ip_blue, port, TH_ACK | TH_PUSH, (__u16)strlen(http_resp));
		b->fr->resp_len[i] = build(&s, http_resp, b->fr->resp[i]);
		if (!b->fr->req_len[i] || !b->fr->resp_len[i])
			return -EINVAL;
	}
	return 0;
}

/* One background RESPONSE sample: a request, then its answer. */
static int bg_one(struct bench *b)
{
	__u32 i = (__u32)(b->bg_samples % N_BG_FLOWS);
	int err;

	err = run(b, H_CLIENT, b->fr->req[i], b->fr->req_len[i], ~0u);
	if (!err)
		err = run(b, H_BACKEND, b->fr->resp[i], b->fr->resp_len[i], ~0u);
	if (!err)
		b->bg_samples++;
	return err;
}

/* Paced background: n samples at opt rate (0: flat out). */
struct pacer {
	__u64 start_ns, base;
	double rate;
};

static int bg_paced(struct bench *b, struct pacer *p)
{
	if (p->rate > 0) {
		__u64 due =
			p->start_ns + (__u64)((double)(b->bg_samples - p->base) * 1e9 / p->rate);

		if (now_ns() < due)
			return 0;
	}
	return bg_one(b);
}

/* The trigger: a new green flow (weight 100 %), then a RST from green. */
static int trigger(struct bench *b)
{
	__u16 port = (__u16)(GREEN_PORT0 + b->green_seq++ % GREEN_PORTS);
	struct pkt_spec s;
	int err;

	spec_client(&s, port, TH_SYN, 0);
	err = run_spec(b, H_CLIENT, &s);
	if (err)
		return err;
	spec_backend(&s, ip_green, port, TH_RST | TH_ACK, 0);
	err = run_spec(b, H_BACKEND, &s);
	b->trigger_ns = now_ns();
	return err;
}

/*
 * --burst: each burst service's new green flow and its RST, one service after
 * the other (a few microseconds apart): errors of services failing together.
 */
static int trigger_burst(struct bench *b, unsigned int n)
{
	struct pkt_spec s;
	unsigned int i;
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		__u16 port = (__u16)(GREEN_PORT0 + b->green_seq++ % GREEN_PORTS);
		__u8 vip[4] = { 10, 0, 0, (__u8)(100 + i) },
		     green[4] = { 10, 1, 0, (__u8)(170 + i) };

		spec_client_to(&s, vip, port, TH_SYN, 0);
		err = run_spec(b, H_CLIENT, &s);
		if (err)
			break;
		spec_backend(&s, green, port, TH_RST | TH_ACK, 0);
		err = run_spec(b, H_BACKEND, &s);
	}
	return err;
}

/* --- the loop thread: shiftd's event loop, reduced to samples + commands ---- */

static void publish(struct shared *sh, __u64 *seen)
{
	if (sh->a->reaction_count != *seen) {
		unsigned int n = (unsigned int)(sh->a->reaction_count - *seen);

		*seen = sh->a->reaction_count;
		atomic_store(&sh->last_reaction_ns, sh->s->reaction_ns);
		atomic_store(&sh->last_poll_end_ns, now_ns());
		atomic_fetch_add(&sh->rollbacks, n);
	}
	atomic_store(&sh->samples, sh->a->samples);
}

static int handle_cmd(struct shared *sh, __u64 *seen)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = sh->rbfd };
	__u64 v;
	int c, err = 0;

	if (read(sh->evfd, &v, sizeof(v)) != sizeof(v))
		return 0;
	c = atomic_exchange(&sh->cmd, CMD_NONE);
	switch (c) {
	case CMD_CLEAR:
		rollback_clear(sh->a, sh->s);
		sh->s->weight = SHIFT_WEIGHT_MAX;
		err = apply_weight(sh->a, sh->s);
		break;
	case CMD_PAUSE:
	case CMD_COUNT:
		samples_poll(sh->a, sh->rb);
		publish(sh, seen);
		atomic_store(&sh->blue_window, window_requests(&sh->s->an.pool[SHIFT_BLUE]));
		if (c == CMD_PAUSE) {
			if (epoll_ctl(sh->epfd, EPOLL_CTL_DEL, sh->rbfd, NULL))
				err = -errno;
			sh->paused = true;
		}
		break;
	case CMD_RESUME:
	case CMD_RESUME_ASYNC:
		atomic_store(&sh->resume_ns, now_ns());
		if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, sh->rbfd, &ev))
			err = -errno;
		sh->paused = false;
		if (c == CMD_RESUME) {
			samples_poll(sh->a, sh->rb);
			publish(sh, seen);
		}
		break;
	case CMD_BURST_CLEAR:
		for (unsigned int i = 0; i < sh->burst && !err; i++) {
			struct service_rt *s = sh->bs[i];

			sh->burst_r[i] = s->latched ? s->reaction_ns : 0;
			rollback_clear(sh->a, s);
			s->weight = SHIFT_WEIGHT_MAX;
			err = apply_weight(sh->a, s);
		}
		break;
	case CMD_PERSIST_START: {
		struct epoll_event pe = { .events = EPOLLIN };

		err = persist_start(sh->a);
		if (!err) {
			sh->pfd = pe.data.fd = persist_fd(sh->a);
			if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, sh->pfd, &pe))
				err = -errno;
		}
		break;
	}
	case CMD_STOP:
		atomic_fetch_add(&sh->cmd_done, 1);
		return 1;
	default:
		return 0;
	}
	if (err)
		atomic_store(&sh->err, err);
	atomic_fetch_add(&sh->cmd_done, 1);
	return 0;
}

static void *loop_thread(void *arg)
{
	struct shared *sh = arg;
	struct epoll_event evs[4];
	__u64 seen = sh->a->reaction_count;
	int n, i;

	pin_to(sh->cpu);
	if (sh->fifo) {
		struct sched_param sp = { .sched_priority = sh->fifo };
		int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);

		if (err)
			fprintf(stderr, "bench: SCHED_FIFO %d: %s\n", sh->fifo, strerror(err));
	}
	for (;;) {
		/* As shiftd: an eviction left to do keeps the loop turning. */
		n = epoll_wait(sh->epfd, evs, 4, evict_pending(sh->a) ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			atomic_store(&sh->err, -errno);
			fprintf(stderr, "bench: epoll_wait: %s\n", strerror(errno));
			return NULL;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd == sh->rbfd) {
				if (sh->paused)
					continue;
				/* As shiftd: samples first. */
				samples_poll(sh->a, sh->rb);
				publish(sh, &seen);
			} else if (evs[i].data.fd == sh->pfd) {
				/* As shiftd: a save is done (and a notify hook may run). */
				persist_collect(sh->a);
			} else if (handle_cmd(sh, &seen)) {
				return NULL;
			}
		}
		/* As shiftd: a chunk of an eviction after the turn's samples. */
		if (evict_pending(sh->a))
			evict_run(sh->a, EVICT_CHUNK_NS);
	}
}

/* Send a command; keep the background going (if asked) until it is done. */
static int command(struct bench *b, int c, struct pacer *bg)
{
	unsigned int want = atomic_load(&b->sh.cmd_done) + 1;
	__u64 v = 1, deadline = now_ns() + CMD_WAIT_NS;

	atomic_store(&b->sh.cmd, c);
	if (write(b->sh.evfd, &v, sizeof(v)) != sizeof(v)) {
		return fail_errno("eventfd write");
	}
	while (atomic_load(&b->sh.cmd_done) < want) {
		if (bg) {
			int err = bg_paced(b, bg);

			if (err)
				return err;
		}
		if (now_ns() > deadline) {
			fprintf(stderr, "bench: the loop thread did not answer command %d\n", c);
			return -ETIMEDOUT;
		}
	}
	return atomic_load(&b->sh.err);
}

/* --- set-up ------------------------------------------------------------------ */

static void rm_dir(const char *dir)
{
	struct dirent *d;
	DIR *dp = opendir(dir);

	if (!dp)
		return;
	while ((d = readdir(dp)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			unlinkat(dirfd(dp), d->d_name, 0);
	closedir(dp);
	rmdir(dir);
}

/*
 * --burst: services b0..bN-1, each its own VIP and backends, green at 100 %,
 * rolled back by one error (no eviction: only the save follows the write).
 */
static int burst_conf(char *text, size_t len, unsigned int n)
{
	size_t at = strlen(text);
	unsigned int i;
	int k;

	for (i = 0; i < n; i++) {
		k = snprintf(text + at, len - at,
			     "\n[service b%u]\nvip = 10.0.0.%u:80\nprotocol = tcp\n"
			     "blue = 10.1.0.%u:8080\ngreen = 10.1.0.%u:8080\ngreen_weight = 100%%\n"
			     "health_check = none\nmax_consecutive_errors = 1\n"
			     "rollback_evict = no\n",
			     i, 100 + i, 100 + i, 170 + i);
		if (k < 0 || (size_t)k >= len - at)
			return -ENOSPC;
		at += (size_t)k;
	}
	return 0;
}

static int setup(struct bench *b, bool persist_inline)
{
	struct shift_conf *conf;
	char text[2048 + BURST_MAX * 256], err[512];
	int rc;

	if (unshare(CLONE_NEWNET)) {
		return fail_errno("unshare(CLONE_NEWNET)");
	}
	rc = fib_env_setup(&b->fib);
	if (rc)
		return rc;
	snprintf(b->dir, sizeof(b->dir), "/tmp/bench_rollback.XXXXXX");
	if (!mkdtemp(b->dir)) {
		return fail_errno("mkdtemp");
	}
	rc = harness_open(&b->h, H_SEED, 0, 0);
	if (rc)
		return rc;
	b->a = calloc(1, sizeof(*b->a));
	b->fr = calloc(1, sizeof(*b->fr));
	if (!b->a || !b->fr)
		return -ENOMEM;
	b->a->skel = b->h.skel;
	b->a->maps = b->h.m;
	snprintf(b->a->state_path, sizeof(b->a->state_path), "%s/state", b->dir);
	snprintf(b->a->conf_path, sizeof(b->a->conf_path), "bench_rollback.conf");
	snprintf(text, sizeof(text), conf_fmt, b->dir, b->dir, b->dir);
	rc = burst_conf(text, sizeof(text), b->sh.burst);
	if (rc)
		return rc;
	rc = conf_parse(text, strlen(text), "bench_rollback.conf", &conf, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "bench: %s\n", err);
		return rc;
	}
	rc = apply_config(b->a, conf, true);
	if (rc) {
		fprintf(stderr, "bench: apply_config: %s\n", strerror(-rc));
		return rc;
	}
	b->sh.a = b->a;
	b->sh.s = agent_service(b->a, SVC_NAME);
	if (!b->sh.s)
		return -ENOENT;
	for (unsigned int i = 0; i < b->sh.burst; i++) {
		char name[16];

		snprintf(name, sizeof(name), "b%u", i);
		b->sh.bs[i] = agent_service(b->a, name);
		if (!b->sh.bs[i])
			return -ENOENT;
	}
	rc = make_bg_flows(b);
	if (rc)
		return rc;
	/* Every new flow green from here on; the background flows stay blue. */
	b->sh.s->weight = SHIFT_WEIGHT_MAX;
	rc = apply_weight(b->a, b->sh.s);
	if (rc)
		return rc;
	b->sh.rb = samples_open(b->a);
	if (!b->sh.rb)
		return -errno ? -errno : -EINVAL;
	/* The set-up's CONNECT samples are not part of the measurement. */
	samples_poll(b->a, b->sh.rb);
	b->page = sysconf(_SC_PAGESIZE);
	{
		int fd = b->a->maps.fd[SHIFT_MAP_SAMPLES];
		void *c = mmap(NULL, (size_t)b->page, PROT_READ, MAP_SHARED, fd, 0);
		void *p = mmap(NULL, (size_t)b->page, PROT_READ, MAP_SHARED, fd, b->page);

		if (c == MAP_FAILED || p == MAP_FAILED) {
			return fail_errno("mmap of the sample ring");
		}
		b->cons_pos = c;
		b->prod_pos = p;
	}
	b->sh.rbfd = ring_buffer__epoll_fd(b->sh.rb);
	b->sh.epfd = epoll_create1(EPOLL_CLOEXEC);
	b->sh.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->sh.epfd < 0 || b->sh.evfd < 0) {
		return fail_errno("epoll/eventfd");
	}
	{
		struct epoll_event e1 = { .events = EPOLLIN, .data.fd = b->sh.rbfd };
		struct epoll_event e2 = { .events = EPOLLIN, .data.fd = b->sh.evfd };

		if (epoll_ctl(b->sh.epfd, EPOLL_CTL_ADD, b->sh.rbfd, &e1) ||
		    epoll_ctl(b->sh.epfd, EPOLL_CTL_ADD, b->sh.evfd, &e2)) {
			return fail_errno("epoll_ctl");
		}
	}
	/* As shiftd: the state file's writes on a thread of their own (--burst
	 * starts it between its two phases). */
	b->sh.pfd = -1;
	if (!persist_inline && !b->sh.burst) {
		struct epoll_event e3 = { .events = EPOLLIN };

		rc = persist_start(b->a);
		if (rc)
			return rc;
		b->sh.pfd = e3.data.fd = persist_fd(b->a);
		if (epoll_ctl(b->sh.epfd, EPOLL_CTL_ADD, b->sh.pfd, &e3))
			return fail_errno("epoll_ctl");
	}
	return 0;
}

/* --- figures ------------------------------------------------------------------ */

static int cmp_u64(const void *x, const void *y)
{
	__u64 a = *(const __u64 *)x, b = *(const __u64 *)y;

	return a < b ? -1 : a > b;
}

/* Nearest rank. */
static double pct_us(const __u64 *sorted, size_t n, double p)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)((p / 100.0) * (double)n + 0.999999);
	i = i ? i - 1 : 0;
	if (i >= n)
		i = n - 1;
	return (double)sorted[i] / 1e3;
}

static void header(FILE *f, const char *what, int fifo)
{
	struct utsname u;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	uname(&u);
	fprintf(f, "bench_rollback %s\n", what);
	double load[3] = { 0, 0, 0 };

	if (getloadavg(load, 3) < 0)
		load[0] = -1;
	fprintf(f,
		"machine: %ld online CPUs, kernel %s %s, load average %.2f; loop thread on CPU 0 "
		"(%s), injector on CPU %d\n",
		cpus, u.release, u.machine, load[0],
		fifo ? "SCHED_FIFO as shiftd's unit" : "SCHED_OTHER as shiftd by hand",
		cpus > 1 ? 1 : 0);
}

static __u64 stat_get(struct bench *b, enum shift_stat which)
{
	__u64 st[SHIFT_STAT_MAX];

	return dp_stats(&b->h.m, st) ? 0 : st[which];
}

/* --- the normal mode ------------------------------------------------------------ */

static int bench_normal(struct bench *b, const struct opts *o, FILE *out)
{
	__u64 *r = calloc(o->rollbacks, sizeof(*r)), *post = calloc(o->rollbacks, sizeof(*post));
	struct pacer pc = { .rate = o->rate };
	__u64 t0, t1, s0, d0, d1, bg0, gap;
	unsigned int i, missed = 0, n = 0;
	int err = 0;

	if (!r || !post) {
		free(r);
		free(post);
		return -ENOMEM;
	}
	d0 = stat_get(b, SHIFT_STAT_RINGBUF_DROPPED) + stat_get(b, SHIFT_STAT_ERRBUF_DROPPED);
	s0 = atomic_load(&b->sh.samples);
	bg0 = b->bg_samples;
	t0 = now_ns();
	pc.start_ns = t0;
	pc.base = b->bg_samples;
	for (i = 0; i < o->rollbacks && !err; i++) {
		unsigned int want = atomic_load(&b->sh.rollbacks) + 1;
		__u64 deadline;

		/* 200..1200 background samples between two triggers. */
		gap = 200 + h_rand(&b->rng) % 1000;
		while (gap && !err) {
			__u64 before = b->bg_samples;

			err = bg_paced(b, &pc);
			gap -= b->bg_samples - before;
		}
		if (err)
			break;
		err = trigger(b);
		if (err)
			break;
		deadline = now_ns() + WAIT_NS;
		while (atomic_load(&b->sh.rollbacks) < want && !err) {
			if (now_ns() > deadline)
				break;
			err = bg_paced(b, &pc);
		}
		if (atomic_load(&b->sh.rollbacks) < want) {
			missed++;
			continue;
		}
		r[n] = atomic_load(&b->sh.last_reaction_ns);
		/* write done <= trigger_ns + reaction: a lower bound of the time the
		 * loop spent after the write (eviction start, persist, log) before reading on. */
		post[n] = atomic_load(&b->sh.last_poll_end_ns) - (b->trigger_ns + r[n]);
		if ((__s64)post[n] < 0)
			post[n] = 0;
		n++;
		err = command(b, CMD_CLEAR, &pc);
	}
	t1 = now_ns();
	/* Let the last batched samples in before counting. */
	if (!err)
		err = command(b, CMD_PAUSE, NULL);
	d1 = stat_get(b, SHIFT_STAT_RINGBUF_DROPPED) + stat_get(b, SHIFT_STAT_ERRBUF_DROPPED);
	if (err) {
		free(r);
		free(post);
		return err;
	}
	qsort(r, n, sizeof(*r), cmp_u64);
	qsort(post, n, sizeof(*post), cmp_u64);
	{
		double secs = (double)(t1 - t0) / 1e9;
		__u64 consumed = atomic_load(&b->sh.samples) - s0;
		double sum = 0;
		unsigned int k;

		for (k = 0; k < n; k++)
			sum += (double)r[k];
		for (k = 0; k < 2; k++) {
			FILE *f = k ? out : stdout;

			if (!f)
				continue;
			header(f,
			       "(reaction: triggering sample's kernel ts -> weight map write done)",
			       o->fifo);
			fprintf(f,
				"rollbacks: %u measured, %u missed (no rollback within %.0f s)\n",
				n, missed, (double)WAIT_NS / 1e9);
			fprintf(f,
				"background: %llu RESPONSE samples in %.2f s = %.0f samples/s "
				"(target %s), %llu consumed by the agent, %llu dropped by the ring "
				"buffer\n",
				(unsigned long long)(b->bg_samples - bg0), secs,
				(double)(b->bg_samples - bg0) / secs,
				o->rate > 0 ? "paced" : "flat out", (unsigned long long)consumed,
				(unsigned long long)(d1 - d0));
			fprintf(f,
				"reaction us: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  min %.1f  mean "
				"%.1f\n",
				pct_us(r, n, 50), pct_us(r, n, 90), pct_us(r, n, 99),
				n ? (double)r[n - 1] / 1e3 : 0, n ? (double)r[0] / 1e3 : 0,
				n ? sum / n / 1e3 : 0);
			fprintf(f,
				"after the write, before the next sample (eviction start, persist "
				"state %s, log): p50 %.1f  p99 %.1f  max %.1f us\n",
				o->persist_inline ? "on the loop (--persist-inline)" :
						    "handed to its writer thread",
				pct_us(post, n, 50), pct_us(post, n, 99),
				n ? (double)post[n - 1] / 1e3 : 0);
			fprintf(f, "goal p99 < 100 us: %s\n",
				n && !missed && pct_us(r, n, 99) < 100.0 ? "met" : "NOT met");
		}
	}
	free(r);
	free(post);
	return command(b, CMD_RESUME, NULL);
}

/* --- overload ------------------------------------------------------------------- */

enum when {
	ERR_WHILE_STOPPED, /* the error is queued before the agent reads again */
	ERR_DURING_DRAIN, /* the error comes while the agent chews through the backlog */
};

struct round {
	double fill;
	enum when when;
	__u64 produced, consumed, dropped, err_dropped;
	bool fired;
	__u64 reaction_ns; /* rollback_fire: the error's kernel ts -> weight written */
	__u64 after_resume_ns; /* resume -> weight written */
	__u64 ahead; /* ERR_DURING_DRAIN: samples still queued when the error came */
	__u64 window; /* blue's window grew by this much: every background sample, lost or not */
	__u64 bg; /* background samples produced (all blue responses) */
};

static int overload_round(struct bench *b, double fill, enum when when, struct round *rd)
{
	__u64 cap = SHIFT_RINGBUF_BYTES / RB_RECORD, n = (__u64)(fill * (double)cap), k;
	__u64 s0, d0, e0, w0, t0, deadline, deadline0 = now_ns() + 10 * WAIT_NS;
	unsigned int want;
	int err;

	memset(rd, 0, sizeof(*rd));
	rd->fill = fill;
	rd->when = when;
	err = command(b, CMD_PAUSE, NULL);
	if (err)
		return err;
	s0 = atomic_load(&b->sh.samples);
	d0 = stat_get(b, SHIFT_STAT_RINGBUF_DROPPED);
	e0 = stat_get(b, SHIFT_STAT_ERRBUF_DROPPED);
	w0 = atomic_load(&b->sh.blue_window);
	rd->bg = n;
	want = atomic_load(&b->sh.rollbacks) + 1;
	for (k = 0; k < n && !err; k++)
		err = bg_one(b);
	if (err)
		return err;
	if (when == ERR_WHILE_STOPPED) {
		err = trigger(b);
		if (!err)
			err = command(b, CMD_RESUME, NULL);
	} else {
		/* Acknowledged before the loop thread drains; the error goes in
		 * once the drain has begun. */
		unsigned long c0 = *b->cons_pos;

		err = command(b, CMD_RESUME_ASYNC, NULL);
		while (!err && *b->cons_pos == c0 && now_ns() < deadline0)
			;
		rd->ahead = (*b->prod_pos - *b->cons_pos) / RB_RECORD;
		if (!err)
			err = trigger(b);
	}
	if (err)
		return err;
	rd->produced = n + 1;
	t0 = atomic_load(&b->sh.resume_ns);
	deadline = now_ns() + CMD_WAIT_NS;
	/* Everything produced is either consumed or counted as dropped. */
	for (;;) {
		rd->consumed = atomic_load(&b->sh.samples) - s0;
		rd->dropped = stat_get(b, SHIFT_STAT_RINGBUF_DROPPED) - d0;
		rd->err_dropped = stat_get(b, SHIFT_STAT_ERRBUF_DROPPED) - e0;
		if (rd->consumed + rd->dropped + rd->err_dropped >= rd->produced ||
		    now_ns() > deadline)
			break;
		usleep(100);
	}
	usleep(1000);
	/* The losses reach the window at the loop's next look at the counts. */
	err = command(b, CMD_COUNT, NULL);
	if (err)
		return err;
	rd->window = atomic_load(&b->sh.blue_window) - w0;
	rd->fired = atomic_load(&b->sh.rollbacks) >= want;
	if (rd->fired) {
		rd->reaction_ns = atomic_load(&b->sh.last_reaction_ns);
		/* The write was at the error's ts + reaction, and ts <= trigger_ns:
		 * an upper bound of resume -> write. */
		rd->after_resume_ns = b->trigger_ns + rd->reaction_ns - t0;
		err = command(b, CMD_CLEAR, NULL);
	}
	return err;
}

static void overload_report(FILE *f, const struct round *rd, unsigned int n, int fifo)
{
	__u64 cap = SHIFT_RINGBUF_BYTES / RB_RECORD;
	bool ok = n > 0;
	unsigned int i;

	header(f, "--overload (the agent stops reading; the sample ring fills; one error)", fifo);
	fprintf(f, "sample ring: %u bytes = %llu samples of %zu bytes; error ring: %u bytes\n",
		SHIFT_RINGBUF_BYTES, (unsigned long long)cap, RB_RECORD, SHIFT_ERRBUF_BYTES);
	for (i = 0; i < n; i++) {
		const struct round *r = &rd[i];
		bool exact = r->consumed + r->dropped + r->err_dropped == r->produced;
		char when[64];

		if (r->when == ERR_WHILE_STOPPED)
			snprintf(when, sizeof(when), "queued while the agent was stopped");
		else
			snprintf(when, sizeof(when), "sent mid-drain, %llu samples still queued",
				 (unsigned long long)r->ahead);
		fprintf(f,
			"fill %.1fx, error %s: produced %llu, consumed %llu + dropped %llu "
			"(+ %llu errors): %s; ",
			r->fill, when, (unsigned long long)r->produced,
			(unsigned long long)r->consumed, (unsigned long long)r->dropped,
			(unsigned long long)r->err_dropped, exact ? "exact" : "NOT exact");
		/* Lost samples count in the window all the same (struct shift_lost). */
		fprintf(f, "blue window +%llu of %llu background samples (%s); ",
			(unsigned long long)r->window, (unsigned long long)r->bg,
			r->window == r->bg ? "every one counted" : "NOT all counted");
		if (r->window != r->bg)
			ok = false;
		if (!r->fired)
			fprintf(f, "NO ROLLBACK (the error was lost)\n");
		else if (r->when == ERR_WHILE_STOPPED)
			fprintf(f, "rolled back %.1f us after the agent resumed\n",
				(double)r->after_resume_ns / 1e3);
		else
			fprintf(f, "reaction %.1f us\n", (double)r->reaction_ns / 1e3);
		/* While stopped the agent cannot react: what counts is resume -> write. */
		ok &= exact && r->fired &&
		      (r->when == ERR_WHILE_STOPPED ? r->after_resume_ns : r->reaction_ns) < 100000;
	}
	fprintf(f,
		"goal (no error lost, counts exact, every lost sample counted in its window, "
		"rollback < 100 us after the agent reads again / after the error): %s\n",
		ok ? "met" : "NOT met");
}

/* --- the burst mode -------------------------------------------------------------- */

/* One phase of --burst: the fastest and the slowest service of each burst, and all. */
struct burst_fig {
	unsigned int n, missed;
	double lo50, lo_max, hi50, hi90, hi_max, all50, all99; /* us */
};

/* --rounds bursts of every burst service's error; their reactions in *fig. */
static int burst_phase(struct bench *b, const struct opts *o, struct burst_fig *fig)
{
	unsigned int nb = o->burst, r, i, n = 0, missed = 0;
	__u64 *lo = calloc(o->rounds, sizeof(*lo)), *hi = calloc(o->rounds, sizeof(*hi));
	__u64 *all = calloc((size_t)o->rounds * nb, sizeof(*all));
	__u64 deadline;
	int err = 0;

	if (!lo || !hi || !all) {
		err = -ENOMEM;
		goto out;
	}
	for (r = 0; r < o->rounds && !err; r++) {
		unsigned int want = atomic_load(&b->sh.rollbacks) + nb;

		err = trigger_burst(b, nb);
		deadline = now_ns() + WAIT_NS;
		while (!err && atomic_load(&b->sh.rollbacks) < want && now_ns() < deadline)
			sched_yield();
		if (!err)
			err = command(b, CMD_BURST_CLEAR, NULL);
		if (err)
			break;
		/* The clears' saves settle before the next burst. */
		usleep(20000);
		for (i = 0; i < nb && b->sh.burst_r[i]; i++)
			;
		if (i < nb) {
			missed++;
			continue;
		}
		lo[n] = hi[n] = b->sh.burst_r[0];
		for (i = 0; i < nb; i++) {
			all[(size_t)n * nb + i] = b->sh.burst_r[i];
			if (b->sh.burst_r[i] < lo[n])
				lo[n] = b->sh.burst_r[i];
			if (b->sh.burst_r[i] > hi[n])
				hi[n] = b->sh.burst_r[i];
		}
		n++;
	}
	if (err)
		goto out;
	qsort(lo, n, sizeof(*lo), cmp_u64);
	qsort(hi, n, sizeof(*hi), cmp_u64);
	qsort(all, (size_t)n * nb, sizeof(*all), cmp_u64);
	fig->n = n;
	fig->missed = missed;
	fig->lo50 = pct_us(lo, n, 50);
	fig->lo_max = n ? (double)lo[n - 1] / 1e3 : 0;
	fig->hi50 = pct_us(hi, n, 50);
	fig->hi90 = pct_us(hi, n, 90);
	fig->hi_max = n ? (double)hi[n - 1] / 1e3 : 0;
	fig->all50 = pct_us(all, (size_t)n * nb, 50);
	fig->all99 = pct_us(all, (size_t)n * nb, 99);
out:
	free(lo);
	free(hi);
	free(all);
	return err;
}

static void burst_print(FILE *f, const struct burst_fig *g, const char *how)
{
	fprintf(f, "state file written %s: %u bursts measured, %u missed\n", how, g->n, g->missed);
	fprintf(f, "  reaction us, fastest service of a burst: p50 %.1f  max %.1f\n", g->lo50,
		g->lo_max);
	fprintf(f, "  reaction us, slowest service of a burst: p50 %.1f  p90 %.1f  max %.1f\n",
		g->hi50, g->hi90, g->hi_max);
	fprintf(f, "  reaction us, every service: p50 %.1f  p99 %.1f\n", g->all50, g->all99);
}

/*
 * --burst N: N services roll back together (each one's first error, a few
 * microseconds apart; no background load). A service's reaction includes
 * whatever the loop did for the services before it: with the state file
 * written on the loop, their fsyncs. First with the state file written on
 * the loop (the baseline: shiftd before its writer thread), then, unless
 * --persist-inline, by the writer thread; the ratio of the two.
 */
static int bench_burst(struct bench *b, const struct opts *o, FILE *out)
{
	struct burst_fig inl = { 0 }, thr = { 0 };
	int err, k;

	err = burst_phase(b, o, &inl);
	if (!err && !o->persist_inline) {
		err = command(b, CMD_PERSIST_START, NULL);
		if (!err)
			err = burst_phase(b, o, &thr);
	}
	if (err)
		return err;
	for (k = 0; k < 2; k++) {
		FILE *f = k ? out : stdout;

		if (!f)
			continue;
		header(f,
		       "--burst (services failing together: each one's error -> its weight write)",
		       o->fifo);
		fprintf(f, "bursts: %u services each, %u rounds per phase, no background load\n",
			o->burst, o->rounds);
		burst_print(f, &inl, "on the loop (the baseline)");
		if (o->persist_inline)
			continue;
		burst_print(f, &thr, "by its writer thread (as shiftd)");
		fprintf(f,
			"slowest service of a burst, p50: %.1f us on the loop / %.1f us with the "
			"writer thread = x%.1f\n",
			inl.hi50, thr.hi50, thr.hi50 > 0 ? inl.hi50 / thr.hi50 : 0);
	}
	return 0;
}

static int bench_overload(struct bench *b, const struct opts *o, FILE *out)
{
	const double fills[2] = { 0.9, o->fill };
	struct round *rd = calloc(4 * o->rounds, sizeof(*rd));
	unsigned int i, k, n = 0;
	int err = 0;

	if (!rd)
		return -ENOMEM;
	for (i = 0; i < o->rounds && !err; i++)
		for (k = 0; k < 4 && !err; k++) {
			err = overload_round(b, fills[k & 1],
					     k < 2 ? ERR_WHILE_STOPPED : ERR_DURING_DRAIN, &rd[n]);
			if (!err)
				n++;
		}
	overload_report(stdout, rd, n, o->fifo);
	if (out)
		overload_report(out, rd, n, o->fifo);
	free(rd);
	return err;
}

/* --- main ------------------------------------------------------------------------- */

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--out FILE] [--rollbacks N] [--rate SAMPLES_PER_S] [--overload "
		"[--rounds R] [--fill X]] [--burst N [--rounds R]] [--fifo PRIO] [--persist-inline]\n",
		argv0);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "rollbacks", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "overload", no_argument, NULL, 'O' },
		{ "rounds", required_argument, NULL, 'R' },
		{ "fill", required_argument, NULL, 'f' },
		{ "fifo", required_argument, NULL, 'F' },
		{ "persist-inline", no_argument, NULL, 'I' },
		{ "burst", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .out = NULL, .rollbacks = 1000, .rate = 0, .rounds = 3, .fill = 3.0 };
	struct bench *b;
	pthread_t th;
	FILE *out = NULL;
	int opt, rc = 1, err;
	long cpus;

	while ((opt = getopt_long(argc, argv, "o:n:r:OR:f:F:IB:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			o.out = optarg;
			break;
		case 'n':
			o.rollbacks = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			o.rate = strtod(optarg, NULL);
			break;
		case 'O':
			o.overload = true;
			break;
		case 'R':
			o.rounds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'f':
			o.fill = strtod(optarg, NULL);
			break;
		case 'F':
			o.fifo = (int)strtol(optarg, NULL, 0);
			break;
		case 'I':
			o.persist_inline = true;
			break;
		case 'B':
			o.burst = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (optind != argc || !o.rollbacks || !o.rounds || o.fill <= 0 || o.rate < 0 ||
	    o.fifo < 0 || o.fifo > 99 || o.burst > BURST_MAX || (o.burst && o.overload)) {
		usage(argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench_rollback: needs root (BPF, a private netns)\n");
		return 1;
	}
	shift_log_init("bench_rollback", SHIFT_LOG_ERROR);
	shift_log_libbpf();
	b = calloc(1, sizeof(*b));
	if (!b) {
		fprintf(stderr, "bench: out of memory\n");
		return 1;
	}
	b->rng = 0x5eedf00dull;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	b->sh.cpu = 0;
	b->sh.fifo = o.fifo;
	b->sh.burst = o.burst;
	err = setup(b, o.persist_inline);
	if (err) {
		fprintf(stderr, "bench: set-up failed: %s\n", strerror(-err));
		goto out;
	}
	if (o.out) {
		out = fopen(o.out, "w");
		if (!out) {
			fprintf(stderr, "bench: %s: %s\n", o.out, strerror(errno));
			goto out;
		}
	}
	err = pthread_create(&th, NULL, loop_thread, &b->sh);
	if (err) {
		fprintf(stderr, "bench: pthread_create: %s\n", strerror(err));
		goto out;
	}
	pin_to(cpus > 1 ? 1 : 0);
	err = o.overload ? bench_overload(b, &o, out) :
	      o.burst	 ? bench_burst(b, &o, out) :
			   bench_normal(b, &o, out);
	if (err)
		fprintf(stderr, "bench: %s\n", strerror(-err));
	command(b, CMD_STOP, NULL);
	pthread_join(th, NULL);
	rc = err ? 1 : 0;
out:
	if (out && fclose(out)) {
		fprintf(stderr, "bench: %s: %s\n", o.out, strerror(errno));
		rc = 1;
	}
	/* The loop thread is gone: the agent is this thread's now. */
	if (b->a)
		persist_stop(b->a);
	samples_close(b->a, b->sh.rb);
	if (b->sh.epfd > 0)
		close(b->sh.epfd);
	if (b->sh.evfd > 0)
		close(b->sh.evfd);
	harness_close(&b->h);
	if (b->dir[0])
		rm_dir(b->dir);
	free(b->fr);
	free(b->a);
	free(b);
	return rc;
}
