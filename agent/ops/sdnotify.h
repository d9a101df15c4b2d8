/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What shiftd's tick tells systemd besides READY/RELOADING/STOPPING: WATCHDOG=1
 * every half of $WATCHDOG_USEC (WatchdogSec= in the unit) and a STATUS= line
 * when the summary changes. The datagram itself is sent by shiftd.c.
 */
#ifndef SHIFT_SDNOTIFY_H
#define SHIFT_SDNOTIFY_H

#include <stddef.h>
#include <linux/types.h>

#include "agent.h"

#define SDNOTIFY_STATUS_LEN 128

struct sdnotify {
	__u64 wd_every_ns; /* half of $WATCHDOG_USEC; 0 = no watchdog */
	__u64 wd_next_ns; /* CLOCK_MONOTONIC of the next ping; 0 = now */
	char status[SDNOTIFY_STATUS_LEN]; /* the STATUS= last sent */
};

/*
 * Read $WATCHDOG_USEC and $WATCHDOG_PID as sd_watchdog_enabled(3) does: the
 * watchdog is on when WATCHDOG_USEC is a positive number and WATCHDOG_PID is
 * unset or this process. Returns the ping period in ns (0: off).
 */
__u64 sdnotify_init(struct sdnotify *n);
/* The one-line summary: "2 services, 1 rolled back (web)". */
void sdnotify_summary(struct agent *a, char *buf, size_t len);
/*
 * What to send at now_ns: "WATCHDOG=1", "STATUS=...", both (newline-separated),
 * or nothing. Returns the message length (0: nothing due).
 */
size_t sdnotify_tick(struct sdnotify *n, struct agent *a, __u64 now_ns, char *msg, size_t len);

#endif
