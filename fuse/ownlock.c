// SPDX-License-Identifier: MIT
/*
 * The library's lock messages cannot tell who holds an image's write lock
 * (OFD locks have no owner to ask), so they say "another program". The
 * daemon knows its own writers: when the image is open for writing through
 * the mount, that is what the message says.
 */
#include <stdio.h>
#include <string.h>

#include "vhdfs.h"

#define OURS "open for writing through the mount"

void vhdfs_own_writer_msg(char *msg, size_t len, const char *path)
{
	static const char in_use[] = ": in use: ";
	size_t plen, wlen = strlen(VHD_MSG_WRITTEN_ELSEWHERE);
	char *p, *from = msg, rest[2048];

	if (!path || !*path)
		return;
	plen = strlen(path);
	while ((p = strstr(from, path))) {
		char *w = p + plen + sizeof(in_use) - 1;

		from = p + 1;
		if (strncmp(p + plen, in_use, sizeof(in_use) - 1) != 0 ||
		    strncmp(w, VHD_MSG_WRITTEN_ELSEWHERE, wlen) != 0)
			continue;
		if (vhdfs_image_writers(path) <= 0)
			return;
		snprintf(rest, sizeof(rest), "%s", w + wlen);
		snprintf(w, len - (size_t)(w - msg), "%s%s", OURS, rest);
		from = w;
	}
}
