/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Blocking calls to etcd for shiftctl (each bounded by etcd_timeout per
 * endpoint): the CLI may wait; shiftd never uses this.
 */
#ifndef SHIFT_FLEET_ETCD_SYNC_H
#define SHIFT_FLEET_ETCD_SYNC_H

#include <stddef.h>
#include <jansson.h>
#include <curl/curl.h>

#include "config/fleet_conf.h"

struct etcd_sync {
	const struct conf_fleet *conf;
	CURL *h;
	struct curl_slist *hdrs;
	unsigned cur; /* the endpoint that answered last: tried first */
};

int etcd_sync_open(struct etcd_sync *c, const struct conf_fleet *conf);
void etcd_sync_close(struct etcd_sync *c);
/*
 * POST body to path, trying each endpoint in turn until one answers.
 * 0 with the parsed answer in *resp (json_decref it); -EHOSTUNREACH when no
 * endpoint answered, -EPROTO for an answer that is not JSON or an etcd error
 * (err says which).
 */
int etcd_sync_call(struct etcd_sync *c, const char *path, const char *body, json_t **resp,
		   char *err, size_t errlen);

#endif
