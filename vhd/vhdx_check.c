// SPDX-License-Identifier: MIT
/*
 * vhd_check of one VHDX file: what vhd repair fixes (headers, log, region
 * tables: vhdx_repair.c's walk without writing), then what an open would
 * refuse at its first defect, listed whole: metadata, every BAT entry,
 * every overlap of blocks with each other and with the log, BAT and
 * metadata regions. Never writes: a pending log is replayed in memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

struct sink {
	vhd_report_fn report;
	void *ctx;
	int problems;
};

static void __attribute__((format(printf, 2, 3)))
say(struct sink *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->problems++;
	if (s->report)
		s->report(s->ctx, msg);
}

/* What only rewriting the image by hand could fix. */
static void unfixable(void *ctx, const char *msg)
{
	say(ctx, "%s (not fixable by vhd repair)", msg);
}

/*
 * Overlap sweep keys: file MiB << 23 | bitmap << 22 | block or chunk
 * (both below 2^22 as the BAT is; offsets below 2^56 as the sweep only
 * sees entries inside the file).
 */
#define KEY_SB (1ull << 22)

static void span_of(const void *arg, uint64_t key, struct vhd_span *s)
{
	const struct vhdx *x = arg;
	uint64_t n = key & (KEY_SB - 1), start = (key >> 23) * VHDX_MIB;

	if (key & KEY_SB)
		*s = (struct vhd_span){start, start + VHDX_MIB,
				       "sector bitmap of chunk", n};
	else
		*s = (struct vhd_span){start, start + vhdx_block_len(x, n),
				       NULL, n};
}

static bool present(uint64_t e)
{
	unsigned s = VHDX_BAT_STATE(e);

	return s == VHDX_PAYLOAD_FULLY_PRESENT ||
	       s == VHDX_PAYLOAD_PARTIALLY_PRESENT;
}

static int overlaps(struct vhdx *x, struct sink *s)
{
	struct vhd_span meta[3] = {
		{x->bat_region.offset,
		 x->bat_region.offset + x->bat_region.length, "BAT region",
		 UINT64_MAX},
		{x->meta_region.offset,
		 x->meta_region.offset + x->meta_region.length,
		 "metadata region", UINT64_MAX},
		{x->header.log_offset,
		 x->header.log_offset + x->header.log_length, "log",
		 UINT64_MAX},
	};
	uint64_t chunks = (x->payload_blocks + x->chunk_ratio - 1) /
			  x->chunk_ratio,
		 n = 0, *keys;

	keys = malloc((x->bat_entries ? x->bat_entries : 1) * sizeof(*keys));
	if (!keys)
		return vhd_set_error(-ENOMEM, "%s: out of memory", x->path);
	for (uint64_t b = 0; b < x->payload_blocks; b++) {
		uint64_t e = x->bat[vhdx_payload_index(x, b)];

		/* Entries outside the file were reported on their own. */
		if (present(e) &&
		    vhdx_bat_extent_ok(x, e, vhdx_block_len(x, b)) &&
		    VHDX_BAT_OFFSET(e) < VHDX_MAX_FILE_OFFSET)
			keys[n++] = VHDX_BAT_OFFSET(e) / VHDX_MIB << 23 | b;
	}
	for (uint64_t c = 0; x->meta.has_parent && c < chunks; c++) {
		uint64_t e = x->bat[vhdx_sb_index(x, c)];

		if (VHDX_BAT_STATE(e) == VHDX_SB_PRESENT &&
		    vhdx_bat_extent_ok(x, e, VHDX_MIB) &&
		    VHDX_BAT_OFFSET(e) < VHDX_MAX_FILE_OFFSET)
			keys[n++] = VHDX_BAT_OFFSET(e) / VHDX_MIB << 23 |
				    KEY_SB | c;
	}
	vhd_layout_sort(keys, n);
	vhd_layout_sweep(x->path, meta, x->header.log_length ? 3 : 2, keys, n,
			 span_of, x, 0, unfixable, s);
	free(keys);
	return 0;
}

int vhdx_check_file(const char *path, vhd_report_fn report, void *ctx,
		    bool *opens)
{
	struct sink s = {report, ctx, 0};
	struct vhdx *x;
	bool blocking;
	char msg[8192];
	int r;

	*opens = false;
	r = vhdx_repair_walk(path, 0, true, report, ctx, &blocking);
	if (r < 0)
		return r;
	s.problems = r;
	if (blocking)
		return s.problems; /* nothing past it can be read */
	r = vhdx_open_regions(path, &x);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		unfixable(&s, vhd_errmsg());
		vhd_clear_error();
		return s.problems;
	}
	if (vhd_lock_written_elsewhere(x->fd))
		say(&s,
		    "%s: in use: " VHD_MSG_WRITTEN_ELSEWHERE "; what "
		    "is checked may change under the check",
		    path);
	/* A VHDX level is journalled by its DataWriteGuid (merge.c). */
	if (vhd_merge_leftover(path, x->header.data_write_guid, msg,
			       sizeof(msg)))
		say(&s, "%s", msg);
	/* the BAT's geometry comes from sound metadata only */
	r = vhdx_check_metadata(x, unfixable, &s);
	if (r != 0)
		goto out;
	r = vhdx_bat_read(x);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		unfixable(&s, vhd_errmsg());
		r = 0;
		goto out;
	}
	r = vhdx_bat_check(x, unfixable, &s);
	if (r < 0)
		goto out;
	*opens = r == 0;
	r = overlaps(x, &s);
out:
	vhdx_free(x);
	if (r < 0)
		return r;
	vhd_clear_error(); /* problems went to @report */
	return s.problems;
}
