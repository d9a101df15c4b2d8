// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Maglev rings are packed 32 two-byte slots to a map value, and shiftd
 * writes them through an mmap of the map. Checked here: every slot of a ring
 * reads back as the Maglev table names it (the last ring of the map too, so
 * the mmap offset is right at both ends), a write touches no other ring, bad
 * ids change nothing. (A restart over rings pinned in the older layout:
 * test_adopt.c.)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "harness.h"
#include "datapath/maglev.h"
#include "test.h"

#define LAST_SVC (SHIFT_MAX_SERVICES - 1)

static void pool_addrs(struct shift_addr_key *a, __u32 n, __u8 salt)
{
	__u32 i;

	memset(a, 0, n * sizeof(*a));
	for (i = 0; i < n; i++) {
		a[i].family = SHIFT_AF_INET;
		a[i].addr[0] = htonl(0x0a630000u | salt << 8 | (i + 1));
	}
}

/* How many slots of a ring differ from expect (ids of the Maglev table). */
static __u32 ring_diff(struct tctx *t, const struct shift_maps *m, __u32 sid, int color,
		       const __u32 *table, const __u32 *ids)
{
	__u32 slot, be, bad = 0;

	for (slot = 0; slot < SHIFT_RING_SIZE; slot++) {
		__u32 want = table[slot] == SHIFT_NO_BACKEND ? SHIFT_NO_BACKEND : ids[table[slot]];

		if (dp_ring_get(m, sid, color, slot, &be) || be != want) {
			if (!bad)
				test_note(t, "service %u color %d slot %u: %u, expected %u", sid,
					  color, slot, be, want);
			bad++;
		}
	}
	return bad;
}

static void check_write_read(struct tctx *t, struct harness *h)
{
	static __u32 table_b[SHIFT_RING_SIZE], table_g[SHIFT_RING_SIZE];
	const __u32 ids_b[] = { 0, 1, SHIFT_MAX_BACKENDS - 1 };
	const __u32 ids_g[] = { 1234, 7 };
	__u32 bad_ids[] = { 5, SHIFT_MAX_BACKENDS };
	struct shift_addr_key ab[3], ag[2];
	__u32 be;

	pool_addrs(ab, 3, 1);
	pool_addrs(ag, 2, 2);
	if (!ASSERT_OK(t, maglev_build(ab, 3, table_b, SHIFT_RING_SIZE), "maglev blue") ||
	    !ASSERT_OK(t, maglev_build(ag, 2, table_g, SHIFT_RING_SIZE), "maglev green"))
		return;
	/* The last ring of the map, and the one before it. */
	if (!ASSERT_OK(t, dp_pool_set(&h->m, LAST_SVC, SHIFT_BLUE, ids_b, ab, 3), "set blue") ||
	    !ASSERT_OK(t, dp_pool_set(&h->m, LAST_SVC, SHIFT_GREEN, ids_g, ag, 2), "set green"))
		return;
	ASSERT_EQ(t, ring_diff(t, &h->m, LAST_SVC, SHIFT_BLUE, table_b, ids_b), 0,
		  "blue slots that differ from the Maglev table (largest id 32767 included)");
	ASSERT_EQ(t, ring_diff(t, &h->m, LAST_SVC, SHIFT_GREEN, table_g, ids_g), 0,
		  "green slots that differ (the last ring of the map)");

	/* Emptying green leaves blue as it was. */
	if (!ASSERT_OK(t, dp_pool_set(&h->m, LAST_SVC, SHIFT_GREEN, ids_g, ag, 0), "empty green"))
		return;
	ASSERT_OK(t, dp_ring_get(&h->m, LAST_SVC, SHIFT_GREEN, SHIFT_RING_SIZE - 1, &be),
		  "read the last slot");
	ASSERT_EQ(t, be, SHIFT_NO_BACKEND, "an empty pool's last slot");
	ASSERT_OK(t, dp_ring_get(&h->m, LAST_SVC, SHIFT_GREEN, 0, &be), "read slot 0");
	ASSERT_EQ(t, be, SHIFT_NO_BACKEND, "an empty pool's first slot");
	ASSERT_EQ(t, ring_diff(t, &h->m, LAST_SVC, SHIFT_BLUE, table_b, ids_b), 0,
		  "blue slots that differ after green was emptied");

	/* An id that does not fit the map is refused before anything is written. */
	ASSERT_EQ(t, dp_pool_set(&h->m, LAST_SVC, SHIFT_BLUE, bad_ids, ab, 2), -ERANGE,
		  "a backend id of SHIFT_MAX_BACKENDS");
	ASSERT_EQ(t, ring_diff(t, &h->m, LAST_SVC, SHIFT_BLUE, table_b, ids_b), 0,
		  "blue slots that differ after the refused write");
	ASSERT_EQ(t, dp_ring_get(&h->m, LAST_SVC, SHIFT_BLUE, SHIFT_RING_SIZE, &be), -ERANGE,
		  "slot SHIFT_RING_SIZE");
	ASSERT_EQ(t, dp_pool_set(&h->m, SHIFT_MAX_SERVICES, SHIFT_BLUE, ids_b, ab, 3), -ERANGE,
		  "service SHIFT_MAX_SERVICES");
}

TEST(rings)
{
	struct harness h;

	if (test_sub(t, "rings: every slot reads back, other rings untouched, bad ids refused")) {
		if (ASSERT_OK(t, harness_open_hooks(&h, 1, 1024, 1024, 0, SHIFT_LOAD_XDP),
			      "load")) {
			check_write_read(t, &h);
			harness_close(&h);
		}
	}
}
