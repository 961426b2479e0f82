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
	struct vhd_disk *d;
	struct vhd_info info;
	char child[PATH_MAX];
	const char *path, *size_arg;
	uint64_t size;
	int st, err;

	st = cli_parse_plain(argc, argv, 2);
	if (st >= 0)
		return st;
	path = argv[optind];
	size_arg = argv[optind + 1];
	if (vhd_parse_size(size_arg, &size) || size == 0 ||
	    size > VHD_MAX_SIZE_VHDX)
		return cli_usage_error(
			argv[0], "invalid size '%s' (1 byte to 64T)", size_arg);
	/* The limit is the image's format's (a VHD: 2040G). */
	err = vhd_open(path, VHD_OPEN_RDONLY | VHD_OPEN_NOPARENT, &d);
	if (err)
		return cli_fail(path, err);
	err = vhd_get_info(d, &info);
	vhd_close(d);
	if (err)
		return cli_fail(path, err);
	if (size > vhd_max_size(info.format))
		return cli_usage_error(argv[0],
				       "invalid size '%s' for %s (1 byte to "
				       "2040G)",
				       size_arg, path);
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
