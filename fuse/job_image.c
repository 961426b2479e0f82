// SPDX-License-Identifier: MIT
/* Run functions of the merge and convert jobs (see vhdfs.h, jobs.c). */
#include "vhdfs.h"

int vhdfs_run_merge(const struct vhdfs_job_args *a, vhd_progress_fn progress,
		    void *pctx, char *msg, size_t msglen)
{
	struct vhdfs_job_claim id;
	struct stat cst, ast;
	bool have_c, have_a;
	int r;

	/* The ancestor's blocks fill: no handle of it may be open. */
	if (a->path2[0]) {
		r = vhdfs_exclusive_begin(a->path2, &id, msg, msglen);
		if (r)
			return r;
	}
	have_c = vhdfs_stat(a->path, &cst) == 0;
	have_a = a->path2[0] && vhdfs_stat(a->path2, &ast) == 0;
	r = vhd_merge(a->path, a->path2[0] ? a->path2 : NULL, progress, pctx);
	if (a->path2[0])
		vhdfs_exclusive_end(a->path2, &id);
	/* Shared handles of the ancestor predate its new content. */
	if (a->path2[0])
		vhdfs_image_forget(a->path2, have_a ? &ast : NULL);
	vhdfs_image_forget(a->path, have_c ? &cst : NULL);
	return r;
}

int vhdfs_run_convert(const struct vhdfs_job_args *a, vhd_progress_fn progress,
		      void *pctx, char *msg, size_t msglen)
{
	(void)msg, (void)msglen;
	return vhd_convert_ex(a->path, a->path2, &a->params, &a->opts, progress,
			      pctx);
}
