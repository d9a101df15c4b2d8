// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* shiftd's helper threads; see thread.h. */
#include <signal.h>

#include "ops/thread.h"

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	sigset_t all, old;
	int rc;

	/* The new thread inherits this mask; the caller's is restored at once. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!rc)
		pthread_setname_np(*t, name);
	return rc;
}
