// SPDX-License-Identifier: MIT
/* Read-only extended attributes describing each image (user.vhd.*). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "vhdfs.h"

#define CHAIN_MAX (VHD_MAX_CHAIN_DEPTH * PATH_MAX)

/* Realpath of the parent of the opened image @disk; -EACCES when the
 * caller may not read it, -ENODATA when it is not found (the library's
 * message says why): the attribute has no value, the file is there. */
static int parent_of(struct vhd_disk *disk, char *out, size_t len)
{
	char found[PATH_MAX];
	int ret = vhd_find_parent(disk, found, sizeof(found));

	if (ret == -ENOENT || ret == -EINVAL)
		return -ENODATA;
	if (ret)
		return ret;
	if (len < PATH_MAX || vhd_realpath(found, out, len))
		return -ENODATA;
	/* Where a parent is, only to whom may read it (as on open). */
	return vhdfs_caller_may_open(out, false);
}

/* Leaf to base, one path per line, as far as the chain resolves. */
static int chain_of(const char *bpath, struct vhd_disk *leaf, char *out,
		    size_t len)
{
	char cur[PATH_MAX], next[PATH_MAX];
	struct vhd_disk *disk = leaf;
	size_t o = 0;
	int ret = 0;

	if (vhd_realpath(bpath, cur, sizeof(cur)))
		snprintf(cur, sizeof(cur), "%s", bpath);
	for (int depth = 0; depth < VHD_MAX_CHAIN_DEPTH; depth++) {
		int n = snprintf(out + o, len - o, "%s%s", o ? "\n" : "", cur);

		if (n < 0 || (size_t)n >= len - o) {
			ret = -E2BIG;
			break;
		}
		o += (size_t)n;
		if (vhd_type(disk) != VHD_TYPE_DIFF)
			break;
		ret = parent_of(disk, next, sizeof(next));
		if (ret) {
			/* Unresolved: the chain ends here; hidden: refused. */
			ret = ret == -EACCES ? ret : 0;
			break;
		}
		if (disk != leaf)
			vhd_close(disk);
		disk = NULL;
		if (vhd_open(next, VHD_OPEN_NOPARENT, &disk))
			break;
		memcpy(cur, next, sizeof(cur));
	}
	if (disk && disk != leaf)
		vhd_close(disk);
	return ret;
}

/* Writes the value of @name into @buf (NUL-terminated). */
static int value_of(const char *bpath, struct vhd_disk *disk,
		    const struct vhd_info *info, const char *name, char *buf,
		    size_t len)
{
	bool fixed = info->type == VHD_TYPE_FIXED;

	if (strcmp(name, "user.vhd.type") == 0) {
		snprintf(buf, len, "%s", vhd_type_name(info->type));
	} else if (strcmp(name, "user.vhd.uuid") == 0) {
		uuid_unparse_lower(info->uuid, buf);
	} else if (strcmp(name, "user.vhd.parent") == 0) {
		int ret;

		if (info->type != VHD_TYPE_DIFF)
			return -ENODATA;
		ret = parent_of(disk, buf, len);
		if (ret == -ENODATA)
			vhdfs_log("user.vhd.parent of %s: %s", bpath,
				  *vhd_errmsg() ? vhd_errmsg()
						: "parent not found");
		return ret;
	} else if (strcmp(name, "user.vhd.chain") == 0) {
		return chain_of(bpath, disk, buf, len);
	} else if (strcmp(name, "user.vhd.block_size") == 0 && !fixed) {
		snprintf(buf, len, "%u", info->block_size);
	} else if (strcmp(name, "user.vhd.allocated_blocks") == 0 && !fixed) {
		snprintf(buf, len, "%u", info->allocated_blocks);
	} else {
		return -ENODATA;
	}
	return 0;
}

int vhdfs_getxattr(const char *bpath, const char *name, char *value,
		   size_t size)
{
	struct vhd_disk *disk;
	struct vhd_info info;
	char *buf;
	size_t n;
	int ret;

	if (strncmp(name, "user.vhd.", 9) != 0)
		return -ENODATA;
	buf = malloc(CHAIN_MAX);
	if (!buf)
		return -ENOMEM;
	ret = vhd_open(bpath, VHD_OPEN_NOPARENT, &disk);
	if (ret)
		goto out;
	ret = vhd_get_info(disk, &info);
	if (!ret)
		ret = value_of(bpath, disk, &info, name, buf, CHAIN_MAX);
	vhd_close(disk);
	if (ret)
		goto out;
	n = strlen(buf);
	if (size == 0) {
		ret = (int)n;
	} else if (n > size) {
		ret = -ERANGE;
	} else {
		memcpy(value, buf, n);
		ret = (int)n;
	}
out:
	free(buf);
	return ret;
}

int vhdfs_listxattr(const char *bpath, char *list, size_t size)
{
	static const char *const names[] = {
		"user.vhd.type",       "user.vhd.uuid",
		"user.vhd.parent",     "user.vhd.chain",
		"user.vhd.block_size", "user.vhd.allocated_blocks",
	};
	char found[PATH_MAX];
	struct vhd_disk *disk;
	struct vhd_info info;
	bool parent = false;
	size_t o = 0;
	int ret;

	ret = vhd_open(bpath, VHD_OPEN_NOPARENT, &disk);
	if (ret)
		return ret;
	ret = vhd_get_info(disk, &info);
	/* user.vhd.parent has a value only when the parent is found. */
	if (!ret && info.type == VHD_TYPE_DIFF)
		parent = vhd_find_parent(disk, found, sizeof(found)) == 0;
	vhd_close(disk);
	if (ret)
		return ret;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]) + 1;

		if (i == 2 && !parent)
			continue;
		if (i >= 4 && info.type == VHD_TYPE_FIXED)
			continue;
		if (size) {
			if (o + n > size)
				return -ERANGE;
			memcpy(list + o, names[i], n);
		}
		o += n;
	}
	return (int)o;
}
