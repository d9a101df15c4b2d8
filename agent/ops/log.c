// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "ops/log.h"

/* The one piece of process-wide state: set once at start. */
static struct {
	const char *prog;
	int level;
	int journal;
} log_cfg = { "shift", SHIFT_LOG_INFO, 0 };

void shift_log_init(const char *prog, int level)
{
	log_cfg.prog = prog;
	log_cfg.level = level;
	log_cfg.journal = getenv("JOURNAL_STREAM") != NULL;
}

int shift_log_level(void)
{
	return log_cfg.level;
}

static const char *level_name(int level)
{
	switch (level) {
	case SHIFT_LOG_ERROR:
		return "error";
	case SHIFT_LOG_WARN:
		return "warning";
	case SHIFT_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void shift_vlog(int level, const char *fmt, va_list ap)
{
	char *buf;
	size_t n;

	if (level > log_cfg.level)
		return;
	/* Allocated, not fixed: a verifier log runs to many kilobytes. */
	if (vasprintf(&buf, fmt, ap) < 0)
		return;
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (log_cfg.journal)
		fprintf(stderr, "<%d>%s\n", level, buf);
	else
		fprintf(stderr, "%s: %s: %s\n", log_cfg.prog, level_name(level), buf);
	free(buf);
}

void shift_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shift_vlog(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	int level = lvl == LIBBPF_WARN ? SHIFT_LOG_WARN :
		    lvl == LIBBPF_INFO ? SHIFT_LOG_INFO :
					 SHIFT_LOG_DEBUG;

	/* libbpf's INFO is chatty; only -v shows it. */
	if (lvl == LIBBPF_INFO)
		level = SHIFT_LOG_DEBUG;
	if (level > log_cfg.level)
		return 0;
	shift_vlog(level, fmt, ap);
	return 0;
}

void shift_log_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
