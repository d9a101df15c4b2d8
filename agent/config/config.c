// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/errmsg.h"
#include "config/addr.h"
#include "config/config.h"
#include <shift/shadow.h>
#include "config/units.h"
#include "config/weight.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Far above any real config; stops a wrong path (a disk image) being slurped. */
#define CONF_MAX_FILE (16u << 20)
#define WHY_LEN 256

enum gkey {
	G_INTERFACE,
	G_BACKEND_INTERFACE,
	G_XDP_MODE,
	G_HASH_SEED,
	G_BPFFS_DIR,
	G_STATE_DIR,
	G_TEXTFILE_DIR,
	G_CONTROL_SOCKET,
	G_CONTROL_SOCKET_GROUP,
	G_CONTROL_SOCKET_MODE,
	G_METRICS_INTERVAL,
	G_MAX_FLOWS,
	G_MAX_FLOWS6,
	G_SYN_SLOTS,
	G_NOTIFY_COMMAND,
	G_HTTP_LISTEN,
	G_HTTP_TOKEN_FILE,
	G_HEALTH_INTERVAL,
	G_HEALTH_TIMEOUT,
	G_HEALTH_RISE,
	G_HEALTH_FALL,
	/* Where the backends live: attach modes and source NAT. */
	G_ATTACH,
	G_SNAT,
	G_SNAT_PORTS,
	G__N,
};

enum skey {
	S_VIP,
	S_PROTOCOL,
	S_BLUE,
	S_GREEN,
	S_GREEN_WEIGHT,
	S_HEALTH_CHECK,
	S_HEALTH_INTERVAL,
	S_HEALTH_TIMEOUT,
	S_HEALTH_RISE,
	S_HEALTH_FALL,
	S_ROLLBACK_WINDOW,
	S_MIN_REQUESTS,
	S_MAX_ERROR_RATE,
	S_MAX_ERROR_RATE_INCREASE,
	S_MAX_LATENCY_P99,
	S_MAX_LATENCY_P95,
	S_MAX_LATENCY_RATIO,
	S_MAX_CONSECUTIVE_ERRORS,
	S_ROLLBACK_EVICT,
	S_CONNECT_FALLBACK,
	S_ANALYSIS,
	S_GREEN_SOURCES,
	S_BLUE_SOURCES,
	S_SHADOW,
	S_SHADOW_SAMPLE,
	S_SHADOW_METHODS,
	S_MAX_SHADOW_MISMATCH,
	/* Where the backends live: source NAT. */
	S_SNAT,
	S_SNAT_PORTS,
	/* Clients, not connections. */
	S_AFFINITY,
	S_AFFINITY_PREFIX4,
	S_AFFINITY_PREFIX6,
	S__N,
};

enum section { SEC_NONE, SEC_GLOBAL, SEC_SERVICE, SEC_FLEET };

/* Where each key of a service was set (0 = not set): for duplicates, defaults
 * that depend on other keys, and messages that point at the right line. */
struct svc_lines {
	int key[S__N];
};

struct parser {
	const char *name;
	char *err;
	size_t errlen;
	struct shift_conf *c;
	struct svc_lines *sl;
	__u32 cap;
	int line;
	enum section sec;
	__u32 cur; /* index of the current service */
	int global_line;
	int gline[G__N];
	/* [global] health defaults, merged into services once the file is read. */
	__u64 hc_interval_ns, hc_timeout_ns;
	__u32 hc_rise, hc_fall;
};

struct key_def {
	const char *name;
	int (*set)(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl);
};

/* "FILE:LINE: reason", or "FILE: reason" for line 0. */
static int __attribute__((format(printf, 3, 4)))
fail(struct parser *ps, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		seterr(ps->err, ps->errlen, "%s:%d: %s", ps->name, line, msg);
	else
		seterr(ps->err, ps->errlen, "%s: %s", ps->name, msg);
	return -EINVAL;
}

/* Bytes of the file echoed in a message: printable only, so a stray escape
 * sequence cannot repaint the operator's terminal. */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 4 < len; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s[i])
		memcpy(buf + i, "...", 4);
	else
		buf[i] = '\0';
	return buf;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static char *trim(char *s)
{
	char *e;

	while (is_ws(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_ws(e[-1]))
		*--e = '\0';
	return s;
}

static bool in_charset(const char *s, const char *extra)
{
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return false;
	}
	return true;
}

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

static const char *family_name(__u8 family)
{
	return family == SHIFT_AF_INET6 ? "IPv6" : "IPv4";
}

/*
 * Split a comma-separated value in place. An empty value is an empty list;
 * an empty item (",," or a trailing comma) is refused: it is always a typo.
 */
static int split_list(char *val, char **items, size_t max, size_t *n, const char *what, char *why,
		      size_t wl)
{
	char *p = val, *comma;

	*n = 0;
	if (!*val)
		return 0;
	for (;;) {
		comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		p = trim(p);
		if (!*p) {
			seterr(why, wl, "empty item in the list (a stray comma?)");
			return -EINVAL;
		}
		if (*n == max) {
			seterr(why, wl, "more than %zu %s", max, what);
			return -EINVAL;
		}
		items[(*n)++] = p;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

static struct conf_service *cur_svc(struct parser *ps)
{
	return &ps->c->services[ps->cur];
}

/* --- [global] --------------------------------------------------------------- */

static int check_ifname(const char *s, char *why, size_t wl)
{
	char b[40];

	if (!*s || strlen(s) >= CONF_IFNAMSIZ || !in_charset(s, "_.:@-")) {
		seterr(why, wl, "'%s' is not an interface name (1-15 of A-Z a-z 0-9 _ . : @ -)",
		       printable(s, b, sizeof(b)));
		return -EINVAL;
	}
	return 0;
}

static int set_interface(struct parser *ps, const struct key_def *k, char *val, char *why,
			 size_t wl)
{
	char *items[CONF_MAX_INTERFACES];
	size_t n, i, j;

	(void)k;
	if (split_list(val, items, CONF_MAX_INTERFACES, &n, "interfaces", why, wl))
		return -EINVAL;
	if (!n) {
		seterr(why, wl, "empty; name the client-facing NIC(s), e.g. eth0");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (check_ifname(items[i], why, wl))
			return -EINVAL;
		for (j = 0; j < i; j++) {
			if (!strcmp(items[i], items[j])) {
				seterr(why, wl, "'%s' is listed twice", items[i]);
				return -EINVAL;
			}
		}
		strcpy(ps->c->interfaces[i], items[i]);
	}
	ps->c->n_interfaces = (__u32)n;
	return 0;
}

static int set_backend_interface(struct parser *ps, const struct key_def *k, char *val, char *why,
				 size_t wl)
{
	(void)k;
	if (check_ifname(val, why, wl))
		return -EINVAL;
	strcpy(ps->c->backend_interface, val);
	return 0;
}

static int set_xdp_mode(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	char b[40];

	(void)k;
	if (!strcmp(val, "auto"))
		ps->c->xdp_mode = CONF_XDP_AUTO;
	else if (!strcmp(val, "native"))
		ps->c->xdp_mode = CONF_XDP_NATIVE;
	else if (!strcmp(val, "generic"))
		ps->c->xdp_mode = CONF_XDP_GENERIC;
	else {
		seterr(why, wl, "'%s' is not auto, native or generic",
		       printable(val, b, sizeof(b)));
		return -EINVAL;
	}
	return 0;
}

static int set_attach(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	char b[40];

	(void)k;
	if (!strcmp(val, "auto"))
		ps->c->attach = CONF_ATTACH_AUTO;
	else if (!strcmp(val, "xdp"))
		ps->c->attach = CONF_ATTACH_XDP;
	else if (!strcmp(val, "tc"))
		ps->c->attach = CONF_ATTACH_TC;
	else {
		seterr(why, wl, "'%s' is not auto, xdp or tc", printable(val, b, sizeof(b)));
		return -EINVAL;
	}
	return 0;
}

static int set_hash_seed(struct parser *ps, const struct key_def *k, char *val, char *why,
			 size_t wl)
{
	(void)k;
	return units_parse_seed(val, &ps->c->hash_seed, why, wl) ? -EINVAL : 0;
}

static int check_path(const char *val, size_t max, char *why, size_t wl)
{
	char b[64];
	const char *p;

	if (val[0] != '/') {
		seterr(why, wl, "'%s' is not an absolute path", printable(val, b, sizeof(b)));
		return -EINVAL;
	}
	if (strlen(val) >= max) {
		seterr(why, wl, "path longer than %zu characters", max - 1);
		return -EINVAL;
	}
	for (p = val; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			seterr(why, wl, "control character in path '%s'",
			       printable(val, b, sizeof(b)));
			return -EINVAL;
		}
	}
	return 0;
}

static int set_path(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	struct shift_conf *c = ps->c;
	size_t max = CONF_PATH_LEN;
	char *dst;

	if (!strcmp(k->name, "bpffs_dir")) {
		dst = c->bpffs_dir;
	} else if (!strcmp(k->name, "state_dir")) {
		dst = c->state_dir;
	} else if (!strcmp(k->name, "textfile_dir")) {
		dst = c->textfile_dir;
	} else if (!strcmp(k->name, "http_token_file")) {
		dst = c->http_token_file;
	} else if (!strcmp(k->name, "control_socket")) {
		/* bind() takes no more than sun_path holds; better to hear it now. */
		max = sizeof(((struct sockaddr_un *)0)->sun_path);
		dst = c->control_socket;
	} else {
		/* notify_command: empty means none. */
		dst = c->notify_command;
		if (!*val) {
			dst[0] = '\0';
			return 0;
		}
		/* It is spawned without a shell, so "prog --flag" would name no program. */
		if (strpbrk(val, " \t")) {
			seterr(why, wl,
			       "the program's path only, no arguments: it runs without a shell");
			return -EINVAL;
		}
	}
	if (check_path(val, max, why, wl))
		return -EINVAL;
	strcpy(dst, val);
	return 0;
}

/* http_listen: ADDR:PORT to serve the HTTP API on ("0.0.0.0:9310" for every address). */
static int set_http_listen(struct parser *ps, const struct key_def *k, char *val, char *why,
			   size_t wl)
{
	struct shift_addr_key key;

	(void)k;
	memset(&key, 0, sizeof(key));
	if (addr_parse_endpoint(val, &key, why, wl))
		return -EINVAL;
	if ((key.family == SHIFT_AF_INET && (ntohl(key.addr[0]) >> 28) == 0xe) ||
	    (key.family == SHIFT_AF_INET6 && (ntohl(key.addr[0]) >> 24) == 0xff)) {
		seterr(why, wl, "a multicast address cannot be listened on");
		return -EINVAL;
	}
	key.proto = IPPROTO_TCP;
	ps->c->http_listen = key;
	ps->c->http_enabled = true;
	return 0;
}

static int set_socket_group(struct parser *ps, const struct key_def *k, char *val, char *why,
			    size_t wl)
{
	char b[40];

	(void)k;
	if (strlen(val) >= CONF_GROUP_LEN || val[0] == '-' || !in_charset(val, "_.-")) {
		seterr(why, wl, "'%s' is not a group name", printable(val, b, sizeof(b)));
		return -EINVAL;
	}
	strcpy(ps->c->control_socket_group, val);
	return 0;
}

static int set_socket_mode(struct parser *ps, const struct key_def *k, char *val, char *why,
			   size_t wl)
{
	__u32 mode;

	(void)k;
	if (units_parse_octal(val, 07777, &mode, why, wl))
		return -EINVAL;
	/* The socket is the agent's control: only its owner, or owner + group. */
	if (mode != 0600 && mode != 0660) {
		seterr(why, wl, "%#o is not allowed; use 0600 (root only) or 0660 (with group)",
		       mode);
		return -EINVAL;
	}
	ps->c->control_socket_mode = mode;
	return 0;
}

static int set_metrics_interval(struct parser *ps, const struct key_def *k, char *val, char *why,
				size_t wl)
{
	(void)k;
	/* 100ms: a tick, the finest the agent can keep; seconds is what a scraper needs. */
	return units_parse_duration(val, 100 * UNITS_NS_PER_MS, 3600 * UNITS_NS_PER_SEC,
				    &ps->c->metrics_interval_ns, why, wl) ?
		       -EINVAL :
		       0;
}

static int set_max_flows(struct parser *ps, const struct key_def *k, char *val, char *why,
			 size_t wl)
{
	__u32 *dst = !strcmp(k->name, "max_flows") ? &ps->c->max_flows : &ps->c->max_flows6;

	return units_parse_u32(val, 1024, 67108864, dst, why, wl) ? -EINVAL : 0;
}

/* The datapath indexes the array by the flow hash's low bits. */
static int set_syn_slots(struct parser *ps, const struct key_def *k, char *val, char *why,
			 size_t wl)
{
	__u32 n;

	(void)k;
	if (units_parse_u32(val, SHIFT_SYN_SLOTS_MIN, SHIFT_SYN_SLOTS_MAX, &n, why, wl))
		return -EINVAL;
	if (n & (n - 1)) {
		seterr(why, wl, "%u is not a power of two", n);
		return -EINVAL;
	}
	ps->c->syn_slots = n;
	return 0;
}

/* health_interval/timeout/rise/fall: [global] defaults or a service's own. */
static int set_health_param(struct parser *ps, const struct key_def *k, char *val, char *why,
			    size_t wl)
{
	bool g = ps->sec == SEC_GLOBAL;
	struct conf_service *s = g ? NULL : cur_svc(ps);

	/* 10 ms: below it a check costs more than it tells (a loaded host's
	 * scheduling noise is of that order); each backend has its own timers. */
	if (!strcmp(k->name, "health_interval"))
		return units_parse_duration(val, 10 * UNITS_NS_PER_MS, 3600 * UNITS_NS_PER_SEC,
					    g ? &ps->hc_interval_ns : &s->health_interval_ns, why,
					    wl) ?
			       -EINVAL :
			       0;
	if (!strcmp(k->name, "health_timeout"))
		return units_parse_duration(val, UNITS_NS_PER_MS, 3600 * UNITS_NS_PER_SEC,
					    g ? &ps->hc_timeout_ns : &s->health_timeout_ns, why,
					    wl) ?
			       -EINVAL :
			       0;
	if (!strcmp(k->name, "health_rise"))
		return units_parse_u32(val, 1, 100, g ? &ps->hc_rise : &s->health_rise, why, wl) ?
			       -EINVAL :
			       0;
	return units_parse_u32(val, 1, 100, g ? &ps->hc_fall : &s->health_fall, why, wl) ? -EINVAL :
											   0;
}

/* --- source NAT ([global] or [service]) ----------------------------------------- */

static const char *not_unicast(const struct shift_addr_key *k);

static struct conf_snat *snat_target(struct parser *ps)
{
	return ps->sec == SEC_GLOBAL ? &ps->c->snat : &cur_svc(ps)->snat_own;
}

/* snat = ADDR[, ADDR...] | none: addresses of this edge host, either family. */
static int set_snat(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	struct conf_snat *t = snat_target(ps);
	char *items[CONF_MAX_SNAT + 1], b[48];
	__u32 per_family[2] = { 0, 0 };
	struct shift_addr_key key;
	const char *bad;
	size_t n, i, j;

	(void)k;
	t->n = 0;
	if (!strcmp(val, "none") || !strcmp(val, "off"))
		return 0;
	if (split_list(val, items, CONF_MAX_SNAT, &n, "snat addresses", why, wl))
		return -EINVAL;
	if (!n) {
		seterr(why, wl, "empty (write 'none' for no source NAT)");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		memset(&key, 0, sizeof(key));
		if (inet_pton(AF_INET, items[i], key.addr) == 1) {
			key.family = SHIFT_AF_INET;
		} else if (inet_pton(AF_INET6, items[i], key.addr) == 1) {
			key.family = SHIFT_AF_INET6;
		} else {
			seterr(why, wl, "'%s' is not an IPv4 or IPv6 address",
			       printable(items[i], b, sizeof(b)));
			return -EINVAL;
		}
		bad = not_unicast(&key);
		if (bad) {
			seterr(why, wl, "%s is %s", items[i], bad);
			return -EINVAL;
		}
		if (++per_family[key.family == SHIFT_AF_INET6] > SHIFT_SNAT_MAX_ADDRS) {
			seterr(why, wl, "more than %d %s addresses", SHIFT_SNAT_MAX_ADDRS,
			       key.family == SHIFT_AF_INET6 ? "IPv6" : "IPv4");
			return -EINVAL;
		}
		for (j = 0; j < t->n; j++) {
			if (t->family[j] == key.family &&
			    !memcmp(t->addr[j], key.addr, sizeof(key.addr))) {
				seterr(why, wl, "%s is listed twice", items[i]);
				return -EINVAL;
			}
		}
		t->family[t->n] = key.family;
		memcpy(t->addr[t->n], key.addr, sizeof(key.addr));
		t->n++;
	}
	return 0;
}

/* snat_ports = LO-HI, 1..65535. */
static int set_snat_ports(struct parser *ps, const struct key_def *k, char *val, char *why,
			  size_t wl)
{
	struct conf_snat *t = snat_target(ps);
	unsigned long lo, hi;
	char *end, b[40];

	(void)k;
	errno = 0;
	lo = strtoul(val, &end, 10);
	if (end == val || *end != '-' || !isdigit((unsigned char)end[1]))
		goto bad;
	hi = strtoul(end + 1, &end, 10);
	if (*end || errno)
		goto bad;
	if (lo < 1 || hi > 65535 || lo > hi) {
		seterr(why, wl, "%lu-%lu is not a range within 1-65535", lo, hi);
		return -EINVAL;
	}
	t->port_lo = (__u16)lo;
	t->port_hi = (__u16)hi;
	return 0;
bad:
	seterr(why, wl, "'%s' is not LO-HI (e.g. 1024-65535)", printable(val, b, sizeof(b)));
	return -EINVAL;
}

static const struct key_def global_keys[G__N] = {
	[G_INTERFACE] = { "interface", set_interface },
	[G_BACKEND_INTERFACE] = { "backend_interface", set_backend_interface },
	[G_XDP_MODE] = { "xdp_mode", set_xdp_mode },
	[G_HASH_SEED] = { "hash_seed", set_hash_seed },
	[G_BPFFS_DIR] = { "bpffs_dir", set_path },
	[G_STATE_DIR] = { "state_dir", set_path },
	[G_TEXTFILE_DIR] = { "textfile_dir", set_path },
	[G_CONTROL_SOCKET] = { "control_socket", set_path },
	[G_CONTROL_SOCKET_GROUP] = { "control_socket_group", set_socket_group },
	[G_CONTROL_SOCKET_MODE] = { "control_socket_mode", set_socket_mode },
	[G_METRICS_INTERVAL] = { "metrics_interval", set_metrics_interval },
	[G_MAX_FLOWS] = { "max_flows", set_max_flows },
	[G_MAX_FLOWS6] = { "max_flows6", set_max_flows },
	[G_SYN_SLOTS] = { "syn_slots", set_syn_slots },
	[G_NOTIFY_COMMAND] = { "notify_command", set_path },
	[G_HTTP_LISTEN] = { "http_listen", set_http_listen },
	[G_HTTP_TOKEN_FILE] = { "http_token_file", set_path },
	[G_HEALTH_INTERVAL] = { "health_interval", set_health_param },
	[G_HEALTH_TIMEOUT] = { "health_timeout", set_health_param },
	[G_HEALTH_RISE] = { "health_rise", set_health_param },
	[G_HEALTH_FALL] = { "health_fall", set_health_param },
	[G_ATTACH] = { "attach", set_attach },
	[G_SNAT] = { "snat", set_snat },
	[G_SNAT_PORTS] = { "snat_ports", set_snat_ports },
};

/* --- [service NAME] ----------------------------------------------------------- */

/* Addresses a VIP or backend can never be: the datapath would never see them. */
static const char *not_unicast(const struct shift_addr_key *k)
{
	static const __u32 zero[4];
	__u32 a = ntohl(k->addr[0]);

	if (k->family == SHIFT_AF_INET) {
		if (!a)
			return "the unspecified address";
		if ((a >> 24) == 127)
			return "a loopback address";
		if ((a >> 28) == 0xe)
			return "a multicast address";
		if (a == 0xffffffffu)
			return "the broadcast address";
		return NULL;
	}
	if (!memcmp(k->addr, zero, sizeof(zero)))
		return "the unspecified address";
	if ((a >> 24) == 0xff)
		return "a multicast address";
	if (!k->addr[0] && !k->addr[1] && !k->addr[2] && k->addr[3] == htonl(1))
		return "a loopback address";
	/* What ss prints for an IPv4 peer of a dual-stack socket: the datapath
	 * would send IPv6 packets to it, which nothing routes, while a health
	 * check's IPv6 socket reaches the IPv4 backend and says it is up. */
	if (!k->addr[0] && !k->addr[1] && k->addr[2] == htonl(0xffff))
		return "an IPv4-mapped address (write the IPv4 address itself)";
	/* Which link? The config cannot say (no zone), nor the FIB without one. */
	if ((a >> 22) == (0xfe80u >> 6))
		return "a link-local address";
	return NULL;
}

static int parse_unicast(const char *s, struct shift_addr_key *k, char *why, size_t wl)
{
	char b[ADDR_ENDPOINT_LEN];
	const char *what;

	if (addr_parse_endpoint(s, k, why, wl))
		return -EINVAL;
	what = not_unicast(k);
	if (what) {
		seterr(why, wl, "%s is %s", addr_format_endpoint(k, b, sizeof(b)), what);
		return -EINVAL;
	}
	return 0;
}

static int set_vip(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	(void)k;
	return parse_unicast(val, &cur_svc(ps)->vip, why, wl);
}

static int set_protocol(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	char b[40];

	(void)k;
	/* Kept in vip.proto, which parsing the vip leaves alone. */
	if (!strcmp(val, "tcp"))
		cur_svc(ps)->vip.proto = IPPROTO_TCP;
	else if (!strcmp(val, "udp"))
		cur_svc(ps)->vip.proto = IPPROTO_UDP;
	else {
		seterr(why, wl, "'%s' is not tcp or udp", printable(val, b, sizeof(b)));
		return -EINVAL;
	}
	return 0;
}

static int set_pool(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	struct conf_service *s = cur_svc(ps);
	bool blue = !strcmp(k->name, "blue");
	struct shift_addr_key *pool = blue ? s->blue : s->green;
	char *items[SHIFT_MAX_POOL_BACKENDS];
	size_t n, i;

	if (split_list(val, items, SHIFT_MAX_POOL_BACKENDS, &n, "backends", why, wl))
		return -EINVAL;
	if (!n && blue) {
		seterr(why, wl, "empty; blue needs at least one backend");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		memset(&pool[i], 0, sizeof(pool[i]));
		if (parse_unicast(items[i], &pool[i], why, wl))
			return -EINVAL;
	}
	if (blue)
		s->n_blue = (__u32)n;
	else
		s->n_green = (__u32)n;
	return 0;
}

static int set_green_weight(struct parser *ps, const struct key_def *k, char *val, char *why,
			    size_t wl)
{
	(void)k;
	return weight_parse(val, &cur_svc(ps)->green_weight, why, wl) ? -EINVAL : 0;
}

static int set_health_check(struct parser *ps, const struct key_def *k, char *val, char *why,
			    size_t wl)
{
	struct conf_service *s = cur_svc(ps);
	char b[40];
	const char *p;

	(void)k;
	if (!strcmp(val, "none")) {
		s->health = CONF_HC_NONE;
		return 0;
	}
	if (!strcmp(val, "tcp")) {
		s->health = CONF_HC_TCP;
		return 0;
	}
	if (strncmp(val, "http:", 5)) {
		seterr(why, wl, "'%s' is not http:/PATH, tcp or none",
		       printable(val, b, sizeof(b)));
		return -EINVAL;
	}
	p = val + 5;
	if (p[0] != '/') {
		seterr(why, wl, "the HTTP path must start with '/', e.g. http:/readyz");
		return -EINVAL;
	}
	if (strlen(p) >= CONF_HEALTH_PATH_LEN) {
		seterr(why, wl, "HTTP path longer than %d characters", CONF_HEALTH_PATH_LEN - 1);
		return -EINVAL;
	}
	for (; *p; p++) {
		/* It goes verbatim into a request line. */
		if (*p <= 0x20 || *p >= 0x7f) {
			seterr(why, wl,
			       "the HTTP path may not contain spaces or control characters");
			return -EINVAL;
		}
	}
	s->health = CONF_HC_HTTP;
	strcpy(s->health_path, val + 5);
	return 0;
}

static int set_window(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	(void)k;
	return units_parse_duration(val, UNITS_NS_PER_SEC, 3600 * UNITS_NS_PER_SEC,
				    &cur_svc(ps)->window_ns, why, wl) ?
		       -EINVAL :
		       0;
}

static int set_min_requests(struct parser *ps, const struct key_def *k, char *val, char *why,
			    size_t wl)
{
	(void)k;
	return units_parse_u32(val, 1, 1000000, &cur_svc(ps)->min_requests, why, wl) ? -EINVAL : 0;
}

static int set_error_rate(struct parser *ps, const struct key_def *k, char *val, char *why,
			  size_t wl)
{
	struct conf_service *s = cur_svc(ps);
	double *dst = !strcmp(k->name, "max_error_rate") ? &s->max_error_rate :
							   &s->max_error_rate_increase;

	if (!strcmp(val, "off")) {
		*dst = -1.0;
		return 0;
	}
	return units_parse_percent(val, dst, why, wl) ? -EINVAL : 0;
}

static int set_latency(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	struct conf_service *s = cur_svc(ps);
	__u64 *dst = !strcmp(k->name, "max_latency_p99") ? &s->max_latency_p99_ns :
							   &s->max_latency_p95_ns;

	__u64 ns;

	if (!strcmp(val, "off")) {
		*dst = 0;
		return 0;
	}
	if (units_parse_duration(val, UNITS_NS_PER_US, UINT64_MAX, &ns, why, wl))
		return -EINVAL;
	if (ns > CONF_LATENCY_LIMIT_MAX_NS) {
		snprintf(why, wl,
			 "'%.64s' is above 2m: latencies are measured up to 134 s, so a longer "
			 "limit could never fire",
			 val);
		return -EINVAL;
	}
	*dst = ns;
	return 0;
}

static int set_latency_ratio(struct parser *ps, const struct key_def *k, char *val, char *why,
			     size_t wl)
{
	(void)k;
	if (!strcmp(val, "off")) {
		cur_svc(ps)->max_latency_ratio = 0;
		return 0;
	}
	return units_parse_ratio(val, 1.0, 1000.0, &cur_svc(ps)->max_latency_ratio, why, wl) ?
		       -EINVAL :
		       0;
}

static int set_consecutive(struct parser *ps, const struct key_def *k, char *val, char *why,
			   size_t wl)
{
	(void)k;
	if (!strcmp(val, "off")) {
		cur_svc(ps)->max_consecutive_errors = 0;
		return 0;
	}
	return units_parse_u32(val, 0, 1000000, &cur_svc(ps)->max_consecutive_errors, why, wl) ?
		       -EINVAL :
		       0;
}

static int set_evict(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	(void)k;
	return units_parse_bool(val, &cur_svc(ps)->rollback_evict, why, wl) ? -EINVAL : 0;
}

static int set_fallback(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	(void)k;
	return units_parse_bool(val, &cur_svc(ps)->connect_fallback, why, wl) ? -EINVAL : 0;
}

static int set_analysis(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	char b[40];

	(void)k;
	cur_svc(ps)->analysis_auto = false;
	cur_svc(ps)->analysis_connect = false;
	if (!strcmp(val, "auto"))
		cur_svc(ps)->analysis_auto = true;
	else if (!strcmp(val, "tcp"))
		cur_svc(ps)->analysis_connect = true;
	else if (strcmp(val, "http")) {
		seterr(why, wl, "'%s' is not auto, http or tcp", printable(val, b, sizeof(b)));
		return -EINVAL;
	}
	return 0;
}

static bool same_cidr(const struct conf_cidr *a, const struct conf_cidr *b)
{
	return a->family == b->family && a->prefixlen == b->prefixlen &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static char *format_cidr(const struct conf_cidr *c, char *buf, size_t len)
{
	char a[ADDR_ENDPOINT_LEN];

	snprintf(buf, len, "%s/%u", addr_format(c->family, c->addr, a, sizeof(a)), c->prefixlen);
	return buf;
}

static int set_sources(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	struct conf_service *s = cur_svc(ps);
	bool green = !strcmp(k->name, "green_sources");
	struct conf_cidr *list = green ? s->green_sources : s->blue_sources;
	__u32 other = green ? s->n_blue_sources : s->n_green_sources;
	char *items[CONF_MAX_SOURCES];
	char b[ADDR_ENDPOINT_LEN + 8];
	size_t n, i, j;

	if (split_list(val, items, CONF_MAX_SOURCES, &n, "prefixes", why, wl))
		return -EINVAL;
	if (n + other > CONF_MAX_SOURCES) {
		seterr(why, wl, "more than %d source prefixes in this service (green + blue)",
		       CONF_MAX_SOURCES);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		memset(&list[i], 0, sizeof(list[i]));
		if (addr_parse_cidr(items[i], &list[i].family, list[i].addr, &list[i].prefixlen,
				    why, wl))
			return -EINVAL;
		list[i].line = ps->line;
		for (j = 0; j < i; j++) {
			if (same_cidr(&list[i], &list[j])) {
				seterr(why, wl, "%s is listed twice",
				       format_cidr(&list[i], b, sizeof(b)));
				return -EINVAL;
			}
		}
	}
	if (green)
		s->n_green_sources = (__u32)n;
	else
		s->n_blue_sources = (__u32)n;
	return 0;
}

static int set_shadow(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	struct conf_service *s = cur_svc(ps);
	char b[40];

	if (!strcmp(k->name, "shadow")) {
		if (!strcmp(val, "on") || !strcmp(val, "off")) {
			s->shadow = val[1] == 'n';
			return 0;
		}
		seterr(why, wl, "'%s' is not on or off", printable(val, b, sizeof(b)));
		return -EINVAL;
	}
	if (!strcmp(k->name, "shadow_sample")) {
		if (weight_parse(val, &s->shadow_sample_bp, why, wl))
			return -EINVAL;
		if (!s->shadow_sample_bp) {
			seterr(why, wl, "0%% samples nothing: set shadow = off instead");
			return -EINVAL;
		}
		return 0;
	}
	return units_parse_percent(val, &s->max_shadow_mismatch, why, wl) ? -EINVAL : 0;
}

static const char *const shadow_method_names[SHIFT_M__COUNT] = {
	[SHIFT_M_GET] = "GET",	       [SHIFT_M_HEAD] = "HEAD",	    [SHIFT_M_POST] = "POST",
	[SHIFT_M_PUT] = "PUT",	       [SHIFT_M_DELETE] = "DELETE", [SHIFT_M_PATCH] = "PATCH",
	[SHIFT_M_OPTIONS] = "OPTIONS",
};

const char *conf_shadow_method_name(unsigned m)
{
	return m < SHIFT_M__COUNT ? shadow_method_names[m] : NULL;
}

static int set_shadow_methods(struct parser *ps, const struct key_def *k, char *val, char *why,
			      size_t wl)
{
	char *items[SHIFT_M__COUNT + 1], b[40];
	__u32 mask = 0;
	size_t n, i;
	unsigned m;

	(void)k;
	if (split_list(val, items, SHIFT_M__COUNT + 1, &n, "methods", why, wl))
		return -EINVAL;
	if (!n) {
		seterr(why, wl, "no method listed (e.g. GET, HEAD)");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		for (m = 0; m < SHIFT_M__COUNT && strcmp(items[i], shadow_method_names[m]); m++)
			;
		if (m == SHIFT_M__COUNT) {
			seterr(why, wl,
			       "'%s' is not a method shadow can replay (GET HEAD POST PUT DELETE "
			       "PATCH OPTIONS, upper case)",
			       printable(items[i], b, sizeof(b)));
			return -EINVAL;
		}
		mask |= 1u << m;
	}
	cur_svc(ps)->shadow_methods = mask;
	return 0;
}

/* affinity = flow | client; affinity_prefix4 = 0..32; affinity_prefix6 = 0..128. */
static int set_affinity(struct parser *ps, const struct key_def *k, char *val, char *why, size_t wl)
{
	struct conf_service *s = cur_svc(ps);
	char b[40];

	if (!strcmp(k->name, "affinity_prefix4"))
		return units_parse_u32(val, 0, 32, &s->affinity_prefix4, why, wl) ? -EINVAL : 0;
	if (!strcmp(k->name, "affinity_prefix6"))
		return units_parse_u32(val, 0, 128, &s->affinity_prefix6, why, wl) ? -EINVAL : 0;
	if (!strcmp(val, "flow") || !strcmp(val, "client")) {
		s->affinity_client = val[0] == 'c';
		return 0;
	}
	seterr(why, wl, "'%s' is not flow or client", printable(val, b, sizeof(b)));
	return -EINVAL;
}

static const struct key_def service_keys[S__N] = {
	[S_VIP] = { "vip", set_vip },
	[S_PROTOCOL] = { "protocol", set_protocol },
	[S_BLUE] = { "blue", set_pool },
	[S_GREEN] = { "green", set_pool },
	[S_GREEN_WEIGHT] = { "green_weight", set_green_weight },
	[S_HEALTH_CHECK] = { "health_check", set_health_check },
	[S_HEALTH_INTERVAL] = { "health_interval", set_health_param },
	[S_HEALTH_TIMEOUT] = { "health_timeout", set_health_param },
	[S_HEALTH_RISE] = { "health_rise", set_health_param },
	[S_HEALTH_FALL] = { "health_fall", set_health_param },
	[S_ROLLBACK_WINDOW] = { "rollback_window", set_window },
	[S_MIN_REQUESTS] = { "min_requests", set_min_requests },
	[S_MAX_ERROR_RATE] = { "max_error_rate", set_error_rate },
	[S_MAX_ERROR_RATE_INCREASE] = { "max_error_rate_increase", set_error_rate },
	[S_MAX_LATENCY_P99] = { "max_latency_p99", set_latency },
	[S_MAX_LATENCY_P95] = { "max_latency_p95", set_latency },
	[S_MAX_LATENCY_RATIO] = { "max_latency_ratio", set_latency_ratio },
	[S_MAX_CONSECUTIVE_ERRORS] = { "max_consecutive_errors", set_consecutive },
	[S_ROLLBACK_EVICT] = { "rollback_evict", set_evict },
	[S_CONNECT_FALLBACK] = { "connect_fallback", set_fallback },
	[S_ANALYSIS] = { "analysis", set_analysis },
	[S_GREEN_SOURCES] = { "green_sources", set_sources },
	[S_BLUE_SOURCES] = { "blue_sources", set_sources },
	[S_SHADOW] = { "shadow", set_shadow },
	[S_SHADOW_SAMPLE] = { "shadow_sample", set_shadow },
	[S_SHADOW_METHODS] = { "shadow_methods", set_shadow_methods },
	[S_MAX_SHADOW_MISMATCH] = { "max_shadow_mismatch", set_shadow },
	[S_SNAT] = { "snat", set_snat },
	[S_SNAT_PORTS] = { "snat_ports", set_snat_ports },
	[S_AFFINITY] = { "affinity", set_affinity },
	[S_AFFINITY_PREFIX4] = { "affinity_prefix4", set_affinity },
	[S_AFFINITY_PREFIX6] = { "affinity_prefix6", set_affinity },
};

/* --- lines and sections ------------------------------------------------------ */

static int find_key(const struct key_def *tab, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!strcmp(tab[i].name, key))
			return (int)i;
	}
	return -1;
}

/* Levenshtein distance, capped: only "is it a near miss" matters. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64], prev, tmp;

	if (la >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb];
}

static int unknown_key(struct parser *ps, const char *key, const struct key_def *tab, size_t n)
{
	const struct key_def *other = ps->sec == SEC_GLOBAL ? service_keys : global_keys;
	size_t nother = ps->sec == SEC_GLOBAL ? ARRAY_SIZE(service_keys) : ARRAY_SIZE(global_keys);
	char where[96], hint[96] = "", b[64];
	size_t i, best = 3, d;

	if (ps->sec == SEC_GLOBAL)
		snprintf(where, sizeof(where), "[global]");
	else
		snprintf(where, sizeof(where), "[service %s]", cur_svc(ps)->name);
	if (find_key(other, nother, key) >= 0) {
		snprintf(hint, sizeof(hint), " ('%s' belongs in %s)", key,
			 ps->sec == SEC_GLOBAL ? "[service NAME]" : "[global]");
	} else {
		for (i = 0; i < n; i++) {
			d = edit_distance(key, tab[i].name);
			if (d < best) {
				best = d;
				snprintf(hint, sizeof(hint), " (did you mean '%s'?)", tab[i].name);
			}
		}
	}
	return fail(ps, ps->line, "unknown key '%s' in %s%s", printable(key, b, sizeof(b)), where,
		    hint);
}

static int open_service(struct parser *ps, const char *name)
{
	struct shift_conf *c = ps->c;
	struct conf_service *s;
	char b[80];
	__u32 i, ncap;
	void *p;

	if (!*name)
		return fail(ps, ps->line, "[service] needs a name: [service NAME]");
	if (strlen(name) >= CONF_NAME_LEN || !in_charset(name, "_.-"))
		return fail(ps, ps->line, "'%s' is not a service name (1-63 of A-Z a-z 0-9 _ . -)",
			    printable(name, b, sizeof(b)));
	for (i = 0; i < c->n_services; i++) {
		if (!strcmp(c->services[i].name, name))
			return fail(ps, ps->line, "duplicate service '%s' (first at line %d)", name,
				    c->services[i].line);
	}
	if (c->n_services == SHIFT_MAX_SERVICES)
		return fail(ps, ps->line, "more than %d services", SHIFT_MAX_SERVICES);
	if (c->n_services == ps->cap) {
		ncap = ps->cap ? ps->cap * 2 : 4;
		if (ncap > SHIFT_MAX_SERVICES)
			ncap = SHIFT_MAX_SERVICES;
		p = realloc(c->services, ncap * sizeof(*c->services));
		if (!p)
			return fail(ps, ps->line, "out of memory");
		c->services = p;
		p = realloc(ps->sl, ncap * sizeof(*ps->sl));
		if (!p)
			return fail(ps, ps->line, "out of memory");
		ps->sl = p;
		ps->cap = ncap;
	}
	ps->cur = c->n_services++;
	s = &c->services[ps->cur];
	memset(s, 0, sizeof(*s));
	memset(&ps->sl[ps->cur], 0, sizeof(ps->sl[ps->cur]));
	strcpy(s->name, name);
	s->line = ps->line;
	s->window_ns = 10 * UNITS_NS_PER_SEC;
	s->min_requests = 20;
	s->max_error_rate = 0.05;
	s->max_error_rate_increase = -1.0;
	s->max_consecutive_errors = 5;
	s->rollback_evict = true;
	s->connect_fallback = true;
	s->shadow_sample_bp = 1000;
	s->shadow_methods = (1u << SHIFT_M_GET) | (1u << SHIFT_M_HEAD);
	s->max_shadow_mismatch = 0.01;
	s->affinity_prefix4 = 32;
	s->affinity_prefix6 = 64;
	ps->sec = SEC_SERVICE;
	return 0;
}

static int parse_section(struct parser *ps, char *s)
{
	char *close = strchr(s, ']'), *in, *rest, b[64];

	if (!close)
		return fail(ps, ps->line, "missing ']' in section header");
	*close = '\0';
	rest = trim(close + 1);
	if (*rest && *rest != ';' && *rest != '#')
		return fail(ps, ps->line, "unexpected '%s' after ']'",
			    printable(rest, b, sizeof(b)));
	in = trim(s + 1);
	if (!strcmp(in, "global")) {
		if (ps->global_line)
			return fail(ps, ps->line, "duplicate [global] section (first at line %d)",
				    ps->global_line);
		ps->global_line = ps->line;
		ps->sec = SEC_GLOBAL;
		return 0;
	}
	if (!strncmp(in, "service", 7) && (!in[7] || is_ws(in[7])))
		return open_service(ps, trim(in + 7));
	if (!strcmp(in, "fleet")) {
		if (ps->c->fleet.enabled)
			return fail(ps, ps->line, "duplicate [fleet] section (first at line %d)",
				    ps->c->fleet.line);
		conf_fleet_defaults(&ps->c->fleet, ps->line);
		ps->sec = SEC_FLEET;
		return 0;
	}
	return fail(ps, ps->line,
		    "unknown section [%s]; expected [global], [service NAME] or [fleet]",
		    printable(in, b, sizeof(b)));
}

/*
 * "key = value ; comment" in place: key and value trimmed, the comment cut (it
 * starts at ';' or '#' after whitespace, so "http:/a#b" survives). false when
 * s has no '='.
 */
static bool split_kv(char *s, char **key, char **val)
{
	char *eq = strchr(s, '='), *p, *v;

	if (!eq)
		return false;
	*eq = '\0';
	v = eq + 1;
	while (is_ws(*v))
		v++;
	for (p = v; *p; p++) {
		if ((*p == ';' || *p == '#') && (p == v || is_ws(p[-1]))) {
			*p = '\0';
			break;
		}
	}
	*key = trim(s);
	*val = trim(v);
	return true;
}

static int parse_line(struct parser *ps, char *s)
{
	const struct key_def *tab;
	char *key, *val, why[WHY_LEN], b[64];
	int *lines, idx;
	size_t n;

	s = trim(s);
	if (!*s || *s == ';' || *s == '#')
		return 0;
	if (*s == '[')
		return parse_section(ps, s);
	if (!split_kv(s, &key, &val))
		return fail(ps, ps->line,
			    "expected 'key = value', '[section]' or a comment, got '%s'",
			    printable(s, b, sizeof(b)));
	if (!*key)
		return fail(ps, ps->line, "missing key before '='");
	if (ps->sec == SEC_NONE)
		return fail(ps, ps->line,
			    "key '%s' outside a section; put it under [global] or [service NAME]",
			    printable(key, b, sizeof(b)));
	if (ps->sec == SEC_FLEET) {
		int dup, rc;

		why[0] = '\0';
		rc = conf_fleet_set(&ps->c->fleet, key, val, ps->line, &dup, why, sizeof(why));
		if (!rc)
			return 0;
		if (dup)
			return fail(ps, ps->line, "duplicate key '%s' (first at line %d)", key,
				    dup);
		if (rc != -ENOENT)
			return fail(ps, ps->line, "%s: %s", key, why);
		if (find_key(global_keys, ARRAY_SIZE(global_keys), key) >= 0 ||
		    find_key(service_keys, ARRAY_SIZE(service_keys), key) >= 0)
			return fail(ps, ps->line, "'%s' does not belong in [fleet]",
				    printable(key, b, sizeof(b)));
		return fail(ps, ps->line, "unknown key '%s' in [fleet]; %s",
			    printable(key, b, sizeof(b)), why);
	}
	if (ps->sec == SEC_GLOBAL) {
		tab = global_keys;
		n = ARRAY_SIZE(global_keys);
		lines = ps->gline;
	} else {
		tab = service_keys;
		n = ARRAY_SIZE(service_keys);
		lines = ps->sl[ps->cur].key;
	}
	idx = find_key(tab, n, key);
	if (idx < 0)
		return unknown_key(ps, key, tab, n);
	if (lines[idx])
		return fail(ps, ps->line, "duplicate key '%s' (first at line %d)", key, lines[idx]);
	lines[idx] = ps->line;
	why[0] = '\0';
	if (tab[idx].set(ps, &tab[idx], val, why, sizeof(why)))
		return fail(ps, ps->line, "%s: %s", key, why);
	return 0;
}

/*
 * Each line of text to fn, numbered from 1, without the byte-order mark and
 * the CR before a newline. A line with a NUL byte, or longer than
 * CONF_MAX_LINE, goes as NULL with what is wrong in why. Stops at fn's first
 * nonzero return and returns it; -ENOMEM without memory for a line.
 */
static int each_line(const char *text, size_t len,
		     int (*fn)(void *arg, int line, char *s, const char *why), void *arg)
{
	size_t pos = 0, n, next;
	char *buf, why[64];
	const char *nl;
	int ret = 0, line = 0;

	buf = malloc(CONF_MAX_LINE + 1);
	if (!buf)
		return -ENOMEM;

	/* Editors on other systems add a byte-order mark; it is not content. */
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		pos = 3;
	while (pos < len && !ret) {
		nl = memchr(text + pos, '\n', len - pos);
		n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		next = pos + n + (nl ? 1 : 0);
		line++;
		if (n && text[pos + n - 1] == '\r')
			n--;
		if (memchr(text + pos, '\0', n)) {
			ret = fn(arg, line, NULL, "NUL byte in line");
		} else if (n > CONF_MAX_LINE) {
			snprintf(why, sizeof(why), "line longer than %d characters", CONF_MAX_LINE);
			ret = fn(arg, line, NULL, why);
		} else {
			memcpy(buf, text + pos, n);
			buf[n] = '\0';
			ret = fn(arg, line, buf, NULL);
		}
		pos = next;
	}
	free(buf);
	return ret;
}

static int strict_line(void *arg, int line, char *s, const char *why)
{
	struct parser *ps = arg;

	ps->line = line;
	if (!s)
		return fail(ps, line, "%s", why);
	return parse_line(ps, s);
}

static int parse_lines(struct parser *ps, const char *text, size_t len)
{
	int ret = each_line(text, len, strict_line, ps);

	return ret == -ENOMEM ? fail(ps, 0, "out of memory") : ret;
}

/* --- whole-file checks --------------------------------------------------------- */

static int check_family(struct parser *ps, const struct conf_service *s, const char *pool,
			const struct shift_addr_key *be, __u32 n, int line)
{
	char a[ADDR_ENDPOINT_LEN], v[ADDR_ENDPOINT_LEN];
	__u32 i;

	for (i = 0; i < n; i++) {
		if (be[i].family != s->vip.family)
			return fail(ps, line, "%s backend %s is %s but vip %s is %s", pool,
				    addr_format_endpoint(&be[i], a, sizeof(a)),
				    family_name(be[i].family),
				    addr_format_endpoint(&s->vip, v, sizeof(v)),
				    family_name(s->vip.family));
	}
	return 0;
}

static int check_sources(struct parser *ps, const struct conf_service *s)
{
	char a[ADDR_ENDPOINT_LEN + 8], v[ADDR_ENDPOINT_LEN];
	const struct conf_cidr *c;
	__u32 i, j;

	for (i = 0; i < s->n_green_sources + s->n_blue_sources; i++) {
		bool green = i < s->n_green_sources;

		c = green ? &s->green_sources[i] : &s->blue_sources[i - s->n_green_sources];
		if (c->family != s->vip.family)
			return fail(ps, c->line, "%s_sources prefix %s is %s but vip %s is %s",
				    green ? "green" : "blue", format_cidr(c, a, sizeof(a)),
				    family_name(c->family),
				    addr_format_endpoint(&s->vip, v, sizeof(v)),
				    family_name(s->vip.family));
	}
	for (i = 0; i < s->n_green_sources; i++) {
		for (j = 0; j < s->n_blue_sources; j++) {
			const struct conf_cidr *g = &s->green_sources[i], *bl = &s->blue_sources[j];

			if (same_cidr(g, bl))
				return fail(ps, g->line > bl->line ? g->line : bl->line,
					    "prefix %s is in both green_sources (line %d) and "
					    "blue_sources (line %d)",
					    format_cidr(g, a, sizeof(a)), g->line, bl->line);
		}
	}
	return 0;
}

/* The service's source NAT: its own snat line, else [global]'s; its family only. */
static int resolve_snat(struct parser *ps, struct conf_service *s, const int *kl)
{
	const struct conf_snat *src = kl[S_SNAT] ? &s->snat_own : &ps->c->snat;
	int line = kl[S_SNAT] ? kl[S_SNAT] : ps->gline[G_SNAT];
	__u32 i;

	s->n_snat = 0;
	s->snat_port_lo = 1024;
	s->snat_port_hi = 65535;
	if (kl[S_SNAT_PORTS]) {
		s->snat_port_lo = s->snat_own.port_lo;
		s->snat_port_hi = s->snat_own.port_hi;
	} else if (ps->gline[G_SNAT_PORTS]) {
		s->snat_port_lo = ps->c->snat.port_lo;
		s->snat_port_hi = ps->c->snat.port_hi;
	}
	for (i = 0; i < src->n; i++) {
		if (src->family[i] != s->vip.family)
			continue;
		memcpy(s->snat[s->n_snat++], src->addr[i], sizeof(s->snat[0]));
	}
	if (src->n && !s->n_snat)
		return fail(ps, line, "snat has no %s address for service %s (vip %s)",
			    s->vip.family == SHIFT_AF_INET6 ? "IPv6" : "IPv4", s->name,
			    s->vip.family == SHIFT_AF_INET6 ? "IPv6" : "IPv4");
	return 0;
}

static int resolve_service(struct parser *ps, __u32 idx)
{
	struct conf_service *s = &ps->c->services[idx];
	const int *kl = ps->sl[idx].key;
	char a[UNITS_DURATION_LEN], b[UNITS_DURATION_LEN], w[WEIGHT_STR_LEN];
	bool udp;
	__u32 i;
	int line;

	if (!kl[S_VIP])
		return fail(ps, s->line, "[service %s] has no vip", s->name);
	if (!kl[S_BLUE])
		return fail(ps, s->line, "[service %s] has no blue backends", s->name);
	if (!kl[S_PROTOCOL])
		s->vip.proto = IPPROTO_TCP;
	udp = s->vip.proto == IPPROTO_UDP;
	for (i = 0; i < s->n_blue; i++)
		s->blue[i].proto = s->vip.proto;
	for (i = 0; i < s->n_green; i++)
		s->green[i].proto = s->vip.proto;
	if (check_family(ps, s, "blue", s->blue, s->n_blue, kl[S_BLUE]) ||
	    check_family(ps, s, "green", s->green, s->n_green, kl[S_GREEN]) || check_sources(ps, s))
		return -EINVAL;

	if (!kl[S_HEALTH_INTERVAL])
		s->health_interval_ns = ps->hc_interval_ns;
	if (!kl[S_HEALTH_TIMEOUT])
		s->health_timeout_ns = ps->hc_timeout_ns;
	if (!kl[S_HEALTH_RISE])
		s->health_rise = ps->hc_rise;
	if (!kl[S_HEALTH_FALL])
		s->health_fall = ps->hc_fall;
	if (s->health_timeout_ns >= s->health_interval_ns) {
		/* [global]'s pair was checked already, so one of these is set. */
		line = kl[S_HEALTH_TIMEOUT] > kl[S_HEALTH_INTERVAL] ? kl[S_HEALTH_TIMEOUT] :
								      kl[S_HEALTH_INTERVAL];
		return fail(ps, line,
			    "health_timeout %s must be shorter than health_interval %s"
			    " (a check ends before the next starts)",
			    units_format_duration(s->health_timeout_ns, a, sizeof(a)),
			    units_format_duration(s->health_interval_ns, b, sizeof(b)));
	}
	if (udp && s->health == CONF_HC_HTTP)
		return fail(ps, kl[S_HEALTH_CHECK],
			    "health_check http needs protocol tcp; service %s is udp", s->name);

	/* UDP has no HTTP responses to count: there the flow is the request
	 * (auto reads TCP payloads only, so for UDP it is tcp). */
	if (!kl[S_ANALYSIS]) {
		s->analysis_connect = udp;
		s->analysis_auto = !udp;
	} else if (udp && s->analysis_auto) {
		s->analysis_auto = false;
		s->analysis_connect = true;
	} else if (udp && !s->analysis_connect)
		return fail(ps, kl[S_ANALYSIS],
			    "analysis = http needs protocol tcp; service %s is udp", s->name);

	/* Shadow replays HTTP/1.x requests to green. */
	if (s->shadow && (udp || s->analysis_connect))
		return fail(ps, kl[S_SHADOW],
			    "shadow = on replays HTTP/1.x requests: service %s needs protocol tcp "
			    "and analysis auto or http",
			    s->name);
	if (s->shadow && !s->n_green)
		return fail(ps, kl[S_SHADOW], "shadow = on but green has no backends to replay to");
	if (resolve_snat(ps, s, kl))
		return -EINVAL;

	/* Either would send clients to an empty pool, where the datapath drops them. */
	if (s->green_weight && !s->n_green)
		return fail(ps, kl[S_GREEN_WEIGHT], "green_weight %s but green has no backends",
			    weight_format(s->green_weight, w, sizeof(w)));
	if (s->n_green_sources && !s->n_green)
		return fail(ps, kl[S_GREEN_SOURCES],
			    "green_sources pins clients to green, but green has no backends");
	return 0;
}

/* Every VIP and backend key of the file, to find the ones used twice. */
struct endpoint_use {
	struct shift_addr_key k;
	int line;
	__u32 svc;
	int kind; /* 0 vip, 1 blue, 2 green */
};

static int cmp_use(const void *pa, const void *pb)
{
	const struct endpoint_use *a = pa, *b = pb;
	int d = memcmp(&a->k, &b->k, sizeof(a->k));

	if (d)
		return d;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->kind - b->kind;
}

static const char *const kind_name[] = { "vip", "blue backend", "green backend" };

static int report_dup(struct parser *ps, const struct endpoint_use *first,
		      const struct endpoint_use *dup)
{
	const char *fs = ps->c->services[first->svc].name, *ds = ps->c->services[dup->svc].name;
	char e[ADDR_ENDPOINT_LEN];

	addr_format_endpoint(&dup->k, e, sizeof(e));
	if (first->kind == 0 && dup->kind == 0)
		return fail(ps, dup->line,
			    "service %s: vip %s/%s is already the vip of service %s (line %d)", ds,
			    e, proto_name(dup->k.proto), fs, first->line);
	if (first->line == dup->line)
		return fail(ps, dup->line, "%s %s is listed twice", kind_name[dup->kind], e);
	return fail(
		ps, dup->line, "service %s: %s %s/%s is already used at line %d (service %s, %s)%s",
		ds, kind_name[dup->kind], e, proto_name(dup->k.proto), first->line, fs,
		kind_name[first->kind],
		first->kind && dup->kind ?
			"; a backend may appear once: the return path maps it back to one service" :
			"");
}

static int check_unique(struct parser *ps)
{
	const struct shift_conf *c = ps->c;
	const struct endpoint_use *first = NULL, *dup = NULL;
	struct endpoint_use *u;
	size_t n = 0, total = 0, i, g;
	__u32 s, j;
	int ret = 0;

	for (s = 0; s < c->n_services; s++)
		total += 1 + c->services[s].n_blue + c->services[s].n_green;
	u = calloc(total, sizeof(*u));
	if (!u)
		return fail(ps, 0, "out of memory");
	for (s = 0; s < c->n_services; s++) {
		const struct conf_service *sv = &c->services[s];
		const int *kl = ps->sl[s].key;

		u[n++] = (struct endpoint_use){ sv->vip, kl[S_VIP], s, 0 };
		for (j = 0; j < sv->n_blue; j++)
			u[n++] = (struct endpoint_use){ sv->blue[j], kl[S_BLUE], s, 1 };
		for (j = 0; j < sv->n_green; j++)
			u[n++] = (struct endpoint_use){ sv->green[j], kl[S_GREEN], s, 2 };
	}
	qsort(u, n, sizeof(*u), cmp_use);
	/* Of all the clashes, report the one met first reading the file. */
	for (g = 0, i = 1; i < n; i++) {
		if (memcmp(&u[i].k, &u[g].k, sizeof(u[i].k))) {
			g = i;
			continue;
		}
		if (i == g + 1 && (!dup || u[i].line < dup->line)) {
			first = &u[g];
			dup = &u[i];
		}
	}
	if (dup)
		ret = report_dup(ps, first, dup);
	free(u);
	return ret;
}

/*
 * The connection table's key has no protocol field, and an IPv6 key holds its
 * VIP folded to one word: two services on one port whose VIPs give the key the
 * same word would share their flows' keys. Refused, at the later of the two
 * lines. In IPv4 the only such pair is a UDP VIP (whose word is complemented,
 * shift_flow_key_vip0()) and a TCP VIP that is exactly its complement; in
 * IPv6 any two VIPs may fold alike, though few do.
 */
static int check_flow_keys(struct parser *ps)
{
	const struct shift_conf *c = ps->c;
	char e[ADDR_ENDPOINT_LEN], o[ADDR_ENDPOINT_LEN];
	__u32 a, b;

	for (b = 0; b < c->n_services; b++) {
		const struct conf_service *t = &c->services[b];

		for (a = 0; a < b; a++) {
			const struct conf_service *u = &c->services[a];
			const struct conf_service *x = t, *y = u;
			int la = ps->sl[a].key[S_VIP], lb = ps->sl[b].key[S_VIP];

			if (u->vip.family != t->vip.family || u->vip.port != t->vip.port ||
			    shift_flow_key_word(&u->vip) != shift_flow_key_word(&t->vip))
				continue;
			addr_format_endpoint(&u->vip, e, sizeof(e));
			addr_format_endpoint(&t->vip, o, sizeof(o));
			if (t->vip.family == SHIFT_AF_INET6)
				return fail(ps, la > lb ? la : lb,
					    "service %s: vip %s/%s and service %s's vip %s/%s give "
					    "the connection table's IPv6 key the same 32-bit VIP "
					    "word (0x%08x): their flows could not be told apart; "
					    "give one of them another address",
					    t->name, o, proto_name(t->vip.proto), u->name, e,
					    proto_name(u->vip.proto), shift_flow_key_word(&t->vip));
			/* In IPv4, name the TCP one first, as its VIP is the complement. */
			if (t->vip.proto == IPPROTO_UDP) {
				x = u;
				y = t;
				addr_format_endpoint(&x->vip, o, sizeof(o));
				addr_format_endpoint(&y->vip, e, sizeof(e));
			}
			return fail(ps, la > lb ? la : lb,
				    "service %s: vip %s/tcp is service %s's vip %s/udp with every "
				    "bit complemented, which the connection table's key gives "
				    "every UDP VIP: their flows could not be told apart",
				    x->name, o, y->name, e);
		}
	}
	return 0;
}

static int check_totals(struct parser *ps)
{
	const struct shift_conf *c = ps->c;
	__u32 s, backends = 0, src[2] = { 0, 0 };

	for (s = 0; s < c->n_services; s++) {
		const struct conf_service *sv = &c->services[s];
		int v6 = sv->vip.family == SHIFT_AF_INET6;

		backends += sv->n_blue + sv->n_green;
		if (backends > SHIFT_MAX_BACKENDS)
			return fail(ps, sv->line, "more than %d backends in all services",
				    SHIFT_MAX_BACKENDS);
		src[v6] += sv->n_green_sources + sv->n_blue_sources;
		if (src[v6] > SHIFT_MAX_OVERRIDES)
			return fail(ps, sv->line, "more than %d %s source prefixes in all services",
				    SHIFT_MAX_OVERRIDES, family_name(sv->vip.family));
	}
	return 0;
}

static int finish(struct parser *ps)
{
	struct shift_conf *c = ps->c;
	char a[UNITS_DURATION_LEN], b[UNITS_DURATION_LEN];
	__u32 i;
	int line;

	if (!ps->global_line)
		return fail(ps, 0, "no [global] section; it needs at least 'interface'");
	if (!ps->gline[G_INTERFACE])
		return fail(ps, ps->global_line,
			    "[global] has no interface (the client-facing NIC, e.g. eth0)");
	if (!ps->gline[G_BACKEND_INTERFACE])
		strcpy(c->backend_interface, c->interfaces[0]);
	if (ps->hc_timeout_ns >= ps->hc_interval_ns) {
		line = ps->gline[G_HEALTH_TIMEOUT] > ps->gline[G_HEALTH_INTERVAL] ?
			       ps->gline[G_HEALTH_TIMEOUT] :
			       ps->gline[G_HEALTH_INTERVAL];
		return fail(ps, line,
			    "health_timeout %s must be shorter than health_interval %s"
			    " (a check ends before the next starts)",
			    units_format_duration(ps->hc_timeout_ns, a, sizeof(a)),
			    units_format_duration(ps->hc_interval_ns, b, sizeof(b)));
	}
	/* A group's members connect through the socket's group bits: 0660 then,
	 * unless the config says 0600, which would let none of them in. */
	if (ps->gline[G_CONTROL_SOCKET_GROUP] && !ps->gline[G_CONTROL_SOCKET_MODE])
		c->control_socket_mode = 0660;
	if (ps->gline[G_CONTROL_SOCKET_GROUP] && c->control_socket_mode == 0600)
		return fail(ps, ps->gline[G_CONTROL_SOCKET_MODE],
			    "control_socket_mode 0600 lets no member of control_socket_group %s "
			    "connect; use 0660 (or remove control_socket_group)",
			    c->control_socket_group);
	/* POST rolls services back: never served without a token to check. The
	 * SPEC's file by default; the start refuses it missing or readable by all. */
	if (ps->gline[G_HTTP_LISTEN] && !ps->gline[G_HTTP_TOKEN_FILE])
		snprintf(c->http_token_file, sizeof(c->http_token_file), "%s",
			 CONF_DEFAULT_TOKEN_FILE);
	if (!ps->gline[G_HTTP_LISTEN] && ps->gline[G_HTTP_TOKEN_FILE])
		return fail(ps, ps->gline[G_HTTP_TOKEN_FILE],
			    "http_token_file without http_listen: the HTTP API is off, set "
			    "http_listen too (or remove this line)");
	if (!c->n_services)
		return fail(ps, 0, "no [service NAME] section; at least one service is required");
	{
		char why[WHY_LEN];
		int fline;

		if (conf_fleet_finish(&c->fleet, &fline, why, sizeof(why)))
			return fail(ps, fline, "%s", why);
	}
	for (i = 0; i < c->n_services; i++) {
		if (resolve_service(ps, i))
			return -EINVAL;
	}
	if (check_unique(ps) || check_flow_keys(ps) || check_totals(ps))
		return -EINVAL;
	return 0;
}

/* Every default of [global], no service yet. */
static struct shift_conf *conf_new(const char *name)
{
	struct shift_conf *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	snprintf(c->path, sizeof(c->path), "%s", name);
	c->xdp_mode = CONF_XDP_AUTO;
	strcpy(c->bpffs_dir, "/sys/fs/bpf/shift");
	strcpy(c->state_dir, "/var/lib/shift");
	strcpy(c->textfile_dir, "/var/lib/prometheus/node-exporter");
	strcpy(c->control_socket, "/run/shift/shiftd.sock");
	c->control_socket_mode = 0600;
	c->metrics_interval_ns = 5 * UNITS_NS_PER_SEC;
	c->max_flows = SHIFT_DEFAULT_FLOWS;
	c->max_flows6 = SHIFT_DEFAULT_FLOWS6;
	c->syn_slots = SHIFT_SYN_SLOTS;
	return c;
}

int conf_parse(const char *text, size_t len, const char *name, struct shift_conf **out, char *err,
	       size_t errlen)
{
	struct parser ps = {
		.name = name ? name : "config",
		.err = err,
		.errlen = errlen,
		.hc_interval_ns = UNITS_NS_PER_SEC,
		.hc_timeout_ns = 500 * UNITS_NS_PER_MS,
		.hc_rise = 2,
		.hc_fall = 2,
	};
	struct shift_conf *c;
	int ret;

	*out = NULL;
	if (!text && len)
		return fail(&ps, 0, "no text");
	c = conf_new(ps.name);
	if (!c)
		return fail(&ps, 0, "out of memory");
	ps.c = c;

	ret = parse_lines(&ps, text, len);
	if (!ret)
		ret = finish(&ps);
	free(ps.sl);
	if (ret) {
		conf_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

int conf_load(const char *path, struct shift_conf **out, char *err, size_t errlen)
{
	size_t len;
	char *buf;
	int ret;

	*out = NULL;
	ret = read_small_file(path, CONF_MAX_FILE, &buf, &len, err, errlen);
	if (ret)
		return ret;
	ret = conf_parse(buf, len, path, out, err, errlen);
	free(buf);
	return ret;
}

/* --- what shiftctl reads of a file that does not load ---------------------------- */

enum salv_sec { SV_NONE, SV_GLOBAL, SV_SERVICE, SV_FLEET, SV_UNKNOWN };

struct salvager {
	const char *name;
	struct shift_conf *c;
	struct conf_salvage *sv;
	enum salv_sec sec;
	int header_line; /* SV_UNKNOWN: the section header that does not read */
	int set_line[CONF_PART__N]; /* where each path was set, where [fleet] opened */
};

static const char *const part_names[CONF_PART__N] = {
	[CONF_PART_BPFFS_DIR] = "bpffs_dir",
	[CONF_PART_STATE_DIR] = "state_dir",
	[CONF_PART_CONTROL_SOCKET] = "control_socket",
	[CONF_PART_FLEET] = "[fleet]",
};

const char *conf_part_name(enum conf_part p)
{
	return p < CONF_PART__N ? part_names[p] : "?";
}

static char *part_path(struct shift_conf *c, int p, size_t *max)
{
	*max = CONF_PATH_LEN;
	if (p == CONF_PART_BPFFS_DIR)
		return c->bpffs_dir;
	if (p == CONF_PART_STATE_DIR)
		return c->state_dir;
	/* bind() and connect() take no more than sun_path holds. */
	*max = sizeof(((struct sockaddr_un *)0)->sun_path);
	return c->control_socket;
}

/* The first reason a part cannot be trusted is the one told. */
static void __attribute__((format(printf, 4, 5)))
distrust(struct salvager *sg, int part, int line, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	if (sg->sv->bad[part][0])
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(sg->sv->bad[part], sizeof(sg->sv->bad[part]), "%s:%d: %s", sg->name, line, msg);
}

/* Is sec where part is set: [global] for a path, [fleet] for the fleet? */
static bool home_of(enum salv_sec sec, int part)
{
	if (part == CONF_PART_FLEET)
		return sec == SV_FLEET;
	return sec == SV_GLOBAL;
}

static bool known_key(const char *key)
{
	unsigned i;

	if (find_key(global_keys, ARRAY_SIZE(global_keys), key) >= 0 ||
	    find_key(service_keys, ARRAY_SIZE(service_keys), key) >= 0)
		return true;
	for (i = 0; conf_fleet_key_name(i); i++) {
		if (!strcmp(key, conf_fleet_key_name(i)))
			return true;
	}
	return false;
}

/*
 * The part a key sets (*exact) or may have meant to (a near miss of one of
 * its names: an unknown key within 2 edits, and fewer than a quarter of the
 * name, so that "mode" is not taken for "node"), or -1. *what: the key meant.
 */
static int key_part(const char *key, bool *exact, const char **what)
{
	const char *name;
	size_t d;
	unsigned i;
	int p;

	*exact = true;
	for (p = 0; p < CONF_PART_FLEET; p++) {
		if (!strcmp(key, part_names[p])) {
			*what = part_names[p];
			return p;
		}
	}
	for (i = 0; (name = conf_fleet_key_name(i)); i++) {
		if (!strcmp(key, name)) {
			*what = name;
			return CONF_PART_FLEET;
		}
	}
	if (known_key(key))
		return -1;
	*exact = false;
	for (p = 0; p < CONF_PART_FLEET; p++) {
		d = edit_distance(key, part_names[p]);
		if (d <= 2 && d * 4 < strlen(part_names[p])) {
			*what = part_names[p];
			return p;
		}
	}
	for (i = 0; (name = conf_fleet_key_name(i)); i++) {
		d = edit_distance(key, name);
		if (d <= 2 && d * 4 < strlen(name)) {
			*what = name;
			return CONF_PART_FLEET;
		}
	}
	return -1;
}

/* A line that is no "key = value" but starts with a part's key ("bpffs_dir /x"). */
static int garbled_part(const char *s, const char **what)
{
	const char *name;
	unsigned i;
	int p;

	for (p = 0; p < CONF_PART_FLEET; p++) {
		if (!strncmp(s, part_names[p], strlen(part_names[p]))) {
			*what = part_names[p];
			return p;
		}
	}
	for (i = 0; (name = conf_fleet_key_name(i)); i++) {
		if (!strncmp(s, name, strlen(name))) {
			*what = name;
			return CONF_PART_FLEET;
		}
	}
	return -1;
}

static void salvage_section(struct salvager *sg, int line, char *s)
{
	char *close = strchr(s, ']'), *in, *rest = NULL;

	if (close) {
		*close = '\0';
		rest = trim(close + 1);
	}
	in = trim(s + 1);
	if (!close || (*rest && *rest != ';' && *rest != '#')) {
		sg->sec = SV_UNKNOWN;
	} else if (!strcmp(in, "global")) {
		sg->sec = SV_GLOBAL;
	} else if (!strncmp(in, "service", 7) && (!in[7] || is_ws(in[7]))) {
		sg->sec = SV_SERVICE;
	} else if (!strcmp(in, "fleet")) {
		if (sg->set_line[CONF_PART_FLEET])
			distrust(sg, CONF_PART_FLEET, line,
				 "duplicate [fleet] section (first at line %d)",
				 sg->set_line[CONF_PART_FLEET]);
		else
			conf_fleet_defaults(&sg->c->fleet, line);
		sg->set_line[CONF_PART_FLEET] = line;
		sg->sec = SV_FLEET;
	} else {
		sg->sec = SV_UNKNOWN;
	}
	if (sg->sec == SV_UNKNOWN)
		sg->header_line = line;
}

/* A line that sets, or may set, part p outside its home: why it cannot count. */
static void misplaced(struct salvager *sg, int line, int p, const char *key, bool exact,
		      const char *what)
{
	char b[64];

	if (!exact)
		distrust(sg, p, line, "unknown key '%s' (did you mean '%s'?)",
			 printable(key, b, sizeof(b)), what);
	else if (sg->sec == SV_NONE)
		distrust(sg, p, line, "key '%s' outside a section", key);
	else if (sg->sec == SV_UNKNOWN)
		distrust(sg, p, line,
			 "'%s' under the section header of line %d, which does not read", key,
			 sg->header_line);
	else
		distrust(sg, p, line, "'%s' belongs in %s", key,
			 p == CONF_PART_FLEET ? "[fleet]" : "[global]");
}

static void salvage_path(struct salvager *sg, int line, int p, char *val)
{
	char why[WHY_LEN], *dst;
	size_t max;

	if (sg->set_line[p]) {
		distrust(sg, p, line, "duplicate key '%s' (first at line %d)", part_names[p],
			 sg->set_line[p]);
		return;
	}
	sg->set_line[p] = line;
	dst = part_path(sg->c, p, &max);
	if (check_path(val, max, why, sizeof(why)))
		distrust(sg, p, line, "%s: %s", part_names[p], why);
	else
		strcpy(dst, val);
}

static void salvage_fleet_key(struct salvager *sg, int line, char *key, char *val)
{
	char why[WHY_LEN] = "", b[64];
	int dup, rc;

	rc = conf_fleet_set(&sg->c->fleet, key, val, line, &dup, why, sizeof(why));
	if (!rc)
		return;
	if (dup)
		distrust(sg, CONF_PART_FLEET, line, "duplicate key '%s' (first at line %d)", key,
			 dup);
	else if (rc != -ENOENT)
		distrust(sg, CONF_PART_FLEET, line, "%s: %s", key, why);
	else
		distrust(sg, CONF_PART_FLEET, line, "unknown key '%s' in [fleet]; %s",
			 printable(key, b, sizeof(b)), why);
}

static int salvage_line(void *arg, int line, char *s, const char *why)
{
	struct salvager *sg = arg;
	const char *what = NULL;
	char *key, *val, b[64];
	bool exact;
	int p;

	if (!s) {
		/* Unreadable: it may be any line its section can hold. */
		for (p = 0; p < CONF_PART__N; p++) {
			if (home_of(sg->sec, p) || sg->sec == SV_NONE || sg->sec == SV_UNKNOWN)
				distrust(sg, p, line, "%s", why);
		}
		return 0;
	}
	s = trim(s);
	if (!*s || *s == ';' || *s == '#')
		return 0;
	if (*s == '[') {
		salvage_section(sg, line, s);
		return 0;
	}
	if (!split_kv(s, &key, &val) || !*key) {
		if (sg->sec == SV_FLEET)
			distrust(sg, CONF_PART_FLEET, line,
				 "expected 'key = value' in [fleet], got '%s'",
				 printable(s, b, sizeof(b)));
		p = garbled_part(s, &what);
		if (p >= 0)
			distrust(sg, p, line, "expected '%s = ...', got '%s'", what,
				 printable(s, b, sizeof(b)));
		return 0;
	}
	p = key_part(key, &exact, &what);
	if (p >= 0 && exact && home_of(sg->sec, p)) {
		if (p == CONF_PART_FLEET)
			salvage_fleet_key(sg, line, key, val);
		else
			salvage_path(sg, line, p, val);
		return 0;
	}
	if (p >= 0)
		misplaced(sg, line, p, key, exact, what);
	/* [fleet] is read whole or not at all: any other key there spoils it. */
	if (sg->sec == SV_FLEET)
		distrust(sg, CONF_PART_FLEET, line, "'%s' does not belong in [fleet]",
			 printable(key, b, sizeof(b)));
	return 0;
}

int conf_salvage_parse(const char *text, size_t len, const char *name, struct shift_conf **out,
		       struct conf_salvage *sv, char *err, size_t errlen)
{
	struct salvager sg = { .name = name ? name : "config", .sv = sv };
	char why[WHY_LEN];
	size_t max;
	int p, line;

	*out = NULL;
	memset(sv, 0, sizeof(*sv));
	if (!text && len) {
		seterr(err, errlen, "%s: no text", sg.name);
		return -EINVAL;
	}
	sg.c = conf_new(sg.name);
	if (!sg.c || each_line(text, len, salvage_line, &sg)) {
		seterr(err, errlen, "%s: out of memory", sg.name);
		conf_free(sg.c);
		return -ENOMEM;
	}
	if (sg.set_line[CONF_PART_FLEET] && !sv->bad[CONF_PART_FLEET][0] &&
	    conf_fleet_finish(&sg.c->fleet, &line, why, sizeof(why)))
		distrust(&sg, CONF_PART_FLEET, line, "%s", why);
	if (sv->bad[CONF_PART_FLEET][0])
		memset(&sg.c->fleet, 0, sizeof(sg.c->fleet));
	/* Nothing but the parts: a caller cannot reach for a service by mistake. */
	for (p = 0; p < CONF_PART_FLEET; p++) {
		if (sv->bad[p][0])
			part_path(sg.c, p, &max)[0] = '\0';
	}
	*out = sg.c;
	return 0;
}

int conf_salvage_load(const char *path, struct shift_conf **out, struct conf_salvage *sv, char *err,
		      size_t errlen)
{
	size_t len;
	char *buf;
	int ret;

	*out = NULL;
	memset(sv, 0, sizeof(*sv));
	ret = read_small_file(path, CONF_MAX_FILE, &buf, &len, err, errlen);
	if (ret)
		return ret;
	ret = conf_salvage_parse(buf, len, path, out, sv, err, errlen);
	free(buf);
	return ret;
}

void conf_free(struct shift_conf *c)
{
	if (!c)
		return;
	free(c->services);
	free(c);
}

const struct conf_service *conf_find_service(const struct shift_conf *c, const char *name)
{
	__u32 i;

	for (i = 0; c && name && i < c->n_services; i++) {
		if (!strcmp(c->services[i].name, name))
			return &c->services[i];
	}
	return NULL;
}

const char *conf_xdp_mode_name(enum conf_xdp_mode m)
{
	switch (m) {
	case CONF_XDP_NATIVE:
		return "native";
	case CONF_XDP_GENERIC:
		return "generic";
	default:
		return "auto";
	}
}

const char *conf_attach_name(enum conf_attach a)
{
	switch (a) {
	case CONF_ATTACH_XDP:
		return "xdp";
	case CONF_ATTACH_TC:
		return "tc";
	default:
		return "auto";
	}
}

const char *conf_health_name(enum conf_health h)
{
	switch (h) {
	case CONF_HC_TCP:
		return "tcp";
	case CONF_HC_HTTP:
		return "http";
	default:
		return "none";
	}
}

const char *conf_example(void)
{
	return "[global]\n"
	       "interface = eth0          ; client-facing NIC(s), comma-separated\n"
	       "backend_interface = eth1  ; where backend replies arrive (default: same)\n"
	       "xdp_mode = auto           ; native | generic | auto\n"
	       "hash_seed = 0x5eed        ; same on every edge host of a fleet\n"
	       "bpffs_dir = /sys/fs/bpf/shift\n"
	       "state_dir = /var/lib/shift\n"
	       "textfile_dir = /var/lib/prometheus/node-exporter\n"
	       "control_socket = /run/shift/shiftd.sock\n"
	       "\n"
	       "[service web]\n"
	       "vip = 10.0.0.10:80\n"
	       "protocol = tcp\n"
	       "blue = 10.1.0.11:8080, 10.1.0.12:8080\n"
	       "green = 10.1.0.21:8080\n"
	       "green_weight = 0%\n"
	       "health_check = http:/readyz   ; or tcp, or none\n"
	       "rollback_window = 10s\n"
	       "min_requests = 20\n"
	       "max_error_rate = 5%\n"
	       "max_error_rate_increase = 1%  ; over blue\n"
	       "max_latency_p99 = 500ms\n"
	       "max_latency_ratio = 2.0       ; green p99 / blue p99\n"
	       "max_consecutive_errors = 5\n"
	       "rollback_evict = yes\n";
}
