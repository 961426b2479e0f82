// SPDX-License-Identifier: MIT
/*
 * Merging a differencing child (and the levels between it and an
 * ancestor) down into the ancestor, then removing the merged levels.
 *
 * Crash order: only sectors held by a level above the ancestor are written
 * into it, and the child shadows every one of them, so the child's view
 * cannot change while the levels exist. The ancestor is flushed (data,
 * then metadata, synced) before a journal ("marker") naming the levels to
 * remove is written and synced; only then are the levels unlinked, leaf
 * first. A rerun that finds the marker finishes the removal.
 *
 * A level is removed by identity (st_dev/st_ino, journalled too), never
 * by name alone: renamed by another tool meanwhile, it is found under its
 * new name in its directory; a different file that took the old name is
 * left alone.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx_i.h"

#define CHUNK (2u << 20)
#define MARKER_MAGIC "vhd-merge 1"
#define MARKER_SUFFIX ".merging"
#define MARKER_MAX 65536

struct level_id {
	uint8_t uuid[16];
	char path[PATH_MAX];
	/* the file's identity; absent in journals of older versions */
	bool have_ino;
	dev_t dev;
	ino_t ino;
};

/* What the marker holds: the ancestor and the levels to remove, leaf first. */
struct plan {
	struct level_id ancestor;
	struct level_id rm[VHD_MAX_CHAIN_DEPTH];
	int nrm;
};

struct merge {
	struct vhd_disk *lv[VHD_MAX_CHAIN_DEPTH]; /* above the ancestor */
	int n;
	char apath[PATH_MAX];
	struct stat ast;
};

static void dir_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static int marker_path(const char *child, char *out, size_t len)
{
	char dir[PATH_MAX];
	int n;

	dir_of(child, dir, sizeof(dir));
	n = snprintf(out, len, "%s/.%s" MARKER_SUFFIX, dir, base_of(child));
	if (n < 0 || (size_t)n >= len)
		return vhd_set_error(-ENAMETOOLONG, "%s: path too long", child);
	return 0;
}

static int sync_dir(const char *path)
{
	char dir[PATH_MAX];
	int fd, r;

	dir_of(path, dir, sizeof(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vhd_set_error(-errno, "%s: %s", dir, strerror(errno));
	r = vhd_io_sync(fd);
	close(fd);
	if (r < 0)
		return vhd_set_error(r, "%s: sync failed: %s", dir,
				     strerror(-r));
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static bool same_disk(const struct vhd_disk *d, const struct stat *st)
{
	return d->dev == st->st_dev && d->ino == st->st_ino;
}

/* One level of either format, read-only, without its parent. */
static int open_level(const char *path, struct vhd_disk **d)
{
	int flags = VHD_OPEN_RDONLY | VHD_OPEN_NOPARENT;

	if (vhdx_probe(path) == 1)
		return vhdx_open_one(path, flags, d);
	return vhd_open_one(path, flags, d);
}

/*
 * What tells one file from another: a VHD's unique id; a VHDX's
 * DataWriteGuid (a VHDX child shares its parent's disk id).
 */
static const uint8_t *ident(const struct vhd_disk *d)
{
	return d->vhdx ? d->vhdx->header.data_write_guid : d->footer.uuid;
}

/* Unique id of the image at @path; -errno when it does not open. */
static int uuid_of(const char *path, uint8_t uuid[16])
{
	struct vhd_disk *d;
	int r = open_level(path, &d);

	if (r < 0)
		return r;
	memcpy(uuid, ident(d), 16);
	vhd_close_one(d);
	return 0;
}

static void hex(const uint8_t u[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", u[i]);
}

static int unhex(const char *s, uint8_t u[16])
{
	for (int i = 0; i < 16; i++) {
		unsigned v;

		if (!isxdigit((unsigned char)s[2 * i]) ||
		    !isxdigit((unsigned char)s[2 * i + 1]) ||
		    sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		u[i] = (uint8_t)v;
	}
	return s[32] == ' ' ? 0 : -EINVAL;
}

/* Parse a marker; -EINVAL when it is incomplete or not one of ours. */
static int read_marker(const char *marker, struct plan *p)
{
	char *buf = malloc(MARKER_MAX + 1), *line, *save;
	bool ended = false, have_anc = false;
	struct level_id *last = NULL;
	int fd, r = 0;
	ssize_t n;

	if (!buf)
		return vhd_set_error(-ENOMEM, "out of memory");
	fd = open(marker, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	n = read(fd, buf, MARKER_MAX);
	close(fd);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	buf[n] = '\0';
	memset(p, 0, sizeof(*p));
	line = strtok_r(buf, "\n", &save);
	if (!line || strcmp(line, MARKER_MAGIC) != 0) {
		r = -EINVAL;
		goto out;
	}
	while (r == 0 && (line = strtok_r(NULL, "\n", &save))) {
		struct level_id *id = NULL;
		unsigned long long dev, ino;
		int used = 0;

		if (ended) {
			r = -EINVAL;
		} else if (strncmp(line, "inode ", 6) == 0 && last &&
			   !last->have_ino) {
			/* the identity of the level just named */
			if (sscanf(line + 6, "%llu %llu%n", &dev, &ino,
				   &used) != 2 ||
			    line[6 + used] != '\0')
				r = -EINVAL;
			last->have_ino = true;
			last->dev = (dev_t)dev;
			last->ino = (ino_t)ino;
		} else if (strcmp(line, "end") == 0) {
			ended = true;
		} else if (strncmp(line, "ancestor ", 9) == 0 && !have_anc) {
			id = &p->ancestor;
			have_anc = true;
			line += 9;
		} else if (strncmp(line, "remove ", 7) == 0 &&
			   p->nrm < VHD_MAX_CHAIN_DEPTH) {
			id = &p->rm[p->nrm++];
			line += 7;
		} else {
			r = -EINVAL;
		}
		if (id && (strlen(line) < 34 || unhex(line, id->uuid) ||
			   strlen(line + 33) >= sizeof(id->path)))
			r = -EINVAL;
		else if (id)
			strcpy(id->path, line + 33);
		if (id)
			last = id;
	}
	if (r == 0 && (!ended || !have_anc || !p->nrm))
		r = -EINVAL;
out:
	free(buf);
	return r;
}

static int write_marker(const char *marker, const struct plan *p)
{
	char *buf = malloc(MARKER_MAX), u[33];
	size_t o = 0;
	int fd, r;

	if (!buf)
		return vhd_set_error(-ENOMEM, "out of memory");
	o += (size_t)snprintf(buf + o, MARKER_MAX - o, MARKER_MAGIC "\n");
	hex(p->ancestor.uuid, u);
	o += (size_t)snprintf(buf + o, MARKER_MAX - o, "ancestor %s %s\n", u,
			      p->ancestor.path);
	for (int i = 0; i < p->nrm && o < MARKER_MAX; i++) {
		hex(p->rm[i].uuid, u);
		o += (size_t)snprintf(buf + o, MARKER_MAX - o, "remove %s %s\n",
				      u, p->rm[i].path);
		if (o < MARKER_MAX)
			o += (size_t)snprintf(buf + o, MARKER_MAX - o,
					      "inode %llu %llu\n",
					      (unsigned long long)p->rm[i].dev,
					      (unsigned long long)p->rm[i].ino);
	}
	if (o < MARKER_MAX)
		o += (size_t)snprintf(buf + o, MARKER_MAX - o, "end\n");
	if (o >= MARKER_MAX) {
		free(buf);
		return vhd_set_error(-ENAMETOOLONG, "%s: paths too long",
				     marker);
	}
	fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = vhd_set_error(-errno, "%s: cannot create: %s", marker,
				  strerror(errno));
		free(buf);
		return r;
	}
	r = vhd_io_write(fd, buf, o, 0);
	if (r == 0)
		r = vhd_io_sync(fd);
	close(fd);
	free(buf);
	if (r < 0)
		return vhd_set_error(r, "%s: write failed: %s", marker,
				     strerror(-r));
	return sync_dir(marker);
}

static bool is_inode(const struct stat *st, const struct level_id *id)
{
	return S_ISREG(st->st_mode) && st->st_dev == id->dev &&
	       st->st_ino == id->ino;
}

/*
 * Where the level @id is now: its journalled path while that name is
 * still its inode, else the entry of the same directory that is (renamed
 * by another tool). 1 with @out set, 0 when neither (already removed, or
 * moved out of the directory).
 */
static int find_level(const struct level_id *id, char *out, size_t len)
{
	char dir[PATH_MAX];
	struct dirent *de;
	struct stat st;
	int found = 0;
	DIR *dp;

	if (lstat(id->path, &st) == 0 && is_inode(&st, id)) {
		snprintf(out, len, "%s", id->path);
		return 1;
	}
	dir_of(id->path, dir, sizeof(dir));
	dp = opendir(dir);
	if (!dp)
		return 0;
	while (!found && (de = readdir(dp))) {
		if (de->d_ino != id->ino)
			continue;
		found = fstatat(dirfd(dp), de->d_name, &st,
				AT_SYMLINK_NOFOLLOW) == 0 &&
			is_inode(&st, id) &&
			(size_t)snprintf(out, len, "%s/%s", dir, de->d_name) <
				len;
	}
	closedir(dp);
	return found;
}

/*
 * Unlink the levels the plan names, leaf first, then the marker. Each by
 * identity (find_level); with a journal of an older version, by name while
 * it still has the recorded unique id. A new file under a level's name is
 * left alone either way. @missing (or NULL) marks the levels not found.
 */
static int remove_levels(const char *marker, const struct plan *p,
			 bool *missing)
{
	char path[PATH_MAX];
	int r;

	for (int i = 0; i < p->nrm; i++) {
		uint8_t u[16];

		if (p->rm[i].have_ino) {
			if (!find_level(&p->rm[i], path, sizeof(path))) {
				if (missing)
					missing[i] = true;
				continue;
			}
		} else if (uuid_of(p->rm[i].path, u) < 0 ||
			   memcmp(u, p->rm[i].uuid, 16) != 0) {
			continue;
		} else {
			snprintf(path, sizeof(path), "%s", p->rm[i].path);
		}
		if (unlink(path) < 0 && errno != ENOENT)
			return vhd_set_error(-errno, "%s: cannot remove: %s",
					     path, strerror(errno));
		r = sync_dir(path);
		if (r < 0)
			return r;
	}
	if (unlink(marker) < 0 && errno != ENOENT)
		return vhd_set_error(-errno, "%s: cannot remove: %s", marker,
				     strerror(errno));
	return sync_dir(marker);
}

static void close_levels(struct merge *m)
{
	/* Linked leaf to ancestor's child: closing the leaf closes all. */
	if (m->n)
		vhd_close_chain(m->lv[0]);
	m->n = 0;
}

/*
 * Open the child and every level above the ancestor (each on its own,
 * linked as a chain that ends above the ancestor) and find the ancestor.
 */
static int open_levels(struct merge *m, const char *child, const char *ancestor)
{
	char *ppath = malloc(8192);
	struct stat want, st;
	struct vhd_disk *d;
	int r;

	if (!ppath)
		return vhd_set_error(-ENOMEM, "out of memory");
	if (ancestor && stat(ancestor, &want) < 0) {
		r = vhd_set_error(-errno, "ancestor %s: %s", ancestor,
				  strerror(errno));
		goto out;
	}
	r = open_level(child, &d);
	if (r < 0)
		goto out;
	if (d->footer.disk_type != VHD_TYPE_DIFF) {
		vhd_close_one(d);
		r = vhd_set_error(-EINVAL,
				  "%s: not a differencing disk: nothing to "
				  "merge",
				  child);
		goto out;
	}
	if (ancestor && same_disk(d, &want)) {
		vhd_close_one(d);
		r = vhd_set_error(-EINVAL,
				  "%s: cannot merge an image into "
				  "itself",
				  child);
		goto out;
	}
	for (;;) {
		if (m->n)
			m->lv[m->n - 1]->parent = d;
		m->lv[m->n++] = d;
		r = vhd_find_parent(d, ppath, 8192);
		if (r < 0)
			goto fail;
		if (stat(ppath, &st) < 0) {
			r = vhd_set_error(-errno, "%s: %s", ppath,
					  strerror(errno));
			goto fail;
		}
		for (int i = 0; i < m->n; i++) {
			if (same_disk(m->lv[i], &st)) {
				r = vhd_set_error(-ELOOP,
						  "%s: parent cycle: %s is "
						  "already in the chain",
						  d->path, ppath);
				goto fail;
			}
		}
		if (!ancestor || same_file(&st, &want)) {
			snprintf(m->apath, sizeof(m->apath), "%s",
				 ancestor ? ancestor : ppath);
			m->ast = st;
			break;
		}
		if (m->n >= VHD_MAX_CHAIN_DEPTH - 1) {
			r = vhd_set_error(-ELOOP,
					  "%s: chain deeper than %d images",
					  child, VHD_MAX_CHAIN_DEPTH);
			goto fail;
		}
		r = open_level(ppath, &d);
		if (r < 0)
			goto fail;
		if (d->footer.disk_type != VHD_TYPE_DIFF) {
			vhd_close_one(d);
			r = vhd_set_error(-EINVAL,
					  "%s is not an ancestor of %s (the "
					  "chain ends at %s)",
					  ancestor, child, ppath);
			goto fail;
		}
	}
	vhd_clear_error(); /* from parent candidates that did not open */
	goto out;
fail:
	close_levels(m);
out:
	free(ppath);
	return r;
}

static bool is_level(const struct merge *m, const struct stat *st)
{
	for (int i = 0; i < m->n; i++)
		if (same_disk(m->lv[i], st))
			return true;
	return false;
}

/*
 * -EPERM when an image in the child's directory, other than the merged
 * levels, has a merged level or the ancestor as its parent: it would lose
 * its parent or see it change.
 */
static int check_dependents(const struct merge *m, const char *child)
{
	char dir[PATH_MAX], path[PATH_MAX], *ppath = malloc(8192);
	struct dirent *de;
	DIR *dp;
	int r = 0;

	if (!ppath)
		return vhd_set_error(-ENOMEM, "out of memory");
	dir_of(child, dir, sizeof(dir));
	dp = opendir(dir);
	if (!dp) {
		r = vhd_set_error(-errno, "%s: %s", dir, strerror(errno));
		goto out;
	}
	while (r == 0 && (de = readdir(dp))) {
		struct vhd_disk *d;
		struct stat st, pst;
		int n;

		if (!vhd_is_image_name(de->d_name))
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* Opened as every image is (regular files only, never through
		 * a vhdfs mount), then told from the levels by inode. */
		if (n < 0 || (size_t)n >= sizeof(path) ||
		    open_level(path, &d) < 0)
			continue;
		st.st_dev = d->dev;
		st.st_ino = d->ino;
		if (!is_level(m, &st) && d->footer.disk_type == VHD_TYPE_DIFF &&
		    vhd_find_parent(d, ppath, 8192) == 0 &&
		    stat(ppath, &pst) == 0 &&
		    (is_level(m, &pst) || same_file(&pst, &m->ast)))
			r = vhd_set_error(-EPERM,
					  "%s: cannot merge: %s depends on %s, "
					  "which the merge %s",
					  child, path, ppath,
					  is_level(m, &pst) ? "removes"
							    : "changes");
		vhd_close_one(d);
	}
	closedir(dp);
	if (r == 0)
		vhd_clear_error();
out:
	free(ppath);
	return r;
}

/*
 * The same for a VHDX level: its data and its zero block states (which
 * shadow the parent with zeros) are held.
 */
static int mark_held_vhdx(struct vhd_disk *d, uint64_t off, uint64_t end,
			  uint8_t *held, bool *any)
{
	uint64_t first = off / VHD_SECTOR_SIZE;

	while (off < end) {
		enum vhdx_own own;
		uint64_t to;
		int r = vhdx_own_extent(d, off, end, &own, &to);

		if (r < 0)
			return r;
		if (to <= off)
			return vhd_set_error(-EIO,
					     "%s: no progress at %" PRIu64,
					     d->path, off);
		if (own != VHDX_OWN_BELOW) {
			uint64_t s = off / VHD_SECTOR_SIZE;
			uint64_t e =
				(to + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE;

			memset(held + (s - first), 1, (size_t)(e - s));
			*any = true;
		}
		off = to;
	}
	return 0;
}

/* Mark in @held (one byte per sector from @off) the sectors @d holds. */
static int mark_held(struct vhd_disk *d, uint64_t off, uint64_t end,
		     uint8_t *held, bool *any)
{
	uint64_t first = off / VHD_SECTOR_SIZE;
	uint64_t last = (end + VHD_SECTOR_SIZE - 1) / VHD_SECTOR_SIZE;

	if (d->vhdx)
		return mark_held_vhdx(d, off, end, held, any);
	for (uint64_t s = first; s < last;) {
		uint32_t block = (uint32_t)(s / d->sectors_per_block);
		uint64_t bstart = (uint64_t)block * d->sectors_per_block;
		uint64_t bend = bstart + d->sectors_per_block;
		uint8_t *map;
		int r;

		if (block >= d->entries)
			break;
		if (bend > last)
			bend = last;
		if (d->bat[block] == VHD_BAT_UNUSED) {
			s = bend;
			continue;
		}
		r = vhd_bitmap_get(d, block, &map);
		if (r < 0)
			return r;
		for (; s < bend; s++) {
			if (vhd_bit_test(map, (uint32_t)(s - bstart))) {
				held[s - first] = 1;
				*any = true;
			}
		}
	}
	return 0;
}

/* Write every sector held above the ancestor into @a, newest level wins. */
static int copy_down(struct merge *m, struct vhd_disk *a,
		     vhd_progress_fn progress, void *ctx)
{
	struct vhd_disk *c = m->lv[0];
	uint64_t size = c->size;
	uint8_t *buf = malloc(CHUNK), *held = malloc(CHUNK / VHD_SECTOR_SIZE);
	int r = 0;

	if (!buf || !held) {
		r = vhd_set_error(-ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t off = 0; off < size; off += CHUNK) {
		uint64_t end = size - off < CHUNK ? size : off + CHUNK;
		uint32_t nsec = (uint32_t)((end - off + VHD_SECTOR_SIZE - 1) /
					   VHD_SECTOR_SIZE);
		bool any = false;

		if (progress && progress(ctx, off, size)) {
			r = -ECANCELED;
			vhd_set_error(r, "%s: merge cancelled", c->path);
			goto out;
		}
		memset(held, 0, nsec);
		for (int i = 0; i < m->n && r == 0; i++)
			r = mark_held(m->lv[i], off, end, held, &any);
		if (r < 0)
			goto out;
		for (uint32_t s = 0; any && s < nsec;) {
			uint32_t e = s;
			uint64_t from, to;
			ssize_t n;

			if (!held[s]) {
				s++;
				continue;
			}
			while (e < nsec && held[e])
				e++;
			from = off + (uint64_t)s * VHD_SECTOR_SIZE;
			to = off + (uint64_t)e * VHD_SECTOR_SIZE;
			if (to > end)
				to = end;
			n = vhd_pread(c, buf, (size_t)(to - from), from);
			if (n >= 0 && n != (ssize_t)(to - from))
				n = vhd_set_error(-EIO, "%s: short read",
						  c->path);
			if (n >= 0)
				n = vhd_pwrite(a, buf, (size_t)(to - from),
					       from);
			if (n >= 0 && n != (ssize_t)(to - from))
				n = vhd_set_error(-ENOSPC, "%s: short write",
						  a->path);
			if (n < 0) {
				r = (int)n;
				goto out;
			}
			s = e;
		}
	}
out:
	free(buf);
	free(held);
	return r;
}

static int level_id(const char *path, const uint8_t uuid[16], dev_t dev,
		    ino_t ino, struct level_id *id)
{
	char *real = realpath(path, NULL);

	if (!real)
		return vhd_set_error(-errno, "%s: %s", path, strerror(errno));
	if (strlen(real) >= sizeof(id->path) || strchr(real, '\n')) {
		free(real);
		return vhd_set_error(-EINVAL,
				     "%s: path cannot be journalled (too long "
				     "or holds a newline)",
				     path);
	}
	strcpy(id->path, real);
	memcpy(id->uuid, uuid, 16);
	id->have_ino = true;
	id->dev = dev;
	id->ino = ino;
	free(real);
	return 0;
}

/*
 * After the removal: -EEXIST when a level it did not find (@missing) still
 * exists, moved out of its directory by another tool meanwhile. It was not
 * removed and no longer matches its parent: say so, naming it.
 */
static int check_removed(const struct merge *m, const bool *missing,
			 const char *ancestor)
{
	for (int i = 0; i < m->n; i++) {
		const struct vhd_disk *d = m->lv[i];
		struct stat st;

		if (missing[i] &&
		    fstat(d->vhdx ? d->vhdx->fd : d->fd, &st) == 0 &&
		    st.st_nlink > 0)
			return vhd_set_error(
				-EEXIST,
				"%s: merged into %s, but this level "
				"was moved out of its directory "
				"during the merge, so it was not "
				"removed; it no longer matches its "
				"parent: delete it",
				d->path, ancestor);
	}
	return 0;
}

/*
 * A VHDX ancestor kept its DataWriteGuid while the merged levels pointed
 * at it (their view did not change); with them gone it gets a new one,
 * as any write gives it, so other children of it no longer match.
 */
static int renew_ancestor(const char *path)
{
	struct vhd_disk *d;
	int r;

	if (vhdx_probe(path) != 1)
		return 0;
	r = vhdx_open_one(path, VHD_OPEN_RDWR | VHD_OPEN_NOPARENT, &d);
	if (r < 0)
		return r;
	r = vhdx_renew_data_guid(d->vhdx);
	if (r < 0) {
		vhd_close_chain(d);
		return r;
	}
	return vhd_close(d);
}

/* Finish the removal an interrupted merge journalled in @marker. */
static int resume(const char *marker, const struct plan *p,
		  const char *ancestor, vhd_progress_fn progress, void *ctx)
{
	uint8_t u[16];
	int r;

	if (ancestor &&
	    (uuid_of(ancestor, u) < 0 || memcmp(u, p->ancestor.uuid, 16) != 0))
		return vhd_set_error(-EINVAL,
				     "an interrupted merge into %s must be "
				     "finished first (journal %s): rerun it "
				     "without another ancestor",
				     p->ancestor.path, marker);
	vhd_clear_error();
	if (progress && (progress(ctx, 0, 1) || progress(ctx, 1, 1)))
		return vhd_set_error(-ECANCELED, "merge cancelled");
	r = remove_levels(marker, p, NULL);
	return r < 0 ? r : renew_ancestor(p->ancestor.path);
}

int vhd_merge_pending(const char *child)
{
	char marker[PATH_MAX];
	struct plan *p;
	int r;

	vhd_clear_error();
	r = marker_path(child, marker, sizeof(marker));
	if (r < 0)
		return r;
	p = malloc(sizeof(*p));
	if (!p)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = read_marker(marker, p) == 0;
	free(p);
	return r;
}

int vhd_merge(const char *child, const char *ancestor, vhd_progress_fn progress,
	      void *ctx)
{
	struct merge m = {.n = 0};
	struct vhd_disk *a = NULL;
	char marker[PATH_MAX];
	struct plan *p = malloc(sizeof(*p));
	bool missing[VHD_MAX_CHAIN_DEPTH] = {false};
	struct stat st;
	int r;

	vhd_clear_error();
	if (!p)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = marker_path(child, marker, sizeof(marker));
	if (r < 0)
		goto out;
	if (lstat(marker, &st) == 0) {
		if (read_marker(marker, p) == 0) {
			r = resume(marker, p, ancestor, progress, ctx);
			/* A new image under the child's name: merge it too. */
			if (r < 0 || lstat(child, &st) < 0)
				goto out;
		} else if (unlink(marker) < 0) {
			/* Incomplete: written before any removal began. */
			r = vhd_set_error(-errno, "%s: cannot remove: %s",
					  marker, strerror(errno));
			goto out;
		}
	}
	r = open_levels(&m, child, ancestor);
	if (r < 0)
		goto out;
	r = check_dependents(&m, child);
	if (r < 0)
		goto out;
	r = vhd_open(m.apath, VHD_OPEN_RDWR, &a);
	if (r < 0)
		goto out;
	if (a->vhdx)
		a->vhdx->keep_data_guid = true;
	if (!same_disk(a, &m.ast)) {
		r = vhd_set_error(-EAGAIN, "%s: replaced during the merge",
				  m.apath);
		goto out;
	}
	if (a->size < m.lv[0]->size) {
		r = vhd_set_error(-EINVAL,
				  "%s (%" PRIu64 " bytes) is larger than its "
				  "ancestor %s (%" PRIu64 " bytes)",
				  child, m.lv[0]->size, m.apath, a->size);
		goto out;
	}
	memset(p, 0, sizeof(*p));
	r = level_id(m.apath, ident(a), a->dev, a->ino, &p->ancestor);
	for (int i = 0; r == 0 && i < m.n; i++)
		r = level_id(m.lv[i]->path, ident(m.lv[i]), m.lv[i]->dev,
			     m.lv[i]->ino, &p->rm[i]);
	if (r < 0)
		goto out;
	p->nrm = m.n;
	r = copy_down(&m, a, progress, ctx);
	{
		/* Pending metadata of what was copied: the ancestor stays
		 * consistent even when the copy stopped. */
		char *msg = r ? strdup(vhd_errmsg()) : NULL;
		int rc = vhd_close(a); /* clears the message */

		a = NULL;
		if (r == 0)
			r = rc;
		else
			vhd_set_error(r, "%s", msg ? msg : "");
		free(msg);
	}
	if (r < 0)
		goto out;
	if (progress && progress(ctx, m.lv[0]->size, m.lv[0]->size)) {
		r = vhd_set_error(-ECANCELED, "%s: merge cancelled", child);
		goto out;
	}
	r = write_marker(marker, p);
	if (r == 0)
		r = remove_levels(marker, p, missing);
	if (r == 0)
		r = renew_ancestor(m.apath);
	if (r == 0)
		r = check_removed(&m, missing, m.apath);
out:
	if (a)
		vhd_close_chain(a); /* opened, nothing written */
	close_levels(&m);
	free(p);
	return r;
}

int vhd_merge_leftover(const char *path, const uint8_t uuid[16], char *msg,
		       size_t len)
{
	size_t sl = strlen(MARKER_SUFFIX);
	char dir[PATH_MAX], marker[PATH_MAX];
	struct plan *p = malloc(sizeof(*p));
	struct dirent *de;
	int found = 0;
	DIR *dp;

	if (!p)
		return 0;
	dir_of(path, dir, sizeof(dir));
	dp = opendir(dir);
	while (dp && !found && (de = readdir(dp))) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] != '.' || n <= sl + 1 ||
		    strcmp(de->d_name + n - sl, MARKER_SUFFIX) != 0 ||
		    (size_t)snprintf(marker, sizeof(marker), "%s/%s", dir,
				     de->d_name) >= sizeof(marker) ||
		    read_marker(marker, p) < 0)
			continue;
		for (int i = 0; i < p->nrm && !found; i++) {
			if (memcmp(p->rm[i].uuid, uuid, 16) != 0)
				continue;
			snprintf(msg, len,
				 "%s: left over by an interrupted merge of "
				 "%.*s into %s (journal %s): run `vhd merge "
				 "%s/%.*s` to finish it, which deletes this "
				 "file",
				 path, (int)(n - sl - 1), de->d_name + 1,
				 p->ancestor.path, marker, dir,
				 (int)(n - sl - 1), de->d_name + 1);
			found = 1;
		}
	}
	if (dp)
		closedir(dp);
	free(p);
	return found;
}
