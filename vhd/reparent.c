// SPDX-License-Identifier: MIT
/*
 * Reparenting: the child's parent reference (name, timestamp, locators,
 * optionally the unique id) is replaced. New locator payloads are written
 * where nothing points yet and made durable before the one header write
 * that switches to them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vhdx_i.h"

/* Is @child (by inode) anywhere in @chain? */
static bool in_chain(const struct vhd_disk *chain, const struct vhd_disk *child)
{
	for (const struct vhd_disk *q = chain; q; q = q->parent)
		if (q->dev == child->dev && q->ino == child->ino)
			return true;
	return false;
}

int vhd_reparent_check_chain(const struct vhd_disk *c, const struct vhd_disk *p)
{
	if (in_chain(p, c))
		return vhd_set_error(-ELOOP,
				     "%s: %s is the child itself or one of "
				     "its descendants (parent cycle)",
				     c->path, p->path);
	if (p->size != c->size)
		return vhd_set_error(-EINVAL,
				     "%s: virtual size %" PRIu64
				     " differs from %s's (%" PRIu64 ")",
				     c->path, c->size, p->path, p->size);
	return 0;
}

static int check_parent(struct vhd_disk *c, struct vhd_disk *p, unsigned flags)
{
	char want[37], have[37];
	int r = vhd_reparent_check_chain(c, p);

	if (r < 0)
		return r;
	if (!(flags & VHD_REPARENT_IGNORE_ID) &&
	    memcmp(p->footer.uuid, c->header.parent_uuid, 16) != 0) {
		vhd_uuid_str(c->header.parent_uuid, want);
		vhd_uuid_str(p->footer.uuid, have);
		return vhd_set_error(-EINVAL,
				     "%s: parent unique id mismatch: the "
				     "child expects %s but %s has %s (use "
				     "ignore-id-mismatch to accept it)",
				     c->path, want, p->path, have);
	}
	return 0;
}

/*
 * Payloads at the end of the file: the footer moves past them first (and
 * is synced), so the file always ends in a valid footer.
 */
static int write_payloads(struct vhd_disk *c, const struct vhd_parent_ref *ref,
			  struct vhd_header *h)
{
	const uint8_t *data[2] = {ref->w2ku, ref->w2ru};
	const uint32_t len[2] = {ref->w2ku_len, ref->w2ru_len};
	const uint32_t code[2] = {VHD_PLAT_W2KU, VHD_PLAT_W2RU};
	uint64_t pos = vhd_align_up(c->footer_off, VHD_SECTOR_SIZE);
	int r;

	memset(h->loc, 0, sizeof(h->loc));
	for (int i = 0; i < 2; i++) {
		h->loc[i].code = code[i];
		h->loc[i].data_offset = pos;
		h->loc[i].data_length = len[i];
		h->loc[i].data_space = (uint32_t)vhd_align_up(
			len[i] ? len[i] : 1, VHD_SECTOR_SIZE);
		pos += h->loc[i].data_space;
	}
	r = vhd_footer_move(c, pos);
	for (int i = 0; r == 0 && i < 2; i++) {
		uint8_t *buf = calloc(1, h->loc[i].data_space);

		if (!buf)
			return vhd_set_error(-ENOMEM, "out of memory");
		memcpy(buf, data[i], len[i]);
		r = vhd_write_named(c, buf, h->loc[i].data_space,
				    h->loc[i].data_offset);
		free(buf);
	}
	return r;
}

int vhd_reparent(const char *child, const char *parent, unsigned flags)
{
	struct vhd_parent_ref ref = {0};
	struct vhd_disk *c = NULL, *p = NULL;
	uint8_t buf[VHD_HEADER_SIZE];
	struct vhd_header h;
	int r;

	vhd_clear_error();
	/* Looked at read-only first: the new parent's chain is opened (and
	 * locked as a parent) before the child is locked for writing, so a
	 * child inside that chain is a cycle, not a lock conflict. */
	r = vhdx_probe(child);
	if (r == 1)
		return vhdx_reparent(child, parent, flags);
	r = vhd_open_one(child, VHD_OPEN_RDONLY, &c);
	if (r < 0)
		return r;
	if (c->footer.disk_type != VHD_TYPE_DIFF) {
		r = vhd_set_error(-EINVAL, "%s: not a differencing disk",
				  child);
		goto out;
	}
	r = vhd_check_rewritable(c);
	if (r == 0)
		r = vhd_open(parent, VHD_OPEN_RDONLY, &p);
	if (r == 0 && p->vhdx)
		r = vhd_set_error(-EINVAL,
				  "%s: %s is a VHDX (a chain does not mix VHD "
				  "and VHDX)",
				  child, parent);
	for (struct vhd_disk *q = r == 0 ? p : NULL; q; q = q->parent)
		if (q->dev == c->dev && q->ino == c->ino)
			r = vhd_set_error(-ELOOP,
					  "%s: %s is in the chain of %s: that "
					  "would make a cycle",
					  child, child, parent);
	if (r == 0) {
		vhd_close_one(c);
		c = NULL;
		r = vhd_open_one(child, VHD_OPEN_RDWR, &c);
	}
	if (r == 0)
		r = check_parent(c, p, flags);
	if (r == 0)
		r = vhd_parent_ref_make(child, parent, &ref);
	if (r < 0)
		goto out;
	h = c->header;
	r = write_payloads(c, &ref, &h);
	if (r == 0)
		r = vhd_sync_named(c);
	if (r < 0)
		goto out;
	memcpy(h.parent_uuid, p->footer.uuid, 16);
	memcpy(h.parent_name, ref.name, sizeof(h.parent_name));
	h.parent_timestamp = ref.timestamp;
	vhd_header_encode(&h, buf);
	r = vhd_write_named(c, buf, sizeof(buf), c->footer.data_offset);
	if (r == 0)
		r = vhd_sync_named(c);
	if (r == 0)
		c->header = h;
out:
	vhd_parent_ref_free(&ref);
	vhd_close_chain(p);
	return vhd_close_keep(c, r);
}
