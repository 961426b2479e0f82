// SPDX-License-Identifier: MIT
/*
 * Opening image files: every path the library opens (a leaf, a parent
 * candidate named by a locator) is walked one component at a time, so a
 * path leading into an excluded tree (the daemon's own mount) is redirected
 * before the kernel is ever asked to look a name up there, and the file is
 * opened before it is inspected (no stat-then-open window).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vhd_i.h"

/* Symbolic links and redirections followed in one walk, as the kernel. */
#define MAX_HOPS 40

/* Pseudo file systems whose "regular files" are never disk images. */
static const unsigned long pseudo_fs[] = {
	0x9fa0,	    /* procfs */
	0x62656572, /* sysfs */
	0x64626720, /* debugfs */
	0x74726163, /* tracefs */
	0x73636673, /* securityfs */
	0xde5e81e4, /* efivarfs */
	0x62656570, /* configfs */
	0x63677270, /* cgroup2 */
	0xcafe4a11, /* bpf */
};

static pthread_rwlock_t redirect_lock = PTHREAD_RWLOCK_INITIALIZER;
static char *redirect_from; /* protected by redirect_lock */
static char *redirect_to;
static dev_t redirect_dev;

int vhd_set_path_redirect(const char *from, const char *to, dev_t dev)
{
	char *f = NULL, *t = NULL;

	vhd_clear_error();
	if (from) {
		if (from[0] != '/' || !to || to[0] != '/')
			return vhd_set_error(-EINVAL,
					     "redirect paths must be absolute");
		f = strdup(from);
		t = strdup(to);
		if (!f || !t) {
			free(f);
			free(t);
			return vhd_set_error(-ENOMEM, "out of memory");
		}
		/* "/a/b/" and "/a/b" are the same tree. */
		for (size_t n = strlen(f); n > 1 && f[n - 1] == '/'; n--)
			f[n - 1] = '\0';
	}
	pthread_rwlock_wrlock(&redirect_lock);
	free(redirect_from);
	free(redirect_to);
	redirect_from = f;
	redirect_to = t;
	redirect_dev = f ? dev : 0;
	pthread_rwlock_unlock(&redirect_lock);
	return 0;
}

/*
 * fstat(2) of a walked component, opened O_PATH. Its device is read first
 * from the attributes the kernel has (AT_STATX_DONT_SYNC): on the
 * excluded device (our own mount, reached through a bind mount of it)
 * -EXDEV before a fresh stat would send the mount a request, which the
 * daemon serving the caller may never answer. 0 or -errno.
 */
static int comp_stat(int fd, struct stat *st)
{
	struct statx sx;

	if (redirect_dev &&
	    statx(fd, "",
		  AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC,
		  STATX_TYPE, &sx) == 0 &&
	    makedev(sx.stx_dev_major, sx.stx_dev_minor) == redirect_dev)
		return -EXDEV;
	return fstat(fd, st) < 0 ? -errno : 0;
}

/* Remainder of canonical @p after the redirect source, or NULL. */
static const char *redirected(const char *p)
{
	size_t n;

	if (!redirect_from)
		return NULL;
	n = strlen(redirect_from);
	if (n == 1) /* "/": everything */
		return p;
	if (strncmp(p, redirect_from, n) != 0)
		return NULL;
	if (p[n] == '\0' || p[n] == '/')
		return p + n;
	return NULL;
}

struct walk {
	int dirfd;	      /* O_PATH descriptor of the directory reached */
	char canon[PATH_MAX]; /* its canonical path ("" for "/") */
	char *rest;	      /* components still to walk, malloc'ed */
	int hops;
	bool moved; /* redirected: report canon, not the given path */
};

/* Replace the walk's remaining path by @head + "/" + @tail. */
static int set_rest(struct walk *w, const char *head, const char *tail)
{
	char *s;

	if (asprintf(&s, "%s/%s", head, tail) < 0)
		return -ENOMEM;
	free(w->rest);
	w->rest = s;
	return 0;
}

static int restart_at_root(struct walk *w)
{
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = fd;
	w->canon[0] = '\0';
	return 0;
}

/* Next component of w->rest into @comp: 1, 0 at the end, or -errno. */
static int next_comp(struct walk *w, char *comp, size_t len, bool *last)
{
	char *p = w->rest, *end;
	size_t n;

	while (*p == '/')
		p++;
	if (!*p)
		return 0;
	end = strchr(p, '/');
	n = end ? (size_t)(end - p) : strlen(p);
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(comp, p, n);
	comp[n] = '\0';
	p = end ? end : p + strlen(p);
	memmove(w->rest, p, strlen(p) + 1);
	for (p = w->rest; *p == '/'; p++)
		;
	*last = *p == '\0';
	return 1;
}

/* Follow symlink @fd (an O_PATH descriptor) found as the next component. */
static int follow_link(struct walk *w, int fd)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
	int r;

	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (++w->hops > MAX_HOPS)
		return -ELOOP;
	r = set_rest(w, target, w->rest);
	if (r == 0 && target[0] == '/')
		r = restart_at_root(w);
	return r;
}

/*
 * Walk @path up to its last component: on success w->dirfd is the
 * directory holding it (canonical path w->canon) and @name its name.
 */
static int walk_to_parent(struct walk *w, const char *path, char *name,
			  size_t nlen)
{
	char comp[NAME_MAX + 1], cand[PATH_MAX + NAME_MAX + 2];
	struct stat st;
	bool last;
	int fd, r;

	if (!*path)
		return -ENOENT;
	if (path[0] == '/') {
		w->rest = strdup(path);
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		if (asprintf(&w->rest, "%s/%s", cwd, path) < 0)
			w->rest = NULL;
	}
	if (!w->rest)
		return -ENOMEM;
	r = restart_at_root(w);
	while (r == 0) {
		r = next_comp(w, comp, sizeof(comp), &last);
		if (r < 0)
			return r;
		if (r == 0) /* the path named a directory ("/", "x/..") */
			return -EISDIR;
		r = 0;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *slash = strrchr(w->canon, '/');

			if (!w->canon[0])
				continue; /* "/.." is "/" */
			fd = openat(w->dirfd, "..",
				    O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				return -errno;
			close(w->dirfd);
			w->dirfd = fd;
			*slash = '\0';
			continue;
		}
		snprintf(cand, sizeof(cand), "%s/%s", w->canon, comp);
		const char *tail = redirected(cand);

		if (tail) {
			/* Never look a name up inside the excluded tree. */
			if (++w->hops > MAX_HOPS)
				return -ELOOP;
			w->moved = true;
			char *head;

			if (asprintf(&head, "%s%s", redirect_to, tail) < 0)
				return -ENOMEM;
			r = set_rest(w, head, w->rest);
			free(head);
			if (r == 0)
				r = restart_at_root(w);
			continue;
		}
		if (last) {
			fd = openat(w->dirfd, comp,
				    O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return -errno;
			r = comp_stat(fd, &st);
			if (r == 0 && S_ISLNK(st.st_mode)) {
				r = follow_link(w, fd);
				close(fd);
				continue;
			}
			close(fd);
			if (r)
				return r;
			if (strlen(comp) >= nlen)
				return -ENAMETOOLONG;
			strcpy(name, comp);
			return 0;
		}
		fd = openat(w->dirfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		r = comp_stat(fd, &st);
		if (r) {
			close(fd);
			return r;
		}
		if (S_ISLNK(st.st_mode)) {
			r = follow_link(w, fd);
			close(fd);
			continue;
		}
		if (redirect_dev && st.st_dev == redirect_dev) {
			close(fd);
			return -EXDEV;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(fd);
			return -ENOTDIR;
		}
		close(w->dirfd);
		w->dirfd = fd;
		if (strlen(cand) >= sizeof(w->canon)) {
			r = -ENAMETOOLONG;
			break;
		}
		strcpy(w->canon, cand);
	}
	return r;
}

static bool on_pseudo_fs(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return false;
	for (size_t i = 0; i < sizeof(pseudo_fs) / sizeof(pseudo_fs[0]); i++)
		if ((unsigned long)sf.f_type == pseudo_fs[i])
			return true;
	return false;
}

int vhd_file_open(const char *path, int oflags, struct stat *st, char **used)
{
	struct walk w = {.dirfd = -1};
	char name[NAME_MAX + 1];
	const char *why = NULL;
	int fd = -1, r;

	pthread_rwlock_rdlock(&redirect_lock);
	r = walk_to_parent(&w, path, name, sizeof(name));
	if (r == 0) {
		/* Not blocking on a FIFO or device swapped in meanwhile. */
		fd = openat(w.dirfd, name,
			    oflags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				    O_CLOEXEC);
		if (fd < 0)
			r = -errno;
	}
	if (r == 0 && fstat(fd, st) < 0)
		r = -errno;
	if (r == 0) {
		if (!S_ISREG(st->st_mode))
			why = "not a regular file";
		else if (on_pseudo_fs(fd))
			why = "not a regular file (on a kernel pseudo file "
			      "system such as /proc or /sys)";
		else if (redirect_dev && st->st_dev == redirect_dev)
			r = -EXDEV;
	}
	if (r == 0 && !why && fcntl(fd, F_SETFL, oflags & ~O_NONBLOCK) < 0)
		r = -errno;
	if (r == 0 && !why && used) {
		if (w.moved) {
			if (asprintf(used, "%s/%s", w.canon, name) < 0)
				r = -ENOMEM;
		} else {
			*used = strdup(path);
			if (!*used)
				r = -ENOMEM;
		}
	}
	pthread_rwlock_unlock(&redirect_lock);
	if (w.dirfd >= 0)
		close(w.dirfd);
	free(w.rest);
	if (why) {
		close(fd);
		return vhd_set_error(-EINVAL, "%s: %s", path, why);
	}
	if (r == -EXDEV) {
		if (fd >= 0)
			close(fd);
		return vhd_set_error(-EXDEV,
				     "%s: leads into the vhdfs mount itself; "
				     "not opened",
				     path);
	}
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return vhd_set_error(r, "%s: %s", path, strerror(-r));
	}
	return fd;
}

int vhd_dir_open(const char *path)
{
	struct walk w = {.dirfd = -1};
	char name[NAME_MAX + 1];
	struct stat st;
	int fd = -1, r;

	pthread_rwlock_rdlock(&redirect_lock);
	r = walk_to_parent(&w, path, name, sizeof(name));
	if (r == -EISDIR) { /* "/", "x/..": the walk stopped on it */
		strcpy(name, ".");
		r = 0;
	}
	/* O_PATH first: the device is checked before anything is read. */
	if (r == 0) {
		fd = openat(w.dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
	}
	if (r == 0)
		r = comp_stat(fd, &st);
	if (r == 0 && !S_ISDIR(st.st_mode))
		r = -ENOTDIR;
	if (r == 0 && redirect_dev && st.st_dev == redirect_dev)
		r = -EXDEV;
	pthread_rwlock_unlock(&redirect_lock);
	if (r == 0) {
		int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0)
			r = -errno;
		close(fd);
		fd = dfd;
	}
	if (w.dirfd >= 0)
		close(w.dirfd);
	free(w.rest);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return vhd_set_error(r, "%s: %s", path, strerror(-r));
	}
	return fd;
}

int vhd_realpath(const char *path, char *out, size_t len)
{
	struct walk w = {.dirfd = -1};
	char name[NAME_MAX + 1];
	int r;

	vhd_clear_error();
	pthread_rwlock_rdlock(&redirect_lock);
	r = walk_to_parent(&w, path, name, sizeof(name));
	pthread_rwlock_unlock(&redirect_lock);
	if (r == 0 && (size_t)snprintf(out, len, "%s/%s", w.canon, name) >= len)
		r = -ENAMETOOLONG;
	if (w.dirfd >= 0)
		close(w.dirfd);
	free(w.rest);
	if (r < 0)
		return vhd_set_error(r, "%s: %s", path, strerror(-r));
	return 0;
}
