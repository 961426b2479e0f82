// SPDX-License-Identifier: MIT
/*
 * May an open file still have descriptors when one is closed?
 *
 * FLUSH comes with every close(2) of a descriptor (a dup, a forked
 * child's copy), RELEASE only after the last one and after close(2) has
 * returned. What belongs to the last close and must be done before it
 * returns (a writer's lock let go, so that the next program can open the
 * image at once; a .control line without its newline run) is done at a
 * FLUSH after which the daemon finds the same file among the descriptors
 * of the closing process, the process that opened it, and their
 * descendants (which inherit descriptors), and the closing process's
 * ancestors (which forked it with theirs) no more. Whatever it cannot see
 * makes the answer yes, and the work waits for RELEASE. A holder it misses
 * (a daemonized grandchild, another pid namespace) only has a writer's
 * image opened afresh at its next write (vhdfs_image_relock).
 */
#include "vhdfs.h"

#include <dirent.h>
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_PIDS 256 /* more processes to look at: assume a holder */
/*
 * More descriptors and threads to look at, all processes together: assume
 * a holder. Each costs a readlink or an open; without a bound a caller's
 * processes (CLONE_FILES ones sharing a table of 20000 descriptors) kept a
 * daemon thread busy for seconds at each close, and a few such closes
 * starved every other caller of the mount.
 */
#define MAX_ENTRIES 4096
#define MAX_DEPTH 64 /* ancestors of the closer looked at */

struct scan {
	pid_t pids[MAX_PIDS];
	int n;
	int entries; /* looked at so far */
	bool unsure; /* something could not be read, or too much to read */
};

/* Count one more entry; false (and unsure) once the budget is spent. */
static bool spend(struct scan *s)
{
	if (++s->entries <= MAX_ENTRIES)
		return true;
	s->unsure = true;
	return false;
}

static void add(struct scan *s, pid_t pid)
{
	if (pid <= 0) {
		s->unsure = true;
		return;
	}
	for (int i = 0; i < s->n; i++)
		if (s->pids[i] == pid)
			return;
	if (s->n == MAX_PIDS)
		s->unsure = true;
	else
		s->pids[s->n++] = pid;
}

/*
 * Has @pid a descriptor whose path ends in @want (the path below the
 * mount)? Not the whole path: the mount may appear elsewhere too (a bind
 * mount, a container's view). A same-named file outside only delays the
 * work to the release.
 */
static bool has_fd(struct scan *s, pid_t pid, const char *want)
{
	size_t wlen = strlen(want);
	char dir[48], link[PATH_MAX];
	bool found = false;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d) {
		if (errno != ENOENT && errno != ESRCH)
			s->unsure = true; /* gone: it holds nothing */
		return false;
	}
	while (!found && (e = readdir(d))) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		if (!spend(s))
			break;
		n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		found = (size_t)n >= wlen &&
			memcmp(link + n - (ssize_t)wlen, want, wlen) == 0;
	}
	closedir(d);
	return found;
}

/* Queue the children of every thread of @pid. */
static void add_children(struct scan *s, pid_t pid)
{
	char path[96];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d) {
		if (errno != ENOENT && errno != ESRCH)
			s->unsure = true;
		return;
	}
	while ((e = readdir(d))) {
		FILE *f;
		int child;

		if (e->d_name[0] == '.')
			continue;
		if (!spend(s))
			break;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/children",
			 (int)pid, e->d_name);
		f = fopen(path, "re");
		if (!f) {
			/* A thread that just ended, or no such file at all
			 * (a kernel without CONFIG_PROC_CHILDREN). */
			s->unsure = true;
			continue;
		}
		while (fscanf(f, "%d", &child) == 1)
			add(s, (pid_t)child);
		fclose(f);
	}
	closedir(d);
}

/* The parent of @pid, or 0 when it cannot be read. */
static pid_t parent_of(pid_t pid)
{
	char path[48], buf[512], *p;
	int ppid = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

bool vhdfs_caller_may_hold(const char *path, pid_t opener)
{
	struct scan s = {.n = 0};
	pid_t pid = fuse_get_context()->pid;

	if (!path)
		return true;
	add(&s, pid);
	add(&s, opener);
	for (int i = 0; i < s.n && !s.unsure; i++) {
		if (has_fd(&s, s.pids[i], path))
			return true;
		add_children(&s, s.pids[i]);
	}
	/*
	 * The closer's ancestors, without their other children: a child
	 * closing its inherited copy while the parent that forked it keeps
	 * one, after the opener ended (`bash -c '(cmd) &' 3>.control`).
	 * Those below a live opener were seen as its descendants; a closer
	 * that opened the file itself got it from no ancestor.
	 */
	for (int depth = 0; pid != opener && !s.unsure && depth < MAX_DEPTH;
	     depth++) {
		pid = parent_of(pid);
		if (pid <= 1 || pid == opener)
			break;
		if (has_fd(&s, pid, path))
			return true;
	}
	return s.unsure;
}
