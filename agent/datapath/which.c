// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <shift/flow_hash.h>
#include "config/addr.h"
#include "datapath/dataplane.h"
#include "datapath/which.h"

int which_parse_client(const char *s, struct shift_addr_key *out, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n = strlen(s);
	const char *colon = strchr(s, ':');

	memset(out, 0, sizeof(*out));
	if (!n) {
		snprintf(err, errlen, "empty address (ADDR or ADDR:PORT)");
		return -EINVAL;
	}
	/* "[v6]:port" and "v4:port" are endpoints; the port is optional. */
	if ((s[0] == '[' && s[n - 1] != ']') || (colon && !strchr(colon + 1, ':'))) {
		if (addr_parse_endpoint(s, out, err, errlen))
			return -EINVAL;
		return 0;
	}
	if (s[0] == '[') {
		if (n < 3 || n - 2 >= sizeof(buf)) {
			snprintf(err, errlen, "'%.60s' is not an address", s);
			return -EINVAL;
		}
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		if (n >= sizeof(buf)) {
			snprintf(err, errlen, "'%.60s...' is not an address", s);
			return -EINVAL;
		}
		memcpy(buf, s, n + 1);
	}
	if (inet_pton(AF_INET, buf, out->addr) == 1 && s[0] != '[') {
		out->family = SHIFT_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = SHIFT_AF_INET6;
		return 0;
	}
	snprintf(err, errlen, "'%.60s' is not an IPv4 or IPv6 address (ADDR or ADDR:PORT)", s);
	return -EINVAL;
}

/* The override trie's longest match for the client, as the datapath looks it up. */
static int override_match(const struct shift_maps *m, __u32 sid, const struct shift_addr_key *c,
			  int *color)
{
	struct shift_lpm_key4 k4;
	struct shift_lpm_key6 k6;
	__u32 v;
	int rc;

	if (c->family == SHIFT_AF_INET) {
		memset(&k4, 0, sizeof(k4));
		k4.prefixlen = 64;
		k4.service_id = htonl(sid);
		k4.addr = c->addr[0];
		rc = bpf_map_lookup_elem(m->fd[SHIFT_MAP_OVR4], &k4, &v);
	} else {
		memset(&k6, 0, sizeof(k6));
		k6.prefixlen = 160;
		k6.service_id = htonl(sid);
		memcpy(k6.addr, c->addr, 16);
		rc = bpf_map_lookup_elem(m->fd[SHIFT_MAP_OVR6], &k6, &v);
	}
	if (rc)
		return errno == ENOENT ? -ENOENT : -errno;
	*color = v ? SHIFT_GREEN : SHIFT_BLUE;
	return 0;
}

/* The pool's backend at a ring slot; SHIFT_NO_BACKEND when the pool is empty. */
static __u32 ring_at(const struct shift_maps *m, __u32 sid, int color, __u32 slot)
{
	__u32 be = SHIFT_NO_BACKEND;

	if (dp_ring_get(m, sid, color, slot, &be))
		return SHIFT_NO_BACKEND;
	return be;
}

int which_compute(const struct shift_maps *m, __u32 sid, const struct shift_addr_key *client,
		  struct which_result *out)
{
	struct shift_svc_info info;
	struct shift_config cfg;
	__u32 word = 0, h = 0, slot = 0, be;
	bool port = client->port != 0;
	int err, color = SHIFT_BLUE;

	memset(out, 0, sizeof(*out));
	out->backend_id = SHIFT_NO_BACKEND;
	err = dp_svc_info_get(m, sid, &info);
	if (err)
		return err;
	if (!(info.flags & SHIFT_SVC_F_IN_USE))
		return -ENOENT;
	if (client->family != info.family)
		return -EAFNOSUPPORT;
	err = dp_config_get(m, &cfg);
	if (err)
		return err;
	err = dp_weight_get(m, sid, &word);
	if (err)
		return err;

	out->client_affinity = info.flags & SHIFT_SVC_F_CLIENT_AFFINITY;
	out->prefix = info.family == SHIFT_AF_INET ? SHIFT_SVC_PREFIX4(info.flags) :
						     SHIFT_SVC_PREFIX6(info.flags);
	out->latched = word & SHIFT_WEIGHT_LATCHED;
	out->weight_bp = out->latched ? 0 : word & SHIFT_WEIGHT_MASK;
	if (port) {
		if (info.family == SHIFT_AF_INET)
			h = shift_flow_hash4(client->addr[0], info.vip[0], client->port, info.vport,
					     info.proto, cfg.hash_seed);
		else
			h = shift_flow_hash6(client->addr, info.vip, client->port, info.vport,
					     info.proto, cfg.hash_seed);
		slot = shift_ring_slot(h);
	}

	if (out->latched) {
		out->why = WHICH_ROLLED_BACK;
		color = SHIFT_BLUE;
	} else if ((info.flags & SHIFT_SVC_F_OVERRIDES) &&
		   override_match(m, sid, client, &color) == 0) {
		out->why = WHICH_OVERRIDE;
	} else {
		__u32 ch;

		out->why = WHICH_WEIGHT;
		if (out->client_affinity)
			ch = info.family == SHIFT_AF_INET ?
				     shift_client_hash4(client->addr[0], out->prefix,
							cfg.hash_seed) :
				     shift_client_hash6(client->addr, out->prefix, cfg.hash_seed);
		else if (port)
			ch = h;
		else {
			out->color = -1; /* flow affinity: each source port draws anew */
			return 0;
		}
		out->slice = shift_slice(ch);
		color = out->slice < out->weight_bp ? SHIFT_GREEN : SHIFT_BLUE;
	}

	/* A ring is all empty or all full: any slot tells whether the pool can serve. */
	be = ring_at(m, sid, color, slot);
	if (be == SHIFT_NO_BACKEND) {
		if (out->latched || (color == SHIFT_BLUE && !out->weight_bp)) {
			/* The latch never borrows green, nor does weight 0. */
			out->no_backend = true;
		} else {
			color ^= 1;
			out->borrowed = true;
			be = ring_at(m, sid, color, slot);
			out->no_backend = be == SHIFT_NO_BACKEND;
		}
	}
	out->color = color;
	if (port && !out->no_backend) {
		err = dp_backend_get(m, be, &out->be);
		if (err)
			return err;
		out->backend_id = be;
	}
	return 0;
}
