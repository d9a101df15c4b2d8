// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowtab: writes and counts entries of a pinned IPv4 connection table
 * (shift_flows4), for tests that need a table far bigger than real
 * connections can make in a test's time (test_evict_big.sh).
 *
 *   flowtab fill PIN N SERVICE COLOR BACKEND [FIRST]
 *       N idle entries of SERVICE, COLOR (0 blue, 1 green) on BACKEND, client
 *       addresses 10.0.0.0/8 from FIRST on (keys distinct for distinct FIRST..N)
 *   flowtab count PIN [SERVICE [COLOR]]
 *       the entries (of SERVICE, of COLOR)
 *
 * Batched map calls (BPF_MAP_UPDATE_BATCH, BPF_MAP_LOOKUP_BATCH): a million
 * entries in about a second. Prints one number; exit 0, 1 on an error (said
 * on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <shift/maps.h>

#define BATCH 8192

static int usage(void)
{
	fputs("usage: flowtab fill PIN N SERVICE COLOR BACKEND [FIRST]\n"
	      "       flowtab count PIN [SERVICE [COLOR]]\n",
	      stderr);
	return 2;
}

static int fill(int fd, unsigned long n, unsigned long sid, unsigned long color, unsigned long be,
		unsigned long first)
{
	struct shift_flow_key4 *k = calloc(BATCH, sizeof(*k));
	struct shift_flow *v = calloc(BATCH, sizeof(*v));
	unsigned long done = 0, i;
	__u32 c;

	if (!k || !v) {
		fprintf(stderr, "flowtab: out of memory\n");
		return 1;
	}
	while (done < n) {
		c = n - done < BATCH ? n - done : BATCH;
		for (i = 0; i < c; i++) {
			__u32 x = first + done + i;

			/* 10.x.y.z, 256 ports each: distinct keys, none a real client's. */
			k[i].saddr = htonl(0x0a000000u | (x >> 8));
			k[i].daddr = htonl(0xc0000201u); /* 192.0.2.1: no VIP of the rig */
			k[i].sport = htons(1024 + (x & 0xff));
			k[i].dport = htons(80);
			v[i].service_id = sid;
			v[i].color = color;
			v[i].backend_id = be;
			v[i].hash = x * 2654435761u;
		}
		if (bpf_map_update_batch(fd, k, v, &c, NULL)) {
			fprintf(stderr, "flowtab: update batch: %s (%u written)\n", strerror(errno),
				c);
			return 1;
		}
		done += c;
	}
	printf("%lu\n", done);
	free(k);
	free(v);
	return 0;
}

static int count(int fd, long sid, long color)
{
	struct shift_flow_key4 *k = calloc(BATCH, sizeof(*k));
	struct shift_flow *v = calloc(BATCH, sizeof(*v));
	unsigned long total = 0;
	__u32 cursor = 0, c, i;
	bool first = true;
	int err;

	if (!k || !v) {
		fprintf(stderr, "flowtab: out of memory\n");
		return 1;
	}
	do {
		c = BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : &cursor, &cursor, k, v, &c, NULL);
		if (err && errno != ENOENT) {
			fprintf(stderr, "flowtab: lookup batch: %s\n", strerror(errno));
			return 1;
		}
		first = false;
		for (i = 0; i < c; i++)
			total += (sid < 0 || v[i].service_id == sid) &&
				 (color < 0 || v[i].color == color);
	} while (!err);
	printf("%lu\n", total);
	free(k);
	free(v);
	return 0;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc < 3)
		return usage();
	fd = bpf_obj_get(argv[2]);
	if (fd < 0) {
		fprintf(stderr, "flowtab: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (!strcmp(argv[1], "fill") && (argc == 7 || argc == 8))
		return fill(fd, strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0),
			    strtoul(argv[5], NULL, 0), strtoul(argv[6], NULL, 0),
			    argc == 8 ? strtoul(argv[7], NULL, 0) : 0);
	if (!strcmp(argv[1], "count") && argc <= 5)
		return count(fd, argc > 3 ? strtol(argv[3], NULL, 0) : -1,
			     argc > 4 ? strtol(argv[4], NULL, 0) : -1);
	return usage();
}
