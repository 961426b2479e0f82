// SPDX-License-Identifier: MIT
/*
 * The .control file: each line written is one command, mirroring the
 * Hyper-V image service methods. Results are kept per open file and in a
 * bounded global ring, and read back as
 *   ReturnValue=N [Job=.jobs/ID] [Error="..."] Command="..."
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vhdfs.h"

#define RING_MAX 64  /* results a fresh open reads */
#define OWN_MAX 1024 /* results kept per open file */
#define MSG_MAX 1024

/*
 * Reads are positioned relative to an origin: the file offset just after
 * the last write through the same open (the offset has moved past the
 * bytes written), or 0 once the reader seeks back to the start.
 */
struct vhdfs_control {
	pthread_mutex_t lock;
	char *lines[OWN_MAX]; /* protected by lock; oldest first */
	unsigned n;
	off_t origin; /* offset of the first result; protected by lock */
	char *snap;   /* ring text while nothing was written; under lock */
	size_t snap_len;
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

	return fail(r, ret, "%s", m && *m ? m : strerror(-ret));
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

static int cmd_diff(const char *child, const char *parent, struct result *r)
{
	char cpath[PATH_MAX], ppath[PATH_MAX];
	int ret;

	if (vhdfs_cfg.ro)
		return fail(r, -EROFS, "read-only mount");
	ret = vhdfs_resolve_new(child, cpath, sizeof(cpath), r->msg,
				sizeof(r->msg));
	if (ret)
		return ret;
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
	pthread_mutex_lock(&vhdfs_topo_lock);
	/*
	 * A writer may still change the parent under its new child: refuse,
	 * as Hyper-V does. Readers may hold a handle whose last writer left
	 * metadata in memory: flush it, or the child would miss that data.
	 */
	if (vhdfs_image_writers(ppath) > 0) {
		ret = fail(r, -EBUSY, "parent is open for writing: %s", parent);
	} else if ((ret = vhdfs_image_sync(ppath)) != 0) {
		fail(r, ret, "cannot flush parent %s: %s", parent,
		     strerror(-ret));
	} else {
		ret = vhd_create_diff(cpath, ppath);
		if (ret)
			lib_fail(r, ret);
	}
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

static int cmd_create(char **tok, int n, struct result *r)
{
	struct vhdfs_job_args args = {.kind = VHDFS_JOB_CREATE};
	uint64_t size, block = 0;
	bool fixed = false, have_type = false;
	int ret;

	if (vhdfs_cfg.ro)
		return fail(r, -EROFS, "read-only mount");
	if (vhd_parse_size(tok[2], &size) || size == 0)
		return fail(r, -EINVAL, "bad size: %s", tok[2]);
	if (size > VHD_MAX_SIZE)
		return fail(r, -EINVAL, "size too large: %s (limit 2040G)",
			    tok[2]);
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
	ret = vhdfs_resolve_new(tok[1], args.path, sizeof(args.path), r->msg,
				sizeof(r->msg));
	if (ret)
		return ret;
	args.params.type = fixed ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
	args.params.size = size;
	args.params.block_size = (uint32_t)block;
	if (fixed) {
		/* Writing every byte of a fixed image takes time: a job. */
		ret = vhdfs_job_start(&args, r->cmd, &r->job);
		return ret ? fail(r, ret, "cannot start job: %s",
				  strerror(-ret))
			   : 0;
	}
	ret = vhd_create(args.path, &args.params);
	return ret ? lib_fail(r, ret) : 0;
}

static int cmd_validate(const char *path, struct result *r)
{
	struct vhdfs_job_args args = {.kind = VHDFS_JOB_VALIDATE};
	int ret;

	ret = vhdfs_resolve_existing(path, args.path, sizeof(args.path), r->msg,
				     sizeof(r->msg));
	if (ret)
		return ret;
	/* A damaged image is what validation is for: the job reports it. */
	ret = vhdfs_job_start(&args, r->cmd, &r->job);
	return ret ? fail(r, ret, "cannot start job: %s", strerror(-ret)) : 0;
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
	return cmd_cancel(tok[1], r);
}

static char *format_result(const struct result *r)
{
	char cmd[sizeof(r->cmd) * 2], msg[MSG_MAX * 2], job[64] = "";
	char err[MSG_MAX * 2 + 16] = "";
	char *out;

	vhdfs_ctl_escape(cmd, sizeof(cmd), r->cmd);
	if (r->job)
		snprintf(job, sizeof(job), "Job=%s/%lu ", VHDFS_JOBS_NAME,
			 r->job);
	if (r->err) {
		vhdfs_ctl_escape(msg, sizeof(msg),
				 r->msg[0] ? r->msg : strerror(r->err));
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

	if (ctl)
		pthread_mutex_init(&ctl->lock, NULL);
	return ctl;
}

void vhdfs_control_release(struct vhdfs_control *ctl)
{
	for (unsigned i = 0; i < ctl->n; i++)
		free(ctl->lines[i]);
	free(ctl->snap);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
}

ssize_t vhdfs_control_write(struct vhdfs_control *ctl, const char *buf,
			    size_t len, off_t off)
{
	char *text = malloc(len + 1), *line, *save;
	struct result *r = malloc(sizeof(*r));
	int first = 0;

	if (!text || !r) {
		free(text);
		free(r);
		return -ENOMEM;
	}
	memcpy(text, buf, len);
	text[len] = '\0';
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t l = strlen(line);
		char *p = line, *s, *s2;

		while (l && isspace((unsigned char)line[l - 1]))
			line[--l] = '\0';
		while (isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			continue;
		memset(r, 0, sizeof(*r));
		snprintf(r->cmd, sizeof(r->cmd), "%s", p);
		r->err = -run(p, r);
		if (r->err) {
			vhdfs_log("control: %s: %s (%s)", r->cmd,
				  r->msg[0] ? r->msg : "failed",
				  strerror(r->err));
			if (!first)
				first = -r->err;
		}
		s = format_result(r);
		s2 = s ? strdup(s) : NULL;
		if (!s || !s2) {
			free(s);
			first = first ? first : -ENOMEM;
			continue;
		}
		pthread_mutex_lock(&ctl->lock);
		push(ctl->lines, &ctl->n, OWN_MAX, s);
		pthread_mutex_unlock(&ctl->lock);
		pthread_mutex_lock(&ring_lock);
		push(ring, &ring_n, RING_MAX, s2);
		pthread_mutex_unlock(&ring_lock);
	}
	free(text);
	free(r);
	/* A failed write(2) leaves the file offset where it was. */
	pthread_mutex_lock(&ctl->lock);
	ctl->origin = first ? off : off + (off_t)len;
	pthread_mutex_unlock(&ctl->lock);
	return first ? first : (ssize_t)len;
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
