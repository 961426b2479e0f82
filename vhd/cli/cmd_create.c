// SPDX-License-Identifier: MIT
/* vhd create [--fixed|--dynamic] [--block-size SIZE] PATH SIZE */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "vhd.h"

int cmd_create(int argc, char **argv)
{
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC};
	const char *block_arg = NULL;
	const char *path, *size_arg;
	int c, err;

	c = cli_parse_image_opts(argc, argv, &p, &block_arg);
	if (c >= 0)
		return c;
	c = cli_check_operands(argc, argv, 2);
	if (c >= 0)
		return c;
	path = argv[optind];
	size_arg = argv[optind + 1];

	err = vhd_parse_size(size_arg, &p.size);
	if (err || p.size == 0 || p.size > vhd_max_size_of_name(path))
		return cli_usage_error(
			argv[0], "invalid size '%s' (1 byte to %s)", size_arg,
			vhd_max_size_of_name(path) > VHD_MAX_SIZE ? "64T"
								  : "2040G");
	c = cli_apply_block_size(argv[0], &p, block_arg);
	if (c >= 0)
		return c;

	err = vhd_create(path, &p);
	if (err)
		return cli_fail(path, err);
	return CLI_EXIT_OK;
}
