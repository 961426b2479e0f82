// SPDX-License-Identifier: MIT
/*
 * Who is asking: the owner and mode of what a command creates, and access
 * checks as the caller where the kernel's default_permissions cannot see
 * the real file (a symlinked image).
 */
#include "vhdfs.h"

#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_UMASK 022

/*
 * The caller's umask: FUSE passes it only with create-type requests, so
 * read it from the calling thread's status (Linux 4.7+), which stays
 * valid while that thread waits for our reply.
 */
static mode_t caller_umask(pid_t pid)
{
	char path[64], line[128];
	unsigned int mask;
	mode_t ret = DEFAULT_UMASK;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return ret;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &mask) == 1) {
			ret = (mode_t)(mask & 0777);
			break;
		}
	fclose(f);
	return ret;
}

void vhdfs_caller_create_opts(struct vhd_create_opts *o)
{
	const struct fuse_context *ctx = fuse_get_context();

	memset(o, 0, sizeof(*o));
	o->own = true;
	o->umask = ctx && ctx->pid > 0 ? caller_umask(ctx->pid) : DEFAULT_UMASK;
	/* Only root can give files away; else they are the daemon's user. */
	o->uid = ctx && geteuid() == 0 ? ctx->uid : (uid_t)-1;
	o->gid = ctx && geteuid() == 0 ? ctx->gid : (gid_t)-1;
}

static bool in_groups(gid_t gid, gid_t primary, const gid_t *groups, int n)
{
	if (gid == primary)
		return true;
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* Classic owner/group/other check of @want (rwx bits, 0-7) on @st. */
static bool permits(const struct stat *st, uid_t uid, gid_t gid,
		    const gid_t *groups, int n, unsigned want)
{
	unsigned bits;

	if (st->st_uid == uid)
		bits = (st->st_mode >> 6) & 7;
	else if (in_groups(st->st_gid, gid, groups, n))
		bits = (st->st_mode >> 3) & 7;
	else
		bits = st->st_mode & 7;
	return (bits & want) == want;
}

int vhdfs_caller_may_access(const struct stat *st, bool write)
{
	const struct fuse_context *ctx = fuse_get_context();
	gid_t groups[256];
	int n;

	if (!ctx || ctx->uid == 0)
		return 0;
	n = fuse_getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
	if (n < 0 || n > (int)(sizeof(groups) / sizeof(groups[0])))
		n = 0;
	return permits(st, ctx->uid, ctx->gid, groups, n, write ? 6 : 4)
		       ? 0
		       : -EACCES;
}

int vhdfs_caller_may_open(const char *bpath, bool write)
{
	return vhdfs_caller_may_open_st(bpath, write, NULL);
}

int vhdfs_caller_may_open_st(const char *bpath, bool write,
			     struct stat *checked)
{
	const struct fuse_context *ctx = fuse_get_context();
	char *real, *p;
	gid_t groups[256];
	struct stat st;
	int n, ret = 0;

	if (checked)
		memset(checked, 0, sizeof(*checked));
	if (!ctx || ctx->uid == 0)
		return 0;
	n = fuse_getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
	if (n < 0 || n > (int)(sizeof(groups) / sizeof(groups[0])))
		n = 0;
	/* Never realpath(3): a link into our own mount would call us back. */
	real = malloc(PATH_MAX);
	if (!real)
		return -ENOMEM;
	ret = vhd_realpath(bpath, real, PATH_MAX);
	if (ret) {
		free(real);
		return ret;
	}
	/* Search permission on "/" and each directory down to the file. */
	if (stat("/", &st) < 0)
		ret = -errno;
	else if (!permits(&st, ctx->uid, ctx->gid, groups, n, 1))
		ret = -EACCES;
	for (p = real; !ret && (p = strchr(p + 1, '/'));) {
		*p = '\0';
		if (stat(real, &st) < 0)
			ret = -errno;
		else if (!permits(&st, ctx->uid, ctx->gid, groups, n, 1))
			ret = -EACCES;
		*p = '/';
	}
	if (!ret && stat(real, &st) < 0)
		ret = -errno;
	else if (!ret &&
		 !permits(&st, ctx->uid, ctx->gid, groups, n, write ? 6 : 4))
		ret = -EACCES;
	if (!ret && checked)
		*checked = st;
	free(real);
	return ret;
}
