/* SPDX-License-Identifier: MIT */
/*
 * Size arguments as the CLI and the control file take them: a decimal
 * byte count, optionally followed by K, M, G or T (powers of 1024, case
 * insensitive, an optional trailing "B" or "iB" allowed: 2M, 2m, 2MiB).
 * Depends on nothing but libc so any front end can reuse it.
 */
#ifndef VHD_CLI_SIZE_H
#define VHD_CLI_SIZE_H

#include <stdint.h>

/*
 * Parse @s into *@out (bytes). Returns 0, -EINVAL when @s is not a size
 * (empty, sign, junk, unknown suffix), or -ERANGE when it overflows 64
 * bits. Zero is accepted; callers decide whether it makes sense.
 */
int cli_parse_size(const char *s, uint64_t *out);

/*
 * Format @bytes for humans into @buf, three significant digits truncated:
 * "4 MiB", "1.50 GiB", "99.5 GiB", "512 B".
 * Always NUL-terminates (given @len > 0). Returns @buf.
 */
char *cli_format_size(uint64_t bytes, char *buf, unsigned long len);

#endif
