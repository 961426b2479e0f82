// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the .control line parser (fuse/ctlparse.c), the
 * escaping of result text (fuse/escape.c) and the size parser. Each line
 * of the input (split at newlines, as the control file does) is parsed;
 * promises checked: a parsed line has a verb of the table below (every
 * verb .control knows) and an argument count in its range, and tok[0] is
 * the verb's own static text (jobs keep it after the line is gone); the
 * canonical command text parses back to the same tokens; the escaped
 * text has no unescaped quote, no newline and no control byte, so a
 * result line stays one line, and a shorter buffer gets a prefix of it
 * cut between whole escapes; sizes either parse to a value the suffix
 * allows or fail -EINVAL/-ERANGE.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "vhdfs.h"

#define CANON 8256 /* as control.c's result: 2 paths and some */

/* The verbs and argument counts design.md gives .control, written out
 * again here so the parser's own table is checked against them. */
static const struct {
	const char *name;
	int min, max;
} verbs[] = {
	{"diff", 2, 2},	  {"create", 2, 4},   {"validate", 1, 1},
	{"cancel", 1, 1}, {"merge", 1, 2},    {"compact", 1, 1},
	{"expand", 2, 2}, {"reparent", 2, 3}, {"convert", 3, 4},
};

/* Escaped text: whole escapes only (\\ \" \n \r \t \xHH), no bare
 * quote, no control byte. */
static void check_escaped(const char *out, size_t o)
{
	for (size_t i = 0; i < o; i++) {
		unsigned char c = (unsigned char)out[i];

		FZ_ASSERT(c >= 0x20 && c != 0x7f, "control byte in escape");
		FZ_ASSERT(c != '"', "unescaped quote");
		if (c != '\\')
			continue;
		c = (unsigned char)out[++i];
		if (c == 'x') {
			FZ_ASSERT(isxdigit((unsigned char)out[i + 1]) &&
					  isxdigit((unsigned char)out[i + 2]),
				  "cut \\x escape");
			i += 2;
		} else {
			FZ_ASSERT(c && strchr("\\\"nrt", c),
				  "lone backslash in escaped text");
		}
	}
}

static void check_escape(const char *s, size_t len)
{
	char out[2048], small[13];
	size_t o = vhdfs_escape(out, sizeof(out), s, len, true);
	size_t so = vhdfs_escape(small, sizeof(small), s, len, true);

	FZ_ASSERT(o < sizeof(out) && o == strlen(out), "escape length");
	FZ_ASSERT(so < sizeof(small) && so == strlen(small), "escape length");
	check_escaped(out, o);
	check_escaped(small, so);
	FZ_ASSERT(so <= o && !memcmp(small, out, so),
		  "a shorter buffer is not a prefix");
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
	check_escape(copy, strlen(copy));
	check_escape(msg, strlen(msg));
	if (n > 0) {
		size_t v = 0;

		FZ_ASSERT(n <= VHDFS_CTL_MAX_TOKENS && !tok[n], "token count");
		while (v < sizeof(verbs) / sizeof(verbs[0]) &&
		       strcmp(tok[0], verbs[v].name))
			v++;
		FZ_ASSERT(v < sizeof(verbs) / sizeof(verbs[0]),
			  "unknown verb accepted: %s", tok[0]);
		FZ_ASSERT(n - 1 >= verbs[v].min && n - 1 <= verbs[v].max,
			  "%s with %d arguments accepted", tok[0], n - 1);
		FZ_ASSERT(tok[0] < line || tok[0] > line + strlen(copy),
			  "verb points into the line");
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
	/* Result lines show raw bytes too (NULs included): escape them all. */
	check_escape(text, size);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		one_line(line);
	free(text);
	return 0;
}
