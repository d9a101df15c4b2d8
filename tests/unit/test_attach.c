// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * attach = auto's "NIC or virtual interface" (iface_virtual) on what rtnetlink
 * says of a link: a device behind it makes a NIC, else its kind or IFF_LOOPBACK
 * a virtual interface. The name plays no part: a veth named eth0 is a veth.
 */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iface_virtual),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
