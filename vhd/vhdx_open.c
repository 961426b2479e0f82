// SPDX-License-Identifier: MIT
/*
 * Opening one VHDX file, in the order the spec requires: identifier and
 * headers, log replay (in memory), region table, metadata, BAT.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx_i.h"

void vhdx_free(struct vhdx *x)
{
	if (!x)
		return;
	if (x->bitmaps)
		for (uint64_t b = 0; b < x->payload_blocks; b++)
			free(atomic_load(&x->bitmaps[b]));
	free(x->bitmaps);
	free(x->bat);
	vhdx_dirty_clear(x);
	free(x->dirty);
	vhdx_log_free(x);
	if (x->fd >= 0)
		close(x->fd);
	free(x->path);
	free(x);
}

/* What a writer relies on beyond what a reader checked. */
static int check_writable(struct vhdx *x)
{
	const struct vhdx_header *h = &x->header;

	if (h->log_offset < VHDX_MIB || h->log_offset % VHDX_MIB ||
	    h->log_length < VHDX_MIB || h->log_length % VHDX_MIB ||
	    h->log_length > VHDX_MAX_LOG || h->log_offset > x->file_size ||
	    h->log_length > x->file_size - h->log_offset)
		return vhd_set_error(-EINVAL,
				     "%s: log at offset %" PRIu64
				     " length %u is not 1 MiB aligned inside "
				     "the file; not opening it read-write",
				     x->path, h->log_offset, h->log_length);
	if (x->region_from_copy)
		return vhd_set_error(-EINVAL,
				     "%s: region table 1 is damaged; not "
				     "opening it read-write",
				     x->path);
	return 0;
}

/* The rest of an open once x->fd is set: takes @x, frees it on failure. */
static int load(struct vhdx *x, int flags, struct vhdx **out)
{
	struct stat st;
	int r;

	x->rw = flags & VHD_OPEN_RDWR;
	if (fstat(x->fd, &st) < 0) {
		r = vhd_set_error(-errno, "%s: %s", x->path, strerror(errno));
		goto fail;
	}
	if (x->rw) {
		r = vhd_lock_writer(x->fd, x->path);
		if (r < 0)
			goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = vhd_set_error(-EINVAL, "%s: not a regular file", x->path);
		goto fail;
	}
	x->real_size = x->file_size = (uint64_t)st.st_size;
	r = vhdx_read_headers(x);
	if (r == 0)
		r = vhdx_log_replay(x);
	if (r == 0)
		r = vhdx_read_regions(x);
	if (r == 0 && !(flags & VHDX_OPEN_I_REGIONS))
		r = vhdx_read_metadata(x);
	if (r == 0 && !(flags & VHDX_OPEN_I_REGIONS))
		r = vhdx_bat_load(x);
	if (r == 0 && x->rw)
		r = check_writable(x);
	/* replayed in memory so far: now for good, before any write */
	if (r == 0 && x->rw && !vhdx_guid_is_zero(x->header.log_guid))
		r = vhdx_log_commit_replay(x);
	if (r < 0)
		goto fail;
	*out = x;
	return 0;
fail:
	vhdx_free(x);
	return r;
}

static struct vhdx *alloc_named(const char *path)
{
	struct vhdx *x = calloc(1, sizeof(*x));

	if (x) {
		x->fd = -1;
		x->path = strdup(path);
	}
	if (x && !x->path) {
		free(x);
		x = NULL;
	}
	if (!x)
		vhd_set_error(-ENOMEM, "out of memory");
	return x;
}

int vhdx_open_file(const char *path, int flags, struct vhdx **out)
{
	struct vhdx *x = alloc_named(path);
	struct stat st;
	int r;

	if (!x)
		return -ENOMEM;
	x->fd = vhd_file_open(path, (flags & VHD_OPEN_RDWR) ? O_RDWR : O_RDONLY,
			      &st, NULL);
	if (x->fd < 0) {
		r = x->fd;
		vhdx_free(x);
		return r;
	}
	return load(x, flags, out);
}

int vhdx_open_fd(int fd, const char *name, int flags, struct vhdx **out)
{
	struct vhdx *x = alloc_named(name);
	int r;

	if (!x)
		return -ENOMEM;
	x->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (x->fd < 0) {
		r = vhd_set_error(-errno, "%s: %s", name, strerror(errno));
		vhdx_free(x);
		return r;
	}
	return load(x, flags, out);
}

int vhdx_open_regions(const char *path, struct vhdx **out)
{
	return vhdx_open_file(path, VHD_OPEN_RDONLY | VHDX_OPEN_I_REGIONS, out);
}
