// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/errmsg.h"
#include "config/fleet_conf.h"
#include "config/units.h"

enum fkey { F_ENDPOINTS, F_FLEET, F_NODE, F_TIMEOUT, F_LEASE, F_CACERT, F_CERT, F_KEY, F__N };

static const char *const fkey_names[F__N] = {
	[F_ENDPOINTS] = "etcd_endpoints", [F_FLEET] = "fleet",	     [F_NODE] = "node",
	[F_TIMEOUT] = "etcd_timeout",	  [F_LEASE] = "fleet_lease", [F_CACERT] = "etcd_cacert",
	[F_CERT] = "etcd_cert",		  [F_KEY] = "etcd_key",
};

const char *conf_fleet_key_name(unsigned i)
{
	return i < F__N ? fkey_names[i] : NULL;
}

void conf_fleet_defaults(struct conf_fleet *f, int line)
{
	memset(f, 0, sizeof(*f));
	f->enabled = true;
	f->line = line;
	f->timeout_ns = 2 * UNITS_NS_PER_SEC;
	f->lease_ns = 5 * UNITS_NS_PER_SEC;
	strcpy(f->node, "%H");
}

bool conf_fleet_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= CONF_FLEET_NAME_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

static int set_endpoints(struct conf_fleet *f, char *val, char *why, size_t wl)
{
	char *save = NULL, *tok;
	__u32 n = 0;

	if (!*val || val[strlen(val) - 1] == ',' || strstr(val, ",,") || val[0] == ',') {
		seterr(why, wl, "a list of http:// or https:// URLs, e.g. http://10.0.0.1:2379");
		return -EINVAL;
	}
	for (tok = strtok_r(val, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t len;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		len = strlen(tok);
		while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		while (len && tok[len - 1] == '/')
			tok[--len] = '\0';
		if (strncmp(tok, "http://", 7) && strncmp(tok, "https://", 8)) {
			seterr(why, wl, "'%.80s' is not an http:// or https:// URL", tok);
			return -EINVAL;
		}
		if (len <= (size_t)(tok[4] == 's' ? 8 : 7) || len >= CONF_FLEET_URL_LEN ||
		    strpbrk(tok, " \t\"\\")) {
			seterr(why, wl, "'%.80s' is not a usable URL", tok);
			return -EINVAL;
		}
		if (n == CONF_FLEET_MAX_ENDPOINTS) {
			seterr(why, wl, "more than %d endpoints", CONF_FLEET_MAX_ENDPOINTS);
			return -EINVAL;
		}
		strcpy(f->endpoints[n++], tok);
	}
	f->n_endpoints = n;
	return 0;
}

static int set_node(struct conf_fleet *f, const char *val, char *why, size_t wl)
{
	char host[256];

	if (!strcmp(val, "%H")) {
		if (gethostname(host, sizeof(host))) {
			seterr(why, wl, "%%H: gethostname: %s", strerror(errno));
			return -EINVAL;
		}
		host[sizeof(host) - 1] = '\0';
		/* A short name: a node is named in logs and in fleet status. */
		host[strcspn(host, ".")] = '\0';
		val = host;
	}
	if (!conf_fleet_name_ok(val)) {
		seterr(why, wl, "'%.80s' is not a node name (1-63 of A-Z a-z 0-9 _ . -)", val);
		return -EINVAL;
	}
	strcpy(f->node, val);
	return 0;
}

static int set_file(char *dst, const char *val, char *why, size_t wl)
{
	if (val[0] != '/' || strlen(val) >= CONF_FLEET_PATH_LEN) {
		seterr(why, wl, "'%.80s' is not an absolute path", val);
		return -EINVAL;
	}
	strcpy(dst, val);
	return 0;
}

/*
 * The TLS files, readable: checked where etcd is spoken to (shiftd, a fleet
 * verb of shiftctl), not when the config is read, so that an operator in
 * control_socket_group runs status without the key shiftd keeps to itself.
 */
int conf_fleet_files_check(const struct conf_fleet *f, char *why, size_t wl)
{
	static const enum fkey keys[] = { F_CACERT, F_CERT, F_KEY };
	const char *paths[] = { f->cacert, f->cert, f->key };
	size_t i;

	if (!f->enabled)
		return 0;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (paths[i][0] && access(paths[i], R_OK)) {
			int err = errno;

			seterr(why, wl, "%s %.200s: %s", fkey_names[keys[i]], paths[i],
			       strerror(err));
			return -err;
		}
	}
	return 0;
}

int conf_fleet_set(struct conf_fleet *f, const char *key, char *val, int line, int *dup_line,
		   char *why, size_t wl)
{
	int k;

	*dup_line = 0;
	for (k = 0; k < F__N; k++)
		if (!strcmp(key, fkey_names[k]))
			break;
	if (k == F__N) {
		seterr(why, wl,
		       "expected etcd_endpoints, fleet, node, etcd_timeout, fleet_lease, "
		       "etcd_cacert, etcd_cert or etcd_key");
		return -ENOENT;
	}
	if (f->key_line[k]) {
		*dup_line = f->key_line[k];
		return -EINVAL;
	}
	f->key_line[k] = line;
	switch (k) {
	case F_ENDPOINTS:
		return set_endpoints(f, val, why, wl);
	case F_FLEET:
		if (!conf_fleet_name_ok(val)) {
			seterr(why, wl, "'%.80s' is not a fleet name (1-63 of A-Z a-z 0-9 _ . -)",
			       val);
			return -EINVAL;
		}
		strcpy(f->fleet, val);
		return 0;
	case F_NODE:
		return set_node(f, val, why, wl);
	case F_TIMEOUT:
		return units_parse_duration(val, 10 * UNITS_NS_PER_MS, 60 * UNITS_NS_PER_SEC,
					    &f->timeout_ns, why, wl) ?
			       -EINVAL :
			       0;
	case F_LEASE:
		/* etcd's minimum TTL is a few seconds; keepalives go every third. */
		return units_parse_duration(val, 2 * UNITS_NS_PER_SEC, 600 * UNITS_NS_PER_SEC,
					    &f->lease_ns, why, wl) ?
			       -EINVAL :
			       0;
	case F_CACERT:
		return set_file(f->cacert, val, why, wl);
	case F_CERT:
		return set_file(f->cert, val, why, wl);
	default:
		return set_file(f->key, val, why, wl);
	}
}

int conf_fleet_finish(struct conf_fleet *f, int *line, char *why, size_t wl)
{
	*line = f->line;
	if (!f->enabled)
		return 0;
	if (!f->n_endpoints) {
		seterr(why, wl, "[fleet] needs etcd_endpoints (e.g. http://10.0.0.1:2379)");
		return -EINVAL;
	}
	if (!f->fleet[0]) {
		seterr(why, wl, "[fleet] needs fleet = NAME (the key prefix every host shares)");
		return -EINVAL;
	}
	if (!strcmp(f->node, "%H") && set_node(f, "%H", why, wl))
		return -EINVAL;
	if (!f->cert[0] != !f->key[0]) {
		*line = f->key_line[F_CERT] ? f->key_line[F_CERT] : f->key_line[F_KEY];
		seterr(why, wl, "etcd_cert and etcd_key go together");
		return -EINVAL;
	}
	if (f->timeout_ns * 2 > f->lease_ns) {
		*line = f->key_line[F_TIMEOUT] > f->key_line[F_LEASE] ? f->key_line[F_TIMEOUT] :
									f->key_line[F_LEASE];
		seterr(why, wl, "etcd_timeout must be at most half of fleet_lease");
		return -EINVAL;
	}
	return 0;
}

bool conf_fleet_equal(const struct conf_fleet *a, const struct conf_fleet *b)
{
	__u32 i;

	if (a->enabled != b->enabled || a->n_endpoints != b->n_endpoints ||
	    strcmp(a->fleet, b->fleet) || strcmp(a->node, b->node) ||
	    a->timeout_ns != b->timeout_ns || a->lease_ns != b->lease_ns ||
	    strcmp(a->cacert, b->cacert) || strcmp(a->cert, b->cert) || strcmp(a->key, b->key))
		return false;
	for (i = 0; i < a->n_endpoints && i < CONF_FLEET_MAX_ENDPOINTS; i++)
		if (strcmp(a->endpoints[i], b->endpoints[i]))
			return false;
	return true;
}
