// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The weight word's compare-and-swap: bpf/weight_cas.bpf.c, loaded once per
 * struct shift_maps against its weights map and run by BPF_PROG_TEST_RUN (a
 * map update has no compare; BPF's atomics do).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>
#include "weight_cas.skel.h"
#include "datapath/dataplane.h"

/* On failure libbpf prints the verifier log through the process's print hook. */
static int cas_load(struct shift_maps *m)
{
	struct weight_cas *skel;
	int err, fd;

	skel = weight_cas__open();
	if (!skel)
		return -errno;
	err = bpf_map__reuse_fd(skel->maps.shift_weights, m->fd[SHIFT_MAP_WEIGHTS]);
	if (!err)
		err = weight_cas__load(skel);
	if (!err) {
		/* The skeleton goes; the program stays with this fd. */
		fd = fcntl(bpf_program__fd(skel->progs.shift_weight_cas), F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			err = -errno;
		else
			m->weight_cas_fd = fd;
	}
	weight_cas__destroy(skel);
	return err;
}

int dp_weight_cas(struct shift_maps *m, __u32 service_id, __u32 expect, __u32 word, __u32 *seen)
{
	struct shift_weight_cas c = { .service_id = service_id, .expect = expect, .word = word };
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &c, .ctx_size_in = sizeof(c));
	int err;

	if (service_id >= SHIFT_MAX_SERVICES)
		return -ERANGE;
	if ((word & SHIFT_WEIGHT_MASK) > SHIFT_WEIGHT_MAX)
		return -EINVAL;
	/* -EAGAIN means "another word" to the callers, and nothing else. */
	if (m->weight_cas_fd < 0) {
		err = cas_load(m);
		if (err)
			return err == -EAGAIN ? -EIO : err;
	}
	if (bpf_prog_test_run_opts(m->weight_cas_fd, &o))
		return errno == EAGAIN ? -EIO : -errno;
	if (o.retval)
		return -ENOENT;
	if (seen)
		*seen = c.seen;
	/* Already the word wanted: another writer's identical write (a fleet
	 * watch applying shiftctl's own etcd write first) is not a conflict. */
	return c.seen == expect || c.seen == word ? 0 : -EAGAIN;
}

bool dp_weight_cas_unchecked(int err)
{
	/* -ENOENT: the program found no such slot, which the plain write would not either. */
	return err && err != -EAGAIN && err != -ERANGE && err != -EINVAL && err != -ENOENT;
}

void dp_weight_cas_close(struct shift_maps *m)
{
	if (m->weight_cas_fd >= 0)
		close(m->weight_cas_fd);
	m->weight_cas_fd = -1;
}
