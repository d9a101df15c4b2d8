// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/flow_hash.h>
#include <shift/sample.h>
#include "ops/clock.h"
#include "ops/log.h"
#include "config/weight.h"
#include "shadow/shadow.h"

enum job_state {
	JOB_FREE = 0,
	JOB_QUEUED, /* waiting for a replay slot */
	JOB_CONNECTING,
	JOB_SENDING,
	JOB_READING,
	JOB_WAIT_BLUE, /* green done, blue's sample not seen yet */
};

struct job {
	enum job_state state;
	int fd;
	__u16 sid;
	__u32 hash;
	__u64 copy_ns; /* kernel time of the copy (CLOCK_MONOTONIC) */
	__u64 deadline_ns;
	__u64 sent_ns;
	__u32 len, sent, rlen;
	char rbuf[16];
	struct shadow_answer blue, green;
	__u8 data[SHIFT_SHADOW_DATA];
};

struct svc_shadow {
	bool on;
	__u32 sample_bp;
	double max_mismatch, ratio;
	__u64 window_ns;
	struct shadow_window win;
	__u64 requests, compared, kinds[SHADOW_KINDS], unpaired, shed, body_split;
	__u64 lat_count[SHIFT_COLORS], lat_sum_ns[SHIFT_COLORS], lat_max_ns[SHIFT_COLORS];
};

/* A blue answer whose copy has not been read yet (the rings race). */
#define EARLY_SLOTS 256
struct early {
	__u32 hash;
	__u16 sid;
	bool used;
	__u64 ts_ns;
	struct shadow_answer a;
};

struct shadow {
	struct ring_buffer *rb;
	int epfd;
	int budget;
	__u32 inflight, held;
	__u32 queue[SHADOW_MAX_JOBS], q_head, q_len; /* FIFO of queued job indexes */
	struct job *jobs;
	struct svc_shadow svc[SHIFT_MAX_SERVICES];
	struct early early[EARLY_SLOTS];
	__u32 early_next;
	__u32 tick_cursor; /* where shadow_tick() goes on expiring */
	__u64 stat_fd_fail;
};

static struct shadow *shadow_get(struct agent *a)
{
	struct shadow *sh = a->shadow;

	if (sh)
		return sh;
	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return NULL;
	sh->jobs = calloc(SHADOW_MAX_JOBS, sizeof(*sh->jobs));
	if (!sh->jobs) {
		free(sh);
		return NULL;
	}
	for (__u32 i = 0; i < SHADOW_MAX_JOBS; i++)
		sh->jobs[i].fd = -1;
	sh->epfd = -1;
	a->shadow = sh;
	return sh;
}

int shadow_apply(struct agent *a)
{
	struct shadow *sh = shadow_get(a);
	int err = 0;

	if (!sh)
		return -ENOMEM;
	for (__u32 id = 0; id < SHIFT_MAX_SERVICES; id++) {
		const struct service_rt *s = a->svc[id];
		const struct conf_service *c = s ? s->conf : NULL;
		struct svc_shadow *v = &sh->svc[id];
		struct shift_shadow_cfg cfg = { 0 };
		bool was_on = v->on;

		if (c && c->shadow) {
			cfg.sample_bp = c->shadow_sample_bp;
			cfg.methods = c->shadow_methods;
		}
		if (!s) {
			if (was_on)
				memset(v, 0, sizeof(*v));
		} else {
			/* Figures restart with a new window length, like the triggers'. */
			if (!was_on || v->window_ns != c->window_ns)
				shadow_window_init(&v->win, c->window_ns);
			v->on = c->shadow;
			v->sample_bp = c->shadow_sample_bp;
			v->max_mismatch = c->max_shadow_mismatch;
			v->ratio = c->max_latency_ratio;
			v->window_ns = c->window_ns;
		}
		/* Only the slots that matter: 256 writes on every reload are cheap, but
		 * a map left over from an older shiftd may not have the map at all. */
		if (a->maps.fd[SHIFT_MAP_SHADOW_CFG] < 0)
			continue;
		if (bpf_map_update_elem(a->maps.fd[SHIFT_MAP_SHADOW_CFG], &id, &cfg, BPF_ANY)) {
			err = -errno;
			log_err("shadow: cannot write the settings of service id %u: %s", id,
				strerror(errno));
		}
	}
	return err;
}

static void job_close(struct shadow *sh, struct job *j)
{
	if (j->fd >= 0) {
		close(j->fd);
		j->fd = -1;
		sh->inflight--;
	}
}

static void job_free(struct shadow *sh, struct job *j)
{
	job_close(sh, j);
	j->state = JOB_FREE;
	sh->held--;
}

/* Both answers are known (or one never will be): count, then free the slot. */
static void job_finish(struct shadow *sh, struct job *j, __u64 now)
{
	struct svc_shadow *v = &sh->svc[j->sid];
	enum shadow_kind k;

	if (j->blue.how == SHADOW_ANS_NONE) {
		v->unpaired++;
		job_free(sh, j);
		return;
	}
	k = shadow_classify(&j->blue, &j->green, v->ratio);
	v->compared++;
	v->kinds[k]++;
	shadow_window_add(&v->win, now, k != SHADOW_MATCH);
	if (j->blue.how == SHADOW_ANS_STATUS) {
		v->lat_count[SHIFT_BLUE]++;
		v->lat_sum_ns[SHIFT_BLUE] += j->blue.ttfb_ns;
		if (j->blue.ttfb_ns > v->lat_max_ns[SHIFT_BLUE])
			v->lat_max_ns[SHIFT_BLUE] = j->blue.ttfb_ns;
	}
	if (j->green.how == SHADOW_ANS_STATUS) {
		v->lat_count[SHIFT_GREEN]++;
		v->lat_sum_ns[SHIFT_GREEN] += j->green.ttfb_ns;
		if (j->green.ttfb_ns > v->lat_max_ns[SHIFT_GREEN])
			v->lat_max_ns[SHIFT_GREEN] = j->green.ttfb_ns;
	}
	job_free(sh, j);
}

/* Green's side is over: pair now, or wait for blue's sample. */
static void green_done(struct shadow *sh, struct job *j, enum shadow_how how, __u16 status,
		       __u64 now)
{
	j->green.how = how;
	j->green.status = status;
	if (how == SHADOW_ANS_STATUS)
		j->green.ttfb_ns = now > j->sent_ns ? now - j->sent_ns : 0;
	job_close(sh, j);
	if (j->blue.how != SHADOW_ANS_NONE) {
		job_finish(sh, j, now);
		return;
	}
	j->state = JOB_WAIT_BLUE;
}

static int watch(struct shadow *sh, struct job *j, __u32 events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = j };

	return epoll_ctl(sh->epfd, op, j->fd, &ev) ? -errno : 0;
}

/* The green backend this flow would have had: the green ring's slot for its hash. */
static const struct backend_rt *green_for(struct agent *a, __u16 sid, __u32 hash)
{
	const struct service_rt *s = a->svc[sid];
	__u32 id, i;

	if (!s ||
	    dp_ring_get(&a->maps, sid, SHIFT_GREEN, shift_ring_slot(hash), &id) ||
	    id == SHIFT_NO_BACKEND)
		return NULL;
	for (i = 0; i < s->n[SHIFT_GREEN]; i++)
		if (s->pool[SHIFT_GREEN][i].id == id)
			return &s->pool[SHIFT_GREEN][i];
	return NULL;
}

static void job_start(struct agent *a, struct shadow *sh, struct job *j, __u64 now)
{
	const struct backend_rt *b = green_for(a, j->sid, j->hash);
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	j->deadline_ns = now + SHADOW_DEADLINE_NS;
	if (!b) {
		/* No healthy green backend to ask: green cannot answer. */
		green_done(sh, j, SHADOW_ANS_ERROR, 0, now);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	if (b->addr.family == SHIFT_AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = b->addr.port;
		sin->sin_addr.s_addr = b->addr.addr[0];
		sl = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = b->addr.port;
		memcpy(&sin6->sin6_addr, b->addr.addr, 16);
		sl = sizeof(*sin6);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		/* Our limit, not green's fault: shed, not a mismatch. */
		if (sh->stat_fd_fail++ == 0)
			log_warn("shadow: socket: %s (replays shed until sockets free up)",
				 strerror(errno));
		sh->svc[j->sid].shed++;
		job_free(sh, j);
		return;
	}
	j->fd = fd;
	sh->inflight++;
	j->sent = 0;
	j->rlen = 0;
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS) {
		green_done(sh, j, SHADOW_ANS_ERROR, 0, now);
		return;
	}
	j->state = JOB_CONNECTING;
	if (watch(sh, j, EPOLLOUT, EPOLL_CTL_ADD))
		green_done(sh, j, SHADOW_ANS_ERROR, 0, now);
}

/* Start up to max queued replays (bounded: each is a few syscalls). */
static void start_queued(struct agent *a, struct shadow *sh, __u64 now, int max)
{
	while (sh->q_len && sh->inflight < SHADOW_MAX_INFLIGHT && max-- > 0) {
		struct job *j = &sh->jobs[sh->queue[sh->q_head]];

		sh->q_head = (sh->q_head + 1) % SHADOW_MAX_JOBS;
		sh->q_len--;
		if (j->state != JOB_QUEUED)
			continue;
		if (now > j->copy_ns + SHADOW_QUEUE_WAIT_NS) {
			sh->svc[j->sid].shed++;
			job_free(sh, j);
			continue;
		}
		job_start(a, sh, j, now);
	}
}

static bool early_take(struct shadow *sh, struct job *j)
{
	for (__u32 i = 0; i < EARLY_SLOTS; i++) {
		struct early *e = &sh->early[i];

		if (e->used && e->hash == j->hash && e->sid == j->sid && e->ts_ns >= j->copy_ns) {
			j->blue = e->a;
			e->used = false;
			return true;
		}
	}
	return false;
}

static int on_copy(void *ctx, void *data, size_t len)
{
	struct agent *a = ctx;
	struct shadow *sh = a->shadow;
	const struct shift_shadow_req *r = data;
	struct svc_shadow *v;
	struct job *j = NULL;
	__u32 i;

	if (len < offsetof(struct shift_shadow_req, data) || r->service_id >= SHIFT_MAX_SERVICES ||
	    r->len > SHIFT_SHADOW_DATA)
		goto out;
	v = &sh->svc[r->service_id];
	if (!v->on || !a->svc[r->service_id])
		goto out;
	v->requests++;
	if (!shadow_request_complete(r->data, r->len)) {
		v->body_split++;
		goto out;
	}
	for (i = 0; i < SHADOW_MAX_JOBS && !j; i++)
		if (sh->jobs[i].state == JOB_FREE)
			j = &sh->jobs[i];
	if (!j) {
		v->shed++;
		goto out;
	}
	memset(&j->blue, 0, sizeof(j->blue));
	memset(&j->green, 0, sizeof(j->green));
	j->sid = r->service_id;
	j->hash = r->flow_hash;
	j->copy_ns = r->ts_ns;
	j->len = r->len;
	memcpy(j->data, r->data, r->len);
	j->fd = -1;
	j->state = JOB_QUEUED;
	sh->held++;
	early_take(sh, j);
	sh->queue[(sh->q_head + sh->q_len) % SHADOW_MAX_JOBS] = (__u32)(j - sh->jobs);
	sh->q_len++;
	start_queued(a, sh, now_mono_ns(), 1);
out:
	/* libbpf has consumed the record; -EAGAIN only ends this pass. */
	return --sh->budget > 0 ? 0 : -EAGAIN;
}

int shadow_open(struct agent *a)
{
	struct shadow *sh = shadow_get(a);
	int err;

	if (!sh)
		return -ENOMEM;
	if (a->maps.fd[SHIFT_MAP_SHADOW] < 0)
		return -ENOENT;
	sh->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sh->epfd < 0)
		return -errno;
	sh->rb = ring_buffer__new(a->maps.fd[SHIFT_MAP_SHADOW], on_copy, a, NULL);
	if (!sh->rb) {
		err = -errno;
		log_err("shadow: cannot open the copy ring: %s", strerror(-err));
		return err;
	}
	return 0;
}

int shadow_ring_fd(const struct agent *a)
{
	return a->shadow && a->shadow->rb ? ring_buffer__epoll_fd(a->shadow->rb) : -1;
}

int shadow_sock_fd(const struct agent *a)
{
	return a->shadow ? a->shadow->epfd : -1;
}

void shadow_ring_ready(struct agent *a)
{
	struct shadow *sh = a->shadow;

	if (!sh || !sh->rb)
		return;
	sh->budget = SHADOW_BUDGET;
	ring_buffer__consume(sh->rb);
}

static void job_event(struct shadow *sh, struct job *j, __u32 events, __u64 now)
{
	if (j->state == JOB_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (getsockopt(j->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr ||
		    (events & (EPOLLERR | EPOLLHUP))) {
			green_done(sh, j, SHADOW_ANS_ERROR, 0, now);
			return;
		}
		j->state = JOB_SENDING;
	}
	if (j->state == JOB_SENDING) {
		ssize_t n = send(j->fd, j->data + j->sent, j->len - j->sent, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			green_done(sh, j, SHADOW_ANS_ERROR, 0, now);
			return;
		}
		j->sent += (__u32)n;
		if (j->sent < j->len)
			return;
		j->sent_ns = now;
		j->state = JOB_READING;
		if (watch(sh, j, EPOLLIN, EPOLL_CTL_MOD))
			green_done(sh, j, SHADOW_ANS_ERROR, 0, now);
		return;
	}
	if (j->state == JOB_READING) {
		ssize_t n = recv(j->fd, j->rbuf + j->rlen, sizeof(j->rbuf) - j->rlen, 0);
		__u16 status;
		int rc;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			green_done(sh, j, SHADOW_ANS_ERROR, 0, now);
			return;
		}
		/* Time to first byte: the first read that got any. */
		if (!j->rlen)
			j->green.ttfb_ns = now > j->sent_ns ? now - j->sent_ns : 0;
		j->rlen += (__u32)n;
		rc = shadow_status_line(j->rbuf, j->rlen, &status);
		if (rc == 0 && j->rlen < sizeof(j->rbuf))
			return;
		if (rc == 1) {
			__u64 ttfb = j->green.ttfb_ns;

			/* 1xx is not the answer; green's body is never read. */
			if (status / 100 == 1) {
				j->rlen = 0;
				return;
			}
			green_done(sh, j, SHADOW_ANS_STATUS, status, now);
			j->green.ttfb_ns = ttfb;
			return;
		}
		green_done(sh, j, SHADOW_ANS_ERROR, 0, now);
	}
}

void shadow_sock_ready(struct agent *a)
{
	struct shadow *sh = a->shadow;
	struct epoll_event evs[SHADOW_BUDGET];
	__u64 now;
	int n, i;

	if (!sh || sh->epfd < 0)
		return;
	n = epoll_wait(sh->epfd, evs, SHADOW_BUDGET, 0);
	if (n <= 0)
		return;
	now = now_mono_ns();
	for (i = 0; i < n; i++)
		job_event(sh, evs[i].data.ptr, evs[i].events, now);
	start_queued(a, sh, now, SHADOW_BUDGET);
}

void shadow_tick(struct agent *a)
{
	struct shadow *sh = a->shadow;
	__u64 now = now_mono_ns();
	int left = SHADOW_TICK_BUDGET;

	if (!sh)
		return;
	/* A backstop, as for the samples: copies never wait on a lost wakeup. */
	if (sh->rb) {
		sh->budget = SHADOW_TICK_BUDGET;
		ring_buffer__consume(sh->rb);
	}
	/*
	 * Expire at most a budget per tick, from where the last tick stopped: a
	 * dead green's replays all reach their deadline together, and closing
	 * hundreds of sockets in one go would hold the loop for milliseconds.
	 * A late expiry only counts a timeout a little later.
	 */
	for (__u32 k = 0; k < SHADOW_MAX_JOBS && left > 0; k++) {
		struct job *j = &sh->jobs[sh->tick_cursor];

		sh->tick_cursor = (sh->tick_cursor + 1) % SHADOW_MAX_JOBS;
		switch (j->state) {
		case JOB_CONNECTING:
		case JOB_SENDING:
		case JOB_READING:
			if (now >= j->deadline_ns) {
				green_done(sh, j, SHADOW_ANS_TIMEOUT, 0, now);
				left--;
			}
			break;
		case JOB_WAIT_BLUE:
			if (now >= j->copy_ns + SHADOW_QUEUE_WAIT_NS + SHADOW_BLUE_WAIT_NS) {
				job_finish(sh, j, now);
				left--;
			}
			break;
		default:
			break;
		}
	}
	start_queued(a, sh, now, SHADOW_TICK_BUDGET);
}

void shadow_on_sample(struct agent *a, const void *sample)
{
	const struct shift_sample *smp = sample;
	struct shadow *sh = a->shadow;
	struct shadow_answer ans = { 0 };
	struct svc_shadow *v;
	struct early *e;

	if (!sh || smp->color != SHIFT_BLUE || smp->service_id >= SHIFT_MAX_SERVICES ||
	    smp->kind == SHIFT_SAMPLE_CONNECT)
		return;
	v = &sh->svc[smp->service_id];
	/* The datapath's own choice: only sampled flows can have a copy. */
	if (!v->on || shift_shadow_slot(smp->flow_hash) >= v->sample_bp)
		return;
	if (smp->status) {
		ans.how = SHADOW_ANS_STATUS;
		ans.status = smp->status;
		ans.ttfb_ns = smp->value_ns;
	} else {
		ans.how = SHADOW_ANS_ERROR;
	}
	/* On the samples' path: stop once every held copy has been looked at. */
	for (__u32 i = 0, seen = 0; i < SHADOW_MAX_JOBS && seen < sh->held; i++) {
		struct job *j = &sh->jobs[i];

		if (j->state == JOB_FREE)
			continue;
		seen++;
		if (j->hash != smp->flow_hash || j->sid != smp->service_id ||
		    j->blue.how != SHADOW_ANS_NONE || smp->ts_ns < j->copy_ns)
			continue;
		j->blue = ans;
		if (j->state == JOB_WAIT_BLUE)
			job_finish(sh, j, now_mono_ns());
		return;
	}
	e = &sh->early[sh->early_next++ % EARLY_SLOTS];
	e->used = true;
	e->hash = smp->flow_hash;
	e->sid = smp->service_id;
	e->ts_ns = smp->ts_ns;
	e->a = ans;
}

void shadow_close(struct agent *a)
{
	struct shadow *sh = a->shadow;

	if (!sh)
		return;
	for (__u32 i = 0; i < SHADOW_MAX_JOBS; i++)
		if (sh->jobs[i].fd >= 0)
			close(sh->jobs[i].fd);
	if (sh->rb)
		ring_buffer__free(sh->rb);
	if (sh->epfd >= 0)
		close(sh->epfd);
	free(sh->jobs);
	free(sh);
	a->shadow = NULL;
}

int shadow_report(struct agent *a, __u32 sid, struct shadow_report *r)
{
	struct shadow *sh = a->shadow;
	struct svc_shadow *v;
	__u64 now = now_mono_ns();

	memset(r, 0, sizeof(*r));
	if (!sh || sid >= SHIFT_MAX_SERVICES || !a->svc[sid])
		return -ENOENT;
	v = &sh->svc[sid];
	r->enabled = v->on;
	r->sample_bp = v->sample_bp;
	r->max_mismatch = v->max_mismatch;
	r->requests = v->requests;
	r->compared = v->compared;
	memcpy(r->kinds, v->kinds, sizeof(r->kinds));
	r->mismatches = v->compared - v->kinds[SHADOW_MATCH];
	r->unpaired = v->unpaired;
	r->shed = v->shed;
	for (__u32 i = 0; sh->held && i < SHADOW_MAX_JOBS; i++)
		r->pending += sh->jobs[i].state != JOB_FREE && sh->jobs[i].sid == sid;
	r->skipped[SHIFT_SHADOW_SKIP_SPLIT] += v->body_split;
	r->window_ns = v->window_ns;
	r->mismatch_rate =
		shadow_window_rate(&v->win, now, &r->window_compared, &r->window_mismatches);
	memcpy(r->lat_count, v->lat_count, sizeof(r->lat_count));
	memcpy(r->lat_sum_ns, v->lat_sum_ns, sizeof(r->lat_sum_ns));
	memcpy(r->lat_max_ns, v->lat_max_ns, sizeof(r->lat_max_ns));
	return 0;
}

void shadow_report_maps(const struct shift_maps *m, __u32 sid, struct shadow_report *r)
{
	int ncpu = libbpf_num_possible_cpus();

	if (ncpu <= 0 || m->fd[SHIFT_MAP_SHADOW_STATS] < 0 || sid >= SHIFT_MAX_SERVICES)
		return;
	{
		__u64 vals[ncpu];

		for (__u32 k = 0; k < SHIFT_SHADOW_STAT_MAX; k++) {
			__u32 key = sid * SHIFT_SHADOW_STAT_MAX + k;

			if (bpf_map_lookup_elem(m->fd[SHIFT_MAP_SHADOW_STATS], &key, vals))
				continue;
			for (int c = 0; c < ncpu; c++)
				r->skipped[k] += vals[c];
		}
	}
}

int shadow_gate(struct agent *a, __u32 sid, char *msg, size_t len)
{
	struct shadow *sh = a->shadow;
	struct svc_shadow *v;
	__u64 n, mm;
	double rate;
	char w[WEIGHT_STR_LEN];

	if (!sh || sid >= SHIFT_MAX_SERVICES || !a->svc[sid])
		return 0;
	v = &sh->svc[sid];
	rate = shadow_window_rate(&v->win, now_mono_ns(), &n, &mm);
	if (!v->on || !n || rate <= v->max_mismatch)
		return 0;
	snprintf(
		msg, len,
		"service %s: shadow mismatch rate %.1f%% (%llu of %llu replays over the last %llus) "
		"exceeds max_shadow_mismatch %s; nothing changed (--force to override)",
		a->svc[sid]->conf->name, rate * 100.0, (unsigned long long)mm,
		(unsigned long long)n, (unsigned long long)(v->window_ns / 1000000000ull),
		weight_format((__u32)(v->max_mismatch * 10000.0 + 0.5), w, sizeof(w)));
	return -EPERM;
}
