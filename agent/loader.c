// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <bpf/libbpf.h>

#include <shift/maps.h>
#include "shift.skel.h"
#include "loader.h"
#include "log.h"

struct shift *shift_skel_load(const struct loader_opts *o)
{
	struct shift *skel;
	int err;

	skel = shift__open();
	if (!skel) {
		err = -errno;
		log_err("cannot open the BPF object: %s", strerror(-err));
		errno = -err;
		return NULL;
	}
	skel->rodata->hash_seed = o->hash_seed;
	err = bpf_map__set_max_entries(skel->maps.shift_flows4,
				       o->max_flows4 ? o->max_flows4 : SHIFT_DEFAULT_FLOWS);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.shift_flows6, o->max_flows6 ?
									o->max_flows6 :
									SHIFT_DEFAULT_FLOWS6);
	if (err) {
		log_err("cannot size the connection table: %s", strerror(-err));
		goto fail;
	}
	/* On failure libbpf has printed the verifier log through shift_log. */
	err = shift__load(skel);
	if (err) {
		log_err("cannot load the BPF programs: %s", strerror(-err));
		goto fail;
	}
	return skel;
fail:
	shift__destroy(skel);
	errno = -err;
	return NULL;
}
