// SPDX-License-Identifier: MIT
/*
 * Repair of a VHDX's redundant structures, in the order an open reads
 * them: the two headers (a damaged one is rewritten from the good one,
 * never through the log), a log a crashed writer left (replayed, LogGuid
 * cleared), the two region table copies (restored through the log). The
 * same walk without writing tells vhd_check which defects repair fixes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx_i.h"

enum state { GOOD, BAD_SUM, BAD };

struct walk {
	struct vhd_fixer f;
	struct vhdx *x;
	bool blocking; /* a defect that stops every open */
};

static bool defect(struct walk *w, bool checksum, const char *what,
		   const char *action)
{
	return vhd_fixer_defect(&w->f, checksum, what, action);
}

static void unfixable(struct walk *w, bool blocking, const char *what)
{
	w->f.found++;
	w->blocking |= blocking;
	vhd_fixer_say(&w->f, "%s: %s (not fixable by vhd repair)", w->x->path,
		      what);
}

static int put(struct walk *w, const void *buf, size_t len, uint64_t off)
{
	int r = vhd_io_write(w->x->fd, buf, len, off);

	if (r == 0)
		r = vhd_io_sync(w->x->fd);
	return r < 0 ? vhd_set_error(
			       r, "%s: cannot write at offset %" PRIu64 ": %s",
			       w->x->path, off, strerror(-r))
		     : 0;
}

static const char *const header_name[2] = {"header 1 (at 64 KiB)",
					   "header 2 (at 128 KiB)"};

static enum state classify_header(uint8_t *b, struct vhdx_header *h, char *why,
				  size_t len)
{
	uint8_t fixed[VHDX_HEADER_SIZE];

	if (vhdx_header_decode(b, h) == 0)
		return GOOD;
	snprintf(why, len, "%s", vhd_errmsg());
	memcpy(fixed, b, sizeof(fixed));
	vhdx_put32(fixed + 4, vhd_crc32c_skip(fixed, VHDX_HEADER_SIZE, 4));
	if (vhdx_header_decode(fixed, h) == 0)
		return BAD_SUM;
	return BAD;
}

/* Header @slot (0 or 1) from @h with the next sequence number: it becomes
 * the current one. */
static int rewrite_header(struct walk *w, int slot, const struct vhdx_header *h)
{
	uint8_t buf[VHDX_HEADER_SIZE];
	struct vhdx_header n = *h;
	int r;

	n.seq++;
	vhdx_header_encode(&n, buf);
	r = put(w, buf, sizeof(buf), vhdx_header_at[slot]);
	if (r == 0) {
		w->x->header = n;
		w->x->header_slot = slot + 1;
	}
	return r;
}

/* Returns 1 when a current header is known (in w->x->header), 0 when the
 * walk cannot go on, -errno on an I/O error. */
static int headers(struct walk *w)
{
	uint8_t buf[2][VHDX_HEADER_SIZE];
	struct vhdx_header h[2];
	enum state s[2];
	char why[2][256], what[700];
	int good, r;

	for (int i = 0; i < 2; i++) {
		r = vhdx_pread_file(w->x, buf[i], VHDX_HEADER_SIZE,
				    vhdx_header_at[i]);
		if (r < 0)
			return r;
		s[i] = classify_header(buf[i], &h[i], why[i], sizeof(why[i]));
	}
	vhd_clear_error();
	if (s[0] == GOOD && s[1] == GOOD) {
		if (h[0].seq == h[1].seq &&
		    memcmp(buf[0], buf[1], VHDX_HEADER_SIZE) != 0) {
			snprintf(what, sizeof(what),
				 "both headers have sequence number %" PRIu64
				 " but differ (which is current is unknown)",
				 h[0].seq);
			unfixable(w, true, what);
			return 0;
		}
		good = h[0].seq >= h[1].seq ? 0 : 1;
		w->x->header = h[good];
		w->x->header_slot = good + 1;
		return 1;
	}
	if (s[0] != GOOD && s[1] != GOOD) {
		/* Only a bad CRC: the one with the larger sequence number,
		 * once its CRC is recomputed, is the good one. */
		if (s[0] == BAD_SUM &&
		    (s[1] != BAD_SUM || h[0].seq >= h[1].seq))
			good = 0;
		else if (s[1] == BAD_SUM)
			good = 1;
		else
			good = -1;
		if (good < 0) {
			snprintf(what, sizeof(what),
				 "no valid header: header 1: %s; header 2: %s",
				 why[0], why[1]);
			unfixable(w, true, what);
			return 0;
		}
		snprintf(what, sizeof(what), "%s: %s", header_name[good],
			 why[good]);
		if (!defect(w, true, what, "CRC-32C recomputed")) {
			w->blocking = true;
			/* The other copy is reported once this one is good. */
			return 0;
		}
		vhdx_put32(buf[good] + 4,
			   vhd_crc32c_skip(buf[good], VHDX_HEADER_SIZE, 4));
		r = put(w, buf[good], VHDX_HEADER_SIZE, vhdx_header_at[good]);
		if (r < 0)
			return r;
		s[good] = GOOD;
	}
	good = s[0] == GOOD ? 0 : 1;
	w->x->header = h[good];
	w->x->header_slot = good + 1;
	snprintf(what, sizeof(what), "%s is damaged (%s)", header_name[!good],
		 why[!good]);
	snprintf(why[good], sizeof(why[good]),
		 "rewritten from header %d with the next sequence number",
		 good + 1);
	if (defect(w, false, what, why[good])) {
		r = rewrite_header(w, !good, &h[good]);
		if (r < 0)
			return r;
	}
	return 1;
}

/* A log a crashed writer left: replayed in memory (dry) or for good. */
static int replay(struct walk *w)
{
	struct vhdx *x = w->x;
	char what[700];
	int r;

	if (vhdx_guid_is_zero(x->header.log_guid))
		return 1;
	r = vhdx_log_replay(x);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		snprintf(what, sizeof(what), "log cannot be replayed: %s",
			 vhd_errmsg_reason(x->path));
		vhd_clear_error();
		unfixable(w, true, what);
		return 0;
	}
	/* A LogGuid over an empty log: nothing was left unwritten. */
	if (!x->log_entries)
		return 1;
	snprintf(what, sizeof(what),
		 "log is not empty: %" PRIu64
		 " entr%s of an interrupted writer to replay",
		 x->log_entries, x->log_entries == 1 ? "y" : "ies");
	if (!defect(w, false, what, "replayed, LogGuid cleared"))
		return 1;
	r = vhdx_log_commit_replay(x);
	return r < 0 ? r : 1;
}

/*
 * Neither copy valid. When one fails only its CRC (recomputed, it
 * parses), --checksums makes it the table: copy 1's first, written to both
 * copies through the log.
 */
static int regions_crc(struct walk *w, uint8_t *buf[2], const char *what)
{
	bool soft;

	for (int i = 0; i < 2; i++) {
		uint8_t *b = buf[i];

		if (memcmp(b, "regi", 4) != 0)
			continue;
		vhdx_put32(b + 4, vhd_crc32c_skip(b, VHDX_REGION_SIZE, 4));
		if (vhdx_region_parse(w->x, b, &soft) < 0)
			continue;
		vhd_clear_error();
		w->blocking = !defect(w, true, what,
				      i ? "CRC-32C of copy 2 recomputed, both "
					  "copies written through the log"
					: "CRC-32C of copy 1 recomputed, both "
					  "copies written through the log");
		return w->blocking ? 0 : vhdx_region_write(w->x, b, 3);
	}
	vhd_clear_error();
	unfixable(w, true, what);
	return 0;
}

/* Both region table copies: the first valid one is what readers use. */
static int regions(struct walk *w)
{
	uint8_t *buf[2] = {malloc(VHDX_REGION_SIZE), malloc(VHDX_REGION_SIZE)};
	char why[2][256], what[700];
	bool ok[2], soft[2];
	int r = -ENOMEM, good;

	if (!buf[0] || !buf[1]) {
		vhd_set_error(r, "out of memory");
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		r = vhdx_pread_file(w->x, buf[i], VHDX_REGION_SIZE,
				    vhdx_region_at[i]);
		if (r < 0)
			goto out;
		ok[i] = vhdx_region_parse(w->x, buf[i], &soft[i]) == 0;
		snprintf(why[i], sizeof(why[i]), "%s",
			 ok[i] ? "" : vhd_errmsg());
	}
	vhd_clear_error();
	r = 0;
	if (ok[0] && ok[1] && !memcmp(buf[0], buf[1], VHDX_REGION_SIZE))
		goto out;
	/* A copy 1 that is whole but wrong is what readers take: only a
	 * damaged (signature, CRC) copy 1 may be restored from copy 2. */
	good = ok[0] ? 0 : (ok[1] && soft[0]) ? 1 : -1;
	if (good < 0) {
		snprintf(what, sizeof(what),
			 "bad region table: copy 1 (at 192 KiB): %s; copy 2 "
			 "(at 256 KiB): %s",
			 why[0], ok[1] ? "valid" : why[1]);
		if (!ok[1])
			r = regions_crc(w, buf, what);
		else
			unfixable(w, true, what);
		goto out;
	}
	if (ok[!good])
		snprintf(what, sizeof(what),
			 "region table copy 2 (at 256 KiB) differs from copy "
			 "1");
	else
		snprintf(what, sizeof(what),
			 "region table copy %d (at %u KiB) is damaged (%s)",
			 2 - good, good ? 192 : 256, why[!good]);
	/* What the log writer checks against: the good copy's regions. */
	vhdx_region_parse(w->x, buf[good], &soft[good]);
	if (defect(w, false, what,
		   good ? "restored from copy 2 through the log"
			: "restored from copy 1 through the log"))
		r = vhdx_region_write(w->x, buf[good], good ? 1 : 2);
out:
	free(buf[0]);
	free(buf[1]);
	return r;
}

int vhdx_repair_walk(const char *path, unsigned flags, bool dry,
		     vhd_report_fn report, void *ctx, bool *blocking)
{
	struct walk w = {{path, flags, dry, report, ctx, 0, 0}, NULL, false};
	struct stat st;
	uint8_t id[8];
	int r;

	w.x = calloc(1, sizeof(*w.x));
	if (!w.x || !(w.x->path = strdup(path))) {
		free(w.x);
		return vhd_set_error(-ENOMEM, "out of memory");
	}
	/* Never blocks on a FIFO, never looks into our own mount. */
	w.x->fd = vhd_file_open(path, dry ? O_RDONLY : O_RDWR, &st, NULL);
	r = w.x->fd;
	if (r >= 0)
		r = dry ? 0 : vhd_lock_writer(w.x->fd, path);
	if (r < 0)
		goto out;
	w.x->real_size = w.x->file_size = (uint64_t)st.st_size;
	w.x->rw = !dry;
	if (w.x->file_size < VHDX_REGION2_OFF + VHDX_REGION_SIZE) {
		r = vhd_set_error(-EINVAL,
				  "%s: file too small for a VHDX (%" PRIu64
				  " bytes)",
				  path, w.x->file_size);
		goto out;
	}
	r = vhdx_pread_file(w.x, id, sizeof(id), 0);
	if (r == 0 && memcmp(id, "vhdxfile", 8) != 0)
		r = vhd_set_error(-EINVAL,
				  "%s: not a VHDX (no \"vhdxfile\" identifier "
				  "at offset 0)",
				  path);
	if (r == 0)
		r = headers(&w);
	if (r > 0)
		r = replay(&w);
	if (r > 0)
		r = regions(&w);
	if (r >= 0)
		r = dry ? w.f.found : w.f.changes;
out:
	if (blocking)
		*blocking = w.blocking;
	vhdx_free(w.x);
	return r;
}
