// SPDX-License-Identifier: MIT
/* Run functions of the merge and convert jobs (see vhdfs.h, jobs.c). */
#include "vhdfs.h"

int vhdfs_run_merge(const struct vhdfs_job_args *a, vhd_progress_fn progress,
		    void *pctx, char *msg, size_t msglen)
{
	int r;

	(void)msg, (void)msglen;
	r = vhd_merge(a->path, a->path2[0] ? a->path2 : NULL, progress, pctx);
	/* Shared handles of the ancestor predate its new content. */
	if (a->path2[0])
		vhdfs_image_forget(a->path2);
	vhdfs_image_forget(a->path);
	return r;
}

int vhdfs_run_convert(const struct vhdfs_job_args *a, vhd_progress_fn progress,
		      void *pctx, char *msg, size_t msglen)
{
	(void)msg, (void)msglen;
	return vhd_convert(a->path, a->path2, &a->params, progress, pctx);
}
