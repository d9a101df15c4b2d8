// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/errmsg.h"
#include "config/weight.h"
#include "fleet/cli.h"
#include "fleet/etcd_json.h"
#include "fleet/etcd_sync.h"
#include "ops/clock.h"

#define MAX_TRIES 8

/* The first kv of a range or of a failed txn's read-back; *mod_rev 0 if none. */
static void current(json_t *resp, const char *key, struct fleet_svc_value *v, bool *exists,
		    __s64 *mod_rev)
{
	json_t *kvs = etcd_resp_kvs(resp);
	struct etcd_kv kv;
	char why[256];

	memset(v, 0, sizeof(*v));
	*exists = false;
	*mod_rev = 0;
	if (!kvs || !json_array_size(kvs) || etcd_kv_parse(json_array_get(kvs, 0), &kv))
		return;
	*mod_rev = kv.mod_revision;
	if (fleet_svc_decode(kv.value, kv.value_len, v, why, sizeof(why))) {
		fprintf(stderr, "shiftctl: warning: %s at revision %lld: %s (overwritten)\n", key,
			(long long)kv.mod_revision, why);
		memset(v, 0, sizeof(*v));
	} else {
		*exists = true;
	}
	etcd_kv_free(&kv);
}

static int update(struct etcd_sync *c, const char *fleet, const char *service, fleet_change_fn fn,
		  void *arg, __s64 *rev, char *err, size_t errlen)
{
	char key[FLEET_KEY_LEN], *body;
	struct fleet_svc_value v;
	json_t *resp = NULL;
	__s64 mod_rev;
	bool exists;
	int rc, i;

	if (fleet_key(fleet, FLEET_KEY_SVC, service, key, sizeof(key))) {
		seterr(err, errlen, "service name too long for a key");
		return -ENAMETOOLONG;
	}
	body = etcd_req_range(key, false);
	if (!body) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = etcd_sync_call(c, ETCD_PATH_RANGE, body, &resp, err, errlen);
	free(body);
	if (rc)
		return rc;
	for (i = 0; i < MAX_TRIES; i++) {
		char *val;

		current(resp, key, &v, &exists, &mod_rev);
		json_decref(resp);
		resp = NULL;
		rc = fn(&v, exists, arg, err, errlen);
		if (rc == 1)
			*rev = mod_rev; /* what the caller's "nothing to do" was judged on */
		if (rc)
			return rc;
		val = fleet_svc_encode(&v);
		body = val ? etcd_req_txn_put(key, mod_rev, val, 0) : NULL;
		free(val);
		if (!body) {
			seterr(err, errlen, "%s: cannot encode the new value (out of memory)", key);
			return -ENOMEM;
		}
		rc = etcd_sync_call(c, ETCD_PATH_TXN, body, &resp, err, errlen);
		free(body);
		if (rc)
			return rc;
		if (etcd_txn_succeeded(resp)) {
			*rev = etcd_header_revision(resp);
			json_decref(resp);
			return 0;
		}
		/* Someone wrote in between: decide again on what is there now. */
	}
	json_decref(resp);
	seterr(err, errlen, "%s kept changing under us; nothing written", key);
	return -EAGAIN;
}

int fleet_cli_update(const struct conf_fleet *fl, const char *service, fleet_change_fn fn,
		     void *arg, __s64 *rev, char *err, size_t errlen)
{
	struct etcd_sync es;
	int rc;

	rc = conf_fleet_files_check(fl, err, errlen);
	if (rc)
		return rc;
	if (etcd_sync_open(&es, fl)) {
		seterr(err, errlen, "cannot set up the etcd client");
		return -ENOMEM;
	}
	rc = update(&es, fl->fleet, service, fn, arg, rev, err, errlen);
	etcd_sync_close(&es);
	return rc;
}

struct shared {
	char name[CONF_NAME_LEN];
	struct fleet_svc_value v;
};

static bool node_agrees(const struct fleet_node_value *n, const struct shared *sv, size_t nsv,
			__s64 fleet_rev, __u64 now)
{
	size_t i;
	__u32 k;

	if (n->applied_revision < fleet_rev)
		return false;
	for (i = 0; i < nsv; i++) {
		for (k = 0; k < n->n; k++) {
			if (strcmp(n->svc[k].service, sv[i].name))
				continue;
			if (n->svc[k].latched != sv[i].v.latched ||
			    n->svc[k].weight_bp != fleet_svc_weight(&sv[i].v, now))
				return false;
		}
	}
	return true;
}

static json_t *node_json(const char *name, bool alive, const struct fleet_node_value *n,
			 bool agrees)
{
	json_t *o = json_object(), *arr = json_array();
	__u32 k;

	for (k = 0; n && k < n->n; k++)
		json_array_append_new(arr,
				      json_pack("{s:s,s:i,s:b}", "service", n->svc[k].service,
						"green_weight_bp", (json_int_t)n->svc[k].weight_bp,
						"rolled_back", n->svc[k].latched));
	json_object_set_new(o, "node", json_string(name));
	json_object_set_new(o, "alive", json_boolean(alive));
	json_object_set_new(o, "applied_revision", json_integer(n ? n->applied_revision : 0));
	json_object_set_new(o, "agrees", json_boolean(agrees));
	json_object_set_new(o, "services", arr);
	return o;
}

static int collect(struct etcd_sync *c, const char *fleet, json_t **out, char *err, size_t errlen)
{
	char prefix[FLEET_KEY_LEN], *body, why[256];
	struct fleet_node_value *nodes = NULL;
	char(*alive)[FLEET_ORIGIN_LEN] = NULL;
	size_t nsv = 0, nn = 0, na = 0, i, j;
	struct shared *sv = NULL;
	__s64 fleet_rev = 0;
	__u64 now = now_unix_ns();
	json_t *resp = NULL, *kvs, *x, *arr;
	int rc;

	*out = NULL;
	fleet_key_prefix(fleet, -1, prefix, sizeof(prefix));
	body = etcd_req_range(prefix, true);
	if (!body) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = etcd_sync_call(c, ETCD_PATH_RANGE, body, &resp, err, errlen);
	free(body);
	if (rc)
		return rc;
	kvs = etcd_resp_kvs(resp);
	i = kvs ? json_array_size(kvs) : 0;
	sv = calloc(i + 1, sizeof(*sv));
	nodes = calloc(i + 1, sizeof(*nodes));
	alive = calloc(i + 1, sizeof(*alive));
	if (!sv || !nodes || !alive) {
		seterr(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	json_array_foreach(kvs, i, x)
	{
		struct etcd_kv kv;
		const char *name;

		if (etcd_kv_parse(x, &kv))
			continue;
		if ((name = fleet_key_name(fleet, FLEET_KEY_SVC, kv.key))) {
			if (fleet_svc_decode(kv.value, kv.value_len, &sv[nsv].v, why,
					     sizeof(why)) == 0 &&
			    strlen(name) < CONF_NAME_LEN) {
				strcpy(sv[nsv++].name, name);
				if (kv.mod_revision > fleet_rev)
					fleet_rev = kv.mod_revision;
			} else {
				fprintf(stderr, "shiftctl: warning: %s at revision %lld: %s\n",
					kv.key, (long long)kv.mod_revision, why);
			}
		} else if ((name = fleet_key_name(fleet, FLEET_KEY_NODES, kv.key))) {
			if (fleet_node_decode(kv.value, kv.value_len, &nodes[nn], why,
					      sizeof(why)) == 0)
				nn++;
			else
				fprintf(stderr, "shiftctl: warning: %s at revision %lld: %s\n",
					kv.key, (long long)kv.mod_revision, why);
		} else if ((name = fleet_key_name(fleet, FLEET_KEY_ALIVE, kv.key))) {
			snprintf(alive[na++], FLEET_ORIGIN_LEN, "%s", name);
		}
		etcd_kv_free(&kv);
	}
	arr = json_array();
	for (i = 0; i < nn; i++) {
		bool is_alive = false;

		for (j = 0; j < na; j++)
			is_alive |= !strcmp(alive[j], nodes[i].node);
		json_array_append_new(arr,
				      node_json(nodes[i].node, is_alive, &nodes[i],
						node_agrees(&nodes[i], sv, nsv, fleet_rev, now)));
	}
	/* Alive but never reported: it has not applied anything yet. */
	for (j = 0; j < na; j++) {
		bool known = false;

		for (i = 0; i < nn; i++)
			known |= !strcmp(alive[j], nodes[i].node);
		if (!known)
			json_array_append_new(arr, node_json(alive[j], true, NULL, false));
	}
	*out = json_pack("{s:s,s:I,s:o}", "fleet", fleet, "revision", (json_int_t)fleet_rev,
			 "nodes", arr);
	rc = *out ? 0 : -ENOMEM;
	if (rc)
		seterr(err, errlen, "out of memory");
out:
	json_decref(resp);
	free(sv);
	free(nodes);
	free(alive);
	return rc;
}

static void render_text(json_t *st, const char *fleet, FILE *f)
{
	json_t *nodes = json_object_get(st, "nodes"), *n, *x;
	size_t i, k;

	fprintf(f, "fleet %s  revision %lld  %zu node%s\n", fleet,
		(long long)json_integer_value(json_object_get(st, "revision")),
		json_array_size(nodes), json_array_size(nodes) == 1 ? "" : "s");
	json_array_foreach(nodes, i, n)
	{
		bool agrees = json_is_true(json_object_get(n, "agrees"));

		fprintf(f, "\nnode %s  %s  applied revision %lld%s\n",
			json_string_value(json_object_get(n, "node")),
			json_is_true(json_object_get(n, "alive")) ? "alive" :
								    "DOWN (lease expired)",
			(long long)json_integer_value(json_object_get(n, "applied_revision")),
			agrees ? "" : "  DISAGREES with the fleet");
		json_array_foreach(json_object_get(n, "services"), k, x)
		{
			char w[WEIGHT_STR_LEN];
			__u32 bp = (__u32)json_integer_value(json_object_get(x, "green_weight_bp"));

			fprintf(f, "  %-20s green %-8s%s\n",
				json_string_value(json_object_get(x, "service")),
				weight_format(bp, w, sizeof(w)),
				json_is_true(json_object_get(x, "rolled_back")) ? "  ROLLED BACK" :
										  "");
		}
	}
}

int fleet_cli_status(const struct conf_fleet *fl, bool as_json, FILE *out, char *err, size_t errlen)
{
	struct etcd_sync es;
	json_t *st = NULL;
	int rc;

	rc = conf_fleet_files_check(fl, err, errlen);
	if (rc)
		return rc;
	if (etcd_sync_open(&es, fl)) {
		seterr(err, errlen, "cannot set up the etcd client");
		return -ENOMEM;
	}
	rc = collect(&es, fl->fleet, &st, err, errlen);
	etcd_sync_close(&es);
	if (rc)
		return rc;
	if (as_json) {
		char *txt = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (!txt) {
			json_decref(st);
			seterr(err, errlen, "out of memory");
			return -ENOMEM;
		}
		fprintf(out, "%s\n", txt);
		free(txt);
	} else {
		render_text(st, fl->fleet, out);
	}
	json_decref(st);
	return 0;
}
