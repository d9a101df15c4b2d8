/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * shiftd's helper threads (the metrics and state file writers, the render and
 * status threads): their signals belong to the loop's signalfd, so each starts
 * with all of them blocked, and each drops its capabilities as privs_drop()
 * does (they are per thread: one started before the main thread dropped its
 * own would keep them all).
 */
#ifndef SHIFT_OPS_THREAD_H
#define SHIFT_OPS_THREAD_H

#include <pthread.h>

/* pthread_create() of fn(arg) with every signal blocked and privileges dropped,
 * named name (15 chars at most). 0 or an error number (positive, as
 * pthread_create() returns it). */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

#endif
