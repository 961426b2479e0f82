// SPDX-License-Identifier: MIT
/*
 * vhd convert [--fixed|--dynamic] [--block-size SIZE] SRC DST [fixed|dynamic]
 * The type is taken as create takes it (options) or as the control file
 * does (a third operand); dynamic by default.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "size.h"
#include "vhd.h"

int cmd_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"fixed", no_argument, NULL, 'f'},
		{"dynamic", no_argument, NULL, 'd'},
		{"block-size", required_argument, NULL, 'b'},
		{"block", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC};
	const char *block_arg = NULL, *src, *dst;
	struct cli_progress bar;
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
	c = cli_check_operands(argc, argv, argc - optind > 2 ? 3 : 2);
	if (c >= 0)
		return c;
	src = argv[optind];
	dst = argv[optind + 1];
	if (argc - optind == 3) {
		const char *t = argv[optind + 2];

		if (!strcasecmp(t, "fixed"))
			p.type = VHD_TYPE_FIXED;
		else if (!strcasecmp(t, "dynamic"))
			p.type = VHD_TYPE_DYNAMIC;
		else
			return cli_usage_error(argv[0],
					       "unknown type '%s' (fixed or "
					       "dynamic)",
					       t);
	}
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

	cli_progress_init(&bar, "converting");
	err = vhd_convert(src, dst, &p, cli_progress_cb, &bar);
	cli_progress_done(&bar);
	if (err)
		return cli_fail(dst, err);
	return CLI_EXIT_OK;
}
