/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SHIFT_VERSION_H
#define SHIFT_VERSION_H

/* Overridable at build time: make CFLAGS=-DSHIFT_VERSION='"x.y.z"'. */
#ifndef SHIFT_VERSION
#define SHIFT_VERSION "0.1.0"
#endif

#endif
