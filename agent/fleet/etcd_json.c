// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/b64.h"
#include "fleet/etcd_json.h"

#define MAX_KEY 1024

static json_t *b64_json(const void *p, size_t n)
{
	char *buf = malloc(B64_ENC_LEN(n));
	json_t *s;

	if (!buf)
		return NULL;
	b64_encode(p, n, buf);
	s = json_string(buf);
	free(buf);
	return s;
}

static json_t *i64_json(__s64 v)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRId64, (int64_t)v);
	return json_string(b);
}

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* The end of a prefix range: the prefix with its last byte incremented. */
static json_t *range_end(const char *prefix)
{
	char end[MAX_KEY];
	size_t n = strlen(prefix);

	if (!n || n >= sizeof(end))
		return NULL;
	memcpy(end, prefix, n);
	end[n - 1]++;
	return b64_json(end, n);
}

char *etcd_req_range(const char *key, bool prefix)
{
	json_t *o = json_object();

	if (!o || strlen(key) >= MAX_KEY)
		return dump(o), NULL;
	json_object_set_new(o, "key", b64_json(key, strlen(key)));
	if (prefix)
		json_object_set_new(o, "range_end", range_end(key));
	return dump(o);
}

static json_t *put_obj(const char *key, const char *value, __s64 lease)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "key", b64_json(key, strlen(key)));
	json_object_set_new(o, "value", b64_json(value, strlen(value)));
	if (lease)
		json_object_set_new(o, "lease", i64_json(lease));
	return o;
}

char *etcd_req_put(const char *key, const char *value, __s64 lease)
{
	if (strlen(key) >= MAX_KEY)
		return NULL;
	return dump(put_obj(key, value, lease));
}

char *etcd_req_txn_put(const char *key, __s64 mod_rev, const char *value, __s64 lease)
{
	json_t *o = json_object(), *cmp = json_object(), *ok = json_object(),
	       *range = json_object(), *no = json_object();

	if (!o || !cmp || !ok || !range || !no || strlen(key) >= MAX_KEY) {
		json_decref(cmp), json_decref(ok), json_decref(range), json_decref(no);
		return dump(o), NULL;
	}
	json_object_set_new(cmp, "target", json_string("MOD"));
	json_object_set_new(cmp, "key", b64_json(key, strlen(key)));
	json_object_set_new(cmp, "result", json_string("EQUAL"));
	json_object_set_new(cmp, "mod_revision", i64_json(mod_rev));
	json_object_set_new(ok, "request_put", put_obj(key, value, lease));
	json_object_set_new(range, "key", b64_json(key, strlen(key)));
	json_object_set_new(no, "request_range", range);
	json_object_set_new(o, "compare", json_pack("[o]", cmp));
	json_object_set_new(o, "success", json_pack("[o]", ok));
	json_object_set_new(o, "failure", json_pack("[o]", no));
	return dump(o);
}

char *etcd_req_watch(const char *prefix, __s64 start_revision)
{
	json_t *o = json_object(), *c = json_object();

	if (!o || !c || strlen(prefix) >= MAX_KEY) {
		json_decref(c);
		return dump(o), NULL;
	}
	json_object_set_new(c, "key", b64_json(prefix, strlen(prefix)));
	json_object_set_new(c, "range_end", range_end(prefix));
	if (start_revision > 0)
		json_object_set_new(c, "start_revision", i64_json(start_revision));
	json_object_set_new(o, "create_request", c);
	return dump(o);
}

char *etcd_req_lease_grant(__s64 ttl_s)
{
	return dump(json_pack("{s:o}", "TTL", i64_json(ttl_s)));
}

char *etcd_req_lease_id(__s64 id)
{
	return dump(json_pack("{s:o}", "ID", i64_json(id)));
}

const char *etcd_resp_error(json_t *resp)
{
	json_t *e;

	if (!json_is_object(resp))
		return "not a JSON object";
	e = json_object_get(resp, "error");
	if (e)
		return json_is_string(e) ? json_string_value(e) : "error";
	e = json_object_get(resp, "message");
	if (json_object_get(resp, "code") && json_is_string(e))
		return json_string_value(e);
	return NULL;
}

int etcd_i64(json_t *o, const char *field, __s64 *out)
{
	json_t *x = json_object_get(o, field);
	const char *s;
	char *end;
	long long v;

	*out = 0;
	if (!x)
		return 0;
	if (json_is_integer(x)) {
		*out = json_integer_value(x);
		return 0;
	}
	if (!json_is_string(x))
		return -EINVAL;
	s = json_string_value(x);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (!*s || *end || errno)
		return -EINVAL;
	*out = v;
	return 0;
}

__s64 etcd_header_revision(json_t *resp)
{
	__s64 rev = 0;

	etcd_i64(json_object_get(resp, "header"), "revision", &rev);
	return rev;
}

static char *b64_field(json_t *o, const char *field, size_t *len)
{
	json_t *x = json_object_get(o, field);
	const char *s = json_is_string(x) ? json_string_value(x) : "";
	size_t cap = strlen(s) / 4 * 3 + 1;
	char *buf = malloc(cap);
	long n;

	if (!buf || (x && !json_is_string(x)))
		return free(buf), NULL;
	n = b64_decode(s, buf, cap);
	if (n < 0)
		return free(buf), NULL;
	buf[n] = '\0';
	if (len)
		*len = (size_t)n;
	return buf;
}

int etcd_kv_parse(json_t *kv, struct etcd_kv *out)
{
	memset(out, 0, sizeof(*out));
	if (!json_is_object(kv))
		return -EINVAL;
	out->key = b64_field(kv, "key", NULL);
	out->value = b64_field(kv, "value", &out->value_len);
	if (!out->key || !out->value || etcd_i64(kv, "mod_revision", &out->mod_revision) ||
	    etcd_i64(kv, "create_revision", &out->create_revision) ||
	    etcd_i64(kv, "lease", &out->lease)) {
		etcd_kv_free(out);
		return -EINVAL;
	}
	return 0;
}

void etcd_kv_free(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	kv->key = kv->value = NULL;
}

json_t *etcd_resp_kvs(json_t *resp)
{
	json_t *r = json_object_get(resp, "responses"), *kvs;

	if (json_is_array(r)) {
		resp = json_object_get(json_array_get(r, 0), "response_range");
	}
	kvs = json_object_get(resp, "kvs");
	return json_is_array(kvs) ? kvs : NULL;
}

bool etcd_txn_succeeded(json_t *resp)
{
	return json_is_true(json_object_get(resp, "succeeded"));
}
