// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Backend next hops from netlink, event by event (see nexthop.h for what each
 * event costs). Backends are found by the neighbour entry they resolve
 * through in a hash index over backend ids; the index and every queue hold
 * ids, never pointers, and an id is turned into its backend_rt through a
 * locator checked against the pools, so a reload in between can only make a
 * lookup find nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <net/if_arp.h>

#include "config/addr.h"
#include "ops/clock.h"
#include "ops/log.h"
#include "datapath/netlink.h"
#include "datapath/nexthop.h"

#define NH_NONE 0xffffffffu
/* Twice the backends at most: chains stay short, collisions rare. */
#define NH_BUCKETS 65536u
/* Neighbour answers kept in one pass (slots; at 3/4 full all are forgotten). */
#define NH_NEIGH_SLOTS 4096u
/* Egress links kept (an edge host's backends leave by a few). */
#define NH_LINKS 64u

_Static_assert(SHIFT_MAX_BACKENDS <= NH_BUCKETS, "the index has room for every backend");
_Static_assert(SHIFT_MAX_SERVICES <= 0x10000 && SHIFT_MAX_POOL_BACKENDS <= 0x100,
	       "a locator holds any backend's place");

/* A neighbour entry: what backends resolve through. */
struct nh_key {
	__u32 addr[4];
	int ifindex;
	__u8 family;
};

/* Where backend id sits in the pools, as of the last index. */
struct nh_loc {
	__u16 sid;
	__u8 color;
	__u8 idx;
	bool valid;
};

/* A neighbour entry's answer in this pass (from a query or a later event). */
struct nh_neigh {
	bool used;
	bool known; /* err and mac hold an answer */
	bool probed; /* resolution asked for in this pass */
	struct nh_key key;
	int err; /* 0: mac; -EAGAIN: not resolved; other: the query failed */
	__u8 mac[6];
};

/* An egress link as last read; forgotten when an event says it changed. */
struct nh_link {
	int ifindex; /* 0: free */
	int err; /* 0: Ethernet, mac; -EOPNOTSUPP: not Ethernet */
	__u8 mac[6];
	bool up, running;
	__u16 type;
};

struct nh_table {
	/* Backends by neighbour entry: chains of ids per bucket. */
	__u32 bucket[NH_BUCKETS];
	__u32 next[SHIFT_MAX_BACKENDS], prev[SHIFT_MAX_BACKENDS];
	__u32 home[SHIFT_MAX_BACKENDS]; /* the bucket it is in, NH_NONE */
	struct nh_loc loc[SHIFT_MAX_BACKENDS];
	/* Lookups to make, first in first out, each id once. */
	__u32 queue[SHIFT_MAX_BACKENDS];
	__u32 qhead, qlen;
	__u8 queued[SHIFT_MAX_BACKENDS];
	__u64 full_due_ns; /* a debounced pass over every backend (monotonic), 0 none */
	__u64 retry_due_ns; /* failed lookups again, 0 none */
	struct nh_neigh neigh[NH_NEIGH_SLOTS];
	__u32 n_neigh;
	struct nh_link links[NH_LINKS];
	__u32 link_next; /* the slot a new link takes when all are used */
};

static __u32 key_hash(const struct nh_key *k)
{
	__u32 h = (__u32)k->ifindex * 0x9e3779b1u ^ k->family;
	int i;

	for (i = 0; i < 4; i++) {
		h ^= k->addr[i];
		h *= 0x85ebca6bu;
		h ^= h >> 13;
	}
	return h;
}

static bool key_eq(const struct nh_key *a, const struct nh_key *b)
{
	return a->ifindex == b->ifindex && a->family == b->family &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static void key_make(struct nh_key *k, int ifindex, __u8 family, const __u32 addr[4])
{
	memset(k, 0, sizeof(*k));
	k->ifindex = ifindex;
	k->family = family;
	memcpy(k->addr, addr, sizeof(k->addr));
}

static void key_of(const struct backend_rt *b, struct nh_key *k)
{
	key_make(k, b->nh_ifindex, b->nh_family, b->nh_addr);
}

static bool backend_has_key(const struct backend_rt *b, const struct nh_key *k)
{
	struct nh_key bk;

	if (b->nh_state != NH_KEYED)
		return false;
	key_of(b, &bk);
	return key_eq(&bk, k);
}

/* --- the index ---------------------------------------------------------------- */

static void index_unlink(struct nh_table *t, __u32 id)
{
	__u32 h = t->home[id];

	if (h == NH_NONE)
		return;
	if (t->prev[id] != NH_NONE)
		t->next[t->prev[id]] = t->next[id];
	else
		t->bucket[h] = t->next[id];
	if (t->next[id] != NH_NONE)
		t->prev[t->next[id]] = t->prev[id];
	t->home[id] = NH_NONE;
}

static void index_link(struct nh_table *t, __u32 id, const struct nh_key *k)
{
	__u32 h = key_hash(k) & (NH_BUCKETS - 1);

	index_unlink(t, id);
	t->home[id] = h;
	t->prev[id] = NH_NONE;
	t->next[id] = t->bucket[h];
	if (t->bucket[h] != NH_NONE)
		t->prev[t->bucket[h]] = id;
	t->bucket[h] = id;
}

/* Backend id's runtime, or NULL when it is no longer in a pool. */
static struct backend_rt *backend_of(struct agent *a, __u32 id)
{
	const struct nh_loc *l = &a->nh->loc[id];
	struct service_rt *s;

	if (!l->valid)
		return NULL;
	s = a->svc[l->sid];
	if (!s || l->idx >= s->n[l->color] || s->pool[l->color][l->idx].id != id)
		return NULL;
	return &s->pool[l->color][l->idx];
}

static void enqueue(struct nh_table *t, __u32 id)
{
	if (id >= SHIFT_MAX_BACKENDS || t->queued[id])
		return;
	t->queued[id] = 1;
	t->queue[(t->qhead + t->qlen) % SHIFT_MAX_BACKENDS] = id;
	t->qlen++;
}

void nexthops_reindex(struct agent *a)
{
	struct nh_table *t = a->nh;
	__u64 now = now_mono_ns();
	__u32 i, k;
	int c;

	a->nexthops_dirty = false;
	if (!t)
		return;
	memset(t->bucket, 0xff, sizeof(t->bucket));
	memset(t->home, 0xff, sizeof(t->home));
	memset(t->loc, 0, sizeof(t->loc));
	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s)
			continue;
		for (c = 0; c < SHIFT_COLORS; c++) {
			for (k = 0; k < s->n[c]; k++) {
				struct backend_rt *b = &s->pool[c][k];
				struct nh_key key;

				if (b->id >= SHIFT_MAX_BACKENDS)
					continue;
				t->loc[b->id] = (struct nh_loc){ .sid = (__u16)i,
								 .color = (__u8)c,
								 .idx = (__u8)k,
								 .valid = true };
				if (b->nh_state == NH_KEYED) {
					key_of(b, &key);
					index_link(t, b->id, &key);
				} else if (b->nh_state == NH_NEW) {
					enqueue(t, b->id);
				} else if (b->nh_state == NH_RETRY && !t->retry_due_ns) {
					t->retry_due_ns = now + NH_RETRY_NS;
				}
			}
		}
	}
	a->nh_stats.pending = t->qlen;
}

/* The table, indexed as the pools are now; NULL without netlink. */
static struct nh_table *table(struct agent *a)
{
	if (!a->nh || !a->nl)
		return NULL;
	if (a->nexthops_dirty)
		nexthops_reindex(a);
	return a->nh;
}

/* --- what a pass remembers -------------------------------------------------------- */

static void neigh_forget(struct nh_table *t)
{
	if (!t->n_neigh)
		return;
	memset(t->neigh, 0, sizeof(t->neigh));
	t->n_neigh = 0;
}

/* k's slot: the one holding it, or (add) a free one for it; NULL if neither. */
static struct nh_neigh *neigh_slot(struct nh_table *t, const struct nh_key *k, bool add)
{
	__u32 i, h = key_hash(k);

	if (add && t->n_neigh >= NH_NEIGH_SLOTS / 4 * 3)
		neigh_forget(t);
	for (i = 0; i < NH_NEIGH_SLOTS; i++) {
		struct nh_neigh *n = &t->neigh[(h + i) & (NH_NEIGH_SLOTS - 1)];

		if (!n->used) {
			if (!add)
				return NULL;
			memset(n, 0, sizeof(*n));
			n->used = true;
			n->key = *k;
			t->n_neigh++;
			return n;
		}
		if (key_eq(&n->key, k))
			return n;
	}
	return NULL;
}

static struct nh_link *link_slot(struct nh_table *t, int ifindex)
{
	__u32 i;

	for (i = 0; i < NH_LINKS; i++)
		if (t->links[i].ifindex == ifindex)
			return &t->links[i];
	return NULL;
}

/* The egress link's MAC: 0, -EOPNOTSUPP (not Ethernet), -ENETUNREACH (gone
 * since the route lookup; its events follow), or the query's -errno. */
static int link_mac(struct agent *a, int ifindex, __u8 mac[6])
{
	struct nh_table *t = a->nh;
	struct nh_link *li = link_slot(t, ifindex);
	struct nl_link l;
	int err;

	if (!li) {
		a->nh_stats.queries++;
		err = nl_link_by_index(a->nl, ifindex, &l);
		if (err == -ENODEV)
			return -ENETUNREACH;
		if (err)
			return err;
		li = link_slot(t, 0);
		if (!li) {
			li = &t->links[t->link_next];
			t->link_next = (t->link_next + 1) % NH_LINKS;
		}
		li->ifindex = ifindex;
		li->err = l.type == ARPHRD_ETHER ? 0 : -EOPNOTSUPP;
		memcpy(li->mac, l.mac, sizeof(li->mac));
		li->up = l.up;
		li->running = l.running;
		li->type = l.type;
	}
	memcpy(mac, li->mac, 6);
	return li->err;
}

/* --- writing the map ------------------------------------------------------------------ */

static void put(struct agent *a, struct backend_rt *b, const struct shift_backend *e)
{
	char ab[ADDR_ENDPOINT_LEN];

	if (!memcmp(e, &b->entry, sizeof(*e)))
		return;
	/* Not written (a broken map): the entry stays as it was, and the next
	 * event or pass for it tries again. */
	if (dp_backend_put(&a->maps, b->id, e, b->addr.proto))
		return;
	log_debug("backend %s: next hop %s", addr_format_endpoint(&b->addr, ab, sizeof(ab)),
		  (e->flags & SHIFT_BE_F_NH_VALID) ? "cached" : "via the kernel");
	b->entry = *e;
}

static void retry_later(struct agent *a, struct backend_rt *b, int err, const char *what)
{
	char ab[ADDR_ENDPOINT_LEN];

	index_unlink(a->nh, b->id);
	b->nh_state = NH_RETRY;
	if (!a->nh->retry_due_ns)
		a->nh->retry_due_ns = now_mono_ns() + NH_RETRY_NS;
	log_debug("backend %s: %s lookup failed: %s; again in a second",
		  addr_format_endpoint(&b->addr, ab, sizeof(ab)), what, strerror(-err));
}

/*
 * Look b's next hop up: its route (one query), the egress link's MAC and the
 * neighbour's (each once per pass), and rewrite its map entry if it changed.
 * Unknown neighbour: the datapath falls back to the FIB and then the kernel,
 * which resolves it (we ask it to, once per pass); the neighbour event brings
 * the MAC.
 */
static void lookup(struct agent *a, struct backend_rt *b)
{
	struct nh_table *t = a->nh;
	struct shift_backend e = b->entry;
	struct nh_neigh *n, one;
	struct nl_nexthop nh;
	struct nh_key k;
	__u8 smac[6];
	int err;

	a->nh_stats.lookups++;
	a->nh_stats.queries++;
	err = nl_route_nexthop(a->nl, b->addr.family, b->addr.addr, &nh);
	if (!err)
		err = link_mac(a, nh.ifindex, smac);
	e.flags &= ~SHIFT_BE_F_NH_VALID;
	if (err == -ENETUNREACH || err == -EOPNOTSUPP) {
		index_unlink(t, b->id);
		b->nh_state = NH_NOROUTE;
	} else if (err) {
		retry_later(a, b, err, "route or link");
	} else {
		key_make(&k, nh.ifindex, nh.gw_family, nh.gw);
		if (!backend_has_key(b, &k)) {
			memcpy(b->nh_addr, k.addr, sizeof(b->nh_addr));
			b->nh_ifindex = k.ifindex;
			b->nh_family = k.family;
			b->nh_state = NH_KEYED;
			index_link(t, b->id, &k);
		}
		memcpy(b->nh_smac, smac, sizeof(b->nh_smac));
		n = neigh_slot(t, &k, true);
		if (!n) {
			/* Never: a pass forgets its answers at 3/4 full. */
			memset(&one, 0, sizeof(one));
			n = &one;
		}
		if (!n->known) {
			a->nh_stats.queries++;
			n->err = nl_neigh_lookup(a->nl, k.ifindex, k.family, k.addr, n->mac);
			n->known = true;
		}
		if (!n->err) {
			e.nh_ifindex = (__u32)k.ifindex;
			memcpy(e.nh_smac, smac, 6);
			memcpy(e.nh_dmac, n->mac, 6);
			e.flags |= SHIFT_BE_F_NH_VALID;
		} else if (n->err == -EAGAIN) {
			if (!n->probed) {
				n->probed = true;
				a->nh_stats.queries++;
				nl_neigh_probe(a->nl, k.ifindex, k.family, k.addr);
			}
		} else {
			retry_later(a, b, n->err, "neighbour");
		}
	}
	put(a, b, &e);
}

/* --- events ------------------------------------------------------------------------- */

void nexthops_neigh(struct agent *a, int ifindex, __u8 family, const __u32 addr[4],
		    const __u8 mac[6], bool usable)
{
	struct nh_table *t = table(a);
	struct nh_neigh *n;
	struct nh_key k;
	__u32 id, hits = 0;

	if (!t)
		return;
	key_make(&k, ifindex, family, addr);
	/* A pass under way takes the newest word for it. */
	n = neigh_slot(t, &k, false);
	if (n) {
		n->known = true;
		n->err = usable ? 0 : -EAGAIN;
		memcpy(n->mac, mac, sizeof(n->mac));
	}
	for (id = t->bucket[key_hash(&k) & (NH_BUCKETS - 1)]; id != NH_NONE; id = t->next[id]) {
		struct backend_rt *b = backend_of(a, id);
		struct shift_backend e;

		if (!b || !backend_has_key(b, &k))
			continue;
		hits++;
		e = b->entry;
		if (usable) {
			/* The event is the kernel's entry as it is now: its MAC is
			 * the answer a query would give. */
			e.nh_ifindex = (__u32)ifindex;
			memcpy(e.nh_smac, b->nh_smac, 6);
			memcpy(e.nh_dmac, mac, 6);
			e.flags |= SHIFT_BE_F_NH_VALID;
		} else {
			e.flags &= ~SHIFT_BE_F_NH_VALID;
		}
		if (memcmp(&e, &b->entry, sizeof(e)))
			a->nh_stats.from_events++;
		put(a, b, &e);
	}
	/* Gone, failed or not resolved yet: have the kernel resolve it (it
	 * leaves an entry resolving already, or an operator's, alone). */
	if (hits && !usable) {
		a->nh_stats.queries++;
		nl_neigh_probe(a->nl, ifindex, family, addr);
	}
}

/* Queue every backend for which match() holds. */
static __u32 enqueue_where(struct agent *a,
			   bool (*match)(const struct backend_rt *b, const void *arg),
			   const void *arg)
{
	struct nh_table *t = a->nh;
	__u32 i, k, n = 0;
	int c;

	for (i = 0; i < SHIFT_MAX_SERVICES; i++) {
		struct service_rt *s = a->svc[i];

		if (!s)
			continue;
		for (c = 0; c < SHIFT_COLORS; c++)
			for (k = 0; k < s->n[c]; k++)
				if (!match || match(&s->pool[c][k], arg)) {
					enqueue(t, s->pool[c][k].id);
					n++;
				}
	}
	a->nh_stats.pending = t->qlen;
	return n;
}

static bool on_link(const struct backend_rt *b, const void *arg)
{
	return b->nh_state == NH_KEYED && b->nh_ifindex == *(const int *)arg;
}

void nexthops_link(struct agent *a, const struct nl_link *l, bool deleted)
{
	struct nh_table *t = table(a);
	struct nh_link *li;

	if (!t)
		return;
	li = link_slot(t, l->ifindex);
	/* Links announce much that next hops do not depend on (statistics
	 * flags, promiscuity, MTU, a master): only their MAC, type, state or
	 * their end concern backends leaving by them. */
	if (li && !deleted && li->type == l->type && !memcmp(li->mac, l->mac, 6) &&
	    li->up == l->up && li->running == l->running)
		return;
	if (li)
		li->ifindex = 0;
	/* Neighbour entries go with their link, and come back with its events:
	 * this pass's answers for it may be stale already. */
	if (enqueue_where(a, on_link, &l->ifindex))
		neigh_forget(t);
}

static bool in_changed(const struct backend_rt *b, const void *arg)
{
	const struct nl_route_change *c = arg;
	__u32 i;

	for (i = 0; i < c->n; i++) {
		if (nl_prefix_has(&c->p[i], b->addr.family, b->addr.addr))
			return true;
		/* The gateway's own prefix (its address removed, say): the
		 * kernel drops the routes through it without an event. */
		if (b->nh_state == NH_KEYED && nl_prefix_has(&c->p[i], b->nh_family, b->nh_addr))
			return true;
	}
	return false;
}

void nexthops_route(struct agent *a, const struct nl_route_change *c)
{
	struct nh_table *t = table(a);
	__u32 i;

	if (!t)
		return;
	for (i = 0; i < c->n && !c->all; i++)
		if (!c->p[i].len)
			break;
	/* A default route, or changes netlink could not list: any backend may
	 * be concerned. */
	if (c->all || i < c->n) {
		nexthops_refresh_all(a, true);
		return;
	}
	enqueue_where(a, in_changed, c);
}

void nexthops_refresh_all(struct agent *a, bool debounce)
{
	struct nh_table *t = table(a);

	if (!t)
		return;
	if (debounce) {
		if (!t->full_due_ns)
			t->full_due_ns = now_mono_ns() + NH_DEBOUNCE_NS;
		return;
	}
	/* Events were lost: nothing remembered can be trusted. */
	t->full_due_ns = 0;
	neigh_forget(t);
	memset(t->links, 0, sizeof(t->links));
	enqueue_where(a, NULL, NULL);
}

/* --- the queue ---------------------------------------------------------------------- */

bool nexthops_pending(const struct agent *a)
{
	return a->nh && a->nl && (a->nh->qlen || a->nexthops_dirty);
}

void nexthops_work(struct agent *a, __u64 budget_ns)
{
	struct nh_table *t = table(a);
	__u64 t0;

	if (!t || !t->qlen)
		return;
	t0 = now_mono_ns();
	do {
		__u32 id = t->queue[t->qhead];
		struct backend_rt *b;

		t->qhead = (t->qhead + 1) % SHIFT_MAX_BACKENDS;
		t->qlen--;
		t->queued[id] = 0;
		b = backend_of(a, id);
		if (b)
			lookup(a, b);
	} while (t->qlen && now_mono_ns() - t0 < budget_ns);
	/* The pass is over: the next one asks again. */
	if (!t->qlen)
		neigh_forget(t);
	a->nh_stats.pending = t->qlen;
}

static bool retrying(const struct backend_rt *b, const void *arg)
{
	(void)arg;
	return b->nh_state == NH_RETRY;
}

void nexthops_tick(struct agent *a)
{
	struct nh_table *t = table(a);
	__u64 now;

	if (!t)
		return;
	now = now_mono_ns();
	if (t->full_due_ns && now >= t->full_due_ns) {
		t->full_due_ns = 0;
		enqueue_where(a, NULL, NULL);
	}
	if (t->retry_due_ns && now >= t->retry_due_ns) {
		t->retry_due_ns = 0;
		enqueue_where(a, retrying, NULL);
	}
}

void nexthops_drain(struct agent *a)
{
	struct nh_table *t = table(a);

	if (!t)
		return;
	enqueue_where(a, NULL, NULL);
	nexthops_work(a, (__u64)-1);
}

int nexthops_init(struct agent *a)
{
	struct nh_table *t;

	if (!a->nl)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t->bucket, 0xff, sizeof(t->bucket));
	memset(t->home, 0xff, sizeof(t->home));
	a->nh = t;
	a->nexthops_dirty = true;
	return 0;
}

void nexthops_free(struct agent *a)
{
	free(a->nh);
	a->nh = NULL;
}
