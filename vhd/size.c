// SPDX-License-Identifier: MIT
/* Size arguments, shared by the CLI and the control file. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "vhd.h"

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

int vhd_parse_size(const char *s, uint64_t *out)
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
