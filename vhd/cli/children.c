// SPDX-License-Identifier: MIT
/* Finding children next to an image: the CLI has no BACKING_DIR. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "children.h"
#include "vhd.h"

/* Is @cand a differencing image whose parent is the file @st? */
static int is_child_of(const char *cand, const struct stat *st)
{
	char parent[PATH_MAX];
	struct vhd_disk *d;
	struct stat pst;
	int found = 0;

	if (vhd_open(cand, VHD_OPEN_RDONLY | VHD_OPEN_NOPARENT, &d) < 0)
		return 0;
	if (vhd_type(d) == VHD_TYPE_DIFF &&
	    vhd_find_parent(d, parent, sizeof(parent)) == 0 &&
	    stat(parent, &pst) == 0 && pst.st_dev == st->st_dev &&
	    pst.st_ino == st->st_ino)
		found = 1;
	vhd_close(d);
	return found;
}

int cli_find_child(const char *path, char *child, size_t len)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], cand[PATH_MAX];
	struct dirent *e;
	struct stat st, cst;
	int found = 0;
	DIR *dp;

	if (stat(path, &st) < 0)
		return -errno;
	if (slash)
		snprintf(dir, sizeof(dir), "%.*s",
			 slash == path ? 1 : (int)(slash - path), path);
	else
		snprintf(dir, sizeof(dir), ".");
	dp = opendir(dir);
	if (!dp)
		return -errno;
	while (!found && (e = readdir(dp))) {
		if (!vhd_is_image_name(e->d_name))
			continue;
		if (snprintf(cand, sizeof(cand), "%s/%s", dir, e->d_name) >=
		    (int)sizeof(cand))
			continue;
		if (stat(cand, &cst) < 0 || !S_ISREG(cst.st_mode) ||
		    (cst.st_dev == st.st_dev && cst.st_ino == st.st_ino))
			continue;
		found = is_child_of(cand, &st);
		if (found)
			snprintf(child, len, "%s", cand);
	}
	closedir(dp);
	return found;
}
