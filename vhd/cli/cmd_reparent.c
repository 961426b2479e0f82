// SPDX-License-Identifier: MIT
/* vhd reparent [--ignore-id-mismatch] CHILD PARENT */
#include <getopt.h>

#include "cli.h"
#include "vhd.h"

int cmd_reparent(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ignore-id-mismatch", no_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned flags = 0;
	int c, err;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ih", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			flags |= VHD_REPARENT_IGNORE_ID;
			break;
		case 'h':
			cli_print_usage(stdout, argv[0]);
			return CLI_EXIT_OK;
		default:
			return cli_option_error(argv[0], c, argv);
		}
	}
	c = cli_check_operands(argc, argv, 2);
	if (c >= 0)
		return c;
	err = vhd_reparent(argv[optind], argv[optind + 1], flags);
	if (err)
		return cli_fail(argv[optind], err);
	return CLI_EXIT_OK;
}
