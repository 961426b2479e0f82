// SPDX-License-Identifier: MIT
/*
 * Restoring a region table copy from the other one. Region tables change
 * only through the log (MS-VHDX): the 16 sectors of the copy go in one
 * entry, so a crash leaves the damaged copy or the restored one, and the
 * good copy is never written.
 */
#include <errno.h>

#include "vhdx_i.h"

#define SECTORS (VHDX_REGION_SIZE / VHDX_LOG_SECTOR)

int vhdx_region_restore(struct vhdx *x, int good, const uint8_t *table)
{
	uint64_t at = good == 1 ? VHDX_REGION2_OFF : VHDX_REGION1_OFF;
	uint64_t offs[SECTORS];
	int r;

	for (unsigned i = 0; i < SECTORS; i++)
		offs[i] = at + (uint64_t)i * VHDX_LOG_SECTOR;
	/* The view does not change: children keep matching. */
	x->keep_data_guid = true;
	r = vhdx_log_sectors(x, offs, table, SECTORS);
	/* Applied in place: the log is empty again. */
	if (r == 0)
		r = vhdx_close_locked(x);
	return r;
}
