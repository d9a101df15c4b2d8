/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* libcurl options every request to etcd shares: URL, JSON body, TLS, timeouts. */
#ifndef SHIFT_FLEET_ETCD_CURL_H
#define SHIFT_FLEET_ETCD_CURL_H

#include <stdbool.h>
#include <curl/curl.h>

#include "config/fleet_conf.h"

/* Once per process, before any other curl call (not thread-safe, like curl's). */
int etcd_curl_global(void);
/*
 * Set up h to POST body (kept by the caller until the transfer ends) to
 * endpoint + path. stream: no overall timeout (a watch), only the connect one.
 * Returns 0 or -ENOMEM.
 */
int etcd_curl_setup(CURL *h, const struct conf_fleet *c, const char *endpoint, const char *path,
		    const char *body, bool stream, struct curl_slist **hdrs);

/*
 * libcurl resolves hostnames on a thread of its own; a transfer ending while
 * that thread waits on DNS joins it (blocking the caller) unless the thread
 * can be detached (CURLOPT_QUICK_EXIT, libcurl >= 7.87, both at build and at
 * run time). true when it can.
 */
bool etcd_curl_detaches_resolver(void);
/* The URL's host is a name, not an IPv4 or IPv6 address. */
bool etcd_curl_url_has_hostname(const char *url);

#endif
