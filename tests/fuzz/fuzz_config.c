// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness: conf_parse(), shiftd.conf as shiftd and shiftctl read it.
 * Properties: a refusal is -EINVAL with a message naming the file
 * ("fuzz.conf:LINE: reason" or "fuzz.conf: reason") and no config; success is a
 * fully resolved config the datapath can take: 1..SHIFT_MAX_SERVICES services
 * with distinct valid names, 1..CONF_MAX_INTERFACES interfaces, VIPs and
 * backends of the VIP's family carrying the service's protocol, a non-empty
 * blue pool, green weight <= SHIFT_WEIGHT_MAX and only with green backends,
 * health timeout shorter than the interval, every string terminated.
 * conf_salvage_parse() (shiftctl on a file that does not load) takes every
 * input, returns no service, and each part is either known (an absolute path,
 * the [fleet] conf_parse() would take) or distrusted with "fuzz.conf:LINE: ..."
 * and emptied; on a file conf_parse() accepts it agrees with it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <shift/maps.h>

#include "config/config.h"
#include "fuzz.h"

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static void check_key(const struct conf_service *s, const struct shift_addr_key *k,
		      const char *what)
{
	FUZZ_CHECK(k->family == s->vip.family, "%s: %s family %u, vip %u", s->name, what, k->family,
		   s->vip.family);
	FUZZ_CHECK(k->proto == s->vip.proto, "%s: %s proto %u, vip %u", s->name, what, k->proto,
		   s->vip.proto);
	FUZZ_CHECK(k->port != 0, "%s: %s port 0", s->name, what);
}

static void check_service(const struct shift_conf *c, __u32 idx)
{
	const struct conf_service *s = &c->services[idx];
	__u32 i;

	FUZZ_CHECK(TERMINATED(s->name) && s->name[0], "service %u: name", idx);
	FUZZ_CHECK(s->vip.family == SHIFT_AF_INET || s->vip.family == SHIFT_AF_INET6,
		   "%s: vip family %u", s->name, s->vip.family);
	FUZZ_CHECK(s->vip.proto == IPPROTO_TCP || s->vip.proto == IPPROTO_UDP, "%s: proto %u",
		   s->name, s->vip.proto);
	FUZZ_CHECK(s->n_blue >= 1 && s->n_blue <= SHIFT_MAX_POOL_BACKENDS, "%s: %u blue", s->name,
		   s->n_blue);
	FUZZ_CHECK(s->n_green <= SHIFT_MAX_POOL_BACKENDS, "%s: %u green", s->name, s->n_green);
	for (i = 0; i < s->n_blue; i++)
		check_key(s, &s->blue[i], "blue backend");
	for (i = 0; i < s->n_green; i++)
		check_key(s, &s->green[i], "green backend");
	FUZZ_CHECK(s->green_weight <= SHIFT_WEIGHT_MAX, "%s: weight %u", s->name, s->green_weight);
	FUZZ_CHECK(!s->green_weight || s->n_green, "%s: weight %u, no green backend", s->name,
		   s->green_weight);
	FUZZ_CHECK(s->health_timeout_ns < s->health_interval_ns, "%s: health timeout %llu >= %llu",
		   s->name, (unsigned long long)s->health_timeout_ns,
		   (unsigned long long)s->health_interval_ns);
	FUZZ_CHECK(TERMINATED(s->health_path), "%s: health path", s->name);
	FUZZ_CHECK(s->health != CONF_HC_HTTP || s->health_path[0] == '/', "%s: health path '%s'",
		   s->name, s->health_path);
	FUZZ_CHECK(s->n_green_sources + s->n_blue_sources <= CONF_MAX_SOURCES, "%s: %u sources",
		   s->name, s->n_green_sources + s->n_blue_sources);
	for (i = 0; i < s->n_green_sources; i++)
		FUZZ_CHECK(s->green_sources[i].family == s->vip.family, "%s: source family",
			   s->name);
	for (i = 0; i < s->n_blue_sources; i++)
		FUZZ_CHECK(s->blue_sources[i].family == s->vip.family, "%s: source family",
			   s->name);
	for (i = 0; i < idx; i++)
		FUZZ_CHECK(strcmp(c->services[i].name, s->name), "service %s twice", s->name);
}

static void check_salvage(const uint8_t *data, size_t size, const struct shift_conf *full)
{
	static const char *const what[] = { "bpffs_dir", "state_dir", "control_socket" };
	struct conf_salvage sv;
	struct shift_conf *c;
	const char *path[3];
	char err[512];
	int ret, p;

	ret = conf_salvage_parse((const char *)data, size, "fuzz.conf", &c, &sv, err, sizeof(err));
	FUZZ_CHECK(ret == 0 && c, "salvage refused with %d: %s", ret, err);
	FUZZ_CHECK(c->n_services == 0 && !c->services, "salvage: %u services", c->n_services);
	path[0] = c->bpffs_dir;
	path[1] = c->state_dir;
	path[2] = c->control_socket;
	for (p = 0; p < CONF_PART__N; p++) {
		FUZZ_CHECK(TERMINATED(sv.bad[p]), "salvage: %s's reason", conf_part_name(p));
		FUZZ_CHECK(!sv.bad[p][0] || !strncmp(sv.bad[p], "fuzz.conf:", 10),
			   "salvage: %s: '%s' does not name the file", conf_part_name(p),
			   sv.bad[p]);
		FUZZ_CHECK(!full || !sv.bad[p][0], "salvage distrusts %s of a file that loads: %s",
			   conf_part_name(p), sv.bad[p]);
	}
	for (p = 0; p < 3; p++) {
		FUZZ_CHECK(sv.bad[p][0] ? !path[p][0] : path[p][0] == '/', "salvage: %s '%s'",
			   what[p], path[p]);
		FUZZ_CHECK(!full || !strcmp(path[p], p == 0 ? full->bpffs_dir :
						     p == 1 ? full->state_dir :
							      full->control_socket),
			   "salvage: %s differs from conf_parse()'s", what[p]);
	}
	FUZZ_CHECK(!sv.bad[CONF_PART_FLEET][0] || !c->fleet.enabled,
		   "salvage: a distrusted [fleet] enabled");
	FUZZ_CHECK(!c->fleet.enabled || (c->fleet.n_endpoints && c->fleet.fleet[0]),
		   "salvage: [fleet] without endpoints or name");
	FUZZ_CHECK(!full || !memcmp(&c->fleet, &full->fleet, sizeof(c->fleet)),
		   "salvage: [fleet] differs from conf_parse()'s");
	conf_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shift_conf *c = (struct shift_conf *)1;
	char err[512];
	__u32 i;
	int ret;

	err[0] = '\0';
	ret = conf_parse((const char *)data, size, "fuzz.conf", &c, err, sizeof(err));
	if (ret) {
		FUZZ_CHECK(ret == -EINVAL, "refused with %d", ret);
		FUZZ_CHECK(!strncmp(err, "fuzz.conf:", 10), "message '%s' does not name the file",
			   err);
		FUZZ_CHECK(c == NULL, "refused, but a config came back");
		check_salvage(data, size, NULL);
		return 0;
	}
	FUZZ_CHECK(c != NULL, "accepted, no config");
	FUZZ_CHECK(c->n_interfaces >= 1 && c->n_interfaces <= CONF_MAX_INTERFACES, "%u interfaces",
		   c->n_interfaces);
	for (i = 0; i < c->n_interfaces; i++)
		FUZZ_CHECK(TERMINATED(c->interfaces[i]) && c->interfaces[i][0], "interface %u", i);
	FUZZ_CHECK(TERMINATED(c->backend_interface) && c->backend_interface[0],
		   "backend_interface");
	FUZZ_CHECK(TERMINATED(c->bpffs_dir) && c->bpffs_dir[0] == '/', "bpffs_dir");
	FUZZ_CHECK(TERMINATED(c->state_dir) && c->state_dir[0] == '/', "state_dir");
	FUZZ_CHECK(TERMINATED(c->textfile_dir) && c->textfile_dir[0] == '/', "textfile_dir");
	FUZZ_CHECK(TERMINATED(c->control_socket) && c->control_socket[0] == '/', "socket");
	FUZZ_CHECK(c->control_socket_mode == 0600 || c->control_socket_mode == 0660, "mode %o",
		   c->control_socket_mode);
	FUZZ_CHECK(TERMINATED(c->notify_command), "notify_command");
	FUZZ_CHECK(c->n_services >= 1 && c->n_services <= SHIFT_MAX_SERVICES, "%u services",
		   c->n_services);
	for (i = 0; i < c->n_services; i++)
		check_service(c, i);
	FUZZ_CHECK(conf_find_service(c, c->services[0].name) == &c->services[0],
		   "conf_find_service");
	check_salvage(data, size, c);
	conf_free(c);
	return 0;
}
