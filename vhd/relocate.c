// SPDX-License-Identifier: MIT
/*
 * Moving blocks and the footer inside an image file, in the order that
 * keeps every sector readable across a crash: the destination is written
 * and synced before anything points at it, and the old place is reused
 * only after the pointer to the new one is durable.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd_i.h"

#define COPY_CHUNK (1u << 20)

int vhd_check_rewritable(const struct vhd_disk *d)
{
	if (d->footer.saved_state)
		return vhd_set_error(-EPERM,
				     "%s: saved-state flag is set (the VM "
				     "was saved with this disk)",
				     d->path);
	if (d->footer_from_copy)
		return vhd_set_error(-EINVAL,
				     "%s: trailing footer is damaged; run "
				     "vhd repair first",
				     d->path);
	return 0;
}

uint64_t vhd_block_place(const struct vhd_disk *d, uint64_t from)
{
	/* Block data on 4 KiB boundaries, as vhd_pwrite allocates. */
	return vhd_align_up(from + d->bitmap_size, VHD_DATA_ALIGN) -
	       d->bitmap_size;
}

uint64_t vhd_block_span(const struct vhd_disk *d)
{
	return (uint64_t)d->bitmap_size + d->block_size;
}

/* Bytes of block @block that exist in the file (the last may be short). */
static uint64_t stored_len(const struct vhd_disk *d, uint32_t block)
{
	uint64_t data = vhd_align_up(d->size - (uint64_t)block * d->block_size,
				     VHD_SECTOR_SIZE);

	if (data > d->block_size)
		data = d->block_size;
	return d->bitmap_size + data;
}

int vhd_sync_named(struct vhd_disk *d)
{
	int r = vhd_io_sync(d->fd);

	if (r < 0)
		return vhd_set_error(r, "%s: sync failed: %s", d->path,
				     strerror(-r));
	return 0;
}

int vhd_write_named(struct vhd_disk *d, const void *buf, size_t len,
		    uint64_t off)
{
	int r = vhd_io_write(d->fd, buf, len, off);

	if (r < 0)
		return vhd_set_error(
			r, "%s: write error at offset %" PRIu64 ": %s", d->path,
			off, strerror(-r));
	return 0;
}

int vhd_footer_move(struct vhd_disk *d, uint64_t off)
{
	uint8_t footer[VHD_FOOTER_SIZE];
	int r;

	vhd_footer_encode(&d->footer, footer);
	r = vhd_write_named(d, footer, sizeof(footer), off);
	if (r == 0)
		r = vhd_sync_named(d);
	if (r < 0)
		return r;
	if (off < d->footer_off) {
		/* The old footer past @off is now garbage: cut it off. */
		if (ftruncate(d->fd, (off_t)(off + VHD_FOOTER_SIZE)) < 0)
			return vhd_set_error(-errno, "%s: cannot truncate: %s",
					     d->path, strerror(errno));
		r = vhd_sync_named(d);
		if (r < 0)
			return r;
	}
	d->footer_off = off;
	/* Room reserved for new blocks (io.c) is gone or in the way. */
	d->alloc_end = 0;
	return 0;
}

int vhd_block_move(struct vhd_disk *d, uint32_t block, uint64_t dest)
{
	uint64_t src = (uint64_t)d->bat[block] * VHD_SECTOR_SIZE;
	uint64_t len = stored_len(d, block);
	uint32_t old = d->bat[block];
	uint8_t *buf;
	int r = 0;

	if (dest % VHD_SECTOR_SIZE || dest / VHD_SECTOR_SIZE >= VHD_BAT_UNUSED)
		return vhd_set_error(-EFBIG,
				     "%s: no valid place for block %u at "
				     "offset %" PRIu64,
				     d->path, block, dest);
	buf = malloc(COPY_CHUNK);
	if (!buf)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (uint64_t done = 0; r == 0 && done < len;) {
		size_t n = len - done < COPY_CHUNK ? (size_t)(len - done)
						   : COPY_CHUNK;

		r = vhd_io_read(d->fd, buf, n, src + done);
		if (r < 0) {
			vhd_set_error(r, "%s: cannot read block %u: %s",
				      d->path, block, strerror(-r));
			break;
		}
		r = vhd_write_named(d, buf, n, dest + done);
		done += n;
	}
	free(buf);
	if (r == 0)
		r = vhd_sync_named(d);
	if (r < 0)
		return r;
	d->bat[block] = (uint32_t)(dest / VHD_SECTOR_SIZE);
	r = vhd_bat_write_entry(d, block);
	if (r == 0)
		r = vhd_io_sync(d->fd);
	if (r < 0) {
		/* Unknown whether the entry landed; both copies are whole. */
		d->bat[block] = old;
		return vhd_set_error(r,
				     "%s: cannot write block table entry %u: "
				     "%s",
				     d->path, block, strerror(-r));
	}
	return 0;
}
