// SPDX-License-Identifier: MIT
/*
 * Compact and expand jobs, and the images jobs hold exclusively: both
 * move blocks, and a merge fills its ancestor's, so a handle opened before
 * would read the old place (its block table is cached). While one runs,
 * the image refuses every open through the mount, and it starts only when
 * no handle is open.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vhdfs.h"

#define MAX_EXCLUSIVE 64

/* Images a compact/expand job is changing; protected by vhdfs_topo_lock. */
static struct vhdfs_job_claim exclusive[MAX_EXCLUSIVE];
static int nexclusive;

bool vhdfs_image_exclusive(const char *bpath)
{
	struct stat st;

	if (vhdfs_stat(bpath, &st))
		return false;
	for (int i = 0; i < nexclusive; i++)
		if (exclusive[i].dev == st.st_dev &&
		    exclusive[i].ino == st.st_ino)
			return true;
	return false;
}

int vhdfs_exclusive_begin(const char *path, struct vhdfs_job_claim *id,
			  char *msg, size_t msglen)
{
	struct stat st;
	int ret = vhdfs_stat(path, &st);

	if (ret)
		return ret;
	vhdfs_image_settle(path, false); /* a reader's release in flight */
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	pthread_mutex_lock(&vhdfs_topo_lock);
	if (vhdfs_image_users(path) > 0) {
		snprintf(msg, msglen,
			 "%s: open through the mount; close it "
			 "first",
			 path + vhdfs_cfg.backing_len + 1);
		ret = -EBUSY;
	} else if (nexclusive == MAX_EXCLUSIVE) {
		snprintf(msg, msglen, "too many compact/expand jobs at once");
		ret = -EBUSY;
	} else {
		exclusive[nexclusive++] = *id;
	}
	pthread_mutex_unlock(&vhdfs_topo_lock);
	return ret;
}

void vhdfs_exclusive_end(const char *path, const struct vhdfs_job_claim *id)
{
	struct stat st = {.st_dev = id->dev, .st_ino = id->ino};

	/* Cached metadata and handles predate the new layout. */
	vhdfs_image_forget(path, &st);
	pthread_mutex_lock(&vhdfs_topo_lock);
	for (int i = 0; i < nexclusive; i++) {
		if (exclusive[i].dev == id->dev &&
		    exclusive[i].ino == id->ino) {
			exclusive[i] = exclusive[--nexclusive];
			break;
		}
	}
	pthread_mutex_unlock(&vhdfs_topo_lock);
}

/* The library's message, kept before anything else can clear it. */
static int result(int r, char *msg, size_t msglen)
{
	const char *m = vhd_errmsg();

	if (r && m && *m)
		snprintf(msg, msglen, "%s", m);
	return r;
}

int vhdfs_run_compact(const struct vhdfs_job_args *a, vhd_progress_fn progress,
		      void *pctx, char *msg, size_t msglen)
{
	struct vhdfs_job_claim id;
	uint64_t reclaimed = 0;
	int r = vhdfs_exclusive_begin(a->path, &id, msg, msglen);

	if (r)
		return r;
	r = result(vhd_compact(a->path, &reclaimed, progress, pctx), msg,
		   msglen);
	vhdfs_exclusive_end(a->path, &id);
	if (r == 0)
		vhdfs_log("compact of %s reclaimed %" PRIu64 " bytes",
			  a->path + vhdfs_cfg.backing_len + 1, reclaimed);
	return r;
}

int vhdfs_run_expand(const struct vhdfs_job_args *a, vhd_progress_fn progress,
		     void *pctx, char *msg, size_t msglen)
{
	struct vhdfs_job_claim id;
	int r = vhdfs_exclusive_begin(a->path, &id, msg, msglen);

	if (r)
		return r;
	r = result(vhd_expand(a->path, a->size, progress, pctx), msg, msglen);
	vhdfs_exclusive_end(a->path, &id);
	return r;
}
