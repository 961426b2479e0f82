// SPDX-License-Identifier: MIT
/*
 * Opening one VHDX file, in the order the spec requires: identifier and
 * headers, log replay (in memory), region table, metadata, BAT.
 */
#include <errno.h>
#include <fcntl.h>
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
	vhdx_log_free(x);
	if (x->fd >= 0)
		close(x->fd);
	free(x->path);
	free(x);
}

int vhdx_open_file(const char *path, int flags, struct vhdx **out)
{
	struct vhdx *x;
	struct stat st;
	int r;

	if (flags & VHD_OPEN_RDWR)
		return vhd_set_error(-EROFS,
				     "%s: VHDX writing not supported yet "
				     "(open it read-only)",
				     path);
	x = calloc(1, sizeof(*x));
	if (!x)
		return vhd_set_error(-ENOMEM, "out of memory");
	x->fd = -1;
	x->path = strdup(path);
	if (!x->path) {
		r = vhd_set_error(-ENOMEM, "out of memory");
		goto fail;
	}
	x->fd = vhd_file_open(path, O_RDONLY, &st, NULL);
	if (x->fd < 0) {
		r = x->fd;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = vhd_set_error(-EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	x->real_size = x->file_size = (uint64_t)st.st_size;
	r = vhdx_read_headers(x);
	if (r == 0)
		r = vhdx_log_replay(x);
	if (r == 0)
		r = vhdx_read_regions(x);
	if (r == 0)
		r = vhdx_read_metadata(x);
	if (r == 0)
		r = vhdx_bat_load(x);
	if (r < 0)
		goto fail;
	*out = x;
	return 0;
fail:
	vhdx_free(x);
	return r;
}
