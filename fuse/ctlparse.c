// SPDX-License-Identifier: MIT
/*
 * Parsing of one .control command line, apart from running it: tokens,
 * the verb table and the canonical command text (result lines escape it
 * with vhdfs_escape, escape.c). No FUSE and no file system here, so the
 * fuzz target links it alone.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vhdfs.h"

/* Split @line into tokens; double quotes group, \" and \\ escape inside. */
static int tokenize(char *line, char **tok, int max)
{
	char *r = line, *w = line;
	int n = 0;

	for (;;) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (!*r)
			return n;
		if (n == max)
			return -EINVAL;
		tok[n++] = w;
		bool quoted = false;

		while (*r && (quoted || (*r != ' ' && *r != '\t'))) {
			if (*r == '"') {
				quoted = !quoted;
				r++;
			} else if (quoted && *r == '\\' &&
				   (r[1] == '"' || r[1] == '\\')) {
				*w++ = r[1];
				r += 2;
			} else {
				*w++ = *r++;
			}
		}
		if (quoted)
			return -EINVAL;
		if (*r)
			r++;
		*w++ = '\0';
	}
}

/* Append @s to @buf quoted when it holds blanks or quotes. */
static void append_arg(char *buf, size_t len, const char *s)
{
	size_t o = strlen(buf);
	bool q = !*s || strpbrk(s, " \t\"\\");

	if (o && o + 1 < len)
		buf[o++] = ' ';
	if (q && o + 1 < len)
		buf[o++] = '"';
	for (; *s && o + 2 < len; s++) {
		if (q && (*s == '"' || *s == '\\'))
			buf[o++] = '\\';
		buf[o++] = *s;
	}
	if (q && o + 1 < len)
		buf[o++] = '"';
	buf[o < len ? o : len - 1] = '\0';
}

struct verb {
	const char *name;
	int min, max; /* argument count, the verb not counted */
	bool supported;
};

static const struct verb verbs[] = {
	{"diff", 2, 2, true},	  {"create", 2, 4, true},
	{"validate", 1, 1, true}, {"cancel", 1, 1, true},
	{"merge", 1, 2, true},	  {"compact", 1, 1, true},
	{"expand", 2, 2, true},	  {"reparent", 2, 3, true},
	{"convert", 3, 4, true},
};

int vhdfs_ctl_parse(char *line, char **tok, char *canon, size_t clen, char *msg,
		    size_t mlen)
{
	const struct verb *v = NULL;
	int n;

	n = tokenize(line, tok, VHDFS_CTL_MAX_TOKENS);
	if (n <= 0) {
		snprintf(msg, mlen,
			 n ? "malformed command (quotes?)" : "empty command");
		return -EINVAL;
	}
	tok[n] = NULL;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(tok[0], verbs[i].name) == 0)
			v = &verbs[i];
	if (!v && n == 2) {
		/* "CHILD PARENT": the implicit diff */
		memmove(tok + 1, tok, 2 * sizeof(*tok));
		tok[0] = "diff";
		tok[++n] = NULL;
		v = &verbs[0];
	}
	canon[0] = '\0';
	for (int i = 0; i < n; i++)
		append_arg(canon, clen, tok[i]);
	if (!v) {
		snprintf(msg, mlen, "unknown command: %s", tok[0]);
		return -EINVAL;
	}
	tok[0] = (char *)v->name; /* outlives @line: a job keeps its verb */
	if (n - 1 < v->min || n - 1 > v->max) {
		snprintf(msg, mlen, "wrong number of arguments for %s",
			 v->name);
		return -EINVAL;
	}
	if (!v->supported) {
		snprintf(msg, mlen, "%s is not supported yet", v->name);
		return -EOPNOTSUPP;
	}
	return n;
}
