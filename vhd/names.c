// SPDX-License-Identifier: MIT
/* Which file names are disk images: the one rule the mount, merge's
 * dependency scan and the CLI's child scan share; and the names Windows
 * takes for one another. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vhdx_i.h"

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

uint64_t vhd_max_size_of_name(const char *name)
{
	return vhdx_is_vhdx_name(name) ? VHD_MAX_SIZE_VHDX : VHD_MAX_SIZE;
}

int vhd_each_case_variant(const char *path,
			  int (*try)(void *ctx, const char *cand), void *ctx)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char dir[4096], cand[8192];
	struct dirent *de;
	DIR *dh;
	int fd, r = 1;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 0,
		 path);
	/* Listed as the library opens files: never in our mount. */
	fd = vhd_dir_open(!slash ? "." : slash == path ? "/" : dir);
	if (fd < 0)
		return 1;
	dh = fdopendir(fd);
	if (!dh) {
		close(fd);
		return 1;
	}
	while (r > 0 && (de = readdir(dh))) {
		if (strcasecmp(de->d_name, base) != 0 ||
		    strcmp(de->d_name, base) == 0)
			continue;
		snprintf(cand, sizeof(cand), "%.*s%s", (int)(base - path), path,
			 de->d_name);
		r = try(ctx, cand);
	}
	closedir(dh);
	return r;
}
