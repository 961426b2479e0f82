// SPDX-License-Identifier: MIT
/* The 1024-byte dynamic header of dynamic and differencing images. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "vhd_i.h"

void vhd_header_decode(const uint8_t *b, struct vhd_header *h)
{
	memcpy(h->cookie, b, 8);
	h->data_offset = vhd_get64(b + 8);
	h->table_offset = vhd_get64(b + 16);
	h->version = vhd_get32(b + 24);
	h->max_table_entries = vhd_get32(b + 28);
	h->block_size = vhd_get32(b + 32);
	h->checksum = vhd_get32(b + 36);
	memcpy(h->parent_uuid, b + 40, 16);
	h->parent_timestamp = vhd_get32(b + 56);
	for (int i = 0; i < VHD_NAME_UNITS; i++)
		h->parent_name[i] = vhd_get16(b + 64 + 2 * i);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const uint8_t *e = b + 576 + 24 * i;

		h->loc[i].code = vhd_get32(e);
		h->loc[i].data_space = vhd_get32(e + 4);
		h->loc[i].data_length = vhd_get32(e + 8);
		h->loc[i].reserved = vhd_get32(e + 12);
		h->loc[i].data_offset = vhd_get64(e + 16);
	}
}

void vhd_header_encode(const struct vhd_header *h, uint8_t *b)
{
	memset(b, 0, VHD_HEADER_SIZE);
	memcpy(b, h->cookie, 8);
	vhd_put64(b + 8, h->data_offset);
	vhd_put64(b + 16, h->table_offset);
	vhd_put32(b + 24, h->version);
	vhd_put32(b + 28, h->max_table_entries);
	vhd_put32(b + 32, h->block_size);
	memcpy(b + 40, h->parent_uuid, 16);
	vhd_put32(b + 56, h->parent_timestamp);
	for (int i = 0; i < VHD_NAME_UNITS; i++)
		vhd_put16(b + 64 + 2 * i, h->parent_name[i]);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		uint8_t *e = b + 576 + 24 * i;

		vhd_put32(e, h->loc[i].code);
		vhd_put32(e + 4, h->loc[i].data_space);
		vhd_put32(e + 8, h->loc[i].data_length);
		vhd_put32(e + 12, h->loc[i].reserved);
		vhd_put64(e + 16, h->loc[i].data_offset);
	}
	vhd_put32(b + 36, vhd_checksum(b, VHD_HEADER_SIZE, 36));
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int vhd_read_header(struct vhd_disk *d, uint64_t file_size)
{
	uint8_t buf[VHD_HEADER_SIZE];
	struct vhd_header *h = &d->header;
	uint64_t off = d->footer.data_offset, need, max_entries;
	uint32_t stored, computed;
	int r;

	if (off > file_size || file_size - off < VHD_HEADER_SIZE)
		return vhd_set_error(-EINVAL,
				     "%s: dynamic header offset %" PRIu64
				     " is beyond the end of the file (%" PRIu64
				     " bytes)",
				     d->path, off, file_size);
	r = vhd_io_read(d->fd, buf, sizeof(buf), off);
	if (r < 0)
		return vhd_set_error(r, "%s: cannot read dynamic header: %s",
				     d->path, strerror(-r));
	if (memcmp(buf, "cxsparse", 8) != 0)
		return vhd_set_error(-EINVAL,
				     "%s: no dynamic header at offset %" PRIu64
				     " (cookie is not \"cxsparse\")",
				     d->path, off);
	stored = vhd_get32(buf + 36);
	computed = vhd_checksum(buf, VHD_HEADER_SIZE, 36);
	if (stored != computed)
		return vhd_set_error(-EINVAL,
				     "%s: dynamic header checksum mismatch "
				     "(stored 0x%08x, computed 0x%08x)",
				     d->path, stored, computed);
	vhd_header_decode(buf, h);
	if (h->version >> 16 != 1)
		return vhd_set_error(-EINVAL,
				     "%s: unsupported dynamic header version "
				     "0x%08x",
				     d->path, h->version);
	if (!is_pow2(h->block_size) || h->block_size < VHD_MIN_BLOCK_SIZE ||
	    h->block_size > VHD_MAX_BLOCK_SIZE)
		return vhd_set_error(
			-EINVAL,
			"%s: invalid block size %u (must be a power "
			"of two from 512 bytes to 256 MiB)",
			d->path, h->block_size);
	need = (d->footer.current_size + h->block_size - 1) / h->block_size;
	max_entries = (VHD_MAX_SIZE + h->block_size - 1) / h->block_size;
	if (h->max_table_entries < need)
		return vhd_set_error(-EINVAL,
				     "%s: block table has %u entries, the disk "
				     "size needs %" PRIu64,
				     d->path, h->max_table_entries, need);
	if (need > VHD_MAX_USED_ENTRIES)
		return vhd_set_error(
			-EINVAL,
			"%s: %" PRIu64 " blocks of %u bytes is more "
			"than this reader supports (%u; a 2040 GiB "
			"disk needs at most %u with 512 KiB blocks)",
			d->path, need, h->block_size, VHD_MAX_USED_ENTRIES,
			VHD_MAX_USED_ENTRIES);
	if (h->max_table_entries > max_entries)
		return vhd_set_error(
			-EINVAL,
			"%s: block table size %u entries is absurd "
			"(at most %" PRIu64 " for this block size)",
			d->path, h->max_table_entries, max_entries);
	if (h->table_offset > file_size ||
	    (file_size - h->table_offset) / 4 < h->max_table_entries)
		return vhd_set_error(-EINVAL,
				     "%s: block table (offset %" PRIu64
				     ", %u entries) extends beyond the end of "
				     "the file (%" PRIu64 " bytes)",
				     d->path, h->table_offset,
				     h->max_table_entries, file_size);
	d->block_size = h->block_size;
	d->sectors_per_block = h->block_size / VHD_SECTOR_SIZE;
	d->bitmap_size = (uint32_t)vhd_align_up((d->sectors_per_block + 7) / 8,
						VHD_SECTOR_SIZE);
	d->entries = (uint32_t)need;
	return 0;
}
