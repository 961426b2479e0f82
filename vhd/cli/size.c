// SPDX-License-Identifier: MIT
/* Size argument parsing and human-readable size formatting. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "size.h"

/* Shift for a suffix letter, or -1 when @c is not one. */
static int suffix_shift(char c)
{
	switch (toupper((unsigned char)c)) {
	case 'K':
		return 10;
	case 'M':
		return 20;
	case 'G':
		return 30;
	case 'T':
		return 40;
	default:
		return -1;
	}
}

int cli_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	int shift = 0;

	/* strtoull would accept leading blanks and a minus sign: refuse. */
	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (*p) {
		shift = suffix_shift(*p);
		if (shift < 0)
			return -EINVAL;
		p++;
		if (!strcasecmp(p, "iB") || !strcasecmp(p, "B"))
			p += strlen(p);
		if (*p)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
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
