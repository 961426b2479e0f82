/* SPDX-License-Identifier: MIT */
/*
 * vhdfs daemon internals shared between the fuse/ files. The daemon only
 * translates between FUSE requests and the libvhd API (vhd.h); it never
 * parses the VHD format itself.
 *
 * Lock order (outermost first): vhdfs_topo_lock (images.c) -> the images
 * list lock -> one image's I/O rwlock; an open .control's lock -> the
 * result ring lock. The metadata cache lock, the job table lock and the
 * ring lock are leaves: nothing else is taken while holding them.
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
	char mountpoint[PATH_MAX]; /* realpath of MOUNTPOINT, before mount */
	size_t mountpoint_len;
	bool ro;     /* -o ro: refuse every modification */
	bool syslog; /* daemonized: log to syslog, not stderr */
	uid_t uid;   /* mount owner: may use .control */
	gid_t gid;
};

extern struct vhdfs_config vhdfs_cfg;

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
/* True for a name ending in ".vhd" (any case). */
bool vhdfs_is_vhd_name(const char *name);
/*
 * Resolve a control-file path for an image to be created: it must end up
 * inside BACKING_DIR (-EACCES otherwise), its directory must exist
 * (-ENOENT), its name must end in .vhd (-EINVAL) and nothing may exist
 * there yet (-EEXIST). @msg receives a reason on failure.
 */
int vhdfs_resolve_new(const char *arg, char *out, size_t len, char *msg,
		      size_t msglen);
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
/* True when realpath @real is BACKING_DIR or below it. */
bool vhdfs_is_inside(const char *real);

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
ssize_t vhdfs_image_pwrite(struct vhdfs_image *img, const void *buf, size_t len,
			   uint64_t off);
int vhdfs_image_flush(struct vhdfs_image *img);
int64_t vhdfs_image_seek(struct vhdfs_image *img, uint64_t off, bool data);
/* Writers on the image at realpath @real (0 when not open for writing). */
int vhdfs_image_writers(const char *real);
/*
 * Flush every open handle of the file at realpath @real (by inode), so its
 * file holds every acknowledged write, e.g. before a child is made of it.
 * Takes the images list lock, never across the flush. 0 or -errno.
 */
int vhdfs_image_sync(const char *real);
/* The image at @bpath was unlinked/renamed: forget cached state. */
void vhdfs_image_forget(const char *bpath);
void vhdfs_image_renamed(const char *from, const char *to);

/*
 * Virtual size and type of the image at @bpath whose lstat/stat is @st,
 * from an open handle or a cache keyed by inode and mtime.
 */
int vhdfs_image_meta(const char *bpath, const struct stat *st, uint64_t *vsize,
		     enum vhd_type *type);
/*
 * Find an image under BACKING_DIR whose parent is the file at realpath
 * @real. Returns 1 and the child's backing path in @child when one exists,
 * 0 when none. The caller holds vhdfs_topo_lock.
 */
int vhdfs_find_child(const char *real, char *child, size_t len);
/* Same for any image at or below directory realpath @dir. */
int vhdfs_find_child_under(const char *dir, char *parent, size_t plen,
			   char *child, size_t clen);
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
/*
 * Copy @s into @out (@len bytes, NUL-terminated, truncated) for use
 * between double quotes: " and \ backslash-escaped, newlines as blanks.
 */
void vhdfs_ctl_escape(char *out, size_t len, const char *s);

/* control.c: the .control file. */
struct vhdfs_control;
struct vhdfs_control *vhdfs_control_open(void);
void vhdfs_control_release(struct vhdfs_control *ctl);
/*
 * Runs every line of @buf (written at file offset @off); returns @len, or
 * -errno of the first failure.
 */
ssize_t vhdfs_control_write(struct vhdfs_control *ctl, const char *buf,
			    size_t len, off_t off);
ssize_t vhdfs_control_read(struct vhdfs_control *ctl, char *buf, size_t len,
			   off_t off);
/* ReturnValue of the image-service method for an errno (0 = success). */
int vhdfs_return_value(int err);
void vhdfs_control_destroy(void);

/* jobs.c: background jobs shown as .jobs/ID. */
enum vhdfs_job_kind {
	VHDFS_JOB_CREATE, /* create a fixed image */
	VHDFS_JOB_VALIDATE,
};
struct vhdfs_job_args {
	enum vhdfs_job_kind kind;
	char path[PATH_MAX]; /* image to create or validate */
	struct vhd_create_params params;
};
/* Start a job; @command is the canonical command text. */
int vhdfs_job_start(const struct vhdfs_job_args *args, const char *command,
		    unsigned long *id);
int vhdfs_job_cancel(unsigned long id);
/* Render .jobs/ID into a malloc'ed string. */
int vhdfs_job_render(unsigned long id, char **text, size_t *len);
int vhdfs_job_remove(unsigned long id);
/* Calls @fn for each job id, oldest first. */
void vhdfs_job_foreach(void (*fn)(void *ctx, unsigned long id), void *ctx);
/* Cancel every job and wait for the workers to finish. */
void vhdfs_jobs_destroy(void);

/* xattr.c */
int vhdfs_getxattr(const char *bpath, const char *name, char *value,
		   size_t size);
int vhdfs_listxattr(const char *bpath, char *list, size_t size);

/* ops.c */
struct fuse_operations;
extern const struct fuse_operations vhdfs_ops;

#endif
