// SPDX-License-Identifier: MIT
/* Per-block sector bitmaps (MSB first), cached after the first read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd_i.h"

int vhd_bitmap_get(struct vhd_disk *d, uint32_t block, uint8_t **out)
{
	uint8_t *map =
		atomic_load_explicit(&d->bitmaps[block], memory_order_acquire);
	uint8_t *expected = NULL;
	int r;

	if (map) {
		*out = map;
		return 0;
	}
	map = malloc(d->bitmap_size);
	if (!map)
		return vhd_set_error(-ENOMEM, "%s: out of memory for bitmap",
				     d->path);
	r = vhd_io_read(d->fd, map, d->bitmap_size,
			(uint64_t)d->bat[block] * VHD_SECTOR_SIZE);
	if (r < 0) {
		free(map);
		return vhd_set_error(r,
				     "%s: cannot read bitmap of block %u: %s",
				     d->path, block, strerror(-r));
	}
	/* Another reader may have loaded it meanwhile: keep the first. */
	if (!atomic_compare_exchange_strong_explicit(
		    &d->bitmaps[block], &expected, map, memory_order_acq_rel,
		    memory_order_acquire)) {
		free(map);
		map = expected;
	}
	*out = map;
	return 0;
}

uint32_t vhd_bitmap_run(const uint8_t *map, uint32_t first, uint32_t end,
			bool *set)
{
	bool want = vhd_bit_test(map, first);
	uint32_t i = first + 1;

	while (i < end) {
		/* whole bytes at once when aligned */
		if (i % 8 == 0 && end - i >= 8) {
			uint8_t full = want ? 0xFF : 0x00;

			if (__atomic_load_n(&map[i / 8], __ATOMIC_RELAXED) ==
			    full) {
				i += 8;
				continue;
			}
		}
		if (vhd_bit_test(map, i) != want)
			break;
		i++;
	}
	*set = want;
	return i - first;
}

void vhd_bitmap_free(struct vhd_disk *d)
{
	if (!d->bitmaps)
		return;
	for (uint32_t i = 0; i < d->entries; i++)
		free(atomic_load(&d->bitmaps[i]));
	free(d->bitmaps);
	d->bitmaps = NULL;
}
