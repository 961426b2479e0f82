// SPDX-License-Identifier: MIT
/* Opening an image and following its parent chain. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd_i.h"

static void close_fields(struct vhd_disk *d)
{
	vhd_bitmap_free(d);
	free(d->bat);
	free(d->dirty);
	free(d->dirty_flag);
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
}

void vhd_close_one(struct vhd_disk *d)
{
	if (!d)
		return;
	pthread_rwlock_destroy(&d->lock);
	close_fields(d);
	free(d);
}

static int open_file(struct vhd_disk *d, const char *path, int flags,
		     struct stat *st)
{
	d->fd = -1;
	d->path = strdup(path);
	if (!d->path)
		return vhd_set_error(-ENOMEM, "out of memory");
	d->flags = flags;
	d->fd = open(path,
		     ((flags & VHD_OPEN_RDWR) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (d->fd < 0)
		return vhd_set_error(-errno, "%s: %s", path, strerror(errno));
	if (fstat(d->fd, st) < 0)
		return vhd_set_error(-errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st->st_mode))
		return vhd_set_error(-EINVAL, "%s: not a regular file", path);
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	return 0;
}

static void first_overlap(void *ctx, const char *msg)
{
	snprintf(ctx, 512, "%s", msg);
}

/*
 * A write into a block that overlaps metadata or another block corrupts
 * it: refuse read-write (reads only show what is there; vhd check lists
 * every overlap).
 */
static int refuse_overlaps(struct vhd_disk *d)
{
	char msg[512];
	int r = vhd_layout_overlaps(d, 1, first_overlap, msg);

	if (r <= 0)
		return r;
	return vhd_set_error(-EINVAL, "%s; not opening it read-write", msg);
}

int vhd_open_one(const char *path, int flags, struct vhd_disk **out)
{
	struct vhd_disk *d = calloc(1, sizeof(*d));
	uint64_t file_size;
	struct stat st;
	int r;

	if (!d)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = open_file(d, path, flags, &st);
	if (r < 0)
		goto fail;
	file_size = (uint64_t)st.st_size;
	r = vhd_read_footer(d, file_size);
	if (r < 0)
		goto fail;
	d->size = d->footer.current_size;
	if (d->footer.disk_type == VHD_TYPE_FIXED) {
		if (d->size > d->footer_off) {
			r = vhd_set_error(-EINVAL,
					  "%s: fixed disk of %" PRIu64
					  " bytes but only %" PRIu64
					  " bytes of data in the file",
					  path, d->size, d->footer_off);
			goto fail;
		}
	} else {
		r = vhd_read_header(d, file_size);
		if (r == 0 && d->footer.disk_type == VHD_TYPE_DIFF)
			r = vhd_locators_validate(d, file_size);
		if (r == 0)
			r = vhd_bat_load(d);
		if (r == 0 && (flags & VHD_OPEN_RDWR))
			r = refuse_overlaps(d);
		if (r == 0 && (flags & VHD_OPEN_RDWR))
			r = vhd_bat_alloc_dirty(d);
		if (r < 0)
			goto fail;
	}
	pthread_rwlock_init(&d->lock, NULL);
	*out = d;
	return 0;
fail:
	close_fields(d);
	free(d);
	return r;
}

static void uuid_str(const uint8_t *u, char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Unique id of the image at @path from its footer alone. */
static int peek_uuid(const char *path, uint8_t uuid[16])
{
	struct vhd_disk tmp = {0};
	struct stat st;
	int r = open_file(&tmp, path, VHD_OPEN_RDONLY, &st);

	if (r == 0)
		r = vhd_read_footer(&tmp, (uint64_t)st.st_size);
	if (r == 0)
		memcpy(uuid, tmp.footer.uuid, 16);
	close_fields(&tmp);
	return r;
}

#define MAX_CANDIDATES 32

struct candidates {
	char *seen[MAX_CANDIDATES];
	int nseen;
	char tried[4096];
	size_t tried_len;
	char mismatch[1024];
};

static bool seen_before(struct candidates *c, const char *path)
{
	for (int i = 0; i < c->nseen; i++)
		if (strcmp(c->seen[i], path) == 0)
			return true;
	if (c->nseen < MAX_CANDIDATES) {
		char *copy = strdup(path);

		if (copy)
			c->seen[c->nseen++] = copy;
	}
	return false;
}

/* Try @path; 0 when it is the parent, 1 to go on, -errno to stop. */
static int try_candidate(const struct vhd_disk *d, const char *path,
			 struct candidates *c, char *buf, size_t len)
{
	uint8_t uuid[16];
	char want[37], have[37];
	struct stat st;

	if (seen_before(c, path))
		return 1; /* same path from another locator */
	c->tried_len += (size_t)snprintf(
		c->tried + c->tried_len, sizeof(c->tried) - c->tried_len,
		"%s%s", c->tried_len ? ", " : "", path);
	if (c->tried_len >= sizeof(c->tried))
		c->tried_len = sizeof(c->tried) - 1;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 1;
	if (peek_uuid(path, uuid) < 0)
		return 1;
	if (memcmp(uuid, d->header.parent_uuid, 16) != 0) {
		uuid_str(d->header.parent_uuid, want);
		uuid_str(uuid, have);
		snprintf(c->mismatch, sizeof(c->mismatch),
			 "%s: parent unique id mismatch: expects %s but %s "
			 "has %s",
			 d->path, want, path, have);
		return 1;
	}
	if (strlen(path) >= len)
		return vhd_set_error(-ENAMETOOLONG, "%s: parent path too long",
				     d->path);
	strcpy(buf, path);
	return 0;
}

/* @rel joined to the directory of the child, unless it is absolute. */
static void join_child_dir(const struct vhd_disk *d, const char *rel, char *out,
			   size_t len)
{
	const char *slash = strrchr(d->path, '/');

	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	if (rel[0] == '/' || !slash)
		snprintf(out, len, "%s", rel);
	else
		snprintf(out, len, "%.*s/%s", (int)(slash - d->path), d->path,
			 rel);
}

int vhd_find_parent(const struct vhd_disk *d, char *buf, size_t len)
{
	static const uint32_t order[] = {VHD_PLAT_W2RU, VHD_PLAT_W2KU,
					 VHD_PLAT_MACX};
	struct candidates c = {0};
	char *decoded = malloc(4096), *path = malloc(8192);
	char name[1024];
	const char *base;
	int r = -ENOMEM;

	vhd_clear_error();
	if (!decoded || !path)
		goto out;
	if (d->footer.disk_type != VHD_TYPE_DIFF) {
		r = vhd_set_error(-EINVAL, "%s: not a differencing disk",
				  d->path);
		goto out;
	}
	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
		for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
			if (d->header.loc[i].code != order[o])
				continue;
			if (vhd_locator_decode(d, i, decoded, 4096) <= 0)
				continue;
			if (order[o] == VHD_PLAT_W2RU)
				join_child_dir(d, decoded, path, 8192);
			else
				snprintf(path, 8192, "%s", decoded);
			r = try_candidate(d, path, &c, buf, len);
			if (r <= 0)
				goto found;
		}
	}
	/* Last resort: the parent's file name next to the child. */
	vhd_parent_name_utf8(&d->header, name, sizeof(name));
	base = name;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	if (*base) {
		join_child_dir(d, base, path, 8192);
		r = try_candidate(d, path, &c, buf, len);
		if (r <= 0)
			goto found;
	}
	if (c.mismatch[0])
		r = vhd_set_error(-EINVAL, "%s", c.mismatch);
	else
		r = vhd_set_error(-ENOENT,
				  "%s: parent not found (parent name \"%s\"); "
				  "tried: %s",
				  d->path, name,
				  c.tried_len ? c.tried : "none");
	goto out;
found:
	if (r == 0)
		vhd_clear_error(); /* from candidates that did not open */
out:
	for (int i = 0; i < c.nseen; i++)
		free(c.seen[i]);
	free(decoded);
	free(path);
	return r;
}

void vhd_close_chain(struct vhd_disk *disk)
{
	while (disk) {
		struct vhd_disk *parent = disk->parent;

		vhd_close_one(disk);
		disk = parent;
	}
}

int vhd_close(struct vhd_disk *disk)
{
	int r = 0;

	vhd_clear_error();
	if (disk && (disk->flags & VHD_OPEN_RDWR) && disk->ndirty) {
		pthread_rwlock_wrlock(&disk->lock);
		r = vhd_flush_locked(disk);
		pthread_rwlock_unlock(&disk->lock);
	}
	vhd_close_chain(disk);
	return r;
}

int vhd_open(const char *path, int flags, struct vhd_disk **out)
{
	char *parent_path = malloc(8192);
	struct vhd_disk *leaf = NULL, *cur, *p;
	int depth = 1, r;

	vhd_clear_error();
	if (!parent_path)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = vhd_open_one(path, flags, &leaf);
	if (r < 0)
		goto out;
	for (cur = leaf; cur->footer.disk_type == VHD_TYPE_DIFF &&
			 !(flags & VHD_OPEN_NOPARENT);
	     cur = p) {
		struct stat st;

		r = vhd_find_parent(cur, parent_path, 8192);
		if (r < 0)
			goto fail;
		if (stat(parent_path, &st) < 0) {
			r = vhd_set_error(-errno, "%s: %s", parent_path,
					  strerror(errno));
			goto fail;
		}
		for (struct vhd_disk *q = leaf; q; q = q->parent) {
			if (q->dev == st.st_dev && q->ino == st.st_ino) {
				r = vhd_set_error(-ELOOP,
						  "%s: parent cycle: %s is "
						  "already in the chain",
						  cur->path, parent_path);
				goto fail;
			}
		}
		if (++depth > VHD_MAX_CHAIN_DEPTH) {
			r = vhd_set_error(-ELOOP,
					  "%s: chain deeper than %d images",
					  path, VHD_MAX_CHAIN_DEPTH);
			goto fail;
		}
		r = vhd_open_one(parent_path, VHD_OPEN_RDONLY, &p);
		if (r < 0)
			goto fail;
		cur->parent = p;
		cur->parent_ts_mismatch =
			cur->header.parent_timestamp != 0 &&
			(int64_t)st.st_mtime - VHD_EPOCH_OFFSET !=
				(int64_t)cur->header.parent_timestamp;
	}
	*out = leaf;
	vhd_clear_error(); /* a footer fallback or skipped candidate */
	goto out;
fail:
	vhd_close_chain(leaf);
out:
	free(parent_path);
	return r;
}
