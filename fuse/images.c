// SPDX-License-Identifier: MIT
/*
 * Image handles and the image graph.
 *
 * Every open of the same image shares one vhd_disk (refcounted); it is
 * reopened read-write the first time a writer opens it and closed with the
 * last release. Metadata for getattr and parent detection comes from a
 * cache keyed by path and validated against inode, size, mtime and ctime,
 * so images changed or replaced by other tools are seen at once.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdfs.h"

pthread_mutex_t vhdfs_topo_lock = PTHREAD_MUTEX_INITIALIZER;

struct vhdfs_image {
	char path[PATH_MAX]; /* backing path; protected by images_lock */
	dev_t dev;
	ino_t ino;
	/* Readers and writers share it; taken exclusively only to swap the
	 * read-only handle for a read-write one. */
	pthread_rwlock_t lock;
	struct vhd_disk *disk; /* protected by lock */
	bool rdwr;	       /* protected by lock */
	int refs;	       /* protected by images_lock */
	int writers;	       /* protected by images_lock */
	bool listed;	       /* protected by images_lock */
	struct vhdfs_image *next;
};

static pthread_mutex_t images_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vhdfs_image *images; /* protected by images_lock */

static void unlist(struct vhdfs_image *img)
{
	struct vhdfs_image **p;

	for (p = &images; *p; p = &(*p)->next) {
		if (*p == img) {
			*p = img->next;
			break;
		}
	}
	img->listed = false;
}

int vhdfs_image_get(const char *bpath, bool write, struct vhdfs_image **out)
{
	struct vhdfs_image *img, *next;
	struct vhd_disk *disk;
	struct stat st;
	int ret;

	if (stat(bpath, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;

	pthread_mutex_lock(&images_lock);
	for (img = images; img; img = next) {
		next = img->next;
		if (strcmp(img->path, bpath) != 0)
			continue;
		if (img->dev == st.st_dev && img->ino == st.st_ino)
			break;
		/* Replaced by another file: old opens keep the old one. */
		unlist(img);
	}
	if (img) {
		if (write && !img->rdwr) {
			ret = vhd_open(bpath, VHD_OPEN_RDWR, &disk);
			if (ret)
				goto out;
			pthread_rwlock_wrlock(&img->lock);
			struct vhd_disk *old = img->disk;

			img->disk = disk;
			img->rdwr = true;
			pthread_rwlock_unlock(&img->lock);
			vhd_close(old);
		}
	} else {
		ret = vhd_open(bpath, write ? VHD_OPEN_RDWR : VHD_OPEN_RDONLY,
			       &disk);
		if (ret)
			goto out;
		img = calloc(1, sizeof(*img));
		if (!img) {
			vhd_close(disk);
			ret = -ENOMEM;
			goto out;
		}
		snprintf(img->path, sizeof(img->path), "%s", bpath);
		img->dev = st.st_dev;
		img->ino = st.st_ino;
		pthread_rwlock_init(&img->lock, NULL);
		img->disk = disk;
		img->rdwr = write;
		img->listed = true;
		img->next = images;
		images = img;
	}
	img->refs++;
	if (write)
		img->writers++;
	*out = img;
	ret = 0;
out:
	pthread_mutex_unlock(&images_lock);
	return ret;
}

static void flush_logged(struct vhdfs_image *img)
{
	int ret = vhdfs_image_flush(img);

	if (ret)
		vhdfs_log("flush of %s failed: %s", img->path, strerror(-ret));
}

void vhdfs_image_put(struct vhdfs_image *img, bool write)
{
	bool last_writer;

	pthread_mutex_lock(&images_lock);
	if (write)
		img->writers--;
	last_writer = write && !img->writers && img->refs > 1;
	if (last_writer) {
		/*
		 * Readers stay: the metadata the writes left in memory must
		 * still reach the file now, or a child made next would miss
		 * it and the file would change under that child later. Our
		 * reference keeps the image alive without the list lock.
		 */
		pthread_mutex_unlock(&images_lock);
		flush_logged(img);
		pthread_mutex_lock(&images_lock);
	}
	if (--img->refs > 0) {
		pthread_mutex_unlock(&images_lock);
		return;
	}
	/*
	 * Flush and close before the image leaves the list, with the list
	 * locked: the library keeps new BAT entries and bitmaps in memory
	 * until the flush, and the kernel sends RELEASE asynchronously, so a
	 * reopen racing this close must not read the file before it is
	 * complete.
	 */
	if (img->rdwr)
		flush_logged(img);
	vhd_close(img->disk);
	if (img->listed)
		unlist(img);
	pthread_mutex_unlock(&images_lock);
	pthread_rwlock_destroy(&img->lock);
	free(img);
}

ssize_t vhdfs_image_pread(struct vhdfs_image *img, void *buf, size_t len,
			  uint64_t off)
{
	ssize_t ret;

	pthread_rwlock_rdlock(&img->lock);
	ret = vhd_pread(img->disk, buf, len, off);
	pthread_rwlock_unlock(&img->lock);
	return ret;
}

ssize_t vhdfs_image_pwrite(struct vhdfs_image *img, const void *buf, size_t len,
			   uint64_t off)
{
	ssize_t ret;

	pthread_rwlock_rdlock(&img->lock);
	ret = img->rdwr ? vhd_pwrite(img->disk, buf, len, off) : -EBADF;
	pthread_rwlock_unlock(&img->lock);
	return ret;
}

int vhdfs_image_flush(struct vhdfs_image *img)
{
	int ret = 0;

	pthread_rwlock_rdlock(&img->lock);
	if (img->rdwr)
		ret = vhd_flush(img->disk);
	pthread_rwlock_unlock(&img->lock);
	return ret;
}

int64_t vhdfs_image_seek(struct vhdfs_image *img, uint64_t off, bool data)
{
	int64_t ret;

	pthread_rwlock_rdlock(&img->lock);
	ret = data ? vhd_seek_data(img->disk, off)
		   : vhd_seek_hole(img->disk, off);
	pthread_rwlock_unlock(&img->lock);
	return ret;
}

int vhdfs_image_writers(const char *real)
{
	struct vhdfs_image *img;
	struct stat st;
	int n = 0;

	if (stat(real, &st))
		return 0;
	pthread_mutex_lock(&images_lock);
	for (img = images; img; img = img->next)
		if (img->dev == st.st_dev && img->ino == st.st_ino)
			n += img->writers;
	pthread_mutex_unlock(&images_lock);
	return n;
}

int vhdfs_image_sync(const char *real)
{
	struct vhdfs_image *held[16], *img;
	struct stat st;
	int n = 0, ret = 0;

	if (stat(real, &st))
		return 0;
	pthread_mutex_lock(&images_lock);
	for (img = images; img && n < 16; img = img->next) {
		if (img->dev == st.st_dev && img->ino == st.st_ino) {
			img->refs++;
			held[n++] = img;
		}
	}
	pthread_mutex_unlock(&images_lock);
	for (int i = 0; i < n; i++) {
		int r = vhdfs_image_flush(held[i]);

		if (r && !ret)
			ret = r;
		vhdfs_image_put(held[i], false);
	}
	return ret;
}

/* Size of an open image of @bpath with inode @st, or false. */
static bool open_size(const char *bpath, const struct stat *st, uint64_t *vsize,
		      enum vhd_type *type)
{
	struct vhdfs_image *img;
	bool found = false;

	pthread_mutex_lock(&images_lock);
	for (img = images; img; img = img->next) {
		if (img->ino == st->st_ino && img->dev == st->st_dev &&
		    strcmp(img->path, bpath) == 0) {
			pthread_rwlock_rdlock(&img->lock);
			*vsize = vhd_size(img->disk);
			*type = vhd_type(img->disk);
			pthread_rwlock_unlock(&img->lock);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&images_lock);
	return found;
}

/*
 * Metadata cache. An entry is valid while the file keeps its inode, size,
 * mtime and ctime; anything else rereads it.
 */
#define META_BUCKETS 256
#define META_MAX 8192

struct meta {
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int err; /* not a readable VHD: -errno of vhd_open */
	uint64_t vsize;
	enum vhd_type type;
	char *parent; /* differencing: realpath of the parent, or NULL */
	struct meta *next;
};

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static struct meta *meta_tab[META_BUCKETS]; /* protected by meta_lock */
static unsigned meta_count;		    /* protected by meta_lock */

static unsigned meta_hash(const char *s)
{
	unsigned h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h % META_BUCKETS;
}

static bool meta_fresh(const struct meta *m, const struct stat *st)
{
	return m->dev == st->st_dev && m->ino == st->st_ino &&
	       m->size == st->st_size &&
	       m->mtime.tv_sec == st->st_mtim.tv_sec &&
	       m->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       m->ctime.tv_sec == st->st_ctim.tv_sec &&
	       m->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void meta_free(struct meta *m)
{
	free(m->path);
	free(m->parent);
	free(m);
}

static void meta_clear_locked(void)
{
	for (unsigned i = 0; i < META_BUCKETS; i++) {
		while (meta_tab[i]) {
			struct meta *m = meta_tab[i];

			meta_tab[i] = m->next;
			meta_free(m);
		}
	}
	meta_count = 0;
}

/* Read the image's metadata from disk (no lock held). */
static struct meta *meta_load(const char *bpath, const struct stat *st)
{
	struct meta *m = calloc(1, sizeof(*m));
	struct vhd_disk *disk;
	char found[PATH_MAX], real[PATH_MAX];

	if (!m)
		return NULL;
	m->path = strdup(bpath);
	if (!m->path) {
		free(m);
		return NULL;
	}
	m->dev = st->st_dev;
	m->ino = st->st_ino;
	m->size = st->st_size;
	m->mtime = st->st_mtim;
	m->ctime = st->st_ctim;
	m->err = vhd_open(bpath, VHD_OPEN_NOPARENT, &disk);
	if (m->err)
		return m;
	m->vsize = vhd_size(disk);
	m->type = vhd_type(disk);
	if (m->type == VHD_TYPE_DIFF &&
	    vhd_find_parent(disk, found, sizeof(found)) == 0 &&
	    realpath(found, real))
		m->parent = strdup(real);
	vhd_close(disk);
	return m;
}

/*
 * Look @bpath up; on a miss or a stale entry load it. @want_parent also
 * reloads a differencing entry whose parent was unresolved or has vanished
 * (it may have been copied in or moved since). Copies the results out.
 */
static int meta_get(const char *bpath, const struct stat *st, bool want_parent,
		    uint64_t *vsize, enum vhd_type *type, char *parent,
		    size_t plen)
{
	unsigned h = meta_hash(bpath);
	struct meta *m, **p, *fresh;
	int err;

	pthread_mutex_lock(&meta_lock);
	for (m = meta_tab[h]; m; m = m->next)
		if (strcmp(m->path, bpath) == 0)
			break;
	if (m && meta_fresh(m, st) &&
	    !(want_parent && m->type == VHD_TYPE_DIFF && !m->err &&
	      (!m->parent || access(m->parent, F_OK))))
		goto found;
	pthread_mutex_unlock(&meta_lock);

	fresh = meta_load(bpath, st);
	if (!fresh)
		return -ENOMEM;

	pthread_mutex_lock(&meta_lock);
	for (p = &meta_tab[h]; *p; p = &(*p)->next) {
		if (strcmp((*p)->path, bpath) == 0) {
			m = *p;
			*p = m->next;
			meta_free(m);
			meta_count--;
			break;
		}
	}
	if (meta_count >= META_MAX)
		meta_clear_locked();
	fresh->next = meta_tab[h];
	meta_tab[h] = fresh;
	meta_count++;
	m = fresh;
found:
	err = m->err;
	if (vsize)
		*vsize = m->vsize;
	if (type)
		*type = m->type;
	if (parent && plen)
		snprintf(parent, plen, "%s", m->parent ? m->parent : "");
	pthread_mutex_unlock(&meta_lock);
	return err;
}

int vhdfs_image_meta(const char *bpath, const struct stat *st, uint64_t *vsize,
		     enum vhd_type *type)
{
	if (open_size(bpath, st, vsize, type))
		return 0;
	return meta_get(bpath, st, false, vsize, type, NULL, 0);
}

static void meta_forget(const char *bpath)
{
	size_t n = strlen(bpath);

	pthread_mutex_lock(&meta_lock);
	for (unsigned i = 0; i < META_BUCKETS; i++) {
		struct meta **p = &meta_tab[i];

		while (*p) {
			struct meta *m = *p;

			if (strncmp(m->path, bpath, n) == 0 &&
			    (m->path[n] == '\0' || m->path[n] == '/')) {
				*p = m->next;
				meta_free(m);
				meta_count--;
			} else {
				p = &m->next;
			}
		}
	}
	pthread_mutex_unlock(&meta_lock);
}

void vhdfs_image_forget(const char *bpath)
{
	struct vhdfs_image *img, *next;

	pthread_mutex_lock(&images_lock);
	for (img = images; img; img = next) {
		next = img->next;
		if (strcmp(img->path, bpath) == 0)
			unlist(img);
	}
	pthread_mutex_unlock(&images_lock);
	meta_forget(bpath);
}

void vhdfs_image_renamed(const char *from, const char *to)
{
	struct vhdfs_image *img, *next;
	size_t n = strlen(from);

	pthread_mutex_lock(&images_lock);
	for (img = images; img; img = next) {
		next = img->next;
		/* A replaced destination is gone for good. */
		if (strcmp(img->path, to) == 0) {
			unlist(img);
			continue;
		}
		if (strncmp(img->path, from, n) != 0 ||
		    (img->path[n] != '\0' && img->path[n] != '/'))
			continue;
		char tmp[PATH_MAX];
		int len = snprintf(tmp, sizeof(tmp), "%s%s", to, img->path + n);

		if (len < 0 || (size_t)len >= sizeof(tmp))
			unlist(img);
		else
			memcpy(img->path, tmp, (size_t)len + 1);
	}
	pthread_mutex_unlock(&images_lock);
	meta_forget(from);
	meta_forget(to);
}

/*
 * Walk BACKING_DIR for differencing images and call @fn(ctx, child,
 * parent_realpath) for each whose parent resolves; stop when @fn returns
 * non-zero. Symlinked directories are not followed (the view hides them).
 */
typedef int (*child_fn)(void *ctx, const char *child, const char *parent);

static int walk(const char *dir, int depth, child_fn fn, void *ctx)
{
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (depth > 64)
		return 0;
	d = opendir(dir);
	if (!d)
		return 0;
	while (!ret && (de = readdir(d))) {
		char path[PATH_MAX], parent[PATH_MAX];
		struct stat st;
		enum vhd_type type;
		int n;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		/* Never walk into our own mount (MOUNTPOINT inside BACKING_DIR)
		 */
		if (strcmp(path, vhdfs_cfg.mountpoint) == 0 || lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			ret = walk(path, depth + 1, fn, ctx);
			continue;
		}
		if (!vhdfs_is_vhd_name(de->d_name) || stat(path, &st) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (meta_get(path, &st, true, NULL, &type, parent,
			     sizeof(parent)) ||
		    type != VHD_TYPE_DIFF || !parent[0])
			continue;
		ret = fn(ctx, path, parent);
	}
	closedir(d);
	return ret;
}

struct find_ctx {
	const char *target; /* parent realpath, or directory prefix */
	bool prefix;
	char *parent;
	size_t plen;
	char *child;
	size_t clen;
};

static int match_child(void *vctx, const char *child, const char *parent)
{
	struct find_ctx *c = vctx;
	size_t n = strlen(c->target);

	if (c->prefix) {
		if (strncmp(parent, c->target, n) != 0 || parent[n] != '/')
			return 0;
	} else if (strcmp(parent, c->target) != 0) {
		return 0;
	}
	if (c->parent)
		snprintf(c->parent, c->plen, "%s", parent);
	snprintf(c->child, c->clen, "%s", child);
	return 1;
}

int vhdfs_find_child(const char *real, char *child, size_t len)
{
	struct find_ctx c = {
		.target = real,
		.child = child,
		.clen = len,
	};

	return walk(vhdfs_cfg.backing, 0, match_child, &c);
}

int vhdfs_find_child_under(const char *dir, char *parent, size_t plen,
			   char *child, size_t clen)
{
	struct find_ctx c = {
		.target = dir,
		.prefix = true,
		.parent = parent,
		.plen = plen,
		.child = child,
		.clen = clen,
	};

	return walk(vhdfs_cfg.backing, 0, match_child, &c);
}

void vhdfs_images_destroy(void)
{
	struct vhdfs_image *img;

	/* Handles still open at unmount (a lazy unmount, a signal): make
	 * their acknowledged writes durable before the process ends. */
	pthread_mutex_lock(&images_lock);
	for (img = images; img; img = img->next)
		if (img->writers)
			vhdfs_image_flush(img);
	pthread_mutex_unlock(&images_lock);
	pthread_mutex_lock(&meta_lock);
	meta_clear_locked();
	pthread_mutex_unlock(&meta_lock);
}
