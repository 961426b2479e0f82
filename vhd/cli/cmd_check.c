// SPDX-License-Identifier: MIT
/* vhd check PATH: one "PATH: problem" line per problem on stdout. */
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "cli.h"
#include "vhd.h"

static void report(void *ctx, const char *msg)
{
	const char *path = ctx;
	size_t n = strlen(path);

	/* Do not double the file name when the library already gives it. */
	if (!strncmp(msg, path, n) && msg[n] == ':')
		printf("%s\n", msg);
	else
		printf("%s: %s\n", path, msg);
}

int cmd_check(int argc, char **argv)
{
	const char *path;
	int st, n;

	st = cli_parse_plain(argc, argv, 1);
	if (st >= 0)
		return st;
	path = argv[optind];

	n = vhd_check(path, report, (void *)path);
	fflush(stdout);
	if (n < 0)
		return cli_fail(path, n);
	if (n > 0) {
		cli_msg("%s: %d problem%s found", path, n, n == 1 ? "" : "s");
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}
