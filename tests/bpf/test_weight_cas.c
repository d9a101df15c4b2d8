// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The weight word's compare-and-swap (bpf/weight_cas.bpf.c, through
 * dp_weight_cas()): it writes only over the word it was told (or finds the
 * word it would write already there), it acts on the map the datapath reads,
 * and two writers racing on it lose no write (the kernel's atomic, not a read
 * then a write). Bad ids and words are refused before anything runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "harness.h"
#include "test.h"

#define SVC 7
#define RACE_ROUNDS 2000

struct racer {
	struct shift_maps m; /* its own program: shiftd's and shiftctl's are two */
	pthread_barrier_t *go;
	__u32 id; /* 0 or 1, in each word it writes: a word the other wrote is never its */
	__u32 won, lost;
	int err;
};

/*
 * Count up in the word's high bits, RACE_ROUNDS times, from whatever it read
 * last; the low bit says who wrote it. dp_weight_cas() takes finding the word
 * it would write for done, so the words two racers write must differ.
 */
static void *race(void *arg)
{
	struct racer *r = arg;
	__u32 seen = 0, n;

	/* Loaded before the start (a swap of 0 for 0), so that both race. */
	r->err = dp_weight_cas(&r->m, SVC, 0, 0, NULL);
	pthread_barrier_wait(r->go);
	if (r->err)
		return NULL;
	/* A refusal means the other racer moved on: bounded all the same. */
	for (n = 0; n < RACE_ROUNDS && r->lost < 100 * RACE_ROUNDS;) {
		__u32 want = ((seen >> 1) + 1) << 1 | r->id;
		int err = dp_weight_cas(&r->m, SVC, seen, want, &seen);

		if (err == -EAGAIN) {
			r->lost++;
			continue;
		}
		if (err) {
			r->err = err;
			break;
		}
		seen = want;
		r->won++;
		n++;
	}
	return NULL;
}

static void check_race(struct tctx *t, struct harness *h)
{
	struct racer r[2] = { { .m = h->m }, { .m = h->m } };
	pthread_barrier_t go;
	pthread_t th[2];
	__u32 word = 0;
	int i, started = 0;

	if (!ASSERT_OK(t, dp_weight_set(&h->m, SVC, 0), "start at 0") ||
	    !ASSERT_OK(t, -pthread_barrier_init(&go, NULL, 2), "barrier"))
		return;
	for (i = 0; i < 2; i++) {
		r[i].m.weight_cas_fd = -1;
		r[i].go = &go;
		r[i].id = i;
	}
	for (i = 0; i < 2; i++)
		if (!pthread_create(&th[i], NULL, race, &r[i]))
			started++;
	/* One thread would wait at the barrier for ever. */
	if (started == 1)
		pthread_barrier_wait(&go);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (i = 0; i < 2; i++)
		dp_weight_cas_close(&r[i].m);
	if (!ASSERT_EQ(t, started, 2, "threads started") || !ASSERT_OK(t, r[0].err, "racer 1") ||
	    !ASSERT_OK(t, r[1].err, "racer 2"))
		return;
	ASSERT_OK(t, dp_weight_get(&h->m, SVC, &word), "read the word");
	ASSERT_EQ(t, word >> 1, 2 * RACE_ROUNDS, "the count after both racers' swaps (none lost)");
	test_note(t, "two racers, %u swaps each: %u and %u refused for a word the other wrote",
		  RACE_ROUNDS, r[0].lost, r[1].lost);
}

TEST(weight_cas)
{
	struct harness h;
	__u32 word, seen;

	if (!test_sub(t, "weight cas: writes over the expected word only, on the datapath's map"))
		return;
	if (!ASSERT_OK(t, harness_open_hooks(&h, 1, 1024, 1024, 0, SHIFT_LOAD_XDP), "load"))
		return;
	if (!ASSERT_OK(t, dp_weight_set(&h.m, SVC, 2500), "set 25 %"))
		goto out;
	ASSERT_OK(t, dp_weight_cas(&h.m, SVC, 2500, 5000, &seen), "swap 25 % -> 50 %");
	ASSERT_EQ(t, seen, 2500, "the word it found");
	dp_weight_get(&h.m, SVC, &word);
	ASSERT_EQ(t, word, 5000, "the map the datapath reads, after the swap");

	/* A rollback written since the read: the step is refused, the latch stays. */
	dp_weight_set(&h.m, SVC, SHIFT_WEIGHT_LATCHED);
	ASSERT_EQ(t, dp_weight_cas(&h.m, SVC, 5000, 7500, &seen), -EAGAIN,
		  "a swap from 50 % over a rollback");
	ASSERT_EQ(t, seen, SHIFT_WEIGHT_LATCHED, "the word it found");
	dp_weight_get(&h.m, SVC, &word);
	ASSERT_EQ(t, word, SHIFT_WEIGHT_LATCHED, "the word after the refused swap");
	ASSERT_EQ(t,
		  dp_weight_cas(&h.m, SVC, SHIFT_WEIGHT_LATCHED | SHIFT_WEIGHT_DRILL, 5000, NULL),
		  -EAGAIN, "a drill's restore over an operator's latch");
	/* Finding the word it would write: done (a fleet watch wrote shiftctl's word first). */
	ASSERT_OK(t, dp_weight_cas(&h.m, SVC, 5000, SHIFT_WEIGHT_LATCHED, NULL),
		  "a swap from 50 % to the latch the word already holds");

	ASSERT_EQ(t, dp_weight_cas(&h.m, SHIFT_MAX_SERVICES, 0, 1, NULL), -ERANGE,
		  "service SHIFT_MAX_SERVICES");
	ASSERT_EQ(t, dp_weight_cas(&h.m, SVC, SHIFT_WEIGHT_LATCHED, SHIFT_WEIGHT_MAX + 1, NULL),
		  -EINVAL, "a weight over 100 %");
	dp_weight_get(&h.m, SVC, &word);
	ASSERT_EQ(t, word, SHIFT_WEIGHT_LATCHED, "the word after the refused ids and weights");

	if (test_sub(t, "weight cas: two writers racing lose no write"))
		check_race(t, &h);
out:
	harness_close(&h);
}
