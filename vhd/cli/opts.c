// SPDX-License-Identifier: MIT
/* Option parsing for commands without options of their own. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"

int cli_parse_plain(int argc, char **argv, int nargs)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			cli_print_usage(stdout, argv[0]);
			return CLI_EXIT_OK;
		}
		return cli_option_error(argv[0], c, argv);
	}
	return cli_check_operands(argc, argv, nargs);
}

int cli_parse_flag(int argc, char **argv, const char *flag, bool *set,
		   int nargs)
{
	const struct option longopts[] = {
		{flag, no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*set = false;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'f') {
			*set = true;
			continue;
		}
		if (c == 'h') {
			cli_print_usage(stdout, argv[0]);
			return CLI_EXIT_OK;
		}
		return cli_option_error(argv[0], c, argv);
	}
	return cli_check_operands(argc, argv, nargs);
}

int cli_check_operands(int argc, char **argv, int nargs)
{
	if (argc - optind < nargs)
		return cli_usage_error(argv[0], "missing operand");
	if (argc - optind > nargs)
		return cli_usage_error(argv[0], "extra operand '%s'",
				       argv[optind + nargs]);
	return -1;
}
