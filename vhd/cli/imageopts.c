// SPDX-License-Identifier: MIT
/* Options of the commands that make an image: create and convert. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "size.h"
#include "vhd.h"

int cli_parse_image_opts(int argc, char **argv, struct vhd_create_params *p,
			 const char **block_arg)
{
	static const struct option longopts[] = {
		{"fixed", no_argument, NULL, 'f'},
		{"dynamic", no_argument, NULL, 'd'},
		{"block-size", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fdb:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			p->type = VHD_TYPE_FIXED;
			break;
		case 'd':
			p->type = VHD_TYPE_DYNAMIC;
			break;
		case 'b':
			*block_arg = optarg;
			break;
		case 'h':
			cli_print_usage(stdout, argv[0]);
			return CLI_EXIT_OK;
		default:
			return cli_option_error(argv[0], c, argv);
		}
	}
	return -1;
}

int cli_apply_block_size(const char *cmd, struct vhd_create_params *p,
			 const char *block_arg)
{
	if (!block_arg)
		return -1;
	if (p->type == VHD_TYPE_FIXED)
		return cli_usage_error(
			cmd, "--block-size applies to dynamic images only");
	if (cli_parse_block_size(block_arg, &p->block_size))
		return cli_usage_error(cmd,
				       "invalid block size '%s' (a power of "
				       "two, 512K to 256M)",
				       block_arg);
	return -1;
}
