/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The [fleet] section (SPEC "Fleet"): where the fleet's etcd is, the fleet's
 * name (its key prefix) and this node's name. Absent section = a lone host.
 */
#ifndef SHIFT_FLEET_CONF_H
#define SHIFT_FLEET_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define CONF_FLEET_MAX_ENDPOINTS 8
#define CONF_FLEET_URL_LEN 256
#define CONF_FLEET_NAME_LEN 64
#define CONF_FLEET_PATH_LEN 4096

struct conf_fleet {
	bool enabled; /* a [fleet] section was given */
	int line; /* of the [fleet] header */
	char endpoints[CONF_FLEET_MAX_ENDPOINTS][CONF_FLEET_URL_LEN]; /* no trailing '/' */
	__u32 n_endpoints;
	char fleet[CONF_FLEET_NAME_LEN];
	char node[CONF_FLEET_NAME_LEN]; /* %H expanded */
	__u64 timeout_ns; /* etcd_timeout, default 2s */
	__u64 lease_ns; /* fleet_lease, default 5s */
	char cacert[CONF_FLEET_PATH_LEN], cert[CONF_FLEET_PATH_LEN], key[CONF_FLEET_PATH_LEN];
	int key_line[8]; /* where each key was set, for duplicates */
};

/* Defaults for a fresh [fleet] section. */
void conf_fleet_defaults(struct conf_fleet *f, int line);
/*
 * One "key = value" of [fleet]. 0; -ENOENT for an unknown key (hint, if any,
 * in why); -EINVAL with the reason in why. *dup_line is set when the key was
 * given before (then nothing is changed).
 */
int conf_fleet_set(struct conf_fleet *f, const char *key, char *val, int line, int *dup_line,
		   char *why, size_t wl);
/* Whole-section checks after the file is read (required keys). 0 or -EINVAL + why,
 * *line the line to blame. */
int conf_fleet_finish(struct conf_fleet *f, int *line, char *why, size_t wl);
/* etcd_cacert, etcd_cert, etcd_key readable by this process: 0, or -errno
 * with why naming the key and the file. */
int conf_fleet_files_check(const struct conf_fleet *f, char *why, size_t wl);
/* The same fleet, endpoints, node, timeouts and TLS files (not where the lines are). */
bool conf_fleet_equal(const struct conf_fleet *a, const struct conf_fleet *b);
/* The keys of [fleet] by index: "etcd_endpoints", ...; NULL past the last. */
const char *conf_fleet_key_name(unsigned i);
/* A fleet or node name: [A-Za-z0-9_.-]{1,63}. */
bool conf_fleet_name_ok(const char *s);

#endif
