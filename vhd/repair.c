// SPDX-License-Identifier: MIT
/*
 * Repair of the redundant metadata: the footer is stored twice (dynamic
 * and differencing images), so a damaged copy is restored from the good
 * one. Checksums are recomputed only when asked: a checksum that does not
 * match may be the only sign of a damaged field. The same walk, without
 * writing, tells vhd_check which defects repair can fix.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx_i.h"

enum state { GOOD, BAD_SUM, BAD };

struct repair {
	struct vhd_fixer f;
	int fd;
	uint64_t size;
};

void vhd_fixer_say(struct vhd_fixer *f, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (f->report)
		f->report(f->ctx, msg);
}

bool vhd_fixer_defect(struct vhd_fixer *f, bool checksum, const char *what,
		      const char *action)
{
	f->found++;
	if (f->dry) {
		vhd_fixer_say(f, "%s: %s (fixable by vhd repair%s)", f->path,
			      what, checksum ? " --checksums" : "");
		return false;
	}
	if (checksum && !(f->flags & VHD_REPAIR_CHECKSUMS)) {
		vhd_fixer_say(f,
			      "%s: %s; not changed (run vhd repair "
			      "--checksums)",
			      f->path, what);
		return false;
	}
	vhd_fixer_say(f, "%s: %s: %s", f->path, what, action);
	f->changes++;
	return true;
}

const char *vhd_errmsg_reason(const char *path)
{
	const char *m = vhd_errmsg();
	size_t n = strlen(path);

	if (!strncmp(m, path, n) && m[n] == ':' && m[n + 1] == ' ')
		return m + n + 2;
	return m;
}

static enum state classify(const char *path, const uint8_t *buf, uint64_t at,
			   char *why, size_t len)
{
	uint8_t fixed[VHD_FOOTER_SIZE];

	if (vhd_footer_validate(path, buf, at) == 0)
		return GOOD;
	snprintf(why, len, "%s", vhd_errmsg_reason(path));
	memcpy(fixed, buf, sizeof(fixed));
	vhd_put32(fixed + 64, vhd_checksum(fixed, VHD_FOOTER_SIZE, 64));
	return vhd_footer_validate(path, fixed, at) == 0 ? BAD_SUM : BAD;
}

/*
 * Both copies valid with the same fields: differing checksums then only
 * mean one is blktap 1.1's stale one, which opening accepts too.
 */
static bool same_fields(const uint8_t *a, const uint8_t *b)
{
	return !memcmp(a, b, 64) &&
	       !memcmp(a + 68, b + 68, VHD_FOOTER_SIZE - 68);
}

static int io_fail(struct repair *rp, int r, const char *what)
{
	return vhd_set_error(r, "%s: cannot %s: %s", rp->f.path, what,
			     strerror(-r));
}

static int put(struct repair *rp, const void *buf, size_t len, uint64_t off)
{
	int r = vhd_io_write(rp->fd, buf, len, off);

	if (r == 0)
		r = vhd_io_sync(rp->fd);
	return r < 0 ? io_fail(rp, r, "write") : 0;
}

/* End of everything the header and BAT reference (0 when unreadable). */
static uint64_t data_end(struct repair *rp, const uint8_t *footer)
{
	uint64_t hoff = vhd_get64(footer + 16), end, bat_off;
	uint8_t hb[VHD_HEADER_SIZE];
	struct vhd_header h;
	uint32_t entries, bitmap;
	uint8_t *bat;

	if (hoff > rp->size || rp->size - hoff < VHD_HEADER_SIZE ||
	    vhd_io_read(rp->fd, hb, sizeof(hb), hoff) < 0)
		return 0;
	vhd_header_decode(hb, &h);
	if (!h.block_size || h.block_size & (h.block_size - 1) ||
	    h.block_size < VHD_MIN_BLOCK_SIZE)
		return 0;
	bat_off = h.table_offset;
	entries = h.max_table_entries;
	if (entries > VHD_MAX_USED_ENTRIES || bat_off > rp->size ||
	    (rp->size - bat_off) / 4 < entries)
		return 0;
	end = bat_off + vhd_align_up((uint64_t)entries * 4, VHD_SECTOR_SIZE);
	if (hoff + VHD_HEADER_SIZE > end)
		end = hoff + VHD_HEADER_SIZE;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		uint64_t e = h.loc[i].data_offset +
			     vhd_align_up(vhd_locator_space_bytes(&h.loc[i]),
					  VHD_SECTOR_SIZE);

		if (h.loc[i].code && h.loc[i].data_offset < rp->size && e > end)
			end = e;
	}
	bitmap = (uint32_t)vhd_align_up(h.block_size / VHD_SECTOR_SIZE / 8,
					VHD_SECTOR_SIZE);
	bat = malloc(entries ? (size_t)entries * 4 : 1);
	if (!bat || vhd_io_read(rp->fd, bat, (size_t)entries * 4, bat_off)) {
		free(bat);
		return 0;
	}
	for (uint32_t i = 0; i < entries; i++) {
		uint64_t s = (uint64_t)vhd_get32(bat + 4 * i) * VHD_SECTOR_SIZE;

		/* Entries past the end of the file are check's business. */
		if (vhd_get32(bat + 4 * i) != VHD_BAT_UNUSED && s < rp->size &&
		    s + bitmap + h.block_size > end)
			end = s + bitmap + h.block_size;
	}
	free(bat);
	return end;
}

/*
 * The trailing footer goes where the damaged one was, unless that would
 * overlap data (the file was cut short): then right after the data.
 */
static int restore_trailing(struct repair *rp, const uint8_t *footer)
{
	uint64_t end = 0, at;
	int r;

	if (vhd_get32(footer + 60) == VHD_TYPE_FIXED)
		end = vhd_get64(footer + 48);
	else
		end = data_end(rp, footer);
	if (!end)
		return vhd_set_error(-EINVAL,
				     "%s: cannot tell where the data ends "
				     "(dynamic header or block table "
				     "unreadable)",
				     rp->f.path);
	at = rp->size % VHD_SECTOR_SIZE == 0 &&
			     rp->size >= end + VHD_FOOTER_SIZE
		     ? rp->size - VHD_FOOTER_SIZE
		     : vhd_align_up(end, VHD_SECTOR_SIZE);
	r = put(rp, footer, VHD_FOOTER_SIZE, at);
	if (r == 0 && at + VHD_FOOTER_SIZE < rp->size) {
		if (ftruncate(rp->fd, (off_t)(at + VHD_FOOTER_SIZE)) < 0)
			return io_fail(rp, -errno, "truncate");
		r = vhd_io_sync(rp->fd);
		if (r < 0)
			return io_fail(rp, r, "sync");
	}
	rp->size = at + VHD_FOOTER_SIZE;
	return r;
}

static int repair_header(struct repair *rp, const uint8_t *footer)
{
	uint64_t off = vhd_get64(footer + 16);
	uint8_t h[VHD_HEADER_SIZE];
	uint32_t stored, computed;
	char what[160];

	if (off > rp->size || rp->size - off < VHD_HEADER_SIZE ||
	    vhd_io_read(rp->fd, h, sizeof(h), off) < 0 ||
	    memcmp(h, "cxsparse", 8) != 0) {
		rp->f.found++;
		vhd_fixer_say(&rp->f,
			      "%s: no dynamic header at offset %" PRIu64
			      " (not fixable by vhd repair)",
			      rp->f.path, off);
		return 0;
	}
	stored = vhd_get32(h + 36);
	computed = vhd_checksum(h, sizeof(h), 36);
	if (stored == computed)
		return 0;
	snprintf(what, sizeof(what),
		 "dynamic header checksum mismatch (stored 0x%08x, computed "
		 "0x%08x)",
		 stored, computed);
	if (!vhd_fixer_defect(&rp->f, true, what, "checksum recomputed"))
		return 0;
	vhd_put32(h + 36, computed);
	return put(rp, h, sizeof(h), off);
}

/* Pick the footer to trust, restoring the other copy from it. */
static int repair_footers(struct repair *rp)
{
	uint8_t tail[VHD_FOOTER_SIZE] = {0}, copy[VHD_FOOTER_SIZE];
	uint8_t good[VHD_FOOTER_SIZE];
	char twhy[512] = "", cwhy[512] = "", what[700];
	uint64_t at = rp->size - VHD_FOOTER_SIZE;
	enum state ts, cs;
	int r;

	r = vhd_io_read(rp->fd, tail, VHD_FOOTER_SIZE, at);
	if (r == 0)
		r = vhd_io_read(rp->fd, copy, VHD_FOOTER_SIZE, 0);
	if (r < 0)
		return io_fail(rp, r, "read the footers");
	ts = classify(rp->f.path, tail, at, twhy, sizeof(twhy));
	if (ts != GOOD && rp->size % VHD_SECTOR_SIZE == VHD_FOOTER_SIZE - 1) {
		/* A legacy 511-byte footer is a good one. */
		memset(tail, 0, sizeof(tail));
		at = rp->size - (VHD_FOOTER_SIZE - 1);
		if (vhd_io_read(rp->fd, tail, VHD_FOOTER_SIZE - 1, at) == 0 &&
		    vhd_footer_validate(rp->f.path, tail, at) == 0)
			ts = GOOD;
	}
	cs = classify(rp->f.path, copy, 0, cwhy, sizeof(cwhy));
	if (cs != BAD && vhd_get32(copy + 60) == VHD_TYPE_FIXED)
		cs = BAD; /* offset 0 of a fixed disk is data */
	vhd_clear_error();

	if (ts == GOOD) {
		memcpy(good, tail, sizeof(good));
	} else if (cs == GOOD) {
		snprintf(what, sizeof(what), "trailing footer is damaged (%s)",
			 twhy);
		if (vhd_fixer_defect(&rp->f, false, what,
				     "restored from the copy at "
				     "offset 0")) {
			r = restore_trailing(rp, copy);
			if (r < 0)
				return r;
		}
		return 0; /* the copy is the good one */
	} else if (ts == BAD_SUM || cs == BAD_SUM) {
		memcpy(good, ts == BAD_SUM ? tail : copy, sizeof(good));
		snprintf(what, sizeof(what), "%s", ts == BAD_SUM ? twhy : cwhy);
		if (!vhd_fixer_defect(&rp->f, true, what,
				      "checksum recomputed"))
			return 0;
		vhd_put32(good + 64, vhd_checksum(good, VHD_FOOTER_SIZE, 64));
		r = ts == BAD_SUM ? put(rp, good, VHD_FOOTER_SIZE, at)
				  : restore_trailing(rp, good);
		if (r < 0)
			return r;
	} else {
		return vhd_set_error(-EINVAL,
				     "%s: no usable footer (trailing: %s; "
				     "copy at offset 0: %s)",
				     rp->f.path, twhy, cwhy);
	}
	if (vhd_get32(good + 60) == VHD_TYPE_FIXED ||
	    !memcmp(good, copy, VHD_FOOTER_SIZE) ||
	    (cs == GOOD && same_fields(good, copy)))
		return 0;
	if (cs == GOOD)
		snprintf(what, sizeof(what),
			 "footer copy at offset 0 differs "
			 "from the trailing footer");
	else
		snprintf(what, sizeof(what),
			 "footer copy at offset 0 is damaged (%s)", cwhy);
	if (vhd_fixer_defect(&rp->f, false, what,
			     "rewritten from the trailing footer"))
		return put(rp, good, VHD_FOOTER_SIZE, 0);
	return 0;
}

/* Returns the defects found (dry run) or the changes made, or -errno. */
static int run(const char *path, unsigned flags, bool dry, vhd_report_fn report,
	       void *ctx)
{
	struct repair rp = {{path, flags, dry, report, ctx, 0, 0}, -1, 0};
	uint8_t footer[VHD_FOOTER_SIZE];
	char why[512];
	struct stat st;
	int r;

	/* Never blocks on a FIFO, never looks into our own mount. */
	rp.fd = vhd_file_open(path, dry ? O_RDONLY : O_RDWR, &st, NULL);
	if (rp.fd < 0)
		return rp.fd;
	/* Not while another program (or a vhdfs mount) writes it. */
	r = dry ? 0 : vhd_lock_writer(rp.fd, path);
	if (r < 0)
		goto out;
	if (st.st_size < VHD_FOOTER_SIZE) {
		r = vhd_set_error(-EINVAL,
				  "%s: not a VHD (too small or not "
				  "a regular file)",
				  path);
		goto out;
	}
	rp.size = (uint64_t)st.st_size;
	r = repair_footers(&rp);
	if (r < 0)
		goto out;
	/* The footer in charge now (after any repair) names the header. */
	r = vhd_io_read(rp.fd, footer, sizeof(footer),
			rp.size - VHD_FOOTER_SIZE);
	if (r == 0 && classify(path, footer, 0, why, sizeof(why)) == BAD)
		r = vhd_io_read(rp.fd, footer, sizeof(footer), 0);
	if (r == 0 && classify(path, footer, 0, why, sizeof(why)) != BAD &&
	    vhd_get32(footer + 60) != VHD_TYPE_FIXED)
		r = repair_header(&rp, footer);
	vhd_clear_error();
	if (r < 0)
		goto out;
	r = dry ? rp.f.found : rp.f.changes;
out:
	close(rp.fd);
	return r;
}

int vhd_repair(const char *path, unsigned flags, vhd_report_fn report,
	       void *ctx)
{
	int r;

	vhd_clear_error();
	if (vhdx_probe(path) == 1) {
		r = vhdx_repair_walk(path, flags, false, report, ctx, NULL);
		if (r >= 0)
			vhd_clear_error(); /* defects left went to @report */
		return r;
	}
	return run(path, flags, false, report, ctx);
}

int vhd_repair_scan(const char *path, vhd_report_fn report, void *ctx)
{
	return run(path, 0, true, report, ctx);
}
