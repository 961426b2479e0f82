// SPDX-License-Identifier: MIT
/*
 * Reading a VHDX chain member: per block by BAT state, per sector by the
 * chunk's sector bitmap for partially present blocks; what this file does
 * not hold comes from the parent (vhd_read_resolved) or reads zeros.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "vhdx_i.h"

/* Length of the run of sectors from @first (< @end) with the same bit;
 * VHDX bitmaps are least significant bit first. */
static uint32_t bit_run(const uint8_t *map, uint32_t first, uint32_t end,
			bool *set)
{
	bool want = map[first / 8] & (1u << (first % 8));
	uint32_t i = first + 1;

	while (i < end) {
		if (i % 8 == 0 && end - i >= 8 &&
		    map[i / 8] == (want ? 0xFF : 0x00)) {
			i += 8;
			continue;
		}
		if (!!(map[i / 8] & (1u << (i % 8))) != want)
			break;
		i++;
	}
	*set = want;
	return i - first;
}

static int read_partial(struct vhd_disk *d, uint64_t b, uint32_t in,
			uint8_t *buf, size_t len)
{
	struct vhdx *x = d->vhdx;
	uint32_t ss = x->meta.logical_sector;
	uint64_t block_off = b * x->meta.block_size;
	uint64_t data = VHDX_BAT_OFFSET(x->bat[vhdx_payload_index(x, b)]);
	uint32_t s, end = (uint32_t)((in + len - 1) / ss + 1);
	uint8_t *map;
	int r = vhdx_bitmap_get(x, b, &map);

	if (r < 0)
		return r;
	for (s = in / ss; s < end;) {
		bool set;
		uint32_t run = bit_run(map, s, end, &set);
		uint64_t from = (uint64_t)s * ss, to = (uint64_t)(s + run) * ss;

		if (from < in)
			from = in;
		if (to > in + len)
			to = in + len;
		if (set)
			r = vhdx_pread_file(x, buf + (from - in), to - from,
					    data + from);
		else
			r = vhd_read_below(d, buf + (from - in), to - from,
					   block_off + from);
		if (r < 0)
			return r;
		s += run;
	}
	return 0;
}

int vhdx_read_block(struct vhd_disk *d, uint64_t b, uint32_t in, uint8_t *buf,
		    size_t len)
{
	struct vhdx *x = d->vhdx;
	uint64_t e = x->bat[vhdx_payload_index(x, b)];

	switch (VHDX_BAT_STATE(e)) {
	case VHDX_PAYLOAD_NOT_PRESENT:
		return vhd_read_below(d, buf, len, b * x->meta.block_size + in);
	case VHDX_PAYLOAD_FULLY_PRESENT:
		return vhdx_pread_file(x, buf, len, VHDX_BAT_OFFSET(e) + in);
	case VHDX_PAYLOAD_PARTIALLY_PRESENT:
		return read_partial(d, b, in, buf, len);
	default:
		/* UNDEFINED, ZERO, UNMAPPED: zeros, never the parent. */
		memset(buf, 0, len);
		return 0;
	}
}

static int extent_below(struct vhd_disk *d, uint64_t off, uint64_t limit,
			bool *data, uint64_t *end)
{
	if (!d->vhdx->meta.has_parent) {
		*data = false;
		*end = limit;
		return 0;
	}
	if (!d->parent)
		return vhd_set_error(-ENOENT, "%s: parent not opened", d->path);
	return vhdx_extent(d->parent, off, limit, data, end);
}

int vhdx_own_extent(struct vhd_disk *d, uint64_t off, uint64_t limit,
		    enum vhdx_own *own, uint64_t *end)
{
	struct vhdx *x = d->vhdx;
	uint32_t bs = x->meta.block_size, ss = x->meta.logical_sector;
	uint64_t b = off / bs, block_off = b * bs, block_end = block_off + bs;
	uint32_t s, e, run;
	uint8_t *map;
	bool set;
	int r;

	if (off >= d->size) {
		*own = VHDX_OWN_ZERO;
		*end = limit;
		return 0;
	}
	if (limit > d->size)
		limit = d->size;
	if (block_end > limit)
		block_end = limit;
	*end = block_end;
	switch (VHDX_BAT_STATE(x->bat[vhdx_payload_index(x, b)])) {
	case VHDX_PAYLOAD_NOT_PRESENT:
		*own = VHDX_OWN_BELOW;
		return 0;
	case VHDX_PAYLOAD_FULLY_PRESENT:
		*own = VHDX_OWN_DATA;
		return 0;
	case VHDX_PAYLOAD_PARTIALLY_PRESENT:
		break;
	default:
		*own = VHDX_OWN_ZERO;
		return 0;
	}
	r = vhdx_bitmap_get(x, b, &map);
	if (r < 0)
		return r;
	s = (uint32_t)((off - block_off) / ss);
	e = (uint32_t)((block_end - block_off + ss - 1) / ss);
	run = bit_run(map, s, e, &set);
	block_end = block_off + (uint64_t)(s + run) * ss;
	*end = block_end > limit ? limit : block_end;
	*own = set ? VHDX_OWN_DATA : VHDX_OWN_BELOW;
	return 0;
}

int vhdx_extent(struct vhd_disk *d, uint64_t off, uint64_t limit, bool *data,
		uint64_t *end)
{
	enum vhdx_own own;
	int r = vhdx_own_extent(d, off, limit, &own, end);

	if (r < 0)
		return r;
	if (own == VHDX_OWN_BELOW)
		return extent_below(d, off, *end, data, end);
	*data = own == VHDX_OWN_DATA;
	return 0;
}

int vhdx_locate(struct vhd_disk *d, uint64_t off, uint64_t limit, int depth,
		struct vhd_where *w)
{
	struct vhdx *x = d->vhdx;
	enum vhdx_own own;
	int r = vhdx_own_extent(d, off, limit, &own, &w->end);

	w->depth = depth;
	w->disk = NULL;
	if (r < 0)
		return r;
	if (own == VHDX_OWN_DATA) {
		uint32_t bs = x->meta.block_size;
		uint64_t e = x->bat[vhdx_payload_index(x, off / bs)];

		w->disk = d;
		w->file_off = VHDX_BAT_OFFSET(e) + off % bs;
	} else if (own == VHDX_OWN_BELOW && x->meta.has_parent) {
		if (!d->parent)
			return vhd_set_error(-ENOENT, "%s: parent not opened",
					     d->path);
		return vhd_locate(d->parent, off, w->end, depth + 1, w);
	}
	return 0;
}
