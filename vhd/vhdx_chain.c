// SPDX-License-Identifier: MIT
/*
 * A VHDX chain as struct vhd_disk handles: each member wraps one struct
 * vhdx, so vhd_parent(), vhd_path(), vhd_size() and vhd_type() work on it
 * unchanged. Parents are found through the parent locator and must carry
 * the DataWriteGuid the child pinned (parent_linkage).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vhdx_i.h"

static enum vhd_type type_of(const struct vhdx *x)
{
	if (x->meta.has_parent)
		return VHD_TYPE_DIFF;
	return x->meta.leave_allocated ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
}

static int wrap(struct vhdx *x, int flags, const struct stat *st,
		struct vhd_disk **out)
{
	struct vhd_disk *d = calloc(1, sizeof(*d));

	if (!d)
		return vhd_set_error(-ENOMEM, "out of memory");
	d->path = strdup(x->path);
	if (!d->path) {
		free(d);
		return vhd_set_error(-ENOMEM, "out of memory");
	}
	d->fd = -1; /* the vhdx owns the file */
	d->flags = flags;
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	d->footer.disk_type = type_of(x);
	d->footer.current_size = d->footer.original_size = x->meta.disk_size;
	memcpy(d->footer.uuid, x->meta.page83, 16);
	d->size = x->meta.disk_size;
	d->block_size = x->meta.block_size;
	d->vhdx = x;
	pthread_rwlock_init(&d->lock, NULL);
	*out = d;
	return 0;
}

/* @x (opened, or -errno in @r) as a vhd_disk; frees @x on failure. */
static int wrap_opened(int r, struct vhdx *x, int flags, struct vhd_disk **out)
{
	struct stat st;

	if (r < 0)
		return r;
	r = fstat(x->fd, &st) < 0
		    ? vhd_set_error(-errno, "%s: %s", x->path, strerror(errno))
		    : wrap(x, flags, &st, out);
	if (r < 0)
		vhdx_free(x);
	return r;
}

int vhdx_open_one(const char *path, int flags, struct vhd_disk **out)
{
	struct vhdx *x = NULL;
	int r = vhdx_open_file(path, flags, &x);

	return wrap_opened(r, x, flags, out);
}

int vhdx_open_one_fd(int fd, const char *name, int flags, struct vhd_disk **out)
{
	struct vhdx *x = NULL;
	int r = vhdx_open_fd(fd, name, flags, &x);

	return wrap_opened(r, x, flags, out);
}

struct search {
	const struct vhdx *child;
	char tried[4096];
	size_t tried_len;
	char *seen[5]; /* candidates tried: at most 5 per locator */
	int nseen;
	char problem[1536]; /* the best reason a found file was refused */
	int problem_err;
};

static void note_tried(struct search *s, const char *path)
{
	int n = snprintf(s->tried + s->tried_len,
			 sizeof(s->tried) - s->tried_len, "%s%s",
			 s->tried_len ? ", " : "", path);

	if (n > 0)
		s->tried_len += (size_t)n;
	if (s->tried_len >= sizeof(s->tried))
		s->tried_len = sizeof(s->tried) - 1;
}

/* 0 when @path is the parent, 1 to go on, -errno to stop. */
static int try_candidate(struct search *s, const char *path, char *buf,
			 size_t len)
{
	const struct vhdx_locator *loc = &s->child->meta.loc;
	uint8_t want[16], want2[16];
	bool have2;
	struct vhdx *p;
	char got[37];
	int r;

	for (int i = 0; i < s->nseen; i++)
		if (strcmp(s->seen[i], path) == 0)
			return 1; /* the same file from another key */
	if (s->nseen < 5 && (s->seen[s->nseen] = strdup(path)))
		s->nseen++;
	note_tried(s, path);
	r = vhdx_probe(path);
	if (r == 0) {
		snprintf(s->problem, sizeof(s->problem),
			 "%s: parent %s is not a VHDX (a chain does not mix "
			 "VHD and VHDX)",
			 s->child->path, path);
		s->problem_err = -EINVAL;
		return 1;
	}
	if (r < 0)
		return 1;
	r = vhdx_open_file(path, VHD_OPEN_RDONLY, &p);
	if (r < 0) {
		snprintf(s->problem, sizeof(s->problem), "%s", vhd_errmsg());
		s->problem_err = r;
		return 1;
	}
	vhdx_guid_parse(loc->parent_linkage, want); /* checked at open */
	have2 = vhdx_guid_parse(loc->parent_linkage2, want2) == 0;
	r = memcmp(p->header.data_write_guid, want, 16) == 0 ||
	    (have2 && memcmp(p->header.data_write_guid, want2, 16) == 0);
	if (r && p->meta.logical_sector != s->child->meta.logical_sector) {
		snprintf(s->problem, sizeof(s->problem),
			 "%s: parent %s has %u-byte logical sectors, the "
			 "child %u",
			 s->child->path, path, p->meta.logical_sector,
			 s->child->meta.logical_sector);
		s->problem_err = -EINVAL;
		r = 0;
	} else if (!r) {
		vhdx_guid_str(p->header.data_write_guid, got);
		snprintf(s->problem, sizeof(s->problem),
			 "%s: parent linkage mismatch: parent_linkage is %s "
			 "but %s has DataWriteGuid %s (the parent changed "
			 "after the child was made)",
			 s->child->path, loc->parent_linkage, path, got);
		s->problem_err = -EINVAL;
	}
	vhdx_free(p);
	if (!r)
		return 1;
	if (strlen(path) >= len)
		return vhd_set_error(-ENAMETOOLONG, "%s: parent path too long",
				     s->child->path);
	strcpy(buf, path);
	return 0;
}

struct case_try {
	struct search *s;
	char *buf;
	size_t len;
};

static int try_case_variant(void *ctx, const char *cand)
{
	struct case_try *t = ctx;

	return try_candidate(t->s, cand, t->buf, t->len);
}

/* Windows path to '/' separators, without "\\?\" and ".\" prefixes. */
static void unixify(const char *in, char *out, size_t len)
{
	if (strncmp(in, "\\\\?\\", 4) == 0)
		in += 4;
	while (in[0] == '.' && (in[1] == '\\' || in[1] == '/'))
		in += 2;
	snprintf(out, len, "%s", in);
	for (char *p = out; *p; p++)
		if (*p == '\\')
			*p = '/';
}

static void beside_child(const char *child, const char *name, char *out,
			 size_t len)
{
	const char *slash = strrchr(child, '/');

	if (name[0] == '/' || !slash)
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "%.*s/%s", (int)(slash - child), child,
			 name);
}

int vhdx_find_parent(const struct vhd_disk *d, char *buf, size_t len)
{
	const struct vhdx *x = d->vhdx;
	const struct vhdx_locator *loc = &x->meta.loc;
	const char *abs[2] = {loc->volume_path, loc->absolute_win32_path};
	struct search s = {.child = x};
	char *rel = malloc(4096), *path = malloc(8192);
	int r = -ENOMEM;

	vhd_clear_error();
	if (!rel || !path) {
		vhd_set_error(r, "out of memory");
		goto out;
	}
	if (!x->meta.has_parent) {
		r = vhd_set_error(-EINVAL, "%s: not a differencing disk",
				  d->path);
		goto out;
	}
	if (loc->relative_path[0]) {
		unixify(loc->relative_path, rel, 4096);
		beside_child(x->path, rel, path, 8192);
		r = try_candidate(&s, path, buf, len);
		if (r <= 0)
			goto out;
	}
	/* Windows absolute paths only mean something on Linux when they
	 * are Unix paths; else try their file name beside the child, as
	 * the VHD side does with W2ku. */
	for (int i = 0; i < 2; i++) {
		const char *base;

		if (!abs[i][0])
			continue;
		unixify(abs[i], rel, 4096);
		if (rel[0] == '/') {
			r = try_candidate(&s, rel, buf, len);
			if (r <= 0)
				goto out;
		}
		base = strrchr(rel, '/');
		base = base ? base + 1 : rel;
		if (!*base)
			continue;
		beside_child(x->path, base, path, 8192);
		r = try_candidate(&s, path, buf, len);
		if (r <= 0)
			goto out;
	}
	/* Windows names ignore case: .\DISK.VHDX may be disk.vhdx here */
	for (int i = 0, n = s.nseen; i < n; i++) {
		struct case_try t = {&s, buf, len};

		r = vhd_each_case_variant(s.seen[i], try_case_variant, &t);
		if (r <= 0)
			goto out;
	}
	if (s.problem[0])
		r = vhd_set_error(s.problem_err, "%s", s.problem);
	else
		r = vhd_set_error(-ENOENT,
				  "%s: parent not found (relative_path \"%s\", "
				  "absolute_win32_path \"%s\"); tried: %s",
				  d->path, loc->relative_path,
				  loc->absolute_win32_path,
				  s.tried_len ? s.tried : "none");
out:
	if (r == 0)
		vhd_clear_error();
	for (int i = 0; i < s.nseen; i++)
		free(s.seen[i]);
	free(rel);
	free(path);
	return r;
}

int vhdx_open_chain(const char *path, int flags, struct vhd_disk **out)
{
	char *parent_path = malloc(8192);
	struct vhd_disk *leaf = NULL, *cur, *p;
	int depth = 1, r;

	if (!parent_path)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = vhdx_open_one(path, flags, &leaf);
	if (r < 0)
		goto out;
	for (cur = leaf;
	     cur->vhdx->meta.has_parent && !(flags & VHD_OPEN_NOPARENT);
	     cur = p) {
		r = vhdx_find_parent(cur, parent_path, 8192);
		if (r < 0)
			goto fail;
		if (++depth > VHD_MAX_CHAIN_DEPTH) {
			r = vhd_set_error(-ELOOP,
					  "%s: chain deeper than %d images",
					  path, VHD_MAX_CHAIN_DEPTH);
			goto fail;
		}
		r = vhdx_open_one(parent_path, VHD_OPEN_RDONLY, &p);
		if (r < 0)
			goto fail;
		/* as for VHD: no writer may change a parent under a child */
		r = vhd_lock_parent(p->vhdx->fd, p->path);
		if (r < 0) {
			vhd_close_chain(p);
			goto fail;
		}
		/* Identity of what was opened, not of a name looked up again.
		 */
		for (struct vhd_disk *q = leaf; q; q = q->parent) {
			if (q->dev == p->dev && q->ino == p->ino) {
				r = vhd_set_error(-ELOOP,
						  "%s: parent cycle: %s is "
						  "already in the chain",
						  cur->path, parent_path);
				vhd_close_chain(p);
				goto fail;
			}
		}
		cur->parent = p;
	}
	*out = leaf;
	vhd_clear_error();
	goto out;
fail:
	vhd_close_chain(leaf);
out:
	free(parent_path);
	return r;
}

/* Windows GUID bytes to the RFC 4122 order the text form shows. */
static void guid_to_uuid(const uint8_t g[16], uint8_t u[16])
{
	static const int pos[16] = {3, 2, 1,  0,  5,  4,  7,  6,
				    8, 9, 10, 11, 12, 13, 14, 15};

	for (int i = 0; i < 16; i++)
		u[i] = g[pos[i]];
}

int vhdx_get_info(const struct vhd_disk *d, struct vhd_info *info)
{
	const struct vhdx *x = d->vhdx;
	uint8_t g[16];

	memset(info, 0, sizeof(*info));
	info->format = VHD_FORMAT_VHDX;
	info->type = type_of(x);
	info->current_size = info->original_size = x->meta.disk_size;
	info->file_size = x->real_size;
	info->block_size = x->meta.block_size;
	info->max_table_entries = (uint32_t)x->bat_entries;
	info->allocated_blocks = (uint32_t)vhdx_bat_allocated(x);
	info->table_offset = x->bat_region.offset;
	info->logical_sector_size = x->meta.logical_sector;
	info->physical_sector_size = x->meta.physical_sector;
	info->log_replayed = x->log_replayed;
	guid_to_uuid(x->meta.page83, info->uuid);
	if (!x->meta.has_parent)
		return 0;
	vhdx_guid_parse(x->meta.loc.parent_linkage, g);
	guid_to_uuid(g, info->parent_uuid);
	snprintf(info->parent_name, sizeof(info->parent_name), "%.1000s",
		 x->meta.loc.relative_path[0]
			 ? x->meta.loc.relative_path
			 : x->meta.loc.absolute_win32_path);
	return 0;
}
