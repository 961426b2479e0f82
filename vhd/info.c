// SPDX-License-Identifier: MIT
/* Metadata accessors: what `vhd info` and the xattrs show. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vhdx_i.h"

const char *vhd_path(const struct vhd_disk *d)
{
	return d->path;
}

void vhd_identity(const struct vhd_disk *d, dev_t *dev, ino_t *ino)
{
	*dev = d->dev;
	*ino = d->ino;
}

struct vhd_disk *vhd_parent(const struct vhd_disk *d)
{
	return d->parent;
}

uint64_t vhd_size(const struct vhd_disk *d)
{
	return d->size;
}

enum vhd_type vhd_type(const struct vhd_disk *d)
{
	return (enum vhd_type)d->footer.disk_type;
}

const char *vhd_type_name(enum vhd_type type)
{
	switch (type) {
	case VHD_TYPE_FIXED:
		return "fixed";
	case VHD_TYPE_DYNAMIC:
		return "dynamic";
	case VHD_TYPE_DIFF:
		return "differencing";
	}
	return "unknown";
}

int vhd_get_info(const struct vhd_disk *d, struct vhd_info *info)
{
	const struct vhd_footer *f = &d->footer;
	struct stat st;

	if (d->vhdx)
		return vhdx_get_info(d, info);
	memset(info, 0, sizeof(*info));
	info->type = (enum vhd_type)f->disk_type;
	info->current_size = f->current_size;
	info->original_size = f->original_size;
	if (fstat(d->fd, &st) == 0)
		info->file_size = (uint64_t)st.st_size;
	info->features = f->features;
	info->timestamp = f->timestamp;
	memcpy(info->creator_app, f->creator_app, 4);
	info->creator_version = f->creator_version;
	info->creator_os = f->creator_os;
	info->cylinders = f->cylinders;
	info->heads = f->heads;
	info->sectors_per_track = f->sectors_per_track;
	info->saved_state = f->saved_state != 0;
	info->footer_from_copy = d->footer_from_copy;
	memcpy(info->uuid, f->uuid, 16);
	if (f->disk_type == VHD_TYPE_FIXED)
		return 0;
	/* The BAT may change under a writer: count it under the lock. */
	if (d->flags & VHD_OPEN_RDWR)
		pthread_rwlock_rdlock((pthread_rwlock_t *)&d->lock);
	info->allocated_blocks = vhd_bat_allocated(d);
	if (d->flags & VHD_OPEN_RDWR)
		pthread_rwlock_unlock((pthread_rwlock_t *)&d->lock);
	info->block_size = d->block_size;
	info->max_table_entries = d->header.max_table_entries;
	info->table_offset = d->header.table_offset;
	if (f->disk_type != VHD_TYPE_DIFF)
		return 0;
	memcpy(info->parent_uuid, d->header.parent_uuid, 16);
	info->parent_timestamp = d->header.parent_timestamp;
	vhd_parent_name_utf8(&d->header, info->parent_name,
			     sizeof(info->parent_name));
	info->parent_timestamp_mismatch = d->parent_ts_mismatch;
	return 0;
}

int vhd_locator_count(const struct vhd_disk *d)
{
	int n = 0;

	if (d->footer.disk_type != VHD_TYPE_DIFF)
		return 0;
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++)
		n += d->header.loc[i].code != 0;
	return n;
}

int vhd_get_locator(const struct vhd_disk *d, int index,
		    struct vhd_locator_info *out)
{
	vhd_clear_error();
	memset(out, 0, sizeof(*out));
	if (d->footer.disk_type != VHD_TYPE_DIFF || index < 0)
		return vhd_set_error(-EINVAL, "%s: no parent locator %d",
				     d->path, index);
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const struct vhd_locator *l = &d->header.loc[i];
		int r;

		if (!l->code || index--)
			continue;
		out->code = l->code;
		vhd_code_str(l->code, out->code_str);
		out->data_space = l->data_space;
		out->data_length = l->data_length;
		out->data_offset = l->data_offset;
		r = vhd_locator_decode(d, i, out->path, sizeof(out->path));
		if (r < 0)
			return vhd_set_error(r,
					     "%s: parent locator %d (%s) "
					     "cannot be decoded: %s",
					     d->path, i, out->code_str,
					     strerror(-r));
		return 0;
	}
	return vhd_set_error(-ENOENT, "%s: no parent locator %d", d->path,
			     index);
}
