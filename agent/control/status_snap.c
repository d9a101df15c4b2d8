// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A status in two halves, the loop's copy and a thread's map reads; see status_snap.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/status_snap.h"

/* One service the agent runs, as the loop copied it. */
struct snap_svc {
	__u32 id;
	__u32 first, n; /* its backends in status_snap.refs */
	struct st_agent_svc v;
};

struct status_snap {
	struct shift_maps maps; /* fds, not owned */
	char *only; /* NULL: every service */
	struct st_model head; /* the agent-wide fields (svc NULL) */
	struct snap_svc *svc;
	__u32 n_svc;
	__u32 idx[SHIFT_MAX_SERVICES]; /* service id -> its place in svc, (__u32)-1: none */
	struct st_be_ref *refs; /* every backend the agent runs, service by service */
	__u32 n_refs;
};

void status_snap_free(struct status_snap *sn)
{
	if (!sn)
		return;
	free(sn->only);
	free(sn->svc);
	free(sn->refs);
	free(sn);
}

struct status_snap *status_snap_take(struct agent *a, const char *only)
{
	__u32 i, c, k, n_svc = 0, n_be = 0;
	__u64 now = now_mono_ns();
	struct status_snap *sn;

	agent_count(a, &n_svc, &n_be);
	sn = calloc(1, sizeof(*sn));
	if (!sn)
		return NULL;
	sn->svc = calloc(n_svc ? n_svc : 1, sizeof(*sn->svc));
	sn->refs = calloc(n_be ? n_be : 1, sizeof(*sn->refs));
	sn->only = only ? strdup(only) : NULL;
	if (!sn->svc || !sn->refs || (only && !sn->only)) {
		status_snap_free(sn);
		return NULL;
	}
	sn->maps = a->maps;
	status_take_agent(&sn->head, a);
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		const struct service_rt *r = a->svc[i];
		struct snap_svc *v;

		sn->idx[i] = (__u32)-1;
		if (!r)
			continue;
		sn->idx[i] = sn->n_svc;
		v = &sn->svc[sn->n_svc++];
		v->id = i;
		v->first = sn->n_refs;
		status_take_service(a, i, now, &v->v);
		/* In status_collect()'s order: by service id, blue then green, pool order. */
		for (c = 0; c < SHIFT_COLORS; c++) {
			for (k = 0; k < r->n[c]; k++) {
				struct st_be_ref *b = &sn->refs[sn->n_refs++];

				b->svc = i;
				b->id = r->pool[c][k].id;
				b->color = (__u8)c;
				b->healthy = r->pool[c][k].healthy;
			}
		}
		v->n = sn->n_refs - v->first;
	}
	return sn;
}

const char *status_snap_only(const struct status_snap *sn)
{
	return sn->only;
}

/* What status_add_agent() does to a model, from the copy. */
static void apply(const struct status_snap *sn, struct st_model *st)
{
	struct st_model maps = *st;
	__u32 i, j, k;

	/* The agent-wide fields are the loop's; the services and counters the maps'. */
	*st = sn->head;
	st->svc = maps.svc;
	st->n = maps.n;
	memcpy(st->stats, maps.stats, sizeof(st->stats));
	for (i = 0; i < st->n; i++) {
		struct st_service *s = &st->svc[i];
		const struct snap_svc *v;

		if (sn->idx[s->id] == (__u32)-1)
			continue;
		v = &sn->svc[sn->idx[s->id]];
		status_apply_service(&sn->maps, s, &v->v);
		for (j = 0; j < s->n_be; j++) {
			struct st_backend *b = &s->be[j];

			for (k = v->first; k < v->first + v->n; k++)
				if (sn->refs[k].color == b->color && sn->refs[k].id == b->id)
					b->healthy = sn->refs[k].healthy;
		}
	}
}

int status_snap_render(const struct status_snap *sn, enum status_form form,
		       const atomic_bool *cancel, char **buf, size_t *len)
{
	struct st_model st;
	int err;

	*buf = NULL;
	*len = 0;
	err = status_collect_refs(&sn->maps, sn->only, &st, sn->refs, sn->n_refs, cancel);
	if (err)
		return err;
	apply(sn, &st);
	/* 15 MB of JSON at 32768 backends: a stop must not wait for it either. */
	st.cancel = cancel;
	err = status_render_form(&st, form, buf, len);
	status_free(&st);
	return err;
}
