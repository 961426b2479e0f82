// SPDX-License-Identifier: MIT
/*
 * Compaction: drop blocks (and, in a child, sectors) that add nothing to
 * the resolved view, then move the highest live blocks down into the
 * lowest holes and cut the file after the last one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vhdx_i.h"

#define SCAN_CHUNK (1u << 20)

struct compactor {
	struct vhd_disk *d;
	struct vhd_progress p;
	uint8_t *buf, *pbuf, *map;
};

static int tick(struct compactor *c, uint64_t add)
{
	return vhd_progress_add(&c->p, add);
}

/* Virtual bytes block @b covers (the last block may be short). */
static uint64_t block_bytes(const struct vhd_disk *d, uint32_t b)
{
	uint64_t left = d->size - (uint64_t)b * d->block_size;

	return left < d->block_size ? vhd_align_up(left, VHD_SECTOR_SIZE)
				    : d->block_size;
}

static int read_data(struct vhd_disk *d, uint32_t b, uint8_t *buf, size_t n,
		     uint64_t in)
{
	uint64_t off =
		(uint64_t)d->bat[b] * VHD_SECTOR_SIZE + d->bitmap_size + in;
	int r = vhd_io_read(d->fd, buf, n, off);

	if (r < 0)
		return vhd_set_error(r,
				     "%s: read error in block %u at offset "
				     "%" PRIu64 ": %s",
				     d->path, b, off, strerror(-r));
	return 0;
}

/* Dynamic: a block is dead when its data is all zeros. */
static int dynamic_dead(struct compactor *c, uint32_t b, bool *dead)
{
	uint64_t len = block_bytes(c->d, b);

	*dead = true;
	for (uint64_t in = 0; in < len && *dead; in += SCAN_CHUNK) {
		size_t n =
			len - in < SCAN_CHUNK ? (size_t)(len - in) : SCAN_CHUNK;
		int r = read_data(c->d, b, c->buf, n, in);

		if (r < 0)
			return r;
		*dead = vhd_all_zero(c->buf, n);
	}
	return 0;
}

/*
 * Differencing: clear the bit of every sector equal to what the parent
 * shows. Safe in any order: a cleared sector reads the same from the
 * parent. The block is dead when no bit is left.
 */
static int diff_trim(struct compactor *c, uint32_t b, bool *dead)
{
	struct vhd_disk *d = c->d;
	uint64_t len = block_bytes(d, b), base = (uint64_t)b * d->block_size;
	bool changed = false;
	uint8_t *map;
	int r;

	r = vhd_bitmap_get(d, b, &map);
	if (r < 0)
		return r;
	memcpy(c->map, map, d->bitmap_size);
	for (uint64_t in = 0; in < len; in += SCAN_CHUNK) {
		size_t n =
			len - in < SCAN_CHUNK ? (size_t)(len - in) : SCAN_CHUNK;
		uint32_t s0 = (uint32_t)(in / VHD_SECTOR_SIZE);
		uint32_t ns = (uint32_t)(n / VHD_SECTOR_SIZE);
		bool any = false;

		for (uint32_t s = s0; s < s0 + ns && !any; s++)
			any = vhd_bit_test(c->map, s);
		if (!any)
			continue;
		r = read_data(d, b, c->buf, n, in);
		if (r == 0)
			r = vhd_read_resolved(d->parent, c->pbuf, n, base + in);
		if (r < 0)
			return r;
		for (uint32_t s = s0; s < s0 + ns; s++) {
			size_t o = (size_t)(s - s0) * VHD_SECTOR_SIZE;

			if (vhd_bit_test(c->map, s) &&
			    !memcmp(c->buf + o, c->pbuf + o, VHD_SECTOR_SIZE)) {
				c->map[s / 8] &= (uint8_t) ~(0x80 >> (s % 8));
				changed = true;
			}
		}
	}
	*dead = vhd_all_zero(c->map, d->bitmap_size);
	if (!changed || *dead)
		return 0;
	r = vhd_write_named(d, c->map, d->bitmap_size,
			    (uint64_t)d->bat[b] * VHD_SECTOR_SIZE);
	if (r == 0)
		memcpy(map, c->map, d->bitmap_size);
	return r;
}

/* Phase 1: drop what adds nothing; synced before any space is reused. */
static int drop_dead(struct compactor *c)
{
	struct vhd_disk *d = c->d;
	bool touched = false;
	int r = 0;

	for (uint32_t b = 0; b < d->entries && r == 0; b++) {
		bool dead;

		if (d->bat[b] == VHD_BAT_UNUSED)
			continue;
		r = d->footer.disk_type == VHD_TYPE_DIFF
			    ? diff_trim(c, b, &dead)
			    : dynamic_dead(c, b, &dead);
		if (r < 0)
			break;
		touched = true;
		if (dead) {
			uint32_t old = d->bat[b];

			d->bat[b] = VHD_BAT_UNUSED;
			r = vhd_bat_write_entry(d, b);
			if (r < 0) {
				d->bat[b] = old;
				return vhd_set_error(r,
						     "%s: cannot write block "
						     "table entry %u: %s",
						     d->path, b, strerror(-r));
			}
		}
		r = tick(c, d->block_size);
	}
	if (touched) {
		int s = vhd_sync_named(d);

		if (r == 0)
			r = s;
	}
	return r;
}

struct item {
	uint64_t start, end;
	uint32_t block;
	bool is_block;
};

static int by_start(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Everything the file must keep: metadata and live blocks, by offset. */
static struct item *used_extents(struct vhd_disk *d, uint32_t *count)
{
	struct item *it =
		calloc(d->entries + VHD_LOCATOR_COUNT + 3, sizeof(*it));
	uint32_t n = 0;

	if (!it)
		return NULL;
	it[n++] = (struct item){0, VHD_FOOTER_SIZE, 0, false};
	it[n++] = (struct item){d->footer.data_offset,
				d->footer.data_offset + VHD_HEADER_SIZE, 0,
				false};
	it[n++] = (struct item){
		d->header.table_offset,
		d->header.table_offset +
			vhd_align_up((uint64_t)d->header.max_table_entries * 4,
				     VHD_SECTOR_SIZE),
		0, false};
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const struct vhd_locator *l = &d->header.loc[i];

		if (d->footer.disk_type == VHD_TYPE_DIFF && l->code)
			it[n++] = (struct item){
				l->data_offset,
				l->data_offset +
					vhd_align_up(vhd_locator_space_bytes(l),
						     VHD_SECTOR_SIZE),
				0, false};
	}
	for (uint32_t b = 0; b < d->entries; b++) {
		uint64_t s = (uint64_t)d->bat[b] * VHD_SECTOR_SIZE;

		if (d->bat[b] != VHD_BAT_UNUSED)
			it[n++] = (struct item){s, s + vhd_block_span(d), b,
						true};
	}
	qsort(it, n, sizeof(*it), by_start);
	*count = n;
	return it;
}

/*
 * Phase 2: the highest live block goes into the lowest hole below it that
 * holds a whole block, until none does. Holes are walked upwards and
 * blocks downwards, so each is visited once. Returns the new data end.
 */
static int move_down(struct compactor *c, uint64_t *data_end)
{
	struct vhd_disk *d = c->d;
	uint64_t span = vhd_block_span(d), cur = 0, end = 0;
	uint32_t n, nxt = 0;
	struct item *it = used_extents(d, &n);
	int64_t h = (int64_t)n - 1;
	int r = 0;

	if (!it)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (;;) {
		uint64_t pos = 0;
		bool placed = false;

		while (h >= 0 && !it[h].is_block)
			h--;
		if (h < 0)
			break;
		for (; nxt <= (uint64_t)h; nxt++) {
			uint64_t limit = it[nxt].start;

			if (limit >= cur) {
				pos = vhd_block_place(d, cur);
				if (pos + span > limit)
					pos = vhd_align_up(cur,
							   VHD_SECTOR_SIZE);
				if (pos + span <= limit) {
					placed = true;
					break;
				}
			}
			if (it[nxt].end > cur)
				cur = it[nxt].end;
		}
		if (!placed)
			break;
		r = vhd_block_move(d, it[h].block, pos);
		if (r == 0)
			r = tick(c, d->block_size);
		if (r < 0)
			goto out;
		cur = pos + span;
		if (cur > end)
			end = cur;
		it[h].is_block = false;
		it[h].end = 0; /* gone */
		h--;
	}
	for (uint32_t i = 0; i < n; i++)
		if (it[i].end > end)
			end = it[i].end;
	*data_end = end;
out:
	free(it);
	return r;
}

static int refuse(struct vhd_disk *d)
{
	if (d->footer.disk_type == VHD_TYPE_FIXED)
		return vhd_set_error(-EOPNOTSUPP,
				     "%s: a fixed disk cannot be compacted "
				     "(it has no unused space to give back; "
				     "convert it to dynamic)",
				     d->path);
	return vhd_check_rewritable(d);
}

static uint64_t file_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int vhd_compact(const char *path, uint64_t *reclaimed, vhd_progress_fn progress,
		void *ctx)
{
	struct compactor c = {.p = {.fn = progress,
				    .ctx = ctx,
				    .path = path,
				    .what = "compaction"}};
	struct vhd_disk *d;
	uint64_t before, end = 0;
	int r;

	vhd_clear_error();
	if (reclaimed)
		*reclaimed = 0;
	r = vhd_open(path, VHD_OPEN_RDWR, &d);
	if (r < 0)
		return r;
	if (d->vhdx)
		return vhd_close_keep(
			d, vhdx_compact(d, reclaimed, progress, ctx));
	c.d = d;
	r = refuse(d);
	if (r < 0)
		goto out;
	before = file_size(d->fd);
	c.p.total = 2 * (uint64_t)vhd_bat_allocated(d) * d->block_size;
	c.buf = malloc(SCAN_CHUNK);
	c.pbuf = malloc(SCAN_CHUNK);
	c.map = malloc(d->bitmap_size);
	if (!c.buf || !c.pbuf || !c.map) {
		r = vhd_set_error(-ENOMEM, "out of memory");
		goto out;
	}
	r = tick(&c, 0);
	if (r == 0)
		r = drop_dead(&c);
	if (r == 0)
		r = move_down(&c, &end);
	if (r == 0 && end < d->footer_off)
		r = vhd_footer_move(d, end);
	if (r == 0)
		vhd_progress_end(&c.p);
	if (r == 0 && reclaimed && file_size(d->fd) < before)
		*reclaimed = before - file_size(d->fd);
out:
	free(c.buf);
	free(c.pbuf);
	free(c.map);
	return vhd_close_keep(d, r);
}
