/* SPDX-License-Identifier: MIT */
/* Human-readable sizes for the CLI (parsing is vhd_parse_size). */
#ifndef VHD_CLI_SIZE_H
#define VHD_CLI_SIZE_H

#include <stdint.h>

/*
 * Format @bytes for humans into @buf, three significant digits truncated:
 * "4 MiB", "1.50 GiB", "99.5 GiB", "512 B".
 * Always NUL-terminates (given @len > 0). Returns @buf.
 */
char *cli_format_size(uint64_t bytes, char *buf, unsigned long len);

#endif
