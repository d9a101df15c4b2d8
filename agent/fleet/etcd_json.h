/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * etcd v3's JSON gateway (etcd 3.4, under /v3/): request bodies and response
 * fields. Keys and values travel base64-encoded, 64-bit numbers as strings,
 * fields at their default value (0, false, PUT) are left out. Pure code: the
 * HTTP side is etcd_sync.c (shiftctl) and etcd_async.c (shiftd's loop).
 */
#ifndef SHIFT_FLEET_ETCD_JSON_H
#define SHIFT_FLEET_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <jansson.h>

#define ETCD_PATH_RANGE "/v3/kv/range"
#define ETCD_PATH_PUT "/v3/kv/put"
#define ETCD_PATH_TXN "/v3/kv/txn"
#define ETCD_PATH_DELETE "/v3/kv/deleterange"
#define ETCD_PATH_WATCH "/v3/watch"
#define ETCD_PATH_LEASE_GRANT "/v3/lease/grant"
#define ETCD_PATH_LEASE_KEEPALIVE "/v3/lease/keepalive"
#define ETCD_PATH_LEASE_REVOKE "/v3/lease/revoke"

struct etcd_kv {
	char *key; /* NUL-terminated copies; free with etcd_kv_free() */
	char *value;
	size_t value_len;
	__s64 create_revision, mod_revision, lease;
	bool deleted; /* a watch event of type DELETE */
};

/* Request bodies: JSON text to free(), or NULL (out of memory, key too long). */
char *etcd_req_range(const char *key, bool prefix);
char *etcd_req_put(const char *key, const char *value, __s64 lease);
/* Put value if key's mod_revision is still mod_rev (0: the key does not exist);
 * otherwise read the key back (responses[0].response_range). */
char *etcd_req_txn_put(const char *key, __s64 mod_rev, const char *value, __s64 lease);
char *etcd_req_watch(const char *prefix, __s64 start_revision);
char *etcd_req_lease_grant(__s64 ttl_s);
char *etcd_req_lease_id(__s64 id);

/* The gateway's error object ({"error": ..., "code": N}), or NULL if none. */
const char *etcd_resp_error(json_t *resp);
/* A string-encoded int64 field; absent = 0. 0 or -EINVAL. */
int etcd_i64(json_t *o, const char *field, __s64 *out);
/* header.revision of a response (or of a watch "result"). */
__s64 etcd_header_revision(json_t *resp);
/* One kv (of a range, a txn's range or a watch event's "kv"). 0 or -EINVAL. */
int etcd_kv_parse(json_t *kv, struct etcd_kv *out);
void etcd_kv_free(struct etcd_kv *kv);
/* The kvs array of a range response or of a failed txn's read-back (may be empty). */
json_t *etcd_resp_kvs(json_t *resp);
/* "succeeded" of a txn response (absent = false). */
bool etcd_txn_succeeded(json_t *resp);

#endif
