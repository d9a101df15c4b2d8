// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness: am_parse() and am_answer(), what shiftd runs on every
 * POST /v1/alertmanager body that carried the right token.
 * Properties: a refusal is -EINVAL (or -ENOMEM) with a printable reason (it is
 * logged and answered) and no alerts;
 * an accepted payload has at most AM_MAX_ALERTS alerts whose strings are
 * NUL-terminated printable ASCII (they go to logs and rollback reasons), a
 * service_ok name is one a [service NAME] could have; the answer is JSON that
 * parses back with one entry per alert, and its status follows the outcomes.
 */
#include <errno.h>
#include <jansson.h>

#include "http/webhook.h"
#include "fuzz.h"

static void printable(const char *s, size_t cap, const char *what)
{
	size_t i;

	FUZZ_CHECK(memchr(s, '\0', cap), "%s not NUL-terminated", what);
	for (i = 0; s[i]; i++)
		FUZZ_CHECK(s[i] >= 0x20 && s[i] < 0x7f, "%s byte %zu is 0x%02x", what, i,
			   (unsigned char)s[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct am_alert *al = NULL;
	unsigned int code = 0;
	bool unknown = false, failed = false;
	char err[512];
	json_t *back;
	size_t n = 0, i;
	char *ans;
	int ret;

	err[0] = '\0';
	ret = am_parse((const char *)data, size, &al, &n, err, sizeof(err));
	if (ret) {
		FUZZ_CHECK(ret == -EINVAL || ret == -ENOMEM, "refused with %d", ret);
		FUZZ_CHECK(err[0], "refused without a reason");
		printable(err, sizeof(err), "the reason");
		FUZZ_CHECK(!al && !n, "refused but alerts returned");
		return 0;
	}
	FUZZ_CHECK(n <= AM_MAX_ALERTS, "%zu alerts", n);
	for (i = 0; i < n; i++) {
		printable(al[i].alertname, sizeof(al[i].alertname), "alertname");
		printable(al[i].service, sizeof(al[i].service), "service");
		printable(al[i].summary, sizeof(al[i].summary), "summary");
		printable(al[i].starts_at, sizeof(al[i].starts_at), "startsAt");
		FUZZ_CHECK(al[i].alertname[0], "empty alertname");
		FUZZ_CHECK(al[i].outcome == AM_PENDING, "outcome set by the parser");
		if (al[i].service_ok)
			FUZZ_CHECK(al[i].has_service && al[i].service[0] &&
					   strspn(al[i].service,
						  "abcdefghijklmnopqrstuvwxyz"
						  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
						   strlen(al[i].service),
				   "service '%s' accepted as a name", al[i].service);
		/* Every outcome in turn, as the agent would set them. */
		al[i].outcome = (enum am_outcome)(1 + i % (AM__OUTCOMES - 1));
		unknown |= al[i].outcome == AM_UNKNOWN_SERVICE;
		failed |= al[i].outcome == AM_FAILED;
	}
	ans = am_answer(al, n, &code);
	FUZZ_CHECK(ans, "no answer");
	FUZZ_CHECK(code == (failed ? 500u : unknown ? 404u : 200u), "status %u", code);
	back = json_loads(ans, 0, NULL);
	FUZZ_CHECK(back, "the answer is not JSON: %.200s", ans);
	FUZZ_CHECK(json_array_size(json_object_get(back, "alerts")) == n,
		   "the answer lists %zu alerts, not %zu",
		   json_array_size(json_object_get(back, "alerts")), n);
	FUZZ_CHECK(json_integer_value(json_object_get(back, "status")) == code, "status field");
	json_decref(back);
	free(ans);
	free(al);
	return 0;
}
