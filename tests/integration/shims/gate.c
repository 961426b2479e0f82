// SPDX-License-Identifier: MIT
/*
 * LD_PRELOAD shim for race tests: realpath() of a path containing
 * "gate.vhd", mkdir/mkdirat/rmdir/unlinkat of one containing "gatedir",
 * openat64 of one containing "gateopen" and stat64 of one ending in
 * "gatelinkdir" pause while the file $VHDFS_TEST_GATE exists (creating
 * $VHDFS_TEST_GATE.reached first), so a test can change the file system
 * at a known point in the middle of a daemon command. Bounded: 60 s.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Pause at the gate when @path contains @mark. */
static void gate(const char *path, const char *mark)
{
	const char *gate = getenv("VHDFS_TEST_GATE");

	if (gate && path && strstr(path, mark) && !access(gate, F_OK)) {
		char reached[4096];
		int fd;

		snprintf(reached, sizeof(reached), "%s.reached", gate);
		fd = open(reached, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
		for (int i = 0; i < 1200 && !access(gate, F_OK); i++)
			usleep(50000);
	}
}

#define REAL(name)                                                             \
	static __typeof__(name) *real_##name;                                  \
	if (!real_##name)                                                      \
	real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

char *realpath(const char *path, char *resolved)
{
	REAL(realpath);
	gate(path, "gate.vhd");
	return real_realpath(path, resolved);
}

int mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	gate(path, "gatedir");
	return real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	REAL(mkdirat);
	gate(path, "gatedir");
	return real_mkdirat(dirfd, path, mode);
}

int rmdir(const char *path)
{
	REAL(rmdir);
	gate(path, "gatedir");
	return real_rmdir(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	REAL(unlinkat);
	gate(path, "gatedir");
	return real_unlinkat(dirfd, path, flags);
}

/* The daemon is built with _FILE_OFFSET_BITS=64: openat is openat64. */
int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	REAL(openat64);
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	gate(path, "gateopen");
	return real_openat64(dirfd, path, flags, mode);
}

int stat64(const char *path, struct stat64 *st)
{
	size_t n = strlen(path);

	REAL(stat64);
	if (n >= 11 && strcmp(path + n - 11, "gatelinkdir") == 0)
		gate(path, "gatelinkdir");
	return real_stat64(path, st);
}
