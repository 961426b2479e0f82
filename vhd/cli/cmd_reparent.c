// SPDX-License-Identifier: MIT
/* vhd reparent [--ignore-id-mismatch] CHILD PARENT */
#include <unistd.h>

#include "cli.h"
#include "vhd.h"

int cmd_reparent(int argc, char **argv)
{
	bool ignore_id;
	int st, err;

	st = cli_parse_flag(argc, argv, "ignore-id-mismatch", &ignore_id, 2);
	if (st >= 0)
		return st;
	err = vhd_reparent(argv[optind], argv[optind + 1],
			   ignore_id ? VHD_REPARENT_IGNORE_ID : 0);
	if (err)
		return cli_fail(argv[optind], err);
	return CLI_EXIT_OK;
}
