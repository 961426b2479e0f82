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

/*
 * Output of a dynamic conversion. The file is a fresh temporary nobody
 * else sees until it is linked, so io.c's crash order (a synced footer
 * per new block) buys nothing here: blocks are appended in order, and the
 * block table and the trailing footer are written once at the end.
 */
struct out {
	struct vhd_disk *d;
	uint64_t pos; /* where the next block's bitmap may start */
	uint8_t *map; /* an all-ones bitmap */
};

static int append_block(struct out *o, uint32_t block, const uint8_t *data)
{
	struct vhd_disk *d = o->d;
	uint64_t map_off =
		vhd_align_up(o->pos + d->bitmap_size, VHD_DATA_ALIGN) -
		d->bitmap_size;
	size_t gap = (size_t)(map_off - o->pos);
	uint8_t zeros[VHD_DATA_ALIGN] = {0};
	int r = 0;

	if (map_off / VHD_SECTOR_SIZE >= VHD_BAT_UNUSED)
		return vhd_set_error(-EFBIG, "%s: file too large", d->path);
	/* Zeros over the old trailing footer (first block) and the gap. */
	if (gap)
		r = vhd_io_write(d->fd, zeros, gap, o->pos);
	if (r == 0)
		r = vhd_io_write(d->fd, o->map, d->bitmap_size, map_off);
	if (r == 0)
		r = vhd_io_write(d->fd, data, d->block_size,
				 map_off + d->bitmap_size);
	if (r < 0)
		return vhd_set_error(r, "%s: write failed: %s", d->path,
				     strerror(-r));
	d->bat[block] = (uint32_t)(map_off / VHD_SECTOR_SIZE);
	o->pos = map_off + d->bitmap_size + d->block_size;
	return 0;
}

/* The block table and the trailing footer, then one sync. */
static int finish_out(struct out *o)
{
	struct vhd_disk *d = o->d;
	size_t len = (size_t)d->entries * 4;
	uint8_t footer[VHD_FOOTER_SIZE], *bat = malloc(len ? len : 1);
	int r;

	if (!bat)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (uint32_t i = 0; i < d->entries; i++)
		vhd_put32(bat + 4 * i, d->bat[i]);
	vhd_footer_encode(&d->footer, footer);
	r = vhd_io_write(d->fd, bat, len, d->header.table_offset);
	if (r == 0 && o->pos != d->footer_off)
		r = vhd_io_write(d->fd, footer, sizeof(footer), o->pos);
	if (r == 0)
		r = vhd_io_sync(d->fd);
	free(bat);
	if (r < 0)
		return vhd_set_error(r, "%s: write failed: %s", d->path,
				     strerror(-r));
	return 0;
}

/*
 * Copy chunk by chunk (a dynamic output's block, so only blocks holding
 * non-zero data are allocated); holes of the source are skipped. A fixed
 * output is written in place through vhd_pwrite.
 */
static int copy(struct vhd_disk *s, struct vhd_disk *d, struct out *o,
		uint32_t chunk, vhd_progress_fn progress, void *ctx)
{
	uint64_t size = s->size;
	uint8_t *buf = calloc(1, chunk);
	int r = 0;

	if (!buf)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (uint64_t off = 0; off < size;) {
		uint64_t end = size - off < chunk ? size : off + chunk;
		size_t len = (size_t)(end - off);
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
		n = vhd_pread(s, buf, len, off);
		if (n >= 0 && n != (ssize_t)len)
			n = vhd_set_error(-EIO, "%s: short read", s->path);
		if (n >= 0 && !vhd_all_zero(buf, len)) {
			if (o) {
				/* a partial last block is padded with zeros */
				memset(buf + len, 0, chunk - len);
				n = append_block(o, (uint32_t)(off / chunk),
						 buf);
			} else {
				n = vhd_pwrite(d, buf, len, off);
			}
		}
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
	return vhd_convert_ex(src, dst, params, NULL, progress, ctx);
}

int vhd_convert_ex(const char *src, const char *dst,
		   const struct vhd_create_params *params,
		   const struct vhd_create_opts *opts, vhd_progress_fn progress,
		   void *ctx)
{
	struct vhd_create_params p = *params;
	struct vhd_disk *s = NULL, *o = NULL;
	struct vhd_unlinked u;
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
	r = vhd_create_unlinked(dst, &p, opts, s, &u);
	if (r < 0)
		goto out;
	r = vhd_open_one_fd(u.fd, dst, VHD_OPEN_RDWR, &o);
	if (r == 0 && p.type == VHD_TYPE_DYNAMIC && !o->vhdx) {
		struct out out = {.d = o, .pos = o->footer_off};

		out.map = malloc(o->bitmap_size);
		if (!out.map)
			r = vhd_set_error(-ENOMEM, "out of memory");
		if (r == 0) {
			memset(out.map, 0xFF, o->bitmap_size);
			r = copy(s, o, &out, o->block_size, progress, ctx);
		}
		if (r == 0)
			r = finish_out(&out);
		free(out.map);
		vhd_close_one(o); /* nothing pending: no flush */
	} else if (r == 0) {
		/*
		 * A fixed image has no chain: one image is all of it. A VHDX
		 * is written through its own write path (block by block, so
		 * a dynamic one gets only the blocks holding data).
		 */
		uint32_t chunk = p.type == VHD_TYPE_DYNAMIC ? o->block_size
							    : FIXED_CHUNK;
		char *msg;
		int rc;

		r = copy(s, o, NULL, chunk, progress, ctx);
		msg = r ? strdup(vhd_errmsg()) : NULL;
		rc = vhd_close(o); /* clears the message */
		if (r == 0)
			r = rc;
		else
			vhd_set_error(r, "%s", msg ? msg : "");
		free(msg);
	}
	if (r == 0 && progress && progress(ctx, s->size, s->size))
		r = vhd_set_error(-ECANCELED, "%s: conversion cancelled", src);
	r = vhd_link_unlinked(&u, dst, opts, r);
out:
	vhd_close_chain(s);
	return r;
}
