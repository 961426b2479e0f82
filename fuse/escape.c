// SPDX-License-Identifier: MIT
/*
 * C-style escaping of text shown in .control results and .jobs/ID files,
 * so a file name or an error message can never start a line of its own.
 */
#include <stdio.h>

#include "vhdfs.h"

size_t vhdfs_escape(char *out, size_t len, const char *s, size_t slen,
		    bool quotes)
{
	size_t o = 0;

	if (!len)
		return 0;
	for (size_t i = 0; i < slen; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[5];
		size_t n;

		if (c == '\\' || (quotes && c == '"'))
			n = (size_t)snprintf(e, sizeof(e), "\\%c", c);
		else if (c == '\n')
			n = (size_t)snprintf(e, sizeof(e), "\\n");
		else if (c == '\r')
			n = (size_t)snprintf(e, sizeof(e), "\\r");
		else if (c == '\t')
			n = (size_t)snprintf(e, sizeof(e), "\\t");
		else if (c < 0x20 || c == 0x7f)
			n = (size_t)snprintf(e, sizeof(e), "\\x%02x", c);
		else
			e[0] = (char)c, n = 1;
		/* Whole escapes only: a cut one could hide the next quote. */
		if (o + n >= len)
			break;
		for (size_t k = 0; k < n; k++)
			out[o++] = e[k];
	}
	out[o] = '\0';
	return o;
}
