// SPDX-License-Identifier: MIT
/* vhd compact PATH */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "children.h"
#include "cli.h"
#include "progress.h"
#include "size.h"
#include "vhd.h"

int cmd_compact(int argc, char **argv)
{
	struct cli_progress bar;
	uint64_t reclaimed;
	char human[32], child[PATH_MAX];
	const char *path;
	int st, err;

	st = cli_parse_plain(argc, argv, 1);
	if (st >= 0)
		return st;
	path = argv[optind];
	/* A parent must not change, even in layout: as the control file. */
	err = cli_find_child(path, child, sizeof(child));
	if (err < 0)
		return cli_fail(path, err);
	if (err > 0) {
		cli_msg("%s: is the parent of %s; a parent is not modified",
			path, child);
		return CLI_EXIT_FAIL;
	}
	cli_progress_init(&bar, "compacting");
	err = vhd_compact(path, &reclaimed, cli_progress_cb, &bar);
	cli_progress_done(&bar);
	if (err)
		return cli_fail(path, err);
	printf("%s: %" PRIu64 " bytes reclaimed (%s)\n", path, reclaimed,
	       cli_format_size(reclaimed, human, sizeof(human)));
	return CLI_EXIT_OK;
}
