// SPDX-License-Identifier: MIT
/* vhd create [--fixed|--dynamic] [--block-size SIZE] PATH SIZE */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "size.h"
#include "vhd.h"

int cmd_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"fixed", no_argument, NULL, 'f'},
		{"dynamic", no_argument, NULL, 'd'},
		{"block-size", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC};
	const char *block_arg = NULL;
	const char *path, *size_arg;
	int c, err;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fdb:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			p.type = VHD_TYPE_FIXED;
			break;
		case 'd':
			p.type = VHD_TYPE_DYNAMIC;
			break;
		case 'b':
			block_arg = optarg;
			break;
		case 'h':
			cli_print_usage(stdout, argv[0]);
			return CLI_EXIT_OK;
		default:
			return cli_option_error(argv[0], c, argv);
		}
	}
	c = cli_check_operands(argc, argv, 2);
	if (c >= 0)
		return c;
	path = argv[optind];
	size_arg = argv[optind + 1];

	err = vhd_parse_size(size_arg, &p.size);
	if (err || p.size == 0 || p.size > VHD_MAX_SIZE)
		return cli_usage_error(argv[0],
				       "invalid size '%s' (1 byte to 2040G)",
				       size_arg);
	if (block_arg) {
		if (p.type == VHD_TYPE_FIXED)
			return cli_usage_error(
				argv[0],
				"--block-size applies to dynamic images only");
		if (cli_parse_block_size(block_arg, &p.block_size))
			return cli_usage_error(argv[0],
					       "invalid block size '%s' (a "
					       "power of two, 512K to 256M)",
					       block_arg);
	}

	err = vhd_create(path, &p);
	if (err)
		return cli_fail(path, err);
	return CLI_EXIT_OK;
}
