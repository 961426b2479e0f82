// SPDX-License-Identifier: MIT
/*
 * Converting the flat, resolved content of an image or chain into a new
 * stand-alone fixed or dynamic image. The output is built under a hidden
 * temporary name and linked into place only when complete and synced.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "vhd_i.h"

#define FIXED_CHUNK (2u << 20)

static bool all_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

/*
 * Copy chunk by chunk (a dynamic output's block, so only blocks holding
 * non-zero data are allocated); holes of the source are skipped.
 */
static int copy(struct vhd_disk *s, struct vhd_disk *o, uint32_t chunk,
		vhd_progress_fn progress, void *ctx)
{
	uint64_t size = s->size;
	uint8_t *buf = malloc(chunk);
	int r = 0;

	if (!buf)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (uint64_t off = 0; off < size;) {
		uint64_t end = size - off < chunk ? size : off + chunk;
		int64_t data;
		ssize_t n;

		if (progress && progress(ctx, off, size)) {
			r = vhd_set_error(-ECANCELED,
					  "%s: conversion "
					  "cancelled",
					  s->path);
			break;
		}
		data = vhd_seek_data(s, off);
		if (data == -ENXIO)
			break;
		if (data < 0) {
			r = (int)data;
			break;
		}
		if ((uint64_t)data >= end) {
			off = (uint64_t)data / chunk * chunk;
			continue;
		}
		n = vhd_pread(s, buf, (size_t)(end - off), off);
		if (n >= 0 && n != (ssize_t)(end - off))
			n = vhd_set_error(-EIO, "%s: short read", s->path);
		if (n >= 0 && !all_zero(buf, (size_t)(end - off)))
			n = vhd_pwrite(o, buf, (size_t)(end - off), off);
		if (n < 0) {
			r = (int)n;
			break;
		}
		off = end;
	}
	free(buf);
	return r;
}

int vhd_convert(const char *src, const char *dst,
		const struct vhd_create_params *params,
		vhd_progress_fn progress, void *ctx)
{
	struct vhd_create_params p = *params;
	struct vhd_disk *s = NULL, *o = NULL;
	char tmp[PATH_MAX];
	int r;

	vhd_clear_error();
	if (p.type != VHD_TYPE_FIXED && p.type != VHD_TYPE_DYNAMIC)
		return vhd_set_error(-EINVAL,
				     "%s: can only convert to a fixed or "
				     "dynamic disk",
				     dst);
	r = vhd_open(src, VHD_OPEN_RDONLY, &s);
	if (r < 0)
		return r;
	if (p.size && vhd_align_up(p.size, VHD_SECTOR_SIZE) != s->size) {
		r = vhd_set_error(-EINVAL,
				  "%s: size %" PRIu64 " differs from the "
				  "source's %" PRIu64 " bytes",
				  dst, p.size, s->size);
		goto out;
	}
	p.size = s->size;
	r = vhd_create_unlinked(dst, &p, tmp, sizeof(tmp));
	if (r < 0)
		goto out;
	r = vhd_open(tmp, VHD_OPEN_RDWR, &o);
	if (r == 0)
		r = copy(s, o,
			 p.type == VHD_TYPE_DYNAMIC ? o->block_size
						    : FIXED_CHUNK,
			 progress, ctx);
	if (o) {
		char *msg = r ? strdup(vhd_errmsg()) : NULL;
		int rc = vhd_close(o); /* clears the message */

		if (r == 0)
			r = rc;
		else
			vhd_set_error(r, "%s", msg ? msg : "");
		free(msg);
	}
	if (r == 0 && progress && progress(ctx, s->size, s->size))
		r = vhd_set_error(-ECANCELED, "%s: conversion cancelled", src);
	r = vhd_link_unlinked(tmp, dst, r);
out:
	vhd_close_chain(s);
	return r;
}
