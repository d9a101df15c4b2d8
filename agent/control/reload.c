// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Reload: a validated config -> maps, at start and on SIGHUP. Ids are the contract with the connection table (a flow
 * entry names a backend id), so they stay stable: across reloads by name and
 * address, across restarts by reading them back from the pinned maps.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>

#include "config/addr.h"
#include "datapath/snat.h"
#include "agent.h"
#include "analysis/evict.h"
#include "analysis/health.h"
#include "analysis/samples.h"
#include "ops/log.h"
#include "config/weight.h"
#include "shadow/shadow.h"

/* The service is out of the lookup either way; a failure tidying up after it
 * (its VIP's filter entry) is said, not swallowed. */
static void service_del(struct agent *a, __u32 id, const struct shift_addr_key *vip,
			const char *name)
{
	int err = dp_service_del(&a->maps, id, vip);

	if (err && err != -ENOENT)
		log_err("service %s: removing it from the maps: %s", name, strerror(-err));
}

/* The same backend: address, port and protocol (a service's protocol may
 * change on reload; its backends' index keys hold it). */
static bool same_key(const struct shift_addr_key *x, const struct shift_addr_key *y)
{
	return x->family == y->family && x->port == y->port && x->proto == y->proto &&
	       !memcmp(x->addr, y->addr, sizeof(x->addr));
}

static void limits_from_conf(struct trigger_limits *l, const struct conf_service *c)
{
	l->window_ns = c->window_ns;
	l->min_requests = c->min_requests;
	l->max_error_rate = c->max_error_rate;
	l->max_error_rate_increase = c->max_error_rate_increase;
	l->max_latency_p99_ns = c->max_latency_p99_ns;
	l->max_latency_p95_ns = c->max_latency_p95_ns;
	l->max_latency_ratio = c->max_latency_ratio;
	l->max_consecutive_errors = c->max_consecutive_errors;
	l->analysis_connect = c->analysis_connect;
	l->analysis_auto = c->analysis_auto;
}

/* A backend id: the one this backend had in the pinned maps, else a free slot
 * (*fresh then: the counters there are a removed backend's). */
static int backend_id_for(struct agent *a, __u32 sid, int color, const struct shift_addr_key *k,
			  __u32 *id, bool *fresh)
{
	struct shift_addr_key bk;
	struct shift_backend be;
	__u32 i, found;

	memset(&bk, 0, sizeof(bk));
	memcpy(bk.addr, k->addr, sizeof(bk.addr));
	bk.port = k->port;
	bk.proto = k->proto;
	bk.family = k->family;
	if (dp_backend_find(&a->maps, &bk, &found) == 0 && found < SHIFT_MAX_BACKENDS &&
	    !a->be_used[found] && dp_backend_get(&a->maps, found, &be) == 0 &&
	    (be.flags & SHIFT_BE_F_ACTIVE) && be.service_id == sid && be.color == color) {
		/* Adopted at a start: fresh slots come after the pinned ones. */
		if (found >= a->be_cursor)
			a->be_cursor = (found + 1) % SHIFT_MAX_BACKENDS;
		*id = found;
		*fresh = false;
		return 0;
	}
	/*
	 * A fresh slot, from where the last one was taken: a slot freed by a
	 * removed backend is taken again only after every other free one. Idle
	 * flow entries still name it, and the datapath trusts an entry whose
	 * backend is active in its service: reused at once (the lowest free
	 * slot), it sent such a flow to the new backend, green or blue, where
	 * the stale entry should have made it steer afresh.
	 */
	for (i = 0; i < SHIFT_MAX_BACKENDS; i++) {
		__u32 slot = (a->be_cursor + i) % SHIFT_MAX_BACKENDS;

		if (a->be_used[slot])
			continue;
		if (dp_backend_get(&a->maps, slot, &be) == 0 && (be.flags & SHIFT_BE_F_ACTIVE))
			continue;
		a->be_cursor = (slot + 1) % SHIFT_MAX_BACKENDS;
		*id = slot;
		*fresh = true;
		return 0;
	}
	return -ENOSPC;
}

static int service_id_for(struct agent *a, const char *name, __u32 *id)
{
	struct shift_svc_info info;
	__u32 i;

	if (dp_service_find(&a->maps, name, id, NULL) == 0 && !a->svc[*id]) {
		/* Adopted at a start: fresh ids come after the pinned ones. */
		if (*id >= a->svc_cursor)
			a->svc_cursor = (*id + 1) % SHIFT_MAX_SERVICES;
		return 0;
	}
	/*
	 * A fresh id, from where the last one was taken: an id freed by a
	 * removed service (a renamed one is removed, then added) is given again
	 * only after every other free one. Samples carry the id: the removed
	 * service's, still queued in the rings (ordinary ones wait for a batch),
	 * given at once to the lowest free id fed the next service's windows and
	 * streak, and a green error of the old one could roll the new one back.
	 */
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		__u32 sid = (a->svc_cursor + i) % SHIFT_MAX_SERVICES;

		if (a->svc[sid] || evict_holds_id(a, sid))
			continue;
		if (dp_svc_info_get(&a->maps, sid, &info) == 0 && (info.flags & SHIFT_SVC_F_IN_USE))
			continue;
		a->svc_cursor = (sid + 1) % SHIFT_MAX_SERVICES;
		*id = sid;
		return 0;
	}
	return -ENOSPC;
}

/* New ones first; prune_overrides() drops the ones gone: no window without an override. */
static int write_overrides(struct agent *a, struct service_rt *s)
{
	const struct conf_service *c = s->conf;
	__u32 i;
	int err;

	for (i = 0; i < c->n_green_sources; i++) {
		err = dp_override_put(&a->maps, s->id, c->green_sources[i].family,
				      c->green_sources[i].addr, c->green_sources[i].prefixlen,
				      SHIFT_GREEN);
		if (err)
			return err;
	}
	for (i = 0; i < c->n_blue_sources; i++) {
		err = dp_override_put(&a->maps, s->id, c->blue_sources[i].family,
				      c->blue_sources[i].addr, c->blue_sources[i].prefixlen,
				      SHIFT_BLUE);
		if (err)
			return err;
	}
	return 0;
}

/* An override the running config still has: its service's, for that prefix. */
static bool override_configured(void *ctx, __u32 service_id, __u8 family, const __u32 *addr,
				__u8 prefixlen)
{
	const struct agent *a = ctx;
	const struct service_rt *s = service_id < SHIFT_MAX_SERVICES ? a->svc[service_id] : NULL;
	const struct conf_service *c = s ? s->conf : NULL;
	__u32 j;

	for (j = 0; c && j < c->n_green_sources + c->n_blue_sources; j++) {
		const struct conf_cidr *n = j < c->n_green_sources ?
						    &c->green_sources[j] :
						    &c->blue_sources[j - c->n_green_sources];

		if (n->family == family && n->prefixlen == prefixlen &&
		    !memcmp(n->addr, addr, family == SHIFT_AF_INET ? 4 : 16))
			return true;
	}
	return false;
}

/*
 * Overrides the config no longer has, whoever wrote them: a prefix dropped
 * while shiftd was down, or a removed service's, whose id the next new
 * service may get. A diff against the previous config saw neither, and the
 * datapath consults the trie for any service with overrides.
 */
static void prune_overrides(struct agent *a)
{
	__u32 removed = 0;
	int err = dp_overrides_prune(&a->maps, override_configured, a, &removed);

	if (err)
		log_warn("cannot remove stale source overrides: %s", strerror(-err));
	if (removed)
		log_info("%u source override(s) no longer configured removed", removed);
}

static void backend_entry(struct backend_rt *b, __u32 sid, int color)
{
	struct shift_backend *e = &b->entry;
	bool nh = e->flags & SHIFT_BE_F_NH_VALID;

	memcpy(e->addr, b->addr.addr, sizeof(e->addr));
	e->port = b->addr.port;
	e->family = b->addr.family;
	e->flags = SHIFT_BE_F_ACTIVE | (nh ? SHIFT_BE_F_NH_VALID : 0);
	e->service_id = sid;
	e->color = color;
}

/* Bring one service's backends in line with its config, keeping known ones. */
static int apply_backends(struct agent *a, struct service_rt *s)
{
	const struct conf_service *c = s->conf;
	struct backend_rt old[SHIFT_COLORS][SHIFT_MAX_POOL_BACKENDS];
	__u32 old_n[SHIFT_COLORS];
	int color, err;
	__u32 i, j;

	memcpy(old, s->pool, sizeof(old));
	memcpy(old_n, s->n, sizeof(old_n));
	for (color = 0; color < SHIFT_COLORS; color++) {
		const struct shift_addr_key *want = color ? c->green : c->blue;
		__u32 n = color ? c->n_green : c->n_blue;

		for (i = 0; i < n; i++) {
			struct backend_rt *b = &s->pool[color][i];
			bool known = false;

			for (j = 0; j < old_n[color]; j++) {
				if (old[color][j].id != (__u32)-1 &&
				    same_key(&old[color][j].addr, &want[i])) {
					*b = old[color][j];
					old[color][j].id = (__u32)-1;
					known = true;
					break;
				}
			}
			if (!known) {
				bool fresh;

				memset(b, 0, sizeof(*b));
				b->addr = want[i];
				b->healthy = true;
				b->hc_fd = -1;
				err = backend_id_for(a, s->id, color, &want[i], &b->id, &fresh);
				if (err) {
					log_err("service %s: no free backend slot", c->name);
					return err;
				}
				a->be_used[b->id] = 1;
				/* A new backend's counters start at 0, not at a removed
				 * one's totals (the slot keeps them until reused). */
				if (fresh)
					dp_backend_stats_reset(&a->maps, b->id);
			}
			b->addr.proto = c->vip.proto;
			backend_entry(b, s->id, color);
			err = dp_backend_put(&a->maps, b->id, &b->entry, c->vip.proto);
			if (err) {
				log_err("service %s: cannot write backend %u: %s", c->name, b->id,
					strerror(-err));
				return err;
			}
		}
		s->n[color] = n;
	}
	/* Backends gone from the config: their flows re-steer on the next packet. */
	for (color = 0; color < SHIFT_COLORS; color++) {
		for (j = 0; j < old_n[color]; j++) {
			if (old[color][j].id == (__u32)-1)
				continue;
			if (old[color][j].hc_fd >= 0)
				close(old[color][j].hc_fd);
			dp_backend_del(&a->maps, old[color][j].id, old[color][j].addr.proto);
			a->be_used[old[color][j].id] = 0;
		}
	}
	a->nexthops_dirty = true;
	return 0;
}

static void service_free(struct agent *a, struct service_rt *s)
{
	(void)a;
	health_stop(s);
	analysis_free(&s->an);
	free(s);
}

static int remove_service(struct agent *a, struct service_rt *s)
{
	struct shift_svc_info info;
	int c;
	__u32 i;

	log_info("service %s: removed", s->conf ? s->conf->name : "?");
	for (c = 0; c < SHIFT_COLORS; c++) {
		dp_pool_set(&a->maps, s->id, c, NULL, NULL, 0);
		for (i = 0; i < s->n[c]; i++) {
			dp_backend_del(&a->maps, s->pool[c][i].id, s->pool[c][i].addr.proto);
			a->be_used[s->pool[c][i].id] = 0;
		}
	}
	if (dp_svc_info_get(&a->maps, s->id, &info) == 0 && (info.flags & SHIFT_SVC_F_IN_USE)) {
		struct shift_addr_key vip;

		memset(&vip, 0, sizeof(vip));
		memcpy(vip.addr, info.vip, sizeof(vip.addr));
		vip.port = info.vport;
		vip.proto = info.proto;
		vip.family = info.family;
		service_del(a, s->id, &vip, s->conf->name);
	}
	dp_weight_set(&a->maps, s->id, 0);
	/* Its entries go over the next loop turns; the id is not given out meanwhile. */
	evict_removed_start(a, s->id, s->conf ? s->conf->name : "?");
	a->svc[s->id] = NULL;
	service_free(a, s);
	return 0;
}

/* Pinned services that are no longer configured (found at an adopting start). */
static void remove_stale_pinned(struct agent *a, const struct shift_conf *c)
{
	struct shift_svc_info info;
	struct shift_backend be;
	__u32 i;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		if (a->svc[i] || dp_svc_info_get(&a->maps, i, &info) ||
		    !(info.flags & SHIFT_SVC_F_IN_USE))
			continue;
		if (conf_find_service(c, info.name))
			continue;
		{
			struct shift_addr_key vip;

			memset(&vip, 0, sizeof(vip));
			memcpy(vip.addr, info.vip, sizeof(vip.addr));
			vip.port = info.vport;
			vip.proto = info.proto;
			vip.family = info.family;
			log_info("service %s: in the pinned maps but not in the config, removed",
				 info.name);
			dp_pool_set(&a->maps, i, SHIFT_BLUE, NULL, NULL, 0);
			dp_pool_set(&a->maps, i, SHIFT_GREEN, NULL, NULL, 0);
			service_del(a, i, &vip, info.name);
			dp_weight_set(&a->maps, i, 0);
			evict_removed_start(a, i, info.name);
		}
	}
	for (i = 0; i < SHIFT_MAX_BACKENDS; i++) {
		if (a->be_used[i] || dp_backend_get(&a->maps, i, &be) ||
		    !(be.flags & SHIFT_BE_F_ACTIVE))
			continue;
		/* Active in the map but owned by nobody: a backend dropped while we were down. */
		dp_backend_del(&a->maps, i, IPPROTO_TCP);
		dp_backend_del(&a->maps, i, IPPROTO_UDP);
	}
}

/*
 * The runs of c's snat_ports outside the host's ephemeral ports, into cfg
 * (its ports; addresses left to the caller), and how many ports they hold.
 * -ERANGE with err set when none is left. *range_err: ip_local_port_range
 * could not be read (then every port of snat_ports counts).
 */
static int snat_plan(const struct conf_service *c, struct shift_snat_cfg *cfg, __u32 *ports,
		     int *range_err, char *err, size_t errlen)
{
	__u16 elo = 1, ehi = 0;

	memset(cfg, 0, sizeof(*cfg));
	*range_err = snat_local_ports(&elo, &ehi);
	if (*range_err) {
		elo = 1;
		ehi = 0;
	}
	*ports = snat_runs(c->snat_port_lo, c->snat_port_hi, elo, ehi, cfg);
	if (*ports)
		return 0;
	snprintf(err, errlen,
		 "service %s: snat_ports %u-%u lie inside the host's ephemeral ports %u-%u "
		 "(ip_local_port_range): no port left for source NAT",
		 c->name, c->snat_port_lo, c->snat_port_hi, elo, ehi);
	return -ERANGE;
}

/*
 * What the config's own checks cannot know: the host's ephemeral ports, which
 * a service's snat_ports must leave room beside. Checked for every service
 * before anything is written, so a reload refused here changes nothing.
 */
int reload_precheck(const struct shift_conf *c, char *err, size_t errlen)
{
	struct shift_snat_cfg cfg;
	__u32 i, ports;
	int rc, range_err;

	for (i = 0; i < c->n_services; i++) {
		if (!c->services[i].n_snat)
			continue;
		rc = snat_plan(&c->services[i], &cfg, &ports, &range_err, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* A service's source NAT settings into the datapath; sets SHIFT_SVC_F_SNAT. */
static int apply_snat(struct agent *a, __u32 id, const struct conf_service *c, __u32 *flags)
{
	struct shift_snat_cfg cfg;
	__u32 i, ports;
	int range_err;
	char b[256];
	int err;

	memset(&cfg, 0, sizeof(cfg));
	if (c->n_snat) {
		err = snat_plan(c, &cfg, &ports, &range_err, b, sizeof(b));
		if (range_err)
			log_warn("service %s: cannot read ip_local_port_range (%s): source NAT "
				 "may use the host's own ephemeral ports",
				 c->name, strerror(-range_err));
		if (err) {
			log_err("%s", b);
			return err;
		}
		for (i = 0; i < c->n_snat && i < SHIFT_SNAT_MAX_ADDRS; i++)
			memcpy(cfg.addr[i], c->snat[i], sizeof(cfg.addr[i]));
		cfg.n_addrs = i;
		*flags |= SHIFT_SVC_F_SNAT;
		log_info("service %s: source NAT to %s%s, %u ports (%u-%u%s)", c->name,
			 addr_format(c->vip.family, c->snat[0], b, sizeof(b)),
			 c->n_snat > 1 ? " and more" : "", ports, c->snat_port_lo, c->snat_port_hi,
			 ports < (__u32)(c->snat_port_hi - c->snat_port_lo + 1u) ?
				 " without the host's ephemeral ports" :
				 "");
	}
	err = dp_snat_set(&a->maps, id, &cfg);
	if (err && c->n_snat) {
		log_err("service %s: cannot write the source NAT settings: %s", c->name,
			strerror(-err));
		return err;
	}
	return 0;
}

int apply_config(struct agent *a, struct shift_conf *newc, bool initial)
{
	const struct conf_service *olds[SHIFT_MAX_SERVICES] = { 0 };
	struct shift_conf *oldc = a->conf;
	__u32 i;
	int err = 0;

	/*
	 * What the rings hold was made under the running config: to the services
	 * that made it, before one is removed or renamed. Read after, a removed
	 * service's samples count nowhere (its id is not given again at once:
	 * service_id_for()), and a service losing them may miss its rollback.
	 */
	if (!initial && a->rb) {
		int rc = samples_poll(a, a->rb);

		if (rc < 0)
			log_warn("reading the sample rings before the reload: %s", strerror(-rc));
	}
	/* New backends and intervals: the health checks look again at once. */
	health_kick(a);
	/* Services gone from the new config. */
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (s && !conf_find_service(newc, s->conf->name))
			remove_service(a, s);
	}
	/*
	 * Re-point the survivors at the new config before any write, so that an
	 * error half-way never leaves a service pointing into the freed old one.
	 */
	for (i = 0; i < newc->n_services; i++) {
		struct service_rt *s = agent_service(a, newc->services[i].name);

		if (s) {
			olds[i] = s->conf;
			s->conf = &newc->services[i];
		}
	}
	for (i = 0; i < newc->n_services; i++) {
		const struct conf_service *c = &newc->services[i];
		const struct conf_service *old = olds[i];
		struct service_rt *s = old ? agent_service(a, c->name) : NULL;
		struct shift_svc_info info;
		struct weight_state was;
		bool is_new = !old;
		__u32 flags = 0;

		if (!s) {
			s = calloc(1, sizeof(*s));
			if (!s) {
				err = -ENOMEM;
				goto out;
			}
			err = service_id_for(a, c->name, &s->id);
			if (err) {
				free(s);
				log_err("service %s: no free service slot", c->name);
				goto out;
			}
			limits_from_conf(&s->limits, c);
			err = analysis_init(&s->an, &s->limits);
			if (err) {
				free(s);
				goto out;
			}
			a->svc[s->id] = s;
			s->conf = c;
		} else if (s->limits.window_ns != c->window_ns ||
			   s->limits.analysis_connect != c->analysis_connect ||
			   s->limits.analysis_auto != c->analysis_auto) {
			/* Against what the service runs with, not the previous config:
			 * a reload that failed before this service left that unapplied. */
			/* A new window length or unit: old samples would mislead. */
			analysis_free(&s->an);
			limits_from_conf(&s->limits, c);
			err = analysis_init(&s->an, &s->limits);
			if (err)
				goto out;
		} else {
			limits_from_conf(&s->limits, c);
		}

		/* A VIP that moved leaves its old key behind unless removed. */
		if (dp_svc_info_get(&a->maps, s->id, &info) == 0 &&
		    (info.flags & SHIFT_SVC_F_IN_USE) &&
		    (memcmp(info.vip, c->vip.addr, sizeof(info.vip)) || info.vport != c->vip.port ||
		     info.proto != c->vip.proto || info.family != c->vip.family)) {
			struct shift_addr_key ov;

			memset(&ov, 0, sizeof(ov));
			memcpy(ov.addr, info.vip, sizeof(ov.addr));
			ov.port = info.vport;
			ov.proto = info.proto;
			ov.family = info.family;
			service_del(a, s->id, &ov, c->name);
		}

		err = apply_backends(a, s);
		if (err)
			goto out;
		err = apply_pools(a, s);
		if (err)
			goto out;
		err = write_overrides(a, s);
		if (err) {
			log_err("service %s: cannot write source overrides: %s", c->name,
				strerror(-err));
			goto out;
		}

		was = agent_weight_state(s);
		if (is_new) {
			__u32 word;

			if (initial && a->adopted &&
			    dp_service_find(&a->maps, c->name, &word, NULL) == 0) {
				/* Adopted: the pinned weight and latch are the truth. */
				agent_sync_from_maps(a, s);
			} else {
				s->weight = c->green_weight;
				s->latched = false;
			}
		} else if (s->conf_weight != c->green_weight) {
			char w[WEIGHT_STR_LEN];

			if (s->latched)
				log_warn(
					"service %s: green_weight changed to %s but the service is "
					"rolled back; it stays at 0 until 'shiftctl clear'",
					c->name, weight_format(c->green_weight, w, sizeof(w)));
			else if (a->fleet.enabled)
				/* The fleet's weight is shared: one host's file must not
				 * move it here alone (nor raise green while cut off). */
				log_warn("service %s: green_weight changed to %s but this host "
					 "follows the fleet's weight; 'shiftctl set-weight' "
					 "changes it on every host",
					 c->name, weight_format(c->green_weight, w, sizeof(w)));
			else
				s->weight = c->green_weight;
		}
		/* A service shiftd already ran: over the word it had only, so that
		 * a rollback shiftctl wrote, its sync still on the way (the eviction,
		 * the etcd write), is not overwritten by a reload in between. */
		err = is_new ? apply_weight(a, s) : apply_weight_over(a, s, &was);
		if (err == -EAGAIN) {
			log_info(
				"service %s: the weight was changed outside shiftd (shiftctl); the "
				"reload keeps it",
				c->name);
			err = 0;
		}
		if (err)
			goto out;
		/* The config's weight, taken (or overruled by a latch): a later
		 * reload compares with this, not with a config that failed midway. */
		s->conf_weight = c->green_weight;

		if (c->n_green_sources || c->n_blue_sources)
			flags |= SHIFT_SVC_F_OVERRIDES;
		if (c->analysis_auto && c->vip.proto == IPPROTO_TCP)
			flags |= SHIFT_SVC_F_AUTO;
		else if (!c->analysis_connect && c->vip.proto == IPPROTO_TCP)
			flags |= SHIFT_SVC_F_HTTP;
		if (c->affinity_client)
			flags |= SHIFT_SVC_F_CLIENT_AFFINITY |
				 c->affinity_prefix4 << SHIFT_SVC_PREFIX4_SHIFT |
				 c->affinity_prefix6 << SHIFT_SVC_PREFIX6_SHIFT;
		if (c->connect_fallback && c->vip.proto == IPPROTO_TCP)
			flags |= SHIFT_SVC_F_FALLBACK;
		/* Before the flag: a flow must never see the flag without the addresses. */
		err = apply_snat(a, s->id, c, &flags);
		if (err)
			goto out;
		/* Last: the VIP goes live once backends, rings and weight are in place. */
		err = dp_service_put(&a->maps, s->id, &c->vip, flags);
		if (!err)
			err = dp_service_set_name(&a->maps, s->id, c->name);
		if (err) {
			log_err("service %s: cannot write the service: %s", c->name,
				strerror(-err));
			goto out;
		}
	}
	if (initial && a->adopted)
		remove_stale_pinned(a, newc);
	prune_overrides(a);
	a->conf = newc;
	err = shadow_apply(a);
out:
	/* Even after an error the maps reflect (part of) newc: it is the config now. */
	a->conf = newc;
	if (oldc != newc)
		conf_free(oldc);
	return err;
}
