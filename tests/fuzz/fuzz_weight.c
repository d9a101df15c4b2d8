// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness: weight_parse() ("25", "25%", "0.5%", "0.01%").
 * Properties: success means 0..SHIFT_WEIGHT_MAX basis points and a string of
 * the grammar DIGITS [. 1-2 DIGITS] [%]; weight_format() of the value fits
 * WEIGHT_STR_LEN and parses back to the same value; a refusal says why.
 */
#include <errno.h>
#include <shift/maps.h>

#include "fuzz.h"
#include "config/weight.h"

static void round_trip(__u32 bp)
{
	char buf[WEIGHT_STR_LEN], err[256];
	__u32 back = ~0u;
	int ret;

	weight_format(bp, buf, sizeof(buf));
	FUZZ_CHECK(strlen(buf) < sizeof(buf) - 1, "weight_format(%u) = '%s' fills the buffer", bp,
		   buf);
	ret = weight_parse(buf, &back, err, sizeof(err));
	FUZZ_CHECK(ret == 0 && back == bp, "weight_format(%u) = '%s' parses back as %d, %u (%s)",
		   bp, buf, ret, back, ret ? err : "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), err[256];
	__u32 bp = ~0u;
	size_t i, n = strlen(s);
	int ret;

	err[0] = '\0';
	ret = weight_parse(s, &bp, err, sizeof(err));
	if (ret == 0) {
		FUZZ_CHECK(bp <= SHIFT_WEIGHT_MAX, "'%s' -> %u basis points", s, bp);
		for (i = 0; i < n; i++)
			FUZZ_CHECK((s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
					   (s[i] == '%' && i == n - 1),
				   "'%s' accepted with byte 0x%02x", s, (unsigned char)s[i]);
		round_trip(bp);
	} else {
		FUZZ_CHECK(ret == -EINVAL, "'%s': returned %d", s, ret);
		FUZZ_CHECK(err[0], "'%s' refused without a reason", s);
	}
	/* Every value formats and parses back, not only the ones an input spells. */
	if (size >= 2)
		round_trip((__u32)(data[0] << 8 | data[1]) % (SHIFT_WEIGHT_MAX + 1));
	free(s);
	return 0;
}
