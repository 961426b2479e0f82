// SPDX-License-Identifier: MIT
/* Error messages and option-error handling shared by the commands. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vhd.h"

void cli_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("vhd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_fail(const char *path, int err)
{
	const char *m = vhd_errmsg();

	if (m && *m)
		cli_msg("%s", m);
	else
		cli_msg("%s: %s", path, strerror(err < 0 ? -err : err));
	return CLI_EXIT_FAIL;
}

int cli_option_error(const char *cmd, int c, char **argv)
{
	/* getopt_long leaves the offending word just before optind. */
	const char *word = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return cli_usage_error(cmd, "option '%s' needs an argument",
				       word);
	if (optopt && optopt != '?' && optopt != ':')
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	return cli_usage_error(cmd, "unknown option '%s'", word);
}
