/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Which color and backend a new connection from a client gets now, computed
 * from the pinned maps with the datapath's own hash functions
 * (include/shift/flow_hash.h) and the same decision order as
 * bpf/flow_choice.h choose_backend(): latch, override, weight, empty pool.
 * It needs no shiftd: `shiftctl which` runs it on the pins.
 */
#ifndef SHIFT_WHICH_H
#define SHIFT_WHICH_H

#include <stdbool.h>
#include <linux/types.h>
#include <shift/maps.h>

enum which_why {
	WHICH_WEIGHT, /* the slice of the color hash against the weight */
	WHICH_OVERRIDE, /* a green_sources / blue_sources prefix */
	WHICH_ROLLED_BACK, /* the rollback latch: blue only */
};

struct which_result {
	bool client_affinity;
	__u32 prefix; /* client affinity: the prefix length for the client's family */
	__u32 weight_bp; /* green weight in force (0 when latched) */
	bool latched;
	enum which_why why;
	int color; /* SHIFT_BLUE / SHIFT_GREEN; -1: depends on the source port */
	__u32 slice; /* color hash % 10000 (WHICH_WEIGHT with a color) */
	bool borrowed; /* the chosen pool is empty: the other pool serves */
	bool no_backend; /* neither pool can serve: the datapath drops */
	__u32 backend_id; /* SHIFT_NO_BACKEND when unknown (no port) or none */
	struct shift_backend be; /* valid when backend_id != SHIFT_NO_BACKEND */
};

struct shift_maps;

/*
 * client: family + addr (network order) + port (network order, 0 = no port:
 * the backend and, with flow affinity, the color depend on it). The family
 * must be the service's. Returns 0 or a negative errno (-EAFNOSUPPORT: family
 * differs from the VIP's).
 */
int which_compute(const struct shift_maps *m, __u32 service_id, const struct shift_addr_key *client,
		  struct which_result *out);

/*
 * "10.0.0.5", "10.0.0.5:40000", "2001:db8::5", "[2001:db8::5]", "[2001:db8::5]:40000"
 * -> family, addr, port (0 when absent). Returns 0 or -EINVAL with a reason in err.
 */
int which_parse_client(const char *s, struct shift_addr_key *out, char *err, size_t errlen);

#endif
