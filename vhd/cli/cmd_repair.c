// SPDX-License-Identifier: MIT
/*
 * vhd repair [--checksums] PATH: one line per change (or per defect left
 * alone) on stdout; exit 1 when the image still has problems afterwards.
 */
#include <unistd.h>
#include <stdio.h>

#include "cli.h"
#include "vhd.h"

static void print_line(void *ctx, const char *msg)
{
	(void)ctx;
	printf("%s\n", msg);
}

static void count_only(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

int cmd_repair(int argc, char **argv)
{
	bool checksums;
	const char *path;
	int st, n;

	st = cli_parse_flag(argc, argv, "checksums", &checksums, 1);
	if (st >= 0)
		return st;
	path = argv[optind];
	n = vhd_repair(path, checksums ? VHD_REPAIR_CHECKSUMS : 0, print_line,
		       NULL);
	fflush(stdout);
	if (n < 0)
		return cli_fail(path, n);
	if (n == 0)
		printf("%s: nothing repaired\n", path);
	/* What is left, repair could not (or was not allowed to) fix. */
	n = vhd_check(path, count_only, NULL);
	if (n < 0)
		return cli_fail(path, n);
	if (n > 0) {
		cli_msg("%s: %d problem%s left; see vhd check", path, n,
			n == 1 ? "" : "s");
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}
