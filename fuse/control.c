// SPDX-License-Identifier: MIT
/*
 * The .control file: each line written is one command, mirroring the
 * Hyper-V image service methods. Results are kept per open file and in a
 * bounded global ring, and read back as
 *   ReturnValue=N [Job=.jobs/ID] [Error="..."] Command="..."
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vhdfs.h"

#define RING_MAX 64  /* results a fresh open reads */
#define OWN_MAX 1024 /* results kept per open file */
/* ... and their bytes: a result line can take 33 KiB (escaped paths). */
#define OWN_BYTES (1u << 20)
#define MSG_MAX 1024
/* Longest command line: far above two paths and the options. */
#define LINE_MAX_CTL (64u << 10)

/*
 * Reads are positioned relative to an origin: the file offset just after
 * the last write through the same open (the offset has moved past the
 * bytes written), or 0 once the reader seeks back to the start.
 */
struct vhdfs_control {
	pthread_mutex_t lock;
	char *lines[OWN_MAX]; /* protected by lock; oldest first */
	unsigned n;
	size_t bytes; /* of lines[]; protected by lock */
	off_t origin; /* offset of the first result; protected by lock */
	char *snap;   /* ring text while nothing was written; under lock */
	size_t snap_len;
	/* Writes run one at a time per open: lines stay in order. */
	pthread_mutex_t wlock;
	char *part; /* unterminated line so far; protected by wlock */
	size_t part_len, part_cap;
	bool skip; /* dropping an overlong line up to its newline; wlock */
};

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static char *ring[RING_MAX]; /* protected by ring_lock; oldest first */
static unsigned ring_n;

int vhdfs_return_value(int err)
{
	switch (err) {
	case 0:
		return 0;
	case EACCES:
		return 32769;
	case EOPNOTSUPP:
		return 32770;
	case EINVAL:
	case EEXIST:
	case ENAMETOOLONG: /* a name no file can have: invalid parameter */
		return 32773;
	case EBUSY:
		return 32774;
	case EPERM:
		return 32775;
	case ENOENT:
		return 32779;
	default:
		return 32768;
	}
}

/*
 * What write(2) on .control returns for a failed command: the errno of its
 * ReturnValue in the table, so 32768 (Failed) is EIO; the Error text keeps
 * the cause (e.g. "No space left on device").
 */
static int write_errno(int err)
{
	return vhdfs_return_value(err) == 32768 && err != EROFS ? EIO : err;
}

/* Append @line to a bounded array, dropping the oldest when full. */
static void push(char **arr, unsigned *n, unsigned max, char *line)
{
	if (*n == max) {
		free(arr[0]);
		memmove(arr, arr + 1, (max - 1) * sizeof(*arr));
		(*n)--;
	}
	arr[(*n)++] = line;
}

struct result {
	int err;	   /* positive errno, 0 on success */
	unsigned long job; /* job started, or 0 */
	char msg[MSG_MAX]; /* Error= text */
	char cmd[PATH_MAX * 2 + 64];
	size_t cmd_len; /* bytes of cmd shown; 0: strlen(cmd) */
};

static int fail(struct result *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct result *r, int err, const char *fmt, ...)
{
	va_list ap;

	if (!r->msg[0]) {
		va_start(ap, fmt);
		vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Failure of a library call: its message, else the errno text. */
static int lib_fail(struct result *r, int ret)
{
	const char *m = vhd_errmsg();

	fail(r, ret, "%s", m && *m ? m : strerror(-ret));
	vhdfs_unfd(r->msg, sizeof(r->msg));
	return ret;
}

/*
 * The child adds a level: refuse when the parent's chain is already as
 * deep as vhd_open() follows, or the child could never be opened.
 */
static int chain_room(const char *ppath, const char *parent, struct result *r)
{
	struct vhd_disk *disk, *d;
	int depth = 0, ret;

	ret = vhd_open(ppath, VHD_OPEN_RDONLY, &disk);
	if (ret)
		return lib_fail(r, ret);
	for (d = disk; d; d = vhd_parent(d))
		depth++;
	vhd_close(disk);
	if (depth >= VHD_MAX_CHAIN_DEPTH)
		return fail(
			r, -ELOOP,
			"chain too deep: %s already has %d levels (limit %d)",
			parent, depth, VHD_MAX_CHAIN_DEPTH);
	return 0;
}

static int diff_in(const char *cpath, const char *parent, struct result *r);
/* Start the job @a describes for this command; r->job gets its id. */
static int start_job(const struct vhdfs_job_args *a, struct result *r)
{
	int ret = vhdfs_job_start(a, r->cmd, &r->job);

	/* The table is full until finished jobs are removed: in use. */
	if (ret == -EAGAIN)
		return fail(r, -EBUSY,
			    "too many jobs (%d kept): remove finished ones "
			    "with rm .jobs/ID",
			    VHDFS_JOBS_MAX);
	return ret ? fail(r, ret, "cannot start job: %s", strerror(-ret)) : 0;
}

static int cmd_diff(const char *child, const char *parent, struct result *r)
{
	char cpath[PATH_MAX];
	int ret, dirfd;

	if (vhdfs_cfg.ro)
		return fail(r, -EROFS, "read-only mount");
	ret = vhdfs_resolve_new(child, cpath, sizeof(cpath), &dirfd, r->msg,
				sizeof(r->msg));
	if (ret)
		return ret;
	ret = diff_in(cpath, parent, r);
	close(dirfd);
	return ret;
}

static int diff_in(const char *cpath, const char *parent, struct result *r)
{
	char ppath[PATH_MAX];
	int ret;

	ret = vhdfs_resolve_existing(parent, ppath, sizeof(ppath), r->msg,
				     sizeof(r->msg));
	if (ret == -ENOENT) {
		r->msg[0] = '\0';
		return fail(r, ret, "parent not found: %s", parent);
	}
	if (ret)
		return ret;

	ret = chain_room(ppath, parent, r);
	if (ret)
		return ret;
	vhdfs_image_settle(ppath, true);
	pthread_mutex_lock(&vhdfs_topo_lock);
	/*
	 * A writer may still change the parent under its new child: refuse,
	 * as Hyper-V does. The last writer's close flushed the handle the
	 * readers keep; should that flush have failed, the metadata is still
	 * in memory: flush it now, or the child would miss that data.
	 */
	if (vhdfs_image_writers(ppath) > 0) {
		ret = fail(r, -EBUSY, "parent is open for writing: %s", parent);
	} else if (vhdfs_job_busy(ppath)) {
		ret = fail(r, -EBUSY, "parent is in use by a job: %s", parent);
	} else if ((ret = vhdfs_image_sync(ppath)) != 0) {
		fail(r, ret, "cannot flush parent %s: %s", parent,
		     strerror(-ret));
	} else {
		struct vhd_create_opts opts;

		vhdfs_caller_create_opts(&opts);
		ret = vhd_create_diff_ex(cpath, ppath, &opts);
		if (ret) {
			lib_fail(r, ret);
			vhdfs_own_writer_msg(r->msg, sizeof(r->msg), ppath);
		}
	}
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

static int cmd_create(char **tok, int n, struct result *r)
{
	struct vhdfs_job_args args = {.verb = "create", .dirfd = -1};
	uint64_t size, block = 0;
	enum vhd_format fmt;
	bool fixed = false, have_type = false;
	int ret;

	if (vhdfs_cfg.ro)
		return fail(r, -EROFS, "read-only mount");
	if (vhd_parse_size(tok[2], &size) || size == 0)
		return fail(r, -EINVAL, "bad size: %s", tok[2]);
	fmt = vhd_format_for_name(tok[1]); /* what vhd_create will make */
	if (size > vhd_max_size(fmt))
		return fail(r, -EINVAL, "size too large: %s (limit %s)", tok[2],
			    fmt == VHD_FORMAT_VHDX ? "64T" : "2040G");
	for (int i = 3; i < n; i++) {
		if (!have_type && strcasecmp(tok[i], "fixed") == 0) {
			fixed = true;
			have_type = true;
		} else if (!have_type && strcasecmp(tok[i], "dynamic") == 0) {
			have_type = true;
		} else if (!block && strncasecmp(tok[i], "block=", 6) == 0) {
			if (vhd_parse_size(tok[i] + 6, &block) || !block ||
			    block > UINT32_MAX)
				return fail(r, -EINVAL, "bad block size: %s",
					    tok[i] + 6);
		} else {
			return fail(r, -EINVAL, "unexpected argument: %s",
				    tok[i]);
		}
	}
	if (fixed && block)
		return fail(r, -EINVAL, "a fixed image has no block size");
	ret = vhdfs_resolve_new(tok[1], args.path, sizeof(args.path),
				&args.dirfd, r->msg, sizeof(r->msg));
	if (ret)
		return ret;
	args.params.type = fixed ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
	args.params.size = size;
	args.params.block_size = (uint32_t)block;
	vhdfs_caller_create_opts(&args.opts);
	if (fixed) {
		/* Writing every byte of a fixed image takes time: a job. */
		return start_job(&args, r);
	}
	ret = vhd_create_ex(args.path, &args.params, &args.opts);
	/* Before the close: the message names the file through dirfd. */
	if (ret)
		lib_fail(r, ret);
	close(args.dirfd);
	return ret;
}

static int cmd_validate(const char *path, struct result *r)
{
	struct vhdfs_job_args args = {.verb = "validate", .dirfd = -1};
	int ret;

	/* Only our own images: a job's result is readable by every user. */
	ret = vhdfs_resolve_inside(path, args.path, sizeof(args.path), r->msg,
				   sizeof(r->msg));
	if (ret)
		return ret;
	/*
	 * A job running on the image is "in use" (32774), as for the other
	 * commands: a check now would only find that job's lock. A damaged
	 * image is what validation is for: the job reports it.
	 */
	pthread_mutex_lock(&vhdfs_topo_lock);
	if (vhdfs_job_busy(args.path))
		ret = fail(r, -EBUSY, "%s is in use by a job", path);
	else
		ret = start_job(&args, r);
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

/* Path of an argument inside BACKING_DIR as given (it may not exist). */
static int backing_candidate(const char *arg, char *out, size_t len)
{
	int n = arg[0] == '/'
			? snprintf(out, len, "%s", arg)
			: snprintf(out, len, "%s/%s", vhdfs_cfg.backing, arg);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * The levels a merge removes (child first) and then the ancestor, claimed
 * for the job: all inside BACKING_DIR. @apath gets the ancestor's
 * realpath (the child's parent when @ancestor is NULL).
 */
static int merge_levels(struct vhdfs_job_args *a, const char *child,
			const char *ancestor, char *apath, struct result *r)
{
	char cur[PATH_MAX], found[PATH_MAX], real[PATH_MAX];
	struct stat want, st;
	int ret;

	if (ancestor && vhdfs_stat(apath, &want))
		return fail(r, -ENOENT, "ancestor not found: %s", ancestor);
	snprintf(cur, sizeof(cur), "%s", a->path);
	for (int depth = 0;; depth++) {
		struct vhd_disk *d;

		if (depth >= VHD_MAX_CHAIN_DEPTH)
			return fail(r, -ELOOP, "chain of %s too deep", child);
		ret = vhdfs_job_claim(a, cur, r->msg, sizeof(r->msg));
		if (ret)
			return ret;
		ret = vhd_open(cur, VHD_OPEN_NOPARENT, &d);
		if (ret)
			return lib_fail(r, ret);
		if (vhd_type(d) != VHD_TYPE_DIFF) {
			vhd_close(d);
			if (depth == 0)
				return fail(r, -EINVAL,
					    "not a differencing disk: %s",
					    child);
			return fail(r, -EINVAL, "%s is not an ancestor of %s",
				    ancestor, child);
		}
		ret = vhd_find_parent(d, found, sizeof(found));
		if (ret)
			lib_fail(r, ret); /* before close clears the message */
		vhd_close(d);
		if (ret)
			return ret;
		if (vhd_realpath(found, real, sizeof(real)) ||
		    vhdfs_stat(real, &st))
			return fail(r, -ENOENT, "parent not found: %s", found);
		if (!vhdfs_is_inside(real))
			return fail(r, -EACCES,
				    "%s: outside the backing directory, the "
				    "merge would change it",
				    found);
		if (!ancestor ||
		    (st.st_dev == want.st_dev && st.st_ino == want.st_ino)) {
			snprintf(apath, PATH_MAX, "%s", real);
			break;
		}
		snprintf(cur, sizeof(cur), "%s", real);
	}
	return vhdfs_job_claim(a, apath, r->msg, sizeof(r->msg));
}

static int cmd_merge(char **tok, int n, struct result *r)
{
	struct vhdfs_job_args args = {.verb = "merge", .dirfd = -1};
	char child[PATH_MAX], parent[PATH_MAX];
	int ret;

	if (vhdfs_cfg.ro)
		return fail(r, -EROFS, "read-only mount");
	ret = vhdfs_resolve_inside(tok[1], args.path, sizeof(args.path), r->msg,
				   sizeof(r->msg));
	if (ret == -ENOENT &&
	    backing_candidate(tok[1], args.path, sizeof(args.path)) == 0 &&
	    vhd_merge_pending(args.path) == 1) {
		/* Only the journalled removal is left to do. */
		r->msg[0] = '\0';
		return start_job(&args, r);
	}
	if (ret)
		return ret;
	if (n > 2) {
		ret = vhdfs_resolve_inside(tok[2], args.path2,
					   sizeof(args.path2), r->msg,
					   sizeof(r->msg));
		if (ret)
			return ret;
	}
	vhdfs_image_settle(args.path, true);
	pthread_mutex_lock(&vhdfs_topo_lock);
	ret = merge_levels(&args, tok[1], n > 2 ? tok[2] : NULL, args.path2, r);
	if (!ret && vhdfs_find_dependent(args.claims, args.nclaims,
					 args.nclaims - 1, child, sizeof(child),
					 parent, sizeof(parent)) > 0)
		ret = fail(r, -EPERM, "%s depends on %s, which the merge %s",
			   child + vhdfs_cfg.backing_len + 1,
			   parent + vhdfs_cfg.backing_len + 1,
			   strcmp(parent, args.path2) == 0 ? "changes"
							   : "removes");
	if (!ret)
		ret = start_job(&args, r);
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

static int cmd_convert(char **tok, int n, struct result *r)
{
	struct vhdfs_job_args args = {.verb = "convert", .dirfd = -1};
	uint64_t block = 0;
	int ret;

	if (vhdfs_cfg.ro)
		return fail(r, -EROFS, "read-only mount");
	if (strcasecmp(tok[3], "fixed") == 0)
		args.params.type = VHD_TYPE_FIXED;
	else if (strcasecmp(tok[3], "dynamic") == 0)
		args.params.type = VHD_TYPE_DYNAMIC;
	else
		return fail(r, -EINVAL, "type must be fixed or dynamic: %s",
			    tok[3]);
	if (n > 4) {
		if (strncasecmp(tok[4], "block=", 6) != 0)
			return fail(r, -EINVAL, "unexpected argument: %s",
				    tok[4]);
		if (vhd_parse_size(tok[4] + 6, &block) || !block ||
		    block > UINT32_MAX)
			return fail(r, -EINVAL, "bad block size: %s",
				    tok[4] + 6);
		if (args.params.type == VHD_TYPE_FIXED)
			return fail(r, -EINVAL,
				    "a fixed image has no block size");
		args.params.block_size = (uint32_t)block;
	}
	ret = vhdfs_resolve_existing(tok[1], args.path, sizeof(args.path),
				     r->msg, sizeof(r->msg));
	if (ret)
		return ret;
	ret = vhdfs_resolve_new(tok[2], args.path2, sizeof(args.path2),
				&args.dirfd, r->msg, sizeof(r->msg));
	if (ret)
		return ret;
	vhdfs_caller_create_opts(&args.opts);
	pthread_mutex_lock(&vhdfs_topo_lock);
	/* The source must not change while it is read. */
	ret = vhdfs_job_claim(&args, args.path, r->msg, sizeof(r->msg));
	if (!ret)
		ret = start_job(&args, r); /* owns args.dirfd */
	else
		close(args.dirfd);
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

/* What the job would refuse at once, answered now rather than as a job. */
static int resize_precheck(const char *verb, const char *arg,
			   const struct vhdfs_job_args *a, struct result *r)
{
	bool expand = strcmp(verb, "expand") == 0;
	struct vhd_info info;
	struct vhd_disk *d;
	enum vhd_type type;
	uint64_t size;
	int ret;

	ret = vhd_open(a->path, VHD_OPEN_RDONLY | VHD_OPEN_NOPARENT, &d);
	if (ret)
		return lib_fail(r, ret);
	ret = vhd_get_info(d, &info);
	if (ret)
		lib_fail(r, ret); /* before close clears the message */
	type = vhd_type(d);
	size = vhd_size(d);
	vhd_close(d);
	if (ret)
		return ret;
	if (!expand && type == VHD_TYPE_FIXED)
		return fail(r, -EOPNOTSUPP,
			    "%s: a fixed disk cannot be compacted", arg);
	if (expand && type == VHD_TYPE_DIFF)
		return fail(r, -EOPNOTSUPP,
			    "%s: a differencing disk cannot be expanded", arg);
	if (expand && a->size > vhd_max_size(info.format))
		return info.format == VHD_FORMAT_VHD
			       ? fail(r, -EINVAL,
				      "%s: %" PRIu64 " bytes is larger than a "
				      "VHD can be (2040G)",
				      arg, a->size)
			       : fail(r, -EINVAL,
				      "%s: size too large: %" PRIu64
				      " bytes (limit 64T)",
				      arg, a->size);
	if (expand && a->size < size)
		return fail(r, -EINVAL,
			    "%s: %" PRIu64 " bytes is smaller than the disk "
			    "(%" PRIu64 " bytes); disks cannot shrink",
			    arg, a->size, size);
	return 0;
}

/*
 * compact PATH, expand PATH SIZE: jobs on an image inside BACKING_DIR that
 * is no other image's parent (expanding a parent changes its children's
 * view; compacting one rewrites a file that must not change).
 */
static int cmd_resize(const char *verb, char **tok, int n, struct result *r)
{
	/* @verb is static: the job outlives the command line. */
	struct vhdfs_job_args args = {.verb = verb, .dirfd = -1};
	char child[PATH_MAX];
	struct stat st;
	int ret;

	if (vhdfs_cfg.ro)
		return fail(r, -EROFS, "read-only mount");
	/* The limit of the image's format: resize_precheck's. */
	if (n > 2 && (vhd_parse_size(tok[2], &args.size) || !args.size))
		return fail(r, -EINVAL, "bad size: %s", tok[2]);
	ret = vhdfs_resolve_inside(tok[1], args.path, sizeof(args.path), r->msg,
				   sizeof(r->msg));
	if (ret)
		return ret;
	ret = resize_precheck(verb, tok[1], &args, r);
	if (ret)
		return ret;
	ret = vhdfs_stat(args.path, &st);
	if (ret)
		return fail(r, ret, "%s: %s", tok[1], strerror(-ret));
	vhdfs_image_settle(args.path, false);
	pthread_mutex_lock(&vhdfs_topo_lock);
	if (vhdfs_find_child(&st, child, sizeof(child)) > 0)
		ret = fail(r, -EPERM, "%s is the parent of %s", tok[1],
			   child + vhdfs_cfg.backing_len + 1);
	else if (vhdfs_image_users(args.path) > 0)
		ret = fail(r, -EBUSY, "%s is open through the mount", tok[1]);
	else
		ret = vhdfs_job_claim(&args, args.path, r->msg, sizeof(r->msg));
	if (!ret)
		ret = start_job(&args, r);
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

/* reparent CHILD PARENT [ignore-id-mismatch]: immediate. */
static int cmd_reparent(char **tok, int n, struct result *r)
{
	char child[PATH_MAX], parent[PATH_MAX];
	unsigned flags = 0;
	int ret;

	if (vhdfs_cfg.ro)
		return fail(r, -EROFS, "read-only mount");
	if (n > 3) {
		if (strcasecmp(tok[3], "ignore-id-mismatch") != 0)
			return fail(r, -EINVAL, "unexpected argument: %s",
				    tok[3]);
		flags |= VHD_REPARENT_IGNORE_ID;
	}
	ret = vhdfs_resolve_inside(tok[1], child, sizeof(child), r->msg,
				   sizeof(r->msg));
	if (ret)
		return ret;
	ret = vhdfs_resolve_existing(tok[2], parent, sizeof(parent), r->msg,
				     sizeof(r->msg));
	if (ret)
		return ret;
	/*
	 * Readers too: an open handle (shared by every later open while it
	 * lives) and its cached pages keep reading the old parent.
	 */
	vhdfs_image_settle(child, false);
	pthread_mutex_lock(&vhdfs_topo_lock);
	if (vhdfs_job_busy(child) || vhdfs_image_exclusive(child))
		ret = fail(r, -EBUSY, "%s is in use by a job", tok[1]);
	else if (vhdfs_image_writers(child) > 0)
		ret = fail(r, -EBUSY, "%s is open for writing", tok[1]);
	else if (vhdfs_image_users(child) > 0)
		ret = fail(r, -EBUSY, "%s is open through the mount", tok[1]);
	else if (vhdfs_job_busy(parent) || vhdfs_image_exclusive(parent))
		ret = fail(r, -EBUSY, "parent is in use by a job: %s", tok[2]);
	else if (vhdfs_image_writers(parent) > 0)
		ret = fail(r, -EBUSY, "parent is open for writing: %s", tok[2]);
	else if ((ret = vhd_reparent(child, parent, flags)) != 0) {
		lib_fail(r, ret);
		vhdfs_own_writer_msg(r->msg, sizeof(r->msg), child);
		vhdfs_own_writer_msg(r->msg, sizeof(r->msg), parent);
		/* A parent that would close a cycle (or chain too deep) is
		 * a bad parameter, not a failure: 32773. */
		if (ret == -ELOOP)
			ret = -EINVAL;
	} else
		vhdfs_image_forget(child, NULL); /* cached chain metadata */
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

static int cmd_cancel(const char *arg, struct result *r)
{
	unsigned long id;
	char *end;
	int ret;

	errno = 0;
	id = strtoul(arg, &end, 10);
	if (errno || *end || !isdigit((unsigned char)*arg) || !id)
		return fail(r, -EINVAL, "bad job id: %s", arg);
	ret = vhdfs_job_cancel(id);
	if (ret == -ENOENT)
		return fail(r, ret, "no such job: %s", arg);
	if (ret == -EPERM)
		return fail(r, ret, "job %s is not running", arg);
	return ret;
}

/* Run one command line; fills @r (r->cmd is the canonical command). */
static int run(char *line, struct result *r)
{
	char *tok[VHDFS_CTL_MAX_TOKENS + 1] = {0};
	int n = vhdfs_ctl_parse(line, tok, r->cmd, sizeof(r->cmd), r->msg,
				sizeof(r->msg));

	if (n < 0)
		return n;
	if (strcmp(tok[0], "diff") == 0)
		return cmd_diff(tok[1], tok[2], r);
	if (strcmp(tok[0], "create") == 0)
		return cmd_create(tok, n, r);
	if (strcmp(tok[0], "validate") == 0)
		return cmd_validate(tok[1], r);
	if (strcmp(tok[0], "merge") == 0)
		return cmd_merge(tok, n, r);
	if (strcmp(tok[0], "convert") == 0)
		return cmd_convert(tok, n, r);
	if (strcmp(tok[0], "compact") == 0 || strcmp(tok[0], "expand") == 0)
		return cmd_resize(tok[0], tok, n, r); /* tok[0] is static */
	if (strcmp(tok[0], "reparent") == 0)
		return cmd_reparent(tok, n, r);
	return cmd_cancel(tok[1], r);
}

static char *format_result(const struct result *r)
{
	char cmd[sizeof(r->cmd) * 4], msg[MSG_MAX * 4], job[64] = "";
	char err[sizeof(msg) + 16] = "";
	char *out;

	vhdfs_escape(cmd, sizeof(cmd), r->cmd,
		     r->cmd_len ? r->cmd_len : strlen(r->cmd), true);
	if (r->job)
		snprintf(job, sizeof(job), "Job=%s/%lu ", VHDFS_JOBS_NAME,
			 r->job);
	if (r->err) {
		const char *m = r->msg[0] ? r->msg : strerror(r->err);

		vhdfs_escape(msg, sizeof(msg), m, strlen(m), true);
		snprintf(err, sizeof(err), "Error=\"%s\" ", msg);
	}
	if (asprintf(&out, "ReturnValue=%d %s%sCommand=\"%s\"\n",
		     r->job && !r->err ? 4096 : vhdfs_return_value(r->err), job,
		     err, cmd) < 0)
		return NULL;
	return out;
}

struct vhdfs_control *vhdfs_control_open(void)
{
	struct vhdfs_control *ctl = calloc(1, sizeof(*ctl));

	if (ctl) {
		pthread_mutex_init(&ctl->lock, NULL);
		pthread_mutex_init(&ctl->wlock, NULL);
	}
	return ctl;
}

void vhdfs_control_release(struct vhdfs_control *ctl)
{
	for (unsigned i = 0; i < ctl->n; i++)
		free(ctl->lines[i]);
	free(ctl->snap);
	free(ctl->part);
	pthread_mutex_destroy(&ctl->wlock);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
}

/* Append to @ctl's results, dropping the oldest past either bound. */
static void own_push(struct vhdfs_control *ctl, char *line)
{
	ctl->bytes += strlen(line);
	while (ctl->n && (ctl->n == OWN_MAX || ctl->bytes > OWN_BYTES)) {
		ctl->bytes -= strlen(ctl->lines[0]);
		free(ctl->lines[0]);
		memmove(ctl->lines, ctl->lines + 1,
			(ctl->n - 1) * sizeof(*ctl->lines));
		ctl->n--;
	}
	ctl->lines[ctl->n++] = line;
}

/* Keep the result of one line for reads through @ctl and fresh opens. */
static int record(struct vhdfs_control *ctl, const struct result *r)
{
	char *s, *s2;

	s = format_result(r);
	if (r->err && s) {
		/* The log gets the start of a long line, not 33 KiB each. */
		size_t n = strcspn(s, "\n");

		vhdfs_log("control: %.*s%s", (int)(n > 1024 ? 1024 : n), s,
			  n > 1024 ? "..." : "");
	}
	s2 = s ? strdup(s) : NULL;
	if (!s || !s2) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_lock(&ctl->lock);
	own_push(ctl, s);
	pthread_mutex_unlock(&ctl->lock);
	pthread_mutex_lock(&ring_lock);
	push(ring, &ring_n, RING_MAX, s2);
	pthread_mutex_unlock(&ring_lock);
	return 0;
}

/* Show the first bytes of a line that cannot run, as written. */
static void raw_cmd(struct result *r, const char *line, size_t len)
{
	r->cmd_len = len < sizeof(r->cmd) - 1 ? len : sizeof(r->cmd) - 1;
	memcpy(r->cmd, line, r->cmd_len);
	r->cmd[r->cmd_len] = '\0';
}

/* Run one complete line (@len bytes, no newline); -errno when it failed. */
static int run_line(struct vhdfs_control *ctl, const char *line, size_t len)
{
	struct result *r;
	char *text;
	int ret;

	while (len && isspace((unsigned char)line[len - 1]))
		len--;
	while (len && isspace((unsigned char)*line))
		line++, len--;
	if (!len || *line == '#')
		return 0;
	r = calloc(1, sizeof(*r));
	text = malloc(len + 1);
	if (!r || !text) {
		free(r);
		free(text);
		return -ENOMEM;
	}
	if (memchr(line, '\0', len)) {
		/* A NUL would cut the line short: refuse it, not a prefix. */
		raw_cmd(r, line, len);
		r->err = -fail(r, -EINVAL, "NUL byte in command line");
	} else {
		memcpy(text, line, len);
		text[len] = '\0';
		snprintf(r->cmd, sizeof(r->cmd), "%s", text);
		r->err = -run(text, r);
	}
	ret = record(ctl, r);
	if (r->err)
		ret = -write_errno(r->err);
	free(text);
	free(r);
	return ret;
}

/* A line grew past LINE_MAX_CTL: report it once; the rest is dropped. */
static int overlong(struct vhdfs_control *ctl, const char *more, size_t n)
{
	struct result *r = calloc(1, sizeof(*r));
	char head[64];
	size_t h = ctl->part_len < sizeof(head) ? ctl->part_len : sizeof(head);
	int ret;

	if (!r)
		return -ENOMEM;
	memcpy(head, ctl->part, h);
	if (h < sizeof(head)) {
		size_t m = n < sizeof(head) - h ? n : sizeof(head) - h;

		memcpy(head + h, more, m);
		h += m;
	}
	raw_cmd(r, head, h);
	if (sizeof(r->cmd) - r->cmd_len > 3) {
		memcpy(r->cmd + r->cmd_len, "...", 4);
		r->cmd_len += 3;
	}
	r->err = -fail(r, -EINVAL,
		       "command line longer than %u bytes: discarded",
		       LINE_MAX_CTL);
	ret = record(ctl, r);
	free(r);
	return ret ? ret : -EINVAL;
}

/* Append @n bytes to the unterminated line (at most LINE_MAX_CTL). */
static int part_append(struct vhdfs_control *ctl, const char *p, size_t n)
{
	if (ctl->part_len + n > ctl->part_cap) {
		size_t cap = ctl->part_cap ? ctl->part_cap : 256;
		char *np;

		while (cap < ctl->part_len + n)
			cap *= 2;
		if (cap > LINE_MAX_CTL)
			cap = LINE_MAX_CTL;
		np = realloc(ctl->part, cap);
		if (!np)
			return -ENOMEM;
		ctl->part = np;
		ctl->part_cap = cap;
	}
	memcpy(ctl->part + ctl->part_len, p, n);
	ctl->part_len += n;
	return 0;
}

ssize_t vhdfs_control_write(struct vhdfs_control *ctl, const char *buf,
			    size_t len, off_t off)
{
	const char *p = buf, *end = buf + len;
	int first = 0, ret;

	pthread_mutex_lock(&ctl->wlock);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		ret = 0;
		if (ctl->skip) {
			ctl->skip = !nl;
		} else if (ctl->part_len + n > LINE_MAX_CTL) {
			ret = overlong(ctl, p, n);
			ctl->part_len = 0;
			ctl->skip = !nl;
		} else if (!nl) {
			ret = part_append(ctl, p, n);
			if (ret)
				ctl->skip = true;
		} else if (ctl->part_len) {
			ret = part_append(ctl, p, n);
			if (!ret)
				ret = run_line(ctl, ctl->part, ctl->part_len);
			ctl->part_len = 0;
		} else {
			ret = run_line(ctl, p, n);
		}
		if (ret && !first)
			first = ret;
		p = nl ? nl + 1 : end;
	}
	pthread_mutex_unlock(&ctl->wlock);
	/* A failed write(2) leaves the file offset where it was. */
	pthread_mutex_lock(&ctl->lock);
	ctl->origin = first ? off : off + (off_t)len;
	pthread_mutex_unlock(&ctl->lock);
	return first ? first : (ssize_t)len;
}

int vhdfs_control_flush(struct vhdfs_control *ctl)
{
	int ret = 0;

	pthread_mutex_lock(&ctl->wlock);
	if (ctl->part_len && !ctl->skip)
		ret = run_line(ctl, ctl->part, ctl->part_len);
	ctl->part_len = 0;
	ctl->skip = false;
	pthread_mutex_unlock(&ctl->wlock);
	return ret;
}

/* Concatenate @n lines into a fresh snapshot. */
static int snapshot(char **lines, unsigned n, char **out, size_t *len)
{
	size_t total = 0, o = 0;
	char *s;

	for (unsigned i = 0; i < n; i++)
		total += strlen(lines[i]);
	s = malloc(total + 1);
	if (!s)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);

		memcpy(s + o, lines[i], l);
		o += l;
	}
	s[o] = '\0';
	*out = s;
	*len = o;
	return 0;
}

ssize_t vhdfs_control_read(struct vhdfs_control *ctl, char *buf, size_t len,
			   off_t off)
{
	char *own = NULL;
	const char *text;
	size_t tlen, pos;
	ssize_t ret = 0;
	int err = 0;

	pthread_mutex_lock(&ctl->lock);
	if (off < ctl->origin)
		ctl->origin = 0;
	pos = (size_t)(off - ctl->origin);
	if (ctl->n) {
		err = snapshot(ctl->lines, ctl->n, &own, &tlen);
		text = own;
	} else {
		/* A read from the start sees the latest results. */
		if (off == 0 || !ctl->snap) {
			free(ctl->snap);
			ctl->snap = NULL;
			pthread_mutex_lock(&ring_lock);
			err = snapshot(ring, ring_n, &ctl->snap,
				       &ctl->snap_len);
			pthread_mutex_unlock(&ring_lock);
		}
		text = ctl->snap;
		tlen = ctl->snap_len;
	}
	if (err) {
		ret = err;
		goto out;
	}
	if (pos < tlen) {
		ret = (ssize_t)(tlen - pos);
		if ((size_t)ret > len)
			ret = (ssize_t)len;
		memcpy(buf, text + pos, (size_t)ret);
	}
out:
	pthread_mutex_unlock(&ctl->lock);
	free(own);
	return ret;
}

void vhdfs_control_destroy(void)
{
	pthread_mutex_lock(&ring_lock);
	for (unsigned i = 0; i < ring_n; i++)
		free(ring[i]);
	ring_n = 0;
	pthread_mutex_unlock(&ring_lock);
}
