// SPDX-License-Identifier: MIT
/*
 * Compacting a dynamic VHDX: payload blocks holding only zeros become
 * NOT_PRESENT (which reads zeros) through the log, and only once that is
 * durable is their space given back to the file system (hole punching:
 * the blocks stay where they are, so nothing moves). The view does not
 * change, so the DataWriteGuid is kept: children still match.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vhdx_i.h"

static bool all_zero(const uint8_t *buf, size_t len)
{
	return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

static uint64_t allocated_bytes(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Blocks whose state was set to NOT_PRESENT; their file offsets. */
struct dropped {
	uint64_t *off;
	size_t n;
};

static int scan(struct vhd_disk *d, struct dropped *dr, struct vhd_progress *p)
{
	struct vhdx *x = d->vhdx;
	uint32_t bs = x->meta.block_size;
	uint8_t *buf = malloc(bs);
	int r = 0;

	dr->off = calloc(x->payload_blocks ? x->payload_blocks : 1,
			 sizeof(*dr->off));
	if (!buf || !dr->off) {
		free(buf);
		return vhd_set_error(-ENOMEM, "out of memory");
	}
	for (uint64_t b = 0; r == 0 && b < x->payload_blocks; b++) {
		uint64_t idx = vhdx_payload_index(x, b);
		uint64_t e = x->bat[idx];
		uint64_t len = d->size - b * bs < bs ? d->size - b * bs : bs;

		if (VHDX_BAT_STATE(e) != VHDX_PAYLOAD_FULLY_PRESENT)
			continue;
		r = vhdx_pread_file(x, buf, (size_t)len, VHDX_BAT_OFFSET(e));
		if (r == 0 && all_zero(buf, (size_t)len)) {
			r = vhdx_set_bat(x, idx, VHDX_PAYLOAD_NOT_PRESENT);
			if (r == 0)
				dr->off[dr->n++] = VHDX_BAT_OFFSET(e);
		}
		if (r == 0)
			r = vhd_progress_add(p, 1);
	}
	free(buf);
	return r;
}

int vhdx_compact(struct vhd_disk *d, uint64_t *reclaimed,
		 vhd_progress_fn progress, void *ctx)
{
	struct vhdx *x = d->vhdx;
	struct vhd_progress p = {.fn = progress,
				 .ctx = ctx,
				 .path = d->path,
				 .what = "compaction",
				 .total = x->payload_blocks};
	struct dropped dr = {0};
	uint64_t before;
	int r;

	if (d->footer.disk_type != VHD_TYPE_DYNAMIC)
		return vhd_set_error(-EOPNOTSUPP,
				     "%s: compaction of a %s VHDX is not "
				     "supported (only dynamic ones)",
				     d->path,
				     d->footer.disk_type == VHD_TYPE_FIXED
					     ? "fixed"
					     : "differencing");
	pthread_rwlock_wrlock(&d->lock);
	before = allocated_bytes(x->fd);
	x->keep_data_guid = true;
	r = vhd_progress_add(&p, 0);
	if (r == 0)
		r = scan(d, &dr, &p);
	if (r == 0 && dr.n)
		r = vhdx_begin_session(x);
	/* Also after a cancel: what was dropped so far is kept. */
	if (x->ndirty) {
		int fr = vhdx_flush_locked(x);

		if (r == 0)
			r = fr;
	}
	/* The BAT no longer points at them (durable): give the space back. */
	for (size_t i = 0; r == 0 && i < dr.n; i++) {
		uint64_t bs = x->meta.block_size;

		if (fallocate(x->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)dr.off[i], (off_t)bs) < 0 &&
		    errno != EOPNOTSUPP)
			r = vhd_set_error(-errno, "%s: cannot free a block: %s",
					  d->path, strerror(errno));
	}
	if (r == 0 && reclaimed) {
		uint64_t after = allocated_bytes(x->fd);

		*reclaimed = before > after ? before - after : 0;
	}
	pthread_rwlock_unlock(&d->lock);
	free(dr.off);
	if (r == 0)
		vhd_progress_end(&p);
	return r;
}
