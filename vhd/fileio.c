// SPDX-License-Identifier: MIT
/*
 * All file I/O of the library passes through one ops table so tests can
 * cut the write sequence at any point and check what a crash leaves.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "vhd_i.h"

static ssize_t sys_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t r = pread(fd, buf, len, off);

	return r < 0 ? -errno : r;
}

static ssize_t sys_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t r = pwrite(fd, buf, len, off);

	return r < 0 ? -errno : r;
}

static int sys_fsync(int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

static const struct vhd_io_ops sys_ops = {
	.pread = sys_pread,
	.pwrite = sys_pwrite,
	.fsync = sys_fsync,
};

static const struct vhd_io_ops *ops = &sys_ops;

void vhd_set_io_ops(const struct vhd_io_ops *new_ops)
{
	ops = new_ops ? new_ops : &sys_ops;
}

/* Reads past end of file are an error here: callers bounds-check first. */
int vhd_io_read(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = ops->pread(fd, p, len, (off_t)off);

		if (r == -EINTR)
			continue;
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EIO;
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

int vhd_io_write(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = ops->pwrite(fd, p, len, (off_t)off);

		if (r == -EINTR)
			continue;
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EIO;
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

int vhd_io_sync(int fd)
{
	return ops->fsync(fd);
}

int vhd_io_open_tmpfile(const char *dir, int flags, mode_t mode)
{
	int fd;

	if (ops->open_tmpfile)
		return ops->open_tmpfile(dir, flags, mode);
	fd = open(dir, O_TMPFILE | flags, mode);
	return fd < 0 ? -errno : fd;
}
