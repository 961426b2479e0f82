// SPDX-License-Identifier: MIT
/*
 * Walking BACKING_DIR for the checks that must see every image (is this
 * a parent? is a job using a file below this directory?): a depth cap
 * would let a child hidden deep enough leave its parent writable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdfs.h"

struct tree {
	char path[PATH_MAX]; /* directory being read, then each entry */
	vhdfs_tree_fn fn;
	void *ctx;
	/* directories on the current path: a bind mount loop ends here */
	struct vhdfs_job_claim *up;
	size_t nup, capup;
};

static bool on_path(const struct tree *t, const struct stat *st)
{
	for (size_t i = 0; i < t->nup; i++)
		if (t->up[i].dev == st->st_dev && t->up[i].ino == st->st_ino)
			return true;
	return false;
}

static int push_up(struct tree *t, const struct stat *st)
{
	if (t->nup == t->capup) {
		size_t cap = t->capup ? t->capup * 2 : 64;
		void *p = realloc(t->up, cap * sizeof(*t->up));

		if (!p)
			return -ENOMEM;
		t->up = p;
		t->capup = cap;
	}
	t->up[t->nup].dev = st->st_dev;
	t->up[t->nup].ino = st->st_ino;
	t->nup++;
	return 0;
}

/* Append "/@name" to t->path (length @len); false when it does not fit. */
static bool join(struct tree *t, size_t len, const char *name, size_t *out)
{
	int n = snprintf(t->path + len, sizeof(t->path) - len, "/%s", name);

	if (n < 0 || (size_t)n >= sizeof(t->path) - len) {
		t->path[len] = '\0';
		return false;
	}
	*out = len + (size_t)n;
	return true;
}

struct names {
	char **v;
	size_t n, cap;
};

static int add_name(struct names *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n] = strdup(name);
	return s->v[s->n++] ? 0 : -ENOMEM;
}

/*
 * Read the directory t->path (length @len): files first, then the
 * subdirectories, with this one closed again, so one descriptor is open
 * at a time however deep the tree.
 */
static int walk_dir(struct tree *t, size_t len)
{
	struct names subs = {0};
	struct dirent *de;
	struct stat st;
	size_t end;
	int fd, ret;
	DIR *d;

	/* O_NOFOLLOW: a directory swapped for a symlink is not followed. */
	fd = open(t->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) || on_path(t, &st) || push_up(t, &st)) {
		close(fd);
		return 0;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		t->nup--;
		return 0;
	}
	ret = 0;
	while (!ret && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    !join(t, len, de->d_name, &end))
			continue;
		/* Never our own mount (MOUNTPOINT inside BACKING_DIR). */
		if (strcmp(t->path, vhdfs_cfg.mountpoint) != 0 &&
		    lstat(t->path, &st) == 0)
			ret = S_ISDIR(st.st_mode) ? add_name(&subs, de->d_name)
						  : t->fn(t->ctx, t->path, &st);
		t->path[len] = '\0';
	}
	closedir(d);
	for (size_t i = 0; i < subs.n; i++) {
		if (!ret && join(t, len, subs.v[i], &end)) {
			ret = walk_dir(t, end);
			t->path[len] = '\0';
		}
		free(subs.v[i]);
	}
	free(subs.v);
	t->nup--;
	return ret;
}

int vhdfs_tree_walk(const char *dir, vhdfs_tree_fn fn, void *ctx)
{
	struct tree *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->ctx = ctx;
	ret = snprintf(t->path, sizeof(t->path), "%s", dir);
	ret = ret < 0 || (size_t)ret >= sizeof(t->path)
		      ? -ENAMETOOLONG
		      : walk_dir(t, (size_t)ret);
	free(t->up);
	free(t);
	return ret;
}
