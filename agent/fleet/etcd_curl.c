// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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

/* Keepalive probes before a silent connection is given up (libcurl 7.88 sets
 * their idle time and interval, not their count). */
#define ETCD_KEEPALIVE_PROBES 3

static int sockopts(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	/*
	 * A request given up on (timed out in a partition, a session failing
	 * over, shiftd exiting) must not reach etcd later. A plain close()
	 * leaves the kernel retransmitting the unacknowledged request, FIN
	 * after it, for up to minutes: once the path heals, etcd's gateway
	 * often serves it. A node report stamped 26 s earlier then overwrote
	 * a newer one (CI run 149), and an alive key could be put back under
	 * an old session's lease. Linger 0 makes close() drop what is unsent
	 * and reset the connection; in a loopback partition here 4 of 6 such
	 * requests landed after the heal with a plain close(), 0 of 6 with it.
	 */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int n = ETCD_KEEPALIVE_PROBES;

	(void)clientp;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKOPT_OK;
	if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &n, sizeof(n)))
		log_warn("fleet: TCP_KEEPCNT: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		log_warn("fleet: SO_LINGER: %s", strerror(errno));
	return CURL_SOCKOPT_OK;
}

int etcd_curl_setup(CURL *h, const struct conf_fleet *c, const char *endpoint, const char *path,
		    const char *body, bool stream, struct curl_slist **hdrs)
{
	long idle = (long)(c->lease_ns / 3000000000ull);
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
	/*
	 * The watch waits in silence, for hours when nothing changes: a path that
	 * dies without a reset (a NAT's or firewall's idle timeout, a silent
	 * drop) would leave this node deaf to the fleet's rollbacks while its
	 * keepalives, on another connection, still pass. TCP keepalives find it
	 * after a third of the lease idle and ETCD_KEEPALIVE_PROBES probes a second
	 * apart, and fail the session like any error.
	 */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, idle > 0 ? idle : 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 1L);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, sockopts);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#if LIBCURL_VERSION_NUM >= 0x075700
	/*
	 * A hostname endpoint is resolved by libcurl's threaded resolver. A
	 * transfer that ends while getaddrinfo() still runs (timed out, or
	 * removed: a session failing over) would join that thread, blocking
	 * shiftd's loop until the DNS server answers or glibc gives up (10 s by
	 * default). QUICK_EXIT (libcurl >= 7.87) detaches it instead; it frees
	 * its own state when getaddrinfo() returns.
	 */
	curl_easy_setopt(h, CURLOPT_QUICK_EXIT, 1L);
#endif
	if (c->cacert[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	if (c->cert[0]) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
	}
	return 0;
}

bool etcd_curl_detaches_resolver(void)
{
#if LIBCURL_VERSION_NUM >= 0x075700
	/* Built against >= 7.87 but run on an older library: the option is
	 * unknown there, and curl_easy_setopt() says so without harm. */
	return curl_version_info(CURLVERSION_NOW)->version_num >= 0x075700;
#else
	return false;
#endif
}

bool etcd_curl_url_has_hostname(const char *url)
{
	unsigned char a[sizeof(struct in6_addr)];
	CURLU *u = curl_url();
	char *host = NULL;
	bool name = false;

	if (!u)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		/* An IPv6 literal comes back in brackets. */
		name = host[0] != '[' && inet_pton(AF_INET, host, a) != 1;
	curl_free(host);
	curl_url_cleanup(u);
	return name;
}
