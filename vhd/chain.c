// SPDX-License-Identifier: MIT
/* Opening an image and following its parent chain. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vhdx_i.h"

static void close_fields(struct vhd_disk *d)
{
	vhdx_free(d->vhdx);
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
	char *used = NULL;

	d->flags = flags;
	d->fd = vhd_file_open(path, (flags & VHD_OPEN_RDWR) ? O_RDWR : O_RDONLY,
			      st, &used);
	if (d->fd < 0)
		return d->fd;
	d->path = used;
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	if (flags & VHD_OPEN_RDWR)
		return vhd_lock_writer(d->fd, path);
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

static int load(struct vhd_disk *d, const struct stat *st);

int vhd_open_one(const char *path, int flags, struct vhd_disk **out)
{
	struct vhd_disk *d = calloc(1, sizeof(*d));
	struct stat st;
	int r;

	if (!d)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = open_file(d, path, flags, &st);
	if (r < 0)
		goto fail;
	r = load(d, &st);
	if (r < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	close_fields(d);
	free(d);
	return r;
}

int vhd_open_one_fd(int fd, const char *name, int flags, struct vhd_disk **out)
{
	struct vhd_disk *d;
	struct stat st;
	int r;

	r = vhdx_probe_fd(fd);
	if (r < 0)
		return vhd_set_error(r, "%s: %s", name, strerror(-r));
	if (r == 1)
		return vhdx_open_one_fd(fd, name, flags, out);
	d = calloc(1, sizeof(*d));
	if (!d)
		return vhd_set_error(-ENOMEM, "out of memory");
	d->flags = flags;
	d->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	d->path = strdup(name);
	if (d->fd < 0 || fstat(d->fd, &st) < 0) {
		r = vhd_set_error(-errno, "%s: %s", name, strerror(errno));
		goto fail;
	}
	if (!d->path) {
		r = vhd_set_error(-ENOMEM, "out of memory");
		goto fail;
	}
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	r = (flags & VHD_OPEN_RDWR) ? vhd_lock_writer(d->fd, name) : 0;
	if (r == 0)
		r = load(d, &st);
	if (r < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	close_fields(d);
	free(d);
	return r;
}

/* Read the metadata of the file open at d->fd (d->path names it). */
static int load(struct vhd_disk *d, const struct stat *st)
{
	const char *path = d->path;
	int flags = d->flags;
	uint64_t file_size;
	int r;

	file_size = (uint64_t)st->st_size;
	r = vhd_read_footer(d, file_size);
	if (r < 0)
		return r;
	d->size = d->footer.current_size;
	if (d->footer.disk_type == VHD_TYPE_FIXED) {
		if (d->size > d->footer_off)
			return vhd_set_error(-EINVAL,
					     "%s: fixed disk of %" PRIu64
					     " bytes but only %" PRIu64
					     " bytes of data in the file",
					     path, d->size, d->footer_off);
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
			return r;
	}
	pthread_rwlock_init(&d->lock, NULL);
	return 0;
}

void vhd_uuid_str(const uint8_t *u, char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

#define MAX_CANDIDATES 32

struct candidates {
	char *seen[MAX_CANDIDATES];
	int nseen;
	char tried[4096];
	size_t tried_len;
	char mismatch[1024];
	char mismatch_path[4096];
	/* the parent found, still open: handed to vhd_open */
	struct vhd_disk *found;
	struct stat found_st;
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

static void note_tried(struct candidates *c, const char *path, const char *why)
{
	c->tried_len += (size_t)snprintf(
		c->tried + c->tried_len, sizeof(c->tried) - c->tried_len,
		"%s%s%s%s%s", c->tried_len ? ", " : "", path, why ? " (" : "",
		why ? why : "", why ? ")" : "");
	if (c->tried_len >= sizeof(c->tried))
		c->tried_len = sizeof(c->tried) - 1;
}

/* Try @path; 0 when it is the parent, 1 to go on, -errno to stop. */
static int try_candidate(const struct vhd_disk *d, const char *path,
			 struct candidates *c, char *buf, size_t len)
{
	struct vhd_disk *p;
	char want[37], have[37];
	struct stat st;
	int r;

	if (seen_before(c, path))
		return 1; /* same path from another locator */
	p = calloc(1, sizeof(*p));
	if (!p)
		return vhd_set_error(-ENOMEM, "out of memory");
	/* Opened once, then inspected: nothing can be swapped in between. */
	r = open_file(p, path, VHD_OPEN_RDONLY, &st);
	if (r == 0)
		r = vhd_read_footer(p, (uint64_t)st.st_size);
	if (r == -EINVAL && p->fd >= 0 && vhdx_probe_fd(p->fd) == 1) {
		note_tried(c, path, "a VHDX");
		if (!c->mismatch[0])
			snprintf(c->mismatch, sizeof(c->mismatch),
				 "%s: parent %s is a VHDX (a chain does not "
				 "mix VHD and VHDX)",
				 d->path, path);
		close_fields(p);
		free(p);
		return 1;
	}
	if (r < 0) {
		const char *why = NULL;

		if (r == -EINVAL)
			why = strstr(vhd_errmsg(), "not a regular file")
				      ? "not a regular file"
				      : "not a VHD image";
		else if (r == -EXDEV)
			why = "inside the vhdfs mount";
		else if (r != -ENOENT)
			why = strerror(-r);
		note_tried(c, path, why);
		close_fields(p);
		free(p);
		return 1;
	}
	note_tried(c, path, NULL);
	if (memcmp(p->footer.uuid, d->header.parent_uuid, 16) != 0) {
		vhd_uuid_str(d->header.parent_uuid, want);
		vhd_uuid_str(p->footer.uuid, have);
		if (!c->mismatch[0]) {
			snprintf(c->mismatch, sizeof(c->mismatch),
				 "%s: parent found at %s but its unique id "
				 "differs (expected %s, found %s)",
				 d->path, p->path, want, have);
			snprintf(c->mismatch_path, sizeof(c->mismatch_path),
				 "%s", p->path);
		}
		close_fields(p);
		free(p);
		return 1;
	}
	if (strlen(p->path) >= len) {
		close_fields(p);
		free(p);
		return vhd_set_error(-ENAMETOOLONG, "%s: parent path too long",
				     d->path);
	}
	strcpy(buf, p->path);
	c->found = p;
	c->found_st = st;
	return 0;
}

/*
 * A locator path made usable here: '\' is already '/'; repeated separators
 * collapse, "./" prefixes go. @relative: a drive letter and leading
 * separators are dropped (W2ru is never absolute). Otherwise a Windows
 * absolute path (drive letter or UNC) is reduced to its bare file name
 * (looked up beside the child).
 */
static void clean_locator(char *p, bool relative)
{
	char *r = p, *w = p;
	bool windows = false;

	if (((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) &&
	    p[1] == ':') {
		r += 2;
		windows = true;
	} else if (!relative && p[0] == '/' && p[1] == '/') {
		windows = true; /* \\server\share\... */
	}
	if (relative || windows)
		while (*r == '/')
			r++;
	for (; *r; r++) {
		if (*r == '/' && w > p && w[-1] == '/')
			continue;
		*w++ = *r;
	}
	*w = '\0';
	/* "./x" and "././x" are "x"; "." alone stays */
	while (p[0] == '.' && p[1] == '/')
		memmove(p, p + 2, strlen(p + 2) + 1);
	if (windows && !relative) {
		char *base = strrchr(p, '/');

		if (base)
			memmove(p, base + 1, strlen(base + 1) + 1);
	}
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

struct case_try {
	const struct vhd_disk *d;
	struct candidates *c;
	char *buf;
	size_t len;
};

static int try_case_variant(void *ctx, const char *cand)
{
	struct case_try *t = ctx;

	return try_candidate(t->d, cand, t->c, t->buf, t->len);
}

/*
 * Once no candidate matched exactly, each file beside a candidate whose
 * name differs from it only in case is tried (Windows names).
 * 0 when one is the parent, 1 to go on, -errno to stop.
 */
static int try_case_folded(const struct vhd_disk *d, struct candidates *c,
			   char *buf, size_t len)
{
	struct case_try t = {d, c, buf, len};
	int n = c->nseen, r = 1;

	for (int i = 0; i < n && r > 0; i++)
		r = vhd_each_case_variant(c->seen[i], try_case_variant, &t);
	return r;
}

static int find_parent(const struct vhd_disk *d, char *buf, size_t len,
		       struct candidates *c)
{
	/* The deprecated Wi2r/Wi2k last: older Virtual PC wrote only those. */
	static const uint32_t order[] = {VHD_PLAT_W2RU, VHD_PLAT_W2KU,
					 VHD_PLAT_MACX, VHD_PLAT_WI2R,
					 VHD_PLAT_WI2K};
	char *decoded = malloc(4096), *path = malloc(8192);
	char name[1024];
	const char *base;
	int r = -ENOMEM;

	if (!decoded || !path)
		goto out;
	if (d->vhdx) {
		r = vhdx_find_parent(d, buf, len);
		goto out;
	}
	if (d->footer.disk_type != VHD_TYPE_DIFF) {
		r = vhd_set_error(-EINVAL, "%s: not a differencing disk",
				  d->path);
		goto out;
	}
	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
		bool relative =
			order[o] == VHD_PLAT_W2RU || order[o] == VHD_PLAT_WI2R;

		for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
			if (d->header.loc[i].code != order[o])
				continue;
			if (vhd_locator_decode(d, i, decoded, 4096) <= 0)
				continue;
			if (order[o] != VHD_PLAT_MACX) {
				clean_locator(decoded, relative);
				if (!decoded[0])
					continue;
			}
			/*
			 * A path that is not absolute is relative to the
			 * child, whatever the code: blktap stores its
			 * relative path in W2ku and MacX too.
			 */
			join_child_dir(d, decoded, path, 8192);
			r = try_candidate(d, path, c, buf, len);
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
	if (*base && strcmp(base, ".") && strcmp(base, "..")) {
		join_child_dir(d, base, path, 8192);
		r = try_candidate(d, path, c, buf, len);
		if (r <= 0)
			goto found;
	}
	r = try_case_folded(d, c, buf, len);
	if (r <= 0)
		goto found;
	if (c->mismatch[0]) {
		snprintf(buf, len, "%s", c->mismatch_path);
		r = vhd_set_error(-EINVAL, "%s", c->mismatch);
	} else {
		r = vhd_set_error(-ENOENT,
				  "%s: parent not found (parent name \"%s\"); "
				  "tried: %s",
				  d->path, name,
				  c->tried_len ? c->tried : "none");
	}
	goto out;
found:
	if (r == 0)
		vhd_clear_error(); /* from candidates that did not open */
out:
	for (int i = 0; i < c->nseen; i++)
		free(c->seen[i]);
	free(decoded);
	free(path);
	return r;
}

int vhd_find_parent(const struct vhd_disk *d, char *buf, size_t len)
{
	struct candidates c = {0};
	int r;

	vhd_clear_error();
	r = find_parent(d, buf, len, &c);
	if (c.found) {
		close_fields(c.found);
		free(c.found);
	}
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
	/* A VHD with nothing pending needs no sync; read-only: nothing. */
	if (disk && (disk->vhdx || disk->ndirty || disk->alloc_end))
		r = vhd_settle(disk);
	vhd_close_chain(disk);
	return r;
}

int vhd_close_keep(struct vhd_disk *disk, int r)
{
	char msg[1024];
	int cr;

	if (r == 0)
		return vhd_close(disk);
	snprintf(msg, sizeof(msg), "%s", vhd_errmsg());
	cr = vhd_close(disk);
	(void)cr; /* the first failure is the one to report */
	return vhd_set_error(r, "%s", msg);
}

/* FNV-1a over the fields, so equal chains give equal values. */
static uint64_t mix(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 0xff)) * 0x100000001b3ull;
	return h;
}

uint64_t vhd_chain_version(struct vhd_disk *disk)
{
	uint64_t h = 0xcbf29ce484222325ull;
	struct stat st;

	for (struct vhd_disk *d = disk; d; d = d->parent) {
		/* A VHDX member's file is held by its struct vhdx. */
		if (fstat(d->vhdx ? d->vhdx->fd : d->fd, &st))
			return 0;
		h = mix(h, (uint64_t)st.st_dev);
		h = mix(h, (uint64_t)st.st_ino);
		h = mix(h, (uint64_t)st.st_size);
		h = mix(h, (uint64_t)st.st_mtim.tv_sec);
		h = mix(h, (uint64_t)st.st_mtim.tv_nsec);
		h = mix(h, (uint64_t)st.st_ctim.tv_sec);
		h = mix(h, (uint64_t)st.st_ctim.tv_nsec);
	}
	return h ? h : 1;
}

int vhd_open(const char *path, int flags, struct vhd_disk **out)
{
	char *parent_path = malloc(8192);
	struct vhd_disk *leaf = NULL, *cur, *p;
	int depth = 1, r;

	vhd_clear_error();
	if (!parent_path)
		return vhd_set_error(-ENOMEM, "out of memory");
	if (vhdx_probe(path) == 1) {
		r = vhdx_open_chain(path, flags, out);
		goto out;
	}
	r = vhd_open_one(path, flags, &leaf);
	if (r < 0)
		goto out;
	if (r == 0 && (flags & VHD_OPEN_I_PARENT))
		r = vhd_lock_parent(leaf->fd, leaf->path);
	if (r < 0)
		goto fail;
	for (cur = leaf; cur->footer.disk_type == VHD_TYPE_DIFF &&
			 !(flags & VHD_OPEN_NOPARENT);
	     cur = p) {
		struct candidates c = {0};

		r = find_parent(cur, parent_path, 8192, &c);
		if (r < 0)
			goto fail;
		p = c.found;
		for (struct vhd_disk *q = leaf; q; q = q->parent) {
			if (q->dev == p->dev && q->ino == p->ino) {
				r = vhd_set_error(-ELOOP,
						  "%s: parent cycle: %s is "
						  "already in the chain",
						  cur->path, parent_path);
				break;
			}
		}
		if (r == 0 && ++depth > VHD_MAX_CHAIN_DEPTH)
			r = vhd_set_error(-ELOOP,
					  "%s: chain deeper than %d images",
					  path, VHD_MAX_CHAIN_DEPTH);
		if (r == 0)
			r = load(p, &c.found_st);
		if (r == 0)
			r = vhd_lock_parent(p->fd, p->path);
		if (r < 0) {
			close_fields(p);
			free(p);
			goto fail;
		}
		cur->parent = p;
		cur->parent_ts_mismatch =
			cur->header.parent_timestamp != 0 &&
			(int64_t)c.found_st.st_mtime - VHD_EPOCH_OFFSET !=
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
