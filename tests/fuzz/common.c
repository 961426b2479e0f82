// SPDX-License-Identifier: MIT
/* Scratch files and input decoding shared by the fuzz targets. */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static char dir[4096];

static void rm_dir(void)
{
	fz_clean();
	rmdir(dir);
}

const char *fz_dir(void)
{
	const char *base = getenv("FUZZ_TMPDIR");

	if (dir[0])
		return dir;
	if (!base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	if (!base)
		base = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/vhdfuzz.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror(dir);
		abort();
	}
	atexit(rm_dir);
	return dir;
}

const char *fz_path(int slot, const char *name)
{
	static char buf[4][4200];

	snprintf(buf[slot & 3], sizeof(buf[0]), "%s/%s", fz_dir(), name);
	return buf[slot & 3];
}

void fz_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) ||
	    close(fd) < 0) {
		perror(path);
		abort();
	}
}

void fz_clean(void)
{
	DIR *d = opendir(fz_dir());
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: broken promise: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

uint64_t fz_take(struct fz_in *in, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		if (in->pos < in->len)
			v |= (uint64_t)in->p[in->pos++] << (8 * i);
	return v;
}
