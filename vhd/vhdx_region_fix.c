// SPDX-License-Identifier: MIT
/*
 * Writing region table copies. Region tables change only through the log
 * (MS-VHDX): the 16 sectors of a copy (32 for both) go in one entry, so a
 * crash leaves the old contents or the new ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

#define SECTORS (VHDX_REGION_SIZE / VHDX_LOG_SECTOR)

int vhdx_region_write(struct vhdx *x, const uint8_t *table, unsigned copies)
{
	uint64_t offs[2 * SECTORS];
	uint8_t *data = malloc(2 * VHDX_REGION_SIZE);
	size_t n = 0;
	int r;

	if (!data)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (int c = 0; c < 2; c++) {
		if (!(copies & (1u << c)))
			continue;
		memcpy(data + n * VHDX_LOG_SECTOR, table, VHDX_REGION_SIZE);
		for (unsigned i = 0; i < SECTORS; i++)
			offs[n++] = vhdx_region_at[c] +
				    (uint64_t)i * VHDX_LOG_SECTOR;
	}
	/* The view does not change: children keep matching. */
	x->keep_data_guid = true;
	r = vhdx_log_sectors(x, offs, data, n);
	/* Applied in place: the log is empty again. */
	if (r == 0)
		r = vhdx_close_locked(x);
	free(data);
	return r;
}
