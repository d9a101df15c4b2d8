// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench_agent: what a running shiftd costs in CPU per sample it consumes.
 *
 * Runs in the edge host's network namespace next to a running shiftd and drives
 * samples into its ring buffer through shiftd's own attached programs (found from
 * the links pinned under BPFFS/links/), with BPF_PROG_TEST_RUN, repeat = 1:
 *   set-up, per flow: a SYN from a client through the client program (its output
 *   tells which backend the flow got), the SYN-ACK from that backend through the
 *   backend program (a CONNECT sample);
 *   then per sample: an HTTP request of the flow through the client program, the
 *   backend's "HTTP/1.1 200" through the backend program: one RESPONSE sample.
 * At each target rate (samples/s, paced by injector threads pinned one per CPU)
 * for --duration seconds, shiftd's CPU time is read from /proc/PID/stat
 * (utime + stime, every thread) and from every /proc/PID/task/TID/schedstat (ns), before
 * and after (plus a short drain); the samples the ring buffer refused are read
 * from shift_stats. An idle run first gives shiftd's own background cost.
 *
 *   bench_agent --bpffs DIR --pid PID --client-if IF --backend-if IF
 *               --vip IP:PORT --client IP [--rates R,R,...] [--duration S]
 *               [--flows N]
 *   bench_agent --bpffs DIR --count-flows [--from A.B.C.D/N]
 *
 * One JSON object per rate on stdout. --count-flows only prints the number of
 * entries in the pinned IPv4 connection table (and its memlock) and exits; with
 * --from CIDR also how many of them have their client in CIDR.
 * Needs root. The packets never leave the kernel (test runs are not sent).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
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
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>
#include "config/addr.h"
#include "datapath/dataplane.h"
#include "pkt.h"

#define MAX_FLOWS 4096
#define MAX_RATES 8
#define MAX_THREADS 8
#define DRAIN_S 0.3

static const char http_req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char http_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nblue1\n";

struct frame {
	__u8 b[256];
	__u32 len;
};

struct flow {
	struct frame req, resp;
};

struct opts {
	const char *bpffs, *client_if, *backend_if;
	int pid;
	__u8 vip[4], client[4];
	__u16 vport;
	double rates[MAX_RATES];
	unsigned int n_rates, flows;
	double duration;
	int count_only;
	__u32 from_net, from_mask; /* --from: host order; mask 0: not asked */
};

struct ctx {
	int prog_client, prog_backend;
	__u32 if_client, if_backend;
	struct flow *fl;
	unsigned int n_flows;
};

struct injector {
	pthread_t th;
	const struct ctx *c;
	unsigned int cpu, first, step;
	double rate, duration;
	_Atomic unsigned long long done;
	int err;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s,
			       .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int run(int prog, const void *in, __u32 len, __u32 ifindex, void *out, __u32 *out_len)
{
	struct xdp_md ctx;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .repeat = 1);

	memset(&ctx, 0, sizeof(ctx));
	ctx.data_end = len;
	ctx.ingress_ifindex = ifindex;
	o.ctx_in = &ctx;
	o.ctx_size_in = sizeof(ctx);
	if (out) {
		o.data_out = out;
		o.data_size_out = *out_len;
	}
	if (bpf_prog_test_run_opts(prog, &o))
		return -errno;
	if (out_len)
		*out_len = o.data_size_out;
	return 0;
}

static __u32 build(const __u8 *saddr, const __u8 *daddr, __u16 sport, __u16 dport, __u8 flags,
		   __u32 seq, __u32 ack, const char *text, __u8 *buf, __u32 cap)
{
	struct pkt_spec s;

	memset(&s, 0, sizeof(s));
	s.dmac[0] = 0x02;
	s.smac[0] = 0x02;
	s.smac[5] = 1;
	s.family = 4;
	s.proto = IPPROTO_TCP;
	memcpy(s.saddr, saddr, 4);
	memcpy(s.daddr, daddr, 4);
	s.sport = sport;
	s.dport = dport;
	s.ttl = 64;
	s.tcp_flags = flags;
	s.payload = text ? (__u16)strlen(text) : 0;
	s.seq = seq;
	s.ack = ack;
	return pkt_build_payload(&s, text, buf, cap, NULL);
}

/* The program attached through the link pinned at DIR/links/IF. */
static int prog_of_link(const char *dir, const char *ifname)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	char path[512];
	int lfd, pfd;

	snprintf(path, sizeof(path), "%s/links/%s", dir, ifname);
	lfd = bpf_obj_get(path);
	if (lfd < 0) {
		fprintf(stderr, "bench_agent: %s: %s\n", path, strerror(errno));
		return -1;
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(lfd, &info, &len)) {
		fprintf(stderr, "bench_agent: link info of %s: %s\n", path, strerror(errno));
		close(lfd);
		return -1;
	}
	close(lfd);
	pfd = bpf_prog_get_fd_by_id(info.prog_id);
	if (pfd < 0)
		fprintf(stderr, "bench_agent: prog %u: %s\n", info.prog_id, strerror(errno));
	return pfd;
}

/* Open the flows: SYN in, SYN-ACK back; the request and response frames of each. */
static int make_flows(struct ctx *c, const struct opts *o)
{
	unsigned int i;

	c->fl = calloc(o->flows, sizeof(*c->fl));
	if (!c->fl)
		return -ENOMEM;
	for (i = 0; i < o->flows; i++) {
		__u16 sport = (__u16)(20000 + i);
		__u8 f[256], out[256], be[4];
		__u32 len, olen = sizeof(out);
		__u16 bport;
		int err;

		len = build(o->client, o->vip, sport, o->vport, TH_SYN, 1000, 0, NULL, f,
			    sizeof(f));
		err = len ? run(c->prog_client, f, len, c->if_client, out, &olen) : -EINVAL;
		if (err)
			return err;
		if (olen < 38 || out[12] != 0x08 || out[13] != 0) {
			fprintf(stderr, "bench_agent: the SYN came out unexpected (%u bytes)\n",
				olen);
			return -EPROTO;
		}
		memcpy(be, out + 14 + 16, 4);
		bport = (__u16)(out[14 + 20 + 2] << 8 | out[14 + 20 + 3]);
		if (!memcmp(be, o->vip, 4)) {
			fprintf(stderr, "bench_agent: the SYN was not steered (is %s a VIP?)\n",
				"the --vip");
			return -EPROTO;
		}
		len = build(be, o->client, bport, sport, TH_SYN | TH_ACK, 5000, 1001, NULL, f,
			    sizeof(f));
		err = len ? run(c->prog_backend, f, len, c->if_backend, NULL, NULL) : -EINVAL;
		if (err)
			return err;
		c->fl[i].req.len = build(o->client, o->vip, sport, o->vport, TH_ACK | TH_PUSH, 1001,
					 5001, http_req, c->fl[i].req.b, sizeof(c->fl[i].req.b));
		c->fl[i].resp.len = build(be, o->client, bport, sport, TH_ACK | TH_PUSH, 5001,
					  1001 + (__u32)strlen(http_req), http_resp,
					  c->fl[i].resp.b, sizeof(c->fl[i].resp.b));
		if (!c->fl[i].req.len || !c->fl[i].resp.len)
			return -EINVAL;
	}
	c->n_flows = o->flows;
	return 0;
}

static void *inject(void *arg)
{
	struct injector *in = arg;
	const struct ctx *c = in->c;
	double t0 = now_s(), end = t0 + in->duration;
	unsigned long long n = 0;
	unsigned int f = in->first;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(in->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	for (;;) {
		double t = now_s();
		unsigned int k;

		if (t >= end)
			break;
		/* Paced in steps of 32 samples: ahead of schedule, wait. */
		if ((double)n > (t - t0) * in->rate) {
			double ahead = (double)n / in->rate - (t - t0);

			if (ahead > 0.0002)
				sleep_s(ahead);
			continue;
		}
		for (k = 0; k < 32; k++) {
			const struct flow *fl = &c->fl[f];

			in->err = run(c->prog_client, fl->req.b, fl->req.len, c->if_client, NULL,
				      NULL);
			if (!in->err)
				in->err = run(c->prog_backend, fl->resp.b, fl->resp.len,
					      c->if_backend, NULL, NULL);
			if (in->err)
				return NULL;
			n++;
			f += in->step;
			if (f >= c->n_flows)
				f = in->first;
		}
		atomic_store_explicit(&in->done, n, memory_order_relaxed);
	}
	atomic_store(&in->done, n);
	return NULL;
}

/* shiftd's CPU: utime + stime (ticks, every thread) and the sum of its threads'
 * schedstat run time (ns). */
static int proc_cpu(int pid, double *ticks_s, double *sched_s)
{
	char path[320], buf[1024], *p;
	unsigned long long ut = 0, st = 0, run_ns, total_ns = 0;
	struct dirent *d;
	DIR *dp;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		return -ESRCH;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	/* after ") ": state is field 3; utime 14, stime 15 */
	for (i = 3, p += 2; i < 14 && p; i++)
		p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
	if (!p || sscanf(p, "%llu %llu", &ut, &st) != 2)
		return -EINVAL;
	*ticks_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dp = opendir(path);
	if (!dp)
		return -ESRCH;
	while ((d = readdir(dp))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", pid, d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &run_ns) == 1)
			total_ns += run_ns;
		fclose(f);
	}
	closedir(dp);
	*sched_s = (double)total_ns / 1e9;
	return 0;
}

static __u64 dropped(const struct shift_maps *m)
{
	__u64 st[SHIFT_STAT_MAX];

	if (dp_stats(m, st))
		return 0;
	return st[SHIFT_STAT_RINGBUF_DROPPED] + st[SHIFT_STAT_ERRBUF_DROPPED];
}

static int one_rate(const struct ctx *c, const struct opts *o, const struct shift_maps *m,
		    double rate, int ncpu)
{
	struct injector in[MAX_THREADS];
	unsigned int t, nt = rate <= 0 ? 0 : rate <= 150000 ? 1 : (unsigned int)ncpu;
	double tk0, sc0, tk1, sc1, t0, t1;
	unsigned long long n = 0;
	__u64 d0, d1;
	int err = 0;

	if (nt > MAX_THREADS)
		nt = MAX_THREADS;
	if (nt > c->n_flows)
		nt = c->n_flows;
	d0 = dropped(m);
	if (proc_cpu(o->pid, &tk0, &sc0))
		return -ESRCH;
	t0 = now_s();
	for (t = 0; t < nt; t++) {
		memset(&in[t], 0, sizeof(in[t]));
		in[t].c = c;
		in[t].cpu = t % (unsigned int)ncpu;
		in[t].first = t;
		in[t].step = nt;
		in[t].rate = rate / nt;
		in[t].duration = o->duration;
		if (pthread_create(&in[t].th, NULL, inject, &in[t])) {
			nt = t;
			err = -EAGAIN;
			break;
		}
	}
	if (!nt)
		sleep_s(o->duration);
	for (t = 0; t < nt; t++) {
		pthread_join(in[t].th, NULL);
		n += atomic_load(&in[t].done);
		if (in[t].err && !err)
			err = in[t].err;
	}
	t1 = now_s();
	sleep_s(DRAIN_S); /* let shiftd finish the backlog: its cost counts */
	if (proc_cpu(o->pid, &tk1, &sc1))
		return -ESRCH;
	d1 = dropped(m);
	if (err) {
		fprintf(stderr, "bench_agent: injecting: %s\n", strerror(-err));
		return err;
	}
	{
		double w = t1 - t0, cpu = sc1 - sc0, consumed = (double)n - (double)(d1 - d0);
		double load[3] = { 0, 0, 0 };

		getloadavg(load, 3);
		printf("{\"target_rate\": %.0f, \"injectors\": %u, \"window_s\": %.3f, "
		       "\"samples\": %llu, \"rate\": %.0f, \"dropped\": %llu, "
		       "\"shiftd_cpu_s\": %.4f, \"shiftd_cpu_s_ticks\": %.2f, "
		       "\"shiftd_cpu_pct\": %.1f, \"ns_per_sample\": %.0f, \"load1\": %.2f}\n",
		       rate, nt, w, n, (double)n / w, (unsigned long long)(d1 - d0), cpu, tk1 - tk0,
		       100.0 * cpu / (w + DRAIN_S), consumed > 0 ? cpu * 1e9 / consumed : 0.0,
		       load[0]);
		fflush(stdout);
	}
	return 0;
}

/*
 * The entries of the pinned IPv4 connection table, with keys of the map's own
 * size: make bench-peers BENCH_BEFORE=REV counts an older build's table too,
 * whose key was larger (its client address came first as well). With a mask,
 * the entries whose client is in net/mask are counted apart: the flood section
 * asks whether its spoofed SYNs, from a block of their own, wrote any.
 */
static int count_flows(const char *dir, __u32 net, __u32 mask)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	__u64 k[8], next[8];
	char path[512], line[256];
	unsigned long long n = 0, from = 0;
	long long memlock = -1;
	__u32 saddr;
	void *prev = NULL;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/maps/shift_flows4", dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr, "bench_agent: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
		fprintf(stderr, "bench_agent: %s: map info: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	if (info.key_size < sizeof(saddr) || info.key_size > sizeof(k)) {
		fprintf(stderr, "bench_agent: %s: key of %u bytes, want %zu..%zu\n", path,
			info.key_size, sizeof(saddr), sizeof(k));
		close(fd);
		return 1;
	}
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(k, next, info.key_size);
		prev = k;
		n++;
		memcpy(&saddr, k, sizeof(saddr));
		from += mask && (ntohl(saddr) & mask) == net;
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &memlock) == 1)
			break;
	if (f)
		fclose(f);
	close(fd);
	printf("{\"flows4\": %llu, ", n);
	if (mask)
		printf("\"flows4_from\": %llu, ", from);
	printf("\"memlock_bytes\": %lld}\n", memlock);
	return 0;
}

static int parse_ip4(const char *s, __u8 *a)
{
	return inet_pton(AF_INET, s, a) == 1 ? 0 : -1;
}

/*
 * --from: an IPv4 prefix as the config writes one (addr_parse_cidr(): host bits
 * refused), with its length written out and 1..32 (mask 0 means not asked).
 * net and mask in host order; -1 with the reason in err.
 */
static int parse_from(const char *s, __u32 *net, __u32 *mask, char *err, size_t errlen)
{
	__u32 a[4];
	__u8 family, plen;

	if (addr_parse_cidr(s, &family, a, &plen, err, errlen))
		return -1;
	if (family != SHIFT_AF_INET || !strchr(s, '/') || plen < 1) {
		snprintf(err, errlen, "want A.B.C.D/N (N 1..32), not '%.80s'", s);
		return -1;
	}
	*mask = ~0u << (32 - plen);
	*net = ntohl(a[0]);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "bpffs", required_argument, NULL, 'B' },
		{ "pid", required_argument, NULL, 'p' },
		{ "client-if", required_argument, NULL, 'c' },
		{ "backend-if", required_argument, NULL, 'b' },
		{ "vip", required_argument, NULL, 'v' },
		{ "client", required_argument, NULL, 'C' },
		{ "rates", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "flows", required_argument, NULL, 'f' },
		{ "count-flows", no_argument, NULL, 'n' },
		{ "from", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .duration = 5, .flows = 256, .rates = { 100000, 1000000 }, .n_rates = 2 };
	struct shift_maps m;
	struct ctx c = { .prog_client = -1, .prog_backend = -1 };
	char *tok, *save = NULL, *colon, err[160];
	unsigned int i;
	int opt, ncpu, rc = 1, have_vip = 0, have_client = 0;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'B':
			o.bpffs = optarg;
			break;
		case 'p':
			o.pid = atoi(optarg);
			break;
		case 'c':
			o.client_if = optarg;
			break;
		case 'b':
			o.backend_if = optarg;
			break;
		case 'v':
			colon = strrchr(optarg, ':');
			if (colon) {
				*colon = 0;
				o.vport = (__u16)atoi(colon + 1);
				have_vip = !parse_ip4(optarg, o.vip);
			}
			break;
		case 'C':
			have_client = !parse_ip4(optarg, o.client);
			break;
		case 'r':
			o.n_rates = 0;
			for (tok = strtok_r(optarg, ",", &save); tok && o.n_rates < MAX_RATES;
			     tok = strtok_r(NULL, ",", &save))
				o.rates[o.n_rates++] = strtod(tok, NULL);
			break;
		case 'd':
			o.duration = strtod(optarg, NULL);
			break;
		case 'f':
			o.flows = (unsigned int)atoi(optarg);
			break;
		case 'n':
			o.count_only = 1;
			break;
		case 'F':
			if (parse_from(optarg, &o.from_net, &o.from_mask, err, sizeof(err))) {
				fprintf(stderr, "bench_agent: --from: %s\n", err);
				goto usage;
			}
			break;
		default:
			goto usage;
		}
	}
	if (o.bpffs && o.count_only)
		return count_flows(o.bpffs, o.from_net, o.from_mask);
	if (!o.bpffs || o.pid <= 0 || !o.client_if || !o.backend_if || !have_vip || !have_client ||
	    o.flows < 1 || o.flows > MAX_FLOWS || o.duration <= 0 || o.duration > 120)
		goto usage;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu < 1)
		return 1;
	c.if_client = if_nametoindex(o.client_if);
	c.if_backend = if_nametoindex(o.backend_if);
	if (!c.if_client || !c.if_backend) {
		fprintf(stderr, "bench_agent: %s / %s: no such interface here\n", o.client_if,
			o.backend_if);
		return 1;
	}
	c.prog_client = prog_of_link(o.bpffs, o.client_if);
	c.prog_backend = prog_of_link(o.bpffs, o.backend_if);
	if (c.prog_client < 0 || c.prog_backend < 0)
		goto out;
	if (dp_maps_open_pinned(&m, o.bpffs)) {
		fprintf(stderr, "bench_agent: cannot open the maps pinned under %s\n", o.bpffs);
		goto out;
	}
	if (make_flows(&c, &o)) {
		fprintf(stderr, "bench_agent: opening the flows failed\n");
		goto close_maps;
	}
	sleep_s(0.5); /* the set-up's CONNECT samples are consumed */
	for (i = 0; i < o.n_rates; i++)
		if (one_rate(&c, &o, &m, o.rates[i], ncpu))
			goto close_maps;
	rc = 0;
close_maps:
	dp_maps_close(&m);
out:
	free(c.fl);
	if (c.prog_client >= 0)
		close(c.prog_client);
	if (c.prog_backend >= 0)
		close(c.prog_backend);
	return rc;
usage:
	fprintf(stderr,
		"usage: bench_agent --bpffs DIR --pid PID --client-if IF --backend-if IF\n"
		"                   --vip IP:PORT --client IP [--rates R,...] [--duration S]\n"
		"                   [--flows N]\n"
		"       bench_agent --bpffs DIR --count-flows [--from A.B.C.D/N]\n");
	return 2;
}
