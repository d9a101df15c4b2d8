/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reasons for the caller: parsers return -errno and write why into a buffer. */
#ifndef SHIFT_ERRMSG_H
#define SHIFT_ERRMSG_H

#include <stddef.h>

/* printf into err[errlen]; a NULL or empty buffer is fine. */
void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Read a whole regular file of at most max bytes into a NUL-terminated buffer
 * (free() it). 0, or -errno of open/stat/read, -EINVAL (not a regular file),
 * -EFBIG (larger than max), -ENOMEM; err says which, naming the path.
 */
int read_small_file(const char *path, size_t max, char **buf, size_t *len, char *err,
		    size_t errlen);

#endif
