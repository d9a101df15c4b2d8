/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A small streaming JSON writer into a growing buffer. Errors (ENOMEM, too
 * deep) latch `failed`; the caller checks once at the end. */
#ifndef SHIFT_JSON_H
#define SHIFT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define JSON_MAX_DEPTH 16

struct json {
	char *buf;
	size_t len, cap;
	int depth;
	bool first[JSON_MAX_DEPTH];
	bool failed;
};

void json_init(struct json *j);
void json_free(struct json *j);
/* key is NULL inside arrays and at the top level. */
void json_obj_open(struct json *j, const char *key);
void json_obj_close(struct json *j);
void json_arr_open(struct json *j, const char *key);
void json_arr_close(struct json *j);
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, __u64 v);
void json_i64(struct json *j, const char *key, long long v);
void json_double(struct json *j, const char *key, double v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);

#endif
