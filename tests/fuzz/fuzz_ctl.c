// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness: ctl_parse_request(), what shiftd runs on every line a
 * client writes to the control socket.
 * Properties: success gives a verb and 0..CTL_MAX_ARGS arguments, all
 * NUL-terminated, non-empty and free of NUL; with or without its '\n' the line
 * parses the same; ctl_format_request() into shiftctl's buffer (CTL_MAX_LINE +
 * 1) either says -ENOSPC or gives a line that parses back to the same request.
 */
#include <errno.h>

#include "control/ctl_proto.h"
#include "fuzz.h"

static void same(const struct ctl_request *a, const struct ctl_request *b, const char *what)
{
	int i;

	FUZZ_CHECK(!strcmp(a->verb, b->verb), "%s: verb '%s' != '%s'", what, a->verb, b->verb);
	FUZZ_CHECK(a->argc == b->argc, "%s: argc %d != %d", what, a->argc, b->argc);
	for (i = 0; i < a->argc; i++)
		FUZZ_CHECK(!strcmp(a->argv[i], b->argv[i]), "%s: argv[%d] '%s' != '%s'", what, i,
			   a->argv[i], b->argv[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctl_request r, back;
	char line[CTL_MAX_LINE + 1], err[256];
	const char *text = (const char *)data;
	int ret, i;

	err[0] = '\0';
	ret = ctl_parse_request(text, size, &r, err, sizeof(err));
	if (ret) {
		FUZZ_CHECK(ret == -EINVAL && err[0], "refused with %d and reason '%s'", ret, err);
		return 0;
	}
	FUZZ_CHECK(memchr(r.verb, '\0', sizeof(r.verb)) && r.verb[0], "verb not a string");
	FUZZ_CHECK(r.argc >= 0 && r.argc <= CTL_MAX_ARGS, "argc %d", r.argc);
	for (i = 0; i < r.argc; i++)
		FUZZ_CHECK(memchr(r.argv[i], '\0', CTL_ARG_LEN) && r.argv[i][0],
			   "argv[%d] not a non-empty string", i);
	/* The same line with its newline (or without it) is the same request. */
	if (size && text[size - 1] != '\n' && size < CTL_MAX_LINE) {
		char *nl = malloc(size + 1);

		if (!nl)
			abort();
		memcpy(nl, text, size);
		nl[size] = '\n';
		ret = ctl_parse_request(nl, size + 1, &back, err, sizeof(err));
		free(nl);
		FUZZ_CHECK(ret == 0, "accepted without '\\n', refused with it: %s", err);
		same(&r, &back, "with '\\n'");
	}
	ret = ctl_format_request(&r, line, sizeof(line));
	if (ret) {
		FUZZ_CHECK(ret == -ENOSPC, "ctl_format_request: %d", ret);
		return 0;
	}
	FUZZ_CHECK(strlen(line) && line[strlen(line) - 1] == '\n', "formatted line lacks '\\n'");
	ret = ctl_parse_request(line, strlen(line), &back, err, sizeof(err));
	FUZZ_CHECK(ret == 0, "formatted '%.200s' does not parse: %s", line, err);
	same(&r, &back, "format + parse");
	return 0;
}
