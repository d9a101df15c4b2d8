/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Parsing and printing of addresses as operators write them. */
#ifndef SHIFT_ADDR_H
#define SHIFT_ADDR_H

#include <stddef.h>
#include <linux/types.h>
#include <shift/maps.h>

/* Longest string addr_format_endpoint() writes, with the NUL. */
#define ADDR_ENDPOINT_LEN 56

/*
 * "10.0.0.10:80" or "[2001:db8::10]:443" -> key (family, addr, port in network
 * order; proto left untouched). Returns 0, or -EINVAL with a reason in err
 * ("missing port", "port 70000 out of range 1..65535", ...).
 */
int addr_parse_endpoint(const char *s, struct shift_addr_key *out, char *err, size_t errlen);
/* "192.0.2.0/24" or "2001:db8::/32" -> family, addr (network order), prefix length. */
int addr_parse_cidr(const char *s, __u8 *family, __u32 addr[4], __u8 *prefixlen, char *err,
		    size_t errlen);
/* key -> "10.0.0.10:80" / "[2001:db8::10]:443"; returns buf. */
char *addr_format_endpoint(const struct shift_addr_key *k, char *buf, size_t len);
/* family + addr -> "10.0.0.10" / "2001:db8::10"; returns buf. */
char *addr_format(__u8 family, const __u32 addr[4], char *buf, size_t len);

#endif
