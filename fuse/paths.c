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
#include <strings.h>

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

bool vhdfs_is_vhd_name(const char *name)
{
	static const char *const ext[] = {".vhd", ".vhdx", ".avhdx"};
	const char *base = strrchr(name, '/');
	size_t n;

	base = base ? base + 1 : name;
	n = strlen(base);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t e = strlen(ext[i]);

		if (n > e && strcasecmp(base + n - e, ext[i]) == 0)
			return true;
	}
	return false;
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

static const char *relative_part(const char *arg)
{
	const char *rel;

	if (arg[0] != '/')
		return arg;
	rel = strip_prefix(arg, vhdfs_cfg.mountpoint, vhdfs_cfg.mountpoint_len);
	if (rel)
		return rel;
	return strip_prefix(arg, vhdfs_cfg.backing, vhdfs_cfg.backing_len);
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

int vhdfs_resolve_new(const char *arg, char *out, size_t len, char *msg,
		      size_t msglen)
{
	char norm[PATH_MAX], dir[PATH_MAX], dreal[PATH_MAX];
	const char *rel = relative_part(arg);
	const char *base;
	struct stat st;
	int ret;

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
	if (!vhdfs_is_vhd_name(norm)) {
		snprintf(msg, msglen, "image name must end in .vhd: %s", arg);
		return -EINVAL;
	}
	base = strrchr(norm, '/');
	if (base) {
		ret = snprintf(dir, sizeof(dir), "%s/%.*s", vhdfs_cfg.backing,
			       (int)(base - norm), norm);
		base++;
	} else {
		ret = snprintf(dir, sizeof(dir), "%s", vhdfs_cfg.backing);
		base = norm;
	}
	if (ret < 0 || (size_t)ret >= sizeof(dir)) {
		ret = -ENAMETOOLONG;
		goto fail;
	}
	/* The directory may be a symlink: judge where it really is. */
	if (!realpath(dir, dreal)) {
		ret = -errno;
		snprintf(msg, msglen, "directory not found: %s", arg);
		return ret;
	}
	if (!vhdfs_is_inside(dreal)) {
		snprintf(msg, msglen, "outside the backing directory: %s", arg);
		return -EACCES;
	}
	if (stat(dreal, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(msg, msglen, "not a directory: %s", dir);
		return -ENOTDIR;
	}
	ret = snprintf(out, len, "%s%s%s", dreal,
		       strcmp(dreal, "/") == 0 ? "" : "/", base);
	if (ret < 0 || (size_t)ret >= len) {
		ret = -ENAMETOOLONG;
		goto fail;
	}
	if (lstat(out, &st) == 0) {
		snprintf(msg, msglen, "target exists: %s", arg);
		return -EEXIST;
	}
	return 0;
fail:
	snprintf(msg, msglen, "%s: %s", arg, strerror(-ret));
	return ret;
}

int vhdfs_resolve_existing(const char *arg, char *out, size_t len, char *msg,
			   size_t msglen)
{
	char tmp[PATH_MAX];
	const char *rel = relative_part(arg);
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
	if (!realpath(tmp, out) || stat(out, &st)) {
		int err = errno;

		snprintf(msg, msglen, "not found: %s", arg);
		return -err;
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
