// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>

#include "fleet/etcd_curl.h"
#include "ops/log.h"

int etcd_curl_global(void)
{
	static bool done;
	CURLcode rc;

	if (done)
		return 0;
	rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc) {
		log_err("libcurl: %s", curl_easy_strerror(rc));
		return -EIO;
	}
	done = true;
	return 0;
}

int etcd_curl_setup(CURL *h, const struct conf_fleet *c, const char *endpoint, const char *path,
		    const char *body, bool stream, struct curl_slist **hdrs)
{
	char url[CONF_FLEET_URL_LEN + 64];
	long ms = (long)(c->timeout_ns / 1000000ull);

	snprintf(url, sizeof(url), "%s%s", endpoint, path);
	if (!*hdrs) {
		struct curl_slist *ct = curl_slist_append(NULL, "Content-Type: application/json");
		/* No "Expect: 100-continue" round trip before a larger body. */
		struct curl_slist *h2 = ct ? curl_slist_append(ct, "Expect:") : NULL;

		if (!h2) {
			curl_slist_free_all(ct);
			return -ENOMEM;
		}
		*hdrs = h2;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, stream ? 0L : ms);
	/* No proxy from the environment: etcd is on the edge host's own network. */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->cacert[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	if (c->cert[0]) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
	}
	return 0;
}
