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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhdfs.h"

pthread_mutex_t vhdfs_topo_lock = PTHREAD_MUTEX_INITIALIZER;

struct vhdfs_image {
	char path[PATH_MAX]; /* backing path; protected by images_lock */
	dev_t dev;	     /* identity: one handle per inode */
	ino_t ino;
	/* Readers and writers share it; taken exclusively only to swap the
	 * read-only handle for a read-write one and back. */
	pthread_rwlock_t lock;
	struct vhd_disk *disk; /* protected by lock */
	bool rdwr;	       /* protected by lock */
	int refs;	       /* protected by images_lock */
	int writers;	       /* protected by images_lock */
	bool listed;	       /* protected by images_lock */
	bool closing; /* last reference gone; protected by images_lock */
	bool busy;    /* handle being swapped; protected by images_lock */
	/* A writer's descriptor the daemon did not see wrote after a let go:
	 * closes cannot tell when it ends, so keep the lock until the last
	 * writer's release. Protected by images_lock. */
	bool relocked;
	struct vhdfs_reader *readers; /* protected by images_lock */
	atomic_int nreaders;	      /* their number, read unlocked */
	struct vhdfs_image *next;
};

struct vhdfs_reader {
	struct vhdfs_reader *next;
	bool shared; /* another file was opened by its path since */
	char path[]; /* the FUSE path it was opened by */
};

/*
 * images_lock guards the list and the counts only: nothing that can
 * block on a file system (open, flush, close) runs under it, so a slow or
 * hostile file never stalls unrelated opens.
 */
static pthread_mutex_t images_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t images_cond = PTHREAD_COND_INITIALIZER;
static struct vhdfs_image *images; /* protected by images_lock */
/* Closes begun; an open that raced one retries. Under images_lock. */
static unsigned long closes_begun;

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

static struct vhdfs_image *find_listed(dev_t dev, ino_t ino)
{
	struct vhdfs_image *img;

	for (img = images; img; img = img->next)
		if (img->dev == dev && img->ino == ino)
			return img;
	return NULL;
}

static bool disk_is(struct vhd_disk *disk, dev_t dev, ino_t ino)
{
	dev_t d;
	ino_t i;

	vhd_identity(disk, &d, &i);
	return d == dev && i == ino;
}

/*
 * Swap @img's handle for one opened @write; the caller holds a reference
 * (upgrade: and vhdfs_topo_lock; either: busy set). A downgrade flushes
 * and opens the read-only handle while no write can land, so readers see
 * every acknowledged write; the write lock goes with the old handle.
 * Nothing to do when the handle already is as asked.
 */
static int reopen(struct vhdfs_image *img, const char *bpath, bool write)
{
	struct vhd_disk *disk, *old;
	int ret = 0;

	pthread_rwlock_wrlock(&img->lock);
	if (img->rdwr == write)
		goto out;
	if (!write) {
		ret = vhd_flush(img->disk);
		if (ret)
			goto out;
	}
	ret = vhd_open(bpath, write ? VHD_OPEN_RDWR : VHD_OPEN_RDONLY, &disk);
	if (ret)
		goto out;
	if (!disk_is(disk, img->dev, img->ino)) {
		/* Renamed or replaced behind our back: not this image. */
		vhd_close(disk);
		ret = -ESTALE;
		goto out;
	}
	old = img->disk;
	img->disk = disk;
	img->rdwr = write;
	pthread_rwlock_unlock(&img->lock);
	ret = vhd_close(old);
	if (ret)
		vhdfs_log("close of %s failed: %s", bpath, strerror(-ret));
	return 0;
out:
	pthread_rwlock_unlock(&img->lock);
	return ret;
}

/*
 * reopen() with busy set, so that no open, close or other swap of @img
 * runs meanwhile, and only while it has @writers writers (-1: any).
 * 1 when it is closing, unlisted (removed) or the count differs.
 */
static int swap_handle(struct vhdfs_image *img, bool write, int writers)
{
	char path[PATH_MAX];
	int ret;

	pthread_mutex_lock(&images_lock);
	while (img->busy)
		pthread_cond_wait(&images_cond, &images_lock);
	if (img->closing || !img->listed ||
	    (writers >= 0 && img->writers != writers) ||
	    (!write && img->relocked)) {
		pthread_mutex_unlock(&images_lock);
		return 1;
	}
	img->busy = true;
	/* Set before the swap: a let go waiting for busy must not undo it
	 * before the write that asked for it is retried. */
	img->relocked |= write;
	snprintf(path, sizeof(path), "%s", img->path);
	pthread_mutex_unlock(&images_lock);
	ret = reopen(img, path, write);
	if (ret < 0)
		vhdfs_log("reopen of %s %s failed: %s", path,
			  write ? "for writing" : "read-only", strerror(-ret));
	pthread_mutex_lock(&images_lock);
	img->busy = false;
	pthread_cond_broadcast(&images_cond);
	pthread_mutex_unlock(&images_lock);
	return ret;
}

void vhdfs_image_let_go(struct vhdfs_image *img)
{
	/* A failed swap keeps the read-write handle: nothing is lost. */
	swap_handle(img, false, 1);
}

int vhdfs_image_relock(struct vhdfs_image *img)
{
	int ret = swap_handle(img, true, -1);

	/* Removed or closing: no path leads back to it. */
	return ret == 1 ? -ESTALE : ret;
}

int vhdfs_image_get(const char *bpath, bool write, struct vhdfs_image **out)
{
	struct vhdfs_image *img;
	struct vhd_disk *disk;
	unsigned long seq;
	struct stat st;
	int ret;

again:
	ret = vhdfs_stat(bpath, &st);
	if (ret)
		return ret;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;

	pthread_mutex_lock(&images_lock);
	img = find_listed(st.st_dev, st.st_ino);
	if (img && (img->closing || img->busy)) {
		/* A close or handle swap is in flight: its flush must land
		 * before the file is read again. Woken, look again (the
		 * entry may be freed by then). */
		pthread_cond_wait(&images_cond, &images_lock);
		pthread_mutex_unlock(&images_lock);
		goto again;
	}
	if (img) {
		/* Counted at once, so a last writer's downgrade cannot start
		 * under a new writer. */
		img->refs++;
		img->writers += write;
		pthread_mutex_unlock(&images_lock);
		pthread_rwlock_rdlock(&img->lock);
		bool upgrade = write && !img->rdwr;

		pthread_rwlock_unlock(&img->lock);
		ret = upgrade ? reopen(img, bpath, true) : 0;
		if (ret) {
			vhdfs_image_put(img, write);
			return ret;
		}
		*out = img;
		return 0;
	}
	seq = closes_begun;
	pthread_mutex_unlock(&images_lock);

	ret = vhd_open(bpath, write ? VHD_OPEN_RDWR : VHD_OPEN_RDONLY, &disk);
	if (ret)
		return ret;
	pthread_mutex_lock(&images_lock);
	if (seq != closes_begun || find_listed(st.st_dev, st.st_ino)) {
		/* A close (whose flush we may have missed) or another open
		 * raced ours: start over. */
		pthread_mutex_unlock(&images_lock);
		vhd_close(disk);
		goto again;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		pthread_mutex_unlock(&images_lock);
		vhd_close(disk);
		return -ENOMEM;
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
	img->refs = 1;
	img->writers = write;
	*out = img;
	pthread_mutex_unlock(&images_lock);
	return 0;
}

void vhdfs_image_put(struct vhdfs_image *img, bool write)
{
	bool readers_remain;
	int ret;

	pthread_mutex_lock(&images_lock);
	if (write && --img->writers == 0)
		img->relocked = false;
	readers_remain = write && img->writers == 0 && img->refs > 1;
	pthread_mutex_unlock(&images_lock);
	/*
	 * Hand the readers a read-only handle, so the write lock goes with
	 * the last writer and the image can become a parent (here or in
	 * another program). Our reference pins the image meanwhile.
	 */
	if (readers_remain)
		swap_handle(img, false, 0);
	pthread_mutex_lock(&images_lock);
	if (--img->refs > 0) {
		pthread_mutex_unlock(&images_lock);
		return;
	}
	/*
	 * The last reference: flush and close outside the lock. The entry
	 * stays listed, marked closing, until the file is complete: the
	 * kernel sends RELEASE asynchronously and a reopen racing this
	 * close must not read the file before then.
	 */
	img->closing = true;
	closes_begun++;
	pthread_mutex_unlock(&images_lock);
	if (img->rdwr) {
		ret = vhd_flush(img->disk);
		if (ret)
			vhdfs_log("flush of %s failed: %s", img->path,
				  strerror(-ret));
	}
	vhd_close(img->disk);
	pthread_mutex_lock(&images_lock);
	if (img->listed)
		unlist(img);
	pthread_cond_broadcast(&images_cond);
	pthread_mutex_unlock(&images_lock);
	pthread_rwlock_destroy(&img->lock);
	free(img);
}

struct vhdfs_reader *vhdfs_image_add_reader(struct vhdfs_image *img,
					    const char *path)
{
	size_t n = strlen(path) + 1;
	struct vhdfs_reader *r = malloc(sizeof(*r) + n);

	if (!r)
		return NULL;
	memcpy(r->path, path, n);
	r->shared = false;
	pthread_mutex_lock(&images_lock);
	r->next = img->readers;
	img->readers = r;
	atomic_fetch_add(&img->nreaders, 1);
	pthread_mutex_unlock(&images_lock);
	return r;
}

void vhdfs_image_del_reader(struct vhdfs_image *img, struct vhdfs_reader *r)
{
	struct vhdfs_reader **p;

	if (!r)
		return;
	pthread_mutex_lock(&images_lock);
	for (p = &img->readers; *p; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			atomic_fetch_sub(&img->nreaders, 1);
			break;
		}
	}
	pthread_mutex_unlock(&images_lock);
	/* Its pages of another file are in that path's cache: drop them at
	 * the next open. */
	if (r->shared)
		vhdfs_cache_changed();
	free(r);
}

bool vhdfs_image_path_shared(struct vhdfs_image *img, const char *path)
{
	struct vhdfs_image *other;
	struct vhdfs_reader *r;
	bool shared = false;

	pthread_mutex_lock(&images_lock);
	/* Listed only: a file removed or replaced through the mount gets
	 * another kernel inode, with a page cache of its own. */
	for (other = images; other; other = other->next) {
		if (other == img)
			continue;
		for (r = other->readers; r; r = r->next) {
			if (strcmp(r->path, path) == 0) {
				r->shared = true;
				shared = true;
			}
		}
	}
	pthread_mutex_unlock(&images_lock);
	return shared;
}

char **vhdfs_image_other_readers(struct vhdfs_image *img, const char *path)
{
	struct vhdfs_reader *r;
	char **names;
	int n = 0;

	if (atomic_load(&img->nreaders) == 0)
		return NULL;
	pthread_mutex_lock(&images_lock);
	/* Most often every reader has the writer's path: allocate nothing. */
	for (r = img->readers; r && path && strcmp(r->path, path) == 0;)
		r = r->next;
	names = r ? calloc((size_t)atomic_load(&img->nreaders) + 1,
			   sizeof(*names))
		  : NULL;
	for (r = img->readers; names && r; r = r->next) {
		bool seen = path && strcmp(r->path, path) == 0;

		for (int i = 0; !seen && i < n; i++)
			seen = strcmp(names[i], r->path) == 0;
		if (!seen && (names[n] = strdup(r->path)))
			n++;
	}
	pthread_mutex_unlock(&images_lock);
	if (names && !n) {
		free(names);
		names = NULL;
	}
	return names;
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

/* @fn on the image's read-write handle, when it has one. */
static int on_rdwr(struct vhdfs_image *img, int (*fn)(struct vhd_disk *))
{
	int ret = 0;

	pthread_rwlock_rdlock(&img->lock);
	if (img->rdwr)
		ret = fn(img->disk);
	pthread_rwlock_unlock(&img->lock);
	return ret;
}

int vhdfs_image_flush(struct vhdfs_image *img)
{
	return on_rdwr(img, vhd_flush);
}

int vhdfs_image_closing(struct vhdfs_image *img)
{
	return on_rdwr(img, vhd_settle);
}

uint64_t vhdfs_image_version(struct vhdfs_image *img)
{
	uint64_t v = 0;
	int writers;

	pthread_mutex_lock(&images_lock);
	writers = img->writers;
	pthread_mutex_unlock(&images_lock);
	pthread_rwlock_rdlock(&img->lock);
	if (!writers)
		v = vhd_chain_version(img->disk);
	pthread_rwlock_unlock(&img->lock);
	return v;
}

int vhdfs_image_parents_readable(struct vhdfs_image *img, char *which,
				 size_t len)
{
	struct vhd_disk *d;
	int ret = 0;

	pthread_rwlock_rdlock(&img->lock);
	for (d = vhd_parent(img->disk); d && !ret; d = vhd_parent(d)) {
		struct stat st;

		ret = vhdfs_caller_may_open_st(vhd_path(d), false, &st);
		/* The file checked must be the one open (no swap since). */
		if (!ret && st.st_ino && !disk_is(d, st.st_dev, st.st_ino))
			ret = -EACCES;
		if (ret)
			snprintf(which, len, "%s", vhd_path(d));
	}
	pthread_rwlock_unlock(&img->lock);
	return ret;
}

bool vhdfs_image_is(struct vhdfs_image *img, const struct stat *st)
{
	bool same;

	pthread_rwlock_rdlock(&img->lock);
	same = disk_is(img->disk, st->st_dev, st->st_ino);
	pthread_rwlock_unlock(&img->lock);
	return same;
}

uint64_t vhdfs_image_size(struct vhdfs_image *img)
{
	uint64_t size;

	pthread_rwlock_rdlock(&img->lock);
	size = vhd_size(img->disk);
	pthread_rwlock_unlock(&img->lock);
	return size;
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

/* Handles (or only the writers) of the file at @path, by inode. */
static int count_open(const char *path, bool writers)
{
	struct vhdfs_image *img;
	struct stat st;
	int n = 0;

	if (vhdfs_stat(path, &st))
		return 0;
	pthread_mutex_lock(&images_lock);
again:
	/* A last writer's close or downgrade still holds the write lock
	 * until it is done: wait for it. */
	for (img = images; img; img = img->next) {
		if (img->dev != st.st_dev || img->ino != st.st_ino)
			continue;
		if (img->closing || img->busy) {
			pthread_cond_wait(&images_cond, &images_lock);
			n = 0;
			goto again;
		}
		n += writers ? img->writers : img->refs;
	}
	pthread_mutex_unlock(&images_lock);
	return n;
}

int vhdfs_image_writers(const char *real)
{
	return count_open(real, true);
}

/* Long enough for a release in flight, short next to a user's patience. */
#define SETTLE_MS 2000
#define SETTLE_STEP_MS 10

void vhdfs_image_settle(const char *path, bool writers)
{
	const struct timespec step = {0, SETTLE_STEP_MS * 1000000L};

	for (int waited = 0; waited < SETTLE_MS; waited += SETTLE_STEP_MS) {
		if (count_open(path, writers) == 0)
			return;
		nanosleep(&step, NULL);
	}
}

int vhdfs_image_users(const char *path)
{
	return count_open(path, false);
}

int vhdfs_image_sync(const char *real)
{
	struct vhdfs_image *img;
	struct stat st;
	int ret;

	if (vhdfs_stat(real, &st))
		return 0;
	pthread_mutex_lock(&images_lock);
	/* A close or downgrade in flight flushes itself: let it finish. */
	while ((img = find_listed(st.st_dev, st.st_ino)) &&
	       (img->closing || img->busy))
		pthread_cond_wait(&images_cond, &images_lock);
	if (!img) {
		pthread_mutex_unlock(&images_lock);
		return 0;
	}
	img->refs++; /* pins the handle while the flush runs unlocked */
	pthread_mutex_unlock(&images_lock);
	ret = vhdfs_image_flush(img);
	vhdfs_image_put(img, false);
	return ret;
}

/* Size of an open image of @bpath with inode @st, or false. */
static bool open_size(const struct stat *st, uint64_t *vsize,
		      enum vhd_type *type)
{
	struct vhdfs_image *img;
	bool found = false;

	pthread_mutex_lock(&images_lock);
	for (img = images; img; img = img->next) {
		if (img->ino == st->st_ino && img->dev == st->st_dev &&
		    !img->closing) {
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
	dev_t pdev;   /* and its identity */
	ino_t pino;
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
	struct stat pst;

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
	/* vhd_find_parent keeps out of our mount: so do realpath and stat,
	 * on the path it found. */
	if (m->type == VHD_TYPE_DIFF &&
	    vhd_find_parent(disk, found, sizeof(found)) == 0 &&
	    vhd_realpath(found, real, sizeof(real)) == 0 &&
	    stat(real, &pst) == 0) {
		m->parent = strdup(real);
		m->pdev = pst.st_dev;
		m->pino = pst.st_ino;
	}
	vhd_close(disk);
	return m;
}

/*
 * Look @bpath up; on a miss or a stale entry load it. @want_parent also
 * reloads a differencing entry whose parent was unresolved or has vanished
 * (it may have been copied in or moved since). Copies the results out.
 */
static struct meta *meta_find(unsigned h, const char *bpath)
{
	struct meta *m;

	for (m = meta_tab[h]; m; m = m->next)
		if (strcmp(m->path, bpath) == 0)
			break;
	return m;
}

static int meta_get(const char *bpath, const struct stat *st, bool want_parent,
		    uint64_t *vsize, enum vhd_type *type, char *parent,
		    size_t plen, struct stat *pst)
{
	unsigned h = meta_hash(bpath);
	struct meta *m, **p, *fresh;
	char known[PATH_MAX] = "";
	int err;

	pthread_mutex_lock(&meta_lock);
	m = meta_find(h, bpath);
	if (m && meta_fresh(m, st)) {
		if (!want_parent || m->type != VHD_TYPE_DIFF || m->err)
			goto found;
		if (m->parent)
			snprintf(known, sizeof(known), "%s", m->parent);
	}
	pthread_mutex_unlock(&meta_lock);
	/* Is the parent still there? Asked with no lock held. */
	if (known[0] && access(known, F_OK) == 0) {
		pthread_mutex_lock(&meta_lock);
		m = meta_find(h, bpath);
		if (m && meta_fresh(m, st))
			goto found;
		pthread_mutex_unlock(&meta_lock);
	}

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
	if (pst) {
		pst->st_dev = m->pdev;
		pst->st_ino = m->pino;
	}
	pthread_mutex_unlock(&meta_lock);
	return err;
}

int vhdfs_image_meta(const char *bpath, const struct stat *st, uint64_t *vsize,
		     enum vhd_type *type)
{
	if (open_size(st, vsize, type))
		return 0;
	return meta_get(bpath, st, false, vsize, type, NULL, 0, NULL);
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

void vhdfs_image_forget(const char *bpath, const struct stat *gone)
{
	struct vhdfs_image *img, *next;

	pthread_mutex_lock(&images_lock);
	for (img = images; gone && img; img = next) {
		next = img->next;
		if (img->dev == gone->st_dev && img->ino == gone->st_ino)
			unlist(img);
	}
	pthread_mutex_unlock(&images_lock);
	meta_forget(bpath);
	vhdfs_cache_changed(); /* its content or chain changed */
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
	vhdfs_cache_changed(); /* paths show other images now */
}

/*
 * Walk BACKING_DIR for differencing images and call @fn(ctx, child,
 * parent_realpath) for each whose parent resolves; stop when @fn returns
 * non-zero. Symlinked directories are not followed (the view hides them).
 */
typedef int (*child_fn)(void *ctx, const char *child, const char *parent,
			const struct stat *pst);

struct walk_ctx {
	child_fn fn;
	void *ctx;
	char parent[PATH_MAX];
};

static int walk_one(void *vctx, const char *path, const struct stat *lst)
{
	struct walk_ctx *w = vctx;
	struct stat st = *lst, pst;
	enum vhd_type type;

	if (!vhd_is_image_name(path) ||
	    (S_ISLNK(st.st_mode) && vhdfs_stat(path, &st)) ||
	    !S_ISREG(st.st_mode))
		return 0;
	if (meta_get(path, &st, true, NULL, &type, w->parent, sizeof(w->parent),
		     &pst) ||
	    type != VHD_TYPE_DIFF || !w->parent[0])
		return 0;
	return w->fn(w->ctx, path, w->parent, &pst);
}

static int walk(child_fn fn, void *ctx)
{
	struct walk_ctx *w = malloc(sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	w->fn = fn;
	w->ctx = ctx;
	ret = vhdfs_tree_walk(vhdfs_cfg.backing, walk_one, w);
	free(w);
	return ret;
}

struct find_ctx {
	const char *target;    /* directory prefix, or NULL */
	const struct stat *st; /* else: the parent's identity */
	bool prefix;
	char *parent;
	size_t plen;
	char *child;
	size_t clen;
};

static int match_child(void *vctx, const char *child, const char *parent,
		       const struct stat *pst)
{
	struct find_ctx *c = vctx;

	if (c->prefix) {
		size_t n = strlen(c->target);

		if (strncmp(parent, c->target, n) != 0 || parent[n] != '/')
			return 0;
	} else if (pst->st_dev != c->st->st_dev ||
		   pst->st_ino != c->st->st_ino) {
		/* Identity is the inode: hard links and symlinks count. */
		return 0;
	}
	if (c->parent)
		snprintf(c->parent, c->plen, "%s", parent);
	snprintf(c->child, c->clen, "%s", child);
	return 1;
}

int vhdfs_find_child(const struct stat *st, char *child, size_t len)
{
	struct find_ctx c = {
		.st = st,
		.child = child,
		.clen = len,
	};

	return walk(match_child, &c);
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

	return walk(match_child, &c);
}

struct dep_ctx {
	const struct vhdfs_job_claim *ids;
	int n, nskip;
	char *child, *parent;
	size_t clen, plen;
};

static bool in_ids(const struct vhdfs_job_claim *ids, int n,
		   const struct stat *st)
{
	for (int i = 0; i < n; i++)
		if (ids[i].dev == st->st_dev && ids[i].ino == st->st_ino)
			return true;
	return false;
}

static int match_dependent(void *vctx, const char *child, const char *parent,
			   const struct stat *pst)
{
	struct dep_ctx *c = vctx;
	struct stat cst;

	if (!in_ids(c->ids, c->n, pst) || vhdfs_stat(child, &cst) ||
	    in_ids(c->ids, c->nskip, &cst))
		return 0;
	snprintf(c->child, c->clen, "%s", child);
	snprintf(c->parent, c->plen, "%s", parent);
	return 1;
}

int vhdfs_find_dependent(const struct vhdfs_job_claim *ids, int n, int nskip,
			 char *child, size_t clen, char *parent, size_t plen)
{
	struct dep_ctx c = {ids, n, nskip, child, parent, clen, plen};

	return walk(match_dependent, &c);
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
