// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HTTP API: the bearer token (file modes, parsing, the check), the
 * Alertmanager payload parser and its answer, the config keys, what the agent
 * does with each alert (unknown, resolved, latched, a failed map write), and
 * the server itself — real libmicrohttpd on a socketpair, driven the way
 * shiftd's loop drives it — for every status it answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "agent.h"
#include "http/http.h"
#include "http/server.h"
#include "http/token.h"
#include "http/webhook.h"

#define TOKEN "0123456789abcdef-token"

/* --- token ----------------------------------------------------------------------------- */

static void test_token_check(void **state)
{
	struct http_token t;
	char err[256];

	(void)state;
	assert_int_equal(http_token_parse("  " TOKEN "\n", strlen(TOKEN) + 3, &t, err, sizeof(err)),
			 0);
	assert_int_equal(t.len, strlen(TOKEN));
	assert_true(http_token_check(&t, "Bearer " TOKEN));
	assert_true(http_token_check(&t, "bearer   " TOKEN " "));
	assert_true(http_token_check(&t, "BEARER\t" TOKEN));
	assert_false(http_token_check(&t, NULL));
	assert_false(http_token_check(&t, ""));
	assert_false(http_token_check(&t, TOKEN));
	assert_false(http_token_check(&t, "Bearer"));
	assert_false(http_token_check(&t, "Bearer "));
	assert_false(http_token_check(&t, "Bearer " TOKEN "x"));
	assert_false(http_token_check(&t, "Bearer 0123456789abcdef"));
	assert_false(http_token_check(&t, "Bearer 0123456789abcdef-tokeN"));
	assert_false(http_token_check(&t, "Basic " TOKEN));
	assert_false(http_token_check(&t, "Bearer" TOKEN));
	/* An unloaded token matches nothing, not even an empty guess. */
	memset(&t, 0, sizeof(t));
	assert_false(http_token_check(&t, "Bearer "));
}

static void test_token_parse_refuses(void **state)
{
	struct http_token t;
	char err[256];

	(void)state;
	assert_int_equal(http_token_parse(" \n\t", 3, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(http_token_parse("two words", 9, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "byte 4"));
	assert_int_equal(http_token_parse("a\nb", 3, &t, err, sizeof(err)), -EINVAL);
	assert_int_equal(http_token_parse("t\xc3\xa9", 3, &t, err, sizeof(err)), -EINVAL);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_token_file_modes(void **state)
{
	char dir[] = "/tmp/shift-token.XXXXXX", path[64], link[64], err[512];
	struct http_token t;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);
	snprintf(link, sizeof(link), "%s/link", dir);

	write_file(path, TOKEN "\n", 0600);
	assert_int_equal(http_token_load(path, &t, err, sizeof(err)), 0);
	assert_string_equal(t.v, TOKEN);
	write_file(path, TOKEN "\n", 0400);
	assert_int_equal(http_token_load(path, &t, err, sizeof(err)), 0);

	/* Any bit for group or others: refused, naming the mode. */
	write_file(path, TOKEN "\n", 0644);
	assert_int_equal(http_token_load(path, &t, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "0644"));
	assert_non_null(strstr(err, path));
	write_file(path, TOKEN "\n", 0640);
	assert_int_equal(http_token_load(path, &t, err, sizeof(err)), -EPERM);
	write_file(path, TOKEN "\n", 0602);
	assert_int_equal(http_token_load(path, &t, err, sizeof(err)), -EPERM);

	write_file(path, "\n", 0600);
	assert_int_equal(http_token_load(path, &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty"));

	/* A symlink is not followed (whoever owns the link's target decides). */
	write_file(path, TOKEN, 0600);
	assert_int_equal(symlink(path, link), 0);
	assert_true(http_token_load(link, &t, err, sizeof(err)) < 0);
	unlink(link);
	assert_true(http_token_load(dir, &t, err, sizeof(err)) < 0);
	unlink(path);
	assert_int_equal(http_token_load(path, &t, err, sizeof(err)), -ENOENT);
	rmdir(dir);
}

/* --- the webhook payload ----------------------------------------------------------------- */

static const char payload_ok[] =
	"{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"shift\",\"alerts\":["
	"{\"status\":\"firing\",\"labels\":{\"alertname\":\"HighErr\",\"shift_service\":\"web\"},"
	"\"annotations\":{\"summary\":\"job failures \\u0007high\"},"
	"\"startsAt\":\"2026-12-02T10:00:00.123Z\"},"
	"{\"status\":\"resolved\",\"labels\":{\"shift_service\":\"api\"}},"
	"{\"status\":\"firing\",\"labels\":{\"alertname\":\"Other\"},\"annotations\":null},"
	"{\"status\":\"firing\",\"labels\":{\"alertname\":\"Bad\",\"shift_service\":\"a b\"}}]}";

static void test_am_parse(void **state)
{
	struct am_alert *al;
	char err[256];
	size_t n;

	(void)state;
	assert_int_equal(am_parse(payload_ok, strlen(payload_ok), &al, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_true(al[0].firing);
	assert_true(al[0].has_service && al[0].service_ok);
	assert_string_equal(al[0].service, "web");
	assert_string_equal(al[0].alertname, "HighErr");
	/* Control characters never reach a log line. */
	assert_string_equal(al[0].summary, "job failures ?high");
	assert_string_equal(al[0].starts_at, "2026-12-02T10:00:00.123Z");
	assert_false(al[1].firing);
	assert_string_equal(al[1].alertname, "unnamed");
	assert_false(al[2].has_service);
	assert_true(al[3].has_service);
	assert_false(al[3].service_ok);
	free(al);

	assert_int_equal(
		am_parse("{\"version\":\"4\",\"alerts\":[]}", 27, &al, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	free(al);
}

static void refuses(const char *text, const char *why)
{
	struct am_alert *al = (void *)1;
	char err[256] = "";
	size_t n = 99;

	assert_int_equal(am_parse(text, strlen(text), &al, &n, err, sizeof(err)), -EINVAL);
	assert_null(al);
	assert_int_equal(n, 0);
	if (!strstr(err, why))
		fail_msg("'%s': reason '%s' lacks '%s'", text, err, why);
}

static void test_am_parse_refuses(void **state)
{
	(void)state;
	refuses("", "malformed JSON");
	refuses("{\"version\":\"4\",\"alerts\":[", "malformed JSON");
	refuses("[]", "not a JSON object");
	refuses("{\"alerts\":[]}", "version");
	refuses("{\"version\":4,\"alerts\":[]}", "version");
	refuses("{\"version\":\"3\",\"alerts\":[]}", "version");
	refuses("{\"version\":\"4\"}", "alerts: missing");
	refuses("{\"version\":\"4\",\"alerts\":{}}", "alerts: missing or not an array");
	refuses("{\"version\":\"4\",\"alerts\":[1]}", "alerts[0]: not an object");
	refuses("{\"version\":\"4\",\"alerts\":[{\"labels\":{}}]}", "alerts[0].status");
	refuses("{\"version\":\"4\",\"alerts\":[{\"status\":\"pending\",\"labels\":{}}]}",
		"'pending' is not firing or resolved");
	refuses("{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\"}]}", "alerts[0].labels");
	refuses("{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"a\":1}}]}",
		"alerts[0].labels.a: not a string");
	refuses("{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{},"
		"\"annotations\":[]}]}",
		"annotations");
	/* Two readers of a payload with a key twice could disagree: refused. */
	refuses("{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
		"{\"shift_service\":\"web\",\"shift_service\":\"api\"}}]}",
		"duplicate");
}

static void test_am_answer(void **state)
{
	struct am_alert al[3];
	unsigned int code = 0;
	char *s;

	(void)state;
	memset(al, 0, sizeof(al));
	snprintf(al[0].alertname, sizeof(al[0].alertname), "A");
	al[0].firing = al[0].has_service = true;
	snprintf(al[0].service, sizeof(al[0].service), "web");
	al[0].outcome = AM_ROLLED_BACK;
	snprintf(al[1].alertname, sizeof(al[1].alertname), "B");
	al[1].outcome = AM_NO_SERVICE;
	s = am_answer(al, 2, &code);
	assert_int_equal(code, 200);
	assert_string_equal(s, "{\"status\":200,\"alerts\":[{\"alertname\":\"A\",\"status\":"
			       "\"firing\",\"outcome\":\"rolled_back\",\"service\":\"web\"},"
			       "{\"alertname\":\"B\",\"status\":\"resolved\",\"outcome\":"
			       "\"no_shift_service\"}]}");
	free(s);
	al[1].outcome = AM_UNKNOWN_SERVICE;
	s = am_answer(al, 2, &code);
	assert_int_equal(code, 404);
	free(s);
	al[2] = al[0];
	al[2].outcome = AM_FAILED;
	s = am_answer(al, 3, &code);
	assert_int_equal(code, 500);
	free(s);
	s = am_answer(al, 0, &code);
	assert_int_equal(code, 200);
	assert_string_equal(s, "{\"status\":200,\"alerts\":[]}");
	free(s);
}

/* --- config keys ------------------------------------------------------------------------- */

static const char conf_head[] = "[global]\ninterface = eth0\n";
static const char conf_svc[] = "[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n";

static int parse(const char *global, struct shift_conf **c, char *err, size_t len)
{
	char text[1024];

	snprintf(text, sizeof(text), "%s%s%s", conf_head, global, conf_svc);
	return conf_parse(text, strlen(text), "t.conf", c, err, len);
}

static void test_config_keys(void **state)
{
	struct shift_conf *c;
	char err[512];

	(void)state;
	assert_int_equal(parse("", &c, err, sizeof(err)), 0);
	assert_false(c->http_enabled);
	conf_free(c);
	assert_int_equal(parse("http_listen = 127.0.0.1:9310\nhttp_token_file = /etc/shift/token\n",
			       &c, err, sizeof(err)),
			 0);
	assert_true(c->http_enabled);
	assert_int_equal(c->http_listen.family, SHIFT_AF_INET);
	assert_int_equal(c->http_listen.port, htons(9310));
	assert_string_equal(c->http_token_file, "/etc/shift/token");
	conf_free(c);
	assert_int_equal(
		parse("http_listen = [::1]:9310\nhttp_token_file = /t\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c->http_listen.family, SHIFT_AF_INET6);
	conf_free(c);

	/* SPEC's token file by default (the start checks it is there, not world-readable) */
	assert_int_equal(parse("http_listen = 127.0.0.1:9310\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c->http_token_file, "/etc/shift/token");
	conf_free(c);
	assert_int_equal(parse("http_token_file = /t\n", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "t.conf:3: http_token_file without http_listen"));
	assert_int_equal(parse("http_listen = 127.0.0.1\nhttp_token_file = /t\n", &c, err,
			       sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "t.conf:3: http_listen:"));
	assert_int_equal(parse("http_listen = 127.0.0.1:0\nhttp_token_file = /t\n", &c, err,
			       sizeof(err)),
			 -EINVAL);
	assert_int_equal(parse("http_listen = 239.1.1.1:9310\nhttp_token_file = /t\n", &c, err,
			       sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "multicast"));
	assert_int_equal(parse("http_listen = 127.0.0.1:9310\nhttp_token_file = token\n", &c, err,
			       sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "t.conf:4: http_token_file:"));
	assert_int_equal(parse("http_listen = 127.0.0.1:9310\nhttp_listen = 127.0.0.1:9311\n"
			       "http_token_file = /t\n",
			       &c, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "duplicate key 'http_listen'"));
}

/* --- the agent's side: what each alert does ------------------------------------------------ */

static void test_apply_alerts(void **state)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct conf_service cs[2];
	struct service_rt *s[2];
	struct am_alert al[6];
	int i;

	(void)state;
	assert_non_null(a);
	memset(cs, 0, sizeof(cs));
	snprintf(cs[0].name, sizeof(cs[0].name), "web");
	snprintf(cs[1].name, sizeof(cs[1].name), "api");
	for (i = 0; i < 2; i++) {
		s[i] = calloc(1, sizeof(*s[i]));
		assert_non_null(s[i]);
		s[i]->id = (__u32)i;
		s[i]->conf = &cs[i];
		a->svc[i] = s[i];
	}
	for (i = 0; i < SHIFT_MAP__COUNT; i++)
		a->maps.fd[i] = -1; /* no maps: every weight write fails */
	s[1]->latched = true;

	memset(al, 0, sizeof(al));
	for (i = 0; i < 6; i++) {
		snprintf(al[i].alertname, sizeof(al[i].alertname), "A%d", i);
		al[i].firing = al[i].has_service = al[i].service_ok = true;
	}
	snprintf(al[0].service, sizeof(al[0].service), "web"); /* the write fails: 500 */
	snprintf(al[1].service, sizeof(al[1].service), "api"); /* latched already */
	snprintf(al[2].service, sizeof(al[2].service), "nope");
	snprintf(al[3].service, sizeof(al[3].service), "api");
	al[3].firing = false; /* resolved */
	al[4].has_service = false;
	snprintf(al[5].service, sizeof(al[5].service), "web");
	al[5].service_ok = false; /* "a b": never looked up */
	http_apply_alerts(a, al, 6);
	assert_int_equal(al[0].outcome, AM_FAILED);
	assert_false(s[0]->latched);
	assert_int_equal(al[1].outcome, AM_ALREADY);
	assert_int_equal(al[2].outcome, AM_UNKNOWN_SERVICE);
	assert_int_equal(al[3].outcome, AM_RESOLVED);
	assert_true(s[1]->latched); /* a resolved alert never clears */
	assert_int_equal(al[4].outcome, AM_NO_SERVICE);
	assert_int_equal(al[5].outcome, AM_UNKNOWN_SERVICE);
	assert_string_equal(trigger_reason_name(TRIGGER_ALERTMANAGER), "alertmanager");

	/* A drill's latch is no rollback: the alert tries the real one (here
	 * the write fails, as every write does without maps). */
	s[1]->latch_drill = true;
	memset(al, 0, sizeof(al));
	snprintf(al[0].alertname, sizeof(al[0].alertname), "D");
	snprintf(al[0].service, sizeof(al[0].service), "api");
	al[0].firing = al[0].has_service = al[0].service_ok = true;
	http_apply_alerts(a, al, 1);
	assert_int_equal(al[0].outcome, AM_FAILED);
	for (i = 0; i < 2; i++)
		free(s[i]);
	free(a);
}

/* --- the server on a socketpair -------------------------------------------------------------- */

struct stub {
	int alerts_calls;
	size_t last_n;
	char last_service[CONF_NAME_LEN];
	bool later; /* GET /metrics waits for ticket 7 */
	int get_calls;
};

static void stub_alerts(void *ctx, struct am_alert *al, size_t n)
{
	struct stub *st = ctx;
	size_t i;

	st->alerts_calls++;
	st->last_n = n;
	for (i = 0; i < n; i++) {
		al[i].outcome = !al[i].has_service	      ? AM_NO_SERVICE :
				!strcmp(al[i].service, "web") ? AM_ROLLED_BACK :
								AM_UNKNOWN_SERVICE;
		if (al[i].has_service)
			snprintf(st->last_service, sizeof(st->last_service), "%s", al[i].service);
	}
}

static struct http_body *body_of(const char *text)
{
	char *buf = strdup(text);

	return buf ? http_body_new(buf, strlen(text)) : NULL;
}

static int stub_get(void *ctx, enum http_get what, struct http_body **body, __u64 *ticket)
{
	struct stub *st = ctx;

	st->get_calls++;
	if (what == HTTP_GET_METRICS && st->later) {
		*ticket = 7;
		return -EINPROGRESS;
	}
	*body = body_of(what == HTTP_GET_METRICS ? "# TYPE x gauge\nx 1\n" :
						   "{\"agent_running\":true}\n");
	return *body ? 0 : -ENOMEM;
}

struct srv {
	struct http_server *s;
	struct stub st;
};

static int srv_setup(void **state)
{
	struct srv *v = calloc(1, sizeof(*v));
	struct http_ops ops = { .alerts = stub_alerts, .get = stub_get };
	struct http_limits lim;
	struct http_token tok;
	char err[256];

	if (!v)
		return -1;
	ops.ctx = &v->st;
	http_limits_default(&lim);
	lim.bodies_max = 3 * HTTP_BODY_MAX / 2; /* two big bodies at once: the second is 503 */
	if (http_token_parse(TOKEN, strlen(TOKEN), &tok, err, sizeof(err)))
		return -1;
	v->s = http_server_start(NULL, &lim, &ops, &tok, err, sizeof(err));
	if (!v->s) {
		fprintf(stderr, "http_server_start: %s\n", err);
		return -1;
	}
	*state = v;
	return 0;
}

static int srv_teardown(void **state)
{
	struct srv *v = *state;

	http_server_stop(v->s);
	free(v);
	return 0;
}

/* A connection to the server: our end, non-blocking. */
static int srv_connect(struct srv *v)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(http_server_add_connection(v->s, sv[1]), 0);
	return sv[0];
}

/*
 * Write req (len bytes), then run the server until it closes our connection
 * or a bounded number of turns pass; returns the HTTP status of the answer
 * and copies its body into body (NUL-terminated).
 */
static int exchange(struct srv *v, int fd, const char *req, size_t len, char *body, size_t blen)
{
	static char resp[1 << 16];
	size_t off = 0, got = 0;
	int turns, code = -1;
	char *p;

	for (turns = 0; turns < 20000; turns++) {
		ssize_t n;

		if (off < len) {
			n = write(fd, req + off, len - off);
			if (n > 0)
				off += (size_t)n;
		}
		http_server_run(v->s);
		n = read(fd, resp + got, sizeof(resp) - 1 - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			break; /* closed by the server */
		if (got && off >= len && strstr(resp, "\r\n\r\n")) {
			/* Keep-alive: done once the announced body is in. */
			const char *cl = strcasestr(resp, "Content-Length:");
			char *hend = strstr(resp, "\r\n\r\n") + 4;

			resp[got] = '\0';
			if (cl && (size_t)(resp + got - hend) >= strtoul(cl + 15, NULL, 10))
				break;
		}
	}
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1)
		code = -1;
	p = strstr(resp, "\r\n\r\n");
	snprintf(body, blen, "%s", p ? p + 4 : "");
	return code;
}

static int request(struct srv *v, const char *head, const char *payload, char *body, size_t blen)
{
	char req[8192];
	int fd, code;

	snprintf(req, sizeof(req), "%s%s", head, payload ? payload : "");
	fd = srv_connect(v);
	code = exchange(v, fd, req, strlen(req), body, blen);
	close(fd);
	return code;
}

static void test_server_routes(void **state)
{
	struct srv *v = *state;
	char body[4096], head[512];
	const char *p = "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
			"{\"alertname\":\"X\",\"shift_service\":\"web\"}}]}";

	assert_int_equal(request(v, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
				 NULL, body, sizeof(body)),
			 200);
	assert_string_equal(body, "# TYPE x gauge\nx 1\n");
	assert_int_equal(request(v,
				 "GET /v1/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
				 NULL, body, sizeof(body)),
			 200);
	assert_string_equal(body, "{\"agent_running\":true}\n");
	assert_int_equal(request(v, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
				 NULL, body, sizeof(body)),
			 404);
	assert_int_equal(request(v,
				 "POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
				 "Content-Length: 0\r\n\r\n",
				 NULL, body, sizeof(body)),
			 405);
	assert_int_equal(
		request(v, "GET /v1/alertmanager HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
			NULL, body, sizeof(body)),
		405);

	/* No token, a wrong one: 401 and the handler never runs. */
	snprintf(head, sizeof(head),
		 "POST /v1/alertmanager HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		 "Content-Length: %zu\r\n\r\n",
		 strlen(p));
	assert_int_equal(request(v, head, p, body, sizeof(body)), 401);
	snprintf(head, sizeof(head),
		 "POST /v1/alertmanager HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		 "Authorization: Bearer %sx\r\nContent-Length: %zu\r\n\r\n",
		 TOKEN, strlen(p));
	assert_int_equal(request(v, head, p, body, sizeof(body)), 401);
	assert_int_equal(v->st.alerts_calls, 0);

	/* The right token: applied, answered with each alert's outcome. */
	snprintf(head, sizeof(head),
		 "POST /v1/alertmanager HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		 "Authorization: Bearer %s\r\nContent-Length: %zu\r\n\r\n",
		 TOKEN, strlen(p));
	assert_int_equal(request(v, head, p, body, sizeof(body)), 200);
	assert_int_equal(v->st.alerts_calls, 1);
	assert_string_equal(v->st.last_service, "web");
	assert_non_null(strstr(body, "\"outcome\":\"rolled_back\""));

	/* Malformed: 400 naming the problem, nothing applied. */
	snprintf(head, sizeof(head),
		 "POST /v1/alertmanager HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		 "Authorization: Bearer %s\r\nContent-Length: 5\r\n\r\n",
		 TOKEN);
	assert_int_equal(request(v, head, "{\"a\":", body, sizeof(body)), 400);
	assert_non_null(strstr(body, "malformed JSON"));
	assert_int_equal(v->st.alerts_calls, 1);

	/* An announced body over 1 MiB: 413 at once, before a byte of it. */
	snprintf(head, sizeof(head),
		 "POST /v1/alertmanager HTTP/1.1\r\nHost: t\r\n"
		 "Authorization: Bearer %s\r\nContent-Length: %u\r\n\r\n",
		 TOKEN, HTTP_BODY_MAX + 1);
	assert_int_equal(request(v, head, NULL, body, sizeof(body)), 413);
	assert_int_equal(request(v,
				 "POST /v1/alertmanager HTTP/1.1\r\nHost: t\r\n"
				 "Authorization: Bearer " TOKEN "\r\n"
				 "Content-Length: 99999999999999999999999\r\n\r\n",
				 NULL, body, sizeof(body)),
			 413);
	assert_int_equal(v->st.alerts_calls, 1);
	assert_int_equal(http_server_stats(v->s)->unauthorized, 2);
}

/* Send a chunked body of total bytes (zeros) and the end chunk; returns the status. */
static int chunked(struct srv *v, int fd, size_t total, bool finish, char *body, size_t blen)
{
	static char buf[(HTTP_BODY_MAX * 3) + 4096];
	size_t off, chunk = 60000;

	off = (size_t)snprintf(buf, sizeof(buf),
			       "POST /v1/alertmanager HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
			       "Authorization: Bearer " TOKEN
			       "\r\nTransfer-Encoding: chunked\r\n\r\n");
	while (total) {
		size_t n = total < chunk ? total : chunk;

		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%zx\r\n", n);
		memset(buf + off, ' ', n);
		off += n;
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "\r\n");
		total -= n;
	}
	if (finish)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "0\r\n\r\n");
	return exchange(v, fd, buf, off, body, blen);
}

static void test_server_bodies(void **state)
{
	struct srv *v = *state;
	char body[4096];
	int fd, fd2;

	/* Chunked past 1 MiB: read and dropped, then 413. */
	fd = srv_connect(v);
	assert_int_equal(chunked(v, fd, 2 * HTTP_BODY_MAX, true, body, sizeof(body)), 413);
	close(fd);
	/* One connection holds a big body (not finished); a second one past the shared
	 * budget is told to come back (503), and the first is still served in full. */
	fd = srv_connect(v);
	assert_int_equal(chunked(v, fd, HTTP_BODY_MAX - 1000, false, body, sizeof(body)), -1);
	fd2 = srv_connect(v);
	assert_int_equal(chunked(v, fd2, HTTP_BODY_MAX - 1000, true, body, sizeof(body)), 503);
	close(fd2);
	assert_int_equal(exchange(v, fd, "0\r\n\r\n", 5, body, sizeof(body)), 400);
	close(fd);
	assert_int_equal(http_server_stats(v->s)->busy, 1);
	assert_int_equal(v->st.alerts_calls, 0);
}

/* Nothing to read on fd after turns of the server: no answer yet. */
static void no_answer(struct srv *v, int fd, int turns)
{
	char c;

	while (turns--) {
		http_server_run(v->s);
		assert_int_equal(read(fd, &c, 1), -1);
		assert_int_equal(errno, EAGAIN);
	}
}

/*
 * A GET answered later (a render on another thread): it waits, suspended, as
 * long as it takes; every connection holding the ticket gets the one body; one
 * with another ticket keeps waiting; a failed render is 503 saying why.
 */
static void test_server_later(void **state)
{
	static const char get[] = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	struct srv *v = *state;
	struct http_body *b;
	char body[4096];
	int fd[3], i;

	v->st.later = true;
	for (i = 0; i < 3; i++) {
		fd[i] = srv_connect(v);
		assert_int_equal(write(fd[i], get, strlen(get)), (ssize_t)strlen(get));
	}
	no_answer(v, fd[0], 50);
	assert_int_equal(v->st.get_calls, 3);
	assert_int_equal(http_server_waiting(v->s), 3);
	/* Another route is not held up meanwhile. */
	assert_int_equal(request(v,
				 "GET /v1/status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
				 NULL, body, sizeof(body)),
			 200);
	/* Another ticket answers nobody. */
	b = body_of("# TYPE y gauge\ny 2\n");
	assert_non_null(b);
	assert_int_equal(http_server_answer(v->s, HTTP_GET_METRICS, 8, b, 0), 0);
	assert_int_equal(http_server_answer(v->s, HTTP_GET_STATUS, 7, b, 0), 0);
	assert_int_equal(http_server_answer(v->s, HTTP_GET_METRICS, 7, b, 0), 3);
	http_body_unref(b); /* the connections hold their own references */
	assert_int_equal(http_server_waiting(v->s), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(exchange(v, fd[i], "", 0, body, sizeof(body)), 200);
		assert_string_equal(body, "# TYPE y gauge\ny 2\n");
		close(fd[i]);
	}

	/* A failed render: 503 with the reason, Retry-After. */
	fd[0] = srv_connect(v);
	assert_int_equal(write(fd[0], get, strlen(get)), (ssize_t)strlen(get));
	no_answer(v, fd[0], 5);
	assert_int_equal(http_server_answer(v->s, HTTP_GET_METRICS, 7, NULL, -ENOMEM), 1);
	assert_int_equal(exchange(v, fd[0], "", 0, body, sizeof(body)), 503);
	assert_non_null(strstr(body, "cannot render: Cannot allocate memory"));
	close(fd[0]);
	assert_int_equal(http_server_stats(v->s)->requests, 5);
}

/* Stopped with GETs still waiting: no abort, no leak (the sanitizers watch), 503 or a close. */
static void test_server_stop_waiting(void **state)
{
	static const char get[] = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	struct srv *v = *state;
	char buf[4096];
	int fd[2], i;
	ssize_t n;

	v->st.later = true;
	for (i = 0; i < 2; i++) {
		fd[i] = srv_connect(v);
		assert_int_equal(write(fd[i], get, strlen(get)), (ssize_t)strlen(get));
	}
	no_answer(v, fd[0], 20);
	assert_int_equal(http_server_waiting(v->s), 2);
	http_server_stop(v->s);
	v->s = NULL;
	for (i = 0; i < 2; i++) {
		/* Closed: an answer (503) may have gone out first. */
		n = read(fd[i], buf, sizeof(buf) - 1);
		assert_true(n >= 0);
		buf[n > 0 ? n : 0] = '\0';
		assert_true(n == 0 || strstr(buf, " 503 ") != NULL);
		close(fd[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_check),
		cmocka_unit_test(test_token_parse_refuses),
		cmocka_unit_test(test_token_file_modes),
		cmocka_unit_test(test_am_parse),
		cmocka_unit_test(test_am_parse_refuses),
		cmocka_unit_test(test_am_answer),
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_apply_alerts),
		cmocka_unit_test_setup_teardown(test_server_routes, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_bodies, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_later, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_stop_waiting, srv_setup, srv_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
