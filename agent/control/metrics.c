// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shift.prom: Prometheus text format 0.0.4 for the node exporter's textfile
 * collector. Base units (seconds, ratios 0..1), counters end in _total,
 * histograms carry cumulative buckets up to +Inf, _sum and _count. Labels go
 * down to the backend, never to a flow. No timestamps: the collector stamps
 * the scrape and exports the file's mtime (node_textfile_mtime_seconds), which
 * is what tells a stale file from a live agent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/libbpf.h>

#include "shift.skel.h"
#include "config/addr.h"
#include "datapath/client_nh.h"
#include "ops/log.h"
#include "ops/thread.h"
#include "control/metrics.h"
#include "shadow/shadow.h"

#include "version.h"

#define LABELS_LEN 512
/* The reaction histogram's first bucket: 2^10 ns (about 1 µs); faster ones fold into it. */
#define REACTION_FIRST_BUCKET 9
#define REACTION_BUCKETS ((int)(sizeof(((struct agent *)0)->reaction_hist) / sizeof(__u64)))

/* --- formatting ---------------------------------------------------------------- */

/* v / 10^digits as an exact decimal without trailing zeros: "0.25", "1", "0.000001". */
static const char *fmt_scaled(__u64 v, int digits, char *buf, size_t len)
{
	__u64 div = 1, frac;
	int i, n;

	for (i = 0; i < digits; i++)
		div *= 10;
	frac = v % div;
	if (!frac) {
		snprintf(buf, len, "%llu", (unsigned long long)(v / div));
		return buf;
	}
	n = snprintf(buf, len, "%llu.%0*llu", (unsigned long long)(v / div), digits,
		     (unsigned long long)frac);
	if (n > 0 && (size_t)n < len)
		while (n > 0 && buf[n - 1] == '0')
			buf[--n] = '\0';
	return buf;
}

static const char *fmt_seconds(__u64 ns, char *buf, size_t len)
{
	return fmt_scaled(ns, 9, buf, len);
}

/* A label set being built: name="value" pairs, values escaped (\\, \", \n). */
struct labels {
	char s[LABELS_LEN];
	size_t n;
};

static void labels_add(struct labels *l, const char *name, const char *val)
{
	size_t need = strlen(name) + 4, i;
	char *p;

	for (i = 0; val[i]; i++)
		need += (val[i] == '\\' || val[i] == '"' || val[i] == '\n') ? 2 : 1;
	/* Every value here is bounded far below LABELS_LEN; refuse rather than cut. */
	if (l->n + need + 1 > sizeof(l->s))
		return;
	p = l->s + l->n;
	if (l->n)
		*p++ = ',';
	p += sprintf(p, "%s=\"", name);
	for (i = 0; val[i]; i++) {
		if (val[i] == '\\' || val[i] == '"') {
			*p++ = '\\';
			*p++ = val[i];
		} else if (val[i] == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else {
			*p++ = val[i];
		}
	}
	*p++ = '"';
	*p = '\0';
	l->n = (size_t)(p - l->s);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(FILE *f, const char *name, const char *labels, __u64 v)
{
	if (labels && *labels)
		fprintf(f, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
	else
		fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void sample_str(FILE *f, const char *name, const char *labels, const char *v)
{
	if (labels && *labels)
		fprintf(f, "%s{%s} %s\n", name, labels, v);
	else
		fprintf(f, "%s %s\n", name, v);
}

/* One labelled sample: name{labels,extra="val"} v. */
static void sample_lu64(FILE *f, const char *name, const char *labels, const char *extra,
			const char *val, __u64 v)
{
	struct labels l;

	memset(&l, 0, sizeof(l));
	if (labels && *labels)
		l.n = (size_t)snprintf(l.s, sizeof(l.s), "%s", labels);
	labels_add(&l, extra, val);
	sample_u64(f, name, l.s, v);
}

/*
 * One histogram's samples. le[i] is bucket i's upper bound in ns, counts[i] its
 * (non-cumulative) count, for i < n; the +Inf bucket adds rest. Per-CPU sums
 * are read while the datapath writes, so +Inf and _count take the larger of
 * the two totals: buckets stay monotonic and +Inf == _count.
 */
static void histogram(FILE *f, const char *name, const char *labels, const __u64 *le_ns,
		      const __u64 *counts, int n, __u64 rest, __u64 count, __u64 sum_ns)
{
	char le[32], sum[32], b[LABELS_LEN + 64];
	const char *sep = labels && *labels ? "," : "";
	__u64 cum = 0;
	int i;

	if (!labels)
		labels = "";
	snprintf(b, sizeof(b), "%s_bucket", name);
	for (i = 0; i < n; i++) {
		cum += counts[i];
		fprintf(f, "%s{%s%sle=\"%s\"} %llu\n", b, labels, sep,
			fmt_seconds(le_ns[i], le, sizeof(le)), (unsigned long long)cum);
	}
	cum += rest;
	if (count < cum)
		count = cum;
	fprintf(f, "%s{%s%sle=\"+Inf\"} %llu\n", b, labels, sep, (unsigned long long)count);
	snprintf(b, sizeof(b), "%s_sum", name);
	sample_str(f, b, labels, fmt_seconds(sum_ns, sum, sizeof(sum)));
	snprintf(b, sizeof(b), "%s_count", name);
	sample_u64(f, b, labels, count);
}

/*
 * --- the snapshot ---------------------------------------------------------------
 *
 * Two steps: snap_take() copies what the agent owns (names, ids, health, its own
 * counters) on the loop's thread, with no system call; snap_read_maps() reads
 * the per-CPU counters from the maps, on the writer's thread. The maps are fds,
 * safe from any thread; the agent's structs are not.
 */

/* A backend as the loop copies it: small, so the copy costs the loop little. */
struct be_snap {
	__u32 id;
	__u32 svc; /* its service in snap.svc */
	int color;
	bool up;
	struct shift_addr_key addr;
};

/* What the thread adds: the labels and the counters read from the maps. */
struct be_data {
	struct labels l; /* service, color, backend */
	struct shift_backend_stats s;
	struct shift_lat_hist h[SHIFT_LAT_KINDS];
};

struct svc_snap {
	struct labels l; /* service */
	__u32 id;
	__u32 rt_word; /* the agent's view of the weight word, if the map does not answer */
	__u32 weight; /* basis points as the datapath steers: 0 while latched */
	bool latched;
	bool ramp_active;
	__u64 rollbacks[TRIGGER__COUNT];
	__u64 rollback_unix_ns;
	__u64 drills[DRILL__COUNT];
	bool drill_active, drill_known;
	__u64 drill_ttb_ns; /* the last drill's time to blue */
	bool have_shadow;
	struct shadow_report shadow;
	__u64 lost[SHIFT_COLORS][SHIFT_LOST_KINDS]; /* shift_lost's, by color and kind */
};

struct if_snap {
	char name[CONF_IFNAMSIZ];
	enum xdp_role role;
	bool attached;
	char mode[16]; /* "native", "generic", ...; "none" when not attached */
};

struct snap {
	struct shift_maps maps; /* fds, not owned */
	/* Set by the owner to stop a render half-way (shutdown); NULL for none. */
	const atomic_bool *cancel;
	__u64 started_unix_ns, reloads, reload_failures, samples, samples_ignored;
	__u64 reaction_hist[REACTION_BUCKETS];
	__u64 reaction_sum_ns, reaction_count;
	struct fleet_stats fleet;
	struct if_snap ifaces[AGENT_MAX_IFACES];
	__u32 n_ifaces;
	struct svc_snap *svc;
	__u32 n_svc;
	struct be_snap *be;
	__u32 n_be;
	struct be_data *bd; /* n_be of them, snap_read_maps()'s */
	__u64 stats[SHIFT_STAT_MAX];
	int client_nhs_fd; /* not owned; -1 without a datapath (tests) */
	__u32 nh_used, nh_retired;
	bool nh_known;
	struct nexthop_stats be_nh; /* backends' next hops, datapath/nexthop.c */
	bool be_nh_known; /* netlink is there */
};

/* The owner wants the render to stop: it ends early with -ECANCELED. */
static bool cancelled(const struct snap *sn)
{
	return sn->cancel && atomic_load_explicit(sn->cancel, memory_order_relaxed);
}

static const char *color_name(int c)
{
	return c == SHIFT_GREEN ? "green" : "blue";
}

static void snap_free(struct snap *sn)
{
	if (!sn)
		return;
	free(sn->svc);
	free(sn->be);
	free(sn->bd);
	free(sn);
}

/* On the loop's thread: no system call, no map read. NULL when out of memory. */
static struct snap *snap_take(const struct agent *a)
{
	__u32 i, c, k, n_be = 0, n_svc = 0;
	struct snap *sn;

	agent_count(a, &n_svc, &n_be);
	sn = calloc(1, sizeof(*sn));
	if (!sn)
		return NULL;
	sn->fleet = a->fleet;
	sn->be_nh = a->nh_stats;
	sn->be_nh_known = a->nh != NULL;
	sn->svc = calloc(n_svc ? n_svc : 1, sizeof(*sn->svc));
	sn->be = calloc(n_be ? n_be : 1, sizeof(*sn->be));
	if (!sn->svc || !sn->be) {
		snap_free(sn);
		return NULL;
	}
	sn->maps = a->maps;
	sn->client_nhs_fd = a->skel ? bpf_map__fd(a->skel->maps.shift_client_nhs) : -1;
	sn->started_unix_ns = a->started_unix_ns;
	sn->reloads = a->reloads;
	sn->reload_failures = a->reload_failures;
	sn->samples = a->samples;
	sn->samples_ignored = a->samples_ignored;
	memcpy(sn->reaction_hist, a->reaction_hist, sizeof(sn->reaction_hist));
	sn->reaction_sum_ns = a->reaction_sum_ns;
	sn->reaction_count = a->reaction_count;
	for (i = 0; i < a->n_ifaces && i < AGENT_MAX_IFACES; i++) {
		struct if_snap *f = &sn->ifaces[sn->n_ifaces++];

		memcpy(f->name, a->ifaces[i].name, sizeof(f->name));
		f->name[sizeof(f->name) - 1] = '\0';
		f->role = a->ifaces[i].role;
		f->attached = a->ifaces[i].attached;
		snprintf(f->mode, sizeof(f->mode), "%s",
			 f->attached && a->ifaces[i].mode ? a->ifaces[i].mode : "none");
	}
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		const struct service_rt *s = a->svc[i];
		struct svc_snap *v;

		if (!s)
			continue;
		v = &sn->svc[sn->n_svc++];
		labels_add(&v->l, "service", s->conf->name);
		v->id = s->id;
		v->rt_word = s->weight | (s->latched ? SHIFT_WEIGHT_LATCHED : 0);
		v->ramp_active = s->ramp.active;
		memcpy(v->rollbacks, s->rollbacks, sizeof(v->rollbacks));
		v->rollback_unix_ns = s->rollback_unix_ns;
		memcpy(v->drills, s->drill.done, sizeof(v->drills));
		v->drill_active = s->drill.holding || s->drill.interrupted;
		v->drill_known = s->drill.ttb_ns != 0;
		v->drill_ttb_ns = s->drill.ttb_ns;
		v->have_shadow = shadow_report((struct agent *)a, s->id, &v->shadow) == 0 &&
				 (v->shadow.enabled || v->shadow.requests);
		for (c = 0; c < SHIFT_COLORS; c++) {
			for (k = 0; k < s->n[c] && sn->n_be < n_be; k++) {
				const struct backend_rt *b = &s->pool[c][k];
				struct be_snap *e = &sn->be[sn->n_be++];

				e->id = b->id;
				e->svc = sn->n_svc - 1;
				e->color = (int)c;
				e->up = b->healthy;
				e->addr = b->addr;
			}
		}
	}
	return sn;
}

/* Each service's lost samples; zeros when the map does not answer (no datapath). */
static void snap_read_lost(struct snap *sn)
{
	struct shift_lost *lost = malloc(sizeof(*lost)); /* 16 KiB: not on a thread's stack */
	__u32 i;

	if (!lost || dp_lost(&sn->maps, lost)) {
		free(lost);
		return;
	}
	for (i = 0; i < sn->n_svc; i++)
		memcpy(sn->svc[i].lost, lost->n[sn->svc[i].id & (SHIFT_MAX_SERVICES - 1)],
		       sizeof(sn->svc[i].lost));
	free(lost);
}

/*
 * On the writer's thread. Unreadable counters (no maps: tests) read as zero.
 * 0, or -ECANCELED when told to stop half-way.
 */
static int snap_read_maps(struct snap *sn)
{
	__u32 i, word;
	int k;

	if (dp_stats(&sn->maps, sn->stats))
		memset(sn->stats, 0, sizeof(sn->stats));
	sn->nh_known = sn->client_nhs_fd >= 0 &&
		       client_nhs_count(sn->client_nhs_fd, &sn->nh_used, &sn->nh_retired) == 0;
	for (i = 0; i < sn->n_svc; i++) {
		struct svc_snap *v = &sn->svc[i];

		/* The weight word as `shiftctl status` reads it: the map is the truth. */
		if (dp_weight_get(&sn->maps, v->id, &word))
			word = v->rt_word;
		v->latched = word & SHIFT_WEIGHT_LATCHED;
		v->weight = v->latched ? 0 : word & SHIFT_WEIGHT_MASK;
		if (v->weight > SHIFT_WEIGHT_MAX)
			v->weight = SHIFT_WEIGHT_MAX;
		if (v->have_shadow)
			shadow_report_maps(&sn->maps, v->id, &v->shadow);
	}
	snap_read_lost(sn);
	/* Here, not in snap_take(): 1 KiB a backend, 32 MiB of page faults at full scale. */
	sn->bd = calloc(sn->n_be ? sn->n_be : 1, sizeof(*sn->bd));
	if (!sn->bd)
		return -ENOMEM;
	for (i = 0; i < sn->n_be; i++) {
		const struct be_snap *e = &sn->be[i];
		struct be_data *d = &sn->bd[i];
		char addr[ADDR_ENDPOINT_LEN];

		if (cancelled(sn))
			return -ECANCELED;
		d->l = sn->svc[e->svc].l;
		labels_add(&d->l, "color", color_name(e->color));
		labels_add(&d->l, "backend", addr_format_endpoint(&e->addr, addr, sizeof(addr)));
		if (dp_backend_stats(&sn->maps, e->id, &d->s))
			memset(&d->s, 0, sizeof(d->s));
		for (k = 0; k < SHIFT_LAT_KINDS; k++)
			if (dp_lat_hist(&sn->maps, e->id, k, &d->h[k]))
				memset(&d->h[k], 0, sizeof(d->h[k]));
	}
	return 0;
}

/* --- the families ------------------------------------------------------------------ */

static void render_agent(const struct snap *sn, FILE *f)
{
	char v[32], abi[16];
	struct labels l;
	__u32 i;

	memset(&l, 0, sizeof(l));
	labels_add(&l, "version", SHIFT_VERSION);
	snprintf(abi, sizeof(abi), "%d", SHIFT_ABI_VERSION);
	labels_add(&l, "map_abi", abi);
	family(f, "shift_build_info", "gauge", "shiftd's version and map ABI; always 1.");
	sample_u64(f, "shift_build_info", l.s, 1);

	family(f, "shift_agent_start_time_seconds", "gauge",
	       "When this shiftd process started, in seconds since the Unix epoch.");
	sample_str(f, "shift_agent_start_time_seconds", NULL,
		   fmt_seconds(sn->started_unix_ns, v, sizeof(v)));
	family(f, "shift_config_reloads_total", "counter",
	       "Config reloads attempted (SIGHUP or shiftctl reload) since start.");
	sample_u64(f, "shift_config_reloads_total", NULL, sn->reloads);
	family(f, "shift_config_reload_failures_total", "counter",
	       "Config reloads refused or not fully applied; the running config was kept.");
	sample_u64(f, "shift_config_reload_failures_total", NULL, sn->reload_failures);
	family(f, "shift_samples_total", "counter",
	       "Return-path samples read from the ring buffer and fed to the analysis.");
	sample_u64(f, "shift_samples_total", NULL, sn->samples);
	family(f, "shift_samples_ignored_total", "counter",
	       "Return-path samples for no configured service or backend.");
	sample_u64(f, "shift_samples_ignored_total", NULL, sn->samples_ignored);

	family(f, "shift_xdp_attached", "gauge",
	       "1 if shift's program is attached to the interface (mode: XDP native/generic, TC tcx/clsact), else 0.");
	for (i = 0; i < sn->n_ifaces; i++) {
		const struct if_snap *it = &sn->ifaces[i];

		memset(&l, 0, sizeof(l));
		labels_add(&l, "interface", it->name);
		labels_add(&l, "role", xdp_role_name(it->role));
		labels_add(&l, "mode", it->mode);
		sample_u64(f, "shift_xdp_attached", l.s, it->attached ? 1 : 0);
	}

	family(f, "shift_packets_dropped_total", "counter",
	       "Packets to a VIP the datapath dropped, by reason.");
	for (i = 0; i < SHIFT_STAT_MAX; i++)
		if (dp_stat_is_drop(i))
			sample_lu64(f, "shift_packets_dropped_total", NULL, "reason",
				    dp_stat_name(i), sn->stats[i]);
	family(f, "shift_packets_passed_total", "counter",
	       "Packets to a VIP handed to the kernel stack instead of forwarded, by reason.");
	for (i = 0; i < SHIFT_STAT_MAX; i++) {
		const char *name = dp_stat_name(i);

		if (!dp_stat_is_drop(i) && !strncmp(name, "pass_", 5))
			sample_lu64(f, "shift_packets_passed_total", NULL, "reason", name + 5,
				    sn->stats[i]);
	}
	family(f, "shift_flows_created_total", "counter",
	       "New flows steered (a SYN, or the first packet of a flow not in the table).");
	sample_u64(f, "shift_flows_created_total", NULL, sn->stats[SHIFT_STAT_FLOW_NEW]);
	family(f, "shift_flow_inserts_total", "counter",
	       "Connection-table entries written: handshakes completed (the client's first "
	       "ACK), UDP flows, and TCP flows met in mid-stream once their backend answered. "
	       "A bare SYN or an ACK without its handshake writes none.");
	sample_u64(f, "shift_flow_inserts_total", NULL, sn->stats[SHIFT_STAT_FLOW_INSERT]);
	family(f, "shift_syn_slot_misses_total", "counter",
	       "SYN-ACKs, and client TCP packets without an entry, whose SYN slot does not hold "
	       "their handshake: another flow's SYN took it (a lost connect-latency sample), or "
	       "none was seen (mid-stream, spoofed). Steered by hash and weight, no entry "
	       "written until the backend answers.");
	sample_u64(f, "shift_syn_slot_misses_total", NULL, sn->stats[SHIFT_STAT_SYN_SLOT_MISS]);
	family(f, "shift_handshake_acks_unmatched_total", "counter",
	       "Client ACKs completing a handshake their SYN slot holds whose acknowledgment "
	       "number is not the backend's SYN-ACK's + 1: a blind spoofer's guess (SYN, then "
	       "ACK). Steered by hash and weight, no entry written.");
	sample_u64(f, "shift_handshake_acks_unmatched_total", NULL,
		   sn->stats[SHIFT_STAT_ACK_UNMATCHED]);
	family(f, "shift_icmp_too_big_forwarded_total", "counter",
	       "ICMP \"fragmentation needed\" and ICMPv6 \"packet too big\" messages about a "
	       "flow's answer, sent to the VIP by a router on the clients' side, translated and "
	       "forwarded to the flow's backend (path MTU discovery).");
	sample_u64(f, "shift_icmp_too_big_forwarded_total", NULL,
		   sn->stats[SHIFT_STAT_ICMP_TOO_BIG]);
	family(f, "shift_replies_fib_total", "counter",
	       "Replies forwarded by a FIB lookup because neither a connection-table entry nor "
	       "their SYN's slot held the client-side next hop (a SYN-ACK whose SYN slot another "
	       "SYN took, a flow met in mid-stream).");
	sample_u64(f, "shift_replies_fib_total", NULL, sn->stats[SHIFT_STAT_REPLY_FIB]);
	if (sn->be_nh_known) {
		family(f, "shift_nexthop_queries_total", "counter",
		       "Netlink queries shiftd's loop made to keep the backends' next hops "
		       "(route, link and neighbour lookups, neighbour probes). A neighbour event "
		       "for an entry no backend resolves through makes none.");
		sample_u64(f, "shift_nexthop_queries_total", NULL, sn->be_nh.queries);
		family(f, "shift_nexthop_lookups_total", "counter",
		       "Backends whose next hop was looked up again (a route query each): new "
		       "ones, those a route or link change concerns, all of them after a default "
		       "route changed or events were lost.");
		sample_u64(f, "shift_nexthop_lookups_total", NULL, sn->be_nh.lookups);
		family(f, "shift_nexthop_event_updates_total", "counter",
		       "Backend entries rewritten from a neighbour event (a MAC learned, changed "
		       "or lost), without a query.");
		sample_u64(f, "shift_nexthop_event_updates_total", NULL, sn->be_nh.from_events);
		family(f, "shift_nexthop_lookups_pending", "gauge",
		       "Next-hop lookups queued, worked off between the loop's events.");
		sample_u64(f, "shift_nexthop_lookups_pending", NULL, sn->be_nh.pending);
	}
	if (sn->nh_known) {
		family(f, "shift_client_nexthops", "gauge",
		       "Entries of the table of client-side next hops SYNs arrive by, which their "
		       "SYN-ACKs go back by (255 at most; a next hop without one sends its SYN-ACKs "
		       "by the FIB), by state: used, or retired with their deleted interface (free "
		       "again after 129 s).");
		sample_lu64(f, "shift_client_nexthops", NULL, "state", "used", sn->nh_used);
		sample_lu64(f, "shift_client_nexthops", NULL, "state", "retired", sn->nh_retired);
	}
	family(f, "shift_connect_fallbacks_total", "counter",
	       "Green RSTs to a SYN dropped at the edge by connect_fallback (the client's "
	       "retransmitted SYN went to blue); each is also a green RST error.");
	sample_u64(f, "shift_connect_fallbacks_total", NULL, sn->stats[SHIFT_STAT_FALLBACK]);
	family(f, "shift_flow_insert_failures_total", "counter",
	       "New flows that could not be pinned (connection table full).");
	sample_u64(f, "shift_flow_insert_failures_total", NULL,
		   sn->stats[SHIFT_STAT_FLOW_INSERT_FAIL]);
	family(f, "shift_source_override_hits_total", "counter",
	       "New flows steered by a source-prefix override.");
	sample_u64(f, "shift_source_override_hits_total", NULL, sn->stats[SHIFT_STAT_OVERRIDE_HIT]);
	family(f, "shift_ringbuf_dropped_total", "counter",
	       "Return-path samples a ring buffer could not take (the agent fell behind), by "
	       "ring: samples (ordinary) or errors (error samples, drained first).");
	sample_lu64(f, "shift_ringbuf_dropped_total", NULL, "ring", "samples",
		    sn->stats[SHIFT_STAT_RINGBUF_DROPPED]);
	sample_lu64(f, "shift_ringbuf_dropped_total", NULL, "ring", "errors",
		    sn->stats[SHIFT_STAT_ERRBUF_DROPPED]);
}

static void render_reaction(const struct snap *sn, FILE *f)
{
	__u64 le[REACTION_BUCKETS], counts[REACTION_BUCKETS], below = 0;
	int b, n = 0;

	/* reaction_hist[b] holds [2^b, 2^(b+1)) ns; the last one everything above. */
	for (b = 0; b < REACTION_FIRST_BUCKET; b++)
		below += sn->reaction_hist[b];
	for (b = REACTION_FIRST_BUCKET; b < REACTION_BUCKETS - 1; b++) {
		le[n] = 1ull << (b + 1);
		counts[n] = sn->reaction_hist[b] + (n ? 0 : below);
		n++;
	}
	family(f, "shift_rollback_reaction_seconds", "histogram",
	       "Automatic rollbacks: time from the triggering sample's kernel timestamp to "
	       "the completed weight map write.");
	histogram(f, "shift_rollback_reaction_seconds", NULL, le, counts, n,
		  sn->reaction_hist[REACTION_BUCKETS - 1], sn->reaction_count, sn->reaction_sum_ns);
}

/* Rollback drills (shiftctl drill); the last drill's figure only once one ran. */
static void render_drills(const struct snap *sn, FILE *f)
{
	char v[32];
	__u32 i;
	int r;

	family(f, "shift_drills_total", "counter",
	       "Rollback drills since shiftd started, by result (restored, aborted by a real "
	       "rollback, cancelled by the operator, failed, interrupted by a restart, refused).");
	for (i = 0; i < sn->n_svc; i++)
		for (r = DRILL_NONE + 1; r < DRILL__COUNT; r++)
			sample_lu64(f, "shift_drills_total", sn->svc[i].l.s, "result",
				    drill_result_name((enum drill_result)r), sn->svc[i].drills[r]);
	family(f, "shift_drill_active", "gauge", "1 while a rollback drill holds green at 0.");
	for (i = 0; i < sn->n_svc; i++)
		sample_u64(f, "shift_drill_active", sn->svc[i].l.s, sn->svc[i].drill_active);
	family(f, "shift_drill_time_to_blue_seconds", "gauge",
	       "The last measured rollback drill: time from the weight write to the last new "
	       "green connection (the write itself when none came after it).");
	for (i = 0; i < sn->n_svc; i++)
		if (sn->svc[i].drill_known)
			sample_str(f, "shift_drill_time_to_blue_seconds", sn->svc[i].l.s,
				   fmt_seconds(sn->svc[i].drill_ttb_ns, v, sizeof(v)));
}

static void render_lost(const struct snap *sn, FILE *f)
{
	/* By the sample's kind & 3, as the datapath counts them. */
	static const char *const kind[SHIFT_LOST_KINDS] = { "tcp", "connect", "response", "error" };
	struct labels l;
	__u32 i;
	int c, k;

	family(f, "shift_samples_lost_total", "counter",
	       "Return-path samples a full ring could not take, by service, color and kind "
	       "(tcp, connect, response, error). shiftd counts them in the service's windows: "
	       "its error rate stays exact, its latency quantiles come from the samples that "
	       "arrived.");
	for (i = 0; i < sn->n_svc; i++)
		for (c = 0; c < SHIFT_COLORS; c++) {
			l = sn->svc[i].l;
			labels_add(&l, "color", color_name(c));
			for (k = 0; k < SHIFT_LOST_KINDS; k++)
				sample_lu64(f, "shift_samples_lost_total", l.s, "kind", kind[k],
					    sn->svc[i].lost[c][k]);
		}
}

static void render_services(const struct snap *sn, FILE *f)
{
	char v[32];
	__u32 i;
	int r;

	family(f, "shift_green_weight_ratio", "gauge",
	       "Green's share of new connections, 0..1 (0 while rolled back).");
	for (i = 0; i < sn->n_svc; i++)
		sample_str(f, "shift_green_weight_ratio", sn->svc[i].l.s,
			   fmt_scaled(sn->svc[i].weight, 4, v, sizeof(v)));
	family(f, "shift_rollback_active", "gauge",
	       "1 while the service's rollback latch holds green at 0 (shiftctl clear lifts it).");
	for (i = 0; i < sn->n_svc; i++)
		sample_u64(f, "shift_rollback_active", sn->svc[i].l.s, sn->svc[i].latched);
	family(f, "shift_rollbacks_total", "counter",
	       "Rollbacks since shiftd started, by trigger reason.");
	for (i = 0; i < sn->n_svc; i++)
		for (r = TRIGGER_NONE + 1; r < TRIGGER__COUNT; r++)
			sample_lu64(f, "shift_rollbacks_total", sn->svc[i].l.s, "reason",
				    trigger_reason_name(r), sn->svc[i].rollbacks[r]);
	family(f, "shift_last_rollback_timestamp_seconds", "gauge",
	       "When the service last rolled back, in seconds since the Unix epoch; 0 never.");
	for (i = 0; i < sn->n_svc; i++)
		sample_str(f, "shift_last_rollback_timestamp_seconds", sn->svc[i].l.s,
			   fmt_seconds(sn->svc[i].rollback_unix_ns, v, sizeof(v)));
	family(f, "shift_ramp_active", "gauge", "1 while a ramp steps green up.");
	for (i = 0; i < sn->n_svc; i++)
		sample_u64(f, "shift_ramp_active", sn->svc[i].l.s, sn->svc[i].ramp_active);
	render_drills(sn, f);
	render_lost(sn, f);
}

static void render_backends(const struct snap *sn, FILE *f)
{
	static const char *const lat_kind[SHIFT_LAT_KINDS] = { "connect", "response" };
	__u64 le[SHIFT_LAT_BUCKETS];
	char cls[4] = "0xx";
	__u32 i;
	int k, e;

	family(f, "shift_backend_connections_total", "counter",
	       "New connections steered to the backend.");
	for (i = 0; i < sn->n_be && !cancelled(sn); i++)
		sample_u64(f, "shift_backend_connections_total", sn->bd[i].l.s,
			   sn->bd[i].s.new_flows);
	family(f, "shift_backend_packets_total", "counter",
	       "Packets forwarded to the backend and its replies rewritten back to the VIP.");
	for (i = 0; i < sn->n_be && !cancelled(sn); i++) {
		sample_lu64(f, "shift_backend_packets_total", sn->bd[i].l.s, "direction",
			    "to_backend", sn->bd[i].s.packets);
		sample_lu64(f, "shift_backend_packets_total", sn->bd[i].l.s, "direction",
			    "from_backend", sn->bd[i].s.reply_packets);
	}
	family(f, "shift_backend_bytes_total", "counter",
	       "Bytes (IP packets) forwarded to the backend and of its replies.");
	for (i = 0; i < sn->n_be && !cancelled(sn); i++) {
		sample_lu64(f, "shift_backend_bytes_total", sn->bd[i].l.s, "direction",
			    "to_backend", sn->bd[i].s.bytes);
		sample_lu64(f, "shift_backend_bytes_total", sn->bd[i].l.s, "direction",
			    "from_backend", sn->bd[i].s.reply_bytes);
	}
	family(f, "shift_backend_errors_total", "counter",
	       "Errors seen on the return path, by kind.");
	for (i = 0; i < sn->n_be && !cancelled(sn); i++)
		for (e = SHIFT_ERR_NONE + 1; e < SHIFT_ERR_MAX; e++)
			sample_lu64(f, "shift_backend_errors_total", sn->bd[i].l.s, "kind",
				    dp_err_name(e), sn->bd[i].s.errors[e]);
	family(f, "shift_backend_responses_total", "counter",
	       "HTTP/1.x responses from the backend, by status class.");
	for (i = 0; i < sn->n_be && !cancelled(sn); i++) {
		for (e = 1; e <= 5; e++) {
			cls[0] = (char)('0' + e);
			sample_lu64(f, "shift_backend_responses_total", sn->bd[i].l.s, "class", cls,
				    sn->bd[i].s.responses[e]);
		}
	}
	/* Bucket i of the datapath's histogram counts latencies < 2^i µs; the last is +Inf. */
	for (k = 0; k < SHIFT_LAT_BUCKETS - 1; k++)
		le[k] = (1ull << k) * 1000ull;
	family(f, "shift_backend_latency_seconds", "histogram",
	       "Backend latency: connect (client SYN to backend SYN-ACK) and response "
	       "(HTTP request to first response byte).");
	for (i = 0; i < sn->n_be && !cancelled(sn); i++) {
		for (k = 0; k < SHIFT_LAT_KINDS; k++) {
			const struct shift_lat_hist *h = &sn->bd[i].h[k];
			struct labels l = sn->bd[i].l;

			labels_add(&l, "kind", lat_kind[k]);
			histogram(f, "shift_backend_latency_seconds", l.s, le, h->bucket,
				  SHIFT_LAT_BUCKETS - 1, h->bucket[SHIFT_LAT_BUCKETS - 1], h->count,
				  h->sum_ns);
		}
	}
	family(f, "shift_backend_up", "gauge",
	       "1 if the backend passes its health check and is in its pool's ring, else 0.");
	for (i = 0; i < sn->n_be && !cancelled(sn); i++)
		sample_u64(f, "shift_backend_up", sn->bd[i].l.s, sn->be[i].up);
}

/* Only on a fleet node: a lone host has no fleet to be connected to. */
static void render_fleet(const struct snap *sn, FILE *f)
{
	__u64 le[FLEET_LAG_BUCKETS - 1];
	int b;

	if (!sn->fleet.enabled)
		return;
	family(f, "shift_fleet_connected", "gauge",
	       "1 while shiftd is in touch with the fleet's etcd (lease alive, watch open).");
	sample_u64(f, "shift_fleet_connected", NULL, sn->fleet.connected);
	family(f, "shift_fleet_node_name_taken", "gauge",
	       "1 while another host holds this node's name in the fleet (two hosts with one "
	       "[fleet] node): this node follows the fleet but does not report.");
	sample_u64(f, "shift_fleet_node_name_taken", NULL, sn->fleet.name_taken);
	family(f, "shift_fleet_revision", "gauge",
	       "The etcd revision of the last fleet change this node has applied.");
	sample_u64(f, "shift_fleet_revision", NULL, (__u64)sn->fleet.revision);
	for (b = 0; b < FLEET_LAG_BUCKETS - 1; b++)
		le[b] = 1000000ull << b;
	family(f, "shift_fleet_apply_lag_seconds", "histogram",
	       "Fleet changes applied here: time from the writer's write (its clock) to this "
	       "node's map write.");
	histogram(f, "shift_fleet_apply_lag_seconds", NULL, le, sn->fleet.lag_hist,
		  FLEET_LAG_BUCKETS - 1, sn->fleet.lag_hist[FLEET_LAG_BUCKETS - 1],
		  sn->fleet.lag_count, (__u64)(sn->fleet.lag_sum_s * 1e9));
}

/* Shadow mode: only services that have it on (or had, since start). */
static void render_shadow(const struct snap *sn, FILE *f)
{
	static const char *const skip[SHIFT_SHADOW_STAT_MAX] = {
		[SHIFT_SHADOW_SKIP_METHOD] = "method",
		[SHIFT_SHADOW_SKIP_SPLIT] = "split",
		[SHIFT_SHADOW_SKIP_NOT_HTTP] = "not_http",
		[SHIFT_SHADOW_SKIP_TOO_LARGE] = "too_large",
		[SHIFT_SHADOW_RING_FULL] = "ring_full",
	};
	char v[32];
	__u32 i;
	int k;

	family(f, "shift_shadow_requests_total", "counter",
	       "Blue requests copied by the datapath and received for replay to green.");
	for (i = 0; i < sn->n_svc; i++)
		if (sn->svc[i].have_shadow)
			sample_u64(f, "shift_shadow_requests_total", sn->svc[i].l.s,
				   sn->svc[i].shadow.requests);
	family(f, "shift_shadow_compared_total", "counter",
	       "Replays whose green answer was paired with blue's.");
	for (i = 0; i < sn->n_svc; i++)
		if (sn->svc[i].have_shadow)
			sample_u64(f, "shift_shadow_compared_total", sn->svc[i].l.s,
				   sn->svc[i].shadow.compared);
	family(f, "shift_shadow_mismatches_total", "counter",
	       "Replays where green differed from blue, by kind.");
	for (i = 0; i < sn->n_svc; i++)
		if (sn->svc[i].have_shadow)
			for (k = SHADOW_MATCH + 1; k < SHADOW_KINDS; k++)
				sample_lu64(f, "shift_shadow_mismatches_total", sn->svc[i].l.s,
					    "kind", shadow_kind_name(k),
					    sn->svc[i].shadow.kinds[k]);
	family(f, "shift_shadow_skipped_total", "counter",
	       "Sampled blue requests not replayed, by reason.");
	for (i = 0; i < sn->n_svc; i++)
		if (sn->svc[i].have_shadow)
			for (k = SHIFT_SHADOW_SKIP_METHOD; k < SHIFT_SHADOW_STAT_MAX; k++)
				sample_lu64(f, "shift_shadow_skipped_total", sn->svc[i].l.s,
					    "reason", skip[k], sn->svc[i].shadow.skipped[k]);
	family(f, "shift_shadow_mismatch_ratio", "gauge",
	       "Mismatched replays over compared ones in the rollback window, 0..1.");
	for (i = 0; i < sn->n_svc; i++)
		if (sn->svc[i].have_shadow) {
			snprintf(v, sizeof(v), "%.6f", sn->svc[i].shadow.mismatch_rate);
			sample_str(f, "shift_shadow_mismatch_ratio", sn->svc[i].l.s, v);
		}
	family(f, "shift_shadow_pending", "gauge", "Replays not finished yet.");
	for (i = 0; i < sn->n_svc; i++)
		if (sn->svc[i].have_shadow)
			sample_u64(f, "shift_shadow_pending", sn->svc[i].l.s,
				   sn->svc[i].shadow.pending);
	family(f, "shift_shadow_replay_seconds", "summary",
	       "Time to first response byte of the paired requests: blue as the datapath saw "
	       "it, green as shiftd's replay saw it.");
	for (i = 0; i < sn->n_svc; i++) {
		const struct svc_snap *s = &sn->svc[i];

		if (!s->have_shadow)
			continue;
		for (k = 0; k < SHIFT_COLORS; k++) {
			struct labels l = s->l;

			labels_add(&l, "color", color_name(k));
			sample_str(f, "shift_shadow_replay_seconds_sum", l.s,
				   fmt_seconds(s->shadow.lat_sum_ns[k], v, sizeof(v)));
			sample_u64(f, "shift_shadow_replay_seconds_count", l.s,
				   s->shadow.lat_count[k]);
		}
	}
}

static int render_snap(const struct snap *sn, FILE *f)
{
	render_agent(sn, f);
	render_fleet(sn, f);
	render_reaction(sn, f);
	render_services(sn, f);
	render_shadow(sn, f);
	render_backends(sn, f);
	if (fflush(f) || ferror(f))
		return errno ? -errno : -EIO;
	return cancelled(sn) ? -ECANCELED : 0;
}

int metrics_render(struct agent *a, FILE *f)
{
	struct snap *sn = snap_take(a);
	int err;

	if (!sn)
		return -ENOMEM;
	err = snap_read_maps(sn);
	if (!err)
		err = render_snap(sn, f);
	snap_free(sn);
	return err;
}

/* Render into memory: *buf (malloc'ed) and *len. */
static int render_buf(const struct snap *sn, char **buf, size_t *len)
{
	FILE *f;
	int err;

	*buf = NULL;
	*len = 0;
	f = open_memstream(buf, len);
	if (!f)
		return -errno;
	err = render_snap(sn, f);
	if (fclose(f) && !err)
		err = -ENOMEM;
	if (err) {
		free(*buf);
		*buf = NULL;
	}
	return err;
}

int metrics_render_mem(struct agent *a, char **buf, size_t *len)
{
	struct snap *sn = snap_take(a);
	int err;

	*buf = NULL;
	*len = 0;
	if (!sn)
		return -ENOMEM;
	err = metrics_snap_render(sn, NULL, buf, len);
	snap_free(sn);
	return err;
}

struct snap *metrics_snap_take(const struct agent *a)
{
	return snap_take(a);
}

int metrics_snap_render(struct snap *sn, const atomic_bool *cancel, char **buf, size_t *len)
{
	int err;

	*buf = NULL;
	*len = 0;
	sn->cancel = cancel;
	err = snap_read_maps(sn);
	if (!err)
		err = render_buf(sn, buf, len);
	sn->cancel = NULL;
	return err;
}

void metrics_snap_free(struct snap *sn)
{
	snap_free(sn);
}

static int write_file(const char *dir, const char *buf, size_t len, const atomic_bool *cancel,
		      char *err, size_t errlen);

/* Read the maps, render, write dir/shift.prom; cancel as metrics_snap_render()'s. */
static int snap_write(struct snap *sn, const atomic_bool *cancel, const char *dir, char *err,
		      size_t errlen)
{
	size_t len;
	char *buf;
	int rc;

	rc = metrics_snap_render(sn, cancel, &buf, &len);
	if (rc) {
		snprintf(err, errlen, "cannot render the metrics: %s", strerror(-rc));
		return rc;
	}
	rc = write_file(dir, buf, len, cancel, err, errlen);
	free(buf);
	return rc;
}

/* --- the file ------------------------------------------------------------------------ */

/* What one write() hands the kernel at most, between two looks at a stop. */
#define METRICS_WRITE_CHUNK (4u << 20)

int metrics_write_file(const char *dir, const char *buf, size_t len, char *err, size_t errlen)
{
	return write_file(dir, buf, len, NULL, err, errlen);
}

/*
 * cancel: shiftd is stopping. At 32,512 backends the file is hundreds of MB,
 * and its write and fsync held the exit for seconds after the render had
 * given up; the old file stays, the temp file goes (-ECANCELED).
 */
static int write_file(const char *dir, const char *buf, size_t len, const atomic_bool *cancel,
		      char *err, size_t errlen)
{
	char tmp[CONF_PATH_LEN + 32], path[CONF_PATH_LEN + 32];
	const char *step = "write";
	size_t off = 0;
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s/" METRICS_TMP_FILE, dir) >= (int)sizeof(tmp) ||
	    snprintf(path, sizeof(path), "%s/" METRICS_FILE, dir) >= (int)sizeof(path)) {
		snprintf(err, errlen, "textfile_dir %s: path too long", dir);
		return -ENAMETOOLONG;
	}
	/* The node exporter's user can write textfile_dir: a name planted there (a
	 * hard link to a root file, which O_NOFOLLOW does not stop) is removed, and
	 * the file is created anew, never opened (a crash's leftover goes too). */
	if (unlink(tmp) && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "cannot remove %s: %s", tmp, strerror(errno));
		return rc;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return rc;
	}
	/* The node exporter runs as another user: readable whatever the umask. */
	if (fchmod(fd, 0644)) {
		rc = -errno;
		step = "chmod";
	}
	while (!rc && off < len) {
		ssize_t n;

		if (cancel && atomic_load(cancel)) {
			rc = -ECANCELED;
			break;
		}
		n = write(fd, buf + off,
			  len - off < METRICS_WRITE_CHUNK ? len - off : METRICS_WRITE_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (!rc && cancel && atomic_load(cancel))
		rc = -ECANCELED;
	if (!rc && fsync(fd)) {
		rc = -errno;
		step = "fsync";
	}
	if (close(fd) && !rc) {
		rc = -errno;
		step = "close";
	}
	if (!rc && rename(tmp, path)) {
		rc = -errno;
		step = "rename";
	}
	if (rc) {
		snprintf(err, errlen, "cannot write %s: %s %s: %s", path, step, tmp, strerror(-rc));
		unlink(tmp);
	}
	return rc;
}

/* Report a write's outcome: a failure at most once per METRICS_WARN_EVERY_NS. */
static void report(struct metrics *m, int rc, const char *err, const char *dir)
{
	__u64 now = now_mono_ns();

	if (!rc) {
		if (m->failing)
			log_info("metrics: %s/%s written again (%llu writes had failed)", dir,
				 METRICS_FILE, (unsigned long long)m->failures);
		m->failing = false;
		m->failures = 0;
		return;
	}
	m->failures++;
	if (!m->failing || now - m->last_warn_ns >= METRICS_WARN_EVERY_NS) {
		log_warn(
			"metrics: %s; the datapath is unaffected, retrying every "
			"metrics_interval (%llu failures so far, next warning in a minute at most)",
			err, (unsigned long long)m->failures);
		m->last_warn_ns = now;
	}
	m->failing = true;
}

static void *writer_main(void *arg)
{
	struct metrics *m = arg;
	char dir[CONF_PATH_LEN], err[CONF_PATH_LEN * 2 + 128];
	struct snap *sn;
	int rc;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!m->pending && !m->stop)
			pthread_cond_wait(&m->cond, &m->lock);
		if (m->stop)
			break;
		sn = m->pending;
		memcpy(dir, m->pending_dir, sizeof(dir));
		m->pending = NULL;
		pthread_mutex_unlock(&m->lock);
		rc = snap_write(sn, &m->cancel, dir, err, sizeof(err));
		snap_free(sn);
		/* Stopping: the file half-rendered is no failure to report. */
		if (rc != -ECANCELED)
			report(m, rc, err, dir);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int metrics_start(struct metrics *m)
{
	int rc;

	m->started = false;
	m->stop = false;
	m->pending = NULL;
	atomic_init(&m->cancel, false);
	rc = pthread_mutex_init(&m->lock, NULL);
	if (rc) {
		log_warn("metrics: writer lock: %s; writing on the main thread", strerror(rc));
		return -rc;
	}
	rc = pthread_cond_init(&m->cond, NULL);
	if (rc) {
		pthread_mutex_destroy(&m->lock);
		log_warn("metrics: writer condition: %s; writing on the main thread", strerror(rc));
		return -rc;
	}
	rc = thread_start(&m->thread, writer_main, m, "shiftd-metrics");
	if (rc) {
		pthread_cond_destroy(&m->cond);
		pthread_mutex_destroy(&m->lock);
		log_warn("metrics: writer thread: %s; writing on the main thread", strerror(rc));
		return -rc;
	}
	m->started = true;
	return 0;
}

void metrics_stop(struct metrics *m)
{
	if (!m->started)
		return;
	/* A render in progress (seconds at 32768 backends) gives up: no wait for it. */
	atomic_store(&m->cancel, true);
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	snap_free(m->pending);
	m->pending = NULL;
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	m->started = false;
}

int metrics_write(struct agent *a, char *err, size_t errlen)
{
	struct snap *sn = snap_take(a);
	int rc;

	if (!sn) {
		snprintf(err, errlen, "cannot render the metrics: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	rc = snap_write(sn, NULL, a->conf->textfile_dir, err, errlen);
	snap_free(sn);
	return rc;
}

void metrics_tick(struct metrics *m, struct agent *a)
{
	__u64 now = now_mono_ns();
	char err[CONF_PATH_LEN * 2 + 128];
	struct snap *sn;
	int rc;

	if (m->next_ns && now < m->next_ns)
		return;
	/* On the interval's grid, so a slow tick does not stretch every period. */
	m->next_ns = m->next_ns && now - m->next_ns < a->conf->metrics_interval_ns ?
			     m->next_ns + a->conf->metrics_interval_ns :
			     now + a->conf->metrics_interval_ns;
	if (!m->started) {
		rc = metrics_write(a, err, sizeof(err));
		report(m, rc, err, a->conf->textfile_dir);
		return;
	}
	/* The loop's share: copy what the agent owns; no system call. */
	sn = snap_take(a);
	if (!sn) {
		/* The writer owns the write-failure state: count this apart. */
		if (!m->render_warn_ns || now - m->render_warn_ns >= METRICS_WARN_EVERY_NS) {
			log_warn("metrics: cannot render %s: %s", METRICS_FILE, strerror(ENOMEM));
			m->render_warn_ns = now;
		}
		return;
	}
	pthread_mutex_lock(&m->lock);
	/* A writer still busy with an older file (slow disk): the newest one wins. */
	snap_free(m->pending);
	m->pending = sn;
	snprintf(m->pending_dir, sizeof(m->pending_dir), "%s", a->conf->textfile_dir);
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
}
