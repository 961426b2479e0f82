// SPDX-License-Identifier: MIT
/* Which file names are disk images: the one rule the mount, merge's
 * dependency scan and the CLI's child scan share. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "vhd.h"

bool vhd_is_image_name(const char *name)
{
	/* .avhd: Hyper-V 2008 R2 snapshots, differencing VHDs. */
	static const char *const ext[] = {".vhd", ".avhd", ".vhdx", ".avhdx"};
	const char *base = strrchr(name, '/');
	size_t n;

	base = base ? base + 1 : name;
	n = strlen(base);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t e = strlen(ext[i]);

		if (n > e && strcasecmp(base + n - e, ext[i]) == 0)
			return true;
	}
	return false;
}
