// SPDX-License-Identifier: MIT
/*
 * Block allocation table: payload entries with one sector bitmap entry
 * after every chunk_ratio of them. Loaded whole and checked once, so
 * reads trust every entry.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

static const char *state_name(unsigned s)
{
	static const char *const names[8] = {
		"NOT_PRESENT",	 "UNDEFINED",	     "ZERO",
		"UNMAPPED",	 "reserved 4",	     "UNMAPPED (v0.95)",
		"FULLY_PRESENT", "PARTIALLY_PRESENT"};

	return names[s & 7];
}

bool vhdx_bat_extent_ok(const struct vhdx *x, uint64_t e, uint64_t len)
{
	uint64_t off = VHDX_BAT_OFFSET(e);

	return off >= VHDX_MIB && off <= x->file_size &&
	       len <= x->file_size - off;
}

uint64_t vhdx_block_len(const struct vhdx *x, uint64_t b)
{
	uint64_t start = b * x->meta.block_size;

	return x->meta.disk_size - start < x->meta.block_size
		       ? x->meta.disk_size - start
		       : x->meta.block_size;
}

/* A present block or bitmap must lie inside the file, past the headers. */
static int check_extent(struct vhdx *x, const char *what, uint64_t i,
			uint64_t e, uint64_t len)
{
	uint64_t off = VHDX_BAT_OFFSET(e);

	if (!vhdx_bat_extent_ok(x, e, len))
		return vhd_set_error(
			-EINVAL,
			"%s: BAT entry %" PRIu64 " (%s, %s) points "
			"at offset %" PRIu64
			", outside the file's data area (%" PRIu64 " bytes)",
			x->path, i, what, state_name(VHDX_BAT_STATE(e)), off,
			x->file_size);
	return 0;
}

static int check_payload(struct vhdx *x, uint64_t b)
{
	uint64_t i = vhdx_payload_index(x, b), e = x->bat[i];
	unsigned s = VHDX_BAT_STATE(e);

	switch (s) {
	case VHDX_PAYLOAD_NOT_PRESENT:
	case VHDX_PAYLOAD_UNDEFINED:
	case VHDX_PAYLOAD_ZERO:
	case VHDX_PAYLOAD_UNMAPPED:
	case VHDX_PAYLOAD_UNMAPPED_V095:
		return 0;
	case VHDX_PAYLOAD_PARTIALLY_PRESENT:
		/* only a differencing BAT has an SB entry for every chunk */
		if (!x->meta.has_parent)
			return vhd_set_error(-EINVAL,
					     "%s: block %" PRIu64 " is "
					     "PARTIALLY_PRESENT in a disk "
					     "without a parent",
					     x->path, b);
		if (VHDX_BAT_STATE(
			    x->bat[vhdx_sb_index(x, b / x->chunk_ratio)]) !=
		    VHDX_SB_PRESENT)
			return vhd_set_error(-EINVAL,
					     "%s: block %" PRIu64 " is "
					     "PARTIALLY_PRESENT but its chunk "
					     "has no sector bitmap",
					     x->path, b);
		/* fall through */
	case VHDX_PAYLOAD_FULLY_PRESENT:
		/* The file need not hold the part past the virtual end. */
		return check_extent(x, "payload", i, e, vhdx_block_len(x, b));
	}
	return vhd_set_error(-EINVAL,
			     "%s: BAT entry %" PRIu64 " of block %" PRIu64
			     " has reserved state %u",
			     x->path, i, b, s);
}

static int check_sb(struct vhdx *x, uint64_t chunk)
{
	uint64_t i = vhdx_sb_index(x, chunk), e;

	if (i >= x->bat_entries)
		return 0; /* fixed/dynamic: no entry after the last chunk */
	e = x->bat[i];
	if (VHDX_BAT_STATE(e) == VHDX_SB_NOT_PRESENT)
		return 0;
	if (VHDX_BAT_STATE(e) != VHDX_SB_PRESENT || !x->meta.has_parent)
		return vhd_set_error(
			-EINVAL,
			"%s: sector bitmap entry %" PRIu64 " has state %u%s",
			x->path, i, VHDX_BAT_STATE(e),
			x->meta.has_parent ? ""
					   : " in a disk without a parent");
	return check_extent(x, "sector bitmap", i, e, VHDX_MIB);
}

int vhdx_bat_read(struct vhdx *x)
{
	const struct vhdx_meta *m = &x->meta;
	uint64_t chunks, bytes;
	uint8_t *raw;
	int r;

	x->chunk_ratio = (uint32_t)(((uint64_t)1 << 23) * m->logical_sector /
				    m->block_size);
	x->payload_blocks = (m->disk_size + m->block_size - 1) / m->block_size;
	x->sectors_per_block = m->block_size / m->logical_sector;
	chunks = (x->payload_blocks + x->chunk_ratio - 1) / x->chunk_ratio;
	if (m->has_parent)
		x->bat_entries = chunks * (x->chunk_ratio + 1);
	else
		x->bat_entries = x->payload_blocks +
				 (x->payload_blocks - 1) / x->chunk_ratio;
	if (x->bat_entries > VHDX_MAX_BAT_ENTRIES)
		return vhd_set_error(-EFBIG,
				     "%s: %" PRIu64 " BAT entries (this reader "
				     "holds at most %llu: use larger blocks)",
				     x->path, x->bat_entries,
				     VHDX_MAX_BAT_ENTRIES);
	bytes = x->bat_entries * 8;
	if (x->bat_region.length < bytes)
		return vhd_set_error(-EINVAL,
				     "%s: BAT region of %u bytes cannot hold "
				     "%" PRIu64 " entries",
				     x->path, x->bat_region.length,
				     x->bat_entries);
	x->bat = malloc(bytes);
	/* only a differencing disk has sector bitmaps to cache */
	if (m->has_parent)
		x->bitmaps = calloc(x->payload_blocks, sizeof(*x->bitmaps));
	raw = (uint8_t *)x->bat;
	if (!x->bat || (m->has_parent && !x->bitmaps))
		return vhd_set_error(-ENOMEM, "%s: out of memory for the BAT",
				     x->path);
	r = vhdx_pread_file(x, raw, bytes, x->bat_region.offset);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < x->bat_entries; i++)
		x->bat[i] = vhdx_le64(raw + 8 * i);
	return 0;
}

/* A defect: the first one ends a load; a check lists them all. */
static int defect(int r, vhd_report_fn fn, void *ctx, uint64_t *bad)
{
	if (!fn || r != -EINVAL)
		return r;
	if ((*bad)++ < VHDX_CHECK_MAX_LINES)
		fn(ctx, vhd_errmsg());
	vhd_clear_error();
	return 0;
}

int vhdx_bat_check(struct vhdx *x, vhd_report_fn fn, void *ctx)
{
	uint64_t chunks = (x->payload_blocks + x->chunk_ratio - 1) /
			  x->chunk_ratio,
		 bad = 0;
	int r = 0;

	for (uint64_t c = 0; r == 0 && c < chunks; c++)
		r = defect(check_sb(x, c), fn, ctx, &bad);
	for (uint64_t b = 0; r == 0 && b < x->payload_blocks; b++)
		r = defect(check_payload(x, b), fn, ctx, &bad);
	if (r < 0)
		return r;
	if (bad > VHDX_CHECK_MAX_LINES) {
		char msg[256];

		snprintf(msg, sizeof(msg),
			 "%s: and %" PRIu64 " more defective BAT entries",
			 x->path, bad - VHDX_CHECK_MAX_LINES);
		fn(ctx, msg);
		return VHDX_CHECK_MAX_LINES + 1;
	}
	return (int)bad;
}

int vhdx_bat_load(struct vhdx *x)
{
	int r = vhdx_bat_read(x);

	return r < 0 ? r : vhdx_bat_check(x, NULL, NULL);
}

uint64_t vhdx_bat_allocated(const struct vhdx *x)
{
	uint64_t n = 0;

	for (uint64_t b = 0; b < x->payload_blocks; b++) {
		unsigned s = VHDX_BAT_STATE(x->bat[vhdx_payload_index(x, b)]);

		n += s == VHDX_PAYLOAD_FULLY_PRESENT ||
		     s == VHDX_PAYLOAD_PARTIALLY_PRESENT;
	}
	return n;
}

int vhdx_bitmap_get(struct vhdx *x, uint64_t b, uint8_t **out)
{
	uint8_t *map =
		atomic_load_explicit(&x->bitmaps[b], memory_order_acquire);
	uint64_t chunk = b / x->chunk_ratio;
	uint64_t sb = VHDX_BAT_OFFSET(x->bat[vhdx_sb_index(x, chunk)]);
	uint32_t bytes = x->sectors_per_block / 8;
	uint8_t *expected = NULL;
	int r;

	if (map) {
		*out = map;
		return 0;
	}
	map = malloc(bytes);
	if (!map)
		return vhd_set_error(-ENOMEM, "%s: out of memory for a bitmap",
				     x->path);
	/* Bit k of the chunk: byte k/8, least significant bit first. */
	r = vhdx_pread_file(x, map, bytes,
			    sb + (b % x->chunk_ratio) * (uint64_t)bytes);
	if (r < 0) {
		free(map);
		return r;
	}
	if (!atomic_compare_exchange_strong_explicit(&x->bitmaps[b], &expected,
						     map, memory_order_acq_rel,
						     memory_order_acquire)) {
		free(map);
		map = expected;
	}
	*out = map;
	return 0;
}
