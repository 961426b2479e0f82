// SPDX-License-Identifier: MIT
/* vhd expand PATH SIZE */
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "children.h"
#include "cli.h"
#include "progress.h"
#include "vhd.h"

int cmd_expand(int argc, char **argv)
{
	struct cli_progress bar;
	char child[PATH_MAX];
	const char *path, *size_arg;
	uint64_t size;
	int st, err;

	st = cli_parse_plain(argc, argv, 2);
	if (st >= 0)
		return st;
	path = argv[optind];
	size_arg = argv[optind + 1];
	/* The library checks the limit of the image's own format. */
	if (vhd_parse_size(size_arg, &size) || size == 0 ||
	    size > VHD_MAX_SIZE_VHDX)
		return cli_usage_error(argv[0],
				       "invalid size '%s' (1 byte to 64T for "
				       "a VHDX, 2040G for a VHD)",
				       size_arg);
	/* The library cannot see children; the image's directory can. */
	err = cli_find_child(path, child, sizeof(child));
	if (err < 0)
		return cli_fail(path, err);
	if (err > 0) {
		cli_msg("%s: is the parent of %s; expanding it would change "
			"the child's view",
			path, child);
		return CLI_EXIT_FAIL;
	}
	cli_progress_init(&bar, "expanding");
	err = vhd_expand(path, size, cli_progress_cb, &bar);
	cli_progress_done(&bar);
	if (err)
		return cli_fail(path, err);
	return CLI_EXIT_OK;
}
