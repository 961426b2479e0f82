// SPDX-License-Identifier: MIT
/* Progress reports of the long operations, and their cancel requests. */
#include <errno.h>

#include "vhd_i.h"

int vhd_progress_add(struct vhd_progress *p, uint64_t add)
{
	p->done += add;
	if (p->done > p->total)
		p->done = p->total;
	if (p->fn && p->fn(p->ctx, p->done, p->total))
		return vhd_set_error(-ECANCELED, "%s: %s cancelled", p->path,
				     p->what);
	return 0;
}

void vhd_progress_end(struct vhd_progress *p)
{
	p->done = p->total;
	/* Done: the last report cannot cancel any more. */
	if (p->fn)
		p->fn(p->ctx, p->total, p->total);
}
