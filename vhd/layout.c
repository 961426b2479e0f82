// SPDX-License-Identifier: MIT
/*
 * Layout of a dynamic image: the footer copy, header, BAT, locator payloads
 * and every allocated block must not overlap. Shared by vhd_check (which
 * lists every overlap) and a read-write open (which refuses the first):
 * writing a block that overlaps metadata or another block would corrupt it.
 * The sweep itself knows no format: VHDX's check uses it too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "vhd_i.h"

#define META_MAX (3 + VHD_LOCATOR_COUNT)

static int by_key(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void vhd_layout_sort(uint64_t *keys, uint64_t n)
{
	qsort(keys, n, sizeof(*keys), by_key);
}

/* Bytes of block @b that can hold data: the last block may be partial. */
static uint64_t block_len(const struct vhd_disk *d, uint32_t b)
{
	uint64_t data = vhd_align_up(d->size - (uint64_t)b * d->block_size,
				     VHD_SECTOR_SIZE);

	return d->bitmap_size + (data < d->block_size ? data : d->block_size);
}

static void describe(const struct vhd_span *e, char *buf, size_t len)
{
	if (e->what && e->index != UINT64_MAX)
		snprintf(buf, len, "%s %" PRIu64 " at offset %" PRIu64, e->what,
			 e->index, e->start);
	else if (e->what)
		snprintf(buf, len, "the %s at offset %" PRIu64, e->what,
			 e->start);
	else
		snprintf(buf, len, "block %" PRIu64 " at offset %" PRIu64,
			 e->index, e->start);
}

static void overlap(const char *path, const struct vhd_span *a,
		    const struct vhd_span *b, vhd_report_fn fn, void *ctx)
{
	char x[128], y[128], msg[512];

	/* Name a block first: it is what a write would go through. */
	if (a->what && !b->what) {
		const struct vhd_span *t = a;

		a = b;
		b = t;
	}
	describe(a, x, sizeof(x));
	describe(b, y, sizeof(y));
	snprintf(msg, sizeof(msg), "%s: %s overlaps %s", path, x, y);
	fn(ctx, msg);
}

int vhd_layout_sweep(const char *path, struct vhd_span *meta, int nmeta,
		     const uint64_t *keys, uint64_t nkeys, vhd_span_fn span,
		     const void *arg, int max, vhd_report_fn fn, void *ctx)
{
	struct vhd_span cur, reach = {0}, blk = {0};
	uint64_t bi = 0;
	int mi = 0, found = 0;
	bool first = true;

	/* A handful: insertion sort by start. */
	for (int i = 1; i < nmeta; i++)
		for (int j = i; j > 0 && meta[j].start < meta[j - 1].start;
		     j--) {
			struct vhd_span t = meta[j];

			meta[j] = meta[j - 1];
			meta[j - 1] = t;
		}
	if (nkeys)
		span(arg, keys[0], &blk);
	while (mi < nmeta || bi < nkeys) {
		if (mi < nmeta &&
		    (bi == nkeys || meta[mi].start <= blk.start)) {
			cur = meta[mi++];
		} else {
			cur = blk;
			if (++bi < nkeys)
				span(arg, keys[bi], &blk);
		}
		/* Compare with the extent reaching furthest so far. */
		if (!first && cur.start < reach.end) {
			overlap(path, &cur, &reach, fn, ctx);
			if (++found == max)
				break;
		}
		if (first || cur.end > reach.end)
			reach = cur;
		first = false;
	}
	return found;
}

static int meta_extents(const struct vhd_disk *d, struct vhd_span *m)
{
	int n = 0;

	m[n++] = (struct vhd_span){0, VHD_FOOTER_SIZE, "footer copy",
				   UINT64_MAX};
	m[n++] = (struct vhd_span){d->footer.data_offset,
				   d->footer.data_offset + VHD_HEADER_SIZE,
				   "dynamic header", UINT64_MAX};
	m[n++] = (struct vhd_span){
		d->header.table_offset,
		d->header.table_offset +
			(uint64_t)d->header.max_table_entries * 4,
		"block table", UINT64_MAX};
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		if (d->header.loc[i].code && d->header.loc[i].data_length)
			m[n++] = (struct vhd_span){
				d->header.loc[i].data_offset,
				d->header.loc[i].data_offset +
					d->header.loc[i].data_length,
				"parent locator", (uint64_t)i};
	return n;
}

/* key: sector << 32 | block, so that sorting orders blocks by offset */
static void block_span(const void *arg, uint64_t key, struct vhd_span *s)
{
	const struct vhd_disk *d = arg;
	uint32_t b = (uint32_t)key;
	uint64_t start = (key >> 32) * VHD_SECTOR_SIZE;

	*s = (struct vhd_span){start, start + block_len(d, b), NULL, b};
}

int vhd_layout_overlaps(const struct vhd_disk *d, int max, vhd_report_fn fn,
			void *ctx)
{
	struct vhd_span meta[META_MAX];
	uint32_t nblocks = 0;
	uint64_t *keys;
	int found;

	/* O(n log n): the blocks sorted once by offset */
	keys = malloc((d->entries ? d->entries : 1) * sizeof(*keys));
	if (!keys)
		return vhd_set_error(-ENOMEM, "%s: out of memory", d->path);
	for (uint32_t b = 0; b < d->entries; b++)
		if (d->bat[b] != VHD_BAT_UNUSED)
			keys[nblocks++] = (uint64_t)d->bat[b] << 32 | b;
	vhd_layout_sort(keys, nblocks);
	found = vhd_layout_sweep(d->path, meta, meta_extents(d, meta), keys,
				 nblocks, block_span, d, max, fn, ctx);
	free(keys);
	return found;
}
