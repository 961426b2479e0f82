// SPDX-License-Identifier: MIT
/*
 * Growing a fixed or dynamic VHDX. Everything the bigger disk needs is
 * written first where nothing of the current disk looks (BAT entries past
 * its entry count, a BAT region past its length or at the end of the
 * file, new fixed blocks, the invisible tail of the last block) and made
 * durable; then one log entry switches the virtual disk size item and,
 * when the BAT region moved or grew, both region tables. A crash leaves
 * the old or the new disk, the old content unchanged either way.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx_i.h"

#define SECTOR VHDX_LOG_SECTOR
#define ZERO_CHUNK (1u << 20)

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Does anything the file holds lie in [@off, @off + @len)? */
static bool in_use(const struct vhdx *x, uint64_t off, uint64_t len)
{
	if (overlaps(off, len, x->header.log_offset, x->header.log_length) ||
	    overlaps(off, len, x->meta_region.offset, x->meta_region.length))
		return true;
	for (uint64_t i = 0; i < x->bat_entries; i++) {
		uint64_t e = x->bat[i];
		bool sb = (i + 1) % (x->chunk_ratio + 1) == 0;
		unsigned st = VHDX_BAT_STATE(e);

		if (sb ? st == VHDX_SB_PRESENT
		       : st == VHDX_PAYLOAD_FULLY_PRESENT ||
				    st == VHDX_PAYLOAD_PARTIALLY_PRESENT) {
			uint64_t n = sb ? VHDX_MIB : x->meta.block_size;

			if (overlaps(off, len, VHDX_BAT_OFFSET(e), n))
				return true;
		}
	}
	return false;
}

static int write_zeros(struct vhdx *x, uint64_t off, uint64_t len)
{
	uint8_t *z = calloc(1, ZERO_CHUNK);
	int r = 0;

	if (!z)
		return vhd_set_error(-ENOMEM, "out of memory");
	while (r == 0 && len) {
		size_t n = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;

		r = vhdx_write_file(x, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return r;
}

/*
 * The bytes of the last block past the old size become visible: zeros
 * (another writer may have left anything there).
 */
static int zero_tail(struct vhdx *x, uint64_t new_size)
{
	uint64_t old = x->meta.disk_size, bs = x->meta.block_size;
	uint64_t b = old / bs, in = old % bs, e, end;
	unsigned st;

	if (!in)
		return 0;
	e = x->bat[vhdx_payload_index(x, b)];
	st = VHDX_BAT_STATE(e);
	if (st != VHDX_PAYLOAD_FULLY_PRESENT &&
	    st != VHDX_PAYLOAD_PARTIALLY_PRESENT)
		return 0;
	end = new_size - b * bs < bs ? new_size - b * bs : bs;
	return write_zeros(x, VHDX_BAT_OFFSET(e) + in, end - in);
}

struct plan {
	uint64_t size, entries, payload;
	uint64_t bat_off, bat_len; /* the BAT region after */
	uint64_t first_block;	   /* of a fixed disk's new blocks */
	uint64_t end;		   /* of the file after */
};

/* Entry @i of the bigger BAT. */
static uint64_t new_entry(const struct vhdx *x, const struct plan *p,
			  uint64_t i)
{
	uint64_t b;

	if (i < x->bat_entries)
		return x->bat[i];
	if ((i + 1) % (x->chunk_ratio + 1) == 0 || !x->meta.leave_allocated)
		return 0; /* sector bitmap, or NOT_PRESENT */
	b = i - i / (x->chunk_ratio + 1);
	return (p->first_block + (b - x->payload_blocks) * x->meta.block_size) |
	       VHDX_PAYLOAD_FULLY_PRESENT;
}

/* Entries [@from, @to) of the bigger BAT and zero padding to @pad_to, at
 * file offset @base + 8 * @from. */
static int write_entries(struct vhdx *x, const struct plan *p, uint64_t base,
			 uint64_t from, uint64_t to, uint64_t pad_to)
{
	const uint64_t per = ZERO_CHUNK / 8;
	uint8_t *buf = malloc(ZERO_CHUNK);
	int r = 0;

	if (!buf)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (uint64_t i = from; r == 0 && i < pad_to; i += per) {
		uint64_t n = pad_to - i < per ? pad_to - i : per;

		for (uint64_t k = 0; k < n; k++)
			vhdx_put64(buf + 8 * k,
				   i + k < to ? new_entry(x, p, i + k) : 0);
		r = vhdx_write_file(x, buf, (size_t)(8 * n), base + 8 * i);
	}
	free(buf);
	return r;
}

/* Where the BAT and a fixed disk's new blocks go. */
static void make_plan(const struct vhdx *x, struct plan *p)
{
	uint64_t need = vhd_align_up(p->entries * 8, VHDX_MIB);
	uint64_t file_end = vhd_align_up(x->real_size, VHDX_MIB);

	p->bat_off = x->bat_region.offset;
	p->bat_len = x->bat_region.length;
	if (need > p->bat_len) {
		uint64_t grow = p->bat_off + p->bat_len;

		if (in_use(x, grow, need - p->bat_len))
			p->bat_off = file_end;
		p->bat_len = need;
		if (p->bat_off + need > file_end)
			file_end = p->bat_off + need;
	}
	p->first_block = file_end;
	p->end = file_end;
	if (x->meta.leave_allocated)
		p->end += (p->payload - x->payload_blocks) *
			  (uint64_t)x->meta.block_size;
}

/* Region table @t1 as it will be: the BAT entry changed. */
static int new_region_table(struct vhdx *x, const struct plan *p,
			    const uint8_t *t1, uint8_t *out)
{
	uint32_t count = vhdx_le32(t1 + 8);

	memcpy(out, t1, VHDX_REGION_SIZE);
	for (uint32_t i = 0; i < count && i < VHDX_REGION_MAX_ENTRIES; i++) {
		uint8_t *e = out + 16 + 32 * (size_t)i;

		if (memcmp(e, vhdx_guid_bat, 16))
			continue;
		vhdx_put64(e + 16, p->bat_off);
		vhdx_put32(e + 24, (uint32_t)p->bat_len);
		vhdx_put32(out + 4, vhd_crc32c_skip(out, VHDX_REGION_SIZE, 4));
		return 0;
	}
	return vhd_set_error(-EINVAL, "%s: no BAT in region table", x->path);
}

/* The sectors the switch changes: offsets and contents. */
struct change {
	uint64_t offs[VHDX_LOG_MAX_DESC];
	uint8_t *data;
	size_t n;
};

/* Queue each sector of [@old, @old + @len) at @off that @new changes
 * (at most 2 + 2 x 16: always fits one log entry). */
static void diff_sectors(struct change *c, uint64_t off, const uint8_t *old,
			 const uint8_t *new, size_t len)
{
	for (size_t s = 0; s < len; s += SECTOR) {
		if (!memcmp(old + s, new + s, SECTOR))
			continue;
		c->offs[c->n] = off + s;
		memcpy(c->data + c->n * SECTOR, new + s, SECTOR);
		c->n++;
	}
}

/* The virtual disk size item's offset in the metadata region. */
static int size_item(struct vhdx *x, const uint8_t *table, uint32_t *at)
{
	uint16_t count = vhdx_le16(table + 10);

	for (uint16_t i = 0; i < count && i < VHDX_META_MAX_ENTRIES; i++) {
		const uint8_t *e = table + 32 + 32 * (size_t)i;

		if (!memcmp(e, vhdx_guid_disk_size, 16)) {
			*at = vhdx_le32(e + 16);
			return 0;
		}
	}
	return vhd_set_error(-EINVAL, "%s: no virtual disk size item", x->path);
}

static int build_switch(struct vhdx *x, const struct plan *p, struct change *c)
{
	uint8_t *old = malloc(VHDX_REGION_SIZE),
		*new = malloc(VHDX_REGION_SIZE);
	uint8_t sect[2 * SECTOR], was[2 * SECTOR];
	uint32_t at = 0;
	uint64_t s0;
	int r = -ENOMEM;

	if (!old || !new) {
		vhd_set_error(r, "out of memory");
		goto out;
	}
	/* the size item (8 bytes, perhaps across a sector boundary) */
	r = vhdx_pread_file(x, old, VHDX_META_TABLE_SIZE,
			    x->meta_region.offset);
	if (r == 0)
		r = size_item(x, old, &at);
	if (r < 0)
		goto out;
	s0 = (x->meta_region.offset + at) & ~(uint64_t)(SECTOR - 1);
	r = vhdx_pread_file(x, was, sizeof(was), s0);
	if (r < 0)
		goto out;
	memcpy(sect, was, sizeof(sect));
	vhdx_put64(sect + (x->meta_region.offset + at - s0), p->size);
	diff_sectors(c, s0, was, sect, sizeof(sect));
	/* both region tables, when the BAT region changes */
	if (p->bat_off != x->bat_region.offset ||
	    p->bat_len != x->bat_region.length) {
		uint8_t *t = malloc(VHDX_REGION_SIZE);

		r = t ? vhdx_pread_file(x, old, VHDX_REGION_SIZE,
					VHDX_REGION1_OFF)
		      : vhd_set_error(-ENOMEM, "out of memory");
		if (r == 0)
			r = new_region_table(x, p, old, new);
		if (r == 0) {
			diff_sectors(c, VHDX_REGION1_OFF, old, new,
				     VHDX_REGION_SIZE);
			r = vhdx_pread_file(x, t, VHDX_REGION_SIZE,
					    VHDX_REGION2_OFF);
		}
		if (r == 0)
			diff_sectors(c, VHDX_REGION2_OFF, t, new,
				     VHDX_REGION_SIZE);
		free(t);
	}
out:
	free(old);
	free(new);
	return r;
}

/* Everything the bigger disk needs, where the current one does not look. */
static int prepare(struct vhdx *x, const struct plan *p)
{
	int r;

	if (p->end > x->real_size && ftruncate(x->fd, (off_t)p->end) < 0)
		return vhd_set_error(-errno, "%s: cannot grow the file: %s",
				     x->path, strerror(errno));
	if (p->end > x->real_size)
		x->real_size = x->file_size = x->alloc_end = p->end;
	r = zero_tail(x, p->size);
	if (r == 0 && p->bat_off == x->bat_region.offset)
		r = write_entries(x, p, p->bat_off, x->bat_entries, p->entries,
				  p->bat_len == x->bat_region.length
					  ? p->entries
					  : p->bat_len / 8);
	else if (r == 0)
		r = write_entries(x, p, p->bat_off, 0, p->entries,
				  p->bat_len / 8);
	if (r == 0)
		r = vhd_io_sync(x->fd);
	if (r < 0)
		return vhd_set_error(r, "%s: cannot prepare the expansion: %s",
				     x->path, strerror(-r));
	return 0;
}

int vhdx_expand(struct vhd_disk *d, uint64_t size)
{
	struct vhdx *x = d->vhdx;
	uint32_t bs = x->meta.block_size, lss = x->meta.logical_sector;
	struct plan p = {.size = size};
	struct change c = {0};
	int r;

	p.entries = vhdx_bat_entries_for(size, bs, lss, false);
	p.payload = (size + bs - 1) / bs;
	if (p.entries > VHDX_MAX_BAT_ENTRIES)
		return vhd_set_error(-EFBIG,
				     "%s: %" PRIu64 " blocks of %u bytes is "
				     "more than this library supports",
				     d->path, p.payload, bs);
	make_plan(x, &p);
	c.data = malloc((size_t)VHDX_LOG_MAX_DESC * SECTOR);
	if (!c.data)
		return vhd_set_error(-ENOMEM, "out of memory");
	pthread_rwlock_wrlock(&d->lock);
	/* the session's FileWriteGuid before the file changes at all; the
	 * new size is a visible change: a new DataWriteGuid too */
	r = vhdx_begin_session(x);
	if (r == 0)
		r = build_switch(x, &p, &c);
	if (r == 0)
		r = prepare(x, &p);
	if (r == 0)
		r = vhdx_log_sectors(x, c.offs, c.data, c.n);
	if (r == 0) {
		x->meta.disk_size = size;
		x->bat_region.offset = p.bat_off;
		x->bat_region.length = (uint32_t)p.bat_len;
	}
	pthread_rwlock_unlock(&d->lock);
	free(c.data);
	return r;
}
