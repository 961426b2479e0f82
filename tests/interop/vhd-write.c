// SPDX-License-Identifier: MIT
/*
 * Test tool of the interop scripts: write standard input into a VHD image
 * at a byte offset through libvhd, then flush. The CLI has no write
 * command; this lets scripts put known data into our images.
 *
 *	vhd-write IMAGE OFFSET < DATA
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd.h"

int main(int argc, char **argv)
{
	struct vhd_disk *d;
	char buf[1 << 16];
	unsigned long long off;
	ssize_t n;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: vhd-write IMAGE OFFSET < DATA\n");
		return 2;
	}
	off = strtoull(argv[2], NULL, 0);
	r = vhd_open(argv[1], VHD_OPEN_RDWR, &d);
	if (r) {
		fprintf(stderr, "vhd-write: %s\n", vhd_errmsg());
		return 1;
	}
	while ((n = read(0, buf, sizeof(buf))) > 0) {
		ssize_t w = vhd_pwrite(d, buf, (size_t)n, off);

		if (w != n) {
			fprintf(stderr, "vhd-write: %s\n", vhd_errmsg());
			return 1;
		}
		off += (unsigned long long)n;
	}
	if (n < 0 || vhd_flush(d) || vhd_close(d)) {
		fprintf(stderr, "vhd-write: %s\n",
			n < 0 ? strerror(errno) : vhd_errmsg());
		return 1;
	}
	return 0;
}
