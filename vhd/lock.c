// SPDX-License-Identifier: MIT
/*
 * Cross-process image locks: open file description (OFD) locks on single
 * bytes, laid out as qemu lays out its own so that qemu and we see each
 * other: byte 100 + p is held (shared) by whoever holds permission p, byte
 * 200 + p by whoever does not let others have it. Each side sets its own
 * bytes first and then tests the other side's, so of two racing openers at
 * least one sees the other. Locks of one open file description never
 * conflict with each other; they go with its last descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vhd_i.h"

#define PERM_BASE 100
#define SHARED_BASE 200
#define PERM_READ 0  /* consistent read */
#define PERM_WRITE 1 /* write */

/* 0, 1 when the file system has no OFD locks, -errno. */
static int set_shared(int fd, off_t byte)
{
	struct flock fl = {
		.l_type = F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOLCK || errno == EOPNOTSUPP ||
	    errno == ENOSYS)
		return 1;
	return -errno;
}

/* Does another open file description hold @byte? */
static bool held_elsewhere(int fd, off_t byte)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

static int busy(const char *path, const char *why)
{
	return vhd_set_error(-EBUSY, "%s: in use: %s (%s)", path, why,
			     strerror(EBUSY));
}

int vhd_lock_writer(int fd, const char *path)
{
	int r = set_shared(fd, PERM_BASE + PERM_READ);

	if (r == 1)
		return 0;
	if (r == 0)
		r = set_shared(fd, PERM_BASE + PERM_WRITE);
	if (r == 0)
		r = set_shared(fd, SHARED_BASE + PERM_WRITE);
	if (r < 0)
		return busy(path, "locked by another program");
	if (held_elsewhere(fd, PERM_BASE + PERM_WRITE))
		return busy(path, "open for writing by another program");
	if (held_elsewhere(fd, SHARED_BASE + PERM_WRITE))
		return busy(path,
			    "another program has it open and does not "
			    "allow writes (the parent of an open chain?)");
	if (held_elsewhere(fd, SHARED_BASE + PERM_READ))
		return busy(path, "another program has it open exclusively");
	return 0;
}

int vhd_lock_parent(int fd, const char *path)
{
	int r = set_shared(fd, PERM_BASE + PERM_READ);

	if (r == 1)
		return 0;
	if (r == 0)
		r = set_shared(fd, SHARED_BASE + PERM_WRITE);
	if (r < 0)
		return busy(path, "locked by another program");
	if (held_elsewhere(fd, PERM_BASE + PERM_WRITE))
		return busy(path, "open for writing by another program, so it "
				  "cannot serve as a parent");
	if (held_elsewhere(fd, SHARED_BASE + PERM_READ))
		return busy(path, "another program has it open exclusively");
	return 0;
}

bool vhd_lock_written_elsewhere(int fd)
{
	return held_elsewhere(fd, PERM_BASE + PERM_WRITE);
}
