// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Alertmanager webhook payloads with jansson; see webhook.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "config/errmsg.h"
#include "http/webhook.h"

static const char *const outcome_names[AM__OUTCOMES] = {
	[AM_PENDING] = "pending",
	[AM_ROLLED_BACK] = "rolled_back",
	[AM_ALREADY] = "already_rolled_back",
	[AM_UNKNOWN_SERVICE] = "unknown_service",
	[AM_RESOLVED] = "resolved_ignored",
	[AM_NO_SERVICE] = "no_shift_service",
	[AM_FAILED] = "rollback_failed",
};

const char *am_outcome_name(enum am_outcome o)
{
	return (unsigned int)o < AM__OUTCOMES ? outcome_names[o] : "unknown";
}

/* A copy for logs and reasons: printable ASCII only, cut to fit. */
static void copy_printable(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

/* What a [service NAME] header accepts: 1-63 of A-Z a-z 0-9 _ . - */
static bool service_name_ok(const char *s, size_t len)
{
	size_t i;

	if (!len || len >= CONF_NAME_LEN)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static int parse_alert(json_t *al, size_t i, struct am_alert *out, char *err, size_t errlen)
{
	json_t *status, *labels, *ann, *v;
	const char *key;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(al)) {
		seterr(err, errlen, "alerts[%zu]: not an object", i);
		return -EINVAL;
	}
	status = json_object_get(al, "status");
	if (!json_is_string(status)) {
		seterr(err, errlen, "alerts[%zu].status: missing or not a string", i);
		return -EINVAL;
	}
	if (!strcmp(json_string_value(status), "firing")) {
		out->firing = true;
	} else if (strcmp(json_string_value(status), "resolved")) {
		char b[40];

		copy_printable(b, sizeof(b), json_string_value(status));
		seterr(err, errlen, "alerts[%zu].status: '%s' is not firing or resolved", i, b);
		return -EINVAL;
	}
	labels = json_object_get(al, "labels");
	if (!json_is_object(labels)) {
		seterr(err, errlen, "alerts[%zu].labels: missing or not an object", i);
		return -EINVAL;
	}
	json_object_foreach(labels, key, v)
	{
		if (!json_is_string(v)) {
			char b[64];

			copy_printable(b, sizeof(b), key);
			seterr(err, errlen, "alerts[%zu].labels.%s: not a string", i, b);
			return -EINVAL;
		}
	}
	v = json_object_get(labels, "alertname");
	copy_printable(out->alertname, sizeof(out->alertname),
		       v && *json_string_value(v) ? json_string_value(v) : "unnamed");
	v = json_object_get(labels, AM_LABEL_SERVICE);
	if (v) {
		out->has_service = true;
		out->service_ok = service_name_ok(json_string_value(v), json_string_length(v));
		copy_printable(out->service, sizeof(out->service), json_string_value(v));
	}
	ann = json_object_get(al, "annotations");
	if (ann && !json_is_object(ann) && !json_is_null(ann)) {
		seterr(err, errlen, "alerts[%zu].annotations: not an object", i);
		return -EINVAL;
	}
	v = json_is_object(ann) ? json_object_get(ann, "summary") : NULL;
	if (json_is_string(v))
		copy_printable(out->summary, sizeof(out->summary), json_string_value(v));
	v = json_object_get(al, "startsAt");
	if (json_is_string(v))
		copy_printable(out->starts_at, sizeof(out->starts_at), json_string_value(v));
	out->outcome = AM_PENDING;
	return 0;
}

int am_parse(const char *body, size_t len, struct am_alert **alerts, size_t *n, char *err,
	     size_t errlen)
{
	json_t *root, *ver, *arr;
	json_error_t je;
	struct am_alert *al = NULL;
	size_t i, cnt;
	int rc = -EINVAL;

	*alerts = NULL;
	*n = 0;
	/* Duplicate keys would let two readers of one payload disagree: refuse them. */
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		char why[sizeof(je.text)];

		/* jansson quotes the offending bytes: they go to a log line and an answer. */
		copy_printable(why, sizeof(why), je.text);
		seterr(err, errlen, "malformed JSON at line %d, column %d: %s", je.line, je.column,
		       why);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		seterr(err, errlen, "the payload is not a JSON object");
		goto out;
	}
	ver = json_object_get(root, "version");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "4")) {
		seterr(err, errlen, "version: want \"4\" (Alertmanager's webhook payload), got %s",
		       !ver		   ? "none" :
		       json_is_string(ver) ? "another" :
					     "a non-string");
		goto out;
	}
	arr = json_object_get(root, "alerts");
	if (!json_is_array(arr)) {
		seterr(err, errlen, "alerts: missing or not an array");
		goto out;
	}
	cnt = json_array_size(arr);
	if (cnt > AM_MAX_ALERTS) {
		seterr(err, errlen, "alerts: %zu alerts, more than %d in one payload", cnt,
		       AM_MAX_ALERTS);
		goto out;
	}
	al = calloc(cnt ? cnt : 1, sizeof(*al));
	if (!al) {
		seterr(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < cnt; i++)
		if (parse_alert(json_array_get(arr, i), i, &al[i], err, errlen))
			goto out;
	*alerts = al;
	*n = cnt;
	al = NULL;
	rc = 0;
out:
	free(al);
	json_decref(root);
	return rc;
}

char *am_answer(const struct am_alert *alerts, size_t n, unsigned int *http_status)
{
	bool unknown = false, failed = false;
	json_t *root, *arr;
	char *s = NULL;
	size_t i;
	int rc;

	root = json_object();
	arr = json_array();
	if (!root || !arr) {
		json_decref(root);
		json_decref(arr);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const struct am_alert *a = &alerts[i];
		json_t *o;

		unknown |= a->outcome == AM_UNKNOWN_SERVICE;
		failed |= a->outcome == AM_FAILED;
		o = json_pack("{s:s, s:s, s:s}", "alertname", a->alertname, "status",
			      a->firing ? "firing" : "resolved", "outcome",
			      am_outcome_name(a->outcome));
		if (o && a->has_service &&
		    json_object_set_new(o, "service", json_string(a->service))) {
			json_decref(o);
			o = NULL;
		}
		/* json_array_append_new() takes o, also when it fails. */
		if (!o || json_array_append_new(arr, o))
			goto fail;
	}
	*http_status = failed ? 500 : unknown ? 404 : 200;
	if (json_object_set_new(root, "status", json_integer(*http_status)))
		goto fail;
	/* Taken by root, also on failure. */
	rc = json_object_set_new(root, "alerts", arr);
	arr = NULL;
	if (rc)
		goto fail;
	s = json_dumps(root, JSON_COMPACT);
fail:
	json_decref(arr);
	json_decref(root);
	return s;
}
