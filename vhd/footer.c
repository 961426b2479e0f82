// SPDX-License-Identifier: MIT
/* The 512-byte footer: decode, encode, validate, find, CHS geometry. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vhd_i.h"

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < csum_off || i >= csum_off + 4)
			sum += buf[i];
	return ~sum;
}

void vhd_footer_decode(const uint8_t *b, struct vhd_footer *f)
{
	memcpy(f->cookie, b, 8);
	f->features = vhd_get32(b + 8);
	f->version = vhd_get32(b + 12);
	f->data_offset = vhd_get64(b + 16);
	f->timestamp = vhd_get32(b + 24);
	memcpy(f->creator_app, b + 28, 4);
	f->creator_version = vhd_get32(b + 32);
	f->creator_os = vhd_get32(b + 36);
	f->original_size = vhd_get64(b + 40);
	f->current_size = vhd_get64(b + 48);
	f->cylinders = vhd_get16(b + 56);
	f->heads = b[58];
	f->sectors_per_track = b[59];
	f->disk_type = vhd_get32(b + 60);
	f->checksum = vhd_get32(b + 64);
	memcpy(f->uuid, b + 68, 16);
	f->saved_state = b[84];
	memcpy(f->reserved, b + 85, sizeof(f->reserved));
}

void vhd_footer_encode(const struct vhd_footer *f, uint8_t *b)
{
	memset(b, 0, VHD_FOOTER_SIZE);
	memcpy(b, f->cookie, 8);
	vhd_put32(b + 8, f->features);
	vhd_put32(b + 12, f->version);
	vhd_put64(b + 16, f->data_offset);
	vhd_put32(b + 24, f->timestamp);
	memcpy(b + 28, f->creator_app, 4);
	vhd_put32(b + 32, f->creator_version);
	vhd_put32(b + 36, f->creator_os);
	vhd_put64(b + 40, f->original_size);
	vhd_put64(b + 48, f->current_size);
	vhd_put16(b + 56, f->cylinders);
	b[58] = f->heads;
	b[59] = f->sectors_per_track;
	vhd_put32(b + 60, f->disk_type);
	memcpy(b + 68, f->uuid, 16);
	b[84] = f->saved_state;
	memcpy(b + 85, f->reserved, sizeof(f->reserved));
	vhd_put32(b + 64, vhd_checksum(b, VHD_FOOTER_SIZE, 64));
}

/*
 * blktap 1.1 set its "hidden" byte (offset 85) without updating the
 * checksum: such a footer sums to the stored value plus that byte.
 */
static bool tap_stale_hidden(const uint8_t *b, uint32_t stored,
			     uint32_t computed)
{
	return memcmp(b + 28, "tap", 4) == 0 &&
	       vhd_get32(b + 32) == 0x00010001 && b[85] &&
	       stored == computed + b[85];
}

int vhd_footer_validate(const char *path, const uint8_t *b, uint64_t where)
{
	uint32_t stored, computed, type;

	if (memcmp(b, "conectix", 8) != 0)
		return vhd_set_error(-EINVAL,
				     "%s: no VHD footer at offset %" PRIu64
				     " (cookie is not \"conectix\")",
				     path, where);
	stored = vhd_get32(b + 64);
	computed = vhd_checksum(b, VHD_FOOTER_SIZE, 64);
	if (stored != computed && !tap_stale_hidden(b, stored, computed))
		return vhd_set_error(-EINVAL,
				     "%s: footer checksum mismatch at offset "
				     "%" PRIu64
				     " (stored 0x%08x, computed 0x%08x)",
				     path, where, stored, computed);
	type = vhd_get32(b + 60);
	if (type != VHD_TYPE_FIXED && type != VHD_TYPE_DYNAMIC &&
	    type != VHD_TYPE_DIFF)
		return vhd_set_error(-EINVAL,
				     "%s: unsupported disk type %u in footer",
				     path, type);
	if (vhd_get64(b + 48) > VHD_MAX_SIZE)
		return vhd_set_error(-EINVAL,
				     "%s: current size %" PRIu64
				     " exceeds the 2040 GiB VHD limit",
				     path, vhd_get64(b + 48));
	return 0;
}

/*
 * Trailing footer first; a legacy 511-byte one; then the copy at offset 0
 * (dynamic and differencing only). The error of the trailing footer is the
 * one reported, since that is the authoritative copy.
 */
int vhd_read_footer(struct vhd_disk *d, uint64_t file_size)
{
	uint8_t buf[VHD_FOOTER_SIZE];
	char first_err[1024];
	bool no_cookie;
	int r, first;

	if (file_size < VHD_FOOTER_SIZE)
		return vhd_set_error(-EINVAL,
				     "%s: file too small for a VHD (%" PRIu64
				     " bytes) and not a VHDX either",
				     d->path, file_size);
	d->footer_off = file_size - VHD_FOOTER_SIZE;
	r = vhd_io_read(d->fd, buf, VHD_FOOTER_SIZE, d->footer_off);
	if (r < 0)
		return vhd_set_error(r, "%s: cannot read footer: %s", d->path,
				     strerror(-r));
	first = vhd_footer_validate(d->path, buf, d->footer_off);
	if (first == 0)
		goto found;
	no_cookie = memcmp(buf, "conectix", 8) != 0;
	snprintf(first_err, sizeof(first_err), "%s", vhd_errmsg());

	if (file_size % VHD_SECTOR_SIZE == VHD_FOOTER_SIZE - 1) {
		memset(buf, 0, sizeof(buf));
		r = vhd_io_read(d->fd, buf, VHD_FOOTER_SIZE - 1,
				file_size - (VHD_FOOTER_SIZE - 1));
		if (r == 0 && vhd_footer_validate(d->path, buf, 0) == 0) {
			d->footer_off = file_size - (VHD_FOOTER_SIZE - 1);
			goto found;
		}
	}
	r = vhd_io_read(d->fd, buf, VHD_FOOTER_SIZE, 0);
	if (r == 0 && memcmp(buf, "conectix", 8) == 0)
		no_cookie = false;
	if (r == 0 && vhd_footer_validate(d->path, buf, 0) == 0 &&
	    vhd_get32(buf + 60) != VHD_TYPE_FIXED) {
		/* The damaged tail is not data: new blocks go after it. */
		d->footer_from_copy = true;
		d->footer_off = file_size;
		goto found;
	}
	if (no_cookie)
		return vhd_set_error(first,
				     "%s: neither a VHD (no \"conectix\" "
				     "footer cookie at the end or at offset 0) "
				     "nor a VHDX (no \"vhdxfile\" identifier "
				     "at offset 0)",
				     d->path);
	return vhd_set_error(first,
			     "%s; the copy at offset 0 is not usable "
			     "either",
			     first_err);
found:
	vhd_footer_decode(buf, &d->footer);
	return 0;
}

/* CHS from the specification's appendix; rounds down. */
void vhd_geometry(uint64_t size, uint16_t *cyl, uint8_t *heads, uint8_t *spt)
{
	uint64_t total = size / VHD_SECTOR_SIZE;
	uint64_t cth, h, s;

	if (total > 65535ull * 16 * 255)
		total = 65535ull * 16 * 255;
	if (total >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = total / s;
	} else {
		s = 17;
		cth = total / s;
		h = (cth + 1023) / 1024;
		if (h < 4)
			h = 4;
		if (cth >= h * 1024 || h > 16) {
			s = 31;
			h = 16;
			cth = total / s;
		}
		if (cth >= h * 1024) {
			s = 63;
			h = 16;
			cth = total / s;
		}
	}
	*cyl = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*spt = (uint8_t)s;
}
