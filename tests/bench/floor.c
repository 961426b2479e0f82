// SPDX-License-Identifier: MIT
/*
 * bench-floor: the yardstick for scripts/bench.sh. A minimal high-level
 * libfuse passthrough serving one already-flat raw file as /disk.raw, with
 * libfuse's defaults (read_buf/write_buf hand libfuse the file, but 3.14
 * does not ask for splice by default, so a 4 KiB read costs a pread and a
 * writev as in vhdfs; page cache dropped at each open; one-second
 * attribute cache; max_background 12). No getxattr: like most simple
 * passthroughs it leaves that to ENOSYS.
 *   bench-floor FILE MOUNTPOINT [FUSE options]
 */
#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file;
static const char name[] = "/disk.raw";

static int floor_getattr(const char *path, struct stat *st,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, "/") == 0) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, name) != 0)
		return -ENOENT;
	return stat(file, st) ? -errno : 0;
}

static int floor_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			 off_t off, struct fuse_file_info *fi,
			 enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	filler(buf, name + 1, NULL, 0, 0);
	return 0;
}

static int floor_open(const char *path, struct fuse_file_info *fi)
{
	int fd;

	if (strcmp(path, name) != 0)
		return -ENOENT;
	/* Served from the page cache, as vhdfs serves its backing files. */
	fd = open(file, fi->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_DIRECT));
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int floor_read_buf(const char *path, struct fuse_bufvec **bufp,
			  size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec *src = malloc(sizeof(*src));

	(void)path;
	if (!src)
		return -ENOMEM;
	*src = FUSE_BUFVEC_INIT(size);
	src->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	src->buf[0].fd = (int)fi->fh;
	src->buf[0].pos = off;
	*bufp = src;
	return 0;
}

static int floor_write_buf(const char *path, struct fuse_bufvec *buf, off_t off,
			   struct fuse_file_info *fi)
{
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(fuse_buf_size(buf));

	(void)path;
	dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	dst.buf[0].fd = (int)fi->fh;
	dst.buf[0].pos = off;
	return (int)fuse_buf_copy(&dst, buf, FUSE_BUF_SPLICE_NONBLOCK);
}

static int floor_fsync(const char *path, int datasync,
		       struct fuse_file_info *fi)
{
	(void)path;
	if (datasync)
		return fdatasync((int)fi->fh) ? -errno : 0;
	return fsync((int)fi->fh) ? -errno : 0;
}

static int floor_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static const struct fuse_operations floor_ops = {
	.getattr = floor_getattr,
	.readdir = floor_readdir,
	.open = floor_open,
	.read_buf = floor_read_buf,
	.write_buf = floor_write_buf,
	.fsync = floor_fsync,
	.release = floor_release,
};

int main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE MOUNTPOINT [FUSE options]\n",
			argv[0]);
		return 2;
	}
	file = realpath(argv[1], NULL);
	if (!file) {
		perror(argv[1]);
		return 1;
	}
	/* fuse_main sees: prog MOUNTPOINT [options]. */
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &floor_ops, NULL);
}
