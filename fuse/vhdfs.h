/* SPDX-License-Identifier: MIT */
/*
 * vhdfs daemon internals shared between the fuse/ files. The daemon only
 * translates between FUSE requests and the libvhd API (vhd.h); it never
 * parses the VHD format itself.
 *
 * Lock order (outermost first): an open .control's write lock (held while
 * its commands run) -> vhdfs_topo_lock (images.c) -> the images list lock
 * -> one image's I/O rwlock; an open .control's result lock -> the result
 * ring lock. The metadata cache lock, the job table lock and the ring lock
 * are leaves: nothing else is taken while holding them.
 */
#ifndef VHDFS_H
#define VHDFS_H

#define FUSE_USE_VERSION 35

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "vhd.h"

#ifndef VHDFS_VERSION
#define VHDFS_VERSION "unknown"
#endif

#define VHDFS_CONTROL_NAME ".control"
#define VHDFS_JOBS_NAME ".jobs"

/* Mount-wide settings, written once by main() before the loop starts. */
struct vhdfs_config {
	char backing[PATH_MAX]; /* realpath of BACKING_DIR */
	size_t backing_len;
	int backing_fd;		   /* O_PATH descriptor of it */
	char mountpoint[PATH_MAX]; /* realpath of MOUNTPOINT, before mount */
	size_t mountpoint_len;
	bool ro;     /* -o ro: refuse every modification */
	bool syslog; /* daemonized: log to syslog, not stderr */
	uid_t uid;   /* mount owner: may use .control */
	gid_t gid;
};

extern struct vhdfs_config vhdfs_cfg;

/*
 * escape.c: copy @slen bytes of @s into @out (@len bytes, always
 * terminated, cut only between whole escapes) with backslash, newline,
 * CR, tab and other control bytes written as C escapes (\\ \n \r \t
 * \xHH), and '"' as \" when @quotes. Returns the length written.
 */
size_t vhdfs_escape(char *out, size_t len, const char *s, size_t slen,
		    bool quotes);

/*
 * caller.c (in a FUSE request): @o gets the caller's uid and gid (when the
 * daemon runs as root; else the daemon's ids stay) and umask, no commit.
 */
void vhdfs_caller_create_opts(struct vhd_create_opts *o);
/*
 * May the caller open the file behind backing path @bpath (following
 * symlinks) for reading, or also writing? Checks search permission on
 * every directory of its real path and the file's mode bits with the
 * caller's uid, gid and groups (ACLs not consulted); root may. 0 or
 * -EACCES (-errno when a component cannot be examined).
 */
int vhdfs_caller_may_open(const char *bpath, bool write);
/*
 * Same, and *@checked gets the stat of the file the check approved (all
 * zeros when nothing was checked: root), so the caller can make sure it
 * opened that very file (a symlink may be swapped in between).
 */
int vhdfs_caller_may_open_st(const char *bpath, bool write,
			     struct stat *checked);
/* The same for the mode bits @st of a file already found. */
int vhdfs_caller_may_access(const struct stat *st, bool write);

/*
 * holders.c (in a FLUSH): may descriptors of the open file at
 * @path (below the mount, wherever it appears), opened by @opener, remain
 * open after this close? Looks
 * at the closing process, @opener, their descendants and the closer's
 * ancestors; true when unsure (also past a bound on the work).
 */
bool vhdfs_caller_may_hold(const char *path, pid_t opener);

/* log.c: one line per refused request or failure. */
void vhdfs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* paths.c: mapping FUSE paths to BACKING_DIR and containment checks. */
enum vhdfs_node {
	VHDFS_NODE_ROOT,
	VHDFS_NODE_CONTROL,
	VHDFS_NODE_JOBS_DIR,
	VHDFS_NODE_JOB,	    /* .jobs/ID */
	VHDFS_NODE_BACKING, /* a file or directory under BACKING_DIR */
};
enum vhdfs_node vhdfs_classify(const char *path, unsigned long *job_id);
/* BACKING_DIR + @path (a FUSE path starting with '/'). */
int vhdfs_backing_path(const char *path, char *buf, size_t len);
/*
 * The directory of FUSE @path's entry, opened (O_PATH) beneath
 * BACKING_DIR so that whatever is swapped in meanwhile, nothing outside
 * it is reached; *@name points at the entry's name in @path. Changes go
 * through the *at() calls on it. The fd (the caller closes it), -ENOENT
 * when a directory is missing or leads outside, or -errno.
 */
int vhdfs_backing_dir(const char *path, const char **name);
/* The entry itself (O_PATH | O_NOFOLLOW: a symlink is not followed). */
int vhdfs_backing_node(const char *path);
/*
 * Resolve a control-file path for an image to be created: it must end up
 * inside BACKING_DIR (-EACCES otherwise), its directory must exist
 * (-ENOENT), its name must end in .vhd (-EINVAL) and nothing may exist
 * there yet (-EEXIST). @msg receives a reason on failure. On success the
 * directory is open beneath BACKING_DIR as *@dirfd (the caller closes it
 * when done) and @out is "/proc/self/fd/N/NAME": creating through it
 * writes into that directory even if a path component is swapped for a
 * symlink meanwhile.
 */
int vhdfs_resolve_new(const char *arg, char *out, size_t len, int *dirfd,
		      char *msg, size_t msglen);
/*
 * Rewrite each "/proc/self/fd/N" (N a directory descriptor) in @msg as the
 * directory it is, for users; text a rewrite put in is left alone.
 */
void vhdfs_unfd(char *msg, size_t len);
/*
 * Resolve a control-file path for an existing file that may live anywhere
 * (a parent, or an image to validate). Paths inside MOUNTPOINT are mapped to
 * BACKING_DIR so the daemon never goes through its own mount. @out is the
 * realpath. -ENOENT when missing.
 */
int vhdfs_resolve_existing(const char *arg, char *out, size_t len, char *msg,
			   size_t msglen);
/* Same, but the file must be inside BACKING_DIR (-EACCES otherwise). */
int vhdfs_resolve_inside(const char *arg, char *out, size_t len, char *msg,
			 size_t msglen);
/*
 * stat(2) that never looks anything up through our own mount: a symlink
 * (in BACKING_DIR) into MOUNTPOINT is followed into BACKING_DIR instead,
 * as vhd_realpath() does. 0 or -errno.
 */
int vhdfs_stat(const char *path, struct stat *st);
/* True when realpath @real is BACKING_DIR or below it. */
bool vhdfs_is_inside(const char *real);
/* Device of the file system mounted at @mnt, from /proc/self/mountinfo
 * (without touching the mount), or 0. */
dev_t vhdfs_mount_dev(const char *mnt);

/*
 * tree.c: call @fn(ctx, path, lst) for every entry below directory @dir
 * that is not a directory (lst: its lstat), however deep: directories
 * are entered by inode once per path (a bind mount loop ends), never
 * through a symlink, never MOUNTPOINT; one descriptor open at a time;
 * only paths longer than PATH_MAX are left out. Returns the first
 * non-zero value of @fn (which stops the walk), -ENOMEM, or 0.
 */
typedef int (*vhdfs_tree_fn)(void *ctx, const char *path,
			     const struct stat *lst);
int vhdfs_tree_walk(const char *dir, vhdfs_tree_fn fn, void *ctx);

/*
 * images.c: one shared vhd_disk per image among all opens, and parent
 * detection over BACKING_DIR.
 */
struct vhdfs_image;

/* Serialises changes of the image graph: write opens, child creation,
 * unlink and rename. */
extern pthread_mutex_t vhdfs_topo_lock;

/*
 * Open (or share) the image at backing path @bpath; @write opens it
 * read-write. The caller holds vhdfs_topo_lock when @write is set.
 */
int vhdfs_image_get(const char *bpath, bool write, struct vhdfs_image **out);
void vhdfs_image_put(struct vhdfs_image *img, bool write);
ssize_t vhdfs_image_pread(struct vhdfs_image *img, void *buf, size_t len,
			  uint64_t off);
/* -EBADF while the handle is read-only (see vhdfs_image_relock). */
ssize_t vhdfs_image_pwrite(struct vhdfs_image *img, const void *buf, size_t len,
			   uint64_t off);
int vhdfs_image_flush(struct vhdfs_image *img);
/*
 * A writer's descriptor is being closed (FLUSH): leave the file as a
 * close would (vhd_settle), so the release that follows only lets go.
 */
int vhdfs_image_closing(struct vhdfs_image *img);
/*
 * After vhdfs_image_closing, when no descriptor of the writer is known to
 * remain (the release is still to come): if it is the image's only
 * writer, swap in a read-only handle, so the write lock goes before
 * close(2) returns and other programs (qemu-img) can open the file at once.
 * Not after a vhdfs_image_relock: a descriptor was missed, and its writes
 * must not meet a read-only handle again; the lock then stays until the
 * last writer's release.
 */
void vhdfs_image_let_go(struct vhdfs_image *img);
/*
 * A writer's descriptor that was still open after all writes again: take
 * the read-write handle and its lock back, reading the file afresh (another
 * program may have written it meanwhile). The caller holds vhdfs_topo_lock
 * and checked, as at open, that the image may be written. -EBUSY when
 * another program holds the lock, -ESTALE when the image was removed.
 */
int vhdfs_image_relock(struct vhdfs_image *img);
int64_t vhdfs_image_seek(struct vhdfs_image *img, uint64_t off, bool data);
/*
 * Page-cached readers of @img, by the FUSE path each was opened under: the
 * kernel caches pages per path, and a write through another name of the
 * file (a hard link, a symlink) drops only that name's pages.
 * vhdfs_image_add_reader() returns what vhdfs_image_del_reader() takes
 * (NULL when out of memory; del accepts it). vhdfs_image_other_readers()
 * returns the distinct paths of readers opened under a name other than
 * @path (all of them when @path is NULL), malloc'd and NULL-terminated,
 * or NULL when there are none; the caller frees each and the array.
 */
struct vhdfs_reader;
struct vhdfs_reader *vhdfs_image_add_reader(struct vhdfs_image *img,
					    const char *path);
void vhdfs_image_del_reader(struct vhdfs_image *img, struct vhdfs_reader *r);
char **vhdfs_image_other_readers(struct vhdfs_image *img, const char *path);
/*
 * Has another image page-cached readers opened by FUSE @path (another
 * tool put another file there since they opened it)? The kernel keeps one
 * page cache per path, so an open of @img there must not use it; those
 * readers' release then drops it (vhdfs_cache_changed()).
 */
bool vhdfs_image_path_shared(struct vhdfs_image *img, const char *path);
/* Is @img's leaf the file @st names (st_dev, st_ino)? */
bool vhdfs_image_is(struct vhdfs_image *img, const struct stat *st);
/* Virtual size of @img (as open). */
uint64_t vhdfs_image_size(struct vhdfs_image *img);
/*
 * In a FUSE request: may the caller read every parent of @img (mode bits
 * and directories, as vhdfs_caller_may_open)? A child placed in
 * BACKING_DIR may name any file as its parent. 0, or -EACCES (-errno)
 * with the parent's path in @which.
 */
int vhdfs_image_parents_readable(struct vhdfs_image *img, char *which,
				 size_t len);
/*
 * Fingerprint of @img's chain for the page-cache decision (see cache.c):
 * 0 while the image is open for writing.
 */
uint64_t vhdfs_image_version(struct vhdfs_image *img);
/* Writers on the image at realpath @real (0 when not open for writing). */
int vhdfs_image_writers(const char *real);
/*
 * ownlock.c: a library message that @path is "open for writing by another
 * program" (VHD_MSG_WRITTEN_ELSEWHERE) says "through the mount" instead
 * while the holder may be our own write handle (@path has writers here).
 * @path: the backing path the library was given; NULL or "" is skipped.
 */
void vhdfs_own_writer_msg(char *msg, size_t len, const char *path);
/* Open handles (readers and writers) of the file at @path, by inode. */
int vhdfs_image_users(const char *path);
/*
 * Wait (at most 2 s, no lock held) until the file at @path has no open
 * writer (@writers) or no open handle at all. The kernel sends RELEASE
 * after close(2) has returned, so a command that follows a writer's close
 * would otherwise see it still open and fail with EBUSY. The caller then
 * checks again under vhdfs_topo_lock: this only spares a false EBUSY.
 */
void vhdfs_image_settle(const char *path, bool writers);
/*
 * Flush the open handle of the file at realpath @real (by inode), so its
 * file holds every acknowledged write, e.g. before a child is made of it.
 * Takes the images list lock, never across the flush. 0 or -errno.
 */
int vhdfs_image_sync(const char *real);
/* The image at @bpath was unlinked/renamed: forget cached state, and
 * the handle of inode @gone (NULL: keep) whose last name went. */
void vhdfs_image_forget(const char *bpath, const struct stat *gone);
void vhdfs_image_renamed(const char *from, const char *to);

/*
 * Virtual size and type of the image at @bpath whose lstat/stat is @st,
 * from an open handle or a cache keyed by inode and mtime.
 */
int vhdfs_image_meta(const char *bpath, const struct stat *st, uint64_t *vsize,
		     enum vhd_type *type);
/*
 * Find an image under BACKING_DIR whose parent is the file @st (stat of
 * it; identity is st_dev/st_ino, so hard links and symlinks to a parent
 * are the parent). Returns 1 and the child's backing path in @child when
 * one exists, 0 when none. The caller holds vhdfs_topo_lock.
 */
int vhdfs_find_child(const struct stat *st, char *child, size_t len);
/* Same for any image at or below directory realpath @dir. */
int vhdfs_find_child_under(const char *dir, char *parent, size_t plen,
			   char *child, size_t clen);
/*
 * Find an image under BACKING_DIR whose parent is one of the @n files
 * @ids and which is not itself one of the first @nskip of them (merge:
 * the merged levels, then the ancestor). Returns 1 with both backing
 * paths, 0 when none. The caller holds vhdfs_topo_lock.
 */
struct vhdfs_job_claim;
int vhdfs_find_dependent(const struct vhdfs_job_claim *ids, int n, int nskip,
			 char *child, size_t clen, char *parent, size_t plen);
void vhdfs_images_destroy(void);

/*
 * ctlparse.c: one .control command line, parsed (no FUSE, no file system).
 * vhdfs_ctl_parse splits @line in place: double quotes group, and inside
 * them \" and \\ escape. @tok (VHDFS_CTL_MAX_TOKENS + 1 entries) gets the
 * verb then its arguments, NULL-terminated; the implicit "CHILD PARENT"
 * becomes "diff CHILD PARENT". @canon gets the canonical command text
 * (tokens re-quoted where needed, so it parses back to the same tokens)
 * once the line tokenizes. Returns the token count; -EINVAL for an empty
 * or malformed line, an unknown verb or a wrong argument count, and
 * -EOPNOTSUPP for a verb not supported yet, with a reason in @msg.
 */
#define VHDFS_CTL_MAX_TOKENS 8
int vhdfs_ctl_parse(char *line, char **tok, char *canon, size_t clen, char *msg,
		    size_t mlen);

/* control.c: the .control file. */
struct vhdfs_control;
struct vhdfs_control *vhdfs_control_open(void);
void vhdfs_control_release(struct vhdfs_control *ctl);
/*
 * Runs every complete line of @buf (written at file offset @off) in order;
 * an unterminated tail is kept for the next write on this open, and a
 * request boundary never splits a command. A line holding a NUL byte, or
 * longer than 64 KiB (its rest is dropped up to the newline), fails with
 * EINVAL without stopping later lines. Each line's result is read back.
 * Returns @len, or the -errno of the first line that failed among those
 * completed by this request (the tail stays buffered even then).
 */
ssize_t vhdfs_control_write(struct vhdfs_control *ctl, const char *buf,
			    size_t len, off_t off);
/*
 * Runs a buffered unterminated line (close(2) of the writer: FLUSH, so
 * the command has finished and its -errno reaches close). 0 when none.
 */
int vhdfs_control_flush(struct vhdfs_control *ctl);
ssize_t vhdfs_control_read(struct vhdfs_control *ctl, char *buf, size_t len,
			   off_t off);
/* ReturnValue of the image-service method for an errno (0 = success). */
int vhdfs_return_value(int err);
void vhdfs_control_destroy(void);

/*
 * jobs.c: background jobs shown as .jobs/ID.
 *
 * A job kind is one row {verb, run} of the job_kinds[] table in jobs.c.
 * Adding one (e.g. compact):
 *   1. write `int vhdfs_run_compact(const struct vhdfs_job_args *args,
 *      vhd_progress_fn progress, void *pctx, char *msg, size_t msglen)`
 *      (declared here). It runs in a worker thread and passes
 *      @progress and @pctx to the library's long operation. It returns 0
 *      or -errno; on failure it may put a message naming file and defect
 *      into @msg, else the thread's vhd_errmsg() (or strerror) becomes
 *      the job's ErrorDescription. -ECANCELED means the job stopped on
 *      `cancel ID`.
 *   2. add {"compact", vhdfs_run_compact} to job_kinds[];
 *   3. in control.c, parse the command into a vhdfs_job_args, claim every
 *      image the job changes with vhdfs_job_claim() and call
 *      vhdfs_job_start() with vhdfs_topo_lock held across both.
 *
 * Progress: the callback sets PercentComplete (done/total, kept below 100
 * until the job completes) and returns non-zero once `cancel ID` was
 * asked, so the operation stops (JobState 4 -> 8). Its call with done ==
 * total is the point of no return: a cancel after it is refused (EPERM)
 * and the job completes. Errors end in JobState 10 with ErrorCode (a
 * ReturnValue) and ErrorDescription.
 *
 * Busy images: the images a job claimed are busy until the job has
 * finished (before its JobState leaves 4): opening one for writing
 * through the mount, and commands that would change, remove or depend on
 * it, fail with EBUSY (32774). Identity is the inode (st_dev, st_ino).
 *
 * Testing knob: VHDFS_JOB_THROTTLE_MS=N in the daemon's environment makes
 * every progress call sleep N ms, so tests can catch a job mid-way.
 */
#define VHDFS_JOB_MAX_CLAIMS (VHD_MAX_CHAIN_DEPTH + 1)
/* Job records kept (running and finished, until `rm .jobs/ID`). */
#define VHDFS_JOBS_MAX 4096
/*
 * Jobs running at once, each in a worker thread; later ones are queued
 * (JobState 4, PercentComplete 0) and start in order as workers free up.
 */
#define VHDFS_JOB_WORKERS 4

struct vhdfs_job_claim {
	dev_t dev;
	ino_t ino;
};

struct vhdfs_job_args {
	const char *verb;     /* a verb of job_kinds[] in jobs.c */
	char path[PATH_MAX];  /* first operand, resolved backing path */
	char path2[PATH_MAX]; /* second operand (ANCESTOR, DST) or "" */
	uint64_t size;	      /* a size operand (expand) */
	struct vhd_create_params params; /* create, convert */
	struct vhd_create_opts opts;	 /* owner of what is created */
	/* directory of a new image (or -1), owned and closed by the job */
	int dirfd;
	/* images the job changes (vhdfs_job_claim); busy while it runs */
	int nclaims;
	struct vhdfs_job_claim claims[VHDFS_JOB_MAX_CLAIMS];
};

typedef int (*vhdfs_job_run_fn)(const struct vhdfs_job_args *args,
				vhd_progress_fn progress, void *pctx, char *msg,
				size_t msglen);

/*
 * Add the image at @path to the images @args changes. -EBUSY when a job is
 * changing it or it is open for writing through the mount, -ENOENT when
 * it does not exist, -E2BIG past VHDFS_JOB_MAX_CLAIMS; @msg says which.
 * The caller holds vhdfs_topo_lock until vhdfs_job_start(), so no writer
 * can open the image in between.
 */
int vhdfs_job_claim(struct vhdfs_job_args *args, const char *path, char *msg,
		    size_t msglen);
/*
 * Start a job; @command is the canonical command text. The job's claims
 * become busy at once. -EINVAL for an unknown verb, -EBUSY when a claim
 * was taken by another job meanwhile, -EAGAIN when VHDFS_JOBS_MAX records
 * are kept. The job owns args->dirfd (when not
 * -1) from here on, whether it starts or not.
 */
int vhdfs_job_start(const struct vhdfs_job_args *args, const char *command,
		    unsigned long *id);
/* True while a running job has claimed the file at @path (stat). */
bool vhdfs_job_busy(const char *path);
/* Ask a job to stop: -ENOENT no such job, -EPERM finished or finishing. */
int vhdfs_job_cancel(unsigned long id);
/* Render .jobs/ID into a malloc'ed string. */
int vhdfs_job_render(unsigned long id, char **text, size_t *len);
int vhdfs_job_remove(unsigned long id);
/* Calls @fn for each job id, oldest first. */
void vhdfs_job_foreach(void (*fn)(void *ctx, unsigned long id), void *ctx);
/* Cancel every job and wait for the workers to finish. */
void vhdfs_jobs_destroy(void);

/* job_image.c: run functions of the image-operation jobs. */
int vhdfs_run_merge(const struct vhdfs_job_args *args, vhd_progress_fn progress,
		    void *pctx, char *msg, size_t msglen);
int vhdfs_run_convert(const struct vhdfs_job_args *args,
		      vhd_progress_fn progress, void *pctx, char *msg,
		      size_t msglen);

/*
 * job_ops.c: compact and expand jobs. While one runs its image (and a
 * merge's ancestor) refuses every open through the mount (blocks move or
 * fill: an older handle would read their old place);
 * vhdfs_image_exclusive() says so, with vhdfs_topo_lock held. The job
 * starts only when no handle of the image is open.
 */
int vhdfs_run_compact(const struct vhdfs_job_args *args,
		      vhd_progress_fn progress, void *pctx, char *msg,
		      size_t msglen);
int vhdfs_run_expand(const struct vhdfs_job_args *args,
		     vhd_progress_fn progress, void *pctx, char *msg,
		     size_t msglen);
bool vhdfs_image_exclusive(const char *bpath);
/*
 * Hold the image at @path exclusively for a job (compact, expand, a
 * merge's ancestor): -EBUSY (and @msg) when it is open through the mount,
 * once a release in flight had its time. @id gets its identity for
 * vhdfs_exclusive_end(), which also forgets its handles and metadata.
 */
int vhdfs_exclusive_begin(const char *path, struct vhdfs_job_claim *id,
			  char *msg, size_t msglen);
void vhdfs_exclusive_end(const char *path, const struct vhdfs_job_claim *id);

/*
 * cache.c: whether an open of the image at FUSE @path whose chain has
 * fingerprint @version may keep the kernel's cached pages (the previous
 * open saw the same version); records @version for the next open.
 */
bool vhdfs_cache_keep(const char *path, uint64_t version);
/*
 * The daemon changes (or is about to let a writer change) an image: the
 * next open of every image drops its cache. Call it after the change is
 * complete (a write open: at the open; writers keep the version at 0).
 */
void vhdfs_cache_changed(void);

/* xattr.c */
int vhdfs_getxattr(const char *bpath, const char *name, char *value,
		   size_t size);
int vhdfs_listxattr(const char *bpath, char *list, size_t size);

/* ops.c */
struct fuse_operations;
extern const struct fuse_operations vhdfs_ops;

#endif
