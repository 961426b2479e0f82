// SPDX-License-Identifier: MIT
/*
 * Log replay. A host that crashed between logging a metadata change and
 * writing it in place leaves a non-empty log; the spec requires replaying
 * it before anything else is read. This reader never writes: the replayed
 * sectors become an in-memory overlay that vhdx_pread_file() applies, so a
 * file opened read-only (or a parent) stays byte-for-byte as it was.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx_i.h"

#define SECTOR VHDX_LOG_SECTOR
/* Sectors a replay may touch (zero descriptors included): 1 GiB. */
#define MAX_OVERLAY_SECTORS (1u << 18)

struct entry {
	uint64_t pos;	 /* log offset */
	uint64_t length; /* bytes */
	uint64_t seq;
	uint32_t tail;
	uint32_t ndesc;
	uint64_t flushed;
	uint64_t last;
};

struct log {
	struct vhdx *x;
	uint8_t *ring; /* the whole log */
	uint64_t len;
	uint8_t *buf; /* one entry, unwrapped */
	/*
	 * Bytes checksummed so far, and the most a scan may checksum: a
	 * damaged ring full of long fake entry headers would otherwise cost
	 * (length / 4 KiB) x length of CRC work.
	 */
	uint64_t crc_bytes;
	uint64_t crc_budget;
	bool over_budget;
};

/* Copy @n bytes at ring offset @pos, wrapping at the end. */
static void ring_copy(const struct log *l, uint8_t *dst, uint64_t pos,
		      uint64_t n)
{
	uint64_t first = l->len - pos;

	if (first >= n) {
		memcpy(dst, l->ring + pos, n);
	} else {
		memcpy(dst, l->ring + pos, first);
		memcpy(dst + first, l->ring, n - first);
	}
}

static uint64_t desc_sectors(uint32_t ndesc)
{
	/* 64-byte header + 126 descriptors in the first sector, then 128 */
	return ndesc <= 126 ? 1 : 1 + ((uint64_t)ndesc - 126 + 127) / 128;
}

/* Validate the entry at @pos (whose number must be @want, or any when 0);
 * on success l->buf holds it unwrapped. */
static bool entry_valid(struct log *l, uint64_t pos, uint64_t want,
			struct entry *e)
{
	const uint8_t *h = l->ring + pos;
	uint64_t ndata = 0, need;
	const uint8_t *b;

	if (memcmp(h, "loge", 4) != 0)
		return false;
	e->pos = pos;
	e->length = vhdx_le32(h + 8);
	e->tail = vhdx_le32(h + 12);
	e->seq = vhdx_le64(h + 16);
	e->ndesc = vhdx_le32(h + 24);
	e->flushed = vhdx_le64(h + 48);
	e->last = vhdx_le64(h + 56);
	if (e->length == 0 || e->length % SECTOR || e->length > l->len ||
	    e->tail % SECTOR || e->tail >= l->len || e->seq == 0 ||
	    (want && e->seq != want) ||
	    memcmp(h + 32, l->x->header.log_guid, 16) != 0)
		return false;
	need = desc_sectors(e->ndesc);
	if (need * SECTOR > e->length)
		return false;
	ring_copy(l, l->buf, pos, e->length);
	b = l->buf;
	for (uint32_t i = 0; i < e->ndesc; i++) {
		const uint8_t *d = b + 64 + 32 * (uint64_t)i;

		if (memcmp(d, "desc", 4) == 0)
			ndata++;
		else if (memcmp(d, "zero", 4) != 0)
			return false;
		if (vhdx_le64(d + 24) != e->seq || vhdx_le64(d + 16) % SECTOR)
			return false;
		if (memcmp(d, "zero", 4) == 0 && vhdx_le64(d + 8) % SECTOR)
			return false;
	}
	if ((need + ndata) * SECTOR > e->length)
		return false;
	for (uint64_t k = 0; k < ndata; k++) {
		const uint8_t *s = b + (need + k) * SECTOR;

		if (memcmp(s, "data", 4) != 0 ||
		    vhdx_le32(s + 4) != (uint32_t)(e->seq >> 32) ||
		    vhdx_le32(s + 4092) != (uint32_t)e->seq)
			return false;
	}
	l->crc_bytes += e->length;
	if (l->crc_bytes > l->crc_budget) {
		l->over_budget = true;
		return false;
	}
	return vhd_crc32c_skip(b, e->length, 4) == vhdx_le32(b + 4);
}

/* Queue a replayed sector; later entries win (see finish_overlay). */
static int overlay_put(struct vhdx *x, uint64_t off, const uint8_t *data)
{
	struct vhdx_overlay_sector *s;

	if (off > VHDX_MAX_FILE_OFFSET)
		return vhd_set_error(-EINVAL,
				     "%s: log entry writes at offset %" PRIu64,
				     x->path, off);
	if (x->noverlay >= MAX_OVERLAY_SECTORS)
		return vhd_set_error(-EFBIG,
				     "%s: log replay touches more than %u "
				     "sectors",
				     x->path, MAX_OVERLAY_SECTORS);
	/* capacity doubles at each power of two */
	if (x->noverlay < 16 || !(x->noverlay & (x->noverlay - 1))) {
		size_t cap = x->noverlay < 16 ? 16 : 2 * x->noverlay;

		s = realloc(x->overlay, cap * sizeof(*s));
		if (!s)
			return vhd_set_error(-ENOMEM, "out of memory");
		x->overlay = s;
	}
	s = &x->overlay[x->noverlay];
	s->offset = off;
	s->order = x->noverlay;
	s->data = NULL;
	if (data) {
		s->data = malloc(SECTOR);
		if (!s->data)
			return vhd_set_error(-ENOMEM, "out of memory");
		memcpy(s->data, data, SECTOR);
	}
	x->noverlay++;
	return 0;
}

/* Apply one validated entry (in l->buf) to the overlay. */
static int apply(struct log *l, const struct entry *e)
{
	struct vhdx *x = l->x;
	uint64_t data_sector = desc_sectors(e->ndesc);
	uint8_t sector[SECTOR];
	int r;

	for (uint32_t i = 0; i < e->ndesc; i++) {
		const uint8_t *d = l->buf + 64 + 32 * (uint64_t)i;
		uint64_t off = vhdx_le64(d + 16);

		if (memcmp(d, "zero", 4) == 0) {
			uint64_t n = vhdx_le64(d + 8);

			if (n / SECTOR > MAX_OVERLAY_SECTORS)
				return vhd_set_error(-EFBIG,
						     "%s: log zeroes %" PRIu64
						     " bytes at once",
						     x->path, n);
			for (uint64_t k = 0; k < n; k += SECTOR) {
				r = overlay_put(x, off + k, NULL);
				if (r < 0)
					return r;
			}
			continue;
		}
		memcpy(sector, l->buf + data_sector * SECTOR, SECTOR);
		memcpy(sector, d + 8, 8);	 /* leading bytes */
		memcpy(sector + 4092, d + 4, 4); /* trailing bytes */
		data_sector++;
		r = overlay_put(x, off, sector);
		if (r < 0)
			return r;
	}
	return 0;
}

static int cmp_sector(const void *a, const void *b)
{
	const struct vhdx_overlay_sector *p = a, *q = b;

	if (p->offset != q->offset)
		return p->offset < q->offset ? -1 : 1;
	return p->order < q->order ? -1 : p->order > q->order;
}

/* Sort by offset; of several writes to one sector keep the last. */
static void finish_overlay(struct vhdx *x)
{
	size_t out = 0;

	qsort(x->overlay, x->noverlay, sizeof(*x->overlay), cmp_sector);
	for (size_t i = 0; i < x->noverlay; i++) {
		if (i + 1 < x->noverlay &&
		    x->overlay[i + 1].offset == x->overlay[i].offset) {
			free(x->overlay[i].data);
			continue;
		}
		x->overlay[out++] = x->overlay[i];
	}
	x->noverlay = out;
}

/*
 * Scan the ring for runs of consecutive valid entries; a run whose last
 * entry's tail points at one of its entries is a sequence. The sequence
 * with the highest head number wins: *@tail_pos and *@head describe it.
 */
static bool find_sequence(struct log *l, uint64_t *tail_pos, struct entry *head)
{
	bool found = false;
	uint64_t start = 0;

	while (start < l->len) {
		struct entry e, last = {0};
		uint64_t pos = start, run = 0, want = 0;
		bool tail_in_run = false, wrapped = false;

		while (run < l->len && entry_valid(l, pos, want, &e)) {
			last = e;
			run += e.length;
			want = e.seq + 1;
			if (pos + e.length >= l->len)
				wrapped = true;
			pos = (pos + e.length) % l->len;
		}
		if (run == 0) {
			start += SECTOR;
			continue;
		}
		/* is last.tail one of the run's entry starts? */
		for (uint64_t p = start, k = 0; k < run;) {
			struct entry t;

			if (p == last.tail) {
				tail_in_run = true;
				break;
			}
			if (!entry_valid(l, p, 0, &t))
				break;
			k += t.length;
			p = (p + t.length) % l->len;
		}
		if (tail_in_run && (!found || last.seq > head->seq)) {
			found = true;
			*head = last;
			*tail_pos = last.tail;
		}
		if (wrapped)
			break;
		start += run;
	}
	return found;
}

int vhdx_log_replay(struct vhdx *x)
{
	const struct vhdx_header *h = &x->header;
	struct log l = {.x = x, .len = h->log_length};
	struct entry head = {0}, e;
	uint64_t pos;
	bool found;
	int r;

	if (vhdx_guid_is_zero(h->log_guid))
		return 0;
	if (h->log_offset < VHDX_MIB || h->log_offset % VHDX_MIB ||
	    h->log_length == 0 || h->log_length % VHDX_MIB ||
	    h->log_length > VHDX_MAX_LOG || h->log_offset > x->real_size ||
	    h->log_length > x->real_size - h->log_offset)
		return vhd_set_error(-EINVAL,
				     "%s: log at offset %" PRIu64
				     " length %u is not 1 MiB aligned inside "
				     "the file (%" PRIu64 " bytes)",
				     x->path, h->log_offset, h->log_length,
				     x->real_size);
	l.ring = malloc(l.len);
	l.buf = malloc(l.len);
	r = -ENOMEM;
	if (!l.ring || !l.buf) {
		vhd_set_error(r, "out of memory for the log");
		goto out;
	}
	r = vhdx_pread_file(x, l.ring, l.len, h->log_offset);
	if (r < 0)
		goto out;
	r = 0;
	/* A set log GUID over a ring without a valid sequence: nothing
	 * was left to replay (the host never logged, or already cleared). */
	/* enough to check every entry a few times over, at least 64 MiB */
	l.crc_budget = 16 * (uint64_t)h->log_length;
	if (l.crc_budget < 64 * VHDX_MIB)
		l.crc_budget = 64 * VHDX_MIB;
	found = find_sequence(&l, &pos, &head);
	if (l.over_budget) {
		r = vhd_set_error(-EINVAL,
				  "%s: log too damaged to scan (more than "
				  "%" PRIu64 " bytes of entries checked)",
				  x->path, l.crc_budget);
		goto out;
	}
	if (!found)
		goto out;
	l.crc_budget = UINT64_MAX; /* the sequence found is applied */
	if (head.flushed > x->real_size) {
		r = vhd_set_error(-EINVAL,
				  "%s: truncated: the log says %" PRIu64
				  " bytes were durable, the file has %" PRIu64,
				  x->path, head.flushed, x->real_size);
		goto out;
	}
	for (;;) {
		if (!entry_valid(&l, pos, 0, &e)) {
			r = vhd_set_error(-EIO, "%s: log entry vanished",
					  x->path);
			goto out;
		}
		r = apply(&l, &e);
		if (r < 0)
			goto out;
		x->log_entries++;
		if (e.seq == head.seq)
			break;
		pos = (pos + e.length) % l.len;
	}
	finish_overlay(x);
	if (head.last > x->file_size && head.last <= VHDX_MAX_FILE_OFFSET)
		x->file_size = head.last;
	for (size_t i = 0; i < x->noverlay; i++)
		if (x->overlay[i].offset + SECTOR > x->file_size)
			x->file_size = x->overlay[i].offset + SECTOR;
	x->log_replayed = true;
out:
	free(l.ring);
	free(l.buf);
	return r;
}

void vhdx_log_free(struct vhdx *x)
{
	for (size_t i = 0; i < x->noverlay; i++)
		free(x->overlay[i].data);
	free(x->overlay);
	x->overlay = NULL;
	x->noverlay = 0;
}

int vhdx_log_commit_replay(struct vhdx *x)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < x->noverlay; i++) {
		static const uint8_t zeros[SECTOR];
		const struct vhdx_overlay_sector *s = &x->overlay[i];

		r = vhd_io_write(x->fd, s->data ? s->data : zeros, SECTOR,
				 s->offset);
	}
	if (r == 0 && x->file_size > x->real_size &&
	    ftruncate(x->fd, (off_t)x->file_size) < 0)
		r = -errno;
	if (r == 0)
		r = vhd_io_sync(x->fd);
	if (r < 0)
		return vhd_set_error(r, "%s: cannot replay the log: %s",
				     x->path, strerror(-r));
	vhdx_log_free(x);
	x->real_size = x->file_size;
	memset(x->header.log_guid, 0, 16);
	return vhdx_header_update(x);
}

/* Write @len bytes at ring offset @pos of the log, wrapping at its end. */
static int ring_write(struct vhdx *x, const uint8_t *buf, uint64_t len,
		      uint64_t pos)
{
	uint64_t first = x->header.log_length - pos;
	int r;

	if (first >= len)
		return vhd_io_write(x->fd, buf, len,
				    x->header.log_offset + pos);
	r = vhd_io_write(x->fd, buf, first, x->header.log_offset + pos);
	if (r == 0)
		r = vhd_io_write(x->fd, buf + first, len - first,
				 x->header.log_offset);
	return r;
}

static int cmp_dirty(const void *a, const void *b)
{
	const struct vhdx_dirty *p = a, *q = b;
	/* given sectors, then sector bitmaps, then the BAT entries that make
	 * them used (the order of the in-place writes) */
	int kp = p->data ? 0 : p->chunk == UINT64_MAX ? 2 : 1;
	int kq = q->data ? 0 : q->chunk == UINT64_MAX ? 2 : 1;

	if (kp != kq)
		return kp - kq;
	return p->offset < q->offset ? -1 : p->offset > q->offset;
}

/*
 * Each entry is its own sequence (Tail = itself) and at most 127 sectors,
 * less than half the smallest log: the next entry never overwrites the
 * last complete one, so a torn entry leaves that one to replay (it is
 * already applied; replaying it again changes nothing).
 */
int vhdx_log_write_dirty(struct vhdx *x)
{
	uint32_t n = (uint32_t)x->ndirty;
	uint64_t len = (uint64_t)(1 + n) * SECTOR, seq = x->log_seq + 1;
	uint8_t *e, *sectors;
	int r;

	if (!n)
		return 0;
	if (n > VHDX_LOG_MAX_DESC)
		return vhd_set_error(-EINVAL,
				     "%s: %u metadata sectors in one "
				     "log entry",
				     x->path, n);
	qsort(x->dirty, n, sizeof(*x->dirty), cmp_dirty);
	e = calloc(1, len);
	sectors = malloc((size_t)n * SECTOR);
	if (!e || !sectors) {
		free(e);
		free(sectors);
		return vhd_set_error(-ENOMEM, "out of memory");
	}
	memcpy(e, "loge", 4);
	vhdx_put32(e + 8, (uint32_t)len);
	vhdx_put32(e + 12, x->log_head);
	vhdx_put64(e + 16, seq);
	vhdx_put32(e + 24, n);
	memcpy(e + 32, x->header.log_guid, 16);
	vhdx_put64(e + 48, x->real_size);
	vhdx_put64(e + 56, x->real_size);
	r = 0;
	for (uint32_t i = 0; r == 0 && i < n; i++) {
		uint8_t *d = e + 64 + 32 * (size_t)i, *s = sectors + i * SECTOR;
		uint8_t *data = e + (size_t)(1 + i) * SECTOR;

		r = vhdx_dirty_sector(x, &x->dirty[i], s);
		memcpy(d, "desc", 4);
		memcpy(d + 4, s + 4092, 4);
		memcpy(d + 8, s, 8);
		vhdx_put64(d + 16, x->dirty[i].offset);
		vhdx_put64(d + 24, seq);
		memcpy(data, "data", 4);
		vhdx_put32(data + 4, (uint32_t)(seq >> 32));
		memcpy(data + 8, s + 8, 4084);
		vhdx_put32(data + 4092, (uint32_t)seq);
	}
	vhdx_put32(e + 4, vhd_crc32c_skip(e, len, 4));
	/* logged and durable, then in place and durable */
	if (r == 0)
		r = ring_write(x, e, len, x->log_head);
	if (r == 0)
		r = vhd_io_sync(x->fd);
	if (r == 0) {
		x->log_seq = seq;
		x->log_head =
			(uint32_t)((x->log_head + len) % x->header.log_length);
	}
	for (uint32_t i = 0; r == 0 && i < n; i++)
		r = vhd_io_write(x->fd, sectors + i * SECTOR, SECTOR,
				 x->dirty[i].offset);
	if (r == 0)
		r = vhd_io_sync(x->fd);
	free(e);
	free(sectors);
	if (r < 0)
		return vhd_set_error(r, "%s: metadata update failed: %s",
				     x->path, strerror(-r));
	vhdx_dirty_clear(x);
	return 0;
}
