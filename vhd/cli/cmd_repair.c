// SPDX-License-Identifier: MIT
/*
 * vhd repair [--checksums] PATH: one line per change (or per defect left
 * alone) on stdout; exit 1 when the image still has problems afterwards.
 */
#include <getopt.h>
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
	static const struct option longopts[] = {
		{"checksums", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned flags = 0;
	const char *path;
	int c, n;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ch", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			flags |= VHD_REPAIR_CHECKSUMS;
			break;
		case 'h':
			cli_print_usage(stdout, argv[0]);
			return CLI_EXIT_OK;
		default:
			return cli_option_error(argv[0], c, argv);
		}
	}
	c = cli_check_operands(argc, argv, 1);
	if (c >= 0)
		return c;
	path = argv[optind];
	n = vhd_repair(path, flags, print_line, NULL);
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
