// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * attach = auto's "NIC or virtual interface" (iface_virtual) on what rtnetlink
 * says of a link: a device behind it makes a NIC, else its kind or IFF_LOOPBACK
 * a virtual interface. The name plays no part: a veth named eth0 is a veth.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "datapath/attach.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_iface_virtual(void **state)
{
	static const struct {
		const char *desc;
		const char *name;
		const char *kind;
		const char *parent;
		bool loopback;
		const char *want; /* NULL: a NIC */
	} cases[] = {
		{ "virtio NIC", "eth0", "", "virtio2", false, NULL },
		{ "PCI NIC", "ens3", "", "0000:00:03.0", false, NULL },
		/* The bug: the host's /sys had a device for eth0; this netns's eth0 is a veth. */
		{ "veth named like the host's NIC", "eth0", "veth", "", false, "veth" },
		{ "veth", "veth3", "veth", "", false, "veth" },
		{ "bridge", "br0", "bridge", "", false, "bridge" },
		{ "macvlan", "mv0", "macvlan", "", false, "macvlan" },
		{ "ipvlan", "ipvl0", "ipvlan", "", false, "ipvlan" },
		{ "vxlan", "vxlan0", "vxlan", "", false, "vxlan" },
		{ "tun", "tun0", "tun", "", false, "tun" },
		{ "loopback", "lo", "", "", true, "loopback" },
		/* A device behind it wins over a kind, as the sysfs "device" link did. */
		{ "DSA port", "lan1", "dsa", "mdio_bus:00", false, NULL },
		/* A kernel that names no parents (before 5.16): no kind is a NIC. */
		{ "NIC, no parent reported", "eth1", "", "", false, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		struct nl_link l;
		const char *got;

		memset(&l, 0, sizeof(l));
		snprintf(l.name, sizeof(l.name), "%s", cases[i].name);
		snprintf(l.kind, sizeof(l.kind), "%s", cases[i].kind);
		snprintf(l.parent, sizeof(l.parent), "%s", cases[i].parent);
		l.loopback = cases[i].loopback;
		l.ifindex = (int)i + 1;
		got = iface_virtual(&l);
		if (!cases[i].want && got)
			fail_msg("%s: want a NIC, got virtual (%s)", cases[i].desc, got);
		if (cases[i].want && (!got || strcmp(got, cases[i].want)))
			fail_msg("%s: want virtual (%s), got %s", cases[i].desc, cases[i].want,
				 got ? got : "a NIC");
	}
}

/* Which interface a pin under links/ is for: a start detaches those of
 * interfaces the config no longer names, whatever the hook. */
static void test_pin_ifname(void **state)
{
	static const struct {
		const char *pin, *want;
	} cases[] = {
		{ "eth0", "eth0" }, /* XDP link */
		{ "eth0:tcx", "eth0" }, /* tcx link */
		{ "eth0:clsact", "eth0" }, /* a clsact filter's program */
		{ "veth-a:b", "veth-a:b" }, /* not a suffix of ours */
		{ ":tcx", ":tcx" }, /* no stem: not ours to cut */
		{ "abcdefghijklmno:tcx", "abcdefghijklmno" },
	};
	char ifname[16];
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		assert_int_equal(dp_pin_ifname(cases[i].pin, ifname, sizeof(ifname)), 0);
		assert_string_equal(ifname, cases[i].want);
	}
	/* Longer than any interface name: no interface's pin. */
	assert_int_equal(dp_pin_ifname("abcdefghijklmnop", ifname, sizeof(ifname)), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iface_virtual),
		cmocka_unit_test(test_pin_ifname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
