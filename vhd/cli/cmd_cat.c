// SPDX-License-Identifier: MIT
/* vhd cat PATH: the flat, chain-resolved image on standard output. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vhd.h"

/* Large reads keep the per-call chain resolution cost negligible. */
#define CAT_BUF_SIZE (1u << 20)

/* Write all of @buf to fd 1. Returns 0 or -errno. */
static int write_all(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int cmd_cat(int argc, char **argv)
{
	struct vhd_disk *disk;
	const char *path;
	uint64_t off = 0, size;
	char *buf;
	int st, err, ret = CLI_EXIT_OK;

	st = cli_parse_plain(argc, argv, 1);
	if (st >= 0)
		return st;
	path = argv[optind];

	err = vhd_open(path, VHD_OPEN_RDONLY, &disk);
	if (err)
		return cli_fail(path, err);
	buf = malloc(CAT_BUF_SIZE);
	if (!buf) {
		cli_msg("%s: %s", path, strerror(ENOMEM));
		vhd_close(disk);
		return CLI_EXIT_FAIL;
	}

	size = vhd_size(disk);
	while (off < size) {
		size_t want =
			size - off < CAT_BUF_SIZE ? size - off : CAT_BUF_SIZE;
		ssize_t n = vhd_pread(disk, buf, want, off);

		if (n < 0) {
			ret = cli_fail(path, (int)n);
			break;
		}
		if (n == 0) {
			cli_msg("%s: unexpected end of image at byte %llu",
				path, (unsigned long long)off);
			ret = CLI_EXIT_FAIL;
			break;
		}
		err = write_all(buf, (size_t)n);
		if (err == -EPIPE)
			break; /* reader went away: not our failure */
		if (err) {
			cli_msg("standard output: %s", strerror(-err));
			ret = CLI_EXIT_FAIL;
			break;
		}
		off += (uint64_t)n;
	}

	free(buf);
	vhd_close(disk);
	return ret;
}
