// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness: what shiftd reads from etcd (anyone with write access to
 * the fleet's keys, etcdctl by hand included, can put any bytes there).
 * - fleet_svc_decode(): success gives a weight and ramp steps <= 10000, steps
 *   going up, weight 0 when latched; fleet_svc_encode() of it decodes back to
 *   the very same value. A refusal is -EINVAL with a reason.
 * - the same bytes as a gateway kv ({"key": b64, "value": b64, ...}) and as a
 *   base64 string: etcd_kv_parse() and b64_decode() never read out of bounds,
 *   and base64 round-trips.
 */
#include <errno.h>
#include <jansson.h>

#include "fuzz.h"
#include "fleet/b64.h"
#include "fleet/etcd_json.h"
#include "fleet/value.h"

static void check_value(const uint8_t *data, size_t size)
{
	struct fleet_svc_value v, w;
	char why[256] = "", *s;
	__u32 i;

	if (fleet_svc_decode((const char *)data, size, &v, why, sizeof(why))) {
		FUZZ_CHECK(why[0], "refused without a reason");
		return;
	}
	FUZZ_CHECK(v.weight_bp <= SHIFT_WEIGHT_MAX, "weight %u", v.weight_bp);
	FUZZ_CHECK(!v.latched || !v.weight_bp, "latched at %u", v.weight_bp);
	FUZZ_CHECK(!v.has_ramp || (v.ramp.n >= 1 && v.ramp.n <= RAMP_MAX_STEPS), "%u steps",
		   v.ramp.n);
	for (i = 0; v.has_ramp && i < v.ramp.n; i++) {
		FUZZ_CHECK(v.ramp.steps[i] <= SHIFT_WEIGHT_MAX, "step %u", v.ramp.steps[i]);
		FUZZ_CHECK(!i || v.ramp.steps[i] > v.ramp.steps[i - 1], "steps not going up");
	}
	s = fleet_svc_encode(&v);
	if (!s)
		return; /* out of memory */
	FUZZ_CHECK(fleet_svc_decode(s, strlen(s), &w, why, sizeof(why)) == 0, "%s: %s", s, why);
	/* A latched value's ramp is dropped on decode; the rest comes back as it was. */
	FUZZ_CHECK(!memcmp(&v, &w, sizeof(v)) || (v.latched && !v.has_ramp), "%s changed", s);
	free(s);
}

static void check_kv(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)data, size, 0, &je);
	struct etcd_kv kv;

	if (!j)
		return;
	if (etcd_kv_parse(j, &kv) == 0) {
		FUZZ_CHECK(kv.key && kv.value, "no key or value");
		FUZZ_CHECK(strlen(kv.value) <= kv.value_len, "value length");
		etcd_kv_free(&kv);
	}
	etcd_resp_error(j);
	etcd_header_revision(j);
	etcd_resp_kvs(j);
	json_decref(j);
}

static void check_b64(const uint8_t *data, size_t size)
{
	char *in = fuzz_cstr(data, size), *enc;
	size_t cap = size + 4;
	unsigned char *out = malloc(cap), *back;
	long n;

	if (!in || !out)
		goto out;
	n = b64_decode(in, out, cap);
	FUZZ_CHECK(n >= -1 && n <= (long)cap, "decoded %ld", n);
	if (n >= 0) {
		enc = malloc(B64_ENC_LEN((size_t)n));
		back = malloc((size_t)n + 1);
		if (enc && back) {
			b64_encode(out, (size_t)n, enc);
			FUZZ_CHECK(b64_decode(enc, back, (size_t)n + 1) == n, "re-decode");
			FUZZ_CHECK(!memcmp(back, out, (size_t)n), "round trip");
		}
		free(enc);
		free(back);
	}
out:
	free(in);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_value(data, size);
	check_kv(data, size);
	check_b64(data, size);
	return 0;
}
