/* SPDX-License-Identifier: MIT */
/* Sizes for the CLI: formatting, and the block-size operand. */
#ifndef VHD_CLI_SIZE_H
#define VHD_CLI_SIZE_H

#include <stdint.h>

/*
 * Format @bytes for humans into @buf, three significant digits truncated:
 * "4 MiB", "1.50 GiB", "99.5 GiB", "512 B".
 * Always NUL-terminates (given @len > 0). Returns @buf.
 */
char *cli_format_size(uint64_t bytes, char *buf, unsigned long len);

/*
 * Block-size operand (create, convert): a size that is a power of two from
 * 512 KiB to 256 MiB, as the library creates. 0 or -EINVAL.
 */
int cli_parse_block_size(const char *s, uint32_t *out);

#endif
