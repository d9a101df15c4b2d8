// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Source NAT settings: snat / snat_ports parsing and resolution, and the port runs
 * left once the host's ephemeral ports are taken out. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "datapath/snat.h"

static struct shift_conf *parse(const char *text, char *err, size_t errlen)
{
	struct shift_conf *c = NULL;

	if (conf_parse(text, strlen(text), "t.conf", &c, err, errlen))
		return NULL;
	return c;
}

static void test_resolve(void **state)
{
	char err[512] = "";
	struct shift_conf *c = parse("[global]\n"
				     "interface = eth0\n"
				     "snat = 192.0.2.1, 2001:db8::1, 192.0.2.2\n"
				     "snat_ports = 20000-29999\n"
				     "[service v4]\n"
				     "vip = 10.0.0.10:80\n"
				     "blue = 10.1.0.11:8080\n"
				     "[service v6]\n"
				     "vip = [2001:db8::10]:80\n"
				     "blue = [2001:db8:1::11]:8080\n"
				     "snat_ports = 1024-2047\n"
				     "[service plain]\n"
				     "vip = 10.0.0.11:80\n"
				     "blue = 10.1.0.12:8080\n"
				     "snat = none\n",
				     err, sizeof(err));
	__u32 a;

	(void)state;
	if (!c)
		fail_msg("refused: %s", err);
	assert_int_equal(c->services[0].n_snat, 2);
	inet_pton(AF_INET, "192.0.2.2", &a);
	assert_int_equal(c->services[0].snat[1][0], a);
	assert_int_equal(c->services[0].snat_port_lo, 20000);
	assert_int_equal(c->services[0].snat_port_hi, 29999);
	assert_int_equal(c->services[1].n_snat, 1);
	assert_int_equal(c->services[1].snat_port_lo, 1024);
	assert_int_equal(c->services[1].snat_port_hi, 2047);
	assert_int_equal(c->services[2].n_snat, 0);
	conf_free(c);
}

static void test_bad(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} bad[] = {
		{ "[global]\ninterface = eth0\nsnat = 10.0.0.300\n",
		  "t.conf:3: snat: '10.0.0.300' is not an IPv4 or IPv6 address" },
		{ "[global]\ninterface = eth0\nsnat = 192.0.2.1, 192.0.2.1\n",
		  "t.conf:3: snat: 192.0.2.1 is listed twice" },
		{ "[global]\ninterface = eth0\nsnat = 224.0.0.1\n",
		  "t.conf:3: snat: 224.0.0.1 is a" },
		{ "[global]\ninterface = eth0\nsnat_ports = 2000-1000\n",
		  "t.conf:3: snat_ports: 2000-1000 is not a range within 1-65535" },
		{ "[global]\ninterface = eth0\nsnat_ports = 1024\n",
		  "t.conf:3: snat_ports: '1024' is not LO-HI" },
		{ "[global]\ninterface = eth0\nsnat = 192.0.2.1\n[service v6]\n"
		  "vip = [2001:db8::10]:80\nblue = [2001:db8:1::11]:8080\n",
		  "t.conf:3: snat has no IPv6 address for service v6" },
	};
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_null(parse(bad[i].text, err, sizeof(err)));
		if (strncmp(err, bad[i].want, strlen(bad[i].want)))
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, bad[i].want);
	}
}

static void test_runs(void **state)
{
	struct shift_snat_cfg cfg;

	(void)state;
	/* Linux's default ephemeral range cut out of the default snat_ports. */
	assert_int_equal(snat_runs(1024, 65535, 32768, 60999, &cfg), 36280);
	assert_int_equal(cfg.run_lo[0], 1024);
	assert_int_equal(cfg.run_n[0], 31744);
	assert_int_equal(cfg.run_lo[1], 61000);
	assert_int_equal(cfg.run_n[1], 4536);
	/* Disjoint: one run, untouched. */
	assert_int_equal(snat_runs(20000, 20015, 32768, 60999, &cfg), 16);
	assert_int_equal(cfg.run_lo[0], 20000);
	assert_int_equal(cfg.run_n[1], 0);
	/* Overlapping one end. */
	assert_int_equal(snat_runs(30000, 40000, 32768, 60999, &cfg), 2768);
	assert_int_equal(cfg.run_n[1], 0);
	/* Inside: nothing left. */
	assert_int_equal(snat_runs(40000, 50000, 32768, 60999, &cfg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
