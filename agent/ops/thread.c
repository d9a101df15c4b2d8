// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* shiftd's helper threads; see thread.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "ops/privs.h"
#include "ops/thread.h"

struct thread_arg {
	void *(*fn)(void *);
	void *arg;
};

static void *thread_main(void *p)
{
	struct thread_arg ta = *(struct thread_arg *)p;

	free(p);
	/*
	 * Capabilities are per thread: one started before the main thread's
	 * privs_drop() (the control socket's and the HTTP API's, which start
	 * before privileges go) would keep all of them. Each drops its own to
	 * what shiftd keeps; none needs more than its fds and state_dir.
	 */
	privs_drop();
	return ta.fn(ta.arg);
}

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	struct thread_arg *ta = malloc(sizeof(*ta));
	sigset_t all, old;
	int rc;

	if (!ta)
		return ENOMEM;
	ta->fn = fn;
	ta->arg = arg;
	/* The new thread inherits this mask; the caller's is restored at once. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, NULL, thread_main, ta);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		free(ta);
	else
		pthread_setname_np(*t, name);
	return rc;
}
