// SPDX-License-Identifier: MIT
/* vhd compact PATH */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "size.h"
#include "vhd.h"

int cmd_compact(int argc, char **argv)
{
	struct cli_progress bar;
	uint64_t reclaimed;
	const char *path;
	char human[32];
	int st, err;

	st = cli_parse_plain(argc, argv, 1);
	if (st >= 0)
		return st;
	path = argv[optind];

	cli_progress_init(&bar, "compacting");
	err = vhd_compact(path, &reclaimed, cli_progress_cb, &bar);
	cli_progress_done(&bar);
	if (err)
		return cli_fail(path, err);
	printf("%s: %" PRIu64 " bytes reclaimed (%s)\n", path, reclaimed,
	       cli_format_size(reclaimed, human, sizeof(human)));
	return CLI_EXIT_OK;
}
