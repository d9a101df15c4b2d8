// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * shiftd: loads and pins the datapath, keeps the maps in line with the config,
 * consumes return-path samples and rolls back on a trigger. One epoll loop.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <bpf/libbpf.h>

#include "shift.skel.h"
#include "agent.h"
#include "datapath/attach.h"
#include "datapath/client_nh.h"
#include "control/control.h"
#include "analysis/health.h"
#include "analysis/hc_sched.h"
#include "datapath/loader.h"
#include "ops/instance.h"
#include "ops/log.h"
#include "control/metrics.h"
#include "datapath/netlink.h"
#include "datapath/nexthop.h"
#include "ops/privs.h"
#include "analysis/ramp.h"
#include "analysis/drill.h"
#include "analysis/evict.h"
#include "analysis/samples.h"
#include "fleet/fleet.h"
#include "ops/sdnotify.h"
#include "http/http.h"
#include "http/token.h"
#include "shadow/shadow.h"

#include "version.h"

#define TICK_MS 100
/* How often the attached programs are looked for in the kernel. */
#define WATCH_EVERY_NS 1000000000ULL

static const char usage_text[] =
	"Usage: shiftd [OPTIONS]\n"
	"\n"
	"The shift agent: loads the XDP datapath, attaches it to the configured\n"
	"interfaces, pins maps and links under bpffs_dir, keeps the maps in line with\n"
	"the config, consumes return-path samples and rolls green back when a trigger\n"
	"fires. It runs in the foreground and logs to stderr (journald under systemd).\n"
	"With a [fleet] section it shares weights, rollbacks and ramps with the other\n"
	"hosts of the fleet through etcd (shiftd.conf(5)).\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE   config file (default " CONF_DEFAULT_PATH ")\n"
	"  -f, --foreground    accepted for compatibility; shiftd never forks\n"
	"  -v, --verbose       debug logging (libbpf's too)\n"
	"      --check         validate the config and exit (0 valid, 2 invalid)\n"
	"      --detach        remove shift from every interface, unpin its maps and\n"
	"                      links (drops the connection table), and exit; refused\n"
	"                      while shiftd runs for this config (its control socket\n"
	"                      answers): stop it first (systemctl stop shiftd)\n"
	"      --force         with --detach: detach under a running shiftd (it keeps\n"
	"                      running without a datapath until restarted)\n"
	"  -h, --help          this text\n"
	"  -V, --version       print the version\n"
	"\n"
	"Signals:\n"
	"  SIGHUP              reload the config; a bad config is refused and the\n"
	"                      running one kept\n"
	"  SIGTERM, SIGINT     exit, leaving the datapath attached (fail-static): traffic\n"
	"                      keeps flowing by the last weights until shiftd returns\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 bad usage, invalid config, or a start\n"
	"refused for good (another shiftd runs for this state_dir or bpffs_dir,\n"
	"pinned maps of another map ABI, another XDP program on an interface: see\n"
	"shiftd(8)).\n"
	"See shiftd(8), shiftd.conf(5), shiftctl(8).\n";

struct loop {
	int epfd, sigfd, ctlfd, timerfd, nlfd, rbfd, httpfd;
	int persistfd; /* persist_fd(): a save done; -1 without the writer thread */
	gid_t ctl_group; /* control_open()'s */
	struct ctl_bound ctl_bound; /* the socket file it bound */
	struct ctl_server ctl; /* its clients */
	int ctl_epfd; /* control_fd() */
	int shadow_rbfd, shadow_sockfd; /* shadow/shadow.c; -1 when unavailable */
	struct ring_buffer *rb;
	bool stop;
	struct metrics metrics; /* shift.prom writer */
	struct sdnotify sd; /* watchdog pings, STATUS= */
	struct http_api http; /* the HTTP API; off unless http_listen */
	struct fleet *fleet; /* NULL without [fleet] */
	int fleetfd;
	__u64 watch_next_ns; /* watch_attached() */
	bool maps_gone; /* said once */
};

/* sd_notify(3)'s wire protocol: one datagram to $NOTIFY_SOCKET. Small enough
 * to carry here rather than link libsystemd for it. */
static void sd_notify_msg(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, path);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
		log_debug("sd_notify: %s", strerror(errno));
	close(fd);
}

/*
 * The interfaces c names, each with its role: client-facing, backend-facing,
 * or both on one (backend_interface among the interfaces). Returns how many.
 */
static __u32 iface_plan_of(const struct shift_conf *c, struct iface_rt *out)
{
	bool backend_is_client = false;
	__u32 i, n = 0;

	for (i = 0; i < c->n_interfaces; i++) {
		struct iface_rt *f = &out[n++];

		memset(f, 0, sizeof(*f));
		snprintf(f->name, sizeof(f->name), "%s", c->interfaces[i]);
		f->role = XDP_ROLE_CLIENT;
		if (!strcmp(c->interfaces[i], c->backend_interface)) {
			f->role = XDP_ROLE_BOTH;
			backend_is_client = true;
		}
	}
	if (!backend_is_client) {
		struct iface_rt *f = &out[n++];

		memset(f, 0, sizeof(*f));
		snprintf(f->name, sizeof(f->name), "%s", c->backend_interface);
		f->role = XDP_ROLE_BACKEND;
	}
	return n;
}

static int iface_plan(struct agent *a)
{
	a->n_ifaces = iface_plan_of(a->conf, a->ifaces);
	return 0;
}

/* The loader's SHIFT_LOAD_ROLE_* bit of a role's entry programs. */
static __u32 role_bit(enum xdp_role role)
{
	return role == XDP_ROLE_CLIENT	? SHIFT_LOAD_ROLE_CLIENT :
	       role == XDP_ROLE_BACKEND ? SHIFT_LOAD_ROLE_BACKEND :
					  SHIFT_LOAD_ROLE_BOTH;
}

/* The entry programs c's interfaces run, as SHIFT_LOAD_ROLE_* bits. */
static __u32 conf_roles(const struct shift_conf *c)
{
	struct iface_rt plan[AGENT_MAX_IFACES];
	__u32 i, n = iface_plan_of(c, plan), roles = 0;

	for (i = 0; i < n; i++)
		roles |= role_bit(plan[i].role);
	return roles;
}

/* "client, backend": the roles of SHIFT_LOAD_ROLE_* bits, for the log. */
static const char *roles_name(__u32 roles, char *buf, size_t len)
{
	size_t at = 0;
	int r;

	buf[0] = '\0';
	for (r = XDP_ROLE_CLIENT; r <= XDP_ROLE_BOTH && at < len; r++)
		if (roles & role_bit((enum xdp_role)r))
			at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? ", " : "",
					       xdp_role_name((enum xdp_role)r));
	return buf;
}

/*
 * Links pinned for interfaces the plan does not name: removed from the config
 * while shiftd was stopped. attach_all() visits planned interfaces only, so
 * shift's program would stay on them for good; a reload detaches the ones it
 * drops, and a start does the same here.
 */
static void detach_unplanned(struct agent *a)
{
	char path[sizeof(a->conf->bpffs_dir) + 16], ifname[sizeof(a->ifaces[0].name)];
	const char *who;
	struct dirent *de;
	bool planned;
	int err;
	DIR *d;
	__u32 i;

	snprintf(path, sizeof(path), "%s/links", a->conf->bpffs_dir);
	d = opendir(path);
	if (!d) {
		if (errno != ENOENT)
			log_warn("cannot read %s: %s; links of interfaces no longer configured "
				 "stay",
				 path, strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		planned = false;
		/* A name too long for an interface is no planned one's. */
		who = de->d_name;
		if (dp_pin_ifname(de->d_name, ifname, sizeof(ifname)) == 0) {
			who = ifname;
			for (i = 0; i < a->n_ifaces && !planned; i++)
				planned = !strcmp(a->ifaces[i].name, ifname);
		}
		if (planned)
			continue;
		err = dp_detach_pin(a->conf->bpffs_dir, de->d_name);
		if (err < 0)
			log_warn(
				"interface %s: cannot detach shift (no longer configured; %s/%s): %s",
				who, path, de->d_name, strerror(-err));
		else
			log_info("interface %s: detached (no longer configured; was %s/%s)", who,
				 path, de->d_name);
	}
	closedir(d);
}

/* The entry programs an attach mode can use: auto falls back from XDP to TC. */
static __u32 attach_hooks(enum conf_attach at)
{
	switch (at) {
	case CONF_ATTACH_XDP:
		return SHIFT_LOAD_XDP;
	case CONF_ATTACH_TC:
		return SHIFT_LOAD_TC;
	default:
		return SHIFT_LOAD_ALL;
	}
}

static bool seed_matches(struct agent *a)
{
	struct shift_config cfg;

	return dp_config_get(&a->maps, &cfg) == 0 && cfg.hash_seed == a->conf->hash_seed;
}

static int attach_one(struct agent *a, struct iface_rt *f, bool keep_ok)
{
	static const char *const outcome[] = { "attached", "kept", "replaced (upgrade)" };
	struct xdp_attach res;
	struct nl_link l;
	bool had;
	int err;

	f->attached_new = false;
	err = a->nl ? nl_link_get(a->nl, f->name, &l) : -ENODEV;
	if (err) {
		log_warn("interface %s: %s; shift attaches when it appears", f->name,
			 err == -ENODEV ? "not present" : strerror(-err));
		f->attached = false;
		f->ifindex = 0;
		return err;
	}
	f->ifindex = l.ifindex;
	had = dp_iface_pinned(a->conf->bpffs_dir, f->name);
	err = dp_attach_iface(a->skel, a->conf->bpffs_dir, &l, f->role, a->conf->attach,
			      a->conf->xdp_mode, keep_ok, &res);
	if (err) {
		f->attached = false;
		return err;
	}
	f->attached = true;
	f->removed = false;
	f->attached_new = !had && res.outcome == XDP_ATTACHED_NEW;
	f->hook = res.hook;
	f->mode = res.mode;
	f->prog_id = res.prog_id;
	log_info("interface %s (ifindex %d): %s program %s, %s mode %s (attach = %s), prog id %u",
		 f->name, l.ifindex, xdp_role_name(f->role), outcome[res.outcome],
		 res.hook == DP_HOOK_TC ? "TC" : "XDP", res.mode, conf_attach_name(a->conf->attach),
		 res.prog_id);
	return 0;
}

/*
 * Attach every planned interface, the backend side first: its program is the
 * return path, and a client's forward NAT without it is a half datapath
 * (replies reach the clients un-NATed). On a failure (an interface that is
 * not there is none: it gets its program when it appears) a reload goes on
 * with the others. A start (undo) stops there and detaches what it attached
 * where shift had no program: a first start that fails leaves nothing
 * attached, and a restart keeps what it adopted.
 */
static int attach_all(struct agent *a, bool undo)
{
	bool keep_ok = a->adopted && seed_matches(a);
	struct shift_config cfg;
	int err, failed = 0, pass;
	__u32 i;

	if (a->adopted && !keep_ok)
		log_info("hash_seed changed (or a start failed before it recorded the seed): "
			 "replacing the attached programs");
	for (pass = 0; pass < 2 && !(failed && undo); pass++) {
		for (i = 0; i < a->n_ifaces && !(failed && undo); i++) {
			/* Pass 0: backend and client+backend; pass 1: clients. */
			if ((a->ifaces[i].role == XDP_ROLE_CLIENT) != (pass == 1))
				continue;
			err = attach_one(a, &a->ifaces[i], keep_ok);
			if (err && err != -ENODEV)
				failed = err;
		}
	}
	/* The seed the attached programs run with, once all of them do: after a
	 * failure some still run the old one, and the next start must replace
	 * them rather than keep them by their tag (keep_ok). */
	if (!failed && dp_config_get(&a->maps, &cfg) == 0) {
		cfg.hash_seed = a->conf->hash_seed;
		dp_config_set(&a->maps, &cfg);
	}
	for (i = 0; failed && undo && i < a->n_ifaces; i++) {
		struct iface_rt *f = &a->ifaces[i];

		if (!f->attached_new)
			continue;
		err = dp_detach_iface(a->conf->bpffs_dir, f->name);
		if (err)
			log_err("interface %s: cannot detach it again after the failed start: %s",
				f->name, strerror(-err));
		else
			log_warn("interface %s: detached again: the start failed, and it had no "
				 "program of shift's before",
				 f->name);
		f->attached = false;
		f->attached_new = false;
	}
	return failed;
}

/* client_nh_alive_fn, through netlink. */
static int link_alive(void *arg, __u32 ifindex)
{
	struct nl_link l;
	int err = nl_link_by_index(((struct agent *)arg)->nl, (int)ifindex, &l);

	return err == -ENODEV ? 0 : err ? err : 1;
}

/*
 * Retire the client-side next hops of interfaces that are gone: of l (deleted),
 * or, with l NULL, of every one netlink no longer knows (at start, and after
 * events were lost).
 */
static void client_nhs_tidy(struct agent *a, const struct nl_link *l)
{
	int fd = bpf_map__fd(a->skel->maps.shift_client_nhs);
	__u32 retired = 0;
	int err;

	if (l)
		err = client_nhs_forget(fd, (__u32)l->ifindex, &retired);
	else if (a->nl)
		err = client_nhs_sweep(fd, link_alive, a, &retired);
	else
		return;
	if (err)
		log_warn("client next hops: retiring those of %s: %s",
			 l ? l->name : "interfaces that are gone", strerror(-err));
	if (retired && l)
		log_info("interface %s (ifindex %d) deleted: retired its %u client next hop(s)",
			 l->name, l->ifindex, retired);
	else if (retired)
		log_info("retired %u client next hop(s) of interfaces that are gone", retired);
}

static void on_link(void *arg, const struct nl_link *l, bool deleted)
{
	struct agent *a = arg;
	__u32 i;

	if (deleted)
		client_nhs_tidy(a, l);

	for (i = 0; i < a->n_ifaces; i++) {
		struct iface_rt *f = &a->ifaces[i];

		if (strcmp(f->name, l->name))
			continue;
		if (deleted) {
			if (f->attached)
				log_warn("interface %s: deleted; waiting for it to return",
					 f->name);
			f->attached = false;
			f->ifindex = 0;
		} else if (f->removed && f->ifindex == l->ifindex) {
			continue; /* taken off from outside: it stays off */
		} else if (!f->attached || f->ifindex != l->ifindex) {
			log_info("interface %s: appeared (ifindex %d), attaching", f->name,
				 l->ifindex);
			attach_one(a, f, true);
		}
	}
	nexthops_link(a, l, deleted);
}

static void on_neigh(void *arg, int ifindex, __u8 family, const __u32 addr[4], const __u8 mac[6],
		     bool usable)
{
	nexthops_neigh(arg, ifindex, family, addr, mac, usable);
}

static void on_route(void *arg, const struct nl_route_change *c)
{
	nexthops_route(arg, c);
}

static void on_resync(void *arg)
{
	struct agent *a = arg;
	__u32 i;

	nexthops_refresh_all(a, false);
	client_nhs_tidy(a, NULL);
	for (i = 0; i < a->n_ifaces; i++) {
		struct iface_rt *f = &a->ifaces[i];
		struct nl_link l;

		/* Among the lost events may be an interface deleted and created
		 * again under its name: attached by our count, but to an ifindex
		 * that is gone, and the new one has no program. One taken off from
		 * outside (watch_attached()) stays off, unless it was replaced. */
		if ((f->attached || f->removed) && nl_link_get(a->nl, f->name, &l) == 0 &&
		    l.ifindex == f->ifindex)
			continue;
		if (f->attached)
			log_warn("interface %s: replaced or gone while netlink events were lost "
				 "(ifindex %d before)",
				 f->name, f->ifindex);
		attach_one(a, f, true);
	}
}

static const struct nl_callbacks nl_cb = {
	.link = on_link,
	.neigh = on_neigh,
	.route = on_route,
	.resync = on_resync,
};

/*
 * Health probes hold a socket per backend at once (up to 32768 backends),
 * shadow replays up to 256, the HTTP API its connections: systemd's soft
 * limit of 1024 is too few. Every descriptor is polled with epoll, so the
 * hard limit is safe to take.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		log_warn("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_max,
			 strerror(errno));
}

/*
 * What a config needs of the host that conf_load() cannot check: the ports
 * source NAT leaves to the host, the fleet's TLS files, the control socket's
 * group, the HTTP API's token file. For --check, before a start touches the
 * datapath, and before a reload writes anything: a start or reload failing
 * after its first write leaves some services on the new config.
 */
static int host_precheck(const struct shift_conf *c, char *err, size_t errlen)
{
	struct http_token tok;
	int rc;

	rc = reload_precheck(c, err, errlen);
	if (rc)
		return rc;
	rc = conf_fleet_files_check(&c->fleet, err, errlen);
	if (rc)
		return rc;
	errno = 0;
	if (c->control_socket_group[0] && !getgrnam(c->control_socket_group)) {
		/* getgrnam(3): "not found" may come with any of these. */
		bool absent = !errno || errno == ENOENT || errno == ESRCH || errno == EBADF ||
			      errno == EPERM;

		snprintf(err, errlen, "control_socket_group %s: %s", c->control_socket_group,
			 absent ? "no such group" : strerror(errno));
		return -ENOENT;
	}
	if (!c->http_enabled)
		return 0;
	rc = http_token_load(c->http_token_file, &tok, err, errlen);
	memset(&tok, 0, sizeof(tok));
	return rc;
}

static int reload(struct agent *a, char *err, size_t errlen)
{
	struct shift_conf *newc;
	bool ifaces_changed = false;
	__u32 i, missing;
	int rc;

	rc = conf_load(a->conf_path, &newc, err, errlen);
	if (rc) {
		a->reload_failures++;
		log_err("reload refused, running config kept: %s", err);
		return rc;
	}
	/* Refused before any map is written, and before the new token is in
	 * force: a reload refused keeps all of the running config. */
	rc = host_precheck(newc, err, errlen);
	if (!rc && a->http && http_reload(a->http, newc, err, errlen))
		rc = -EINVAL;
	if (rc) {
		a->reload_failures++;
		log_err("reload refused, running config kept: %s", err);
		conf_free(newc);
		return rc;
	}
	/* The programs are verified at start, for the attach mode of then. */
	if (attach_hooks(newc->attach) & ~a->hooks_loaded) {
		log_warn("reload: attach = %s takes effect at the next start (this shiftd loaded "
			 "the programs of attach = %s only); attach = %s kept",
			 conf_attach_name(newc->attach), conf_attach_name(a->conf->attach),
			 conf_attach_name(a->conf->attach));
		newc->attach = a->conf->attach;
	}
	/* And for the roles of the interfaces of then: a reload that makes the
	 * host one-armed, or two-armed, needs an entry program not verified. */
	missing = conf_roles(newc) & ~a->roles_loaded;
	if (missing) {
		char want[64], have[64];

		log_warn("reload: interface and backend_interface take effect at the next start "
			 "(their roles need the %s programs; this shiftd loaded those of %s only); "
			 "interfaces kept",
			 roles_name(missing, want, sizeof(want)),
			 roles_name(a->roles_loaded, have, sizeof(have)));
		memcpy(newc->interfaces, a->conf->interfaces, sizeof(newc->interfaces));
		newc->n_interfaces = a->conf->n_interfaces;
		memcpy(newc->backend_interface, a->conf->backend_interface,
		       sizeof(newc->backend_interface));
	}
	if (newc->n_interfaces != a->conf->n_interfaces ||
	    strcmp(newc->backend_interface, a->conf->backend_interface) ||
	    newc->attach != a->conf->attach)
		ifaces_changed = true;
	for (i = 0; !ifaces_changed && i < newc->n_interfaces; i++)
		ifaces_changed = strcmp(newc->interfaces[i], a->conf->interfaces[i]) != 0;
	if (strcmp(newc->bpffs_dir, a->conf->bpffs_dir) || newc->hash_seed != a->conf->hash_seed ||
	    strcmp(newc->control_socket, a->conf->control_socket) ||
	    strcmp(newc->control_socket_group, a->conf->control_socket_group) ||
	    newc->control_socket_mode != a->conf->control_socket_mode ||
	    strcmp(newc->state_dir, a->conf->state_dir))
		log_warn("reload: bpffs_dir, hash_seed, state_dir and control_socket (its group "
			 "and mode too) take effect at the next start");
	/* By field: the struct also holds the lines its keys were on. */
	if (!conf_fleet_equal(&newc->fleet, &a->conf->fleet))
		log_warn("reload: [fleet] changes take effect at the next start");
	/* The maps are sized at load, and a start adopts the pinned ones. */
	if (newc->max_flows != a->conf->max_flows || newc->max_flows6 != a->conf->max_flows6 ||
	    newc->syn_slots != a->conf->syn_slots)
		log_warn(
			"reload: max_flows, max_flows6 and syn_slots keep their running sizes; new "
			"sizes take effect after 'shiftd --detach' and a start");
	newc->max_flows = a->conf->max_flows;
	newc->max_flows6 = a->conf->max_flows6;
	newc->syn_slots = a->conf->syn_slots;
	newc->fleet = a->conf->fleet;
	/* Those keys keep their running values. */
	snprintf(newc->bpffs_dir, sizeof(newc->bpffs_dir), "%s", a->conf->bpffs_dir);
	snprintf(newc->state_dir, sizeof(newc->state_dir), "%s", a->conf->state_dir);
	snprintf(newc->control_socket, sizeof(newc->control_socket), "%s", a->conf->control_socket);
	/* The socket file's group and mode were set when it was bound: a new
	 * group checked against the old file let its members in by neither. */
	snprintf(newc->control_socket_group, sizeof(newc->control_socket_group), "%s",
		 a->conf->control_socket_group);
	newc->control_socket_mode = a->conf->control_socket_mode;
	newc->hash_seed = a->conf->hash_seed;
	if (ifaces_changed) {
		struct iface_rt old[AGENT_MAX_IFACES];
		__u32 n_old = a->n_ifaces, j;

		memcpy(old, a->ifaces, sizeof(old));
		for (i = 0; i < n_old; i++) {
			bool kept = !strcmp(old[i].name, newc->backend_interface);

			for (j = 0; j < newc->n_interfaces; j++)
				kept |= !strcmp(old[i].name, newc->interfaces[j]);
			if (!kept) {
				dp_detach_iface(a->conf->bpffs_dir, old[i].name);
				log_info("interface %s: detached (no longer configured)",
					 old[i].name);
			}
		}
	}
	rc = apply_config(a, newc, false);
	if (rc) {
		snprintf(err, errlen, "applying the config failed: %s", strerror(-rc));
		a->reload_failures++;
	}
	if (ifaces_changed) {
		/* A role may change (one-armed or not): re-plan and re-attach all. */
		iface_plan(a);
		attach_all(a, false);
	}
	a->reloads++;
	persist_save(a);
	/* New backends are looked up from the loop, a slice at a time. */
	nexthops_reindex(a);
	if (rc)
		log_err("config reload applied only in part: %s", err);
	else
		log_info("config reloaded: %u services", a->conf->n_services);
	return rc;
}

/* SIGHUP and shiftctl reload alike: a fleet node then takes the fleet's word
 * again for what the new config touched (a new service, a changed one). */
static int reload_fleet(struct agent *a, char *err, size_t errlen)
{
	int rc = reload(a, err, errlen);

	if (a->fleet_ctx)
		fleet_reloaded(a->fleet_ctx);
	return rc;
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/*
 * Are our programs still attached, and our maps pinned? `shiftd --detach
 * --force` (or tc, ip, rm by hand) can take them away under us: say so, once,
 * and stop calling the interface attached in status and metrics. Not attached
 * again by itself: whoever took shift off meant it.
 */
static void watch_attached(struct agent *a, struct loop *lp)
{
	char path[sizeof(a->conf->bpffs_dir) + 32];
	bool gone;
	__u32 i;
	int r;

	for (i = 0; i < a->n_ifaces; i++) {
		struct iface_rt *f = &a->ifaces[i];

		if (!f->attached || !f->ifindex || !f->prog_id)
			continue;
		/* There, or the kernel did not say: an ifindex deleted since is
		 * left to its netlink events, or to the resync after lost ones. */
		r = dp_iface_runs(f->ifindex, f->hook, f->mode, f->prog_id);
		if (r != 0)
			continue;
		log_warn("interface %s: shift's %s program (%s %s, prog id %u) is no longer "
			 "attached: removed from outside (shiftd --detach --force?); restart "
			 "shiftd to attach it again",
			 f->name, xdp_role_name(f->role), dp_hook_name(f->hook), f->mode,
			 f->prog_id);
		f->attached = false;
		f->removed = true;
	}
	snprintf(path, sizeof(path), "%s/maps/shift_weights", a->conf->bpffs_dir);
	gone = access(path, F_OK) && errno == ENOENT;
	if (gone && !lp->maps_gone)
		log_warn("the pinned maps under %s/maps are gone (shiftd --detach --force?): "
			 "shiftctl cannot reach them until shiftd restarts",
			 a->conf->bpffs_dir);
	lp->maps_gone = gone;
}

static void tick(struct agent *a, struct loop *lp)
{
	char msg[SDNOTIFY_STATUS_LEN + 32];

	/* Ordinary samples wake us only every SHIFT_WAKEUP_BATCH: bound their delay. */
	samples_poll(a, lp->rb);
	health_tick(a);
	shadow_tick(a);
	/* On a fleet, ramps follow the shared plan (fleet/), not a local clock. */
	if (lp->fleet)
		fleet_tick(lp->fleet);
	else
		ramp_tick(a);
	drill_tick(a);
	metrics_tick(&lp->metrics, a);
	/* Control clients past their budgets are answered or closed here. */
	control_tick(&lp->ctl);
	/* Idle HTTP connections time out here (MHD's timeouts are in seconds). */
	http_run(&lp->http);
	nexthops_tick(a);
	if (now_mono_ns() >= lp->watch_next_ns) {
		lp->watch_next_ns = now_mono_ns() + WATCH_EVERY_NS;
		watch_attached(a, lp);
	}
	/* The writer's eventfd says when a save is done; this catches one it could not tell. */
	persist_collect(a);
	if (a->persist_dirty && now_mono_ns() >= a->persist_retry_ns) {
		a->persist_dirty = false;
		persist_save_async(a);
	}
	/* Last: a ping says the whole tick ran. */
	if (sdnotify_tick(&lp->sd, a, now_mono_ns(), msg, sizeof(msg)))
		sd_notify_msg(msg);
}

static int run_loop(struct agent *a, struct loop *lp)
{
	struct epoll_event evs[8];
	__u64 due, woke, end, lost;
	char err[1024];
	bool http_ready;
	int n, i, tmo;

	while (!lp->stop) {
		/* MHD may owe a connection a turn before its fd says so again (see server.h). */
		http_ready = false;
		/* Health checks run on their own deadlines: sleep until the earliest. */
		due = health_next_ns(a);
		tmo = hc_timeout_ms(now_mono_ns(), due, http_timeout_ms(&lp->http));
		/* An eviction or next-hop lookups left to do: look at the fds,
		 * then go on with them. */
		if (evict_pending(a) || nexthops_pending(a))
			tmo = 0;
		n = epoll_wait(lp->epfd, evs, 8, tmo);
		woke = now_mono_ns();
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait: %s", strerror(errno));
			return -errno;
		}
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lp->rbfd) {
				/* Samples first: a trigger's latency budget is microseconds. */
				samples_poll(a, lp->rb);
			} else if (fd == lp->sigfd) {
				struct signalfd_siginfo si;

				if (read(lp->sigfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					sd_notify_msg("RELOADING=1");
					reload_fleet(a, err, sizeof(err));
					sd_notify_msg("READY=1");
				} else {
					log_info("signal %d: exiting; the datapath stays attached",
						 si.ssi_signo);
					lp->stop = true;
				}
			} else if (fd == lp->ctl_epfd) {
				control_run(&lp->ctl);
			} else if (lp->fleet && fd == lp->fleetfd) {
				fleet_events(lp->fleet);
			} else if (fd == lp->shadow_rbfd || fd == lp->shadow_sockfd) {
				/* Shadow work is bounded per pass; samples that came in
				 * meanwhile go first. */
				samples_poll(a, lp->rb);
				if (fd == lp->shadow_rbfd)
					shadow_ring_ready(a);
				else
					shadow_sock_ready(a);
			} else if (fd == a->health_epfd && fd > 0) {
				health_events(a);
			} else if (fd == lp->nlfd) {
				/* What could not be read may have been a change. */
				if (nl_dispatch(a->nl, &nl_cb, a) < 0)
					nexthops_refresh_all(a, true);
			} else if (fd == lp->timerfd) {
				__u64 exp;

				if (read(lp->timerfd, &exp, sizeof(exp)) == sizeof(exp))
					tick(a, lp);
			} else if (fd == lp->persistfd && fd >= 0) {
				/* A save is on disk: the notify hooks that waited for it run. */
				persist_collect(a);
			} else if (fd == lp->httpfd && fd >= 0) {
				/* After everything else this round, samples above all. */
				http_ready = true;
			}
		}
		/* Time the agent could not look (woke late for a deadline, or this
		 * turn ran long) is not the backends': probes get it back. */
		end = now_mono_ns();
		lost = end - woke > HEALTH_SLACK_NS ? end - woke : 0;
		if (due && due != HC_NEVER && woke > due + HEALTH_SLACK_NS)
			lost += woke - due;
		if (lost)
			health_lost(a, lost);
		if (end >= health_next_ns(a))
			health_run(a);
		/* A rollback in this pass wrote its map first; now tell the fleet. */
		if (a->fleet_pending && lp->fleet)
			fleet_kick(lp->fleet);
		/* A slice of next-hop lookups per turn (blocking netlink queries):
		 * samples and events wait at most that long. */
		if (nexthops_pending(a))
			nexthops_work(a, NH_SLICE_NS);
		/* One turn per round: a client streaming a body takes turns with the samples. */
		if (http_ready || http_timeout_ms(&lp->http) == 0)
			http_run(&lp->http);
		/* Last, after this turn's samples: a chunk of a rollback's eviction
		 * delays another service's error by one chunk, never by a table. */
		if (evict_pending(a))
			evict_run(a, EVICT_CHUNK_NS);
	}
	return 0;
}

/*
 * Is a shiftd serving this config? Its control socket answers: 1 (with its pid
 * in *pid, 0 when unknown), 0 when nothing listens there, -errno when it
 * cannot be told. A connection without a request costs shiftd an "empty
 * request" answer, nothing else.
 */
static int agent_running(const struct shift_conf *c, pid_t *pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd, rc;

	*pid = 0;
	if (strlen(c->control_socket) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, c->control_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		/* The listener's credentials, as of its listen(). */
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
			*pid = cr.pid;
		rc = 1;
	} else if (errno == EAGAIN) {
		rc = 1; /* listening, its backlog full */
	} else if (errno == ENOENT || errno == ENOTDIR || errno == ECONNREFUSED) {
		rc = 0; /* no socket, or a stale one of a shiftd gone */
	} else {
		rc = -errno;
	}
	close(fd);
	return rc;
}

/*
 * --detach under a running shiftd leaves it serving a datapath that is gone:
 * its status says attached, shiftctl finds no maps, and the VIPs stop being
 * forwarded. Refused unless forced.
 */
static int detach_allowed(const struct shift_conf *c, bool force)
{
	pid_t pid;
	char who[32] = "";
	/* The lock first: a shiftd still loading its programs has no socket yet. */
	int rc = instance_running(c->state_dir, &pid);

	if (rc != 1)
		rc = agent_running(c, &pid);
	if (rc == 0)
		return 0;
	if (pid > 0)
		snprintf(who, sizeof(who), " (pid %d)", (int)pid);
	if (rc > 0 && force) {
		log_warn("shiftd%s is running (control socket %s): detaching under it (--force); "
			 "it keeps running without a datapath until it is restarted",
			 who, c->control_socket);
		return 0;
	}
	if (rc > 0) {
		log_err("shiftd%s is running for this config (it holds %s/" INSTANCE_LOCK_NAME
			" or its control socket %s answers): stop "
			"it first: systemctl stop shiftd; then 'shiftd --detach' (--force detaches "
			"under it)",
			who, c->state_dir, c->control_socket);
		return -EBUSY;
	}
	if (force) {
		log_warn("cannot tell whether shiftd is running: control socket %s: %s; "
			 "detaching (--force)",
			 c->control_socket, strerror(-rc));
		return 0;
	}
	log_err("cannot tell whether shiftd is running: control socket %s: %s; stop it first: "
		"systemctl stop shiftd (or --force)",
		c->control_socket, strerror(-rc));
	return rc;
}

/* One interface's share of --detach: adds what it removed to *removed. */
static int detach_iface(const struct shift_conf *c, const char *ifname, int *removed)
{
	int n = dp_purge_iface(c->bpffs_dir, ifname);

	if (n < 0) {
		log_err("interface %s: detach failed: %s", ifname, strerror(-n));
		return n;
	}
	*removed += n;
	return 0;
}

static int detach_everything(const struct shift_conf *c)
{
	char path[sizeof(c->bpffs_dir) + 16];
	int rc = 0, err, removed = 0, unpinned = 0;
	bool backend_listed = false;
	struct dirent *de;
	DIR *d;
	__u32 i;

	for (i = 0; i < c->n_interfaces; i++) {
		backend_listed |= !strcmp(c->interfaces[i], c->backend_interface);
		err = detach_iface(c, c->interfaces[i], &removed);
		rc = err ? err : rc;
	}
	if (!backend_listed) {
		err = detach_iface(c, c->backend_interface, &removed);
		rc = err ? err : rc;
	}
	/* Links pinned for interfaces since removed from the config. */
	snprintf(path, sizeof(path), "%s/links", c->bpffs_dir);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			err = dp_detach_pin(c->bpffs_dir, de->d_name);
			if (err < 0) {
				log_err("%s/%s: detach failed: %s", path, de->d_name,
					strerror(-err));
				rc = err;
			} else {
				removed += err;
			}
		}
		closedir(d);
		rmdir(path);
	}
	snprintf(path, sizeof(path), "%s/maps", c->bpffs_dir);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d))) {
			char p[sizeof(path) + 256];

			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			if (unlink(p)) {
				log_err("cannot unpin %s: %s", p, strerror(errno));
				rc = -errno;
			} else {
				unpinned++;
			}
		}
		closedir(d);
		rmdir(path);
	}
	rmdir(c->bpffs_dir);
	if (!rc)
		log_info("shift detached: %d program%s removed, %d map%s unpinned (the state file "
			 "stays)",
			 removed, removed == 1 ? "" : "s", unpinned, unpinned == 1 ? "" : "s");
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check", no_argument, NULL, 'C' },
		{ "detach", no_argument, NULL, 'D' },
		{ "force", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct loop lp = {
		.epfd = -1,
		.sigfd = -1,
		.ctlfd = -1,
		.ctl_epfd = -1,
		.timerfd = -1,
		.nlfd = -1,
		.rbfd = -1,
		.httpfd = -1,
		.persistfd = -1,
		.fleetfd = -1,
		.shadow_rbfd = -1,
		.shadow_sockfd = -1,
	};
	const char *conf_path = CONF_DEFAULT_PATH;
	bool check = false, detach = false, force = false;
	struct itimerspec its = { 0 };
	struct agent *a = NULL;
	struct shift_conf *conf;
	struct loader_opts lo;
	char rolebuf[64];
	char err[1024];
	sigset_t mask;
	int opt, rc = 1, lockfd = -1, pinfd = -1, err_attach;
	pid_t holder;

	shift_log_init("shiftd", SHIFT_LOG_INFO);
	while ((opt = getopt_long(argc, argv, "c:fvhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 'f':
			break;
		case 'v':
			shift_log_init("shiftd", SHIFT_LOG_DEBUG);
			break;
		case 'C':
			check = true;
			break;
		case 'D':
			detach = true;
			break;
		case 'F':
			force = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("shiftd %s (map ABI %d)\n", SHIFT_VERSION, SHIFT_ABI_VERSION);
			return 0;
		default:
			fputs("Try 'shiftd --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		log_err("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (force && !detach) {
		log_err("--force goes with --detach only");
		return 2;
	}
	shift_log_libbpf();

	if (conf_load(conf_path, &conf, err, sizeof(err))) {
		log_err("%s", err);
		return 2;
	}
	if (check && host_precheck(conf, err, sizeof(err))) {
		log_err("%s: %s", conf_path, err);
		conf_free(conf);
		return 2;
	}
	if (check) {
		printf("%s: valid, %u service%s\n", conf_path, conf->n_services,
		       conf->n_services == 1 ? "" : "s");
		conf_free(conf);
		return 0;
	}
	if (detach) {
		rc = detach_allowed(conf, force) || detach_everything(conf) ? 1 : 0;
		conf_free(conf);
		return rc;
	}

	/* SIGHUP's default action ends the process: a reload sent while the start
	 * still loads the programs (seconds) waits for the loop instead, and a
	 * SIGTERM then is the loop's first event (a clean exit). */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	/* Before the datapath is touched: a refusal then changes nothing. The
	 * config asks for what the host lacks: exit 2, which the unit does not
	 * restart (a restart a second would not fix it). */
	if (host_precheck(conf, err, sizeof(err))) {
		log_err("%s; not starting", err);
		conf_free(conf);
		return 2;
	}
	raise_fd_limit();
	a = calloc(1, sizeof(*a));
	if (!a) {
		log_err("out of memory");
		conf_free(conf);
		return 1;
	}
	a->conf = NULL;
	snprintf(a->conf_path, sizeof(a->conf_path), "%s", conf_path);
	a->started_unix_ns = now_unix_ns();
	if (conf->fleet.enabled) {
		snprintf(a->node, sizeof(a->node), "%s", conf->fleet.node);
	} else if (gethostname(a->node, sizeof(a->node))) {
		snprintf(a->node, sizeof(a->node), "local");
	} else {
		a->node[sizeof(a->node) - 1] = '\0';
		a->node[strcspn(a->node, ".")] = '\0';
	}
	if (snprintf(a->state_path, sizeof(a->state_path), "%s/state", conf->state_dir) >=
	    (int)sizeof(a->state_path)) {
		log_err("state_dir too long");
		goto out_conf;
	}
	if (mkdir_p(conf->state_dir, 0700)) {
		log_err("cannot create state_dir %s: %s", conf->state_dir, strerror(errno));
		goto out_conf;
	}
	/* Before the maps, the links and the control socket: a second shiftd on
	 * this config would adopt the first one's maps, take its socket over and
	 * run its triggers twice. Exit 2: restarting cannot make room. */
	lockfd = instance_lock(conf->state_dir, &holder, err, sizeof(err));
	if (lockfd == -EWOULDBLOCK) {
		if (holder > 0)
			log_err("shiftd pid %d is already running for state_dir %s (it holds "
				"%s/" INSTANCE_LOCK_NAME "); not starting: stop that one first",
				(int)holder, conf->state_dir, conf->state_dir);
		else
			log_err("%s: a shiftd is already running for state_dir %s; not starting",
				err, conf->state_dir);
		rc = 2;
		goto out_conf;
	}
	if (lockfd < 0) {
		log_err("%s", err);
		goto out_conf;
	}
	if (bpffs_prepare(conf->bpffs_dir))
		goto out_conf;
	/* Another state_dir, the same pins: the same harm (ops/instance.h). */
	pinfd = instance_lock_pins(conf->bpffs_dir, &holder, err, sizeof(err));
	if (pinfd == -EWOULDBLOCK) {
		if (holder > 0)
			log_err("shiftd pid %d is already running on bpffs_dir %s (with another "
				"state_dir); not starting: each shiftd needs a bpffs_dir and a "
				"state_dir of its own",
				(int)holder, conf->bpffs_dir);
		else
			log_err("%s: a shiftd is already running on bpffs_dir %s; not starting",
				err, conf->bpffs_dir);
		rc = 2;
		goto out_conf;
	}
	if (pinfd < 0) {
		log_err("%s", err);
		goto out_conf;
	}

	memset(&lo, 0, sizeof(lo));
	lo.hash_seed = conf->hash_seed;
	lo.max_flows4 = conf->max_flows;
	lo.max_flows6 = conf->max_flows6;
	lo.syn_slots = conf->syn_slots;
	lo.pin_dir = conf->bpffs_dir;
	lo.hooks = attach_hooks(conf->attach);
	lo.roles = conf_roles(conf);
	a->skel = shift_skel_load_pinned(&lo, &a->adopted);
	if (!a->skel) {
		/* Pins of another map ABI, or a set no shiftd leaves: found before
		 * the load, and the next start would be refused the same way. */
		if (errno == EPROTO || errno == EUCLEAN)
			rc = 2;
		goto out_conf;
	}
	a->hooks_loaded = lo.hooks;
	a->roles_loaded = lo.roles;
	dp_maps_from_skel(&a->maps, a->skel);
	log_info("datapath loaded (%s programs of %s); maps %s under %s",
		 lo.hooks == SHIFT_LOAD_ALL ? "XDP and TC" :
		 lo.hooks == SHIFT_LOAD_XDP ? "XDP" :
					      "TC",
		 roles_name(lo.roles, rolebuf, sizeof(rolebuf)),
		 a->adopted ? "adopted" : "created and pinned", conf->bpffs_dir);
	/* Before any program of this build attaches: after an upgrade the VIPs
	 * may be adopted and the filter new (another layout), or empty. */
	rc = dp_vip_filter_rebuild(&a->maps);
	if (rc) {
		log_err("cannot build the VIP filter: %s", strerror(-rc));
		rc = 1;
		goto out;
	}

	/* apply_config takes ownership of conf, even when it fails. */
	rc = apply_config(a, conf, true);
	conf = NULL;
	if (rc) {
		rc = 1;
		goto out;
	}
	rc = 1;
	persist_restore(a, a->adopted);
	if (!a->adopted)
		for (__u32 i = 0; i < SHIFT_MAX_SERVICES; i++)
			if (a->svc[i])
				apply_weight(a, a->svc[i]);

	if (nl_open(&a->nl))
		log_warn("netlink unavailable: no link watch, next hops via the FIB");
	else if (a->adopted)
		client_nhs_tidy(a, NULL);
	if (nexthops_init(a)) {
		log_err("next hops: out of memory");
		goto out;
	}
	iface_plan(a);
	detach_unplanned(a);
	err_attach = attach_all(a, true);
	if (err_attach) {
		/* Another XDP program on the hook, or a hook or mode the interface
		 * does not have: the next start would fail the same way. */
		if (err_attach == -EBUSY || err_attach == -EEXIST || err_attach == -EOPNOTSUPP) {
			log_err("not starting: an interface refuses shift's program (above); once "
				"that is fixed, start shiftd again (the unit does not retry exit 2)");
			rc = 2;
		}
		goto out;
	}
	/* Before the loop, all at once: nothing waits on it yet. */
	nexthops_drain(a);

	lp.epfd = epoll_create1(EPOLL_CLOEXEC);
	/* Notify hooks are fire-and-forget: let the kernel reap them. */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	lp.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	lp.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (lp.epfd < 0 || lp.sigfd < 0 || lp.timerfd < 0) {
		log_err("event loop setup: %s", strerror(errno));
		goto out;
	}
	its.it_interval.tv_nsec = TICK_MS * 1000000L;
	its.it_value.tv_nsec = TICK_MS * 1000000L;
	if (timerfd_settime(lp.timerfd, 0, &its, NULL)) {
		log_err("timerfd: %s", strerror(errno));
		goto out;
	}
	lp.ctlfd = control_open(a->conf, &lp.ctl_group, &lp.ctl_bound);
	if (lp.ctlfd < 0) {
		/* Another process serves that path: a config clash, not a transient. */
		if (lp.ctlfd == -EADDRINUSE)
			rc = 2;
		goto out;
	}
	if (control_start(&lp.ctl, a, lp.ctlfd, lp.ctl_group, reload_fleet))
		goto out;
	lp.ctl_epfd = control_fd(&lp.ctl);
	lp.rb = samples_open(a);
	if (!lp.rb)
		goto out;
	lp.rbfd = ring_buffer__epoll_fd(lp.rb);
	/* What the rings kept while no shiftd read them, before anything else. */
	samples_backlog(a, lp.rb);
	if (a->nl)
		lp.nlfd = nl_event_fd(a->nl);
	if (epoll_add(lp.epfd, lp.sigfd) || epoll_add(lp.epfd, lp.timerfd) ||
	    epoll_add(lp.epfd, lp.ctl_epfd) || epoll_add(lp.epfd, lp.rbfd) ||
	    (lp.nlfd >= 0 && epoll_add(lp.epfd, lp.nlfd))) {
		log_err("epoll: %s", strerror(errno));
		goto out;
	}
	a->sample_hook = shadow_on_sample;
	if (shadow_open(a) == 0) {
		lp.shadow_rbfd = shadow_ring_fd(a);
		lp.shadow_sockfd = shadow_sock_fd(a);
		if (epoll_add(lp.epfd, lp.shadow_rbfd) || epoll_add(lp.epfd, lp.shadow_sockfd)) {
			log_err("epoll: %s", strerror(errno));
			goto out;
		}
	} else {
		log_warn("shadow mode unavailable (no shadow ring in the datapath)");
	}
	if (health_fd(a) < 0 || epoll_add(lp.epfd, a->health_epfd)) {
		log_err("health check events: %s", strerror(errno));
		goto out;
	}
	/* Before privileges go: http_listen may be a port below 1024. */
	if (http_start(&lp.http, a))
		goto out;
	a->http = &lp.http;
	lp.http.rb = lp.rb;
	lp.httpfd = http_fd(&lp.http);
	if (lp.httpfd >= 0 && epoll_add(lp.epfd, lp.httpfd)) {
		log_err("epoll: %s", strerror(errno));
		goto out;
	}
	/* After state_dir and the maps: the node serves its last state (fail-static)
	 * whether etcd answers or not, and joins the fleet from the loop. */
	lp.fleet = fleet_open(a);
	if (a->conf->fleet.enabled && !lp.fleet) {
		log_err("fleet: cannot set up the etcd client");
		goto out;
	}
	if (lp.fleet) {
		lp.fleetfd = fleet_fd(lp.fleet);
		if (epoll_add(lp.epfd, lp.fleetfd)) {
			log_err("epoll: %s", strerror(errno));
			goto out;
		}
	}
	persist_save(a);
	/* Everything that needed more (bpffs mount, pins, socket chown) is done. */
	privs_drop();
	log_info("ready: %u services, control socket %s", a->conf->n_services,
		 a->conf->control_socket);
	/* Saves before this one (the start's) were written in place. */
	if (!persist_start(a)) {
		lp.persistfd = persist_fd(a);
		if (epoll_add(lp.epfd, lp.persistfd))
			log_warn("epoll: state writer: %s; its outcomes are read each tick",
				 strerror(errno));
	}
	metrics_start(&lp.metrics);
	metrics_tick(&lp.metrics, a); /* the first shift.prom now, not a tick later */
	if (sdnotify_init(&lp.sd))
		log_info("systemd watchdog: pinging every %llu ms",
			 (unsigned long long)(lp.sd.wd_every_ns / 1000000));
	sd_notify_msg("READY=1");
	rc = run_loop(a, &lp) ? 1 : 0;
	sd_notify_msg("STOPPING=1");
	/* The next shiftd would not know what was left of a rollback's eviction. */
	evict_finish(a);
	/* What waited for the next tick (a rollback's record among it): after a
	 * stop, a reboot restores from this file alone. */
	if (a->persist_dirty || a->persist_failing)
		persist_save(a);
	metrics_stop(&lp.metrics);
out:
	/* Saves handed over are written, and the hooks that waited for them run. */
	persist_stop(a);
	http_stop(&lp.http);
	samples_close(a, lp.rb);
	control_stop(&lp.ctl);
	control_close(lp.ctlfd, a->conf->control_socket, &lp.ctl_bound);
	if (lp.sigfd >= 0)
		close(lp.sigfd);
	if (lp.timerfd >= 0)
		close(lp.timerfd);
	if (lp.epfd >= 0)
		close(lp.epfd);
	nexthops_free(a);
	if (a->nl)
		nl_close(a->nl);
	if (a->health_epfd > 0)
		close(a->health_epfd);
	fleet_close(lp.fleet);
	/* Programs stay attached through their pinned links; maps stay pinned. */
	shadow_close(a);
	if (a->skel) {
		dp_weight_cas_close(&a->maps);
		shift__destroy(a->skel);
	}
	for (opt = 0; opt < SHIFT_MAX_SERVICES; opt++)
		if (a->svc[opt]) {
			analysis_free(&a->svc[opt]->an);
			free(a->svc[opt]);
		}
	conf_free(a->conf);
out_conf:
	conf_free(conf);
	free(a);
	/* Last: the next shiftd may start once everything above is done. */
	if (pinfd >= 0)
		close(pinfd);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}
