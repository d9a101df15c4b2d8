/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Leveled logging to stderr. Under journald (JOURNAL_STREAM set) lines carry
 * the "<N>" syslog prefix so the journal records the priority; on a terminal
 * they read "shiftd: error: ...". */
#ifndef SHIFT_LOG_H
#define SHIFT_LOG_H

#include <stdarg.h>

enum shift_log_level {
	SHIFT_LOG_ERROR = 3,
	SHIFT_LOG_WARN = 4,
	SHIFT_LOG_INFO = 6,
	SHIFT_LOG_DEBUG = 7,
};

void shift_log_init(const char *prog, int level);
int shift_log_level(void);
void shift_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void shift_vlog(int level, const char *fmt, va_list ap);
/* Route libbpf's messages through shift_log (WARN always: verifier logs). */
void shift_log_libbpf(void);

#define log_err(...) shift_log(SHIFT_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) shift_log(SHIFT_LOG_WARN, __VA_ARGS__)
#define log_info(...) shift_log(SHIFT_LOG_INFO, __VA_ARGS__)
#define log_debug(...) shift_log(SHIFT_LOG_DEBUG, __VA_ARGS__)

#endif
