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

#endif
