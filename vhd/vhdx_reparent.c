// SPDX-License-Identifier: MIT
/*
 * Reparenting a VHDX child: a new parent locator item (parent_linkage =
 * the new parent's DataWriteGuid, its relative and absolute paths, as
 * creation writes them) replaces the old one in the metadata region. The
 * item goes where the old one was when it fits, else into free space of
 * the region; every metadata sector that changes (item, entry table) is
 * logged in one entry, so the child names either its old or its new
 * parent after a crash. The child's own DataWriteGuid is kept: what it
 * reads does not change (the linkage check vouches for the new parent),
 * and its own children still match it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

#define SECTOR VHDX_LOG_SECTOR

static int check_parent(const struct vhd_disk *c, const struct vhd_disk *p,
			unsigned flags)
{
	const struct vhdx *cx = c->vhdx, *px = p->vhdx;
	const struct vhdx_locator *loc = &cx->meta.loc;
	uint8_t want[16], want2[16];
	char have[37];
	int r;

	if (!px)
		return vhd_set_error(
			-EINVAL,
			"%s: %s is a VHD (a chain does not mix VHD "
			"and VHDX)",
			c->path, p->path);
	r = vhd_reparent_check_chain(c, p);
	if (r < 0)
		return r;
	if (px->meta.logical_sector != cx->meta.logical_sector)
		return vhd_set_error(-EINVAL,
				     "%s: logical sector size %u differs from "
				     "%s's (%u)",
				     c->path, cx->meta.logical_sector, p->path,
				     px->meta.logical_sector);
	if (flags & VHD_REPARENT_IGNORE_ID)
		return 0;
	if ((vhdx_guid_parse(loc->parent_linkage, want) == 0 &&
	     !memcmp(want, px->header.data_write_guid, 16)) ||
	    (vhdx_guid_parse(loc->parent_linkage2, want2) == 0 &&
	     !memcmp(want2, px->header.data_write_guid, 16)))
		return 0;
	vhdx_guid_str(px->header.data_write_guid, have);
	return vhd_set_error(-EINVAL,
			     "%s: parent linkage mismatch: the child expects "
			     "%s but %s has DataWriteGuid {%s} (use "
			     "ignore-id-mismatch to accept it)",
			     c->path, loc->parent_linkage, p->path, have);
}

struct range {
	uint32_t off, len;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *p = a, *q = b;

	return p->off < q->off ? -1 : p->off > q->off;
}

/*
 * Where in the @rlen-byte region an item of @len bytes goes when the
 * entry @skip (the old locator, free once the entry points elsewhere:
 * both change in one log entry) does not hold it: the first 8-byte
 * aligned gap between the other items. 0 when there is none.
 */
static uint32_t find_gap(const uint8_t *region, uint32_t rlen, uint16_t count,
			 uint16_t skip, uint32_t len)
{
	struct range *r = calloc(count ? count : 1, sizeof(*r));
	uint64_t at = VHDX_META_TABLE_SIZE;
	size_t n = 0;

	if (!r)
		return 0;
	for (uint16_t i = 0; i < count; i++) {
		const uint8_t *e = region + 32 + 32 * (size_t)i;

		if (i != skip && vhdx_le32(e + 20))
			r[n++] = (struct range){vhdx_le32(e + 16),
						vhdx_le32(e + 20)};
	}
	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 0; i <= n; i++) {
		uint64_t end = i < n ? r[i].off : rlen;

		if (end >= at && end - at >= len)
			break;
		if (i == n) {
			at = 0;
			break;
		}
		if ((uint64_t)r[i].off + r[i].len > at)
			at = ((uint64_t)r[i].off + r[i].len + 7) & ~7ull;
	}
	free(r);
	return (uint32_t)at;
}

/* @region (the metadata region as read) with the locator item replaced. */
static int put_item(const struct vhdx *x, uint8_t *region, const uint8_t *item,
		    uint32_t len)
{
	uint32_t rlen = x->meta_region.length;
	uint16_t count = vhdx_le16(region + 10), li;
	uint8_t *e = NULL;
	uint32_t at;

	for (li = 0; li < count && li < VHDX_META_MAX_ENTRIES; li++) {
		e = region + 32 + 32 * (size_t)li;
		if (!memcmp(e, vhdx_guid_parent_locator, 16))
			break;
	}
	if (li == count || li == VHDX_META_MAX_ENTRIES)
		return vhd_set_error(-EINVAL, "%s: no parent locator item",
				     x->path);
	at = vhdx_le32(e + 16);
	if (len > vhdx_le32(e + 20))
		at = find_gap(region, rlen, count, li, len);
	if (!at)
		return vhd_set_error(-ENOSPC,
				     "%s: no room for a %u-byte parent locator "
				     "in the %u-byte metadata region",
				     x->path, len, rlen);
	memcpy(region + at, item, len);
	vhdx_put32(e + 16, at);
	vhdx_put32(e + 20, len);
	return 0;
}

/* Log every sector of the region that differs between @old and @new. */
static int log_changes(struct vhdx *x, const uint8_t *old, const uint8_t *new)
{
	uint32_t rlen = x->meta_region.length;
	uint64_t offs[VHDX_LOG_MAX_DESC];
	uint8_t *data = malloc((size_t)VHDX_LOG_MAX_DESC * SECTOR);
	size_t n = 0;
	int r = 0;

	if (!data)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (uint32_t s = 0; r == 0 && s < rlen; s += SECTOR) {
		uint32_t l = rlen - s < SECTOR ? rlen - s : SECTOR;

		if (!memcmp(old + s, new + s, l))
			continue;
		if (n == VHDX_LOG_MAX_DESC) {
			r = vhd_set_error(-ENAMETOOLONG,
					  "%s: the new parent locator changes "
					  "more than %u metadata sectors",
					  x->path, VHDX_LOG_MAX_DESC);
			break;
		}
		offs[n] = x->meta_region.offset + s;
		memset(data + n * SECTOR, 0, SECTOR);
		memcpy(data + n * SECTOR, new + s, l);
		n++;
	}
	if (r == 0)
		r = vhdx_log_sectors(x, offs, data, n);
	free(data);
	return r;
}

static int write_locator(struct vhd_disk *c, const struct vhd_disk *p,
			 const struct vhd_parent_ref *ref)
{
	struct vhdx *x = c->vhdx;
	struct vhdx_new n = {
		.parent_linkage = p->vhdx->header.data_write_guid,
		.relative_path = ref->w2ru,
		.relative_len = ref->w2ru_len,
		.absolute_path = ref->w2ku,
		.absolute_len = ref->w2ku_len,
	};
	uint32_t rlen = x->meta_region.length, len;
	uint8_t *item = calloc(1, VHDX_LOCATOR_ITEM_BUF);
	uint8_t *old = malloc(rlen), *new = malloc(rlen);
	int r;

	if (!item || !old || !new) {
		r = vhd_set_error(-ENOMEM, "out of memory");
		goto out;
	}
	len = vhdx_locator_item(item, &n);
	if (len > VHDX_META_ITEM_MAX - VHDX_META_TABLE_SIZE) {
		r = vhd_set_error(-ENAMETOOLONG,
				  "%s: parent locator for %s does not fit",
				  c->path, p->path);
		goto out;
	}
	r = vhdx_pread_file(x, old, rlen, x->meta_region.offset);
	if (r == 0) {
		memcpy(new, old, rlen);
		r = put_item(x, new, item, len);
	}
	if (r == 0)
		r = log_changes(x, old, new);
out:
	free(item);
	free(old);
	free(new);
	return r;
}

int vhdx_reparent(const char *child, const char *parent, unsigned flags)
{
	struct vhd_parent_ref ref = {0};
	struct vhd_disk *c = NULL, *p = NULL;
	int r;

	/* Read-only first, as for a VHD: a child inside the new parent's
	 * chain is a cycle, not a lock conflict. */
	r = vhdx_open_one(child, VHD_OPEN_RDONLY, &c);
	if (r < 0)
		return r;
	if (c->footer.disk_type != VHD_TYPE_DIFF)
		r = vhd_set_error(-EINVAL, "%s: not a differencing disk",
				  child);
	if (r == 0)
		r = vhd_open(parent, VHD_OPEN_RDONLY, &p);
	if (r == 0)
		r = check_parent(c, p, flags);
	if (r == 0) {
		vhd_close(c);
		c = NULL;
		r = vhdx_open_one(child, VHD_OPEN_RDWR, &c);
	}
	/* again on what the writable open read */
	if (r == 0)
		r = check_parent(c, p, flags);
	if (r == 0)
		r = vhd_parent_ref_make(child, parent, &ref);
	if (r == 0) {
		c->vhdx->keep_data_guid = true;
		r = write_locator(c, p, &ref);
	}
	vhd_parent_ref_free(&ref);
	vhd_close_chain(p);
	return c ? vhd_close_keep(c, r) : r;
}
