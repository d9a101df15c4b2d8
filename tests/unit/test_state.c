// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The state file: it round-trips, every damaged form (truncated, garbage, bad
 * checksum, unknown version) is refused without a crash, and a failed save
 * leaves the previous file exactly as it was with no temp file behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "ops/state.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/shift-test-state-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/state", f->dir);
	*state = f;
	return 0;
}

/* The directory holds only what a test made; remove it all, one level deep. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[512];
	struct dirent *de;
	DIR *d = opendir(f->dir);

	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
		if (unlink(p) && errno == EISDIR) {
			char q[600];

			snprintf(q, sizeof(q), "%s/keep", p);
			unlink(q);
			rmdir(p);
		}
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Names in the fixture dir that look like our temp files. */
static int count_temps(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += strstr(de->d_name, ".tmp.") != NULL;
	closedir(d);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = malloc(1 << 20);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void spit(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* A state with every field set and a reason made of awkward bytes. */
static void fill(struct shift_state *st)
{
	struct state_service *s;
	int i;

	memset(st, 0, sizeof(*st));
	s = state_get_or_add(st, "web");
	assert_non_null(s);
	s->weight = 2500;
	s->latched = true;
	s->fleet_publish = true;
	/* 127 bytes: space, '%', '=', newline, tab, high bytes, all of 1..127. */
	for (i = 0; i < STATE_REASON_LEN - 1; i++)
		s->reason[i] = (char)(i % 2 ? 128 + i : i + 1);
	memcpy(s->reason, "x y%z=\n", 7);
	s->rollback_unix_ns = 1763700000123456789ull;
	/* an origin from etcd is any text: a space, '=', a high byte */
	for (i = 0; i < STATE_NAME_LEN - 1; i++)
		s->rollback_origin[i] = (char)(i % 2 ? 200 : 'a' + i % 26);
	memcpy(s->rollback_origin, "edge 1=\t", 8);
	s->fleet_lag_us = -1234; /* the origin's clock ahead of ours */
	s->reaction_ns = 42000;
	s->ramp_active = true;
	s->ramp_n = STATE_MAX_RAMP_STEPS;
	for (i = 0; i < STATE_MAX_RAMP_STEPS; i++)
		s->ramp_steps[i] = (__u32)(i * 10000 / (STATE_MAX_RAMP_STEPS - 1));
	s->ramp_index = 31;
	s->ramp_hold_ns = UINT64_MAX;
	s->ramp_step_started_unix_ns = 1;

	s = state_get_or_add(st, "api.v2_x-y");
	assert_non_null(s);
	s->weight = 1;
	snprintf(s->rollback_origin, sizeof(s->rollback_origin), "operator");
	s->fleet_lag_us = 5157;
	snprintf(s->reason, sizeof(s->reason), "green error rate 7.5%% > 5%%");

	s = state_get_or_add(st, "idle");
	assert_non_null(s);
}

static void assert_same(const struct shift_state *a, const struct shift_state *b)
{
	__u32 i, j;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		const struct state_service *x = &a->svc[i], *y = &b->svc[i];

		assert_string_equal(x->name, y->name);
		assert_int_equal(x->weight, y->weight);
		assert_int_equal(x->latched, y->latched);
		assert_memory_equal(x->reason, y->reason, sizeof(x->reason));
		assert_true(x->rollback_unix_ns == y->rollback_unix_ns);
		assert_true(x->reaction_ns == y->reaction_ns);
		assert_int_equal(x->ramp_active, y->ramp_active);
		assert_int_equal(x->ramp_n, y->ramp_n);
		for (j = 0; j < x->ramp_n; j++)
			assert_int_equal(x->ramp_steps[j], y->ramp_steps[j]);
		assert_int_equal(x->ramp_index, y->ramp_index);
		assert_true(x->ramp_hold_ns == y->ramp_hold_ns);
		assert_true(x->ramp_step_started_unix_ns == y->ramp_step_started_unix_ns);
		assert_int_equal(x->fleet_publish, y->fleet_publish);
		assert_memory_equal(x->rollback_origin, y->rollback_origin,
				    sizeof(x->rollback_origin));
		assert_true(x->fleet_lag_us == y->fleet_lag_us);
	}
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct shift_state a, b = { 0 };
	char err[512], *text, *nl;
	size_t len;

	fill(&a);
	assert_int_equal(state_save(f->path, &a, err, sizeof(err)), 0);
	assert_int_equal(count_temps(f->dir), 0);
	assert_int_equal(state_load(f->path, &b, err, sizeof(err)), 0);
	assert_same(&a, &b);

	/* Text a person can read: header, one line per service, checksum. */
	text = slurp(f->path, &len);
	assert_int_equal(
		strncmp(text,
			"shift-state 1\nname=web weight=2500 latched=1 reason=x%20y%25z%3D%0A", 67),
		0);
	assert_non_null(strstr(text, "\nname=idle weight=0 latched=0 reason= "));
	nl = strrchr(text, '\n');
	*nl = '\0';
	nl = strrchr(text, '\n');
	assert_int_equal(strncmp(nl + 1, "crc32 ", 6), 0);
	assert_int_equal(strlen(nl + 1), 14);
	assert_null(memchr(text, '\0', len - 1));
	free(text);

	/* Saving over an existing file replaces it. */
	a.svc[1].weight = 10000;
	assert_int_equal(state_save(f->path, &a, err, sizeof(err)), 0);
	state_free(&b);
	assert_int_equal(state_load(f->path, &b, err, sizeof(err)), 0);
	assert_int_equal(b.svc[1].weight, 10000);
	state_free(&a);
	state_free(&b);

	/* An empty state is a valid file too. */
	assert_int_equal(state_save(f->path, &a, err, sizeof(err)), 0);
	assert_int_equal(state_load(f->path, &b, err, sizeof(err)), 0);
	assert_int_equal(b.n, 0);
	assert_null(b.svc);
}

static void test_absent(void **state)
{
	struct fixture *f = *state;
	struct shift_state st = { 0 };
	char err[512];

	assert_int_equal(state_load(f->path, &st, err, sizeof(err)), -ENOENT);
	assert_int_equal(st.n, 0);
	assert_non_null(strstr(err, f->path));
}

/* Every proper prefix of a valid file is refused, read from an exact-size
 * buffer so ASan catches a read past the end. */
static void test_every_prefix(void **state)
{
	struct shift_state a, b;
	char err[512], *text;
	size_t len, n;

	(void)state;
	fill(&a);
	assert_int_equal(state_format(&a, &text, &len, err, sizeof(err)), 0);
	for (n = 0; n <= len; n++) {
		char *t = malloc(n ? n : 1);
		int ret;

		assert_non_null(t);
		memcpy(t, text, n);
		err[0] = '\0';
		ret = state_parse(t, n, &b, err, sizeof(err));
		if (n < len && (ret != -EBADMSG || b.n || b.svc || !err[0]))
			fail_msg("prefix of %zu/%zu bytes: %d '%s'", n, len, ret, err);
		if (n == len) {
			assert_int_equal(ret, 0);
			assert_same(&a, &b);
		}
		state_free(&b);
		free(t);
	}
	free(text);
	state_free(&a);
}

static void test_garbage(void **state)
{
	struct shift_state a, b;
	char err[512], *text, buf[600];
	__u64 x = 0x5eedull;
	size_t len, i, j;
	int iter;

	(void)state;
	/* Random bytes of random lengths. */
	for (iter = 0; iter < 2000; iter++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		len = x % sizeof(buf);
		for (i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = (char)x;
		}
		if (len > 14 && iter % 2)
			memcpy(buf, "shift-state 1\n", 14);
		assert_int_equal(state_parse(buf, len, &b, err, sizeof(err)), -EBADMSG);
		assert_null(b.svc);
	}
	/* Any one-byte change of a valid file is caught. */
	fill(&a);
	assert_int_equal(state_format(&a, &text, &len, err, sizeof(err)), 0);
	for (i = 0; i < len; i++) {
		for (j = 1; j < 256; j *= 3) {
			char saved = text[i];

			text[i] = (char)(saved ^ (char)j);
			if (state_parse(text, len, &b, err, sizeof(err)) != -EBADMSG)
				fail_msg("byte %zu ^ %zu accepted", i, j);
			text[i] = saved;
		}
	}
	free(text);
	state_free(&a);
	assert_int_equal(state_parse(NULL, 0, &b, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "empty file");
}

static void test_bad_checksum(void **state)
{
	struct fixture *f = *state;
	struct shift_state a, b;
	char err[512], *text, *w;
	size_t len;

	fill(&a);
	assert_int_equal(state_format(&a, &text, &len, err, sizeof(err)), 0);
	/* Hand-edited weight: 2500 -> 9500. */
	w = strstr(text, "weight=2500");
	assert_non_null(w);
	w[7] = '9';
	spit(f->path, text, len);
	assert_int_equal(state_load(f->path, &b, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "checksum mismatch (truncated or edited)"));
	assert_int_equal(strncmp(err, "state file ", 11), 0);
	/* A checksum line that is not hex. */
	w[7] = '2';
	text[len - 2] = 'g';
	assert_int_equal(state_parse(text, len, &b, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "bad checksum line");
	/* No final newline: a torn write. */
	assert_int_equal(state_parse(text, len - 1, &b, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "checksum line missing (truncated)");
	free(text);
	state_free(&a);
}

/* body + a correct checksum line, as if a (possibly newer) shiftd wrote it. */
static char *with_crc(const char *body, size_t *len)
{
	size_t n = strlen(body);
	char *t = malloc(n + 16);

	assert_non_null(t);
	memcpy(t, body, n);
	snprintf(t + n, 16, "crc32 %08lx\n", crc32(0L, (const Bytef *)body, (uInt)n));
	*len = n + 15;
	return t;
}

static void test_versions_and_fields(void **state)
{
	static const struct {
		const char *body;
		const char *why;
	} bad[] = {
		{ "shift-state 2\nname=web weight=1\n",
		  "unknown version 2 (this shiftd reads version 1)" },
		{ "shift-state 10\n", "unknown version 10" },
		{ "shift-state\n", "not a shift state file" },
		{ "shift-state x\n", "line 1: bad version" },
		{ "shiftstate 1\n", "not a shift state file" },
		{ "shift-state 1\nname=web weight=20000\n", "line 2: bad weight '20000'" },
		{ "shift-state 1\nname=web weight=-1\n", "line 2: bad weight '-1'" },
		{ "shift-state 1\nname=web weight=1\nname=db weight=x\n",
		  "line 3: bad weight 'x'" },
		{ "shift-state 1\nweight=1\n", "line 2: missing name" },
		{ "shift-state 1\nname=web\n", "line 2: missing weight" },
		{ "shift-state 1\nname=we/b weight=1\n", "line 2: bad name 'we/b'" },
		{ "shift-state 1\nname=web weight=1 weight=2\n", "line 2: weight given twice" },
		{ "shift-state 1\nname=web weight=1\nname=web weight=2\n",
		  "line 3: service web listed twice" },
		{ "shift-state 1\nname=web weight=1 latched=2\n", "line 2: bad latched '2'" },
		{ "shift-state 1\nname=web weight=1 reason=a%zz\n", "line 2: bad reason 'a%zz'" },
		{ "shift-state 1\nname=web weight=1 reason=a%00b\n", "line 2: bad reason" },
		{ "shift-state 1\nname=web weight=1 reason=a%4\n", "line 2: bad reason" },
		{ "shift-state 1\nname=web weight=1 ramp_steps=1,,2\n", "line 2: bad ramp_steps" },
		{ "shift-state 1\nname=web weight=1 ramp_steps=10001\n", "line 2: bad ramp_steps" },
		{ "shift-state 1\nname=web weight=1 ramp_steps=1,2 ramp_index=2\n",
		  "line 2: bad ramp" },
		{ "shift-state 1\nname=web weight=1 ramp_active=1\n", "line 2: bad ramp" },
		{ "shift-state 1\nname=web weight=1 rollback_unix_ns=18446744073709551616\n",
		  "line 2: bad rollback_unix_ns" },
		{ "shift-state 1\nname=web weight=1 junk\n", "line 2: bad field 'junk'" },
		{ "shift-state 1\nname=web weight=1 =3\n", "line 2: bad field" },
		{ "shift-state 1\n\n", "line 2: missing name" },
	};
	struct shift_state b;
	char err[512], *t;
	size_t i, len;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		t = with_crc(bad[i].body, &len);
		err[0] = '\0';
		if (state_parse(t, len, &b, err, sizeof(err)) != -EBADMSG ||
		    !strstr(err, bad[i].why) || b.svc)
			fail_msg("'%s': err '%s', want '%s'", bad[i].body, err, bad[i].why);
		free(t);
	}

	/* Keys this version does not know are skipped: a newer shiftd wrote them. */
	t = with_crc("shift-state 1\nname=web weight=50 future_key=whatever x.y=1 latched=1\n"
		     "name=db weight=0 ramp_steps=100,500 ramp_index=1 ramp_active=1\n",
		     &len);
	assert_int_equal(state_parse(t, len, &b, err, sizeof(err)), 0);
	assert_int_equal(b.n, 2);
	assert_int_equal(b.svc[0].weight, 50);
	assert_true(b.svc[0].latched);
	assert_int_equal(b.svc[1].ramp_n, 2);
	assert_int_equal(b.svc[1].ramp_steps[1], 500);
	assert_true(b.svc[1].ramp_active);
	state_free(&b);
	free(t);
}

static void test_save_refuses_bad_state(void **state)
{
	struct fixture *f = *state;
	struct shift_state a = { 0 };
	struct state_service *s;
	char err[512];

	s = state_get_or_add(&a, "web");
	assert_non_null(s);
	s->weight = 10001;
	assert_int_equal(state_save(f->path, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "weight 10001 above 10000"));
	s->weight = 0;
	s->ramp_n = 2;
	s->ramp_index = 2;
	assert_int_equal(state_save(f->path, &a, err, sizeof(err)), -EINVAL);
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(count_temps(f->dir), 0);
	state_free(&a);
}

/* The failures that matter: each leaves the old file byte for byte. */
static void test_save_failures(void **state)
{
	struct fixture *f = *state;
	struct shift_state a, big = { 0 };
	char err[512], path[256], *before, *after;
	size_t blen, alen;
	struct rlimit old, low;
	int i, ret;

	fill(&a);
	assert_int_equal(state_save(f->path, &a, err, sizeof(err)), 0);
	before = slurp(f->path, &blen);

	/* 1. The directory does not exist. */
	snprintf(path, sizeof(path), "%s/no/such/dir/state", f->dir);
	assert_int_equal(state_save(path, &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot create"));
	assert_non_null(strstr(err, strerror(ENOENT)));

	/* 2. A path nobody may create files in, even root. */
	assert_true(state_save("/proc/shift-test-state", &a, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot create /proc/shift-test-state.tmp."));

	/* 3. The write itself fails part-way (as on a full disk): a file size
	 * limit turns the write into EFBIG after a few bytes. */
	for (i = 0; i < 200; i++) {
		char name[16];
		struct state_service *s;

		snprintf(name, sizeof(name), "svc%d", i);
		s = state_get_or_add(&big, name);
		assert_non_null(s);
		s->weight = (__u32)i;
	}
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	low = old;
	low.rlim_cur = 100;
	signal(SIGXFSZ, SIG_IGN);
	/* Nothing may print between these two calls: stdout may be a file. */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
	ret = state_save(f->path, &big, err, sizeof(err));
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(ret, -EFBIG);
	assert_non_null(strstr(err, "write"));
	assert_int_equal(count_temps(f->dir), 0);
	after = slurp(f->path, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(after);

	/* 4. The rename fails: PATH is a non-empty directory. The temp file goes. */
	snprintf(path, sizeof(path), "%s/busy", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	{
		char keep[300];

		snprintf(keep, sizeof(keep), "%s/keep", path);
		spit(keep, "x", 1);
	}
	ret = state_save(path, &a, err, sizeof(err));
	assert_true(ret == -EISDIR || ret == -ENOTEMPTY || ret == -EEXIST);
	assert_non_null(strstr(err, "rename"));
	assert_int_equal(count_temps(f->dir), 0);

	/* After all that, the old file still loads. */
	state_free(&big);
	assert_int_equal(state_load(f->path, &big, err, sizeof(err)), 0);
	assert_same(&a, &big);
	state_free(&big);
	state_free(&a);
	free(before);
}

static void test_lock(void **state)
{
	struct fixture *f = *state;
	char err[512], lock[160];
	int fd, other;

	assert_int_equal(state_lock(f->path, &fd, err, sizeof(err)), 0);
	assert_true(fd >= 0);
	/* Another open file description (another process, in real life) waits. */
	snprintf(lock, sizeof(lock), "%s.lock", f->path);
	other = open(lock, O_RDWR | O_CLOEXEC);
	assert_true(other >= 0);
	assert_int_equal(flock(other, LOCK_EX | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	state_unlock(fd);
	assert_int_equal(flock(other, LOCK_EX | LOCK_NB), 0);
	close(other);
	state_unlock(-1);

	snprintf(lock, sizeof(lock), "%s/missing/state", f->dir);
	assert_int_equal(state_lock(lock, &fd, err, sizeof(err)), -ENOENT);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(err, "cannot open lock file"));
}

static void test_table(void **state)
{
	struct shift_state st = { 0 };
	struct state_service *s;
	char longname[80];

	(void)state;
	assert_null(state_find(&st, "web"));
	s = state_get_or_add(&st, "web");
	assert_non_null(s);
	assert_string_equal(s->name, "web");
	assert_int_equal(s->weight, 0);
	s->weight = 7;
	assert_ptr_equal(state_get_or_add(&st, "web"), s);
	assert_non_null(state_get_or_add(&st, "db"));
	assert_int_equal(st.n, 2);
	assert_int_equal(state_find(&st, "web")->weight, 7);

	errno = 0;
	assert_null(state_get_or_add(&st, "bad name"));
	assert_int_equal(errno, EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_null(state_get_or_add(&st, longname));
	assert_null(state_get_or_add(&st, ""));
	assert_null(state_get_or_add(&st, NULL));

	assert_int_equal(state_remove(&st, "web"), 0);
	assert_int_equal(state_remove(&st, "web"), -ENOENT);
	assert_int_equal(st.n, 1);
	assert_string_equal(st.svc[0].name, "db");
	state_free(&st);
	assert_int_equal(st.n, 0);
	state_free(&st);
	state_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent, setup, teardown),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test_setup_teardown(test_bad_checksum, setup, teardown),
		cmocka_unit_test(test_versions_and_fields),
		cmocka_unit_test_setup_teardown(test_save_refuses_bad_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
