// SPDX-License-Identifier: MIT
/* Reading through the chain, copy-on-write writes, flush, data/hole map. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx_i.h"

static int read_file(struct vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	int r = vhd_io_read(d->fd, buf, len, off);

	if (r < 0)
		return vhd_set_error(r,
				     "%s: read error at offset %" PRIu64 ": %s",
				     d->path, off, strerror(-r));
	return 0;
}

static uint64_t block_data_off(const struct vhd_disk *d, uint32_t block)
{
	return (uint64_t)d->bat[block] * VHD_SECTOR_SIZE + d->bitmap_size;
}

int vhd_read_below(struct vhd_disk *d, uint8_t *buf, size_t len, uint64_t off)
{
	if (d->footer.disk_type != VHD_TYPE_DIFF) {
		memset(buf, 0, len);
		return 0;
	}
	if (!d->parent)
		return vhd_set_error(-ENOENT,
				     "%s: parent not opened (needed to read "
				     "offset %" PRIu64 ")",
				     d->path, off);
	return vhd_read_resolved(d->parent, buf, len, off);
}

/* @in is the byte offset inside the block, [in, in+len) inside it. */
static int read_block(struct vhd_disk *d, uint32_t block, uint32_t in,
		      uint8_t *buf, size_t len)
{
	uint64_t block_off = (uint64_t)block * d->block_size;
	uint32_t s, end;
	uint8_t *map;
	int r;

	if (d->bat[block] == VHD_BAT_UNUSED)
		return vhd_read_below(d, buf, len, block_off + in);
	/* Dynamic disks keep zeros in never-written sectors, as qemu reads. */
	if (d->footer.disk_type == VHD_TYPE_DYNAMIC)
		return read_file(d, buf, len, block_data_off(d, block) + in);
	r = vhd_bitmap_get(d, block, &map);
	if (r < 0)
		return r;
	end = (uint32_t)((in + len - 1) / VHD_SECTOR_SIZE + 1);
	for (s = in / VHD_SECTOR_SIZE; s < end;) {
		bool set;
		uint32_t run = vhd_bitmap_run(map, s, end, &set);
		uint64_t from = (uint64_t)s * VHD_SECTOR_SIZE;
		uint64_t to = (uint64_t)(s + run) * VHD_SECTOR_SIZE;

		if (from < in)
			from = in;
		if (to > in + len)
			to = in + len;
		if (set)
			r = read_file(d, buf + (from - in), to - from,
				      block_data_off(d, block) + from);
		else
			r = vhd_read_below(d, buf + (from - in), to - from,
					   block_off + from);
		if (r < 0)
			return r;
		s += run;
	}
	return 0;
}

int vhd_read_resolved(struct vhd_disk *d, uint8_t *buf, size_t len,
		      uint64_t off)
{
	if (off >= d->size) {
		memset(buf, 0, len);
		return 0;
	}
	if (len > d->size - off) {
		memset(buf + (d->size - off), 0, len - (d->size - off));
		len = (size_t)(d->size - off);
	}
	/* A fixed VHDX still maps its blocks through the BAT. */
	if (d->footer.disk_type == VHD_TYPE_FIXED && !d->vhdx)
		return read_file(d, buf, len, off);
	while (len) {
		uint32_t block = (uint32_t)(off / d->block_size);
		uint32_t in = (uint32_t)(off % d->block_size);
		size_t n = d->block_size - in;
		int r;

		if (n > len)
			n = len;
		r = d->vhdx ? vhdx_read_block(d, block, in, buf, n)
			    : read_block(d, block, in, buf, n);
		if (r < 0)
			return r;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void lock_read(struct vhd_disk *d)
{
	if (d->flags & VHD_OPEN_RDWR)
		pthread_rwlock_rdlock(&d->lock);
}

static void unlock(struct vhd_disk *d)
{
	if (d->flags & VHD_OPEN_RDWR)
		pthread_rwlock_unlock(&d->lock);
}

ssize_t vhd_pread(struct vhd_disk *d, void *buf, size_t len, uint64_t off)
{
	int r;

	vhd_clear_error();
	if (off >= d->size)
		return 0;
	if (len > d->size - off)
		len = (size_t)(d->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	lock_read(d);
	r = vhd_read_resolved(d, buf, len, off);
	unlock(d);
	return r < 0 ? r : (ssize_t)len;
}

static void mark_dirty(struct vhd_disk *d, uint32_t block)
{
	if (!d->dirty_flag[block]) {
		d->dirty_flag[block] = 1;
		d->dirty[d->ndirty++] = block;
	}
}

/* Set bits [first, first+n) in the cached bitmap; written at flush. */
static int mark_written(struct vhd_disk *d, uint32_t block, uint32_t first,
			uint32_t n)
{
	bool changed = false;
	uint8_t *map;
	int r;

	r = vhd_bitmap_get(d, block, &map);
	if (r < 0)
		return r;
	for (uint32_t i = first; i < first + n; i++) {
		if (!vhd_bit_test(map, i)) {
			vhd_bit_set(map, i);
			changed = true;
		}
	}
	if (changed)
		mark_dirty(d, block);
	return 0;
}

/*
 * Most blocks placed per footer move: a new block costs a sync only when
 * the room reserved by the previous move is used up. The room grows with
 * the image (as many blocks as it holds, up to this), so small images
 * stay small.
 */
#define RESERVE_BLOCKS 16u

/*
 * Move the trailing footer past the file's end to @new_footer, durably
 * first, so the file always ends in a valid footer; then zero the old
 * one, which lies where blocks will go (a dynamic disk reads a block's
 * unwritten sectors as they are in the file).
 */
static int move_footer(struct vhd_disk *d, uint64_t new_footer)
{
	static const uint8_t zeros[VHD_FOOTER_SIZE];
	uint64_t old = d->footer_off;
	uint64_t start = d->alloc_end;
	int r = vhd_footer_move(d, new_footer);

	if (r < 0)
		return r;
	d->alloc_end = start; /* the room begins where it did */
	return vhd_write_named(d, zeros, sizeof(zeros), old);
}

/*
 * A new block goes at alloc_end, before the footer. When it does not fit,
 * the footer first moves past it and room for more blocks (as many as the
 * image holds, up to RESERVE_BLOCKS - 1, and no more than are still
 * unallocated), durably; the space between stays a
 * hole of zeros that no BAT entry references, as after a crash, until
 * later blocks fill it or vhd_close() gives it back. Then the bitmap and
 * data go into place. The BAT entry only reaches the file at the next
 * flush, after the data is durable: a crash before it leaves an
 * unreferenced block, never a referenced block of unwritten data.
 */
static int alloc_block(struct vhd_disk *d, uint32_t block, uint32_t first,
		       uint32_t n, const uint8_t *src)
{
	uint64_t start, map_off, block_end;
	size_t gap;
	uint8_t *head, *map;
	int r;

	if (!d->alloc_end)
		d->alloc_end = d->footer_off;
	start = d->alloc_end;
	map_off = vhd_align_up(start + d->bitmap_size, VHD_DATA_ALIGN) -
		  d->bitmap_size;
	block_end = map_off + d->bitmap_size + d->block_size;
	gap = (size_t)(map_off - start);
	if (map_off / VHD_SECTOR_SIZE >= VHD_BAT_UNUSED)
		return vhd_set_error(
			-EFBIG, "%s: file too large for a new block", d->path);
	if (block_end > d->footer_off) {
		uint32_t held = vhd_bat_allocated(d);
		uint32_t more = d->entries - held - 1;
		uint64_t step = vhd_align_up(d->bitmap_size, VHD_DATA_ALIGN) +
				d->block_size;

		if (more > held)
			more = held;
		if (more > RESERVE_BLOCKS - 1)
			more = RESERVE_BLOCKS - 1;
		r = move_footer(d, block_end + more * step);
		if (r < 0)
			return r;
	}
	head = calloc(1, gap + d->bitmap_size);
	map = malloc(d->bitmap_size);
	if (!head || !map) {
		r = vhd_set_error(-ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = first; i < first + n; i++)
		vhd_bit_set(head + gap, i);
	/* Zeros over the gap, then the bitmap, then the data. */
	r = vhd_write_named(d, head, gap + d->bitmap_size, start);
	if (r == 0)
		r = vhd_write_named(d, src, (size_t)n * VHD_SECTOR_SIZE,
				    map_off + d->bitmap_size +
					    (uint64_t)first * VHD_SECTOR_SIZE);
	if (r < 0)
		goto out;
	d->alloc_end = block_end;
	d->bat[block] = (uint32_t)(map_off / VHD_SECTOR_SIZE);
	memcpy(map, head + gap, d->bitmap_size);
	atomic_store(&d->bitmaps[block], map);
	map = NULL;
	mark_dirty(d, block);
out:
	free(map);
	free(head);
	return r;
}

/*
 * Give back the space reserved past the last block: the footer goes right
 * after it (durably) before the file is cut, so the file ends in a valid
 * footer throughout. Caller holds the write lock; metadata is flushed.
 */
int vhd_trim_locked(struct vhd_disk *d)
{
	uint64_t end = d->alloc_end;

	if (!end || end >= d->footer_off)
		return 0;
	return vhd_footer_move(d, end);
}

static int write_sectors(struct vhd_disk *d, uint64_t sector, uint64_t count,
			 const uint8_t *src)
{
	while (count) {
		uint32_t block = (uint32_t)(sector / d->sectors_per_block);
		uint32_t first = (uint32_t)(sector % d->sectors_per_block);
		uint32_t n = d->sectors_per_block - first;
		int r;

		if (n > count)
			n = (uint32_t)count;
		if (d->bat[block] == VHD_BAT_UNUSED) {
			r = alloc_block(d, block, first, n, src);
		} else {
			r = vhd_write_named(d, src, (size_t)n * VHD_SECTOR_SIZE,
					    block_data_off(d, block) +
						    (uint64_t)first *
							    VHD_SECTOR_SIZE);
			if (r == 0)
				r = mark_written(d, block, first, n);
		}
		if (r < 0)
			return r;
		src += (size_t)n * VHD_SECTOR_SIZE;
		sector += n;
		count -= n;
	}
	return 0;
}

/* A sub-sector write: the resolved sector, patched, written whole. */
static int write_partial(struct vhd_disk *d, const uint8_t *src, size_t len,
			 uint64_t off)
{
	uint8_t sector[VHD_SECTOR_SIZE];
	uint64_t start = off / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
	int r = vhd_read_resolved(d, sector, sizeof(sector), start);

	if (r < 0)
		return r;
	memcpy(sector + (off - start), src, len);
	return write_sectors(d, start / VHD_SECTOR_SIZE, 1, sector);
}

static int write_range(struct vhd_disk *d, const uint8_t *src, size_t len,
		       uint64_t off)
{
	size_t head =
		(VHD_SECTOR_SIZE - off % VHD_SECTOR_SIZE) % VHD_SECTOR_SIZE;
	size_t whole;
	int r;

	if (d->footer.disk_type == VHD_TYPE_FIXED)
		return vhd_write_named(d, src, len, off);
	if (head > len)
		head = len;
	if (head) {
		r = write_partial(d, src, head, off);
		if (r < 0)
			return r;
		src += head;
		off += head;
		len -= head;
	}
	whole = len / VHD_SECTOR_SIZE * VHD_SECTOR_SIZE;
	if (whole) {
		r = write_sectors(d, off / VHD_SECTOR_SIZE,
				  whole / VHD_SECTOR_SIZE, src);
		if (r < 0)
			return r;
		src += whole;
		off += whole;
		len -= whole;
	}
	if (len)
		return write_partial(d, src, len, off);
	return 0;
}

/*
 * Queue @block for the next flush from under the shared lock: writers of
 * distinct blocks race here, the flag decides which one appends.
 */
static void mark_dirty_shared(struct vhd_disk *d, uint32_t block)
{
	if (__atomic_load_n(&d->dirty_flag[block], __ATOMIC_RELAXED) ||
	    __atomic_exchange_n(&d->dirty_flag[block], 1, __ATOMIC_RELAXED))
		return;
	d->dirty[__atomic_fetch_add(&d->ndirty, 1, __ATOMIC_RELAXED)] = block;
}

/*
 * Write whole sectors into blocks the image already holds, under the
 * shared lock, so writers of distinct blocks (and readers) run in
 * parallel: the data goes where it is, then the sectors' bits are set in
 * the cached bitmap (atomically: writers of one block share its bytes),
 * so a reader that sees a bit reads the new data. The bitmap reaches the
 * file at the next flush, as on the exclusive path. -EAGAIN (nothing
 * written) when any part needs the exclusive path: a new block, a
 * partial sector.
 */
static int write_allocated(struct vhd_disk *d, const uint8_t *src, size_t len,
			   uint64_t off)
{
	uint64_t sector = off / VHD_SECTOR_SIZE, count, s;
	uint8_t *map;

	if (d->footer.disk_type == VHD_TYPE_FIXED)
		return vhd_write_named(d, src, len, off);
	if (off % VHD_SECTOR_SIZE || len % VHD_SECTOR_SIZE)
		return -EAGAIN;
	count = len / VHD_SECTOR_SIZE;
	/* Check everything first: a failure must leave nothing written. */
	for (s = sector; s < sector + count;) {
		uint32_t block = (uint32_t)(s / d->sectors_per_block);

		if (d->bat[block] == VHD_BAT_UNUSED ||
		    vhd_bitmap_get(d, block, &map))
			return -EAGAIN;
		s = ((uint64_t)block + 1) * d->sectors_per_block;
	}
	for (s = sector; s < sector + count;) {
		uint32_t block = (uint32_t)(s / d->sectors_per_block);
		uint32_t first = (uint32_t)(s % d->sectors_per_block);
		uint32_t n = d->sectors_per_block - first;
		bool changed = false;
		int r;

		if (n > sector + count - s)
			n = (uint32_t)(sector + count - s);
		r = vhd_write_named(d, src, (size_t)n * VHD_SECTOR_SIZE,
				    block_data_off(d, block) +
					    (uint64_t)first * VHD_SECTOR_SIZE);
		if (r < 0)
			return r;
		map = atomic_load(&d->bitmaps[block]);
		for (uint32_t i = first; i < first + n; i++)
			if (!vhd_bit_test(map, i))
				changed |= vhd_bit_set_atomic(map, i);
		if (changed)
			mark_dirty_shared(d, block);
		src += (size_t)n * VHD_SECTOR_SIZE;
		s += n;
	}
	return 0;
}

ssize_t vhd_pwrite(struct vhd_disk *d, const void *buf, size_t len,
		   uint64_t off)
{
	int r;

	vhd_clear_error();
	if (!(d->flags & VHD_OPEN_RDWR))
		return vhd_set_error(-EROFS, "%s: opened read-only", d->path);
	if (!len)
		return 0;
	if (off >= d->size)
		return vhd_set_error(-ENOSPC,
				     "%s: write at offset %" PRIu64
				     " is past the end of the disk (%" PRIu64
				     " bytes)",
				     d->path, off, d->size);
	if (len > d->size - off)
		len = (size_t)(d->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	/*
	 * Writes into blocks the image already holds change only cached
	 * bitmap bits: such writes share the lock, so writers of distinct
	 * blocks (and readers) run in parallel. A new block or a partial
	 * sector's read-modify-write takes it exclusively.
	 */
	if (d->vhdx) {
		pthread_rwlock_wrlock(&d->lock);
		r = vhdx_write(d, buf, len, off);
		pthread_rwlock_unlock(&d->lock);
		return r < 0 ? r : (ssize_t)len;
	}
	pthread_rwlock_rdlock(&d->lock);
	r = write_allocated(d, buf, len, off);
	pthread_rwlock_unlock(&d->lock);
	if (r == -EAGAIN) {
		pthread_rwlock_wrlock(&d->lock);
		r = write_range(d, buf, len, off);
		pthread_rwlock_unlock(&d->lock);
	}
	return r < 0 ? r : (ssize_t)len;
}

/*
 * Data first (sync), then the metadata that points at it (sync). A dirty
 * block stays queued until its bitmap and BAT entry are written.
 */
int vhd_flush_locked(struct vhd_disk *d)
{
	uint32_t kept = 0;
	int r;

	if (d->vhdx)
		return vhdx_flush_locked(d->vhdx);
	r = vhd_sync_named(d);

	if (r < 0 || !d->ndirty)
		return r;
	for (uint32_t i = 0; i < d->ndirty; i++) {
		uint32_t block = d->dirty[i];
		uint8_t *map = atomic_load(&d->bitmaps[block]);

		if (r == 0)
			r = vhd_write_named(d, map, d->bitmap_size,
					    (uint64_t)d->bat[block] *
						    VHD_SECTOR_SIZE);
		if (r == 0) {
			r = vhd_bat_write_entry(d, block);
			if (r < 0)
				vhd_set_error(r,
					      "%s: cannot write block "
					      "table entry %u: %s",
					      d->path, block, strerror(-r));
		}
		if (r < 0)
			d->dirty[kept++] = block;
		else
			d->dirty_flag[block] = 0;
	}
	d->ndirty = kept;
	if (r == 0)
		r = vhd_sync_named(d);
	return r;
}

int vhd_flush(struct vhd_disk *d)
{
	int r;

	vhd_clear_error();
	if (!(d->flags & VHD_OPEN_RDWR))
		return 0;
	pthread_rwlock_wrlock(&d->lock);
	r = vhd_flush_locked(d);
	pthread_rwlock_unlock(&d->lock);
	return r;
}

int vhd_settle(struct vhd_disk *d)
{
	int r;

	vhd_clear_error();
	if (d->vhdx ? !d->vhdx->rw : !(d->flags & VHD_OPEN_RDWR))
		return 0;
	pthread_rwlock_wrlock(&d->lock);
	if (d->vhdx) {
		r = vhdx_close_locked(d->vhdx);
	} else {
		r = vhd_flush_locked(d);
		if (r == 0)
			r = vhd_trim_locked(d);
	}
	pthread_rwlock_unlock(&d->lock);
	return r;
}

static int64_t seek(struct vhd_disk *d, uint64_t off, bool want_data)
{
	int64_t result = -ENXIO;

	vhd_clear_error();
	lock_read(d);
	while (off < d->size) {
		struct vhd_where w;
		uint64_t end;
		bool data;
		int r;

		if (d->vhdx) {
			r = vhdx_extent(d, off, d->size, &data, &end);
		} else {
			r = vhd_locate(d, off, d->size, 0, &w);
			data = w.disk != NULL;
			end = w.end;
		}
		if (r < 0) {
			result = r;
			break;
		}
		if (data == want_data) {
			result = (int64_t)off;
			break;
		}
		off = end;
		if (!want_data && off >= d->size)
			result = (int64_t)d->size;
	}
	unlock(d);
	return result;
}

int64_t vhd_seek_data(struct vhd_disk *d, uint64_t off)
{
	return seek(d, off, true);
}

int64_t vhd_seek_hole(struct vhd_disk *d, uint64_t off)
{
	return seek(d, off, false);
}
