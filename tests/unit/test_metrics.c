// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shift.prom: every family has HELP and TYPE before its samples, label values
 * are escaped, histograms are cumulative with +Inf == _count, every rollback
 * reason has a row; the file is replaced atomically and a failed write leaves
 * the previous file and no temp file; the writer thread delivers. Also the
 * sd_notify schedule and summary, deploy/shiftd.conf.example == conf_example(),
 * and metrics_interval's range (100 ms .. 1 h).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <cmocka.h>

#include "agent.h"
#include "control/metrics.h"
#include "ops/sdnotify.h"

#define SEC 1000000000ull

struct fixture {
	struct agent *a;
	struct shift_conf *conf;
	struct conf_service cs[2];
	char dir[64];
};

static void add_backend(struct service_rt *s, int color, __u32 id, const char *ip, int port,
			bool healthy)
{
	struct backend_rt *b = &s->pool[color][s->n[color]++];

	b->id = id;
	b->healthy = healthy;
	b->addr.family = SHIFT_AF_INET;
	b->addr.port = htons((uint16_t)port);
	b->addr.proto = IPPROTO_TCP;
	assert_int_equal(inet_pton(AF_INET, ip, &b->addr.addr[0]), 1);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct service_rt *s;
	int i;

	if (!f)
		return -1;
	f->a = calloc(1, sizeof(*f->a));
	f->conf = calloc(1, sizeof(*f->conf));
	if (!f->a || !f->conf)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/shift-test-metrics-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->conf->textfile_dir, sizeof(f->conf->textfile_dir), "%s", f->dir);
	f->conf->metrics_interval_ns = SEC / 10;
	f->a->conf = f->conf;
	/* No maps: every counter reads as zero, the file must still be whole. */
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		f->a->maps.fd[i] = -1;
	f->a->started_unix_ns = 1700000000ull * SEC + 250000000ull;
	f->a->reloads = 3;
	f->a->samples = 42;
	f->a->n_ifaces = 2;
	snprintf(f->a->ifaces[0].name, CONF_IFNAMSIZ, "eth0");
	f->a->ifaces[0].attached = true;
	f->a->ifaces[0].mode = "native";
	f->a->ifaces[0].role = XDP_ROLE_CLIENT;
	snprintf(f->a->ifaces[1].name, CONF_IFNAMSIZ, "eth1");
	f->a->ifaces[1].role = XDP_ROLE_BACKEND;
	/* Reaction times: 8 ns (folds into the first bucket), 2 x ~5 us, 1 x > 2 s. */
	f->a->reaction_hist[3] = 1;
	f->a->reaction_hist[12] = 2;
	f->a->reaction_hist[31] = 1;
	f->a->reaction_count = 4;
	f->a->reaction_sum_ns = 8 + 2 * 5000 + 3 * SEC;

	/* A name no config accepts, to exercise the escaping: " \ and a newline. */
	snprintf(f->cs[0].name, sizeof(f->cs[0].name), "we\"b\\x\n");
	snprintf(f->cs[1].name, sizeof(f->cs[1].name), "api");
	for (i = 0; i < 2; i++) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->id = (__u32)i * 7;
		s->conf = &f->cs[i];
		f->a->svc[s->id] = s;
	}
	s = f->a->svc[0];
	s->weight = 2500;
	s->rollbacks[TRIGGER_MANUAL] = 2;
	s->rollbacks[TRIGGER_CONSECUTIVE_ERRORS] = 1;
	add_backend(s, SHIFT_BLUE, 0, "10.1.0.11", 8080, true);
	add_backend(s, SHIFT_BLUE, 1, "10.1.0.12", 8080, true);
	add_backend(s, SHIFT_GREEN, 2, "10.1.0.21", 8081, false);
	s->drill.done[DRILL_RESTORED] = 3;
	s->drill.done[DRILL_REFUSED] = 1;
	s->drill.last.result = DRILL_RESTORED;
	s->drill.ttb_ns = 4250;
	s = f->a->svc[7];
	s->latched = true;
	s->latch_drill = true;
	s->drill.holding = true;
	add_backend(s, SHIFT_BLUE, 3, "10.2.0.11", 80, true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[128];
	int i;

	snprintf(p, sizeof(p), "%s/" METRICS_FILE, f->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/" METRICS_TMP_FILE, f->dir);
	unlink(p);
	rmdir(f->dir);
	for (i = 0; i < SHIFT_MAX_SERVICES; i++)
		free(f->a->svc[i]);
	free(f->a);
	free(f->conf);
	free(f);
	return 0;
}

static char *render(struct agent *a)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	assert_non_null(m);
	assert_int_equal(metrics_render(a, m), 0);
	assert_int_equal(fclose(m), 0);
	return buf;
}

/* The value of the sample line that starts with `series` followed by a space. */
static const char *value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series))) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return p + n + 1;
		p += n;
	}
	return NULL;
}

static void assert_value(const char *text, const char *series, const char *want)
{
	const char *v = value_of(text, series);

	if (!v)
		fail_msg("no sample %s", series);
	if (strncmp(v, want, strlen(want)) || v[strlen(want)] != '\n')
		fail_msg("%s = %.20s, want %s", series, v, want);
}

static int count_lines_starting(const char *text, const char *prefix)
{
	const char *p = text;
	int n = 0;

	while (p && *p) {
		if (!strncmp(p, prefix, strlen(prefix)))
			n++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return n;
}

/* Text format rules a scraper relies on: HELP then TYPE then that family's samples only. */
static void test_format(void **state)
{
	struct fixture *f = *state;
	char *text = render(f->a), *line, *save = NULL, family[128] = "";
	char seen[64][128];
	int nseen = 0, i;

	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		size_t n;

		if (!strncmp(line, "# HELP ", 7)) {
			n = strcspn(line + 7, " ");
			assert_true(n < sizeof(family));
			memcpy(family, line + 7, n);
			family[n] = '\0';
			for (i = 0; i < nseen; i++)
				if (!strcmp(seen[i], family))
					fail_msg("family %s appears twice", family);
			assert_true(nseen < 64);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", family);
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			assert_int_equal(strncmp(line + 7, family, strlen(family)), 0);
			if (strstr(line, "counter"))
				assert_non_null(strstr(family, "_total"));
			continue;
		}
		assert_int_not_equal(line[0], '#');
		n = strcspn(line, "{ ");
		assert_true(n < sizeof(name));
		memcpy(name, line, n);
		name[n] = '\0';
		/* A sample belongs to the family just declared (histograms add suffixes). */
		if (strcmp(name, family) && strncmp(name, family, strlen(family)))
			fail_msg("sample %s outside its family (current %s)", name, family);
		/* No timestamps: exactly one space-separated value after the series. */
		assert_null(strchr(
			strrchr(line, '}') ? strrchr(line, '}') + 2 : strchr(line, ' ') + 1, ' '));
	}
	free(text);
}

static void test_values(void **state)
{
	struct fixture *f = *state;
	char *text = render(f->a);
	const char *svc = "service=\"we\\\"b\\\\x\\n\"";
	char s[512];

	assert_value(text, "shift_build_info{version=\"0.1.0\",map_abi=\"6\"}", "1");
	assert_value(text, "shift_agent_start_time_seconds", "1700000000.25");
	assert_value(text, "shift_config_reloads_total", "3");
	assert_value(text, "shift_samples_total", "42");
	assert_value(text, "shift_xdp_attached{interface=\"eth0\",role=\"client\",mode=\"native\"}",
		     "1");
	assert_value(text, "shift_xdp_attached{interface=\"eth1\",role=\"backend\",mode=\"none\"}",
		     "0");
	assert_value(text, "shift_packets_dropped_total{reason=\"no_backend\"}", "0");
	assert_value(text, "shift_packets_passed_total{reason=\"no_neigh\"}", "0");
	assert_null(strstr(text, "reason=\"flow_new\""));
	assert_value(text, "shift_ringbuf_dropped_total{ring=\"samples\"}", "0");
	assert_value(text, "shift_ringbuf_dropped_total{ring=\"errors\"}", "0");

	/* Escaped label values; the weight from the runtime when no map answers. */
	snprintf(s, sizeof(s), "shift_green_weight_ratio{%s}", svc);
	assert_value(text, s, "0.25");
	snprintf(s, sizeof(s), "shift_rollback_active{%s}", svc);
	assert_value(text, s, "0");
	assert_value(text, "shift_green_weight_ratio{service=\"api\"}", "0");
	assert_value(text, "shift_rollback_active{service=\"api\"}", "1");
	snprintf(s, sizeof(s), "shift_rollbacks_total{%s,reason=\"manual\"}", svc);
	assert_value(text, s, "2");
	snprintf(s, sizeof(s), "shift_rollbacks_total{%s,reason=\"consecutive_errors\"}", svc);
	assert_value(text, s, "1");
	/* Every reason has a row, zeros included; "none" is not a reason. */
	assert_int_equal(count_lines_starting(text, "shift_rollbacks_total{"),
			 2 * (TRIGGER__COUNT - 1));
	assert_null(strstr(text, "reason=\"none\""));

	/* Drills: a row per result; the time to blue only once a drill has run. */
	snprintf(s, sizeof(s), "shift_drills_total{%s,result=\"restored\"}", svc);
	assert_value(text, s, "3");
	snprintf(s, sizeof(s), "shift_drills_total{%s,result=\"refused\"}", svc);
	assert_value(text, s, "1");
	assert_value(text, "shift_drills_total{service=\"api\",result=\"aborted\"}", "0");
	assert_int_equal(count_lines_starting(text, "shift_drills_total{"), 2 * (DRILL__COUNT - 1));
	snprintf(s, sizeof(s), "shift_drill_time_to_blue_seconds{%s}", svc);
	assert_value(text, s, "0.00000425");
	assert_int_equal(count_lines_starting(text, "shift_drill_time_to_blue_seconds{"), 1);
	assert_value(text, "shift_drill_active{service=\"api\"}", "1");
	snprintf(s, sizeof(s), "shift_drill_active{%s}", svc);
	assert_value(text, s, "0");

	snprintf(s, sizeof(s),
		 "shift_backend_connections_total{%s,color=\"green\",backend=\"10.1.0.21:8081\"}",
		 svc);
	assert_value(text, s, "0");
	snprintf(s, sizeof(s), "shift_backend_up{%s,color=\"green\",backend=\"10.1.0.21:8081\"}",
		 svc);
	assert_value(text, s, "0");
	assert_value(text,
		     "shift_backend_up{service=\"api\",color=\"blue\",backend=\"10.2.0.11:80\"}",
		     "1");
	assert_int_equal(count_lines_starting(text, "shift_backend_connections_total{"), 4);
	assert_int_equal(count_lines_starting(text, "shift_backend_packets_total{"), 8);
	assert_int_equal(count_lines_starting(text, "shift_backend_errors_total{"),
			 4 * (SHIFT_ERR_MAX - 1));
	assert_int_equal(count_lines_starting(text, "shift_backend_responses_total{"), 4 * 5);
	snprintf(s, sizeof(s),
		 "shift_backend_responses_total{%s,color=\"blue\",backend=\"10.1.0.11:8080\","
		 "class=\"5xx\"}",
		 svc);
	assert_value(text, s, "0");
	/* 27 finite buckets + +Inf, per kind, per backend. */
	assert_int_equal(count_lines_starting(text, "shift_backend_latency_seconds_bucket{"),
			 4 * 2 * SHIFT_LAT_BUCKETS);
	assert_value(text,
		     "shift_backend_latency_seconds_bucket{service=\"api\",color=\"blue\","
		     "backend=\"10.2.0.11:80\",kind=\"connect\",le=\"0.000001\"}",
		     "0");
	assert_value(text,
		     "shift_backend_latency_seconds_bucket{service=\"api\",color=\"blue\","
		     "backend=\"10.2.0.11:80\",kind=\"response\",le=\"67.108864\"}",
		     "0");

	/* Reaction: 8 ns folded into the first bucket, cumulative, +Inf == _count. */
	assert_value(text, "shift_rollback_reaction_seconds_bucket{le=\"0.000001024\"}", "1");
	assert_value(text, "shift_rollback_reaction_seconds_bucket{le=\"0.000004096\"}", "1");
	assert_value(text, "shift_rollback_reaction_seconds_bucket{le=\"0.000008192\"}", "3");
	assert_value(text, "shift_rollback_reaction_seconds_bucket{le=\"2.147483648\"}", "3");
	assert_value(text, "shift_rollback_reaction_seconds_bucket{le=\"+Inf\"}", "4");
	assert_value(text, "shift_rollback_reaction_seconds_count", "4");
	assert_value(text, "shift_rollback_reaction_seconds_sum", "3.000010008");
	free(text);
}

static char *slurp(const char *path)
{
	struct stat st;
	char *buf;
	FILE *fp = fopen(path, "r");

	if (!fp)
		return NULL;
	if (fstat(fileno(fp), &st) || !(buf = calloc(1, (size_t)st.st_size + 1))) {
		fclose(fp);
		return NULL;
	}
	if (fread(buf, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

static bool exists(const char *dir, const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void test_write_file(void **state)
{
	struct fixture *f = *state;
	char path[128], err[512], missing[128];
	struct rlimit old, small;
	struct stat st;
	char *got;
	int rc;

	snprintf(path, sizeof(path), "%s/" METRICS_FILE, f->dir);
	assert_int_equal(metrics_write(f->a, err, sizeof(err)), 0);
	got = slurp(path);
	assert_non_null(got);
	assert_non_null(strstr(got, "# TYPE shift_backend_up gauge"));
	free(got);
	/* Readable by the node exporter's user whatever the umask. */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_false(exists(f->dir, METRICS_TMP_FILE));

	/* A write that fails half way (file size limit: EFBIG, like a full disk):
	 * the previous file stays whole and no temp file is left. */
	assert_int_equal(metrics_write_file(f->dir, "old\n", 4, err, sizeof(err)), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old; /* the soft limit only: lowering the hard one is for good */
	small.rlim_cur = 64;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	rc = metrics_write(f->a, err, sizeof(err));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, -EFBIG);
	assert_non_null(strstr(err, METRICS_TMP_FILE));
	assert_false(exists(f->dir, METRICS_TMP_FILE));
	got = slurp(path);
	assert_string_equal(got, "old\n");
	free(got);

	/* A hard link planted at the temp name (by whoever else writes the directory)
	 * to a file of shiftd's user: the file keeps its bytes and its mode. */
	{
		char victim[160], tmp[160];
		FILE *fp;

		snprintf(victim, sizeof(victim), "%s/victim", f->dir);
		snprintf(tmp, sizeof(tmp), "%s/" METRICS_TMP_FILE, f->dir);
		fp = fopen(victim, "w");
		assert_non_null(fp);
		fputs("secret\n", fp);
		fclose(fp);
		assert_int_equal(chmod(victim, 0600), 0);
		assert_int_equal(link(victim, tmp), 0);
		assert_int_equal(metrics_write_file(f->dir, "new\n", 4, err, sizeof(err)), 0);
		got = slurp(victim);
		assert_string_equal(got, "secret\n");
		free(got);
		assert_int_equal(stat(victim, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(st.st_nlink, 1);
		got = slurp(path);
		assert_string_equal(got, "new\n");
		free(got);
		unlink(victim);
	}

	/* A missing directory: an error that names it, nothing created. */
	snprintf(missing, sizeof(missing), "%s/gone", f->dir);
	rc = metrics_write_file(missing, "x\n", 2, err, sizeof(err));
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(err, missing));
	assert_false(exists(f->dir, "gone"));
}

static void test_writer_thread(void **state)
{
	struct fixture *f = *state;
	char path[128];
	struct metrics *m = calloc(1, sizeof(*m));
	struct stat st;
	int i;

	assert_non_null(m);
	snprintf(path, sizeof(path), "%s/" METRICS_FILE, f->dir);
	unlink(path);
	assert_int_equal(metrics_start(m), 0);
	metrics_tick(m, f->a);
	for (i = 0; i < 200 && stat(path, &st); i++)
		usleep(10000);
	assert_int_equal(stat(path, &st), 0);
	/* Not due again until metrics_interval has passed. */
	assert_true(m->next_ns > now_mono_ns());
	metrics_tick(m, f->a);
	metrics_stop(m);
	assert_false(m->started);
	assert_false(exists(f->dir, METRICS_TMP_FILE));
	free(m);
}

static void test_sdnotify(void **state)
{
	struct fixture *f = *state;
	struct sdnotify n;
	char msg[256], pid[32], buf[SDNOTIFY_STATUS_LEN];
	struct conf_service *names;
	struct agent *big;
	int i;

	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(sdnotify_init(&n), 0);
	/* No watchdog: only the STATUS line, once until it changes. */
	assert_true(sdnotify_tick(&n, f->a, 1 * SEC, msg, sizeof(msg)) > 0);
	assert_string_equal(msg, "STATUS=2 services, 1 rolled back (api [drill])");
	assert_int_equal(sdnotify_tick(&n, f->a, 2 * SEC, msg, sizeof(msg)), 0);
	f->a->svc[0]->latched = true;
	assert_true(sdnotify_tick(&n, f->a, 3 * SEC, msg, sizeof(msg)) > 0);
	assert_string_equal(msg, "STATUS=2 services, 2 rolled back (we\"b\\x?, api [drill])");
	f->a->svc[0]->latched = false;

	setenv("WATCHDOG_USEC", "2000000", 1);
	assert_int_equal(sdnotify_init(&n), SEC);
	assert_true(sdnotify_tick(&n, f->a, 10 * SEC, msg, sizeof(msg)) > 0);
	assert_string_equal(msg, "WATCHDOG=1\nSTATUS=2 services, 1 rolled back (api [drill])");
	assert_int_equal(sdnotify_tick(&n, f->a, 10 * SEC + SEC / 2, msg, sizeof(msg)), 0);
	assert_true(sdnotify_tick(&n, f->a, 11 * SEC, msg, sizeof(msg)) > 0);
	assert_string_equal(msg, "WATCHDOG=1");
	/* Another process's watchdog, or garbage: off. */
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(sdnotify_init(&n), 0);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(sdnotify_init(&n), SEC);
	setenv("WATCHDOG_USEC", "12x", 1);
	assert_int_equal(sdnotify_init(&n), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");

	/* Many long names: the line stays in bounds and says it was cut. */
	big = calloc(1, sizeof(*big));
	names = calloc(20, sizeof(*names));
	assert_non_null(big);
	assert_non_null(names);
	for (i = 0; i < 20; i++) {
		big->svc[i] = calloc(1, sizeof(*big->svc[i]));
		assert_non_null(big->svc[i]);
		snprintf(names[i].name, sizeof(names[i].name), "service-with-a-long-name-%02d", i);
		big->svc[i]->conf = &names[i];
		big->svc[i]->latched = true;
	}
	sdnotify_summary(big, buf, sizeof(buf));
	assert_true(strlen(buf) < sizeof(buf));
	assert_non_null(strstr(buf, "20 services, 20 rolled back (service-with-a-long-name-00"));
	assert_string_equal(buf + strlen(buf) - 6, ", ...)");
	for (i = 0; i < 20; i++)
		free(big->svc[i]);
	free(big);
	free(names);
}

/*
 * The installed example is conf_example() itself, so it parses and matches the
 * docs, plus whole-line comments: optional keys shown commented out (the HTTP
 * API's), which the SPEC's example does not carry.
 */
static void test_example_file(void **state)
{
	char *got = slurp("deploy/shiftd.conf.example"), *src, *dst;

	(void)state;
	if (!got)
		fail_msg("deploy/shiftd.conf.example: %s (run from the top of the tree)",
			 strerror(errno));
	for (src = dst = got; *src;) {
		size_t n = strcspn(src, "\n") + (src[strcspn(src, "\n")] ? 1 : 0);

		if (*src != ';') {
			memmove(dst, src, n);
			dst += n;
		}
		src += n;
	}
	*dst = '\0';
	assert_string_equal(got, conf_example());
	free(got);
}

/* metrics_interval reaches down to one tick (100 ms), not below. */
static void test_interval_range(void **state)
{
	static const char base[] = "[global]\ninterface = eth0\nmetrics_interval = %s\n"
				   "[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n";
	struct shift_conf *c;
	char text[256], err[256];

	(void)state;
	snprintf(text, sizeof(text), base, "100ms");
	assert_int_equal(conf_parse(text, strlen(text), "t", &c, err, sizeof(err)), 0);
	assert_int_equal(c->metrics_interval_ns, SEC / 10);
	conf_free(c);
	snprintf(text, sizeof(text), base, "99ms");
	assert_int_not_equal(conf_parse(text, strlen(text), "t", &c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "t:3: metrics_interval"));
	snprintf(text, sizeof(text), base, "2h");
	assert_int_not_equal(conf_parse(text, strlen(text), "t", &c, err, sizeof(err)), 0);
}

/*
 * GET /metrics' render in two halves (snapshot on the loop, the rest on a
 * thread) gives the textfile's text byte for byte; a set cancel flag ends it
 * early with nothing left behind.
 */
static void test_snap_render(void **state)
{
	struct fixture *f = *state;
	char *text = render(f->a), *buf;
	atomic_bool cancel;
	struct snap *sn;
	size_t len;

	atomic_init(&cancel, false);
	sn = metrics_snap_take(f->a);
	assert_non_null(sn);
	/* The agent changes after the snapshot: the render shows the snapshot's state. */
	f->a->svc[0]->rollbacks[TRIGGER_MANUAL]++;
	assert_int_equal(metrics_snap_render(sn, &cancel, &buf, &len), 0);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(buf, text, len);
	free(buf);
	metrics_snap_free(sn);

	sn = metrics_snap_take(f->a);
	assert_non_null(sn);
	atomic_store(&cancel, true);
	assert_int_equal(metrics_snap_render(sn, &cancel, &buf, &len), -ECANCELED);
	assert_null(buf);
	assert_int_equal(len, 0);
	metrics_snap_free(sn);
	free(text);
}

/* The lost samples from a real shift_lost map, under each service's own id. */
static void test_lost(void **state)
{
	struct fixture *f = *state;
	const char *api = "service=\"api\"";
	struct shift_lost *lost = calloc(1, sizeof(*lost));
	__u32 zero = 0;
	char s[256], *text;
	int fd;

	assert_non_null(lost);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_lost", sizeof(__u32), sizeof(*lost), 1, NULL);
	if (fd < 0) {
		print_message("BPF array: %s: skipping\n", strerror(-fd));
		free(lost);
		skip();
	}
	/* api is service id 7; id 3 is no service's and must not show. */
	lost->n[7][SHIFT_GREEN][SHIFT_SAMPLE_ERROR & 3] = 5;
	lost->n[7][SHIFT_BLUE][SHIFT_SAMPLE_RESPONSE & 3] = 300;
	lost->n[7][SHIFT_BLUE][SHIFT_SAMPLE_TCP & 3] = 2;
	lost->n[3][SHIFT_BLUE][SHIFT_SAMPLE_CONNECT & 3] = 1000;
	lost->total = 1307;
	assert_int_equal(bpf_map_update_elem(fd, &zero, lost, BPF_ANY), 0);
	f->a->maps.fd[SHIFT_MAP_LOST] = fd;
	text = render(f->a);
	snprintf(s, sizeof(s), "shift_samples_lost_total{%s,color=\"green\",kind=\"error\"}", api);
	assert_value(text, s, "5");
	snprintf(s, sizeof(s), "shift_samples_lost_total{%s,color=\"blue\",kind=\"response\"}",
		 api);
	assert_value(text, s, "300");
	snprintf(s, sizeof(s), "shift_samples_lost_total{%s,color=\"blue\",kind=\"tcp\"}", api);
	assert_value(text, s, "2");
	snprintf(s, sizeof(s), "shift_samples_lost_total{%s,color=\"blue\",kind=\"connect\"}", api);
	assert_value(text, s, "0");
	/* Two services, two colors, four kinds. */
	assert_int_equal(count_lines_starting(text, "shift_samples_lost_total{"), 16);
	assert_null(strstr(text, " 1000\n"));
	free(text);
	f->a->maps.fd[SHIFT_MAP_LOST] = -1;
	close(fd);
	free(lost);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snap_render, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sdnotify, setup, teardown),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_interval_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
