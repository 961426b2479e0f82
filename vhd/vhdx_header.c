// SPDX-License-Identifier: MIT
/*
 * File identifier and the two headers: the valid one with the larger
 * sequence number is current; the other is never read again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vhdx_i.h"

/* 0 when @buf is a valid header (signature, CRC, versions), else -EINVAL
 * and a short reason in the error buffer (without the path). */
int vhdx_header_decode(const uint8_t *b, struct vhdx_header *h)
{
	uint32_t stored, computed;

	if (memcmp(b, "head", 4) != 0)
		return vhd_set_error(-EINVAL, "signature is not \"head\"");
	stored = vhdx_le32(b + 4);
	computed = vhd_crc32c_skip(b, VHDX_HEADER_SIZE, 4);
	if (stored != computed)
		return vhd_set_error(-EINVAL,
				     "CRC-32C mismatch (stored 0x%08x, "
				     "computed 0x%08x)",
				     stored, computed);
	h->seq = vhdx_le64(b + 8);
	memcpy(h->file_write_guid, b + 16, 16);
	memcpy(h->data_write_guid, b + 32, 16);
	memcpy(h->log_guid, b + 48, 16);
	h->log_version = vhdx_le16(b + 64);
	h->version = vhdx_le16(b + 66);
	h->log_length = vhdx_le32(b + 68);
	h->log_offset = vhdx_le64(b + 72);
	if (h->version != 1)
		return vhd_set_error(-EINVAL, "unsupported version %u",
				     h->version);
	if (h->log_version != 0 && !vhdx_guid_is_zero(h->log_guid))
		return vhd_set_error(-EINVAL, "unsupported log version %u",
				     h->log_version);
	return 0;
}

const uint64_t vhdx_header_at[2] = {VHDX_HEADER1_OFF, VHDX_HEADER2_OFF};

int vhdx_read_headers(struct vhdx *x)
{
	uint8_t buf[2][VHDX_HEADER_SIZE];
	struct vhdx_header h[2];
	char why[2][256];
	bool ok[2];
	int r;

	if (x->file_size < VHDX_REGION2_OFF + VHDX_REGION_SIZE)
		return vhd_set_error(-EINVAL,
				     "%s: file too small for a VHDX (%" PRIu64
				     " bytes)",
				     x->path, x->file_size);
	r = vhdx_pread_file(x, buf[0], 8, 0);
	if (r < 0)
		return r;
	if (memcmp(buf[0], "vhdxfile", 8) != 0)
		return vhd_set_error(-EINVAL,
				     "%s: not a VHDX (no \"vhdxfile\" "
				     "identifier at offset 0)",
				     x->path);
	for (int i = 0; i < 2; i++) {
		r = vhdx_pread_file(x, buf[i], VHDX_HEADER_SIZE,
				    vhdx_header_at[i]);
		if (r < 0)
			return r;
		ok[i] = vhdx_header_decode(buf[i], &h[i]) == 0;
		snprintf(why[i], sizeof(why[i]), "%s", vhd_errmsg());
	}
	vhd_clear_error();
	if (!ok[0] && !ok[1])
		return vhd_set_error(-EINVAL,
				     "%s: no valid VHDX header: header 1 (at "
				     "64 KiB): %s; header 2 (at 128 KiB): %s",
				     x->path, why[0], why[1]);
	if (ok[0] && ok[1] && h[0].seq == h[1].seq &&
	    memcmp(buf[0], buf[1], VHDX_HEADER_SIZE) != 0)
		return vhd_set_error(-EINVAL,
				     "%s: both VHDX headers have sequence "
				     "number %" PRIu64 " but differ",
				     x->path, h[0].seq);
	/* Identical headers (as Disk2VHD writes): either is current. */
	x->header_slot = (!ok[1] || (ok[0] && h[0].seq >= h[1].seq)) ? 1 : 2;
	x->header = h[x->header_slot - 1];
	return 0;
}

int vhdx_header_update(struct vhdx *x)
{
	uint8_t buf[VHDX_HEADER_SIZE];

	for (int i = 0; i < 2; i++) {
		struct vhdx_header h = x->header;
		int slot = x->header_slot == 1 ? 2 : 1;
		int r;

		h.seq++;
		vhdx_header_encode(&h, buf);
		r = vhd_io_write(x->fd, buf, sizeof(buf),
				 vhdx_header_at[slot - 1]);
		if (r == 0)
			r = vhd_io_sync(x->fd);
		if (r < 0)
			return vhd_set_error(r, "%s: cannot update header: %s",
					     x->path, strerror(-r));
		x->header = h;
		x->header_slot = slot;
	}
	return 0;
}
