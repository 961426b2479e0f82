/* SPDX-License-Identifier: MIT */
/* Children of an image, as far as the CLI can see them without a mount. */
#ifndef VHD_CLI_CHILDREN_H
#define VHD_CLI_CHILDREN_H

#include <stddef.h>

/*
 * Look for a differencing image (*.vhd, any case) in the directory of
 * @path whose parent resolves to @path (same inode). Returns 1 with the
 * child's path in @child, 0 when there is none, or -errno when @path or
 * its directory cannot be read. Images that do not open are skipped.
 */
int cli_find_child(const char *path, char *child, size_t len);

#endif
