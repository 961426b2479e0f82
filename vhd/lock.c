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

struct conflict {
	off_t byte; /* held by another open file description: refuse */
	const char *why;
};

/* Hold @hold (shared), then refuse when a @conflicts byte is held. */
static int take(int fd, const char *path, const off_t *hold, size_t nhold,
		const struct conflict *conflicts, size_t nconflicts)
{
	for (size_t i = 0; i < nhold; i++) {
		int r = set_shared(fd, hold[i]);

		if (r == 1)
			return 0; /* no OFD locks here */
		if (r < 0)
			return busy(path, "locked by another program");
	}
	for (size_t i = 0; i < nconflicts; i++)
		if (held_elsewhere(fd, conflicts[i].byte))
			return busy(path, conflicts[i].why);
	return 0;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

int vhd_lock_writer(int fd, const char *path)
{
	static const off_t hold[] = {PERM_BASE + PERM_READ,
				     PERM_BASE + PERM_WRITE,
				     SHARED_BASE + PERM_WRITE};
	static const struct conflict c[] = {
		{PERM_BASE + PERM_WRITE, VHD_MSG_WRITTEN_ELSEWHERE},
		{SHARED_BASE + PERM_WRITE,
		 "another program has it open and does not allow writes (the "
		 "parent of an open chain?)"},
		{SHARED_BASE + PERM_READ,
		 "another program has it open exclusively"},
	};

	return take(fd, path, hold, N(hold), c, N(c));
}

int vhd_lock_parent(int fd, const char *path)
{
	static const off_t hold[] = {PERM_BASE + PERM_READ,
				     SHARED_BASE + PERM_WRITE};
	static const struct conflict c[] = {
		{PERM_BASE + PERM_WRITE,
		 VHD_MSG_WRITTEN_ELSEWHERE ", so it cannot serve as a parent"},
		{SHARED_BASE + PERM_READ,
		 "another program has it open exclusively"},
	};

	return take(fd, path, hold, N(hold), c, N(c));
}

bool vhd_lock_written_elsewhere(int fd)
{
	return held_elsewhere(fd, PERM_BASE + PERM_WRITE);
}
