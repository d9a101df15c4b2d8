/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * shiftd's helper threads (the metrics writer, the HTTP render thread): their
 * signals belong to the loop's signalfd, so each starts with all of them blocked.
 */
#ifndef SHIFT_OPS_THREAD_H
#define SHIFT_OPS_THREAD_H

#include <pthread.h>

/* pthread_create() of fn(arg) with every signal blocked, named name (15 chars
 * at most). 0 or pthread_create()'s error number (positive, as it returns it). */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

#endif
