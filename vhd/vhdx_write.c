// SPDX-License-Identifier: MIT
/*
 * Writing into a VHDX leaf. Data goes in place: into the block the BAT
 * maps, or a new 1 MiB-aligned block at the end of the file. The metadata
 * that makes it visible (BAT entries, sector bitmap sectors) changes in
 * memory and is queued; vhdx_flush_locked() makes the data durable, then
 * logs the queued sectors in one entry, syncs, writes them in place and
 * syncs (MS-VHDX's order), so a crash at any write leaves a file whose
 * log replay gives the old or the new metadata, never a pointer to data
 * that is not on disk. The first write of a session gives both headers a
 * new FileWriteGuid and DataWriteGuid first; the first log entry of a
 * session sets a LogGuid, which a clean close clears.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx_i.h"

#define SECTOR VHDX_LOG_SECTOR

int vhdx_begin_session(struct vhdx *x)
{
	int r;

	if (x->session)
		return 0;
	vhdx_guid_new(x->header.file_write_guid);
	if (!x->keep_data_guid)
		vhdx_guid_new(x->header.data_write_guid);
	r = vhdx_header_update(x);
	if (r == 0)
		x->session = true;
	return r;
}

int vhdx_renew_data_guid(struct vhdx *x)
{
	x->session = x->keep_data_guid = false;
	return vhdx_begin_session(x);
}

/* The queue slot of sector @off: an existing one, or a new one (at
 * x->ndirty, not yet counted). NULL when out of memory. */
static struct vhdx_dirty *dirty_slot(struct vhdx *x, uint64_t off)
{
	for (size_t i = 0; i < x->ndirty; i++)
		if (x->dirty[i].offset == off)
			return &x->dirty[i];
	if (x->ndirty == x->dirty_cap) {
		size_t cap = x->dirty_cap ? 2 * x->dirty_cap : 32;
		struct vhdx_dirty *p = realloc(x->dirty, cap * sizeof(*p));

		if (!p)
			return NULL;
		x->dirty = p;
		x->dirty_cap = cap;
	}
	return &x->dirty[x->ndirty];
}

static int mark_dirty(struct vhdx *x, uint64_t off, uint64_t chunk)
{
	struct vhdx_dirty *dd;

	off &= ~(uint64_t)(SECTOR - 1);
	dd = dirty_slot(x, off);
	if (!dd)
		return vhd_set_error(-ENOMEM, "out of memory");
	if (dd == &x->dirty[x->ndirty]) {
		dd->offset = off;
		dd->chunk = chunk;
		dd->data = NULL;
		x->ndirty++;
	}
	return 0;
}

int vhdx_queue_sector(struct vhdx *x, uint64_t off, const uint8_t *data)
{
	struct vhdx_dirty *dd = dirty_slot(x, off);
	uint8_t *copy = malloc(SECTOR);

	if (!dd || !copy) {
		free(copy);
		return vhd_set_error(-ENOMEM, "out of memory");
	}
	memcpy(copy, data, SECTOR);
	if (dd == &x->dirty[x->ndirty]) {
		dd->offset = off;
		dd->chunk = UINT64_MAX;
		x->ndirty++;
	} else {
		free(dd->data);
	}
	dd->data = copy;
	return 0;
}

void vhdx_dirty_clear(struct vhdx *x)
{
	for (size_t i = 0; i < x->ndirty; i++)
		free(x->dirty[i].data);
	x->ndirty = 0;
}

int vhdx_set_bat(struct vhdx *x, uint64_t idx, uint64_t e)
{
	x->bat[idx] = e;
	return mark_dirty(x, x->bat_region.offset + idx * 8, UINT64_MAX);
}

/* @len bytes (a 1 MiB multiple) of zeros at the end of the file, past
 * any region that reaches beyond it (an optional one may). */
static int alloc(struct vhdx *x, uint64_t len, uint64_t *out)
{
	uint64_t off;

	if (!x->alloc_end) {
		x->alloc_end = vhd_align_up(x->real_size, VHDX_MIB);
		if (x->regions_end > x->alloc_end)
			x->alloc_end = x->regions_end;
	}
	off = x->alloc_end;
	if (off + len > VHDX_MAX_FILE_OFFSET)
		return vhd_set_error(-EFBIG, "%s: file would exceed %llu bytes",
				     x->path, VHDX_MAX_FILE_OFFSET);
	if (ftruncate(x->fd, (off_t)(off + len)) < 0)
		return vhd_set_error(-errno, "%s: cannot grow the file: %s",
				     x->path, strerror(errno));
	x->alloc_end = off + len;
	x->real_size = x->file_size = off + len;
	*out = off;
	return 0;
}

static uint32_t slice_bytes(const struct vhdx *x)
{
	return x->sectors_per_block / 8;
}

/* File offset of block @b's slice in its chunk's sector bitmap. */
static uint64_t slice_offset(const struct vhdx *x, uint64_t b)
{
	uint64_t sb = x->bat[vhdx_sb_index(x, b / x->chunk_ratio)];

	return VHDX_BAT_OFFSET(sb) + (b % x->chunk_ratio) * slice_bytes(x);
}

/* Sectors [@s, @s + @n) of block @b now live in this file. */
static int set_bits(struct vhdx *x, uint64_t b, uint32_t s, uint32_t n)
{
	uint64_t first_dirty = UINT64_MAX, last_dirty = 0;
	uint8_t *map;
	int r = vhdx_bitmap_get(x, b, &map);

	if (r < 0)
		return r;
	for (uint32_t k = s; k < s + n; k++) {
		if (map[k / 8] & (1u << (k % 8)))
			continue;
		map[k / 8] |= (uint8_t)(1u << (k % 8));
		if (first_dirty == UINT64_MAX)
			first_dirty = k / 8;
		last_dirty = k / 8;
	}
	if (first_dirty == UINT64_MAX)
		return 0;
	for (uint64_t o = first_dirty & ~(uint64_t)(SECTOR - 1);
	     o <= last_dirty; o += SECTOR) {
		r = mark_dirty(x, slice_offset(x, b) + o, b / x->chunk_ratio);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Give chunk @c a (zeroed) sector bitmap block if it has none. */
static int ensure_sb(struct vhdx *x, uint64_t c)
{
	uint64_t idx = vhdx_sb_index(x, c), off;
	int r;

	if (VHDX_BAT_STATE(x->bat[idx]) == VHDX_SB_PRESENT)
		return 0;
	r = alloc(x, VHDX_MIB, &off);
	if (r == 0)
		r = vhdx_set_bat(x, idx, off | VHDX_SB_PRESENT);
	return r;
}

int vhdx_write_file(struct vhdx *x, const void *buf, size_t len, uint64_t off)
{
	int r = vhd_io_write(x->fd, buf, len, off);

	if (r < 0)
		return vhd_set_error(
			r, "%s: write error at offset %" PRIu64 ": %s", x->path,
			off, strerror(-r));
	return 0;
}

/* Sector-aligned [@in, @in + @len) of payload block @b. */
static int write_block(struct vhdx *x, uint64_t b, uint32_t in,
		       const uint8_t *buf, size_t len)
{
	uint64_t idx = vhdx_payload_index(x, b), e = x->bat[idx], off;
	uint32_t ss = x->meta.logical_sector;
	unsigned st = VHDX_BAT_STATE(e);
	bool whole = in == 0 && len == x->meta.block_size;
	int r;

	if (st == VHDX_PAYLOAD_FULLY_PRESENT)
		return vhdx_write_file(x, buf, len, VHDX_BAT_OFFSET(e) + in);
	if (st == VHDX_PAYLOAD_PARTIALLY_PRESENT) {
		r = vhdx_write_file(x, buf, len, VHDX_BAT_OFFSET(e) + in);
		return r < 0 ? r
			     : set_bits(x, b, in / ss, (uint32_t)(len / ss));
	}
	/*
	 * A new block. Without a parent, or over ZERO/UNDEFINED/UNMAPPED
	 * (which must never expose the parent), unwritten sectors read the
	 * new block's zeros: FULLY_PRESENT. A child's NOT_PRESENT block
	 * keeps the parent's sectors: PARTIALLY_PRESENT with a bitmap.
	 */
	r = alloc(x, x->meta.block_size, &off);
	if (r == 0)
		r = vhdx_write_file(x, buf, len, off + in);
	if (r < 0)
		return r;
	if (!x->meta.has_parent || st != VHDX_PAYLOAD_NOT_PRESENT || whole)
		return vhdx_set_bat(x, idx, off | VHDX_PAYLOAD_FULLY_PRESENT);
	r = ensure_sb(x, b / x->chunk_ratio);
	if (r < 0)
		return r;
	/* the slice of a block that was not present means nothing */
	{
		uint8_t *fresh = calloc(1, slice_bytes(x));
		uint8_t *old;

		if (!fresh)
			return vhd_set_error(-ENOMEM, "out of memory");
		old = atomic_exchange(&x->bitmaps[b], fresh);
		free(old);
	}
	/* every byte of the slice is rewritten: all its sectors dirty */
	for (uint64_t o = 0; o < slice_bytes(x); o += SECTOR) {
		r = mark_dirty(x, slice_offset(x, b) + o, b / x->chunk_ratio);
		if (r < 0)
			return r;
	}
	r = set_bits(x, b, in / ss, (uint32_t)(len / ss));
	if (r == 0)
		r = vhdx_set_bat(x, idx, off | VHDX_PAYLOAD_PARTIALLY_PRESENT);
	return r;
}

/* Most metadata sectors one block's write can dirty. */
static size_t block_worst(const struct vhdx *x)
{
	return 2 + (slice_bytes(x) + SECTOR - 1) / SECTOR + 1;
}

static int write_aligned(struct vhd_disk *d, const uint8_t *buf, size_t len,
			 uint64_t off)
{
	struct vhdx *x = d->vhdx;
	uint32_t bs = x->meta.block_size;

	while (len) {
		uint64_t b = off / bs;
		uint32_t in = (uint32_t)(off % bs);
		size_t n = bs - in;
		int r;

		if (n > len)
			n = len;
		/* one block's metadata always fits in one log entry */
		if (x->ndirty + block_worst(x) > VHDX_LOG_MAX_DESC) {
			r = vhdx_flush_locked(x);
			if (r < 0)
				return r;
		}
		r = write_block(x, b, in, buf, n);
		if (r < 0)
			return r;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

int vhdx_write(struct vhd_disk *d, const uint8_t *buf, size_t len, uint64_t off)
{
	struct vhdx *x = d->vhdx;
	uint32_t ss = x->meta.logical_sector;
	uint64_t a = off / ss * ss, end = (off + len + ss - 1) / ss * ss;
	uint8_t *tmp;
	int r = vhdx_begin_session(x);

	if (r < 0)
		return r;
	if (a == off && end == off + len)
		return write_aligned(d, buf, len, off);
	/* partial sectors: read-modify-write of the edge sectors */
	tmp = malloc(end - a);
	if (!tmp)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = vhd_read_resolved(d, tmp, ss, a);
	if (r == 0 && end - ss > a)
		r = vhd_read_resolved(d, tmp + (end - ss - a), ss, end - ss);
	if (r == 0) {
		memcpy(tmp + (off - a), buf, len);
		r = write_aligned(d, tmp, end - a, a);
	}
	free(tmp);
	return r;
}

int vhdx_dirty_sector(struct vhdx *x, const struct vhdx_dirty *dd, uint8_t *out)
{
	int r;

	if (dd->data) {
		memcpy(out, dd->data, SECTOR);
		return 0;
	}
	r = vhdx_pread_file(x, out, SECTOR, dd->offset);
	if (r < 0)
		return r;
	if (dd->chunk == UINT64_MAX) {
		uint64_t first = (dd->offset - x->bat_region.offset) / 8;

		for (uint64_t i = 0; i < SECTOR / 8; i++)
			if (first + i < x->bat_entries)
				vhdx_put64(out + 8 * i, x->bat[first + i]);
		return 0;
	}
	/* the cached slices of the chunk's blocks this sector covers */
	{
		uint64_t c = dd->chunk, sb;
		uint64_t from, to, per = slice_bytes(x);

		sb = VHDX_BAT_OFFSET(x->bat[vhdx_sb_index(x, c)]);
		from = dd->offset - sb;
		to = from + SECTOR;
		for (uint64_t j = from / per; j * per < to; j++) {
			uint64_t b = c * x->chunk_ratio + j;
			uint64_t lo = j * per > from ? j * per : from;
			uint64_t hi = (j + 1) * per < to ? (j + 1) * per : to;
			uint8_t *map;

			if (j >= x->chunk_ratio || b >= x->payload_blocks)
				break;
			map = atomic_load(&x->bitmaps[b]);
			if (map)
				memcpy(out + (lo - from), map + (lo - j * per),
				       hi - lo);
		}
	}
	return 0;
}

int vhdx_flush_locked(struct vhdx *x)
{
	int r = vhd_io_sync(x->fd);

	if (r < 0)
		return vhd_set_error(r, "%s: sync failed: %s", x->path,
				     strerror(-r));
	if (!x->ndirty)
		return 0;
	if (!x->log_active) {
		vhdx_guid_new(x->header.log_guid);
		r = vhdx_header_update(x);
		if (r < 0)
			return r;
		x->log_active = true;
	}
	return vhdx_log_write_dirty(x);
}

int vhdx_close_locked(struct vhdx *x)
{
	int r = vhdx_flush_locked(x);

	if (r == 0 && x->log_active) {
		memset(x->header.log_guid, 0, 16);
		r = vhdx_header_update(x);
		if (r == 0)
			x->log_active = false;
	}
	return r;
}
