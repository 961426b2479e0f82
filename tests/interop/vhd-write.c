// SPDX-License-Identifier: MIT
/*
 * Test tool of the interop scripts: write standard input into a VHD image
 * at a byte offset through libvhd, then flush. The CLI has no write
 * command; this lets scripts put known data into our images.
 *
 *	vhd-write IMAGE OFFSET < DATA
 *
 * With VHD_WRITE_CUT=N in the environment every pwrite and fsync after
 * the first N pwrites fails with EIO and the tool exits without closing:
 * a writer that crashed at that point of its write sequence.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd.h"

static long cut_left = -1;

static ssize_t cut_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (cut_left == 0) {
		errno = EIO;
		return -1;
	}
	cut_left--;
	return pwrite(fd, buf, len, off);
}

static int cut_fsync(int fd)
{
	if (cut_left == 0) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

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
	if (getenv("VHD_WRITE_CUT")) {
		static const struct vhd_io_ops ops = {.pread = pread,
						      .pwrite = cut_pwrite,
						      .fsync = cut_fsync};

		cut_left = strtol(getenv("VHD_WRITE_CUT"), NULL, 0);
		vhd_set_io_ops(&ops);
	}
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
