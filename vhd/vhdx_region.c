// SPDX-License-Identifier: MIT
/*
 * Region table: where the BAT and the metadata live. Copy 1 is read; copy
 * 2 only when copy 1 fails its signature or CRC.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int vhdx_region_parse(struct vhdx *x, const uint8_t *b, bool *soft)
{
	struct vhdx_region *found[2] = {NULL, NULL};
	struct vhdx_region bat = {0}, meta = {0};
	uint32_t count, stored, computed;
	uint64_t end = 0;

	*soft = true;
	if (memcmp(b, "regi", 4) != 0)
		return vhd_set_error(-EINVAL, "signature is not \"regi\"");
	stored = vhdx_le32(b + 4);
	computed = vhd_crc32c_skip(b, VHDX_REGION_SIZE, 4);
	if (stored != computed)
		return vhd_set_error(-EINVAL,
				     "CRC-32C mismatch (stored 0x%08x, "
				     "computed 0x%08x)",
				     stored, computed);
	*soft = false;
	count = vhdx_le32(b + 8);
	if (count > VHDX_REGION_MAX_ENTRIES)
		return vhd_set_error(-EINVAL, "%u entries (at most %u)", count,
				     VHDX_REGION_MAX_ENTRIES);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = b + 16 + 32 * (size_t)i;
		struct vhdx_region r;
		bool known;
		char g[37];

		memcpy(r.guid, e, 16);
		r.offset = vhdx_le64(e + 16);
		r.length = vhdx_le32(e + 24);
		r.required = vhdx_le32(e + 28) & 1;
		vhdx_guid_str(r.guid, g);
		known = memcmp(r.guid, vhdx_guid_bat, 16) == 0 ||
			memcmp(r.guid, vhdx_guid_metadata, 16) == 0;
		/* Only what is read must be in the file: an optional
		 * region may lie past its end (the spec bounds regions by
		 * alignment; qemu and openvmm accept that). */
		if (r.offset < VHDX_MIB || r.offset % VHDX_MIB ||
		    r.length == 0 || r.length % VHDX_MIB ||
		    r.offset > VHDX_MAX_FILE_OFFSET - r.length ||
		    (known && (r.offset > x->file_size ||
			       r.length > x->file_size - r.offset)))
			return vhd_set_error(
				-EINVAL,
				"region %s at offset %" PRIu64
				" length %u is not 1 MiB aligned "
				"inside %s (%" PRIu64 " bytes)",
				g, r.offset, r.length,
				known ? "the file" : "the largest file",
				known ? x->file_size
				      : (uint64_t)VHDX_MAX_FILE_OFFSET);
		if (r.offset + r.length > end)
			end = r.offset + r.length;
		if (memcmp(r.guid, vhdx_guid_bat, 16) == 0) {
			if (found[0])
				return vhd_set_error(-EINVAL,
						     "two BAT regions");
			bat = r;
			found[0] = &bat;
		} else if (memcmp(r.guid, vhdx_guid_metadata, 16) == 0) {
			if (found[1])
				return vhd_set_error(-EINVAL,
						     "two metadata regions");
			meta = r;
			found[1] = &meta;
		} else if (r.required) {
			return vhd_set_error(-EINVAL,
					     "unknown required region %s", g);
		}
	}
	if (!found[0] || !found[1])
		return vhd_set_error(-EINVAL, "no %s region",
				     found[0] ? "metadata" : "BAT");
	if (overlaps(bat.offset, bat.length, meta.offset, meta.length))
		return vhd_set_error(-EINVAL,
				     "BAT and metadata regions overlap");
	if (!vhdx_guid_is_zero(x->header.log_guid) &&
	    (overlaps(bat.offset, bat.length, x->header.log_offset,
		      x->header.log_length) ||
	     overlaps(meta.offset, meta.length, x->header.log_offset,
		      x->header.log_length)))
		return vhd_set_error(-EINVAL, "a region overlaps the log");
	x->bat_region = bat;
	x->meta_region = meta;
	x->regions_end = end;
	return 0;
}

const uint64_t vhdx_region_at[2] = {VHDX_REGION1_OFF, VHDX_REGION2_OFF};

int vhdx_read_regions(struct vhdx *x)
{
	uint8_t *buf = malloc(VHDX_REGION_SIZE);
	char why[256] = "";
	bool soft;
	int r = -ENOMEM;

	if (!buf)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (int i = 0; i < 2; i++) {
		r = vhdx_pread_file(x, buf, VHDX_REGION_SIZE,
				    vhdx_region_at[i]);
		if (r < 0)
			goto out;
		r = vhdx_region_parse(x, buf, &soft);
		if (r == 0) {
			x->region_from_copy = i == 1;
			goto out;
		}
		if (i == 0)
			snprintf(why, sizeof(why), "%s", vhd_errmsg());
		/* A valid copy 1 with bad contents is the answer. */
		if (!soft && i == 0)
			break;
	}
	r = vhd_set_error(-EINVAL, "%s: bad VHDX region table: %s", x->path,
			  why);
out:
	free(buf);
	return r;
}
