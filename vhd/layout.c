// SPDX-License-Identifier: MIT
/*
 * Layout of a dynamic image: the footer copy, header, BAT, locator payloads
 * and every allocated block must not overlap. Shared by vhd_check (which
 * lists every overlap) and a read-write open (which refuses the first):
 * writing a block that overlaps metadata or another block would corrupt it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "vhd_i.h"

#define META_MAX (3 + VHD_LOCATOR_COUNT)

struct extent {
	uint64_t start, end;
	const char *what; /* NULL: block @index */
	uint32_t index;
};

static int by_key(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Bytes of block @b that can hold data: the last block may be partial. */
static uint64_t block_len(const struct vhd_disk *d, uint32_t b)
{
	uint64_t data = vhd_align_up(d->size - (uint64_t)b * d->block_size,
				     VHD_SECTOR_SIZE);

	return d->bitmap_size + (data < d->block_size ? data : d->block_size);
}

static void describe(const struct extent *e, char *buf, size_t len)
{
	if (e->what && e->index != UINT32_MAX)
		snprintf(buf, len, "%s %u at offset %" PRIu64, e->what,
			 e->index, e->start);
	else if (e->what)
		snprintf(buf, len, "the %s at offset %" PRIu64, e->what,
			 e->start);
	else
		snprintf(buf, len, "block %u at offset %" PRIu64, e->index,
			 e->start);
}

static void overlap(const struct vhd_disk *d, const struct extent *a,
		    const struct extent *b, vhd_report_fn fn, void *ctx)
{
	char x[128], y[128], msg[512];

	/* Name a block first: it is what a write would go through. */
	if (a->what && !b->what) {
		const struct extent *t = a;

		a = b;
		b = t;
	}
	describe(a, x, sizeof(x));
	describe(b, y, sizeof(y));
	snprintf(msg, sizeof(msg), "%s: %s overlaps %s", d->path, x, y);
	fn(ctx, msg);
}

static int meta_extents(const struct vhd_disk *d, struct extent *m)
{
	int n = 0;

	m[n++] = (struct extent){0, VHD_FOOTER_SIZE, "footer copy", UINT32_MAX};
	m[n++] = (struct extent){d->footer.data_offset,
				 d->footer.data_offset + VHD_HEADER_SIZE,
				 "dynamic header", UINT32_MAX};
	m[n++] = (struct extent){d->header.table_offset,
				 d->header.table_offset +
					 (uint64_t)d->header.max_table_entries *
						 4,
				 "block table", UINT32_MAX};
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		if (d->header.loc[i].code && d->header.loc[i].data_length)
			m[n++] = (struct extent){
				d->header.loc[i].data_offset,
				d->header.loc[i].data_offset +
					d->header.loc[i].data_length,
				"parent locator", (uint32_t)i};
	/* A handful: insertion sort by start. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && m[j].start < m[j - 1].start; j--) {
			struct extent t = m[j];

			m[j] = m[j - 1];
			m[j - 1] = t;
		}
	return n;
}

int vhd_layout_overlaps(const struct vhd_disk *d, int max, vhd_report_fn fn,
			void *ctx)
{
	struct extent meta[META_MAX], cur, reach = {0};
	uint32_t nblocks = 0, bi = 0;
	uint64_t *keys;
	int nmeta, mi = 0, found = 0;
	bool first = true;

	/* sector << 32 | block: sorting orders blocks by offset, O(n log n) */
	keys = malloc((d->entries ? d->entries : 1) * sizeof(*keys));
	if (!keys)
		return vhd_set_error(-ENOMEM, "%s: out of memory", d->path);
	for (uint32_t b = 0; b < d->entries; b++)
		if (d->bat[b] != VHD_BAT_UNUSED)
			keys[nblocks++] = (uint64_t)d->bat[b] << 32 | b;
	qsort(keys, nblocks, sizeof(*keys), by_key);
	nmeta = meta_extents(d, meta);

	while (mi < nmeta || bi < nblocks) {
		uint64_t bstart = bi < nblocks
					  ? (keys[bi] >> 32) * VHD_SECTOR_SIZE
					  : UINT64_MAX;

		if (mi < nmeta && meta[mi].start <= bstart) {
			cur = meta[mi++];
		} else {
			uint32_t b = (uint32_t)keys[bi++];

			cur = (struct extent){bstart, bstart + block_len(d, b),
					      NULL, b};
		}
		/* Compare with the extent reaching furthest so far. */
		if (!first && cur.start < reach.end) {
			overlap(d, &cur, &reach, fn, ctx);
			if (++found == max)
				break;
		}
		if (first || cur.end > reach.end)
			reach = cur;
		first = false;
	}
	free(keys);
	return found;
}
