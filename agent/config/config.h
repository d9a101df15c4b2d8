/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * shiftd.conf: the INI file shared by shiftd and shiftctl (SPEC "Agent").
 *
 * conf_parse() returns a fully validated, fully defaulted config or nothing: a
 * running agent keeps its last good config when a reload fails, so a half-read
 * file must never reach it. Every error reads "FILE:LINE: reason" ("FILE: reason"
 * when no line is to blame); the first error wins.
 */
#ifndef SHIFT_CONFIG_H
#define SHIFT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <shift/maps.h>

#include "config/fleet_conf.h"

#define CONF_DEFAULT_PATH "/etc/shift/shiftd.conf"
#define CONF_DEFAULT_TOKEN_FILE "/etc/shift/token"

#define CONF_PATH_LEN 4096
#define CONF_NAME_LEN 64 /* service name, NUL included: [A-Za-z0-9_.-]{1,63} */
#define CONF_IFNAMSIZ 16
#define CONF_MAX_INTERFACES 8
#define CONF_GROUP_LEN 64
#define CONF_HEALTH_PATH_LEN 256
/* Source prefixes per service, green_sources and blue_sources together. */
#define CONF_MAX_SOURCES 1024
/* A line holds a whole list: 1024 IPv6 prefixes, 128 IPv6 backends. */
#define CONF_MAX_LINE 65535

/* A client prefix pinned to a color; addr in network order, host bits zero. */
struct conf_cidr {
	__u8 family; /* SHIFT_AF_INET / SHIFT_AF_INET6 */
	__u8 prefixlen;
	__u32 addr[4];
	int line; /* where it was written, for messages */
};

enum conf_health {
	CONF_HC_NONE,
	CONF_HC_TCP,
	CONF_HC_HTTP,
};

enum conf_xdp_mode {
	CONF_XDP_AUTO,
	CONF_XDP_NATIVE,
	CONF_XDP_GENERIC,
};

/* attach = auto | xdp | tc: which entry points run (SPEC "Where the backends live"). */
enum conf_attach {
	CONF_ATTACH_AUTO,
	CONF_ATTACH_XDP,
	CONF_ATTACH_TC,
};

/*
 * snat = ADDR[, ADDR...] and snat_ports = LO-HI as written ([global] or one
 * service): both families mixed; a service uses those of its own family.
 */
#define CONF_MAX_SNAT 16
/* max_latency_p99/p95: the histogram (analysis/quantile.h) tops out at 2^27 us. */
#define CONF_LATENCY_LIMIT_MAX_NS (120ull * 1000000000ull)
struct conf_snat {
	__u32 n; /* 0: none (LVS-NAT) */
	__u8 family[CONF_MAX_SNAT];
	__u32 addr[CONF_MAX_SNAT][4]; /* network order */
	__u16 port_lo, port_hi; /* host order */
};

/*
 * One [service NAME]. Every field is resolved: defaults applied, per-service
 * health settings already merged over [global]'s. Addresses and ports are in
 * network order; vip.proto and every backend's proto carry the service's
 * protocol (IPPROTO_TCP / IPPROTO_UDP), as the services and backend_idx map keys
 * want them.
 */
struct conf_service {
	char name[CONF_NAME_LEN];
	int line; /* of the [service NAME] header */
	struct shift_addr_key vip;
	__u32 n_blue, n_green;
	struct shift_addr_key blue[SHIFT_MAX_POOL_BACKENDS];
	struct shift_addr_key green[SHIFT_MAX_POOL_BACKENDS];
	__u32 green_weight; /* basis points */
	enum conf_health health;
	char health_path[CONF_HEALTH_PATH_LEN]; /* CONF_HC_HTTP: starts with '/' */
	__u64 health_interval_ns, health_timeout_ns;
	__u32 health_rise, health_fall;
	__u64 window_ns; /* rollback_window */
	__u32 min_requests;
	double max_error_rate; /* fraction 0..1; < 0 = off */
	double max_error_rate_increase; /* fraction over blue's; < 0 = off */
	__u64 max_latency_p99_ns, max_latency_p95_ns; /* 0 = off */
	double max_latency_ratio; /* green p99 / blue p99; 0 = off */
	__u32 max_consecutive_errors; /* 0 = off */
	bool rollback_evict;
	/* A green RST to a SYN is dropped and the retransmit goes to blue. */
	bool connect_fallback;
	bool analysis_connect; /* analysis = tcp: a connection is the unit */
	bool analysis_auto; /* analysis = auto: the datapath tells the unit per flow */
	/* Shadow mode (agent/shadow/): replay a sample of blue's requests to green. */
	bool shadow;
	__u32 shadow_sample_bp; /* basis points of new blue connections */
	__u32 shadow_methods; /* bit per enum shift_shadow_method */
	double max_shadow_mismatch; /* fraction 0..1: set-weight/ramp from 0 refuse above */
	/* Source NAT, resolved: the edge's addresses of the VIP's family (from the
	 * service's snat, else [global]'s); n_snat 0 = LVS-NAT. Ports host order. */
	struct conf_snat snat_own; /* the service's own snat/snat_ports lines */
	__u32 n_snat;
	__u32 snat[SHIFT_SNAT_MAX_ADDRS][4];
	__u16 snat_port_lo, snat_port_hi;
	/* Client affinity: the color by the client's address under a prefix. */
	bool affinity_client; /* affinity = client; false = flow (default) */
	__u32 affinity_prefix4, affinity_prefix6; /* 0..32 (default 32), 0..128 (64) */
	/* Two arrays rather than one with a color field: each maps 1:1 onto a
	 * dp_override_put() color. Same family as the vip; no prefix in both. */
	__u32 n_green_sources, n_blue_sources;
	struct conf_cidr green_sources[CONF_MAX_SOURCES];
	struct conf_cidr blue_sources[CONF_MAX_SOURCES];
};

struct shift_conf {
	char path[CONF_PATH_LEN]; /* the name given to conf_load/conf_parse */
	char interfaces[CONF_MAX_INTERFACES][CONF_IFNAMSIZ];
	__u32 n_interfaces; /* >= 1 */
	char backend_interface[CONF_IFNAMSIZ];
	enum conf_xdp_mode xdp_mode;
	enum conf_attach attach; /* default auto */
	struct conf_snat snat; /* [global] snat / snat_ports, before resolution */
	__u32 hash_seed;
	char bpffs_dir[CONF_PATH_LEN], state_dir[CONF_PATH_LEN], textfile_dir[CONF_PATH_LEN];
	char control_socket[CONF_PATH_LEN];
	char control_socket_group[CONF_GROUP_LEN]; /* "" = root only */
	__u32 control_socket_mode; /* 0600 or 0660 */
	__u64 metrics_interval_ns;
	__u32 max_flows, max_flows6;
	__u32 syn_slots; /* SYN slot array size, a power of two */
	char notify_command[CONF_PATH_LEN]; /* "" = none; else an absolute path */
	/* The HTTP API (agent/http/): off unless http_listen is set. */
	bool http_enabled;
	struct shift_addr_key http_listen; /* family, addr, port (network order) */
	char http_token_file[CONF_PATH_LEN]; /* with http_listen; CONF_DEFAULT_TOKEN_FILE */
	struct conf_fleet fleet; /* [fleet]; fleet.enabled false without one */
	__u32 n_services; /* 1..SHIFT_MAX_SERVICES, in file order */
	struct conf_service *services;
};

/* Read and parse a file. Returns 0, or a negative errno with the reason in err. */
int conf_load(const char *path, struct shift_conf **out, char *err, size_t errlen);
/* Parse text[0..len) (need not be NUL-terminated); name stands for the file in messages. */
int conf_parse(const char *text, size_t len, const char *name, struct shift_conf **out, char *err,
	       size_t errlen);
void conf_free(struct shift_conf *c);

/*
 * shiftctl's reading of a file that does not load (an operator mid-edit),
 * so that rollback, set-weight, clear and status still act on the shift that
 * runs: [global]'s bpffs_dir, state_dir and control_socket, and [fleet] whole
 * or not at all. Never a service: shiftctl finds those by name in the pinned
 * maps shiftd wrote, so a half-read file cannot move a name to another id.
 * Every other line is skipped unread. A part is not taken when a line may
 * have meant to set it and cannot be trusted (a bad value, a duplicate, the
 * key outside its section or under a header that does not read, a line that
 * starts with the key but does not read, a near miss of its name): bad[part]
 * then says why, "FILE:LINE: reason", and the part's path is "" (the fleet
 * disabled); "" when the part is known (the default when the file is silent).
 */
enum conf_part {
	CONF_PART_BPFFS_DIR,
	CONF_PART_STATE_DIR,
	CONF_PART_CONTROL_SOCKET,
	CONF_PART_FLEET,
	CONF_PART__N,
};

struct conf_salvage {
	char bad[CONF_PART__N][384];
};

/* 0 and *out (no services), or a negative errno with the reason in err (the file
 * cannot be read, no memory). */
int conf_salvage_load(const char *path, struct shift_conf **out, struct conf_salvage *sv, char *err,
		      size_t errlen);
int conf_salvage_parse(const char *text, size_t len, const char *name, struct shift_conf **out,
		       struct conf_salvage *sv, char *err, size_t errlen);
/* "bpffs_dir", ..., "[fleet]": the part's name in messages. */
const char *conf_part_name(enum conf_part p);
const struct conf_service *conf_find_service(const struct shift_conf *c, const char *name);
/* The example config of SPEC "Agent"; it parses. */
const char *conf_example(void);
/* Names for messages and status output. */
const char *conf_xdp_mode_name(enum conf_xdp_mode m);
const char *conf_health_name(enum conf_health h);
/* "GET", "HEAD", ... for enum shift_shadow_method; NULL past the end. */
const char *conf_shadow_method_name(unsigned m);
const char *conf_attach_name(enum conf_attach a);

#endif
