/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's persisted state (<state_dir>/state): what must survive a reboot,
 * when the BPF pins are gone. Weights and latches are restored from it, so a
 * rolled-back service stays latched to blue after a reboot.
 *
 * Format, text so an operator can read it:
 *   shift-state 1
 *   name=web weight=2500 latched=0 reason= rollback_unix_ns=0 ... (one line per service)
 *   crc32 1a2b3c4d
 * The crc32 (zlib) covers every byte before its line, so a torn or hand-edited
 * file is refused rather than half-believed. Unknown keys are skipped (a newer
 * shiftd may add some); an unknown version is refused.
 */
#ifndef SHIFT_STATE_H
#define SHIFT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define STATE_VERSION 1
#define STATE_NAME_LEN 64 /* as CONF_NAME_LEN: [A-Za-z0-9_.-]{1,63} */
#define STATE_REASON_LEN 128
#define STATE_MAX_RAMP_STEPS 32
#define STATE_MAX_SERVICES 4096
#define STATE_TOKEN_LEN 16 /* [a-z_]{0,15} */

struct state_service {
	char name[STATE_NAME_LEN];
	__u32 weight; /* basis points, 0..SHIFT_WEIGHT_MAX */
	bool latched;
	char reason[STATE_REASON_LEN]; /* last rollback; any bytes but NUL */
	__u64 rollback_unix_ns; /* 0 = never */
	__u64 reaction_ns;
	bool ramp_active;
	__u32 ramp_steps[STATE_MAX_RAMP_STEPS]; /* basis points */
	__u32 ramp_n, ramp_index;
	__u64 ramp_hold_ns, ramp_step_started_unix_ns;
	/* A rollback drill holding: the weight to put back (0 = none), the ramp to
	 * resume (its plan is the ramp_* fields) and when the hold ends. */
	__u32 drill_weight;
	bool drill_ramp;
	__u64 drill_started_unix_ns, drill_ends_unix_ns;
	/* The last finished drill: its result ("restored", ...; "" none), start, time to blue. */
	char last_drill[STATE_TOKEN_LEN];
	__u64 last_drill_unix_ns, last_drill_ttb_ns;
	/* A fleet node's own rollback not yet in etcd (fleet/: published on
	 * reconnect, across a restart too). */
	bool fleet_publish;
	/* The last rollback's origin (a node name or "operator"; "" on a lone
	 * host) and this node's lag behind the origin's write (status shows both). */
	char rollback_origin[STATE_NAME_LEN];
	__s64 fleet_lag_us;
};

struct shift_state {
	__u32 n;
	struct state_service *svc;
};

/*
 * Read PATH into *st, which is overwritten (pass it zeroed or state_free()'d).
 * Returns 0; -ENOENT when there is no file (a first start: not an error for
 * callers); -EBADMSG for a corrupt file or an unknown version, with the reason
 * ("state file X: line 3: bad weight '20000'", "... checksum mismatch ...");
 * another negative errno when it cannot be read. On error *st is empty.
 */
int state_load(const char *path, struct shift_state *st, char *err, size_t errlen);
/* Parse text[0..len) (need not be NUL-terminated); as state_load, for fuzzers. */
int state_parse(const char *text, size_t len, struct shift_state *st, char *err, size_t errlen);
/* The file's bytes; *out is malloc'ed, the caller frees it. For tests and fuzzers. */
int state_format(const struct shift_state *st, char **out, size_t *len, char *err, size_t errlen);
/*
 * Write PATH.tmp.<pid>, fsync, rename over PATH, fsync the directory. On any
 * failure before the rename the temp file is removed and PATH is untouched.
 * -EINVAL if st holds a value the file cannot carry (bad name, weight > 100 %).
 */
int state_save(const char *path, const struct shift_state *st, char *err, size_t errlen);

/*
 * flock(LOCK_EX) on PATH.lock, blocking, so shiftd and shiftctl never interleave
 * a read-modify-write of PATH. *fd_out is closed by state_unlock().
 */
int state_lock(const char *path, int *fd_out, char *err, size_t errlen);
void state_unlock(int fd);

struct state_service *state_find(struct shift_state *st, const char *name);
/*
 * The entry for name, appended zeroed if absent. NULL with errno EINVAL (not a
 * service name) or ENOMEM. Appending may move the array: earlier pointers die.
 */
struct state_service *state_get_or_add(struct shift_state *st, const char *name);
/* Drop a service (it left the config). Returns 0 or -ENOENT. */
int state_remove(struct shift_state *st, const char *name);
void state_free(struct shift_state *st);

#endif
