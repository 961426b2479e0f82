// SPDX-License-Identifier: MIT
/*
 * FUSE callbacks: translate each request into path mapping, image handle,
 * control-file or job calls. Refused requests are logged, one line each.
 */
#include "vhdfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Per-open state, stored in fi->fh. */
struct vhdfs_fh {
	enum vhdfs_node node;
	bool write;
	struct vhdfs_image *img;     /* VHDFS_NODE_BACKING */
	struct vhdfs_reader *reader; /* a page-cached reader of img */
	struct vhdfs_control *ctl;   /* VHDFS_NODE_CONTROL */
	char *text;		     /* VHDFS_NODE_JOB: snapshot at open */
	size_t len;
	pid_t opener; /* who opened it: a close looks for its other copies */
};

static struct timespec mount_time;

#define VHDFS_MAX_BACKGROUND 64

static struct vhdfs_fh *get_fh(const struct fuse_file_info *fi)
{
	return (struct vhdfs_fh *)(uintptr_t)fi->fh;
}

/* Map a FUSE path of the image view to its backing path and stat it.
 * Only directories (not symlinks to them) and *.vhd regular files (or
 * symlinks to them) are visible. */
static int lookup(const char *path, char *bpath, struct stat *st)
{
	int ret = vhdfs_backing_path(path, bpath, PATH_MAX);

	if (ret)
		return ret;
	if (strcmp(bpath, vhdfs_cfg.mountpoint) == 0)
		return -ENOENT;
	if (lstat(bpath, st))
		return -errno;
	if (S_ISDIR(st->st_mode))
		return 0;
	if (!vhd_is_image_name(bpath))
		return -ENOENT;
	if (S_ISLNK(st->st_mode) && vhdfs_stat(bpath, st))
		return -ENOENT;
	return S_ISREG(st->st_mode) ? 0 : -ENOENT;
}

static void special_stat(struct stat *st, mode_t mode, off_t size)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_uid = vhdfs_cfg.uid;
	st->st_gid = vhdfs_cfg.gid;
	st->st_size = size;
	st->st_atim = st->st_mtim = st->st_ctim = mount_time;
}

/*
 * Requests on an open file whose last name was removed come with a NULL
 * path (hard_remove): answer from the open handle. A job's file or an
 * image: its size; the mode of an image is no longer known, so 0600.
 */
static int removed_stat(struct fuse_file_info *fi, struct stat *st)
{
	const struct vhdfs_fh *fh = fi ? get_fh(fi) : NULL;

	if (!fh)
		return -ENOENT;
	if (fh->node == VHDFS_NODE_BACKING && fh->img)
		special_stat(st, S_IFREG | (vhdfs_cfg.ro ? 0400 : 0600),
			     (off_t)vhdfs_image_size(fh->img));
	else if (fh->node == VHDFS_NODE_JOB)
		special_stat(st, S_IFREG | 0444, (off_t)fh->len);
	else
		return -ENOENT;
	st->st_nlink = 0;
	return 0;
}

static int vhdfs_getattr(const char *path, struct stat *st,
			 struct fuse_file_info *fi)
{
	char bpath[PATH_MAX];
	unsigned long id;
	uint64_t vsize;
	enum vhd_type type;
	char *text;
	size_t len;
	int ret;

	if (!path) /* fstat of an open file whose name was removed */
		return removed_stat(fi, st);
	switch (vhdfs_classify(path, &id)) {
	case VHDFS_NODE_CONTROL:
		special_stat(st, S_IFREG | (vhdfs_cfg.ro ? 0400 : 0600), 0);
		return 0;
	case VHDFS_NODE_JOBS_DIR:
		special_stat(st, S_IFDIR | 0755, 0);
		return 0;
	case VHDFS_NODE_JOB:
		ret = vhdfs_job_render(id, &text, &len);
		if (ret)
			return ret;
		free(text);
		special_stat(st, S_IFREG | 0444, (off_t)len);
		return 0;
	case VHDFS_NODE_ROOT:
	case VHDFS_NODE_BACKING:
		break;
	}
	ret = lookup(path, bpath, st);
	if (ret)
		return ret;
	if (vhdfs_cfg.ro)
		st->st_mode &= ~(mode_t)0222;
	if (S_ISDIR(st->st_mode))
		return 0;
	/* st_blocks stays the backing file's: what this layer stores. */
	if (vhdfs_image_meta(bpath, st, &vsize, &type) == 0)
		st->st_size = (off_t)vsize;
	else
		st->st_size = 0; /* not a readable VHD; open will say why */
	return 0;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
};

static void fill_job(void *vctx, unsigned long id)
{
	struct fill_ctx *c = vctx;
	char name[32];

	snprintf(name, sizeof(name), "%lu", id);
	c->filler(c->buf, name, NULL, 0, 0);
}

static int vhdfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			 off_t off, struct fuse_file_info *fi,
			 enum fuse_readdir_flags flags)
{
	char bpath[PATH_MAX], epath[PATH_MAX];
	struct dirent *de;
	struct stat st;
	unsigned long id;
	DIR *d;
	int ret;

	(void)off, (void)fi, (void)flags;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	switch (vhdfs_classify(path, &id)) {
	case VHDFS_NODE_JOBS_DIR: {
		struct fill_ctx c = {buf, filler};

		vhdfs_job_foreach(fill_job, &c);
		return 0;
	}
	case VHDFS_NODE_CONTROL:
	case VHDFS_NODE_JOB:
		return -ENOTDIR;
	case VHDFS_NODE_ROOT:
		filler(buf, VHDFS_CONTROL_NAME, NULL, 0, 0);
		filler(buf, VHDFS_JOBS_NAME, NULL, 0, 0);
		break;
	case VHDFS_NODE_BACKING:
		break;
	}
	ret = vhdfs_backing_path(path, bpath, sizeof(bpath));
	if (ret)
		return ret;
	d = opendir(bpath);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int n;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (strcmp(path, "/") == 0 &&
		    (strcmp(de->d_name, VHDFS_CONTROL_NAME) == 0 ||
		     strcmp(de->d_name, VHDFS_JOBS_NAME) == 0))
			continue;
		n = snprintf(epath, sizeof(epath), "%s/%s", bpath, de->d_name);
		/* MOUNTPOINT inside BACKING_DIR: do not show us to ourselves */
		if (n < 0 || (size_t)n >= sizeof(epath) ||
		    strcmp(epath, vhdfs_cfg.mountpoint) == 0 ||
		    lstat(epath, &st))
			continue;
		if (!S_ISDIR(st.st_mode)) {
			if (!vhd_is_image_name(de->d_name) ||
			    vhdfs_stat(epath, &st) || !S_ISREG(st.st_mode))
				continue;
		}
		if (filler(buf, de->d_name, NULL, 0, 0))
			break;
	}
	closedir(d);
	return 0;
}

/* May the image at @bpath be written? Under vhdfs_topo_lock. */
static int may_write(const char *path, const char *bpath)
{
	char child[PATH_MAX];
	struct stat st;
	int ret = vhdfs_stat(bpath, &st);

	if (ret)
		return ret;
	if (vhdfs_job_busy(bpath) || vhdfs_image_exclusive(bpath)) {
		vhdfs_log("refusing write open of %s: a job is changing it",
			  path);
		return -EBUSY;
	}
	if (vhdfs_find_child(&st, child, sizeof(child)) > 0) {
		vhdfs_log("refusing write open of %s: it is the parent of %s",
			  path, child + vhdfs_cfg.backing_len);
		return -EPERM;
	}
	return 0;
}

/* Open an image; a writer must not open a parent of another image. */
static int open_image(const char *path, const char *bpath, bool write,
		      struct vhdfs_image **img)
{
	int ret;

	if (!write) {
		pthread_mutex_lock(&vhdfs_topo_lock);
		if (vhdfs_image_exclusive(bpath)) {
			vhdfs_log("refusing open of %s: a job is moving or "
				  "filling its blocks",
				  path);
			ret = -EBUSY;
		} else {
			ret = vhdfs_image_get(bpath, false, img);
		}
		pthread_mutex_unlock(&vhdfs_topo_lock);
		return ret;
	}
	if (vhdfs_cfg.ro)
		return -EROFS;
	pthread_mutex_lock(&vhdfs_topo_lock);
	ret = may_write(path, bpath);
	if (!ret)
		ret = vhdfs_image_get(bpath, true, img);
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

/*
 * A write through a descriptor whose image let go of its write lock
 * (vhdfs_image_let_go) while it stayed open somewhere the daemon could not
 * see: checked as at open, since a child may have been made meanwhile.
 */
static int relock(const char *path, struct vhdfs_fh *fh)
{
	char bpath[PATH_MAX];
	struct stat st;
	int ret;

	if (!path)
		return -ESTALE; /* removed: nothing may name it again */
	ret = lookup(path, bpath, &st);
	if (ret)
		return ret;
	pthread_mutex_lock(&vhdfs_topo_lock);
	ret = may_write(path, bpath);
	if (!ret)
		ret = vhdfs_image_relock(fh->img);
	pthread_mutex_unlock(&vhdfs_topo_lock);
	if (ret)
		vhdfs_log(
			"refusing a write to %s after its lock was let go: %s",
			path, strerror(-ret));
	return ret;
}

static int vhdfs_truncate(const char *path, off_t size,
			  struct fuse_file_info *fi);

static int vhdfs_open(const char *path, struct fuse_file_info *fi)
{
	struct vhdfs_fh *fh = calloc(1, sizeof(*fh));
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
	char bpath[PATH_MAX];
	unsigned long id;
	struct stat st, lst, tst;
	int ret = 0;

	if (!fh)
		return -ENOMEM;
	fh->node = vhdfs_classify(path, &id);
	fh->write = write;
	fh->opener = fuse_get_context()->pid;
	switch (fh->node) {
	case VHDFS_NODE_ROOT:
	case VHDFS_NODE_JOBS_DIR:
		ret = -EISDIR;
		break;
	case VHDFS_NODE_CONTROL: {
		uid_t uid = fuse_get_context()->uid;

		if (uid != vhdfs_cfg.uid && uid != 0) {
			vhdfs_log("refusing .control open by uid %u",
				  (unsigned)uid);
			ret = -EACCES;
			break;
		}
		fh->ctl = vhdfs_control_open();
		ret = fh->ctl ? 0 : -ENOMEM;
		/* Size 0 in getattr: reads must bypass the page cache. */
		fi->direct_io = 1;
		break;
	}
	case VHDFS_NODE_JOB:
		if (write) {
			ret = -EACCES;
			break;
		}
		ret = vhdfs_job_render(id, &fh->text, &fh->len);
		fi->direct_io = 1;
		break;
	case VHDFS_NODE_BACKING:
		ret = lookup(path, bpath, &st);
		if (ret)
			break;
		if (S_ISDIR(st.st_mode)) {
			ret = -EISDIR;
			break;
		}
		/*
		 * The entry as it is now, found beneath BACKING_DIR: the
		 * kernel checked what the path named at its lookup, and a
		 * directory swapped since would lead the open elsewhere.
		 * A symlinked image may sit in a directory the caller
		 * cannot enter: its whole path is checked.
		 */
		ret = vhdfs_backing_node(path);
		if (ret >= 0) {
			int fd = ret;

			ret = fstat(fd, &lst) ? -errno : 0;
			close(fd);
		}
		if (!ret && S_ISLNK(lst.st_mode))
			ret = vhdfs_caller_may_open_st(bpath, write, &tst);
		else if (!ret)
			ret = vhdfs_caller_may_access(&lst, write);
		if (ret) {
			vhdfs_log("refusing open of %s by uid %u: %s", path,
				  (unsigned)fuse_get_context()->uid,
				  strerror(-ret));
			break;
		}
		ret = open_image(path, bpath, write, &fh->img);
		/* What was checked is what is open, or nothing is. */
		if (!ret &&
		    (S_ISLNK(lst.st_mode)
			     ? tst.st_ino && !vhdfs_image_is(fh->img, &tst)
			     : !vhdfs_image_is(fh->img, &lst))) {
			vhdfs_log("refusing open of %s: it changed while "
				  "being opened",
				  path);
			vhdfs_image_put(fh->img, write);
			fh->img = NULL;
			ret = -ENOENT;
		}
		if (ret && ret != -EPERM)
			vhdfs_log("open of %s failed: %s%s%s", path,
				  strerror(-ret), *vhd_errmsg() ? ": " : "",
				  vhd_errmsg());
		if (ret)
			break;
		/* Reading the child reads its parents' data. */
		ret = vhdfs_image_parents_readable(fh->img, bpath,
						   sizeof(bpath));
		if (ret) {
			vhdfs_log("refusing open of %s by uid %u: parent %s: "
				  "%s",
				  path, (unsigned)fuse_get_context()->uid,
				  bpath, strerror(-ret));
			vhdfs_image_put(fh->img, write);
			fh->img = NULL;
			break;
		}
		/* O_TRUNC (`: > img`, cp, dd without notrunc) truncates to
		 * 0: refused like any other size change (a parent: EPERM). */
		if (write && (fi->flags & O_TRUNC)) {
			ret = vhdfs_truncate(path, 0, NULL);
			if (ret) {
				vhdfs_image_put(fh->img, write);
				fh->img = NULL;
				break;
			}
		}
		if (write) {
			/*
			 * Direct I/O: requests as large as the caller's
			 * (up to max_write), and no getxattr round trip
			 * before each write (the kernel's file_remove_privs
			 * runs only on the cached write path). The kernel
			 * drops the written range from the page cache.
			 */
			fi->direct_io = 1;
			vhdfs_cache_changed();
		} else if (vhdfs_image_path_shared(fh->img, path)) {
			/* Its cache holds another file's pages. */
			fi->direct_io = 1;
		} else {
			fi->keep_cache = vhdfs_cache_keep(
				path, vhdfs_image_version(fh->img));
			fh->reader = vhdfs_image_add_reader(fh->img, path);
		}
		break;
	}
	if (ret) {
		free(fh);
		return ret;
	}
	/*
	 * A reader's close(2) need not wait for a FLUSH round trip. A
	 * writer's does: FLUSH leaves the file as complete as a close would,
	 * so RELEASE (sent only after close(2) returned) has no I/O left
	 * before the write lock goes, and `dd of=MNT/x.vhd; qemu-img info
	 * BACKING/x.vhd` finds the file free. An O_DSYNC writer's writes
	 * left nothing to do; without the round trip its close succeeds
	 * even after the daemon died, so it can still report what was
	 * acknowledged (dd oflag=dsync prints no count when close fails).
	 * .control runs a final unterminated line at FLUSH and returns its
	 * errno.
	 */
	fi->noflush = fh->node != VHDFS_NODE_CONTROL &&
		      !(fh->node == VHDFS_NODE_BACKING && write &&
			!(fi->flags & O_DSYNC));
	fi->fh = (uintptr_t)fh;
	return 0;
}

static int vhdfs_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct vhdfs_fh *fh = get_fh(fi);

	(void)path;
	if (off < 0)
		return -EINVAL;
	switch (fh->node) {
	case VHDFS_NODE_CONTROL:
		return (int)vhdfs_control_read(fh->ctl, buf, size, off);
	case VHDFS_NODE_JOB:
		if ((size_t)off >= fh->len)
			return 0;
		if (size > fh->len - (size_t)off)
			size = fh->len - (size_t)off;
		memcpy(buf, fh->text + off, size);
		return (int)size;
	case VHDFS_NODE_BACKING:
		return (int)vhdfs_image_pread(fh->img, buf, size,
					      (uint64_t)off);
	default:
		return -EBADF;
	}
}

/*
 * The kernel dropped the written range from the cache of the path written
 * through (direct I/O); other names of the file keep theirs: drop them.
 */
static void drop_other_names(struct vhdfs_image *img, const char *path)
{
	char **names = vhdfs_image_other_readers(img, path);

	if (!names)
		return;
	for (char **p = names; *p; p++) {
		fuse_invalidate_path(fuse_get_context()->fuse, *p);
		free(*p);
	}
	free(names);
}

static int vhdfs_write(const char *path, const char *buf, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct vhdfs_fh *fh = get_fh(fi);
	ssize_t ret;

	if (off < 0)
		return -EINVAL;
	switch (fh->node) {
	case VHDFS_NODE_CONTROL:
		return (int)vhdfs_control_write(fh->ctl, buf, size, off);
	case VHDFS_NODE_BACKING:
		ret = vhdfs_image_pwrite(fh->img, buf, size, (uint64_t)off);
		if (ret == -EBADF && fh->write) {
			ret = relock(path, fh);
			if (!ret)
				ret = vhdfs_image_pwrite(fh->img, buf, size,
							 (uint64_t)off);
		}
		/* Direct I/O: the kernel leaves O_DSYNC/O_SYNC to us. */
		if (ret >= 0 && (fi->flags & O_DSYNC)) {
			int r = vhdfs_image_flush(fh->img);

			if (r < 0)
				ret = r;
		}
		if (ret > 0)
			drop_other_names(fh->img, path);
		if (ret < 0)
			vhdfs_log("write of %zu bytes at %lld to %s failed: %s",
				  size, (long long)off,
				  path ? path : "a removed image",
				  strerror((int)-ret));
		return (int)ret;
	default:
		return -EBADF;
	}
}

static int vhdfs_flush(const char *path, struct fuse_file_info *fi)
{
	struct vhdfs_fh *fh = get_fh(fi);
	int ret;

	/*
	 * A line without its newline runs at the last close, not when a
	 * child of the writing shell closes its copy (`{ echo -n a; echo
	 * b; } > .control`); unsure, it runs at the release.
	 */
	if (fh->node == VHDFS_NODE_CONTROL)
		return vhdfs_caller_may_hold(path, fh->opener)
			       ? 0
			       : vhdfs_control_flush(fh->ctl);
	if (fh->node != VHDFS_NODE_BACKING || !fh->write)
		return 0;
	ret = vhdfs_image_closing(fh->img);
	if (!ret && !vhdfs_caller_may_hold(path, fh->opener))
		vhdfs_image_let_go(fh->img);
	return ret;
}

static int vhdfs_fsync(const char *path, int datasync,
		       struct fuse_file_info *fi)
{
	struct vhdfs_fh *fh = get_fh(fi);

	(void)path, (void)datasync;
	/* .control: a line still being written is not cut short. */
	if (fh->node != VHDFS_NODE_BACKING || !fh->write)
		return 0;
	return vhdfs_image_flush(fh->img);
}

static int vhdfs_release(const char *path, struct fuse_file_info *fi)
{
	struct vhdfs_fh *fh = get_fh(fi);

	(void)path;
	if (fh->img) {
		vhdfs_image_del_reader(fh->img, fh->reader);
		vhdfs_image_put(fh->img, fh->write);
	}
	if (fh->ctl) {
		vhdfs_control_flush(fh->ctl); /* no FLUSH came: still run it */
		vhdfs_control_release(fh->ctl);
	}
	free(fh->text);
	free(fh);
	return 0;
}

/* Backing path of an existing image (not a directory) we may change. */
static int modifiable_image(const char *path, char *bpath, struct stat *st)
{
	int ret = lookup(path, bpath, st);

	if (ret)
		return ret;
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	return vhdfs_cfg.ro ? -EROFS : 0;
}

static int vhdfs_truncate(const char *path, off_t size,
			  struct fuse_file_info *fi)
{
	char bpath[PATH_MAX];
	unsigned long id;
	struct stat st;
	uint64_t vsize;
	enum vhd_type type;
	int ret;

	if (!path) { /* ftruncate of an image whose name was removed */
		const struct vhdfs_fh *fh = fi ? get_fh(fi) : NULL;

		if (!fh || fh->node != VHDFS_NODE_BACKING || !fh->img)
			return -ENOENT;
		if (vhdfs_cfg.ro)
			return -EROFS;
		return (uint64_t)size == vhdfs_image_size(fh->img) ? 0
								   : -EINVAL;
	}
	switch (vhdfs_classify(path, &id)) {
	case VHDFS_NODE_CONTROL:
		return 0; /* `echo cmd > .control` truncates first */
	case VHDFS_NODE_BACKING:
		break;
	default:
		return -EACCES;
	}
	ret = modifiable_image(path, bpath, &st);
	if (ret)
		return ret;
	ret = vhdfs_image_meta(bpath, &st, &vsize, &type);
	if (ret)
		return ret;
	if ((uint64_t)size == vsize)
		return 0;
	vhdfs_log("refusing truncate of %s to %lld bytes (size %llu): "
		  "use expand",
		  path, (long long)size, (unsigned long long)vsize);
	return -EINVAL;
}

/*
 * -EBUSY (and a log line) when the image at @bpath has a child or a job
 * is changing it.
 */
static int check_not_parent(const char *path, const char *bpath,
			    const char *what)
{
	char child[PATH_MAX];
	struct stat st;
	int ret = vhdfs_stat(bpath, &st);

	if (ret)
		return ret;
	if (vhdfs_job_busy(bpath)) {
		vhdfs_log("refusing %s of %s: a job is changing it", what,
			  path);
		return -EBUSY;
	}
	if (vhdfs_find_child(&st, child, sizeof(child)) > 0) {
		vhdfs_log("refusing %s of %s: it is the parent of %s", what,
			  path, child + vhdfs_cfg.backing_len);
		return -EBUSY;
	}
	return 0;
}

static int vhdfs_unlink(const char *path)
{
	char bpath[PATH_MAX];
	const char *name;
	unsigned long id;
	struct stat st;
	int ret, dirfd;

	switch (vhdfs_classify(path, &id)) {
	case VHDFS_NODE_JOB:
		ret = vhdfs_job_remove(id);
		if (ret == -EBUSY)
			vhdfs_log("refusing rm of %s: job still running", path);
		return ret;
	case VHDFS_NODE_BACKING:
		break;
	default:
		return -EPERM;
	}
	ret = modifiable_image(path, bpath, &st);
	if (ret)
		return ret;
	dirfd = vhdfs_backing_dir(path, &name);
	if (dirfd < 0)
		return dirfd;
	pthread_mutex_lock(&vhdfs_topo_lock);
	ret = check_not_parent(path, bpath, "rm");
	if (!ret) {
		struct stat lst;
		bool last =
			fstatat(dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
			!S_ISLNK(lst.st_mode) && lst.st_nlink <= 1;

		ret = unlinkat(dirfd, name, 0) ? -errno : 0;
		/* Open handles keep the unlinked file; new opens miss it.
		 * Another name of the inode keeps sharing its handle. */
		if (!ret)
			vhdfs_image_forget(bpath, last ? &lst : NULL);
	}
	pthread_mutex_unlock(&vhdfs_topo_lock);
	close(dirfd);
	return ret;
}

static int busy_file(void *ctx, const char *path, const struct stat *lst)
{
	(void)ctx;
	return S_ISREG(lst->st_mode) && vhdfs_job_busy(path);
}

/*
 * A job's paths must not move under it: is any file below @dir claimed by
 * a running job? Our own mount is skipped before it is looked at (a
 * lookup there would be a request to ourselves).
 */
static bool job_busy_under(const char *dir)
{
	return vhdfs_tree_walk(dir, busy_file, NULL) > 0;
}

/* rename(2) between directories opened beneath BACKING_DIR. */
static int rename_beneath(const char *from, const char *to, unsigned flags)
{
	const char *nfrom, *nto;
	int dfrom, dto, ret;

	dfrom = vhdfs_backing_dir(from, &nfrom);
	if (dfrom < 0)
		return dfrom;
	dto = vhdfs_backing_dir(to, &nto);
	if (dto < 0) {
		close(dfrom);
		return dto;
	}
	ret = renameat2(dfrom, nfrom, dto, nto, flags) ? -errno : 0;
	close(dto);
	close(dfrom);
	return ret;
}

static int vhdfs_rename(const char *from, const char *to, unsigned int flags)
{
	char bfrom[PATH_MAX], bto[PATH_MAX], real[PATH_MAX];
	char parent[PATH_MAX], child[PATH_MAX];
	struct stat st, tst;
	unsigned long id;
	int ret;

	if (vhdfs_classify(from, &id) != VHDFS_NODE_BACKING ||
	    vhdfs_classify(to, &id) != VHDFS_NODE_BACKING)
		return -EPERM;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	ret = lookup(from, bfrom, &st);
	if (ret)
		return ret;
	ret = vhdfs_backing_path(to, bto, sizeof(bto));
	if (ret)
		return ret;
	if (vhdfs_cfg.ro)
		return -EROFS;
	if (!S_ISDIR(st.st_mode) && !vhd_is_image_name(to)) {
		vhdfs_log("refusing mv of %s to %s: name must end in .vhd, "
			  ".avhd, .vhdx or .avhdx",
			  from, to);
		return -EINVAL;
	}
	pthread_mutex_lock(&vhdfs_topo_lock);
	if (S_ISDIR(st.st_mode)) {
		ret = vhd_realpath(bfrom, real, sizeof(real));
		if (!ret && vhdfs_find_child_under(real, parent, sizeof(parent),
						   child, sizeof(child)) > 0) {
			vhdfs_log("refusing mv of %s: %s is the parent of %s",
				  from, parent, child + vhdfs_cfg.backing_len);
			ret = -EBUSY;
		}
		if (!ret && job_busy_under(real)) {
			vhdfs_log("refusing mv of %s: a job is changing an "
				  "image in it",
				  from);
			ret = -EBUSY;
		}
	} else {
		ret = check_not_parent(from, bfrom, "mv");
		if (!ret && lstat(bto, &tst) == 0 && !S_ISDIR(tst.st_mode))
			ret = check_not_parent(to, bto, "replacing mv");
	}
	if (!ret)
		ret = rename_beneath(from, to, flags);
	if (!ret)
		vhdfs_image_renamed(bfrom, bto);
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

static int vhdfs_mkdir(const char *path, mode_t mode)
{
	const struct fuse_context *ctx = fuse_get_context();
	const char *name;
	unsigned long id;
	int ret, dirfd;

	if (vhdfs_classify(path, &id) != VHDFS_NODE_BACKING)
		return -EEXIST;
	if (vhdfs_cfg.ro)
		return -EROFS;
	dirfd = vhdfs_backing_dir(path, &name);
	if (dirfd < 0)
		return dirfd;
	ret = mkdirat(dirfd, name, mode) ? -errno : 0;
	/* The directory is the caller's, as on any file system. */
	if (!ret && geteuid() == 0 &&
	    fchownat(dirfd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW)) {
		ret = -errno;
		unlinkat(dirfd, name, AT_REMOVEDIR);
	}
	close(dirfd);
	return ret;
}

static int vhdfs_rmdir(const char *path)
{
	const char *name;
	unsigned long id;
	int ret, dirfd;

	if (vhdfs_classify(path, &id) != VHDFS_NODE_BACKING)
		return -EPERM;
	if (vhdfs_cfg.ro)
		return -EROFS;
	dirfd = vhdfs_backing_dir(path, &name);
	if (dirfd < 0)
		return dirfd;
	ret = unlinkat(dirfd, name, AT_REMOVEDIR) ? -errno : 0;
	close(dirfd);
	return ret;
}

/* New files are made through .control, never by open(O_CREAT). */
static int vhdfs_create(const char *path, mode_t mode,
			struct fuse_file_info *fi)
{
	(void)mode, (void)fi;
	if (vhdfs_cfg.ro)
		return -EROFS;
	vhdfs_log("refusing create of %s: create images through .control",
		  path);
	return -EPERM;
}

/*
 * An existing file or directory whose attributes may be changed, opened
 * O_PATH beneath BACKING_DIR: -EPERM for our virtual files and for a
 * symlinked image (its target may be swapped for any file between the
 * kernel's permission check and the change), -EROFS on a read-only
 * mount. *@fdpath gets "/proc/self/fd/N" to change it by. The fd or
 * -errno.
 */
static int changeable_node(const char *path, const char *what, char *fdpath,
			   size_t len)
{
	char bpath[PATH_MAX];
	struct stat st;
	unsigned long id;
	int ret, fd;

	if (!path) /* fchmod/fchown of an image whose name was removed */
		return -ENOENT;
	if (vhdfs_classify(path, &id) != VHDFS_NODE_BACKING)
		return -EPERM;
	ret = lookup(path, bpath, &st);
	if (ret)
		return ret;
	if (vhdfs_cfg.ro)
		return -EROFS;
	fd = vhdfs_backing_node(path);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || S_ISLNK(st.st_mode)) {
		vhdfs_log("refusing %s of %s: a symlink; change its target "
			  "itself",
			  what, path);
		close(fd);
		return -EPERM;
	}
	snprintf(fdpath, len, "/proc/self/fd/%d", fd);
	return fd;
}

static int vhdfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	char fdpath[32];
	int fd = changeable_node(path, "chmod", fdpath, sizeof(fdpath));
	int ret;

	(void)fi;
	if (fd < 0)
		return fd;
	ret = chmod(fdpath, mode) ? -errno : 0;
	close(fd);
	return ret;
}

static int vhdfs_chown(const char *path, uid_t uid, gid_t gid,
		       struct fuse_file_info *fi)
{
	char fdpath[32];
	int fd = changeable_node(path, "chown", fdpath, sizeof(fdpath));
	int ret;

	(void)fi;
	if (fd < 0)
		return fd;
	ret = fchownat(fd, "", uid, gid, AT_EMPTY_PATH) ? -errno : 0;
	close(fd);
	return ret;
}

static int vhdfs_utimens(const char *path, const struct timespec tv[2],
			 struct fuse_file_info *fi)
{
	char fdpath[32];
	unsigned long id;
	int ret, fd;

	(void)fi;
	/* `touch .control` is harmless; a removed image keeps no times */
	if (!path || vhdfs_classify(path, &id) != VHDFS_NODE_BACKING)
		return 0;
	fd = changeable_node(path, "utimens", fdpath, sizeof(fdpath));
	if (fd < 0)
		return fd;
	ret = utimensat(AT_FDCWD, fdpath, tv, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int vhdfs_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	return statvfs(vhdfs_cfg.backing, sv) ? -errno : 0;
}

static int image_path(const char *path, char *bpath)
{
	struct stat st;
	unsigned long id;
	int ret;

	if (vhdfs_classify(path, &id) != VHDFS_NODE_BACKING)
		return -ENODATA;
	ret = lookup(path, bpath, &st);
	if (ret)
		return ret;
	return S_ISDIR(st.st_mode) ? -ENODATA : 0;
}

static int vhdfs_getxattr_op(const char *path, const char *name, char *value,
			     size_t size)
{
	char bpath[PATH_MAX];
	int ret = image_path(path, bpath);

	return ret ? ret : vhdfs_getxattr(bpath, name, value, size);
}

static int vhdfs_listxattr_op(const char *path, char *list, size_t size)
{
	char bpath[PATH_MAX];
	int ret = image_path(path, bpath);

	if (ret == -ENODATA)
		return 0;
	return ret ? ret : vhdfs_listxattr(bpath, list, size);
}

static int vhdfs_setxattr(const char *path, const char *name, const char *value,
			  size_t size, int flags)
{
	(void)value, (void)size, (void)flags;
	vhdfs_log("refusing setxattr %s on %s: attributes are read-only", name,
		  path);
	return -ENOTSUP;
}

static int vhdfs_removexattr(const char *path, const char *name)
{
	vhdfs_log("refusing removexattr %s on %s: attributes are read-only",
		  name, path);
	return -ENOTSUP;
}

static off_t vhdfs_lseek(const char *path, off_t off, int whence,
			 struct fuse_file_info *fi)
{
	struct vhdfs_fh *fh = get_fh(fi);

	(void)path;
	if (whence == SEEK_SET)
		return off;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (fh->node != VHDFS_NODE_BACKING)
		return -EINVAL;
	if (off < 0)
		return -ENXIO;
	return (off_t)vhdfs_image_seek(fh->img, (uint64_t)off,
				       whence == SEEK_DATA);
}

static void *vhdfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/*
	 * With attr_timeout 0, auto_inval_data makes the kernel fetch
	 * attributes before every cached read (a round trip per 4 KiB).
	 * An open image's content changes only through this mount, and each
	 * open drops the cache anyway, so the check buys nothing.
	 */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/*
	 * Asynchronous direct I/O (a loop device with direct-io=on, aio)
	 * goes out as background requests; past max_background (12 by
	 * default) the submitter sleeps until one completes, so a queue
	 * depth of 16 ran as 12 plus wake-ups. Room for deep queues; the
	 * kernel caps it for unprivileged mounts (max_user_bgreq).
	 */
	conn->max_background = VHDFS_MAX_BACKGROUND;
	conn->congestion_threshold = VHDFS_MAX_BACKGROUND * 3 / 4;
	/* Other tools change BACKING_DIR behind our back: cache nothing. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	/* Unlinked open images keep their handle; no .fuse_hidden files. */
	cfg->hard_remove = 1;
	cfg->use_ino = 0;
	clock_gettime(CLOCK_REALTIME, &mount_time);
	return NULL;
}

static void vhdfs_destroy(void *data)
{
	(void)data;
	vhdfs_jobs_destroy();
	vhdfs_images_destroy();
	vhdfs_control_destroy();
}

const struct fuse_operations vhdfs_ops = {
	.getattr = vhdfs_getattr,
	.readdir = vhdfs_readdir,
	.open = vhdfs_open,
	.read = vhdfs_read,
	.write = vhdfs_write,
	.flush = vhdfs_flush,
	.fsync = vhdfs_fsync,
	.release = vhdfs_release,
	.truncate = vhdfs_truncate,
	.unlink = vhdfs_unlink,
	.rename = vhdfs_rename,
	.mkdir = vhdfs_mkdir,
	.rmdir = vhdfs_rmdir,
	.create = vhdfs_create,
	.chmod = vhdfs_chmod,
	.chown = vhdfs_chown,
	.utimens = vhdfs_utimens,
	.statfs = vhdfs_statfs,
	.getxattr = vhdfs_getxattr_op,
	.listxattr = vhdfs_listxattr_op,
	.setxattr = vhdfs_setxattr,
	.removexattr = vhdfs_removexattr,
	.lseek = vhdfs_lseek,
	.init = vhdfs_init,
	.destroy = vhdfs_destroy,
};
