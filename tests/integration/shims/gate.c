// SPDX-License-Identifier: MIT
/*
 * LD_PRELOAD shim for race tests: realpath() of a path containing
 * "gate.vhd" pauses while the file $VHDFS_TEST_GATE exists (creating
 * $VHDFS_TEST_GATE.reached first), so a test can change the file system
 * at a known point in the middle of a daemon command. Bounded: 60 s.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *realpath(const char *path, char *resolved)
{
	static char *(*real)(const char *, char *);
	const char *gate = getenv("VHDFS_TEST_GATE");

	if (!real)
		real = (char *(*)(const char *, char *))dlsym(RTLD_NEXT,
							      "realpath");
	if (gate && path && strstr(path, "gate.vhd") && !access(gate, F_OK)) {
		char reached[4096];
		int fd;

		snprintf(reached, sizeof(reached), "%s.reached", gate);
		fd = open(reached, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
		for (int i = 0; i < 1200 && !access(gate, F_OK); i++)
			usleep(50000);
	}
	return real(path, resolved);
}
