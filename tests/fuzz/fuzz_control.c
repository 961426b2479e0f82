// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the .control line parser (fuse/ctlparse.c) and the
 * size parser. Each line of the input (split at newlines, as the control
 * file does) is parsed; promises checked: a parsed line has a known verb
 * and an argument count in its range; the canonical command text parses
 * back to the same tokens; the escaped text has no unescaped quote and no
 * newline, so a result line stays one line; sizes either parse to a value
 * the suffix allows or fail -EINVAL/-ERANGE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "vhdfs.h"

#define CANON 8256 /* as control.c's result: 2 paths and some */

static void check_escape(const char *s)
{
	char out[2048];
	size_t o;

	vhdfs_ctl_escape(out, sizeof(out), s);
	o = strlen(out);
	FZ_ASSERT(o < sizeof(out), "escape overran");
	FZ_ASSERT(!strchr(out, '\n'), "newline in escaped text");
	for (size_t i = 0; i < o; i++) {
		if (out[i] == '\\') {
			FZ_ASSERT(out[i + 1] == '"' || out[i + 1] == '\\',
				  "lone backslash in escaped text");
			i++;
		} else {
			FZ_ASSERT(out[i] != '"', "unescaped quote");
		}
	}
}

static void check_size(const char *s)
{
	uint64_t v = 0;
	int r = vhd_parse_size(s, &v);

	FZ_ASSERT(r == 0 || r == -EINVAL || r == -ERANGE, "parse_size: %d", r);
}

static void one_line(char *line)
{
	char *copy = strdup(line), *tok[VHDFS_CTL_MAX_TOKENS + 1];
	char *again[VHDFS_CTL_MAX_TOKENS + 1], msg[1024] = "";
	char *canon = malloc(CANON), *canon2 = malloc(CANON);
	int n, n2;

	if (!copy || !canon || !canon2)
		abort();
	canon[0] = '\0';
	n = vhdfs_ctl_parse(line, tok, canon, CANON, msg, sizeof(msg));
	FZ_ASSERT(n > 0 || n == -EINVAL || n == -EOPNOTSUPP, "parse: %d", n);
	FZ_ASSERT(n > 0 || msg[0], "parse failed without a reason");
	check_escape(copy);
	check_escape(msg);
	if (n > 0) {
		FZ_ASSERT(n <= VHDFS_CTL_MAX_TOKENS && !tok[n], "token count");
		for (int i = 0; i < n; i++)
			check_size(tok[i]);
		if (strlen(canon) + 1 < CANON) {
			/* The canonical text is what .control shows: it must
			 * parse back to the same command. */
			n2 = vhdfs_ctl_parse(canon, again, canon2, CANON, msg,
					     sizeof(msg));
			FZ_ASSERT(n2 == n,
				  "canonical text parses to %d "
				  "tokens, not %d",
				  n2, n);
			for (int i = 0; i < n; i++)
				FZ_ASSERT(!strcmp(tok[i], again[i]),
					  "token %d changed: \"%s\" -> \"%s\"",
					  i, tok[i], again[i]);
		}
	}
	free(copy);
	free(canon);
	free(canon2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *line, *save;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		one_line(line);
	free(text);
	return 0;
}
