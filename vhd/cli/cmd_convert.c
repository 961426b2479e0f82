// SPDX-License-Identifier: MIT
/*
 * vhd convert [--fixed|--dynamic] [--block-size SIZE] SRC DST [fixed|dynamic]
 * The type is taken as create takes it (options) or as the control file
 * does (a third operand); dynamic by default.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "vhd.h"

int cmd_convert(int argc, char **argv)
{
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC};
	const char *block_arg = NULL, *src, *dst;
	struct cli_progress bar;
	int c, err;

	c = cli_parse_image_opts(argc, argv, &p, &block_arg);
	if (c >= 0)
		return c;
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
	c = cli_apply_block_size(argv[0], &p, block_arg);
	if (c >= 0)
		return c;

	cli_progress_init(&bar, "converting");
	err = vhd_convert(src, dst, &p, cli_progress_cb, &bar);
	cli_progress_done(&bar);
	if (err)
		return cli_fail(dst, err);
	return CLI_EXIT_OK;
}
