// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness: state_parse(), what shiftd reads from <state_dir>/state
 * at start (a torn or hand-edited file must be refused, never half-believed).
 * Properties: success gives at most STATE_MAX_SERVICES distinct valid names,
 * weights and ramp steps <= SHIFT_WEIGHT_MAX, a consistent ramp; state_format()
 * of it succeeds and parses back to the very same state, and formatting that
 * again gives the same bytes. A refusal is -EBADMSG (or -ENOMEM) with a reason
 * and leaves the state empty.
 *
 * Each input is parsed twice: as it is, and as the body of a file whose
 * checksum line is appended right, so mutations reach the service lines
 * instead of dying at the checksum.
 */
#include <errno.h>
#include <zlib.h>
#include <shift/maps.h>

#include "fuzz.h"
#include "ops/state.h"

static void check_service(const struct state_service *s)
{
	size_t i, n = strnlen(s->name, sizeof(s->name));
	__u32 k;

	FUZZ_CHECK(n > 0 && n < sizeof(s->name), "name of %zu bytes", n);
	for (i = 0; i < n; i++) {
		char c = s->name[i];

		FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				   (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-',
			   "name '%s' byte 0x%02x", s->name, (unsigned char)c);
	}
	FUZZ_CHECK(s->weight <= SHIFT_WEIGHT_MAX, "%s: weight %u", s->name, s->weight);
	FUZZ_CHECK(memchr(s->reason, '\0', sizeof(s->reason)), "%s: reason not terminated",
		   s->name);
	FUZZ_CHECK(s->ramp_n <= STATE_MAX_RAMP_STEPS, "%s: %u ramp steps", s->name, s->ramp_n);
	FUZZ_CHECK(s->ramp_n ? s->ramp_index < s->ramp_n : !s->ramp_index && !s->ramp_active,
		   "%s: ramp step %u of %u, active %d", s->name, s->ramp_index, s->ramp_n,
		   s->ramp_active);
	for (k = 0; k < s->ramp_n; k++)
		FUZZ_CHECK(s->ramp_steps[k] <= SHIFT_WEIGHT_MAX, "%s: ramp step %u", s->name,
			   s->ramp_steps[k]);
}

static void one(const char *data, size_t size)
{
	struct shift_state st = { 0 }, back = { 0 };
	char err[256], *text = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	__u32 i, j;
	int ret;

	err[0] = '\0';
	ret = state_parse(data, size, &st, err, sizeof(err));
	if (ret) {
		FUZZ_CHECK(ret == -EBADMSG || ret == -ENOMEM, "refused with %d", ret);
		FUZZ_CHECK(err[0], "refused without a reason");
		FUZZ_CHECK(!st.n && !st.svc, "refused but %u services kept", st.n);
		return;
	}
	FUZZ_CHECK(st.n <= STATE_MAX_SERVICES, "%u services", st.n);
	for (i = 0; i < st.n; i++) {
		check_service(&st.svc[i]);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(st.svc[i].name, st.svc[j].name), "%s listed twice",
				   st.svc[i].name);
	}
	ret = state_format(&st, &text, &len, err, sizeof(err));
	FUZZ_CHECK(ret == 0, "parsed, but state_format refuses it: %s", err);
	ret = state_parse(text, len, &back, err, sizeof(err));
	FUZZ_CHECK(ret == 0, "formatted state does not parse: %s", err);
	FUZZ_CHECK(back.n == st.n, "%u services back from %u", back.n, st.n);
	for (i = 0; i < st.n; i++)
		FUZZ_CHECK(!memcmp(&back.svc[i], &st.svc[i], sizeof(st.svc[i])),
			   "service %s differs after format + parse", st.svc[i].name);
	ret = state_format(&back, &again, &len2, err, sizeof(err));
	FUZZ_CHECK(ret == 0 && len2 == len && !memcmp(again, text, len),
		   "formatting twice gives different bytes");
	free(text);
	free(again);
	state_free(&st);
	state_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size;
	char *file;

	one((const char *)data, size);
	/* The same bytes as the body of a file with the right checksum line. */
	file = malloc(size + 32);
	if (!file)
		abort();
	memcpy(file, data, size);
	if (!n || file[n - 1] != '\n')
		file[n++] = '\n';
	n += (size_t)snprintf(file + n, 32, "crc32 %08lx\n",
			      crc32(0L, (const Bytef *)file, (uInt)n));
	one(file, n);
	free(file);
	return 0;
}
