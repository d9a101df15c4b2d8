// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/drill_ctl.h"
#include "control/json.h"
#include "config/units.h"
#include "config/weight.h"

int drill_exit_code(const struct drill_report *p)
{
	return p->result == DRILL_RESTORED && p->pass ? 0 : 1;
}

static const char *color_name(int c)
{
	return c == SHIFT_GREEN ? "green" : "blue";
}

void drill_report_json(struct json *j, const char *key, const char *service,
		       const struct drill_report *p)
{
	int c;

	json_obj_open(j, key);
	if (p->result == DRILL_NONE) {
		json_obj_close(j);
		return;
	}
	if (service)
		json_str(j, "service", service);
	json_u64(j, "id", p->id);
	json_str(j, "result", drill_result_name(p->result));
	json_bool(j, "pass", p->pass);
	json_str(j, "detail", p->detail);
	json_u64(j, "started_unix_ns", p->started_unix_ns);
	json_u64(j, "ended_unix_ns", p->ended_unix_ns);
	json_double(j, "hold_seconds", (double)p->hold_ns / 1e9);
	json_u64(j, "green_weight_before_bp", p->weight_before);
	json_u64(j, "green_weight_after_bp", p->weight_after);
	json_bool(j, "ramp_before", p->ramp_before);
	json_bool(j, "ramp_restored", p->ramp_restored);
	json_double(j, "write_seconds", (double)p->write_ns / 1e9);
	json_double(j, "time_to_blue_seconds", (double)p->time_to_blue_ns / 1e9);
	json_double(j, "time_to_blue_resolution_seconds", (double)p->resolution_ns / 1e9);
	json_u64(j, "green_connections_after_write", p->green_after_write);
	json_obj_open(j, "new_connections");
	for (c = 0; c < SHIFT_COLORS; c++)
		json_u64(j, color_name(c), p->new_conns[c]);
	json_obj_close(j);
	json_bool(j, "evict", p->evict);
	json_u64(j, "green_connections_evicted", p->evicted);
	json_obj_open(j, "errors");
	for (c = 0; c < SHIFT_COLORS; c++)
		json_u64(j, color_name(c), p->errors[c]);
	json_obj_close(j);
	json_obj_close(j);
}

static const char *fmt_time(__u64 ns, char *buf, size_t len)
{
	if (ns < 1000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
	return buf;
}

void drill_report_text(FILE *f, const char *in, const char *service, const struct drill_report *p)
{
	char w1[WEIGHT_STR_LEN], w2[WEIGHT_STR_LEN], t1[32], t2[32], when[32];
	char hold[UNITS_DURATION_LEN], id[32] = "";
	time_t t = (time_t)(p->started_unix_ns / 1000000000ull);
	struct tm tm;

	if (p->result == DRILL_NONE)
		return;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (p->id) /* an interrupted drill's id died with the shiftd that ran it */
		snprintf(id, sizeof(id), " %llu", (unsigned long long)p->id);
	fprintf(f, "%sdrill%s on %s, %s: %s%s\n", in, id, service, when,
		drill_result_name(p->result),
		p->result == DRILL_RESTORED ?
			(p->pass ? " (pass)" : " (FAIL: green after the write)") :
			"");
	if (p->detail[0])
		fprintf(f, "%s  %s\n", in, p->detail);
	fprintf(f, "%s  green %s -> 0%% for %s -> %s%s\n", in,
		weight_format(p->weight_before, w1, sizeof(w1)),
		units_format_duration(p->hold_ns, hold, sizeof(hold)),
		weight_format(p->weight_after, w2, sizeof(w2)),
		p->ramp_restored ? " (ramp resumed)" :
		p->ramp_before	 ? " (ramp not resumed)" :
				   "");
	if (!p->ended_unix_ns || p->result == DRILL_FAILED)
		return;
	if (p->green_after_write)
		fprintf(f,
			"%s  time to blue %s (last new green connection; looks every %s), %llu "
			"new green connections after the write\n",
			in, fmt_time(p->time_to_blue_ns, t1, sizeof(t1)),
			fmt_time(p->resolution_ns, t2, sizeof(t2)),
			(unsigned long long)p->green_after_write);
	else
		fprintf(f,
			"%s  time to blue %s (the weight write; no new green connection after it)\n",
			in, fmt_time(p->time_to_blue_ns, t1, sizeof(t1)));
	fprintf(f, "%s  new connections during the drill: %llu blue, %llu green\n", in,
		(unsigned long long)p->new_conns[SHIFT_BLUE],
		(unsigned long long)p->new_conns[SHIFT_GREEN]);
	if (p->evict)
		fprintf(f, "%s  green connections evicted (re-steered to blue): %llu\n", in,
			(unsigned long long)p->evicted);
	else
		fprintf(f, "%s  green connections kept (rollback_evict = no)\n", in);
	fprintf(f, "%s  errors seen by the signals: %llu green, %llu blue\n", in,
		(unsigned long long)p->errors[SHIFT_GREEN],
		(unsigned long long)p->errors[SHIFT_BLUE]);
}

static int start(struct agent *a, const struct ctl_request *q, char *msg, size_t msglen,
		 char **body, size_t *body_len)
{
	struct service_rt *s;
	char err[512];
	__u64 hold, id;
	int rc;

	if (q->argc != 2) {
		snprintf(msg, msglen, "drill: usage: drill SERVICE HOLD");
		return 2;
	}
	s = agent_service(a, q->argv[0]);
	if (!s) {
		/* As every other verb: a failed operation, not bad usage. */
		snprintf(msg, msglen, "drill: no service '%s' in the running config", q->argv[0]);
		return 1;
	}
	if (units_parse_duration(q->argv[1], DRILL_MIN_HOLD_NS, DRILL_MAX_HOLD_NS, &hold, err,
				 sizeof(err))) {
		snprintf(msg, msglen, "drill: --hold: %s", err);
		return 2;
	}
	rc = drill_start(a, s, hold, &id, err, sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "%s", err);
		return 1;
	}
	if (asprintf(body, "%llu\n", (unsigned long long)id) < 0) {
		*body = NULL;
		snprintf(msg, msglen, "drill: out of memory (the drill runs)");
		return 1;
	}
	*body_len = strlen(*body);
	return 0;
}

static int report(struct agent *a, const struct ctl_request *q, char *msg, size_t msglen,
		  char **body, size_t *body_len)
{
	const struct drill_report *p;
	struct service_rt *s;
	bool as_json;
	char *end;
	__u64 id;

	if (q->argc != 3 || (strcmp(q->argv[2], "json") && strcmp(q->argv[2], "text"))) {
		snprintf(msg, msglen, "drill-report: usage: drill-report SERVICE ID json|text");
		return 2;
	}
	s = agent_service(a, q->argv[0]);
	if (!s) {
		snprintf(msg, msglen, "drill-report: no service '%s' in the running config",
			 q->argv[0]);
		return 1;
	}
	errno = 0;
	id = strtoull(q->argv[1], &end, 10);
	if (errno || *end || end == q->argv[1]) {
		snprintf(msg, msglen, "drill-report: bad drill id '%s'", q->argv[1]);
		return 2;
	}
	as_json = !strcmp(q->argv[2], "json");
	if (s->drill.holding && s->drill.cur.id == id) {
		*body = strdup("running\n");
	} else if (s->drill.last.result != DRILL_NONE && s->drill.last.id == id) {
		FILE *f;

		p = &s->drill.last;
		f = open_memstream(body, body_len);
		if (!f) {
			snprintf(msg, msglen, "drill-report: %s", strerror(errno));
			return 1;
		}
		fprintf(f, "done %d\n", drill_exit_code(p));
		if (as_json) {
			struct json j;

			json_init(&j);
			drill_report_json(&j, NULL, s->conf->name, p);
			if (!j.failed)
				fprintf(f, "%s\n", j.buf);
			json_free(&j);
		} else {
			drill_report_text(f, "", s->conf->name, p);
		}
		if (fclose(f)) {
			snprintf(msg, msglen, "drill-report: %s", strerror(errno));
			free(*body);
			*body = NULL;
			*body_len = 0;
			return 1;
		}
		return 0;
	} else {
		snprintf(msg, msglen,
			 "service %s: this shiftd knows no drill %llu (did shiftd restart? see "
			 "'shiftctl status %s')",
			 s->conf->name, (unsigned long long)id, s->conf->name);
		return 1;
	}
	if (!*body) {
		snprintf(msg, msglen, "drill-report: out of memory");
		return 1;
	}
	*body_len = strlen(*body);
	return 0;
}

int drill_ctl(struct agent *a, const struct ctl_request *q, char *msg, size_t msglen, char **body,
	      size_t *body_len)
{
	if (!strcmp(q->verb, "drill"))
		return start(a, q, msg, msglen, body, body_len);
	return report(a, q, msg, msglen, body, body_len);
}
