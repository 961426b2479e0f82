// SPDX-License-Identifier: MIT
/*
 * Path mapping: FUSE paths to BACKING_DIR, and the containment rules for
 * paths written to .control (a new image must end up inside BACKING_DIR; a
 * parent may live anywhere).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <strings.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "vhdfs.h"

enum vhdfs_node vhdfs_classify(const char *path, unsigned long *job_id)
{
	static const char jobs[] = "/" VHDFS_JOBS_NAME;
	size_t jl = sizeof(jobs) - 1;

	if (strcmp(path, "/") == 0)
		return VHDFS_NODE_ROOT;
	if (strcmp(path, "/" VHDFS_CONTROL_NAME) == 0)
		return VHDFS_NODE_CONTROL;
	if (strncmp(path, jobs, jl) != 0 || (path[jl] && path[jl] != '/'))
		return VHDFS_NODE_BACKING;
	if (path[jl] == '\0')
		return VHDFS_NODE_JOBS_DIR;

	/* .jobs/ID: anything but a plain decimal id is a missing job (0). */
	const char *id = path + jl + 1;
	char *end;

	*job_id = 0;
	if (*id >= '1' && *id <= '9') {
		errno = 0;
		unsigned long v = strtoul(id, &end, 10);

		if (!errno && *end == '\0')
			*job_id = v;
	}
	return VHDFS_NODE_JOB;
}

int vhdfs_backing_path(const char *path, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%s", vhdfs_cfg.backing,
			 strcmp(path, "/") == 0 ? "" : path);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

dev_t vhdfs_mount_dev(const char *mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, point[PATH_MAX];
	unsigned maj, min;
	size_t cap = 0;
	dev_t dev = 0;

	if (!f)
		return 0;
	/* The last matching line is the mount on top. */
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min,
			   point) != 3)
			continue;
		unescape(point);
		if (strcmp(point, mnt) == 0)
			dev = makedev(maj, min);
	}
	free(line);
	fclose(f);
	return dev;
}

int vhdfs_stat(const char *path, struct stat *st)
{
	char real[PATH_MAX];
	int r;

	if (lstat(path, st))
		return -errno;
	if (!S_ISLNK(st->st_mode))
		return 0;
	r = vhd_realpath(path, real, sizeof(real));
	if (r)
		return r;
	return stat(real, st) ? -errno : 0;
}

bool vhdfs_is_inside(const char *real)
{
	size_t n = vhdfs_cfg.backing_len;

	if (strncmp(real, vhdfs_cfg.backing, n) != 0)
		return false;
	/* backing "/" is a prefix of everything */
	return real[n] == '\0' || real[n] == '/' || n == 1;
}

/* If absolute @arg names MOUNTPOINT or BACKING_DIR or below, return the
 * remainder after the prefix (possibly ""), else NULL. */
static const char *strip_prefix(const char *arg, const char *prefix,
				size_t plen)
{
	if (plen == 1) /* "/" */
		return arg + 1;
	if (strncmp(arg, prefix, plen) != 0)
		return NULL;
	if (arg[plen] == '\0')
		return arg + plen;
	if (arg[plen] == '/')
		return arg + plen + 1;
	return NULL;
}

/*
 * The part of @arg below MOUNTPOINT or BACKING_DIR (@arg itself when
 * relative), else NULL. Repeated slashes are collapsed into @buf first:
 * "//mnt//x.vhd" names the same file as "/mnt/x.vhd".
 */
static const char *relative_part(const char *arg, char *buf, size_t len)
{
	const char *rel;
	size_t o = 0;

	if (arg[0] != '/')
		return arg;
	if (strlen(arg) >= len)
		return NULL; /* too long for any path: callers say so */
	for (const char *c = arg; *c; c++)
		if (*c != '/' || o == 0 || buf[o - 1] != '/')
			buf[o++] = *c;
	buf[o] = '\0';
	rel = strip_prefix(buf, vhdfs_cfg.mountpoint, vhdfs_cfg.mountpoint_len);
	if (rel)
		return rel;
	return strip_prefix(buf, vhdfs_cfg.backing, vhdfs_cfg.backing_len);
}

/*
 * Collapse "." and ".." lexically; -EACCES when ".." would climb above
 * BACKING_DIR.
 */
static int normalize(const char *rel, char *out, size_t len)
{
	char tmp[PATH_MAX];
	size_t o = 0;
	char *save, *c;

	if (strlen(rel) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, rel);
	out[0] = '\0';
	for (c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			char *slash;

			if (o == 0)
				return -EACCES;
			slash = strrchr(out, '/');
			o = slash ? (size_t)(slash - out) : 0;
			out[o] = '\0';
			continue;
		}
		size_t cl = strlen(c);

		if (o + cl + 2 > len)
			return -ENAMETOOLONG;
		if (o)
			out[o++] = '/';
		memcpy(out + o, c, cl + 1);
		o += cl;
	}
	return 0;
}

/*
 * Open directory @rel (relative, normalized) beneath BACKING_DIR without
 * ever leaving it, whatever is swapped in during the lookup: openat2
 * RESOLVE_BENEATH (symlinks that stay inside are followed), else a walk
 * that follows no symlink at all.
 */
static int open_beneath(const char *rel)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	char tmp[PATH_MAX], *save, *c;
	int fd, next;

	fd = (int)syscall(SYS_openat2, vhdfs_cfg.backing_fd, *rel ? rel : ".",
			  &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd >= 0 ? fd : -errno;
	if (strlen(rel) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, rel);
	fd = openat(vhdfs_cfg.backing_fd, ".",
		    O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		next = openat(fd, c,
			      O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return errno == ENOTDIR || errno == ELOOP ? -EXDEV
								  : -errno;
		fd = next;
	}
	return fd;
}

int vhdfs_backing_dir(const char *path, const char **name)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	size_t dl;

	/* FUSE paths are absolute and normalized: "/a/b/NAME". */
	if (path[0] != '/' || !slash[1] ||
	    (size_t)(slash - path) >= sizeof(dir))
		return -EINVAL;
	dl = slash > path ? (size_t)(slash - path - 1) : 0;
	memcpy(dir, path + 1, dl);
	dir[dl] = '\0';
	fd = open_beneath(dir);
	/* A directory that leads outside is a symlink the view hides. */
	if (fd == -EXDEV || fd == -ELOOP || fd == -ENOTDIR)
		return -ENOENT;
	*name = slash + 1;
	return fd;
}

int vhdfs_backing_node(const char *path)
{
	const char *name;
	int dirfd = vhdfs_backing_dir(path, &name), fd;

	if (dirfd < 0)
		return dirfd;
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	fd = fd < 0 ? -errno : fd;
	close(dirfd);
	return fd;
}

int vhdfs_resolve_new(const char *arg, char *out, size_t len, int *dirfd,
		      char *msg, size_t msglen)
{
	char norm[PATH_MAX], dir[PATH_MAX], abs[PATH_MAX];
	const char *rel = relative_part(arg, abs, sizeof(abs));
	const char *base;
	struct stat st;
	int ret, fd;

	*dirfd = -1;
	if (strlen(arg) >= sizeof(abs)) {
		ret = -ENAMETOOLONG;
		goto fail;
	}
	if (!rel) {
		snprintf(msg, msglen, "outside the backing directory: %s", arg);
		return -EACCES;
	}
	ret = normalize(rel, norm, sizeof(norm));
	if (ret == -EACCES) {
		snprintf(msg, msglen, "outside the backing directory: %s", arg);
		return ret;
	}
	if (ret)
		goto fail;
	if (norm[0] == '\0') {
		snprintf(msg, msglen, "not an image path: %s", arg);
		return -EINVAL;
	}
	if (!vhd_is_image_name(norm)) {
		snprintf(msg, msglen,
			 "image name must end in .vhd, .avhd, .vhdx or .avhdx: "
			 "%s",
			 arg);
		return -EINVAL;
	}
	base = strrchr(norm, '/');
	if (base) {
		ret = snprintf(dir, sizeof(dir), "%.*s", (int)(base - norm),
			       norm);
		base++;
	} else {
		ret = snprintf(dir, sizeof(dir), "%s", "");
		base = norm;
	}
	if (ret < 0 || (size_t)ret >= sizeof(dir)) {
		ret = -ENAMETOOLONG;
		goto fail;
	}
	/* MOUNTPOINT inside BACKING_DIR: never create through ourselves. */
	{
		char full[PATH_MAX * 2];

		snprintf(full, sizeof(full), "%s/%s", vhdfs_cfg.backing, norm);
		if (strip_prefix(full, vhdfs_cfg.mountpoint,
				 vhdfs_cfg.mountpoint_len)) {
			snprintf(msg, msglen,
				 "outside the backing directory: %s", arg);
			return -EACCES;
		}
	}
	fd = open_beneath(dir);
	if (fd == -EXDEV || fd == -ELOOP) {
		snprintf(msg, msglen, "outside the backing directory: %s", arg);
		return -EACCES;
	}
	/* A file where a directory should be: no such directory either. */
	if (fd == -ENOENT || fd == -ENOTDIR) {
		snprintf(msg, msglen, "directory not found: %s", arg);
		return -ENOENT;
	}
	if (fd < 0) {
		snprintf(msg, msglen, "%s: %s", arg, strerror(-fd));
		return fd;
	}
	if (fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		close(fd);
		snprintf(msg, msglen, "target exists: %s", arg);
		return -EEXIST;
	}
	/* The library creates through the descriptor's magic link: the
	 * directory found is the one written, even if swapped meanwhile. */
	ret = snprintf(out, len, "/proc/self/fd/%d/%s", fd, base);
	if (ret < 0 || (size_t)ret >= len) {
		close(fd);
		ret = -ENAMETOOLONG;
		goto fail;
	}
	*dirfd = fd;
	return 0;
fail:
	snprintf(msg, msglen, "%s: %s", arg, strerror(-ret));
	return ret;
}

void vhdfs_unfd(char *msg, size_t len)
{
	static const char pre[] = "/proc/self/fd/";
	char *p, *from = msg, link[32], dir[PATH_MAX], rest[2048];
	struct stat st;
	ssize_t n;
	int fd;

	/* Past each rewrite: a directory named like "proc/self/fd/N" is
	 * not a descriptor of ours, and is never rewritten again. Only
	 * directories: other descriptors are none of the user's business. */
	while ((p = strstr(from, pre))) {
		char *end;

		fd = (int)strtol(p + sizeof(pre) - 1, &end, 10);
		snprintf(link, sizeof(link), "%s%d", pre, fd);
		if (end == p + sizeof(pre) - 1 || fd < 0 || stat(link, &st) ||
		    !S_ISDIR(st.st_mode) ||
		    (n = readlink(link, dir, sizeof(dir) - 1)) < 0) {
			from = end;
			continue;
		}
		dir[n] = '\0';
		snprintf(rest, sizeof(rest), "%s", end);
		snprintf(p, len - (size_t)(p - msg), "%s%s", dir, rest);
		from = p + strnlen(p, (size_t)n);
	}
}

int vhdfs_resolve_existing(const char *arg, char *out, size_t len, char *msg,
			   size_t msglen)
{
	char tmp[PATH_MAX], abs[PATH_MAX];
	const char *rel = relative_part(arg, abs, sizeof(abs));
	struct stat st;
	int n;

	if (rel)
		n = snprintf(tmp, sizeof(tmp), "%s/%s", vhdfs_cfg.backing, rel);
	else
		n = snprintf(tmp, sizeof(tmp), "%s", arg);
	if (n < 0 || (size_t)n >= sizeof(tmp) || len < PATH_MAX) {
		snprintf(msg, msglen, "path too long: %s", arg);
		return -ENAMETOOLONG;
	}
	/* Not realpath(3): a symlink into MOUNTPOINT would make us look
	 * the rest up through our own mount. */
	n = vhd_realpath(tmp, out, len);
	if (n == 0 && stat(out, &st))
		n = -errno;
	if (n == -ENOTDIR) /* a component is a file: no such path either */
		n = -ENOENT;
	if (n == -EISDIR) { /* ".", "d/..": the walk ended on a directory */
		snprintf(msg, msglen, "not a regular file: %s", arg);
		return -EINVAL;
	}
	if (n == -ENOENT) {
		snprintf(msg, msglen, "not found: %s", arg);
		return n;
	}
	if (n) {
		snprintf(msg, msglen, "%s: %s", arg,
			 n == -EXDEV ? "a path through this mount"
				     : strerror(-n));
		return n == -EXDEV ? -EACCES : n;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(msg, msglen, "not a regular file: %s", arg);
		return -EINVAL;
	}
	return 0;
}

int vhdfs_resolve_inside(const char *arg, char *out, size_t len, char *msg,
			 size_t msglen)
{
	int ret = vhdfs_resolve_existing(arg, out, len, msg, msglen);

	if (ret)
		return ret;
	if (!vhdfs_is_inside(out)) {
		snprintf(msg, msglen, "outside the backing directory: %s", arg);
		return -EACCES;
	}
	return 0;
}
