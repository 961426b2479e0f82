// SPDX-License-Identifier: MIT
/*
 * Metadata sectors other than the BAT and sector bitmaps (metadata items,
 * the metadata table, region tables) change through the log like BAT
 * sectors do: queued with their new contents, then flushed in one entry
 * so that a crash leaves the old or the new version, never a mix.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

#define SECTOR VHDX_LOG_SECTOR

static bool overlaps(uint64_t off, uint64_t start, uint64_t len)
{
	return off < start + len && off + SECTOR > start;
}

/* Where the sector at @off may not be logged; NULL when it may. */
static const char *forbidden(const struct vhdx *x, uint64_t off)
{
	if (off % SECTOR)
		return "is not 4 KiB aligned";
	if (off < VHDX_REGION1_OFF)
		return "is in the file identifier or headers";
	if (off > x->real_size || x->real_size - off < SECTOR)
		return "is past the end of the file";
	if (overlaps(off, x->header.log_offset, x->header.log_length))
		return "is in the log";
	if (overlaps(off, x->bat_region.offset, x->bat_region.length))
		return "is in the BAT";
	return NULL;
}

/* After a failure: the given sectors are not left for a later flush to
 * apply behind the caller's back (a BAT change queued stays queued). */
static void drop_given(struct vhdx *x)
{
	size_t kept = 0;

	for (size_t i = 0; i < x->ndirty; i++) {
		if (x->dirty[i].data)
			free(x->dirty[i].data);
		else
			x->dirty[kept++] = x->dirty[i];
	}
	x->ndirty = kept;
}

int vhdx_log_sectors(struct vhdx *x, const uint64_t *offs, const uint8_t *data,
		     size_t n)
{
	int r;

	if (n > VHDX_LOG_MAX_DESC)
		return vhd_set_error(-EINVAL,
				     "%s: %zu metadata sectors in one change "
				     "(at most %u)",
				     x->path, n, VHDX_LOG_MAX_DESC);
	for (size_t i = 0; i < n; i++) {
		const char *why = forbidden(x, offs[i]);

		for (size_t j = 0; !why && j < i; j++)
			if (offs[j] == offs[i])
				why = "is given twice";
		if (why)
			return vhd_set_error(-EINVAL,
					     "%s: metadata sector at offset "
					     "%" PRIu64 " %s",
					     x->path, offs[i], why);
	}
	r = vhdx_begin_session(x);
	/* queued BAT or bitmap sectors that do not fit beside them go first */
	if (r == 0 && x->ndirty + n > VHDX_LOG_MAX_DESC)
		r = vhdx_flush_locked(x);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = vhdx_queue_sector(x, offs[i], data + i * SECTOR);
	if (r == 0)
		r = vhdx_flush_locked(x);
	if (r < 0)
		drop_given(x);
	return r;
}
