// SPDX-License-Identifier: MIT
/*
 * Growing a fixed or dynamic disk. The size lives in the footer, so the
 * footer is written last: everything the bigger disk needs (zeroed tail,
 * BAT room) is made durable first, under the old size.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

#define FILL_CHUNK 65536u

struct expander {
	struct vhd_disk *d;
	struct vhd_progress p;
};

static int tick(struct expander *e, uint64_t add)
{
	return vhd_progress_add(&e->p, add);
}

static int write_fill(struct vhd_disk *d, uint8_t byte, uint64_t from,
		      uint64_t to)
{
	uint8_t *fill = malloc(FILL_CHUNK);
	int r = 0;

	if (!fill)
		return vhd_set_error(-ENOMEM, "out of memory");
	memset(fill, byte, FILL_CHUNK);
	for (uint64_t off = from; r == 0 && off < to;) {
		size_t n =
			to - off < FILL_CHUNK ? (size_t)(to - off) : FILL_CHUNK;

		r = vhd_write_named(d, fill, n, off);
		off += n;
	}
	free(fill);
	return r;
}

/* The new size in the footer (both copies of a dynamic disk). */
static int write_size(struct vhd_disk *d, uint64_t size)
{
	uint8_t buf[VHD_FOOTER_SIZE];
	int r;

	d->footer.current_size = size;
	/* vhd_create writes original = current so every reader agrees. */
	d->footer.original_size = size;
	vhd_geometry(size, &d->footer.cylinders, &d->footer.heads,
		     &d->footer.sectors_per_track);
	vhd_footer_encode(&d->footer, buf);
	r = vhd_write_named(d, buf, sizeof(buf), d->footer_off);
	if (r == 0)
		r = vhd_sync_named(d);
	if (r == 0 && d->footer.disk_type != VHD_TYPE_FIXED)
		r = vhd_write_named(d, buf, sizeof(buf), 0);
	if (r == 0)
		r = vhd_sync_named(d);
	return r;
}

/*
 * Fixed: move the footer (still the old size) past the new data end, zero
 * the old footer's sectors, then write the new size. The gap in between
 * is a hole and reads zeros.
 */
static int expand_fixed(struct vhd_disk *d, uint64_t size)
{
	uint64_t tail = d->footer_off + VHD_FOOTER_SIZE;
	int r;

	r = vhd_footer_move(d, size);
	if (r == 0)
		r = write_fill(d, 0, d->size, tail < size ? tail : size);
	if (r == 0)
		r = vhd_sync_named(d);
	if (r == 0)
		r = write_size(d, size);
	return r;
}

/* Anything but a block in [from, to)? Then the BAT cannot grow there. */
static bool metadata_in(const struct vhd_disk *d, uint64_t from, uint64_t to)
{
	uint64_t h = d->footer.data_offset;

	if (h < to && h + VHD_HEADER_SIZE > from)
		return true;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const struct vhd_locator *l = &d->header.loc[i];

		if (l->code && l->data_offset < to &&
		    l->data_offset + vhd_locator_space_bytes(l) > from)
			return true;
	}
	return from < VHD_FOOTER_SIZE;
}

/* Blocks in the BAT's way go to the end of the file, lowest first. */
static int make_bat_room(struct expander *e, uint64_t from, uint64_t to)
{
	struct vhd_disk *d = e->d;
	uint64_t span = vhd_block_span(d);
	int r = 0;

	for (;;) {
		uint64_t low = UINT64_MAX, dest;
		uint32_t pick = 0;

		for (uint32_t b = 0; b < d->entries; b++) {
			uint64_t s = (uint64_t)d->bat[b] * VHD_SECTOR_SIZE;

			if (d->bat[b] != VHD_BAT_UNUSED && s < to &&
			    s + span > from && s < low) {
				low = s;
				pick = b;
			}
		}
		if (low == UINT64_MAX)
			return 0;
		dest = vhd_block_place(d, d->footer_off);
		r = vhd_footer_move(d, dest + span);
		if (r == 0)
			r = vhd_block_move(d, pick, dest);
		if (r == 0)
			r = tick(e, span);
		if (r < 0)
			return r;
	}
}

static int expand_dynamic(struct expander *e, uint64_t size)
{
	struct vhd_disk *d = e->d;
	struct vhd_header *h = &d->header;
	uint64_t need = (size + d->block_size - 1) / d->block_size;
	uint64_t bat_end =
		h->table_offset + vhd_align_up(need * 4, VHD_SECTOR_SIZE);
	uint64_t old_end = h->table_offset +
			   vhd_align_up((uint64_t)h->max_table_entries * 4,
					VHD_SECTOR_SIZE);
	uint8_t buf[VHD_HEADER_SIZE];
	int r;

	if (need > VHD_MAX_USED_ENTRIES)
		return vhd_set_error(-EFBIG,
				     "%s: %" PRIu64 " blocks of %u bytes is "
				     "more than this library supports",
				     d->path, need, d->block_size);
	if (need > h->max_table_entries) {
		if (bat_end > old_end && metadata_in(d, old_end, bat_end))
			return vhd_set_error(-ENOSPC,
					     "%s: the block table cannot grow: "
					     "metadata follows it",
					     d->path);
		/* A table growing past the data pushes the footer first. */
		if (bat_end > d->footer_off) {
			r = vhd_footer_move(d, bat_end);
			if (r < 0)
				return r;
		}
		if (bat_end > old_end) {
			r = make_bat_room(e, old_end, bat_end);
			if (r < 0)
				return r;
		}
	}
	/* New entries unused (padding may hold anything), then the header. */
	r = write_fill(d, 0xFF, h->table_offset + (uint64_t)d->entries * 4,
		       h->table_offset + need * 4);
	if (r == 0)
		r = vhd_sync_named(d);
	if (r == 0 && need > h->max_table_entries) {
		h->max_table_entries = (uint32_t)need;
		vhd_header_encode(h, buf);
		r = vhd_write_named(d, buf, sizeof(buf), d->footer.data_offset);
		if (r == 0)
			r = vhd_sync_named(d);
	}
	if (r == 0)
		r = write_size(d, size);
	return r;
}

/*
 * Already at @size: an interrupted expansion may have left the footer
 * copy at offset 0 with the old size; finish it.
 */
static int finish(struct vhd_disk *d)
{
	uint8_t want[VHD_FOOTER_SIZE], have[VHD_FOOTER_SIZE];
	int r;

	if (d->footer.disk_type == VHD_TYPE_FIXED)
		return 0;
	vhd_footer_encode(&d->footer, want);
	r = vhd_io_read(d->fd, have, sizeof(have), 0);
	if (r == 0 && !memcmp(want, have, sizeof(want)))
		return 0;
	r = vhd_write_named(d, want, sizeof(want), 0);
	return r ? r : vhd_sync_named(d);
}

static int refuse(struct vhd_disk *d, uint64_t size)
{
	int r;

	if (d->footer.disk_type == VHD_TYPE_DIFF)
		return vhd_set_error(-EOPNOTSUPP,
				     "%s: a differencing disk cannot be "
				     "expanded (its size is its parent's)",
				     d->path);
	r = vhd_check_rewritable(d);
	if (r < 0)
		return r;
	if (size < d->size)
		return vhd_set_error(-EINVAL,
				     "%s: %" PRIu64 " bytes is smaller than "
				     "the disk (%" PRIu64 " bytes); %s cannot "
				     "shrink",
				     d->path, size, d->size,
				     d->vhdx ? "VHDX images" : "VHDs");
	if (d->vhdx && size > VHDX_MAX_SIZE)
		return vhd_set_error(-EFBIG,
				     "%s: size %" PRIu64 " exceeds the 64 "
				     "TiB VHDX limit",
				     d->path, size);
	if (!d->vhdx && size > VHD_MAX_SIZE)
		return vhd_set_error(-EFBIG,
				     "%s: size %" PRIu64 " exceeds the 2040 "
				     "GiB VHD limit",
				     d->path, size);
	return 0;
}

/* A VHDX: its size is a multiple of its logical sector size. */
static int expand_vhdx(struct expander *e, uint64_t new_size)
{
	struct vhd_disk *d = e->d;
	uint32_t lss = d->vhdx->meta.logical_sector;
	uint64_t size = new_size > VHDX_MAX_SIZE
				? new_size /* no overflow in the rounding */
				: vhd_align_up(new_size, lss);
	int r = refuse(d, size);

	if (r < 0 || size == d->size)
		return r;
	e->p.total = 1;
	r = tick(e, 0);
	if (r == 0)
		r = vhdx_expand(d, size);
	if (r == 0) {
		d->size = size;
		vhd_progress_end(&e->p);
	}
	return r;
}

int vhd_expand(const char *path, uint64_t new_size, vhd_progress_fn progress,
	       void *ctx)
{
	uint64_t size = vhd_align_up(new_size, VHD_SECTOR_SIZE);
	struct expander e = {.p = {.fn = progress,
				   .ctx = ctx,
				   .path = path,
				   .what = "expansion"}};
	struct vhd_disk *d;
	int r;

	vhd_clear_error();
	if (new_size > VHD_MAX_SIZE)
		size = new_size; /* no overflow in the rounding */
	r = vhd_open(path, VHD_OPEN_RDWR | VHD_OPEN_NOPARENT, &d);
	if (r < 0)
		return r;
	e.d = d;
	if (d->vhdx) {
		r = expand_vhdx(&e, new_size);
		goto out;
	}
	r = refuse(d, size);
	if (r == 0 && size == d->size)
		r = finish(d);
	if (r < 0 || size == d->size)
		goto out;
	/* Worst case: every block moves out of the BAT's way. */
	e.p.total =
		d->footer.disk_type == VHD_TYPE_FIXED
			? 1
			: (uint64_t)vhd_bat_allocated(d) * vhd_block_span(d) +
				  1;
	r = tick(&e, 0);
	if (r == 0)
		r = d->footer.disk_type == VHD_TYPE_FIXED
			    ? expand_fixed(d, size)
			    : expand_dynamic(&e, size);
	if (r == 0)
		d->size = size;
	if (r == 0)
		vhd_progress_end(&e.p);
out:
	return vhd_close_keep(d, r);
}
