// SPDX-License-Identifier: MIT
/*
 * Every read of a VHDX file: from the file, then patched with the sectors
 * a replayed log wrote in memory (a read-only open never writes them).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vhdx_i.h"

/* First overlay sector at or after @off (binary search). */
static size_t overlay_first(const struct vhdx *x, uint64_t off)
{
	size_t lo = 0, hi = x->noverlay;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (x->overlay[mid].offset + VHDX_LOG_SECTOR <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int vhdx_pread_file(struct vhdx *x, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t from_file = len;
	int r;

	if (off > x->file_size || len > x->file_size - off)
		return vhd_set_error(-EINVAL,
				     "%s: read of %zu bytes at offset %" PRIu64
				     " is past the end of the file (%" PRIu64
				     " bytes)",
				     x->path, len, off, x->file_size);
	/* Only a replayed log grows the file past its real end. */
	if (off >= x->real_size)
		from_file = 0;
	else if (len > x->real_size - off)
		from_file = (size_t)(x->real_size - off);
	memset(p + from_file, 0, len - from_file);
	if (from_file) {
		r = vhd_io_read(x->fd, p, from_file, off);
		if (r < 0)
			return vhd_set_error(
				r, "%s: read error at offset %" PRIu64 ": %s",
				x->path, off, strerror(-r));
	}
	for (size_t i = overlay_first(x, off);
	     i < x->noverlay && x->overlay[i].offset < off + len; i++) {
		const struct vhdx_overlay_sector *s = &x->overlay[i];
		uint64_t a = s->offset > off ? s->offset : off;
		uint64_t b = s->offset + VHDX_LOG_SECTOR;

		if (b > off + len)
			b = off + len;
		if (s->data)
			memcpy(p + (a - off), s->data + (a - s->offset), b - a);
		else
			memset(p + (a - off), 0, b - a);
	}
	return 0;
}

int vhdx_probe_fd(int fd)
{
	char sig[8];
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < 8)
		return 0;
	r = vhd_io_read(fd, sig, sizeof(sig), 0);
	if (r < 0)
		return r;
	return memcmp(sig, "vhdxfile", 8) == 0;
}

int vhdx_probe(const char *path)
{
	struct stat st;
	int fd, r;

	/* Opened as every image is: never through our own mount, never a
	 * FIFO or device. Anything that is not a regular file is no VHDX. */
	fd = vhd_file_open(path, O_RDONLY, &st, NULL);
	if (fd == -EINVAL)
		return 0;
	if (fd < 0)
		return fd;
	r = vhdx_probe_fd(fd);
	close(fd);
	return r;
}

bool vhdx_is_vhdx_name(const char *path)
{
	size_t n = strlen(path);

	return (n > 5 && strcasecmp(path + n - 5, ".vhdx") == 0) ||
	       (n > 6 && strcasecmp(path + n - 6, ".avhdx") == 0);
}
