// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/errmsg.h"
#include "fleet/etcd_curl.h"
#include "fleet/etcd_json.h"
#include "fleet/etcd_sync.h"

#define MAX_ANSWER (64u << 20)

struct buf {
	char *p;
	size_t len;
	bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *np;

	if (b->len + n > MAX_ANSWER) {
		b->too_big = true;
		return 0;
	}
	np = realloc(b->p, b->len + n + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

int etcd_sync_open(struct etcd_sync *c, const struct conf_fleet *conf)
{
	memset(c, 0, sizeof(*c));
	c->conf = conf;
	if (etcd_curl_global())
		return -EIO;
	c->h = curl_easy_init();
	return c->h ? 0 : -ENOMEM;
}

void etcd_sync_close(struct etcd_sync *c)
{
	if (c->h)
		curl_easy_cleanup(c->h);
	curl_slist_free_all(c->hdrs);
	c->h = NULL;
	c->hdrs = NULL;
}

int etcd_sync_call(struct etcd_sync *c, const char *path, const char *body, json_t **resp,
		   char *err, size_t errlen)
{
	char why[CURL_ERROR_SIZE + 64] = "";
	unsigned i;

	*resp = NULL;
	for (i = 0; i < c->conf->n_endpoints; i++) {
		unsigned k = (c->cur + i) % c->conf->n_endpoints;
		const char *ep = c->conf->endpoints[k];
		struct buf b = { 0 };
		char cerr[CURL_ERROR_SIZE] = "";
		json_error_t je;
		const char *eerr;
		long status = 0;
		CURLcode rc;
		json_t *j;

		curl_easy_reset(c->h);
		if (etcd_curl_setup(c->h, c->conf, ep, path, body, false, &c->hdrs)) {
			seterr(err, errlen, "%s%s: cannot set up the request (out of memory?)", ep,
			       path);
			return -ENOMEM;
		}
		curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, cerr);
		rc = curl_easy_perform(c->h);
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
		if (rc != CURLE_OK) {
			seterr(why, sizeof(why), "%s: %s", ep,
			       cerr[0] ? cerr : curl_easy_strerror(rc));
			free(b.p);
			continue;
		}
		/* 503 and friends: this member cannot serve (no leader); the next may. */
		if (status >= 500 && !b.p) {
			seterr(why, sizeof(why), "%s: HTTP %ld", ep, status);
			continue;
		}
		j = b.p ? json_loadb(b.p, b.len, 0, &je) : NULL;
		if (!j) {
			seterr(err, errlen, "%s%s: answer is not JSON (HTTP %ld)", ep, path,
			       status);
			free(b.p);
			return -EPROTO;
		}
		free(b.p);
		eerr = etcd_resp_error(j);
		if (eerr) {
			/* No leader / timeouts are this member's problem: try another. */
			if (status >= 500) {
				seterr(why, sizeof(why), "%s: %s", ep, eerr);
				json_decref(j);
				continue;
			}
			seterr(err, errlen, "%s%s: etcd says: %s", ep, path, eerr);
			json_decref(j);
			return -EPROTO;
		}
		c->cur = k;
		*resp = j;
		return 0;
	}
	seterr(err, errlen, "fleet unreachable (%s)", why[0] ? why : "no endpoint");
	return -EHOSTUNREACH;
}
