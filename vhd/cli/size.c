// SPDX-License-Identifier: MIT
/* Human-readable size formatting; the block-size operand. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "size.h"
#include "vhd.h"

#define MIN_BLOCK_SIZE (512u << 10)
#define MAX_BLOCK_SIZE (256u << 20)

int cli_parse_block_size(const char *s, uint32_t *out)
{
	uint64_t v;

	if (vhd_parse_size(s, &v))
		return -EINVAL;
	if (v < MIN_BLOCK_SIZE || v > MAX_BLOCK_SIZE || (v & (v - 1)))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

char *cli_format_size(uint64_t bytes, char *buf, unsigned long len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	unsigned u = 0;
	uint64_t scale = 1;

	while (u + 1 < sizeof(units) / sizeof(units[0]) &&
	       bytes >= (scale << 10)) {
		scale <<= 10;
		u++;
	}
	if (bytes % scale == 0) {
		snprintf(buf, len, "%llu %s",
			 (unsigned long long)(bytes / scale), units[u]);
	} else {
		/*
		 * Three significant digits, truncated: 2040 GiB is "1.99 TiB",
		 * never a rounded-up "2.0 TiB" it does not reach.
		 */
		uint64_t whole = bytes / scale;
		int dec = whole < 10 ? 2 : whole < 100 ? 1 : 0;
		uint64_t mul = dec == 2 ? 100 : dec == 1 ? 10 : 1;
		/* frac < scale <= 2^40, so this cannot overflow */
		uint64_t frac = bytes % scale * mul / scale;

		if (dec)
			snprintf(buf, len, "%llu.%0*llu %s",
				 (unsigned long long)whole, dec,
				 (unsigned long long)frac, units[u]);
		else
			snprintf(buf, len, "%llu %s", (unsigned long long)whole,
				 units[u]);
	}
	return buf;
}
