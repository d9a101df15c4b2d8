/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One shiftd per state_dir. A second one on the same config would adopt the
 * maps, take the control socket over, consume the same sample rings and run
 * the same triggers and ramps: it is refused before it touches anything.
 *
 * The lock is flock(LOCK_EX) on <state_dir>/shiftd.lock, held for the life of
 * the process (the kernel drops it when the process dies, however it dies),
 * with the holder's pid written in the file for the refusal message. In
 * state_dir, not bpffs_dir: bpffs holds no regular files to write a pid in,
 * and 'shiftd --detach' removes bpffs_dir (a lock on a directory that goes
 * away guards nothing).
 *
 * Two configs with one bpffs_dir and two state_dirs would still share the
 * maps: the second would adopt them and write its own services over the
 * first's before its attach failed. So a start also takes flock(LOCK_EX) on
 * bpffs_dir itself, once it exists, before any map is opened; the holder's
 * pid comes from /proc/locks (a directory holds no pid of its own).
 */
#ifndef SHIFT_INSTANCE_H
#define SHIFT_INSTANCE_H

#include <stddef.h>
#include <sys/types.h>

#define INSTANCE_LOCK_NAME "shiftd.lock"

/*
 * Take state_dir's lock for this process. Returns the fd to keep open while
 * the process runs (>= 0, close-on-exec); -EWOULDBLOCK when another process
 * holds it, its pid in *holder (0 when the file does not say); another
 * -errno otherwise. err gets a sentence for the log either way.
 */
int instance_lock(const char *state_dir, pid_t *holder, char *err, size_t errlen);
/*
 * Take bpffs_dir's lock for this process (the directory must exist): the fd
 * to keep open (>= 0, close-on-exec); -EWOULDBLOCK when another process
 * holds it, its pid in *holder (0 when /proc/locks does not tell); another
 * -errno otherwise. err gets a sentence for the log either way. No wait: no
 * probe ever takes this lock for an instant.
 */
int instance_lock_pins(const char *bpffs_dir, pid_t *holder, char *err, size_t errlen);
/*
 * Is a shiftd running for state_dir, i.e. holding its lock? 1 with its pid in
 * *pid (0 when the file does not say), 0 when none is, -errno when it cannot
 * be told (state_dir unreadable). Takes a shared lock for an instant, never
 * the exclusive one: a shiftd starting at that very instant retries
 * (instance_lock() waits up to a second for a holder to let go).
 */
int instance_running(const char *state_dir, pid_t *pid);

#endif
