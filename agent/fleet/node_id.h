/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * This host's identity in its fleet, apart from its node name: 128 random bits,
 * kept in <state_dir>/fleet-node-id. Two hosts configured with one node name
 * (a cloned image keeps its hostname) would otherwise share alive/NODE and
 * overwrite each other's nodes/NODE report; with the id the second is told
 * apart and says so. A restart finds its own id under alive/NODE (a crash
 * leaves the key to its lease for up to fleet_lease) and takes the key back at
 * once. Consul keeps a node-id in its data directory for the same reason.
 */
#ifndef SHIFT_FLEET_NODE_ID_H
#define SHIFT_FLEET_NODE_ID_H

#include <stdbool.h>
#include <stddef.h>

#define FLEET_NODE_ID_HEX 32
#define FLEET_NODE_ID_LEN (FLEET_NODE_ID_HEX + 1)
#define FLEET_NODE_ID_FILE "fleet-node-id"

/* id is FLEET_NODE_ID_HEX lowercase hex digits. */
bool fleet_node_id_valid(const char *id);
/*
 * Read <state_dir>/fleet-node-id into id: 0. Or make one and write it there
 * (temp file, fsync, rename): 1, why says why. Or a negative errno with why
 * set when the file cannot be read or written: id then holds a fresh id for
 * this run only.
 */
int fleet_node_id_load(const char *state_dir, char id[FLEET_NODE_ID_LEN], char *why, size_t wl);

#endif
