// SPDX-License-Identifier: MIT
/*
 * Metadata region: a table of items, each bounds-checked against the
 * region, then the known items decoded (file parameters, sizes, page 83
 * id, parent locator).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

enum item {
	FILE_PARAMS,
	DISK_SIZE,
	PAGE83,
	LOGICAL,
	PHYSICAL,
	LOCATOR,
	NITEMS
};

static const struct {
	const uint8_t *guid;
	const char *name;
	uint32_t min_len;
} items[NITEMS] = {
	[FILE_PARAMS] = {vhdx_guid_file_params, "file parameters", 8},
	[DISK_SIZE] = {vhdx_guid_disk_size, "virtual disk size", 8},
	[PAGE83] = {vhdx_guid_page83, "virtual disk id", 16},
	[LOGICAL] = {vhdx_guid_logical_sector, "logical sector size", 4},
	[PHYSICAL] = {vhdx_guid_physical_sector, "physical sector size", 4},
	[LOCATOR] = {vhdx_guid_parent_locator, "parent locator", 20},
};

struct found {
	bool seen;
	uint32_t offset, length;
};

static int key_is(const char *k, const char *want)
{
	return strcmp(k, want) == 0;
}

int vhdx_locator_decode(const char *path, const uint8_t *it, uint32_t len,
			struct vhdx_locator *loc)
{
	uint16_t count;
	uint8_t guid[16];
	char key[256];
	char *value = malloc(8192);

	memset(loc, 0, sizeof(*loc));
	if (!value)
		return vhd_set_error(-ENOMEM, "out of memory");
	if (len < 20) {
		free(value);
		return vhd_set_error(-EINVAL, "%s: parent locator too short",
				     path);
	}
	if (memcmp(it, vhdx_guid_locator_type, 16) != 0) {
		char g[37];

		vhdx_guid_str(it, g);
		free(value);
		return vhd_set_error(-EINVAL,
				     "%s: parent locator of unknown type %s",
				     path, g);
	}
	count = vhdx_le16(it + 18);
	if (20 + 12 * (uint64_t)count > len) {
		free(value);
		return vhd_set_error(-EINVAL,
				     "%s: parent locator's %u entries do not "
				     "fit in its %u bytes",
				     path, count, len);
	}
	for (uint16_t i = 0; i < count; i++) {
		const uint8_t *e = it + 20 + 12 * (size_t)i;
		uint32_t ko = vhdx_le32(e), vo = vhdx_le32(e + 4);
		uint16_t kl = vhdx_le16(e + 8), vl = vhdx_le16(e + 10);
		char *dst = NULL;
		size_t dlen = 0;

		if (ko > len || kl > len - ko || vo > len || vl > len - vo ||
		    kl % 2 || vl % 2 || kl == 0) {
			free(value);
			return vhd_set_error(-EINVAL,
					     "%s: parent locator entry %u "
					     "(key %u+%u, value %u+%u) "
					     "outside the %u-byte item",
					     path, i, ko, kl, vo, vl, len);
		}
		if (vhd_utf16_to_utf8(it + ko, kl / 2, false, key,
				      sizeof(key)) < 0)
			continue; /* too long to be a key we know */
		if (key_is(key, "parent_linkage"))
			dst = loc->parent_linkage,
			dlen = sizeof(loc->parent_linkage);
		else if (key_is(key, "parent_linkage2"))
			dst = loc->parent_linkage2,
			dlen = sizeof(loc->parent_linkage2);
		else if (key_is(key, "relative_path"))
			dst = loc->relative_path,
			dlen = sizeof(loc->relative_path);
		else if (key_is(key, "volume_path"))
			dst = loc->volume_path, dlen = sizeof(loc->volume_path);
		else if (key_is(key, "absolute_win32_path"))
			dst = loc->absolute_win32_path,
			dlen = sizeof(loc->absolute_win32_path);
		if (!dst)
			continue;
		if (vhd_utf16_to_utf8(it + vo, vl / 2, false, value, 8192) <
			    0 ||
		    strlen(value) >= dlen) {
			free(value);
			return vhd_set_error(-EINVAL,
					     "%s: parent locator value of %s "
					     "is too long",
					     path, key);
		}
		memcpy(dst, value, strlen(value) + 1);
	}
	free(value);
	loc->present = true;
	if (!loc->parent_linkage[0])
		return vhd_set_error(-EINVAL,
				     "%s: parent locator has no parent_linkage",
				     path);
	if (vhdx_guid_parse(loc->parent_linkage, guid) < 0)
		return vhd_set_error(-EINVAL,
				     "%s: parent_linkage \"%s\" is not a GUID",
				     path, loc->parent_linkage);
	return 0;
}

static int decode_items(struct vhdx *x, const uint8_t *region,
			const struct found *f)
{
	struct vhdx_meta *m = &x->meta;
	const uint8_t *p;
	uint32_t flags;

	for (int i = 0; i < NITEMS; i++) {
		if (i == LOCATOR)
			continue;
		if (!f[i].seen)
			return vhd_set_error(-EINVAL,
					     "%s: metadata item \"%s\" missing",
					     x->path, items[i].name);
	}
	p = region + f[FILE_PARAMS].offset;
	m->block_size = vhdx_le32(p);
	flags = vhdx_le32(p + 4);
	m->leave_allocated = flags & 1;
	m->has_parent = flags & 2;
	if (m->block_size < VHDX_MIN_BLOCK || m->block_size > VHDX_MAX_BLOCK ||
	    (m->block_size & (m->block_size - 1)))
		return vhd_set_error(-EINVAL,
				     "%s: block size %u is not a power of two "
				     "from 1 MiB to 256 MiB",
				     x->path, m->block_size);
	m->logical_sector = vhdx_le32(region + f[LOGICAL].offset);
	m->physical_sector = vhdx_le32(region + f[PHYSICAL].offset);
	if (m->logical_sector != 512 && m->logical_sector != 4096)
		return vhd_set_error(-EINVAL,
				     "%s: logical sector size %u (512 or 4096 "
				     "expected)",
				     x->path, m->logical_sector);
	if (m->physical_sector != 512 && m->physical_sector != 4096)
		return vhd_set_error(-EINVAL,
				     "%s: physical sector size %u (512 or 4096 "
				     "expected)",
				     x->path, m->physical_sector);
	m->disk_size = vhdx_le64(region + f[DISK_SIZE].offset);
	if (m->disk_size == 0 || m->disk_size > VHDX_MAX_SIZE ||
	    m->disk_size % m->logical_sector)
		return vhd_set_error(-EINVAL,
				     "%s: virtual disk size %" PRIu64
				     " is not a multiple of the %u-byte "
				     "sector from 1 sector to 64 TiB",
				     x->path, m->disk_size, m->logical_sector);
	memcpy(m->page83, region + f[PAGE83].offset, 16);
	if (!m->has_parent)
		return 0;
	if (!f[LOCATOR].seen)
		return vhd_set_error(-EINVAL,
				     "%s: differencing VHDX without a parent "
				     "locator",
				     x->path);
	return vhdx_locator_decode(x->path, region + f[LOCATOR].offset,
				   f[LOCATOR].length, &m->loc);
}

/* A defective table entry: a check reports it and goes on. */
static bool entry_defect(vhd_report_fn fn, void *ctx, int *bad)
{
	if (!fn)
		return false;
	fn(ctx, vhd_errmsg());
	(*bad)++;
	return true;
}

/*
 * The table and every item. Without @fn the first defect ends it (-EINVAL);
 * with @fn every defective entry is reported and counted (the items are
 * decoded only when all entries are sound).
 */
static int read_metadata(struct vhdx *x, vhd_report_fn fn, void *ctx)
{
	uint32_t rlen = x->meta_region.length;
	struct found f[NITEMS] = {0};
	uint8_t *region;
	uint16_t count;
	int r, bad = 0;

	/* The region's length was bounded by the file; cap the allocation. */
	if (rlen < VHDX_META_TABLE_SIZE || rlen > 64 * VHDX_MIB) {
		region = NULL;
		r = vhd_set_error(-EINVAL, "%s: metadata region of %u bytes",
				  x->path, rlen);
		goto out;
	}
	region = malloc(rlen);
	if (!region)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = vhdx_pread_file(x, region, rlen, x->meta_region.offset);
	if (r < 0)
		goto out;
	r = -EINVAL;
	if (memcmp(region, "metadata", 8) != 0) {
		vhd_set_error(r,
			      "%s: metadata table signature is not "
			      "\"metadata\"",
			      x->path);
		goto out;
	}
	count = vhdx_le16(region + 10);
	if (count > VHDX_META_MAX_ENTRIES) {
		vhd_set_error(r,
			      "%s: metadata table has %u entries (at most "
			      "%u)",
			      x->path, count, VHDX_META_MAX_ENTRIES);
		goto out;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = region + 32 + 32 * (size_t)i;
		uint32_t off = vhdx_le32(e + 16), len = vhdx_le32(e + 20);
		uint32_t flags = vhdx_le32(e + 24);
		int k;
		char g[37];

		vhdx_guid_str(e, g);
		if (len &&
		    (off < VHDX_META_TABLE_SIZE || len > VHDX_META_ITEM_MAX ||
		     off > rlen || len > rlen - off)) {
			vhd_set_error(r,
				      "%s: metadata item %s (offset %u, "
				      "length %u) outside the %u-byte "
				      "region",
				      x->path, g, off, len, rlen);
			if (!entry_defect(fn, ctx, &bad))
				goto out;
			continue;
		}
		for (k = 0; k < NITEMS; k++)
			if (memcmp(e, items[k].guid, 16) == 0)
				break;
		if (k == NITEMS) {
			if ((flags & 4) &&
			    memcmp(e, vhdx_guid_incomplete, 16) == 0) {
				vhd_set_error(
					r,
					"%s: incomplete file: its creator "
					"did not finish it (required "
					"\"incomplete file\" metadata "
					"item %s)",
					x->path, g);
				goto out;
			}
			/* Windows' own items need no decoding here */
			if ((flags & 4) && memcmp(e, vhdx_guid_chs, 16) != 0 &&
			    memcmp(e, vhdx_guid_pmem_labels, 16) != 0) {
				vhd_set_error(r,
					      "%s: unknown required "
					      "metadata item %s",
					      x->path, g);
				if (!entry_defect(fn, ctx, &bad))
					goto out;
			}
			continue;
		}
		if (f[k].seen) {
			vhd_set_error(r,
				      "%s: metadata item \"%s\" appears "
				      "twice",
				      x->path, items[k].name);
			if (!entry_defect(fn, ctx, &bad))
				goto out;
			continue;
		}
		if (len < items[k].min_len) {
			vhd_set_error(r,
				      "%s: metadata item \"%s\" is %u bytes "
				      "(at least %u expected)",
				      x->path, items[k].name, len,
				      items[k].min_len);
			if (!entry_defect(fn, ctx, &bad))
				goto out;
			continue;
		}
		f[k].seen = true;
		f[k].offset = off;
		f[k].length = len;
	}
	if (bad) {
		r = bad;
		goto out;
	}
	r = decode_items(x, region, f);
	if (r == -EINVAL && fn) {
		fn(ctx, vhd_errmsg());
		r = 1;
	}
out:
	/* a table that cannot be read at all is one defect */
	if (r == -EINVAL && fn) {
		fn(ctx, vhd_errmsg());
		r = 1;
	}
	if (r > 0)
		vhd_clear_error();
	free(region);
	return r;
}

int vhdx_read_metadata(struct vhdx *x)
{
	return read_metadata(x, NULL, NULL);
}

int vhdx_check_metadata(struct vhdx *x, vhd_report_fn fn, void *ctx)
{
	return read_metadata(x, fn, ctx);
}
