// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness: a whole HTTP request (bytes as a client sends them)
 * through libmicrohttpd's parser and the HTTP API's routing, token check and
 * body limits (agent/http/server.c), on a socketpair, the server turned the
 * way shiftd's loop turns it. The agent is replaced by counting stubs.
 * Properties: no crash, no sanitizer report, no leak; a status line is one the
 * API or libmicrohttpd gives (a request cut short may get no answer at all: its
 * connection ends at the idle timeout, which a fuzzer cannot wait for);
 * the alerts reach the agent only from a request that carried the bearer
 * token, and with a 200 answer (the stubs never fail nor meet an unknown service).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>

#include "http/server.h"
#include "ops/log.h"
#include "fuzz.h"

#define TOKEN "fuzz-token-0123456789"

/* ops/log.c's interface, quiet: a log line per input would drown the fuzzer's output. */
void shift_log(int level, const char *fmt, ...)
{
	(void)level, (void)fmt;
}

int shift_log_level(void)
{
	return SHIFT_LOG_ERROR;
}

static int alerts_calls;

static void stub_alerts(void *ctx, struct am_alert *al, size_t n)
{
	size_t i;

	(void)ctx;
	alerts_calls++;
	for (i = 0; i < n; i++)
		al[i].outcome = al[i].has_service ? AM_ROLLED_BACK : AM_NO_SERVICE;
}

static int stub_get(void *ctx, enum http_get what, struct http_body **body, __u64 *ticket)
{
	char *buf = strdup("stub\n");

	(void)ctx, (void)what, (void)ticket;
	if (!buf)
		return -ENOMEM;
	*body = http_body_new(buf, 5);
	return *body ? 0 : -ENOMEM;
}

static struct http_server *server(void)
{
	static struct http_server *s;
	struct http_ops ops = { .alerts = stub_alerts, .get = stub_get };
	struct http_limits lim;
	struct http_token tok;
	char err[256];

	if (s)
		return s;
	http_limits_default(&lim);
	/* Small enough that the fuzzer reaches every limit. */
	lim.body_max = 4096;
	lim.bodies_max = 8192;
	lim.conn_memory = 8192;
	/* Connections cut short wait out the idle timeout: keep them few. */
	lim.timeout_s = 1;
	FUZZ_CHECK(!http_token_parse(TOKEN, strlen(TOKEN), &tok, err, sizeof(err)), "%s", err);
	s = http_server_start(NULL, &lim, &ops, &tok, err, sizeof(err));
	FUZZ_CHECK(s, "http_server_start: %s", err);
	return s;
}

static bool known_status(int code)
{
	switch (code) {
	case 100: /* "100 Continue" before the final answer */
	case 200:
	case 400:
	case 401:
	case 404:
	case 405:
	case 413:
	case 414:
	case 431:
	case 500:
	case 501:
	case 503:
	case 505:
		return true;
	default:
		return false;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char resp[1 << 16];
	struct http_server *s = server();
	size_t off = 0, got = 0;
	int sv[2], turns, before = alerts_calls, code;
	bool eof = false;

	if (size > 32768)
		return 0;
	FUZZ_CHECK(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
		   "socketpair: %s", strerror(errno));
	if (http_server_add_connection(s, sv[1])) {
		/* At the connection limit (cut-short ones waiting out their timeout). */
		close(sv[0]);
		return 0;
	}
	for (turns = 0; turns < 2000 && !eof; turns++) {
		ssize_t n;

		if (off < size) {
			n = write(sv[0], data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				shutdown(sv[0], SHUT_WR); /* the client has said all it will */
		} else if (!size && !turns) {
			shutdown(sv[0], SHUT_WR);
		}
		http_server_run(s);
		while ((n = read(sv[0], resp + got, sizeof(resp) - 1 - got)) > 0)
			got += (size_t)n;
		if (n == 0 || got >= sizeof(resp) - 1)
			eof = true;
	}
	resp[got] = '\0';
	close(sv[0]);
	/* Let the server notice the close and free the connection. */
	for (turns = 0; turns < 4; turns++)
		http_server_run(s);
	if (alerts_calls != before) {
		FUZZ_CHECK(memmem(data, size, TOKEN, strlen(TOKEN)),
			   "alerts applied without the token");
		FUZZ_CHECK(!got || strstr(resp, "HTTP/1.1 200") || strstr(resp, "HTTP/1.0 200"),
			   "alerts applied, answered: %.80s", resp);
	}
	if (got && !strncmp(resp, "HTTP/1.", 7)) {
		FUZZ_CHECK(sscanf(resp, "HTTP/1.%*d %d", &code) == 1, "status line: %.80s", resp);
		FUZZ_CHECK(known_status(code), "status %d: %.200s", code, resp);
	}
	return 0;
}
