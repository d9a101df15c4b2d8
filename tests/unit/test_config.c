// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config parser: the SPEC's example and other valid files parse to the
 * expected values, every bad file is refused naming FILE:LINE and the reason,
 * and no input (truncated, mutated, not NUL-terminated) crashes it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/addr.h"
#include "config/config.h"
#include "config/units.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SEC UNITS_NS_PER_SEC
#define MS UNITS_NS_PER_MS

/* Copied from SPEC.md, section "Agent". */
static const char spec_example[] =
	"[global]\n"
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

static struct shift_conf *parse_ok(const char *text)
{
	struct shift_conf *c = NULL;
	char err[512] = "";
	int ret;

	ret = conf_parse(text, strlen(text), "t.conf", &c, err, sizeof(err));
	if (ret)
		fail_msg("valid config refused (%d): %s", ret, err);
	assert_non_null(c);
	return c;
}

static void assert_endpoint(const struct shift_addr_key *k, const char *want, __u8 proto)
{
	char buf[ADDR_ENDPOINT_LEN];

	assert_string_equal(addr_format_endpoint(k, buf, sizeof(buf)), want);
	assert_int_equal(k->proto, proto);
}

static void test_spec_example(void **state)
{
	struct shift_conf *c = parse_ok(spec_example);
	const struct conf_service *s;

	(void)state;
	/* conf_example() is the same text, so shiftctl can print a working start. */
	assert_string_equal(conf_example(), spec_example);
	assert_string_equal(c->path, "t.conf");
	assert_int_equal(c->n_interfaces, 1);
	assert_string_equal(c->interfaces[0], "eth0");
	assert_string_equal(c->backend_interface, "eth1");
	assert_int_equal(c->xdp_mode, CONF_XDP_AUTO);
	assert_int_equal(c->hash_seed, 0x5eed);
	assert_string_equal(c->bpffs_dir, "/sys/fs/bpf/shift");
	assert_string_equal(c->state_dir, "/var/lib/shift");
	assert_string_equal(c->textfile_dir, "/var/lib/prometheus/node-exporter");
	assert_string_equal(c->control_socket, "/run/shift/shiftd.sock");
	assert_string_equal(c->control_socket_group, "");
	assert_int_equal(c->control_socket_mode, 0600);
	assert_int_equal(c->metrics_interval_ns, 5 * SEC);
	assert_int_equal(c->max_flows, 1048576);
	assert_int_equal(c->max_flows6, 262144);
	assert_int_equal(c->syn_slots, SHIFT_SYN_SLOTS);
	assert_string_equal(c->notify_command, "");
	assert_int_equal(c->n_services, 1);

	s = conf_find_service(c, "web");
	assert_ptr_equal(s, &c->services[0]);
	assert_null(conf_find_service(c, "api"));
	assert_null(conf_find_service(c, NULL));
	assert_string_equal(s->name, "web");
	assert_int_equal(s->line, 11);
	assert_endpoint(&s->vip, "10.0.0.10:80", IPPROTO_TCP);
	assert_int_equal(s->n_blue, 2);
	assert_endpoint(&s->blue[0], "10.1.0.11:8080", IPPROTO_TCP);
	assert_endpoint(&s->blue[1], "10.1.0.12:8080", IPPROTO_TCP);
	assert_int_equal(s->n_green, 1);
	assert_endpoint(&s->green[0], "10.1.0.21:8080", IPPROTO_TCP);
	assert_int_equal(s->green_weight, 0);
	assert_int_equal(s->health, CONF_HC_HTTP);
	assert_string_equal(s->health_path, "/readyz");
	assert_int_equal(s->health_interval_ns, SEC);
	assert_int_equal(s->health_timeout_ns, 500 * MS);
	assert_int_equal(s->health_rise, 2);
	assert_int_equal(s->health_fall, 2);
	assert_int_equal(s->window_ns, 10 * SEC);
	assert_int_equal(s->min_requests, 20);
	assert_true(s->max_error_rate > 0.0499999 && s->max_error_rate < 0.0500001);
	assert_true(s->max_error_rate_increase > 0.0099999 &&
		    s->max_error_rate_increase < 0.0100001);
	assert_int_equal(s->max_latency_p99_ns, 500 * MS);
	assert_int_equal(s->max_latency_p95_ns, 0);
	assert_true(s->max_latency_ratio == 2.0);
	assert_int_equal(s->max_consecutive_errors, 5);
	assert_true(s->rollback_evict);
	assert_true(s->connect_fallback);
	assert_false(s->analysis_connect);
	assert_true(s->analysis_auto); /* the default for tcp */
	assert_int_equal(s->n_green_sources, 0);
	assert_int_equal(s->n_blue_sources, 0);
	conf_free(c);
}

static void test_minimal_defaults(void **state)
{
	struct shift_conf *c = parse_ok("[global]\n"
					"interface = eth0\n"
					"[service a]\n"
					"vip = 192.0.2.1:443\n"
					"blue = 198.51.100.1:443\n");
	const struct conf_service *s = &c->services[0];

	(void)state;
	assert_string_equal(c->backend_interface, "eth0");
	assert_int_equal(c->xdp_mode, CONF_XDP_AUTO);
	assert_int_equal(c->attach, CONF_ATTACH_AUTO);
	assert_int_equal(c->hash_seed, 0);
	assert_string_equal(c->bpffs_dir, "/sys/fs/bpf/shift");
	assert_string_equal(c->state_dir, "/var/lib/shift");
	assert_string_equal(c->textfile_dir, "/var/lib/prometheus/node-exporter");
	assert_string_equal(c->control_socket, "/run/shift/shiftd.sock");
	assert_int_equal(c->control_socket_mode, 0600);
	assert_int_equal(c->metrics_interval_ns, 5 * SEC);
	assert_int_equal(c->max_flows, 1048576);
	assert_int_equal(c->max_flows6, 262144);
	assert_int_equal(c->syn_slots, SHIFT_SYN_SLOTS);
	assert_endpoint(&s->vip, "192.0.2.1:443", IPPROTO_TCP);
	assert_int_equal(s->n_green, 0);
	assert_int_equal(s->green_weight, 0);
	assert_int_equal(s->health, CONF_HC_NONE);
	assert_int_equal(s->health_interval_ns, SEC);
	assert_int_equal(s->health_timeout_ns, 500 * MS);
	assert_int_equal(s->health_rise, 2);
	assert_int_equal(s->health_fall, 2);
	assert_int_equal(s->window_ns, 10 * SEC);
	assert_int_equal(s->min_requests, 20);
	assert_true(s->max_error_rate > 0.0499999 && s->max_error_rate < 0.0500001);
	assert_true(s->max_error_rate_increase < 0);
	assert_int_equal(s->max_latency_p99_ns, 0);
	assert_int_equal(s->max_latency_p95_ns, 0);
	assert_true(s->max_latency_ratio == 0);
	assert_int_equal(s->max_consecutive_errors, 5);
	assert_true(s->rollback_evict);
	assert_false(s->analysis_connect);
	assert_true(s->analysis_auto); /* the default for tcp */
	conf_free(c);
}

static void test_ipv6_service(void **state)
{
	struct shift_conf *c = parse_ok("[global]\n"
					"interface = eth0, eth1\n"
					"xdp_mode = native\n"
					"attach = tc\n"
					"hash_seed = 24301\n"
					"health_interval = 2s\n"
					"health_rise = 3\n"
					"[service v6]\n"
					"vip = [2001:db8::10]:443\n"
					"blue = [2001:db8::1]:8080, [2001:db8::2]:8080\n"
					"green = [2001:db8::21]:8443\n"
					"green_weight = 0.5%\n"
					"health_check = tcp\n"
					"health_timeout = 1500ms\n"
					"green_sources = 2001:db8:100::/48, 2001:db8:200::1\n"
					"blue_sources = 2001:db8:100:1::/64\n"
					"max_error_rate = off\n"
					"max_latency_p95 = 250ms\n"
					"max_consecutive_errors = off\n"
					"rollback_evict = no\n"
					"connect_fallback = no\n");
	const struct conf_service *s = &c->services[0];
	char buf[64];

	(void)state;
	assert_int_equal(c->n_interfaces, 2);
	assert_string_equal(c->interfaces[1], "eth1");
	assert_string_equal(c->backend_interface, "eth0");
	assert_int_equal(c->xdp_mode, CONF_XDP_NATIVE);
	assert_int_equal(c->attach, CONF_ATTACH_TC);
	assert_string_equal(conf_attach_name(c->attach), "tc");
	assert_int_equal(c->hash_seed, 24301);
	assert_endpoint(&s->vip, "[2001:db8::10]:443", IPPROTO_TCP);
	assert_int_equal(s->vip.family, SHIFT_AF_INET6);
	assert_endpoint(&s->blue[1], "[2001:db8::2]:8080", IPPROTO_TCP);
	assert_endpoint(&s->green[0], "[2001:db8::21]:8443", IPPROTO_TCP);
	assert_int_equal(s->green_weight, 50);
	assert_int_equal(s->health, CONF_HC_TCP);
	/* Merged: interval and rise from [global], timeout from the service. */
	assert_int_equal(s->health_interval_ns, 2 * SEC);
	assert_int_equal(s->health_timeout_ns, 1500 * MS);
	assert_int_equal(s->health_rise, 3);
	assert_int_equal(s->health_fall, 2);
	assert_int_equal(s->n_green_sources, 2);
	assert_int_equal(s->green_sources[0].prefixlen, 48);
	assert_int_equal(s->green_sources[0].line, 15);
	assert_string_equal(addr_format(s->green_sources[0].family, s->green_sources[0].addr, buf,
					sizeof(buf)),
			    "2001:db8:100::");
	assert_int_equal(s->green_sources[1].prefixlen, 128);
	assert_int_equal(s->n_blue_sources, 1);
	assert_int_equal(s->blue_sources[0].prefixlen, 64);
	assert_true(s->max_error_rate < 0);
	assert_int_equal(s->max_latency_p95_ns, 250 * MS);
	assert_int_equal(s->max_consecutive_errors, 0);
	assert_false(s->rollback_evict);
	assert_false(s->connect_fallback);
	conf_free(c);
}

static void test_udp_service(void **state)
{
	/* DNS over tcp and udp on one VIP and the same backends: distinct map keys. */
	struct shift_conf *c = parse_ok("[global]\n"
					"interface = eth0\n"
					"[service dns-udp]\n"
					"vip = 10.0.0.53:53\n"
					"protocol = udp\n"
					"blue = 10.1.0.53:53\n"
					"green = 10.1.0.54:53\n"
					"green_weight = 10\n"
					"health_check = tcp\n"
					"[service dns-tcp]\n"
					"vip = 10.0.0.53:53\n"
					"blue = 10.1.0.53:53\n"
					"analysis = tcp\n");
	const struct conf_service *u = conf_find_service(c, "dns-udp");
	const struct conf_service *t = conf_find_service(c, "dns-tcp");

	(void)state;
	assert_non_null(u);
	assert_non_null(t);
	assert_endpoint(&u->vip, "10.0.0.53:53", IPPROTO_UDP);
	assert_endpoint(&u->blue[0], "10.1.0.53:53", IPPROTO_UDP);
	assert_endpoint(&u->green[0], "10.1.0.54:53", IPPROTO_UDP);
	assert_int_equal(u->green_weight, 1000);
	assert_true(u->analysis_connect); /* udp: the flow is the unit */
	assert_false(u->analysis_auto);
	assert_endpoint(&t->vip, "10.0.0.53:53", IPPROTO_TCP);
	assert_true(t->analysis_connect);
	assert_false(t->analysis_auto);
	conf_free(c);

	/* A UDP VIP's complement (the flow key's, check_flow_keys()) is only a
	 * clash with a TCP VIP on the same port. */
	c = parse_ok(
		"[global]\ninterface = eth0\n"
		"[service u]\nvip = 10.0.0.10:80\nprotocol = udp\nblue = 10.1.0.1:80\n"
		"[service t]\nvip = 245.255.255.245:81\nblue = 10.1.0.2:80\n"
		"[service u2]\nvip = 245.255.255.245:80\nprotocol = udp\nblue = 10.1.0.3:80\n");
	assert_int_equal(c->n_services, 3);
	conf_free(c);

	/* IPv6 VIPs that fold alike clash only on the same port; a UDP VIP's
	 * first word complemented is no clash in IPv6 (the key folds the VIP). */
	c = parse_ok("[global]\ninterface = eth0\n"
		     "[service a]\nvip = [2001:db8::7]:443\nblue = [2001:db8:1::1]:443\n"
		     "[service b]\nvip = [2001:db8::1:0:ca]:444\nblue = [2001:db8:1::2]:443\n"
		     "[service u]\nvip = [2001:db8::7]:53\nprotocol = udp\n"
		     "blue = [2001:db8:1::3]:53\n"
		     "[service t]\nvip = [dffe:f247::7]:53\nblue = [2001:db8:1::4]:53\n");
	assert_int_equal(c->n_services, 4);
	conf_free(c);
}

static void test_syntax_variants(void **state)
{
	/* BOM, CRLF, tabs, '#' comments, no spaces around '=', padded section
	 * header, a '#' inside a value, an empty green list with only a comment. */
	struct shift_conf *c = parse_ok("\xef\xbb\xbf# shift config\r\n"
					"\t; indented comment\r\n"
					"[ global ]   ; trailing comment\r\n"
					"interface=eth0\r\n"
					"control_socket_group = shift\n"
					"control_socket_mode = 660\n"
					"notify_command = /usr/local/bin/page-oncall\n"
					"max_flows = 1024\n"
					"max_flows6 = 67108864\n"
					"syn_slots = 4194304\n"
					"metrics_interval = 1m\n"
					"\n"
					"[service   web.v2_a-b]\n"
					"\tvip\t=\t10.0.0.10:80\t# the VIP\n"
					"blue = 10.1.0.11:8080 ,10.1.0.12:8080\n"
					"green = ; none yet\n"
					"health_check = http:/health#frag ; comment\n"
					"max_latency_p99 = 1m30s\n"
					"max_latency_ratio = off\n"
					"max_error_rate_increase = 0.5%\n");
	const struct conf_service *s = &c->services[0];

	(void)state;
	assert_string_equal(c->interfaces[0], "eth0");
	assert_string_equal(c->control_socket_group, "shift");
	assert_int_equal(c->control_socket_mode, 0660);
	assert_string_equal(c->notify_command, "/usr/local/bin/page-oncall");
	assert_int_equal(c->max_flows, 1024);
	assert_int_equal(c->max_flows6, 67108864);
	assert_int_equal(c->syn_slots, 4194304);
	assert_int_equal(c->metrics_interval_ns, 60 * SEC);
	assert_string_equal(s->name, "web.v2_a-b");
	assert_int_equal(s->line, 13);
	assert_endpoint(&s->vip, "10.0.0.10:80", IPPROTO_TCP);
	assert_int_equal(s->n_blue, 2);
	assert_int_equal(s->n_green, 0);
	assert_string_equal(s->health_path, "/health#frag");
	assert_int_equal(s->max_latency_p99_ns, 90 * SEC);
	assert_true(s->max_latency_ratio == 0);
	assert_true(s->max_error_rate_increase > 0.0049999 &&
		    s->max_error_rate_increase < 0.0050001);
	conf_free(c);
}

/* Lines 1-5 of most bad files; the line under test is line 6. */
#define HEAD                   \
	"[global]\n"           \
	"interface = eth0\n"   \
	"[service web]\n"      \
	"vip = 10.0.0.10:80\n" \
	"blue = 10.1.0.11:8080\n"

struct bad_case {
	const char *text;
	int line; /* 0: an error of the whole file, "t.conf: " */
	const char *why;
};

static const struct bad_case bad_cases[] = {
	/* syntax */
	{ HEAD "max_eror_rate = 5%\n", 6,
	  "unknown key 'max_eror_rate' in [service web] (did you mean 'max_error_rate'?)" },
	{ HEAD "interface = eth1\n", 6, "('interface' belongs in [global])" },
	{ HEAD "Vip = 10.0.0.1:80\n", 6, "unknown key 'Vip' in [service web]" },
	{ "[global]\nbogus = 1\n", 2, "unknown key 'bogus' in [global]" },
	{ HEAD "garbage\n", 6, "expected 'key = value', '[section]' or a comment, got 'garbage'" },
	{ HEAD "= 5\n", 6, "missing key before '='" },
	{ "interface = eth0\n[global]\n", 1, "key 'interface' outside a section" },
	{ HEAD "vip = 10.0.0.11:80\n", 6, "duplicate key 'vip' (first at line 4)" },
	{ HEAD "[service web]\n", 6, "duplicate service 'web' (first at line 3)" },
	{ HEAD "[global]\n", 6, "duplicate [global] section (first at line 1)" },
	{ HEAD "[backend x]\n", 6,
	  "unknown section [backend x]; expected [global], [service NAME] or [fleet]" },
	{ HEAD "[service]\n", 6, "[service] needs a name" },
	{ HEAD "[service we/b]\n", 6, "'we/b' is not a service name" },
	{ HEAD "[service a234567890123456789012345678901234567890123456789012345678901234]\n", 6,
	  "is not a service name" },
	{ "[global] x\n", 1, "unexpected 'x' after ']'" },
	{ "[global\n", 1, "missing ']' in section header" },
	{ HEAD "min_requests = 0\nmax_eror = 1\n", 6, "min_requests: 0 out of range 1..1000000" },
	/* [global] */
	{ "[global]\nxdp_mode = native\n[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n",
	  1, "[global] has no interface" },
	{ "[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n", 0, "no [global] section" },
	{ "[global]\ninterface = eth0\n", 0, "no [service NAME] section" },
	{ "[global]\ninterface = eth0, a-name-that-is-too-long\n", 2,
	  "interface: 'a-name-that-is-too-long' is not an interface name" },
	{ "[global]\ninterface = eth0, eth0\n", 2, "interface: 'eth0' is listed twice" },
	{ "[global]\ninterface = a,b,c,d,e,f,g,h,i\n", 2, "more than 8 interfaces" },
	{ "[global]\ninterface = eth0,,eth1\n", 2, "empty item in the list" },
	{ "[global]\ninterface =\n", 2, "interface: empty" },
	{ "[global]\ninterface = eth0\nbackend_interface = eth 1\n", 3,
	  "is not an interface name" },
	{ "[global]\ninterface = eth0\nxdp_mode = fast\n", 3,
	  "'fast' is not auto, native or generic" },
	{ "[global]\ninterface = eth0\nattach = ebpf\n", 3,
	  "attach: 'ebpf' is not auto, xdp or tc" },
	{ "[global]\ninterface = eth0\nattach =\n", 3, "attach" },
	{ "[global]\ninterface = eth0\nhash_seed = 0xZZ\n", 3,
	  "hash_seed: '0xZZ' is not a hex number" },
	{ "[global]\ninterface = eth0\nbpffs_dir = sys/fs/bpf\n", 3,
	  "'sys/fs/bpf' is not an absolute path" },
	{ "[global]\ninterface = eth0\ncontrol_socket = /run/"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  3, "path longer than 107 characters" },
	{ "[global]\ninterface = eth0\ncontrol_socket_mode = 0644\n", 3,
	  "0644 is not allowed; use 0600 (root only) or 0660 (with group)" },
	{ "[global]\ninterface = eth0\ncontrol_socket_group = wheel!\n", 3,
	  "'wheel!' is not a group name" },
	{ "[global]\ninterface = eth0\ncontrol_socket_group = ops\ncontrol_socket_mode = 0600\n"
	  "[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n",
	  4, "control_socket_mode 0600 lets no member of control_socket_group ops connect" },
	{ "[global]\ninterface = eth0\nmax_flows = 100\n", 3,
	  "max_flows: 100 out of range 1024..67108864" },
	{ "[global]\ninterface = eth0\nmax_flows6 = 67108865\n", 3, "out of range 1024..67108864" },
	{ "[global]\ninterface = eth0\nsyn_slots = 50000\n", 3,
	  "syn_slots: 50000 is not a power of two" },
	{ "[global]\ninterface = eth0\nsyn_slots = 2048\n", 3,
	  "syn_slots: 2048 out of range 4096..4194304" },
	{ "[global]\ninterface = eth0\nmetrics_interval = 5\n", 3,
	  "metrics_interval: '5': missing unit" },
	{ "[global]\ninterface = eth0\nnotify_command = notify.sh\n", 3,
	  "is not an absolute path" },
	{ "[global]\ninterface = eth0\nnotify_command = /bin/page --now\n", 3,
	  "notify_command: the program's path only, no arguments" },
	{ "[global]\ninterface = eth0\nhealth_interval = 1s\nhealth_timeout = 2s\n", 4,
	  "health_timeout 2s must be shorter than health_interval 1s" },
	{ "[global]\ninterface = eth0\nhealth_rise = 0\n", 3,
	  "health_rise: 0 out of range 1..100" },
	/* [service] values */
	{ "[global]\ninterface = eth0\n[service web]\nblue = 10.1.0.11:8080\n", 3,
	  "[service web] has no vip" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10:80\n", 3,
	  "[service web] has no blue backends" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10\n", 4,
	  "vip: missing port in '10.0.0.10'" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 2001:db8::10:443\n", 4,
	  "IPv6 address must be in brackets" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 224.0.0.1:80\n", 4,
	  "224.0.0.1:80 is a multicast address" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 0.0.0.0:80\n", 4,
	  "unspecified address" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = [::ffff:10.0.0.10]:80\n", 4,
	  "[::ffff:10.0.0.10]:80 is an IPv4-mapped address (write the IPv4 address itself)" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = [2001:db8::10]:80\n"
	  "blue = [::ffff:10.1.0.11]:8080\n",
	  5, "IPv4-mapped address" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = [2001:db8::10]:80\n"
	  "blue = [fe80::2]:8080\n",
	  5, "[fe80::2]:8080 is a link-local address" },
	{ "[global]\ninterface = eth0\nsnat = ::ffff:10.9.9.9\n", 3, "IPv4-mapped address" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:70000\n",
	  5, "blue: port 70000 out of range 1..65535" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10:80\nblue =\n", 5,
	  "blue needs at least one backend" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.300:80\n",
	  5, "'10.1.0.300' is not an IPv4 address" },
	{ HEAD "green = 10.1.0.21:8080,\n", 6, "green: empty item" },
	{ HEAD "protocol = sctp\n", 6, "'sctp' is not tcp or udp" },
	{ HEAD "green_weight = 150\n", 6, "green_weight: 150 is above 100 %" },
	{ HEAD "green_weight = 0.001%\n", 6, "at most two decimals" },
	{ HEAD "green_weight = 25%\n", 6, "green_weight 25% but green has no backends" },
	{ HEAD "health_check = http:readyz\n", 6, "must start with '/'" },
	{ HEAD "health_check = http:/a\x01z\n", 6, "may not contain spaces or control characters" },
	{ HEAD "health_check = grpc\n", 6, "'grpc' is not http:/PATH, tcp or none" },
	{ HEAD "health_timeout = 1s\n", 6,
	  "health_timeout 1s must be shorter than health_interval 1s" },
	{ HEAD "health_interval = 9ms\n", 6, "health_interval: '9ms' out of range 10ms..1h" },
	{ HEAD "health_interval = 20ms\nhealth_timeout = 20ms\n", 7,
	  "health_timeout 20ms must be shorter than health_interval 20ms" },
	{ HEAD "health_timeout = 15ms\nhealth_interval = 10ms\n", 7,
	  "health_timeout 15ms must be shorter than health_interval 10ms" },
	{ "[global]\ninterface = eth0\nhealth_interval = 5ms\n", 3,
	  "health_interval: '5ms' out of range 10ms..1h" },
	{ "[global]\ninterface = eth0\nhealth_timeout = 30ms\nhealth_interval = 25ms\n", 4,
	  "health_timeout 30ms must be shorter than health_interval 25ms" },
	{ HEAD "protocol = udp\nhealth_check = http:/x\n", 7,
	  "health_check http needs protocol tcp" },
	{ HEAD "protocol = udp\nanalysis = http\n", 7, "analysis = http needs protocol tcp" },
	{ HEAD "analysis = grpc\n", 6, "'grpc' is not auto, http or tcp" },
	{ HEAD "rollback_window = 2h\n", 6, "rollback_window: '2h' out of range 1s..1h" },
	{ HEAD "rollback_window = 500ms\n", 6, "out of range 1s..1h" },
	{ HEAD "max_error_rate = 5\n", 6, "max_error_rate: '5' needs a % sign" },
	{ HEAD "max_error_rate = 150%\n", 6, "'150%' is above 100 %" },
	{ HEAD "max_error_rate_increase = lots\n", 6, "is not a percentage" },
	{ HEAD "max_latency_p99 = 500\n", 6, "max_latency_p99: '500': missing unit" },
	{ HEAD "max_latency_p95 = 2h\n", 6,
	  "'2h' is above 2m: latencies are measured up to 134 s, so a longer limit could never fire" },
	{ HEAD "max_latency_p99 = 200s\n", 6, "'200s' is above 2m" },
	{ HEAD "max_latency_p99 = 0.5us\n", 6, "out of range 1us.." },
	{ HEAD "max_latency_ratio = 0.5\n", 6, "ratio '0.5' out of range 1..1000" },
	{ HEAD "max_consecutive_errors = -1\n", 6, "'-1' is not a whole number" },
	{ HEAD "rollback_evict = maybe\n", 6, "'maybe' is not a boolean" },
	{ HEAD "connect_fallback = sometimes\n", 6, "'sometimes' is not a boolean" },
	/* source prefixes */
	{ HEAD "green = 10.1.0.21:8080\ngreen_sources = 192.0.2.1/24\n", 7,
	  "host bits set in '192.0.2.1/24'" },
	{ HEAD "green = 10.1.0.21:8080\ngreen_sources = 2001:db8::/32\n", 7,
	  "green_sources prefix 2001:db8::/32 is IPv6 but vip 10.0.0.10:80 is IPv4" },
	{ HEAD
	  "green = 10.1.0.21:8080\ngreen_sources = 192.0.2.0/24\nblue_sources = 192.0.2.0/24\n",
	  8, "prefix 192.0.2.0/24 is in both green_sources (line 7) and blue_sources (line 8)" },
	{ HEAD "blue_sources = 192.0.2.0/24, 192.0.2.0/24\n", 6, "192.0.2.0/24 is listed twice" },
	{ HEAD "green_sources = 192.0.2.0/24\n", 6,
	  "green_sources pins clients to green, but green has no backends" },
	/* families and uniqueness across the file */
	{ "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10:80\n\n\n\n"
	  "blue = 10.1.0.11:8080, [2001:db8::1]:8080\n",
	  8, "blue backend [2001:db8::1]:8080 is IPv6 but vip 10.0.0.10:80 is IPv4" },
	{ HEAD "green = [2001:db8::1]:8080\n", 6,
	  "green backend [2001:db8::1]:8080 is IPv6 but vip 10.0.0.10:80 is IPv4" },
	{ "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10:80\n"
	  "blue = 10.1.0.11:8080, 10.1.0.11:8080\n",
	  5, "blue backend 10.1.0.11:8080 is listed twice" },
	{ HEAD "green = 10.1.0.11:8080\n", 6,
	  "service web: green backend 10.1.0.11:8080/tcp is already used at line 5 "
	  "(service web, blue backend); a backend may appear once" },
	{ HEAD "[service api]\nvip = 10.0.0.11:80\nblue = 10.1.0.11:8080\n", 8,
	  "service api: blue backend 10.1.0.11:8080/tcp is already used at line 5 "
	  "(service web, blue backend)" },
	{ HEAD "[service api]\nvip = 10.0.0.10:80\nblue = 10.1.0.12:8080\n", 7,
	  "service api: vip 10.0.0.10:80/tcp is already the vip of service web (line 4)" },
	{ HEAD "[service api]\nvip = 10.0.0.11:80\nblue = 10.0.0.10:80\n", 8,
	  "blue backend 10.0.0.10:80/tcp is already used at line 4 (service web, vip)" },
	/* The connection table's key: a UDP VIP's word complemented (10.0.0.10 ->
	 * 245.255.255.245) must not be a TCP VIP on the same port; on another
	 * port, or both UDP, it may. */
	{ HEAD "[service dns]\nvip = 245.255.255.245:80\nprotocol = udp\nblue = 10.1.0.12:53\n", 7,
	  "service web: vip 10.0.0.10:80/tcp is service dns's vip 245.255.255.245:80/udp with "
	  "every bit complemented, which the connection table's key gives every UDP VIP: "
	  "their flows could not be told apart" },
	/* An IPv6 key holds its VIP folded to a word (shift_flow_vip6()):
	 * 2001:db8::7 and 2001:db8::1:0:ca fold alike (0x6b65e720), and
	 * 2001:db8::2:bf31:34b6 to that word complemented, a UDP VIP's. */
	{ "[global]\ninterface = eth0\n[service q]\nvip = [2001:db8::7]:443\n"
	  "blue = [2001:db8:1::1]:443\n[service h]\nvip = [2001:db8::1:0:ca]:443\n"
	  "blue = [2001:db8:1::2]:443\n",
	  7,
	  "service h: vip [2001:db8::1:0:ca]:443/tcp and service q's vip [2001:db8::7]:443/tcp "
	  "give the connection table's IPv6 key the same 32-bit VIP word (0x6b65e720): their "
	  "flows could not be told apart; give one of them another address" },
	{ "[global]\ninterface = eth0\n[service q]\nvip = [2001:db8::7]:443\nprotocol = udp\n"
	  "blue = [2001:db8:1::1]:443\n[service h]\nvip = [2001:db8::2:bf31:34b6]:443\n"
	  "blue = [2001:db8:1::2]:443\n",
	  8,
	  "service h: vip [2001:db8::2:bf31:34b6]:443/tcp and service q's vip "
	  "[2001:db8::7]:443/udp give the connection table's IPv6 key the same 32-bit VIP word "
	  "(0x949a18df)" },
	/* client affinity */
	{ HEAD "affinity = user\n", 6, "'user' is not flow or client" },
	{ HEAD "affinity = Client\n", 6, "'Client' is not flow or client" },
	{ HEAD "affinity =\n", 6, "affinity" },
	{ HEAD "affinity_prefix4 = 33\n", 6, "affinity_prefix4" },
	{ HEAD "affinity_prefix4 = -1\n", 6, "affinity_prefix4" },
	{ HEAD "affinity_prefix4 = /24\n", 6, "affinity_prefix4" },
	{ HEAD "affinity_prefix6 = 129\n", 6, "affinity_prefix6" },
	{ HEAD "affinity = client\naffinity = flow\n", 7, "duplicate key 'affinity'" },
	/* shadow mode */
	{ HEAD "shadow = yes\n", 6, "'yes' is not on or off" },
	{ HEAD "shadow_sample = 0%\n", 6, "0% samples nothing: set shadow = off instead" },
	{ HEAD "shadow_sample = 101%\n", 6, "shadow_sample" },
	{ HEAD "shadow_methods = GET, get\n", 6, "'get' is not a method shadow can replay" },
	{ HEAD "shadow_methods = GET, CONNECT\n", 6, "'CONNECT' is not a method" },
	{ HEAD "shadow_methods =\n", 6, "no method listed" },
	{ HEAD "max_shadow_mismatch = lots\n", 6, "max_shadow_mismatch" },
	{ HEAD "shadow = on\n", 6, "shadow = on but green has no backends" },
	{ HEAD "green = 10.1.0.21:8080\nshadow = on\nanalysis = tcp\n", 7,
	  "shadow = on replays HTTP/1.x requests: service web needs protocol tcp and analysis "
	  "auto or http" },
};

static void test_shadow_keys(void **state)
{
	struct shift_conf *c = parse_ok(HEAD "green = 10.1.0.21:8080\n");

	(void)state;
	assert_false(c->services[0].shadow);
	assert_int_equal(c->services[0].shadow_sample_bp, 1000);
	assert_int_equal(c->services[0].shadow_methods, (1u << 0) | (1u << 1)); /* GET, HEAD */
	assert_true(c->services[0].max_shadow_mismatch > 0.0099 &&
		    c->services[0].max_shadow_mismatch < 0.0101);
	conf_free(c);
	c = parse_ok(HEAD "green = 10.1.0.21:8080\nshadow = on\nshadow_sample = 0.5%\n"
			  "shadow_methods = POST,GET , OPTIONS\nmax_shadow_mismatch = 2.5%\n");
	assert_true(c->services[0].shadow);
	assert_int_equal(c->services[0].shadow_sample_bp, 50);
	assert_int_equal(c->services[0].shadow_methods, (1u << 2) | (1u << 0) | (1u << 6));
	assert_true(c->services[0].max_shadow_mismatch > 0.0249 &&
		    c->services[0].max_shadow_mismatch < 0.0251);
	assert_string_equal(conf_shadow_method_name(6), "OPTIONS");
	assert_null(conf_shadow_method_name(7));
	conf_free(c);
}

static void test_affinity_keys(void **state)
{
	struct shift_conf *c = parse_ok(HEAD);

	(void)state;
	assert_false(c->services[0].affinity_client);
	assert_int_equal(c->services[0].affinity_prefix4, 32);
	assert_int_equal(c->services[0].affinity_prefix6, 64);
	conf_free(c);
	/* Both edges; a v6 prefix on an IPv4 service is accepted (and unused). */
	c = parse_ok(HEAD "affinity = client\naffinity_prefix4 = 0\naffinity_prefix6 = 128\n");
	assert_true(c->services[0].affinity_client);
	assert_int_equal(c->services[0].affinity_prefix4, 0);
	assert_int_equal(c->services[0].affinity_prefix6, 128);
	conf_free(c);
	c = parse_ok(HEAD "affinity = flow\naffinity_prefix4 = 24\naffinity_prefix6 = 0\n");
	assert_false(c->services[0].affinity_client);
	assert_int_equal(c->services[0].affinity_prefix4, 24);
	assert_int_equal(c->services[0].affinity_prefix6, 0);
	conf_free(c);
}

static void test_bad_files(void **state)
{
	char err[512], prefix[32];
	struct shift_conf *c;
	size_t i, len;
	int ret;

	(void)state;
	for (i = 0; i < N(bad_cases); i++) {
		const struct bad_case *b = &bad_cases[i];

		len = strlen(b->text);
		if (b->line)
			snprintf(prefix, sizeof(prefix), "t.conf:%d: ", b->line);
		else
			snprintf(prefix, sizeof(prefix), "t.conf: ");
		err[0] = '\0';
		c = (struct shift_conf *)1;
		ret = conf_parse(b->text, len, "t.conf", &c, err, sizeof(err));
		if (ret != -EINVAL || c || strncmp(err, prefix, strlen(prefix)) ||
		    !strstr(err, b->why))
			fail_msg("case %zu: got %d '%s'\n  want '%s...%s'", i, ret, err, prefix,
				 b->why);
	}
	print_message("%zu bad files refused with FILE:LINE: reason\n", N(bad_cases));
}

static char *cat(char *buf, size_t *used, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static char *cat(char *buf, size_t *used, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *used, cap - *used, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < cap - *used);
	*used += (size_t)n;
	return buf;
}

static void test_line_length(void **state)
{
	size_t cap = 70000, used = 0;
	char *t = malloc(cap), err[512];
	struct shift_conf *c;

	(void)state;
	assert_non_null(t);
	cat(t, &used, cap, HEAD "; ");
	memset(t + used, 'x', 65533); /* "; " + 65533 = 65535, the longest line */
	used += 65533;
	t[used++] = '\n';
	assert_int_equal(conf_parse(t, used, "t.conf", &c, err, sizeof(err)), 0);
	conf_free(c);
	t[used - 1] = 'x';
	t[used++] = '\n';
	assert_int_equal(conf_parse(t, used, "t.conf", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:6: line longer than 65535 characters");
	free(t);
}

static void test_nul_byte(void **state)
{
	static const char t[] = HEAD "green_weight = 1\0\n";
	struct shift_conf *c;
	char err[512];

	(void)state;
	assert_int_equal(conf_parse(t, sizeof(t) - 1, "t.conf", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:6: NUL byte in line");
}

static void test_limits(void **state)
{
	size_t cap = 1 << 20, used = 0;
	char *t = malloc(cap), err[512];
	struct shift_conf *c;
	int i;

	(void)state;
	assert_non_null(t);
	/* 128 backends per pool is the ceiling; 129 is refused. */
	cat(t, &used, cap,
	    "[global]\ninterface = eth0\n[service web]\nvip = 10.0.0.10:80\nblue = ");
	for (i = 0; i < 128; i++)
		cat(t, &used, cap, "%s10.1.%d.%d:80", i ? ", " : "", i / 200, i % 200 + 1);
	cat(t, &used, cap, "\n");
	assert_int_equal(conf_parse(t, used, "t.conf", &c, err, sizeof(err)), 0);
	assert_int_equal(c->services[0].n_blue, 128);
	conf_free(c);
	used--;
	cat(t, &used, cap, ", 10.9.9.9:80\n");
	assert_int_equal(conf_parse(t, used, "t.conf", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:5: blue: more than 128 backends");

	/* 256 services, then the 257th. */
	used = 0;
	cat(t, &used, cap, "[global]\ninterface = eth0\n");
	for (i = 0; i < 256; i++)
		cat(t, &used, cap, "[service s%d]\nvip = 10.0.%d.%d:80\nblue = 10.1.%d.%d:80\n", i,
		    i / 200, i % 200 + 1, i / 200, i % 200 + 1);
	assert_int_equal(conf_parse(t, used, "t.conf", &c, err, sizeof(err)), 0);
	assert_int_equal(c->n_services, 256);
	assert_string_equal(c->services[255].name, "s255");
	assert_ptr_equal(conf_find_service(c, "s200"), &c->services[200]);
	conf_free(c);
	cat(t, &used, cap, "[service s256]\nvip = 10.9.0.1:80\nblue = 10.9.1.1:80\n");
	assert_int_equal(conf_parse(t, used, "t.conf", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:771: more than 256 services");

	/* The documented ceilings fit on their one line each, in their longest
	 * spelling. */
	used = 0;
	cat(t, &used, cap,
	    "[global]\ninterface = eth0\n[service web]\n"
	    "vip = [2001:db8:ffff:ffff:ffff:ffff:ffff:10]:443\nblue = ");
	for (i = 0; i < 128; i++)
		cat(t, &used, cap, "%s[2001:db8:ffff:ffff:ffff:ffff:ffff:%x]:65535", i ? ", " : "",
		    0x1000 + i);
	cat(t, &used, cap, "\ngreen = [2001:db8::20]:80\ngreen_sources = ");
	for (i = 0; i < 1024; i++)
		cat(t, &used, cap, "%s2001:db8:ffff:ffff:ffff:ffff:%x:0/112", i ? ", " : "",
		    0x1000 + i);
	cat(t, &used, cap, "\n");
	if (conf_parse(t, used, "t.conf", &c, err, sizeof(err))) {
		free(t);
		fail_msg("%s", err);
	}
	assert_int_equal(c->services[0].n_blue, 128);
	assert_int_equal(c->services[0].n_green_sources, 1024);
	conf_free(c);
	free(t);
}

static void test_load(void **state)
{
	char path[] = "/tmp/shift-test-conf-XXXXXX", err[512], want[128];
	struct shift_conf *c;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(spec_example, f);
	fputs("bad line\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:26: expected 'key = value'", path);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs(spec_example, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(conf_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c->path, path);
	assert_int_equal(c->n_services, 1);
	conf_free(c);
	assert_int_equal(unlink(path), 0);

	assert_int_equal(conf_load(path, &c, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "cannot open %s: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);
	assert_int_equal(conf_load("/tmp", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/tmp: not a regular file");
	conf_free(NULL);
}

/* Every prefix of a valid file parses or is refused cleanly, read from an
 * exact-size buffer so ASan sees any read past the end. */
static void test_every_prefix(void **state)
{
	size_t len = strlen(spec_example), n;
	char err[512];

	(void)state;
	for (n = 0; n <= len; n++) {
		char *t = malloc(n ? n : 1);
		struct shift_conf *c = NULL;
		int ret;

		assert_non_null(t);
		memcpy(t, spec_example, n);
		ret = conf_parse(t, n, "t.conf", &c, err, sizeof(err));
		if (ret) {
			assert_int_equal(ret, -EINVAL);
			assert_null(c);
			assert_int_equal(strncmp(err, "t.conf", 6), 0);
		} else {
			assert_non_null(c);
		}
		conf_free(c);
		free(t);
	}
}

/* Random byte edits of the example: never a crash, a leak or an empty message. */
static void test_mutations(void **state)
{
	static const char alphabet[] = "\0\n\r\t []=,;#%:/.0123456789abcdefxyz\xff";
	size_t len = strlen(spec_example), i;
	__u64 x = 0x5eed5eed5eedull;
	struct conf_salvage sv;
	char err[512];
	int iter, ok = 0;

	(void)state;
	for (iter = 0; iter < 4000; iter++) {
		char *t = malloc(len);
		struct shift_conf *c = NULL;
		int edits, ret;

		assert_non_null(t);
		memcpy(t, spec_example, len);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		edits = 1 + (int)(x % 4);
		while (edits--) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			i = (size_t)(x % len);
			t[i] = alphabet[(x >> 32) % (sizeof(alphabet) - 1)];
		}
		err[0] = '\0';
		ret = conf_parse(t, len, "t.conf", &c, err, sizeof(err));
		if (ret) {
			assert_int_equal(ret, -EINVAL);
			assert_true(strlen(err) > 8);
		} else {
			ok++;
		}
		conf_free(c);
		/* shiftctl's reading takes every file that can be read, and no service. */
		assert_int_equal(conf_salvage_parse(t, len, "t.conf", &c, &sv, err, sizeof(err)),
				 0);
		assert_int_equal(c->n_services, 0);
		assert_true(ret || !sv.bad[CONF_PART_BPFFS_DIR][0]);
		conf_free(c);
		free(t);
	}
	print_message("%d of 4000 mutated files still parse\n", ok);
}

/* A group without a mode: 0660, or its members could not connect. */
static void test_group_mode(void **state)
{
	struct shift_conf *c;

	(void)state;
	c = parse_ok("[global]\ninterface = eth0\ncontrol_socket_group = ops\n"
		     "[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n");
	assert_int_equal(c->control_socket_mode, 0660);
	conf_free(c);
	c = parse_ok("[global]\ninterface = eth0\n"
		     "[service web]\nvip = 10.0.0.10:80\nblue = 10.1.0.11:8080\n");
	assert_int_equal(c->control_socket_mode, 0600);
	conf_free(c);
}

/* --- shiftctl's reading of a file that does not load ---------------------------- */

static const char salv_base[] = "[global]\n" /* 1 */
				"interface = eth0\n" /* 2 */
				"bpffs_dir = /sys/fs/bpf/rig7\n" /* 3 */
				"state_dir = /var/lib/rig7\n" /* 4 */
				"control_socket = /run/rig7/shiftd.sock\n" /* 5 */
				"\n" /* 6 */
				"[service web]\n" /* 7 */
				"vip = 10.0.0.10:80\n" /* 8 */
				"blue = 10.1.0.11:8080\n" /* 9 */
				"\n" /* 10 */
				"[fleet]\n" /* 11 */
				"etcd_endpoints = http://10.0.0.1:2379\n" /* 12 */
				"fleet = eu1\n" /* 13 */
				"node = n1\n"; /* 14 */

/*
 * salv_base with text inserted before line `at` (1-based; 0 = appended), then
 * read by conf_salvage_parse(), which must read it (only I/O or memory fail).
 * The strict parser must refuse it whenever want_strict_fail.
 */
static struct shift_conf *salvage(const char *ins, int at, bool want_strict_fail,
				  struct conf_salvage *sv)
{
	struct shift_conf *c = NULL;
	char text[4096], err[512] = "";
	const char *p = salv_base;
	int line = 1;

	text[0] = '\0';
	while (*p && line != at) {
		const char *nl = strchr(p, '\n');

		strncat(text, p, (size_t)(nl - p + 1));
		p = nl + 1;
		line++;
	}
	strcat(text, ins);
	strcat(text, p);
	if (want_strict_fail) {
		assert_int_not_equal(conf_parse(text, strlen(text), "t.conf", &c, err, sizeof(err)),
				     0);
		assert_null(c);
	}
	if (conf_salvage_parse(text, strlen(text), "t.conf", &c, sv, err, sizeof(err)))
		fail_msg("conf_salvage_parse refused: %s", err);
	assert_non_null(c);
	/* Never a service, whatever the file holds: they come from the pinned maps. */
	assert_int_equal(c->n_services, 0);
	assert_null(c->services);
	assert_null(conf_find_service(c, "web"));
	return c;
}

static void assert_parts_ok(const struct conf_salvage *sv, unsigned except)
{
	unsigned p;

	for (p = 0; p < CONF_PART__N; p++) {
		if (p != except && sv->bad[p][0])
			fail_msg("%s distrusted: %s", conf_part_name(p), sv->bad[p]);
	}
}

/* The operator's typo in a service leaves every part known. */
static void test_salvage_service_typos(void **state)
{
	static const char *const typos[] = {
		"bogus_key = 1\n",	    "max_error_rate = 5\n", "vip = 10.0.0.10\n",
		"blue = 10.1.0.11:8080,\n", "this is not a key\n",  "= 1\n",
		"vip = 10.0.0.11:80\n", /* duplicate */
	};
	struct conf_salvage sv;
	struct shift_conf *c;
	size_t i;

	(void)state;
	for (i = 0; i < N(typos); i++) {
		c = salvage(typos[i], 10, true, &sv);
		assert_parts_ok(&sv, CONF_PART__N);
		assert_string_equal(c->path, "t.conf");
		assert_string_equal(c->bpffs_dir, "/sys/fs/bpf/rig7");
		assert_string_equal(c->state_dir, "/var/lib/rig7");
		assert_string_equal(c->control_socket, "/run/rig7/shiftd.sock");
		assert_true(c->fleet.enabled);
		assert_int_equal(c->fleet.n_endpoints, 1);
		assert_string_equal(c->fleet.endpoints[0], "http://10.0.0.1:2379");
		assert_string_equal(c->fleet.fleet, "eu1");
		assert_string_equal(c->fleet.node, "n1");
		conf_free(c);
	}
	/* [global]'s other keys are not read: a bad one spoils nothing. */
	c = salvage("metrics_interval = 5\nxdp_mode = fast\nbogus = 1\n[global]\n", 6, true, &sv);
	assert_parts_ok(&sv, CONF_PART__N);
	assert_string_equal(c->bpffs_dir, "/sys/fs/bpf/rig7");
	conf_free(c);
	/* A section that does not read, holding only service keys, spoils nothing either. */
	c = salvage("[service api\nvip = 10.0.0.11:80\n", 11, true, &sv);
	assert_parts_ok(&sv, CONF_PART__N);
	assert_true(c->fleet.enabled);
	conf_free(c);
}

/* A line that may set a path and cannot be trusted: that path is not taken. */
static void test_salvage_paths(void **state)
{
	static const struct {
		const char *ins;
		int at;
		enum conf_part part;
		const char *bad;
	} cases[] = {
		{ "bpffs_dir = sys/fs/bpf/x\n", 3, CONF_PART_BPFFS_DIR,
		  "t.conf:3: bpffs_dir: 'sys/fs/bpf/x' is not an absolute path" },
		{ "state_dir = /var/lib/other\n", 6, CONF_PART_STATE_DIR,
		  "t.conf:6: duplicate key 'state_dir' (first at line 4)" },
		{ "bpffs_dir /sys/fs/bpf/x\n", 6, CONF_PART_BPFFS_DIR,
		  "t.conf:6: expected 'bpffs_dir = ...', got 'bpffs_dir /sys/fs/bpf/x'" },
		{ "bpfs_dir = /sys/fs/bpf/x\n", 6, CONF_PART_BPFFS_DIR,
		  "t.conf:6: unknown key 'bpfs_dir' (did you mean 'bpffs_dir'?)" },
		{ "control_sockte = /run/x.sock\n", 10, CONF_PART_CONTROL_SOCKET,
		  "t.conf:10: unknown key 'control_sockte' (did you mean 'control_socket'?)" },
		{ "state_dir = /var/lib/x\n", 1, CONF_PART_STATE_DIR,
		  "t.conf:1: key 'state_dir' outside a section" },
		{ "state_dir = /var/lib/x\n", 10, CONF_PART_STATE_DIR,
		  "t.conf:10: 'state_dir' belongs in [global]" },
		{ "[globl]\nbpffs_dir = /sys/fs/bpf/x\n", 6, CONF_PART_BPFFS_DIR,
		  "t.conf:7: 'bpffs_dir' under the section header of line 6, which does not read" },
		{ "control_socket = /run/shift/"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
		  5, CONF_PART_CONTROL_SOCKET,
		  "t.conf:5: control_socket: path longer than 107 characters" },
	};
	struct conf_salvage sv;
	struct shift_conf *c;
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		c = salvage(cases[i].ins, cases[i].at, true, &sv);
		assert_string_equal(sv.bad[cases[i].part], cases[i].bad);
		assert_parts_ok(&sv, cases[i].part);
		switch (cases[i].part) {
		case CONF_PART_BPFFS_DIR:
			assert_string_equal(c->bpffs_dir, "");
			break;
		case CONF_PART_STATE_DIR:
			assert_string_equal(c->state_dir, "");
			break;
		default:
			assert_string_equal(c->control_socket, "");
			break;
		}
		conf_free(c);
	}
	/* [global]'s own header broken: every path under it is in doubt. */
	{
		static const char text[] = "[global\nbpffs_dir = /x\nstate_dir = /y\n"
					   "control_socket = /z\n";

		assert_int_equal(conf_salvage_parse(text, strlen(text), "t.conf", &c, &sv, NULL, 0),
				 0);
		assert_string_equal(sv.bad[CONF_PART_BPFFS_DIR],
				    "t.conf:2: 'bpffs_dir' under the section header of line 1, "
				    "which does not read");
		assert_true(sv.bad[CONF_PART_STATE_DIR][0] && sv.bad[CONF_PART_CONTROL_SOCKET][0]);
		assert_false(sv.bad[CONF_PART_FLEET][0]);
		assert_false(c->fleet.enabled);
		conf_free(c);
	}
	/* A file silent on a path: the default, as shiftd takes it. */
	{
		static const char text[] = "[global]\ninterface = eth0\nbogus = 1\n";

		assert_int_equal(conf_salvage_parse(text, strlen(text), "t.conf", &c, &sv, NULL, 0),
				 0);
		assert_parts_ok(&sv, CONF_PART__N);
		assert_string_equal(c->bpffs_dir, "/sys/fs/bpf/shift");
		assert_string_equal(c->state_dir, "/var/lib/shift");
		assert_string_equal(c->control_socket, "/run/shift/shiftd.sock");
		assert_false(c->fleet.enabled);
		conf_free(c);
	}
	/* "mode" is no near miss of the fleet's "node". */
	c = salvage("mode = 1\n", 6, true, &sv);
	assert_parts_ok(&sv, CONF_PART__N);
	conf_free(c);
}

/* [fleet] is taken whole or not at all. */
static void test_salvage_fleet(void **state)
{
	static const struct {
		const char *ins;
		int at;
		const char *bad;
	} cases[] = {
		{ "etcd_timeout = 2\n", 0,
		  "t.conf:15: etcd_timeout: '2': missing unit (ns, us, ms, s, m or h)" },
		{ "fleet = eu2\n", 0, "t.conf:15: duplicate key 'fleet' (first at line 13)" },
		{ "bogus = 1\n", 0, "t.conf:15: 'bogus' does not belong in [fleet]" },
		{ "etcd_endpoint = http://10.0.0.2:2379\n", 0,
		  "t.conf:15: unknown key 'etcd_endpoint' (did you mean 'etcd_endpoints'?)" },
		{ "etcd_endpoints http://10.0.0.2:2379\n", 0,
		  "t.conf:15: expected 'key = value' in [fleet], got 'etcd_endpoints "
		  "http://10.0.0.2:2379'" },
		{ "fleet = eu1\n", 6, "t.conf:6: 'fleet' belongs in [fleet]" },
		{ "[fleet]\n", 0, "t.conf:15: duplicate [fleet] section (first at line 11)" },
		{ "[fleet] x\netcd_endpoints = http://10.0.0.2:2379\n", 7,
		  "t.conf:8: 'etcd_endpoints' under the section header of line 7, which does not read" },
	};
	struct conf_salvage sv;
	struct shift_conf *c;
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		c = salvage(cases[i].ins, cases[i].at, true, &sv);
		assert_string_equal(sv.bad[CONF_PART_FLEET], cases[i].bad);
		assert_parts_ok(&sv, CONF_PART_FLEET);
		assert_false(c->fleet.enabled);
		assert_int_equal(c->fleet.n_endpoints, 0);
		conf_free(c);
	}
	/* A [fleet] that lacks what it needs. */
	{
		static const char text[] = "[global]\ninterface = eth0\n[fleet]\nfleet = eu1\n";

		assert_int_equal(conf_salvage_parse(text, strlen(text), "t.conf", &c, &sv, NULL, 0),
				 0);
		assert_string_equal(
			sv.bad[CONF_PART_FLEET],
			"t.conf:3: [fleet] needs etcd_endpoints (e.g. http://10.0.0.1:2379)");
		assert_false(c->fleet.enabled);
		conf_free(c);
	}
}

/* A line that does not read at all may be any line its section holds. */
static void test_salvage_unreadable(void **state)
{
	static const char in_service[] = "[global]\nbpffs_dir = /x\n[service web]\nvip = 1\0x\n";
	static const char in_global[] = "[global]\nbpffs_dir = /x\nvip = 1\0x\n[fleet]\n"
					"etcd_endpoints = http://e:2379\nfleet = f\n";
	struct conf_salvage sv;
	struct shift_conf *c;

	(void)state;
	assert_int_equal(conf_salvage_parse(in_service, sizeof(in_service) - 1, "t.conf", &c, &sv,
					    NULL, 0),
			 0);
	assert_parts_ok(&sv, CONF_PART__N);
	assert_string_equal(c->bpffs_dir, "/x");
	conf_free(c);
	assert_int_equal(conf_salvage_parse(in_global, sizeof(in_global) - 1, "t.conf", &c, &sv,
					    NULL, 0),
			 0);
	assert_string_equal(sv.bad[CONF_PART_BPFFS_DIR], "t.conf:3: NUL byte in line");
	assert_string_equal(sv.bad[CONF_PART_STATE_DIR], "t.conf:3: NUL byte in line");
	assert_string_equal(sv.bad[CONF_PART_CONTROL_SOCKET], "t.conf:3: NUL byte in line");
	assert_string_equal(sv.bad[CONF_PART_FLEET], "");
	assert_true(c->fleet.enabled);
	conf_free(c);
}

/* On a file that loads, the salvage reads what conf_parse() does. */
static void test_salvage_agrees(void **state)
{
	const char *const texts[] = { spec_example, salv_base };
	struct shift_conf *c, *s;
	struct conf_salvage sv;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < N(texts); i++) {
		c = parse_ok(texts[i]);
		assert_int_equal(conf_salvage_parse(texts[i], strlen(texts[i]), "t.conf", &s, &sv,
						    err, sizeof(err)),
				 0);
		assert_parts_ok(&sv, CONF_PART__N);
		assert_string_equal(s->bpffs_dir, c->bpffs_dir);
		assert_string_equal(s->state_dir, c->state_dir);
		assert_string_equal(s->control_socket, c->control_socket);
		assert_memory_equal(&s->fleet, &c->fleet, sizeof(c->fleet));
		conf_free(s);
		conf_free(c);
	}
	assert_int_equal(conf_salvage_load("/nonexistent/shiftd.conf", &s, &sv, err, sizeof(err)),
			 -ENOENT);
	assert_null(s);
	assert_non_null(strstr(err, "/nonexistent/shiftd.conf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_ipv6_service),
		cmocka_unit_test(test_udp_service),
		cmocka_unit_test(test_syntax_variants),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_shadow_keys),
		cmocka_unit_test(test_affinity_keys),
		cmocka_unit_test(test_group_mode),
		cmocka_unit_test(test_salvage_service_typos),
		cmocka_unit_test(test_salvage_paths),
		cmocka_unit_test(test_salvage_fleet),
		cmocka_unit_test(test_salvage_unreadable),
		cmocka_unit_test(test_salvage_agrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
