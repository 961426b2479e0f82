// SPDX-License-Identifier: MIT
/* Creating fixed, dynamic and differencing images, atomically. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "vhdx_i.h"

#define CREATOR_VERSION 0x000A0000u /* what Windows 10 Hyper-V writes */
#define BAT_OFFSET 1536u
#define FILL_CHUNK 65536u
/* Smaller blocks are read (other writers) but not made: no peer uses them. */
#define CREATE_MIN_BLOCK_SIZE (512u << 10)

/*
 * Images are built as an unnamed file (O_TMPFILE), or where the file
 * system has none under a short hidden name beside the target, and linked
 * into place only when complete, so a failure leaves nothing and an
 * existing file is never replaced.
 */
#define TMP_PREFIX ".vhdfs-tmp-"

struct tmpfile {
	char dir[PATH_MAX];  /* directory of the target */
	char path[PATH_MAX]; /* hidden name, or "" for an unnamed file */
	int fd;
};

static int target_dir(const char *target, char *dir, size_t len)
{
	const char *slash = strrchr(target, '/');
	int n;

	if (!slash)
		n = snprintf(dir, len, ".");
	else if (slash == target)
		n = snprintf(dir, len, "/");
	else
		n = snprintf(dir, len, "%.*s", (int)(slash - target), target);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * Remove hidden temporaries of @dir whose creator is gone: a live one
 * holds an flock until it has its name.
 */
static void sweep_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat a, b;
		int fd;

		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			continue;
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &a) == 0 && S_ISREG(a.st_mode) &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    fstatat(dirfd(d), de->d_name, &b, AT_SYMLINK_NOFOLLOW) ==
			    0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			unlinkat(dirfd(d), de->d_name, 0);
		close(fd);
	}
	closedir(d);
}

/* A hidden name in @t->dir, created, locked and still linked. */
static int tmp_open_named(const char *target, struct tmpfile *t)
{
	sweep_stale(t->dir);
	for (int tries = 0; tries < 64; tries++) {
		struct stat st;
		uuid_t u;
		int n;

		uuid_generate(u);
		n = snprintf(t->path, sizeof(t->path),
			     "%s/" TMP_PREFIX "%02x%02x%02x%02x", t->dir, u[0],
			     u[1], u[2], u[3]);
		if (n < 0 || (size_t)n >= sizeof(t->path))
			return vhd_set_error(-ENAMETOOLONG, "%s: path too long",
					     target);
		/* 0666: the kernel applies the umask (and default ACLs). */
		t->fd = open(t->path,
			     O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			     0666);
		if (t->fd < 0 && errno == EEXIST)
			continue;
		if (t->fd < 0)
			return vhd_set_error(-errno, "%s: cannot create %s: %s",
					     target, t->path, strerror(errno));
		/* Locked for good unless a sweeper took it meanwhile. */
		if (flock(t->fd, LOCK_EX) < 0 ||
		    (fstat(t->fd, &st) == 0 && st.st_nlink > 0))
			return 0;
		close(t->fd);
	}
	return vhd_set_error(-EEXIST, "%s: no free temporary name in %s",
			     target, t->dir);
}

static int tmp_open(const char *target, struct tmpfile *t)
{
	int r = target_dir(target, t->dir, sizeof(t->dir));

	if (r < 0)
		return vhd_set_error(r, "%s: path too long", target);
	t->path[0] = '\0';
	t->fd = vhd_io_open_tmpfile(t->dir, O_RDWR | O_CLOEXEC, 0666);
	if (t->fd >= 0)
		return 0;
	/* No O_TMPFILE here (EISDIR: a kernel without it). */
	if (t->fd == -EOPNOTSUPP || t->fd == -EISDIR || t->fd == -EINVAL)
		return tmp_open_named(target, t);
	return vhd_set_error(t->fd, "%s: cannot create: %s", target,
			     strerror(-t->fd));
}

/*
 * Which permission bits a child may keep: group bits when every level of
 * the chain @p is readable by others, or by its group and that group is
 * @gid (the child's); other bits when every level is readable by others.
 */
static mode_t chain_mask(const struct vhd_disk *p, gid_t gid)
{
	bool group = true, other = true;

	for (; p; p = p->parent) {
		struct stat st;

		if (fstat(p->vhdx ? p->vhdx->fd : p->fd, &st) < 0)
			return 0700;
		if (st.st_mode & S_IROTH)
			continue;
		other = false;
		if (!(st.st_mode & S_IRGRP) || st.st_gid != gid)
			group = false;
	}
	return 0700 | (group ? 0070 : 0) | (other ? 0007 : 0);
}

/* Owner and mode of the new file, as vhd_create_opts says. */
static int tmp_own(struct tmpfile *t, const char *target,
		   const struct vhd_create_opts *o,
		   const struct vhd_disk *parent)
{
	struct stat st;
	mode_t mode;

	if (fstat(t->fd, &st) < 0)
		return vhd_set_error(-errno, "%s: %s", target, strerror(errno));
	mode = st.st_mode & 0777;
	if (o && o->own) {
		mode = 0666 & ~o->umask;
		if ((o->uid != (uid_t)-1 && o->uid != st.st_uid) ||
		    (o->gid != (gid_t)-1 && o->gid != st.st_gid)) {
			if (fchown(t->fd, o->uid, o->gid) < 0)
				return vhd_set_error(
					-errno,
					"%s: cannot give it to uid %d gid %d: "
					"%s",
					target, (int)o->uid, (int)o->gid,
					strerror(errno));
			if (o->gid != (gid_t)-1)
				st.st_gid = o->gid;
		}
	}
	if (parent)
		mode &= chain_mask(parent, st.st_gid);
	if (mode != (st.st_mode & 07777) && fchmod(t->fd, mode) < 0)
		return vhd_set_error(-errno, "%s: %s", target, strerror(errno));
	return 0;
}

static int tmp_link(struct tmpfile *t, const char *target)
{
	char proc[64];
	int ret;

	if (t->path[0]) {
		ret = link(t->path, target);
	} else {
		/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc does not. */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
		ret = linkat(AT_FDCWD, proc, AT_FDCWD, target,
			     AT_SYMLINK_FOLLOW);
		if (ret < 0 && errno == ENOENT && access(proc, F_OK) < 0)
			ret = linkat(t->fd, "", AT_FDCWD, target,
				     AT_EMPTY_PATH);
	}
	if (ret < 0)
		return vhd_set_error(-errno, "%s: %s", target,
				     errno == EEXIST ? "already exists"
						     : strerror(errno));
	return 0;
}

static int tmp_commit(struct tmpfile *t, const char *target,
		      const struct vhd_create_opts *o, int r)
{
	if (r == 0) {
		r = vhd_io_sync(t->fd);
		if (r < 0)
			vhd_set_error(r, "%s: sync failed: %s", target,
				      strerror(-r));
	}
	if (r == 0 && o && o->commit) {
		r = o->commit(o->ctx);
		if (r < 0)
			vhd_set_error(r, "%s: not created: %s", target,
				      strerror(-r));
	}
	if (r == 0)
		r = tmp_link(t, target);
	/* Unlinked before the lock goes: a sweeper never sees it free. */
	if (t->path[0])
		unlink(t->path);
	if (close(t->fd) < 0 && r == 0)
		r = vhd_set_error(-errno, "%s: %s", target, strerror(errno));
	return r;
}

/* Drop a temporary that failed: closed, and no name left behind. */
static int tmp_discard(struct tmpfile *t, int r)
{
	return tmp_commit(t, "", NULL, r);
}

static int refuse_existing(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return vhd_set_error(-EEXIST, "%s: already exists", path);
	return 0;
}

static uint32_t vhd_now(void)
{
	time_t now = time(NULL);

	return now > VHD_EPOCH_OFFSET ? (uint32_t)(now - VHD_EPOCH_OFFSET) : 0;
}

static void footer_init(struct vhd_footer *f, enum vhd_type type, uint64_t size)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->cookie, "conectix", 8);
	f->features = 2;
	f->version = 0x00010000;
	f->data_offset = type == VHD_TYPE_FIXED ? UINT64_MAX : VHD_FOOTER_SIZE;
	f->timestamp = vhd_now();
	memcpy(f->creator_app, "win ", 4);
	f->creator_version = CREATOR_VERSION;
	f->creator_os = VHD_OS_WINDOWS;
	f->original_size = size;
	f->current_size = size;
	vhd_geometry(size, &f->cylinders, &f->heads, &f->sectors_per_track);
	f->disk_type = type;
	uuid_generate(f->uuid);
}

static void header_init(struct vhd_header *h, uint64_t size,
			uint32_t block_size)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->cookie, "cxsparse", 8);
	h->data_offset = UINT64_MAX;
	h->table_offset = BAT_OFFSET;
	h->version = 0x00010000;
	h->block_size = block_size;
	h->max_table_entries = (uint32_t)((size + block_size - 1) / block_size);
}

struct payload {
	const uint8_t *data;
	uint32_t len;
};

/*
 * Footer copy, header, BAT (all unallocated), locator payloads (their
 * entries in @h get offsets and data space in bytes), trailing footer.
 */
static int write_sparse(int fd, const char *path, struct vhd_footer *f,
			struct vhd_header *h, const struct payload *pl, int npl)
{
	uint64_t bat_bytes = vhd_align_up((uint64_t)h->max_table_entries * 4,
					  VHD_SECTOR_SIZE);
	uint64_t off = BAT_OFFSET + bat_bytes;
	uint8_t footer[VHD_FOOTER_SIZE], header[VHD_HEADER_SIZE];
	uint8_t *fill = malloc(FILL_CHUNK);
	int r = 0;

	if (!fill)
		return vhd_set_error(-ENOMEM, "out of memory");
	for (int i = 0; i < npl; i++) {
		h->loc[i].data_offset = off;
		h->loc[i].data_length = pl[i].len;
		h->loc[i].data_space =
			(uint32_t)vhd_align_up(pl[i].len, VHD_SECTOR_SIZE);
		off += h->loc[i].data_space;
	}
	vhd_footer_encode(f, footer);
	vhd_header_encode(h, header);
	memset(fill, 0xFF, FILL_CHUNK);
	r = vhd_io_write(fd, footer, sizeof(footer), 0);
	if (r == 0)
		r = vhd_io_write(fd, header, sizeof(header), VHD_FOOTER_SIZE);
	for (uint64_t done = 0; r == 0 && done < bat_bytes;) {
		size_t n = bat_bytes - done < FILL_CHUNK
				   ? (size_t)(bat_bytes - done)
				   : FILL_CHUNK;

		r = vhd_io_write(fd, fill, n, BAT_OFFSET + done);
		done += n;
	}
	for (int i = 0; r == 0 && i < npl; i++)
		r = vhd_io_write(fd, pl[i].data, pl[i].len,
				 h->loc[i].data_offset);
	if (r == 0)
		r = vhd_io_write(fd, footer, sizeof(footer), off);
	if (r < 0)
		vhd_set_error(r, "%s: write failed: %s", path, strerror(-r));
	free(fill);
	return r;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The VHDX side of build(): shaped as Hyper-V's New-VHD makes them. */
static int build_vhdx(const char *path, const struct vhd_create_params *p,
		      const struct vhd_create_opts *opts,
		      const struct vhd_disk *source, struct tmpfile *t)
{
	struct vhdx_new n = {
		.type = p->type,
		.size = vhd_align_up(p->size, VHD_SECTOR_SIZE),
		.block_size =
			p->block_size ? p->block_size : VHDX_DEFAULT_BLOCK,
		.logical_sector = 512,
		.physical_sector = 4096,
	};
	int r;

	/* A VHDX source keeps its sector sizes (its size is a multiple). */
	if (source && source->vhdx) {
		n.logical_sector = source->vhdx->meta.logical_sector;
		n.physical_sector = source->vhdx->meta.physical_sector;
	}
	if (p->type != VHD_TYPE_FIXED && p->type != VHD_TYPE_DYNAMIC)
		return vhd_set_error(-EINVAL,
				     "%s: can only create fixed or "
				     "dynamic disks here",
				     path);
	if (!n.size)
		return vhd_set_error(-EINVAL, "%s: size must be above zero",
				     path);
	if (n.size > VHDX_MAX_SIZE)
		return vhd_set_error(-EFBIG,
				     "%s: size %" PRIu64
				     " exceeds the 64 TiB VHDX limit",
				     path, n.size);
	if (!is_pow2(n.block_size) || n.block_size < VHDX_MIN_BLOCK ||
	    n.block_size > VHDX_MAX_BLOCK)
		return vhd_set_error(-EINVAL,
				     "%s: block size %u is not a power of two "
				     "from 1 MiB to 256 MiB (VHDX)",
				     path, n.block_size);
	if (vhdx_bat_entries_for(n.size, n.block_size, n.logical_sector,
				 false) > VHDX_MAX_BAT_ENTRIES)
		return vhd_set_error(-EFBIG,
				     "%s: %" PRIu64 " bytes in %u-byte blocks "
				     "need more BAT entries than vhdfs holds "
				     "(use larger blocks)",
				     path, n.size, n.block_size);
	r = refuse_existing(path);
	if (r < 0)
		return r;
	r = tmp_open(path, t);
	if (r < 0)
		return r;
	r = tmp_own(t, path, opts, source);
	if (r == 0)
		r = vhdx_create_write(t->fd, path, &n);
	return r < 0 ? tmp_discard(t, r) : 0;
}

/*
 * Validate, then build the empty image as a temporary in @t (owned and
 * moded as @opts says, masked by @source's chain when its data will be
 * copied in); on failure nothing is left.
 */
static int build(const char *path, const struct vhd_create_params *p,
		 const struct vhd_create_opts *opts,
		 const struct vhd_disk *source, struct tmpfile *t)
{
	uint64_t size = vhd_align_up(p->size, VHD_SECTOR_SIZE);
	uint32_t bs = p->block_size ? p->block_size : VHD_DEFAULT_BLOCK_SIZE;
	struct vhd_footer f;
	struct vhd_header h;
	int r;

	if (vhdx_is_vhdx_name(path))
		return build_vhdx(path, p, opts, source, t);
	if (p->type != VHD_TYPE_FIXED && p->type != VHD_TYPE_DYNAMIC)
		return vhd_set_error(-EINVAL,
				     "%s: can only create fixed or "
				     "dynamic disks here",
				     path);
	if (!size)
		return vhd_set_error(-EINVAL, "%s: size must be above zero",
				     path);
	if (size > VHD_MAX_SIZE)
		return vhd_set_error(-EFBIG,
				     "%s: size %" PRIu64
				     " exceeds the 2040 GiB "
				     "VHD limit",
				     path, size);
	if (p->type == VHD_TYPE_DYNAMIC &&
	    (!is_pow2(bs) || bs < CREATE_MIN_BLOCK_SIZE ||
	     bs > VHD_MAX_BLOCK_SIZE))
		return vhd_set_error(-EINVAL,
				     "%s: block size %u is not a power of two "
				     "from 512 KiB to 256 MiB",
				     path, bs);
	r = refuse_existing(path);
	if (r < 0)
		return r;
	r = tmp_open(path, t);
	if (r < 0)
		return r;
	r = tmp_own(t, path, opts, source);
	if (r < 0)
		return tmp_discard(t, r);
	footer_init(&f, p->type, size);
	if (p->type == VHD_TYPE_FIXED) {
		uint8_t footer[VHD_FOOTER_SIZE];

		vhd_footer_encode(&f, footer);
		/* Sparse: the data area reads as zeros unwritten. */
		if (ftruncate(t->fd, (off_t)size) < 0)
			r = vhd_set_error(-errno, "%s: %s", path,
					  strerror(errno));
		else if ((r = vhd_io_write(t->fd, footer, sizeof(footer),
					   size)) < 0)
			vhd_set_error(r, "%s: write failed: %s", path,
				      strerror(-r));
	} else {
		header_init(&h, size, bs);
		r = write_sparse(t->fd, path, &f, &h, NULL, 0);
	}
	return r < 0 ? tmp_discard(t, r) : 0;
}

int vhd_create(const char *path, const struct vhd_create_params *p)
{
	return vhd_create_ex(path, p, NULL);
}

int vhd_create_ex(const char *path, const struct vhd_create_params *p,
		  const struct vhd_create_opts *opts)
{
	struct tmpfile t;
	int r;

	vhd_clear_error();
	r = build(path, p, opts, NULL, &t);
	if (r < 0)
		return r;
	return tmp_commit(&t, path, opts, 0);
}

int vhd_create_unlinked(const char *path, const struct vhd_create_params *p,
			const struct vhd_create_opts *opts,
			const struct vhd_disk *source, struct vhd_unlinked *u)
{
	struct tmpfile *t;
	int r;

	t = malloc(sizeof(*t));
	if (!t)
		return vhd_set_error(-ENOMEM, "out of memory");
	r = build(path, p, opts, source, t);
	if (r < 0) {
		free(t);
		return r;
	}
	u->fd = t->fd;
	u->tmp = t;
	return 0;
}

int vhd_link_unlinked(struct vhd_unlinked *u, const char *path,
		      const struct vhd_create_opts *opts, int r)
{
	r = r < 0 ? tmp_discard(u->tmp, r) : tmp_commit(u->tmp, path, opts, 0);
	free(u->tmp);
	u->tmp = NULL;
	return r;
}

/*
 * A VHDX child of the VHDX @p as Hyper-V makes one: 2 MiB blocks (more
 * only when the BAT would not fit), the parent's sector sizes and disk
 * id, parent_linkage = its DataWriteGuid, relative and absolute paths.
 */
static int create_vhdx_diff(const char *child, const struct vhd_disk *p,
			    const struct vhd_parent_ref *ref,
			    const struct vhd_create_opts *opts)
{
	const struct vhdx *px = p->vhdx;
	struct vhdx_new n = {
		.type = VHD_TYPE_DIFF,
		.size = px->meta.disk_size,
		.block_size = VHDX_DIFF_BLOCK,
		.logical_sector = px->meta.logical_sector,
		.physical_sector = px->meta.physical_sector,
		.page83 = px->meta.page83,
		.parent_linkage = px->header.data_write_guid,
		.relative_path = ref->w2ru,
		.relative_len = ref->w2ru_len,
		.absolute_path = ref->w2ku,
		.absolute_len = ref->w2ku_len,
	};
	struct tmpfile t;
	int r;

	while (n.block_size < VHDX_MAX_BLOCK &&
	       vhdx_bat_entries_for(n.size, n.block_size, n.logical_sector,
				    true) > VHDX_MAX_BAT_ENTRIES)
		n.block_size *= 2;
	r = tmp_open(child, &t);
	if (r < 0)
		return r;
	r = tmp_own(&t, child, opts, p);
	if (r == 0)
		r = vhdx_create_write(t.fd, child, &n);
	return tmp_commit(&t, child, opts, r);
}

int vhd_create_diff(const char *child, const char *parent)
{
	return vhd_create_diff_ex(child, parent, NULL);
}

int vhd_create_diff_ex(const char *child, const char *parent,
		       const struct vhd_create_opts *opts)
{
	struct vhd_parent_ref ref = {0};
	struct vhd_disk *p = NULL;
	struct payload pl[2];
	struct vhd_footer f;
	struct vhd_header h;
	struct tmpfile t;
	struct stat st;
	uint32_t bs;
	int r, n;

	vhd_clear_error();
	if (stat(parent, &st) < 0)
		return vhd_set_error(-ENOENT, "parent not found: %s", parent);
	r = refuse_existing(child);
	if (r < 0)
		return r;
	r = vhd_open(parent, VHD_OPEN_RDONLY | VHD_OPEN_I_PARENT, &p);
	if (r < 0)
		return r;
	if (!p->vhdx != !vhdx_is_vhdx_name(child)) {
		bool px = p->vhdx;

		vhd_close_chain(p);
		return vhd_set_error(
			-EINVAL,
			"%s: parent %s is a %s but the child's name says %s: "
			"a chain does not mix VHD and VHDX",
			child, parent, px ? "VHDX" : "VHD",
			px ? "VHD (use .vhdx or .avhdx)"
			   : "VHDX (use .vhd or .avhd)");
	}
	n = 1;
	for (struct vhd_disk *q = p; q; q = q->parent)
		n++;
	if (n > VHD_MAX_CHAIN_DEPTH) {
		r = vhd_set_error(-ELOOP,
				  "%s: a child of %s would make a chain of %d "
				  "images (the limit is %d)",
				  child, parent, n, VHD_MAX_CHAIN_DEPTH);
		vhd_close_chain(p);
		return r;
	}
	r = vhd_parent_ref_make(child, parent, &ref);
	if (r < 0)
		goto out;
	if (p->vhdx) {
		r = create_vhdx_diff(child, p, &ref, opts);
		goto out;
	}
	pl[0].data = ref.w2ku;
	pl[0].len = ref.w2ku_len;
	pl[1].data = ref.w2ru;
	pl[1].len = ref.w2ru_len;

	bs = p->block_size == (512u << 10) || p->block_size == (2u << 20)
		     ? p->block_size
		     : VHD_DEFAULT_BLOCK_SIZE;
	footer_init(&f, VHD_TYPE_DIFF, p->size);
	f.original_size = p->size;
	f.cylinders = p->footer.cylinders;
	f.heads = p->footer.heads;
	f.sectors_per_track = p->footer.sectors_per_track;
	header_init(&h, p->size, bs);
	memcpy(h.parent_uuid, p->footer.uuid, 16);
	h.parent_timestamp = ref.timestamp;
	memcpy(h.parent_name, ref.name, sizeof(h.parent_name));
	h.loc[0].code = VHD_PLAT_W2KU;
	h.loc[1].code = VHD_PLAT_W2RU;

	r = tmp_open(child, &t);
	if (r < 0)
		goto out;
	r = tmp_own(&t, child, opts, p);
	if (r == 0)
		r = write_sparse(t.fd, child, &f, &h, pl, 2);
	r = tmp_commit(&t, child, opts, r);
out:
	vhd_parent_ref_free(&ref);
	vhd_close_chain(p);
	return r;
}
