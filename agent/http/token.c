// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include "config/errmsg.h"
#include "http/token.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int http_token_parse(const char *text, size_t len, struct http_token *t, char *err, size_t errlen)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	while (len && is_space(text[len - 1]))
		len--;
	while (len && is_space(*text)) {
		text++;
		len--;
	}
	if (!len) {
		seterr(err, errlen, "empty: it must hold the bearer token");
		return -EINVAL;
	}
	if (len > HTTP_TOKEN_MAX) {
		seterr(err, errlen, "token longer than %d characters", HTTP_TOKEN_MAX);
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		/* What an Authorization header can carry unquoted, and one line only. */
		if (text[i] < 0x21 || text[i] > 0x7e) {
			seterr(err, errlen,
			       "byte %zu of the token is not visible ASCII (one token, one line)",
			       i + 1);
			return -EINVAL;
		}
	}
	memcpy(t->v, text, len);
	t->len = len;
	return 0;
}

int http_token_load(const char *path, struct http_token *t, char *err, size_t errlen)
{
	char buf[HTTP_TOKEN_MAX + 64], why[128];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		seterr(err, errlen, "http_token_file %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		seterr(err, errlen, "http_token_file %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		seterr(err, errlen, "http_token_file %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	/* Whoever can read the token can roll every service back. */
	if (st.st_mode & 077) {
		seterr(err, errlen,
		       "http_token_file %s: mode %04o lets group or others at the token; "
		       "chmod 600 it",
		       path, (unsigned int)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	while (got < sizeof(buf)) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			seterr(err, errlen, "http_token_file %s: %s", path, strerror(errno));
			close(fd);
			return rc;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got == sizeof(buf)) {
		seterr(err, errlen,
		       "http_token_file %s: larger than a token (%d characters at most)", path,
		       HTTP_TOKEN_MAX);
		return -EFBIG;
	}
	why[0] = '\0';
	rc = http_token_parse(buf, got, t, why, sizeof(why));
	if (rc)
		seterr(err, errlen, "http_token_file %s: %s", path, why);
	return rc;
}

bool http_token_check(const struct http_token *t, const char *authorization)
{
	const char *p = authorization;
	size_t n, i;
	unsigned int diff;

	if (!p || !t->len || strncasecmp(p, "Bearer", 6) || (p[6] != ' ' && p[6] != '\t'))
		return false;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	/* As long as the token whatever the guess: every byte compared, no early exit. */
	diff = (unsigned int)(n != t->len);
	for (i = 0; i < t->len; i++)
		diff |= (unsigned char)(t->v[i] ^ (i < n ? p[i] : 0));
	return diff == 0;
}
