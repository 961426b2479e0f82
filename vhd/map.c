// SPDX-License-Identifier: MIT
/* Which image of the chain supplies each byte: map, SEEK_DATA/SEEK_HOLE. */
#include <errno.h>
#include <string.h>

#include "vhdx_i.h"

static int below(struct vhd_disk *d, uint64_t off, uint64_t limit, int depth,
		 struct vhd_where *w)
{
	if (d->footer.disk_type != VHD_TYPE_DIFF) {
		w->disk = NULL;
		w->end = limit;
		return 0;
	}
	if (!d->parent)
		return vhd_set_error(-ENOENT, "%s: parent not opened", d->path);
	return vhd_locate(d->parent, off, limit, depth + 1, w);
}

int vhd_locate(struct vhd_disk *d, uint64_t off, uint64_t limit, int depth,
	       struct vhd_where *w)
{
	uint64_t block_off, block_end, data_off;
	uint32_t block, s, e, run;
	uint8_t *map;
	bool set;
	int r;

	if (d->vhdx)
		return vhdx_locate(d, off, limit, depth, w);
	w->depth = depth;
	w->disk = NULL;
	if (off >= d->size) {
		w->end = limit;
		return 0;
	}
	if (limit > d->size)
		limit = d->size;
	if (d->footer.disk_type == VHD_TYPE_FIXED) {
		w->disk = d;
		w->file_off = off;
		w->end = limit;
		return 0;
	}
	block = (uint32_t)(off / d->block_size);
	block_off = (uint64_t)block * d->block_size;
	block_end = block_off + d->block_size;
	if (block_end > limit)
		block_end = limit;
	if (d->bat[block] == VHD_BAT_UNUSED)
		return below(d, off, block_end, depth, w);
	data_off = (uint64_t)d->bat[block] * VHD_SECTOR_SIZE + d->bitmap_size +
		   (off - block_off);
	if (d->footer.disk_type == VHD_TYPE_DYNAMIC) {
		w->disk = d;
		w->file_off = data_off;
		w->end = block_end;
		return 0;
	}
	r = vhd_bitmap_get(d, block, &map);
	if (r < 0)
		return r;
	s = (uint32_t)((off - block_off) / VHD_SECTOR_SIZE);
	e = (uint32_t)((block_end - block_off + VHD_SECTOR_SIZE - 1) /
		       VHD_SECTOR_SIZE);
	run = vhd_bitmap_run(map, s, e, &set);
	block_end = block_off + (uint64_t)(s + run) * VHD_SECTOR_SIZE;
	if (block_end > limit)
		block_end = limit;
	if (!set)
		return below(d, off, block_end, depth, w);
	w->disk = d;
	w->file_off = data_off;
	w->end = block_end;
	return 0;
}

static bool continues(const struct vhd_extent *e, const struct vhd_where *w)
{
	if (e->depth < 0 || !w->disk)
		return e->depth < 0 && !w->disk;
	return e->depth == w->depth && e->file == w->disk->path &&
	       e->file_offset + e->length == w->file_off;
}

int vhd_map(struct vhd_disk *d, vhd_extent_fn fn, void *ctx)
{
	struct vhd_extent e = {0};
	uint64_t off = 0;
	int r = 0;

	vhd_clear_error();
	if (d->flags & VHD_OPEN_RDWR)
		pthread_rwlock_rdlock(&d->lock);
	while (off < d->size) {
		struct vhd_where w;

		r = vhd_locate(d, off, d->size, 0, &w);
		if (r < 0)
			break;
		if (e.length && continues(&e, &w)) {
			e.length += w.end - off;
		} else {
			if (e.length && (r = fn(ctx, &e)) != 0)
				break;
			e.offset = off;
			e.length = w.end - off;
			e.depth = w.disk ? w.depth : -1;
			e.file = w.disk ? w.disk->path : NULL;
			e.file_offset = w.disk ? w.file_off : 0;
		}
		off = w.end;
	}
	if (r == 0 && e.length)
		r = fn(ctx, &e);
	if (d->flags & VHD_OPEN_RDWR)
		pthread_rwlock_unlock(&d->lock);
	return r;
}
