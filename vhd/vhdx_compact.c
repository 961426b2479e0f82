// SPDX-License-Identifier: MIT
/*
 * Compacting a dynamic VHDX: payload blocks holding only zeros become
 * NOT_PRESENT (which reads zeros) through the log, and only once that is
 * durable is their space given back to the file system (hole punching).
 * Then the highest live blocks move down into the lowest holes (copied
 * and synced before the BAT points at the copy through the log), the log
 * is closed (its entries name the old file size) and the file is cut
 * after the last structure or block. The view does not change, so the
 * DataWriteGuid is kept: children still match.
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

static uint64_t allocated_bytes(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Blocks whose state was set to NOT_PRESENT; their file offsets. */
struct dropped {
	uint64_t *off;
	size_t n;
};

static int scan(struct vhd_disk *d, struct dropped *dr, struct vhd_progress *p)
{
	struct vhdx *x = d->vhdx;
	uint32_t bs = x->meta.block_size;
	uint8_t *buf = malloc(bs);
	int r = 0;

	dr->off = calloc(x->payload_blocks ? x->payload_blocks : 1,
			 sizeof(*dr->off));
	if (!buf || !dr->off) {
		free(buf);
		return vhd_set_error(-ENOMEM, "out of memory");
	}
	for (uint64_t b = 0; r == 0 && b < x->payload_blocks; b++) {
		uint64_t idx = vhdx_payload_index(x, b);
		uint64_t e = x->bat[idx];
		uint64_t len = d->size - b * bs < bs ? d->size - b * bs : bs;

		if (VHDX_BAT_STATE(e) != VHDX_PAYLOAD_FULLY_PRESENT)
			continue;
		r = vhdx_pread_file(x, buf, (size_t)len, VHDX_BAT_OFFSET(e));
		if (r == 0 && vhd_all_zero(buf, (size_t)len)) {
			r = vhdx_set_bat(x, idx, VHDX_PAYLOAD_NOT_PRESENT);
			if (r == 0)
				dr->off[dr->n++] = VHDX_BAT_OFFSET(e);
		}
		if (r == 0)
			r = vhd_progress_add(p, 1);
	}
	free(buf);
	return r;
}

/* One thing the file must keep: a structure or a live block. */
struct item {
	uint64_t start, end;
	uint64_t block; /* UINT64_MAX: a structure */
};

static int by_start(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Headers, log and every region the table lists (known or not), then the
 * live blocks, by offset. */
static int used_extents(struct vhdx *x, struct item **out, size_t *count)
{
	uint8_t *rt = malloc(VHDX_REGION_SIZE);
	struct item *it = NULL;
	uint32_t nreg = 0;
	size_t n = 0;
	int r = -ENOMEM;

	if (!rt)
		goto out;
	/* copy 1 is valid: a writable open checked it */
	r = vhdx_pread_file(x, rt, VHDX_REGION_SIZE, VHDX_REGION1_OFF);
	if (r < 0)
		goto out;
	nreg = vhdx_le32(rt + 8);
	if (nreg > VHDX_REGION_MAX_ENTRIES)
		nreg = VHDX_REGION_MAX_ENTRIES;
	r = -ENOMEM;
	it = calloc(2 + nreg + x->payload_blocks, sizeof(*it));
	if (!it)
		goto out;
	it[n++] = (struct item){0, VHDX_MIB, UINT64_MAX};
	it[n++] = (struct item){x->header.log_offset,
				x->header.log_offset + x->header.log_length,
				UINT64_MAX};
	for (uint32_t i = 0; i < nreg; i++) {
		const uint8_t *e = rt + 16 + 32 * (size_t)i;
		uint64_t off = vhdx_le64(e + 16);

		it[n++] =
			(struct item){off, off + vhdx_le32(e + 24), UINT64_MAX};
	}
	for (uint64_t b = 0; b < x->payload_blocks; b++) {
		uint64_t e = x->bat[vhdx_payload_index(x, b)];

		if (VHDX_BAT_STATE(e) == VHDX_PAYLOAD_FULLY_PRESENT)
			it[n++] = (struct item){
				VHDX_BAT_OFFSET(e),
				VHDX_BAT_OFFSET(e) + x->meta.block_size, b};
	}
	qsort(it, n, sizeof(*it), by_start);
	r = 0;
out:
	free(rt);
	if (r < 0) {
		free(it);
		return vhd_set_error(r, "%s: %s", x->path,
				     r == -ENOMEM ? "out of memory"
						  : "cannot read the region "
						    "table");
	}
	*out = it;
	*count = n;
	return 0;
}

/* Copy block @b to @to, and point its BAT entry there (queued). The old
 * place stays untouched until the entry is durable. */
static int move_block(struct vhdx *x, uint64_t b, uint64_t to, uint8_t *buf)
{
	uint64_t idx = vhdx_payload_index(x, b);
	size_t len = (size_t)vhdx_block_len(x, b);
	int r = vhdx_pread_file(x, buf, len, VHDX_BAT_OFFSET(x->bat[idx]));

	bool hole = false;

	/* Sparse as it was: into a hole, only the pages holding data. */
	if (r == 0)
		hole = fallocate(x->fd,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 (off_t)to, (off_t)x->meta.block_size) == 0;
	for (size_t o = 0; r == 0 && o < len; o += VHDX_LOG_SECTOR) {
		size_t n =
			len - o < VHDX_LOG_SECTOR ? len - o : VHDX_LOG_SECTOR;

		if (!hole || !vhd_all_zero(buf + o, n))
			r = vhd_io_write(x->fd, buf + o, n, to + o);
	}
	if (r < 0)
		return vhd_set_error(r, "%s: cannot move block %" PRIu64 ": %s",
				     x->path, b, strerror(-r));
	r = vhdx_set_bat(x, idx, to | VHDX_PAYLOAD_FULLY_PRESENT);
	/* a log entry holds at most VHDX_LOG_MAX_DESC sectors (data synced
	 * first by the flush) */
	if (r == 0 && x->ndirty >= VHDX_LOG_MAX_DESC - 1)
		r = vhdx_flush_locked(x);
	return r;
}

/*
 * The highest live block goes into the lowest hole below it that holds a
 * whole block, until none does (holes walked upwards, blocks downwards,
 * as compact.c for VHD). A block's old place is above every hole still
 * to fill, so no copy lands where a block moved from. *@end: the end of
 * everything kept.
 */
static int move_down(struct vhdx *x, struct vhd_progress *p, uint64_t *end)
{
	uint64_t span = x->meta.block_size, cur = 0;
	uint8_t *buf = malloc(span);
	struct item *it = NULL;
	size_t n = 0, nxt = 0;
	int64_t h;
	int r = buf ? used_extents(x, &it, &n)
		    : vhd_set_error(-ENOMEM, "out of memory");

	for (h = (int64_t)n - 1; r == 0;) {
		uint64_t pos = 0;
		bool placed = false;

		while (h >= 0 && it[h].block == UINT64_MAX)
			h--;
		if (h < 0)
			break;
		for (; nxt <= (uint64_t)h; nxt++) {
			pos = vhd_align_up(cur, VHDX_MIB);
			if (pos + span <= it[nxt].start) {
				placed = true;
				break;
			}
			if (it[nxt].end > cur)
				cur = it[nxt].end;
		}
		if (!placed)
			break;
		if (!x->session)
			r = vhdx_begin_session(x);
		if (r == 0)
			r = move_block(x, it[h].block, pos, buf);
		if (r == 0)
			r = vhd_progress_add(p, 0);
		cur = pos + span;
		it[h].start = pos; /* where it is now */
		it[h].end = cur;
		it[h].block = UINT64_MAX;
		h--;
	}
	*end = 0;
	for (size_t i = 0; i < n; i++)
		if (it[i].end > *end)
			*end = it[i].end;
	free(it);
	free(buf);
	return r;
}

/* Cut the file at @end once nothing names what lies past it: the BAT
 * durable, then the log closed (its entries name the old size). */
static int cut(struct vhdx *x, uint64_t end)
{
	int r;

	if (end >= x->real_size)
		return 0;
	r = vhdx_begin_session(x);
	if (r == 0)
		r = vhdx_close_locked(x);
	if (r < 0)
		return r;
	if (ftruncate(x->fd, (off_t)end) < 0)
		return vhd_set_error(-errno, "%s: cannot truncate: %s", x->path,
				     strerror(errno));
	r = vhd_io_sync(x->fd);
	if (r < 0)
		return vhd_set_error(r, "%s: sync failed: %s", x->path,
				     strerror(-r));
	x->real_size = x->file_size = end;
	x->alloc_end = 0;
	return 0;
}

int vhdx_compact(struct vhd_disk *d, uint64_t *reclaimed,
		 vhd_progress_fn progress, void *ctx)
{
	struct vhdx *x = d->vhdx;
	struct vhd_progress p = {.fn = progress,
				 .ctx = ctx,
				 .path = d->path,
				 .what = "compaction",
				 .total = x->payload_blocks};
	struct dropped dr = {0};
	uint64_t before, end = 0;
	int r;

	if (d->footer.disk_type != VHD_TYPE_DYNAMIC)
		return vhd_set_error(-EOPNOTSUPP,
				     "%s: compaction of a %s VHDX is not "
				     "supported (only dynamic ones)",
				     d->path,
				     d->footer.disk_type == VHD_TYPE_FIXED
					     ? "fixed"
					     : "differencing");
	pthread_rwlock_wrlock(&d->lock);
	before = allocated_bytes(x->fd);
	x->keep_data_guid = true;
	r = vhd_progress_add(&p, 0);
	if (r == 0)
		r = scan(d, &dr, &p);
	if (r == 0 && dr.n)
		r = vhdx_begin_session(x);
	/* Also after a cancel: what was dropped so far is kept. */
	if (x->ndirty) {
		int fr = vhdx_flush_locked(x);

		if (r == 0)
			r = fr;
	}
	/* The BAT no longer points at them (durable): give the space back. */
	for (size_t i = 0; r == 0 && i < dr.n; i++) {
		uint64_t bs = x->meta.block_size;

		if (fallocate(x->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)dr.off[i], (off_t)bs) < 0 &&
		    errno != EOPNOTSUPP)
			r = vhd_set_error(-errno, "%s: cannot free a block: %s",
					  d->path, strerror(errno));
	}
	if (r == 0)
		r = move_down(x, &p, &end);
	if (x->ndirty) {
		int fr = vhdx_flush_locked(x);

		if (r == 0)
			r = fr;
	}
	if (r == 0)
		r = cut(x, end);
	if (r == 0 && reclaimed) {
		uint64_t after = allocated_bytes(x->fd);

		*reclaimed = before > after ? before - after : 0;
	}
	pthread_rwlock_unlock(&d->lock);
	free(dr.off);
	if (r == 0)
		vhd_progress_end(&p);
	return r;
}
