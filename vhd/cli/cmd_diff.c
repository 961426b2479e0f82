// SPDX-License-Identifier: MIT
/* vhd diff CHILD PARENT */
#include <unistd.h>

#include "cli.h"
#include "vhd.h"

int cmd_diff(int argc, char **argv)
{
	const char *child, *parent;
	int st, err;

	st = cli_parse_plain(argc, argv, 2);
	if (st >= 0)
		return st;
	child = argv[optind];
	parent = argv[optind + 1];

	err = vhd_create_diff(child, parent);
	if (err)
		return cli_fail(child, err);
	return CLI_EXIT_OK;
}
