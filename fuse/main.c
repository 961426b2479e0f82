// SPDX-License-Identifier: MIT
/*
 * vhdfs: mount a directory of VHD images as flat disk images.
 *   vhdfs [FUSE options] BACKING_DIR MOUNTPOINT [-o options]
 * Options may also follow the positionals, as mount.fuse3 passes them.
 */
#include "vhdfs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

struct vhdfs_config vhdfs_cfg;

enum {
	KEY_RO,
	KEY_DISCARD,
};

/* mount(8)/fstab options that mean nothing to FUSE: drop them quietly. */
static const struct fuse_opt vhdfs_opts[] = {
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("defaults", KEY_DISCARD),
	FUSE_OPT_KEY("auto", KEY_DISCARD),
	FUSE_OPT_KEY("noauto", KEY_DISCARD),
	FUSE_OPT_KEY("user", KEY_DISCARD),
	FUSE_OPT_KEY("nouser", KEY_DISCARD),
	FUSE_OPT_KEY("users", KEY_DISCARD),
	FUSE_OPT_KEY("nofail", KEY_DISCARD),
	FUSE_OPT_KEY("_netdev", KEY_DISCARD),
	FUSE_OPT_END,
};

static char *backing_arg;

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	(void)data, (void)outargs;
	switch (key) {
	case KEY_RO:
		vhdfs_cfg.ro = true;
		return 1;
	case KEY_DISCARD:
		return 0;
	case FUSE_OPT_KEY_OPT:
		if (strncmp(arg, "x-", 2) == 0 ||
		    strncmp(arg, "comment=", 8) == 0)
			return 0;
		return 1;
	case FUSE_OPT_KEY_NONOPT:
		/* The first positional is ours; the second is MOUNTPOINT. */
		if (!backing_arg) {
			backing_arg = strdup(arg);
			return backing_arg ? 0 : -1;
		}
		return 1;
	default:
		return 1;
	}
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [options] BACKING_DIR MOUNTPOINT\n"
		"\n"
		"Shows every *.vhd under BACKING_DIR as a flat disk image.\n"
		"Write commands to MOUNTPOINT/.control, e.g.\n"
		"  echo \"child.vhd base.vhd\" > MOUNTPOINT/.control\n"
		"See vhdfs(1).\n"
		"\n"
		"Options:\n"
		"    -h   --help            print help\n"
		"    -V   --version         print version\n"
		"    -o ro                  mount every image read-only\n",
		prog);
}

/*
 * The kernel reads ahead of buffered readers by the mount's window (the
 * bdi's read_ahead_kb, 128 KiB for FUSE), which also caps its read
 * requests: 1 MiB, the largest request (max_pages 256), halves the round
 * trips of a streaming reader. The window can only be set through sysfs
 * (root) once the mount answers: a thread waits for that with stat(2).
 */
#define VHDFS_READAHEAD_KB 1024

static void *set_readahead(void *arg)
{
	char path[64];
	struct stat st;
	FILE *f;

	(void)arg;
	if (stat(vhdfs_cfg.mountpoint, &st))
		return NULL;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major(st.st_dev), minor(st.st_dev));
	f = fopen(path, "w");
	if (!f)
		return NULL; /* not root: the kernel's window stays */
	fprintf(f, "%d\n", VHDFS_READAHEAD_KB);
	fclose(f);
	return NULL;
}

static void start_readahead_setter(void)
{
	pthread_attr_t attr;
	pthread_t t;

	if (pthread_attr_init(&attr))
		return;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_create(&t, &attr, set_readahead, NULL);
	pthread_attr_destroy(&attr);
}

/* Escape commas for the fsname mount option. */
static int add_fsname(struct fuse_args *args)
{
	char opt[PATH_MAX * 2 + 16] = "-ofsname=";
	size_t o = strlen(opt);

	for (const char *s = vhdfs_cfg.backing; *s && o + 3 < sizeof(opt);
	     s++) {
		if (*s == ',' || *s == '\\')
			opt[o++] = '\\';
		opt[o++] = *s;
	}
	opt[o] = '\0';
	return fuse_opt_add_arg(args, opt);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts = {0};
	struct fuse_loop_config loop = {0};
	struct fuse_session *se;
	struct fuse *fuse;
	int ret = 1, res;

	if (fuse_opt_parse(&args, NULL, vhdfs_opts, opt_proc) != 0)
		return 2;
	if (fuse_parse_cmdline(&args, &opts) != 0) {
		usage(stderr, argv[0]);
		ret = 2;
		goto out_args;
	}
	if (opts.show_help) {
		usage(stdout, argv[0]);
		printf("\nFUSE options:\n");
		fuse_cmdline_help();
		fuse_lib_help(&args);
		ret = 0;
		goto out_opts;
	}
	if (opts.show_version) {
		printf("vhdfs %s\nFUSE library version %s\n", VHDFS_VERSION,
		       fuse_pkgversion());
		ret = 0;
		goto out_opts;
	}
	if (!backing_arg || !opts.mountpoint) {
		usage(stderr, argv[0]);
		ret = 2;
		goto out_opts;
	}
	/* Before fuse_daemonize() moves the working directory to "/". */
	if (!realpath(backing_arg, vhdfs_cfg.backing)) {
		fprintf(stderr, "vhdfs: %s: %s\n", backing_arg,
			strerror(errno));
		goto out_opts;
	}
	vhdfs_cfg.backing_len = strlen(vhdfs_cfg.backing);
	vhdfs_cfg.backing_fd =
		open(vhdfs_cfg.backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (vhdfs_cfg.backing_fd < 0) {
		fprintf(stderr, "vhdfs: %s: %s\n", backing_arg,
			strerror(errno));
		goto out_opts;
	}
	{
		struct stat st;

		if (stat(vhdfs_cfg.backing, &st) || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "vhdfs: %s: not a directory\n",
				backing_arg);
			goto out_opts;
		}
	}
	if (!realpath(opts.mountpoint, vhdfs_cfg.mountpoint))
		snprintf(vhdfs_cfg.mountpoint, sizeof(vhdfs_cfg.mountpoint),
			 "%s", opts.mountpoint);
	vhdfs_cfg.mountpoint_len = strlen(vhdfs_cfg.mountpoint);
	/* The daemon reads BACKING_DIR by path: the mount must not hide it. */
	if (strncmp(vhdfs_cfg.backing, vhdfs_cfg.mountpoint,
		    vhdfs_cfg.mountpoint_len) == 0 &&
	    (vhdfs_cfg.backing[vhdfs_cfg.mountpoint_len] == '\0' ||
	     vhdfs_cfg.backing[vhdfs_cfg.mountpoint_len] == '/' ||
	     vhdfs_cfg.mountpoint_len == 1)) {
		fprintf(stderr,
			"vhdfs: %s: BACKING_DIR must not be MOUNTPOINT or "
			"lie below it\n",
			backing_arg);
		ret = 2;
		goto out_opts;
	}
	vhdfs_cfg.uid = getuid();
	vhdfs_cfg.gid = getgid();

	/* The kernel checks modes (.control is 0600 for the mount owner). */
	if (fuse_opt_add_arg(&args, "-odefault_permissions") ||
	    add_fsname(&args))
		goto out_opts;

	fuse = fuse_new(&args, &vhdfs_ops, sizeof(vhdfs_ops), NULL);
	if (!fuse)
		goto out_opts;
	if (fuse_mount(fuse, opts.mountpoint) != 0)
		goto out_fuse;
	/*
	 * Parent lookups never go through our own mount (a lookup there
	 * waits for this daemon: a deadlock); MOUNTPOINT paths mean the same
	 * files in BACKING_DIR.
	 */
	if (vhd_set_path_redirect(vhdfs_cfg.mountpoint, vhdfs_cfg.backing,
				  vhdfs_mount_dev(vhdfs_cfg.mountpoint))) {
		fprintf(stderr, "vhdfs: %s\n", vhd_errmsg());
		goto out_unmount;
	}
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	if (!opts.foreground) {
		vhdfs_cfg.syslog = true;
		openlog("vhdfs", LOG_PID, LOG_DAEMON);
	}
	se = fuse_get_session(fuse);
	if (fuse_set_signal_handlers(se) != 0)
		goto out_unmount;
	start_readahead_setter();
	if (opts.singlethread) {
		res = fuse_loop(fuse);
	} else {
		/* libfuse's "unset" UINT_MAX draws a warning: use 10, the
		 * documented default. */
		loop.clone_fd = opts.clone_fd;
		loop.max_idle_threads = opts.max_idle_threads == UINT_MAX
						? 10
						: opts.max_idle_threads;
		res = fuse_loop_mt(fuse, &loop);
	}
	/* Unmount (res 0) and SIGTERM/SIGINT (res > 0) are clean exits. */
	ret = res < 0 ? 1 : 0;
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_unmount(fuse);
out_fuse:
	fuse_destroy(fuse);
out_opts:
	free(opts.mountpoint);
out_args:
	fuse_opt_free_args(&args);
	free(backing_arg);
	return ret;
}
