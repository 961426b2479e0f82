// SPDX-License-Identifier: MIT
/* The block allocation table: loaded whole at open, bounds-checked. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vhd_i.h"

#define BAT_CHUNK 16384u /* entries per read */

static int bat_check_entry(struct vhd_disk *d, uint32_t block)
{
	uint64_t start = (uint64_t)d->bat[block] * VHD_SECTOR_SIZE;
	/* whole sectors: a partial last sector is written whole */
	uint64_t data = vhd_align_up(d->size - (uint64_t)block * d->block_size,
				     VHD_SECTOR_SIZE);

	if (data > d->block_size)
		data = d->block_size;
	if (start < VHD_FOOTER_SIZE ||
	    start + d->bitmap_size + data > d->footer_off)
		return vhd_set_error(
			-EINVAL,
			"%s: block table entry %u points to sector "
			"%u, beyond the end of the data (%" PRIu64 " bytes)",
			d->path, block, d->bat[block], d->footer_off);
	return 0;
}

int vhd_bat_load(struct vhd_disk *d)
{
	uint8_t *buf;
	int r = 0;

	d->bat = calloc(d->entries ? d->entries : 1, sizeof(*d->bat));
	d->bitmaps = calloc(d->entries ? d->entries : 1, sizeof(*d->bitmaps));
	buf = malloc(BAT_CHUNK * 4);
	if (!d->bat || !d->bitmaps || !buf) {
		r = vhd_set_error(-ENOMEM, "%s: out of memory for block table",
				  d->path);
		goto out;
	}
	for (uint32_t i = 0; i < d->entries; i += BAT_CHUNK) {
		uint32_t n =
			d->entries - i < BAT_CHUNK ? d->entries - i : BAT_CHUNK;

		r = vhd_io_read(d->fd, buf, (size_t)n * 4,
				d->header.table_offset + (uint64_t)i * 4);
		if (r < 0) {
			vhd_set_error(r, "%s: cannot read block table: %s",
				      d->path, strerror(-r));
			goto out;
		}
		for (uint32_t j = 0; j < n; j++)
			d->bat[i + j] = vhd_get32(buf + 4 * j);
	}
	for (uint32_t i = 0; i < d->entries; i++) {
		if (d->bat[i] == VHD_BAT_UNUSED)
			continue;
		r = bat_check_entry(d, i);
		if (r < 0)
			goto out;
	}
out:
	free(buf);
	return r;
}

int vhd_bat_write_entry(struct vhd_disk *d, uint32_t block)
{
	uint8_t be[4];

	vhd_put32(be, d->bat[block]);
	return vhd_io_write(d->fd, be, 4,
			    d->header.table_offset + (uint64_t)block * 4);
}

/* Dirty-block tracking of a writable image: at most one entry per block. */
int vhd_bat_alloc_dirty(struct vhd_disk *d)
{
	d->dirty = calloc(d->entries ? d->entries : 1, sizeof(*d->dirty));
	d->dirty_flag = calloc(d->entries ? d->entries : 1, 1);
	if (!d->dirty || !d->dirty_flag)
		return vhd_set_error(-ENOMEM, "%s: out of memory", d->path);
	return 0;
}

uint32_t vhd_bat_allocated(const struct vhd_disk *d)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < d->entries; i++)
		n += d->bat[i] != VHD_BAT_UNUSED;
	return n;
}
