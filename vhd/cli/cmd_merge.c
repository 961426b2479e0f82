// SPDX-License-Identifier: MIT
/* vhd merge CHILD [ANCESTOR] */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "vhd.h"

int cmd_merge(int argc, char **argv)
{
	const char *child, *ancestor = NULL;
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cli_progress bar;
	int st, err;

	opterr = 0;
	while ((st = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (st != 'h')
			return cli_option_error(argv[0], st, argv);
		cli_print_usage(stdout, argv[0]);
		return CLI_EXIT_OK;
	}
	/* One or two operands. */
	st = cli_check_operands(argc, argv, argc - optind > 1 ? 2 : 1);
	if (st >= 0)
		return st;
	child = argv[optind];
	if (argc - optind > 1)
		ancestor = argv[optind + 1];

	cli_progress_init(&bar, "merging");
	err = vhd_merge(child, ancestor, cli_progress_cb, &bar);
	cli_progress_done(&bar);
	if (err)
		return cli_fail(child, err);
	return CLI_EXIT_OK;
}
