// SPDX-License-Identifier: MIT
/* Creating fixed, dynamic and differencing images, atomically. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * Images are built under a hidden temporary name in the target directory
 * and linked into place only when complete, so a failure leaves nothing
 * and an existing file is never replaced.
 */
struct tmpfile {
	char path[PATH_MAX];
	int fd;
};

static int tmp_open(const char *target, struct tmpfile *t)
{
	const char *slash = strrchr(target, '/');
	int n;

	if (slash)
		n = snprintf(t->path, sizeof(t->path), "%.*s/.%s.XXXXXX",
			     (int)(slash - target), target, slash + 1);
	else
		n = snprintf(t->path, sizeof(t->path), ".%s.XXXXXX", target);
	if (n < 0 || (size_t)n >= sizeof(t->path))
		return vhd_set_error(-ENAMETOOLONG, "%s: path too long",
				     target);
	t->fd = mkostemp(t->path, O_CLOEXEC);
	if (t->fd < 0)
		return vhd_set_error(-errno, "%s: cannot create: %s", target,
				     strerror(errno));
	if (fchmod(t->fd, 0644) < 0) {
		int e = errno;

		close(t->fd);
		unlink(t->path);
		return vhd_set_error(-e, "%s: %s", target, strerror(e));
	}
	return 0;
}

static int tmp_commit(struct tmpfile *t, const char *target, int r)
{
	if (r == 0) {
		r = vhd_io_sync(t->fd);
		if (r < 0)
			vhd_set_error(r, "%s: sync failed: %s", target,
				      strerror(-r));
	}
	if (close(t->fd) < 0 && r == 0)
		r = vhd_set_error(-errno, "%s: %s", target, strerror(errno));
	if (r == 0 && link(t->path, target) < 0)
		r = vhd_set_error(-errno, "%s: %s", target,
				  errno == EEXIST ? "already exists"
						  : strerror(errno));
	unlink(t->path);
	return r;
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

int vhd_create(const char *path, const struct vhd_create_params *p)
{
	uint64_t size = vhd_align_up(p->size, VHD_SECTOR_SIZE);
	uint32_t bs = p->block_size ? p->block_size : VHD_DEFAULT_BLOCK_SIZE;
	struct vhd_footer f;
	struct vhd_header h;
	struct tmpfile t;
	int r;

	vhd_clear_error();
	r = vhdx_refuse_create(path);
	if (r < 0)
		return r;
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
	r = tmp_open(path, &t);
	if (r < 0)
		return r;
	footer_init(&f, p->type, size);
	if (p->type == VHD_TYPE_FIXED) {
		uint8_t footer[VHD_FOOTER_SIZE];

		vhd_footer_encode(&f, footer);
		/* Sparse: the data area reads as zeros unwritten. */
		if (ftruncate(t.fd, (off_t)size) < 0)
			r = vhd_set_error(-errno, "%s: %s", path,
					  strerror(errno));
		else if ((r = vhd_io_write(t.fd, footer, sizeof(footer),
					   size)) < 0)
			vhd_set_error(r, "%s: write failed: %s", path,
				      strerror(-r));
	} else {
		header_init(&h, size, bs);
		r = write_sparse(t.fd, path, &f, &h, NULL, 0);
	}
	return tmp_commit(&t, path, r);
}

/* Relative path from directory @from to file @to, both canonical. */
static int relative_path(const char *from, const char *to, char *out,
			 size_t len)
{
	const char *from_rest, *to_rest;
	size_t i = 0, pos = 0;

	while (from[i] && from[i] == to[i])
		i++;
	if (!from[i] && to[i] == '/') { /* @to is below @from */
		from_rest = from + i;
		to_rest = to + i + 1;
	} else {
		while (i > 0 && from[i - 1] != '/')
			i--;
		from_rest = from + i;
		to_rest = to + i;
	}
	/* one "../" per component of @from below the common directory */
	for (const char *p = from_rest; *p;
	     p = strchr(p, '/') ? strchr(p, '/') + 1 : "") {
		if (pos + 3 >= len)
			return -ENAMETOOLONG;
		memcpy(out + pos, "../", 3);
		pos += 3;
	}
	if (pos + strlen(to_rest) >= len)
		return -ENAMETOOLONG;
	strcpy(out + pos, to_rest);
	return 0;
}

/* Windows path text: '/' → '\', as UTF-16LE. */
static int windows_utf16(const char *prefix, const char *path, uint8_t *out,
			 size_t max_units, uint32_t *bytes)
{
	char *s = malloc(strlen(prefix) + strlen(path) + 1);
	int n;

	if (!s)
		return -ENOMEM;
	strcpy(s, prefix);
	strcat(s, path);
	for (char *p = s; *p; p++)
		if (*p == '/')
			*p = '\\';
	n = vhd_utf8_to_utf16(s, false, out, max_units);
	free(s);
	if (n < 0)
		return n;
	*bytes = (uint32_t)n * 2;
	return 0;
}

int vhd_create_diff(const char *child, const char *parent)
{
	char *abs_parent = NULL, *child_dir = NULL, rel[PATH_MAX];
	uint8_t *w2ku = NULL, *w2ru = NULL;
	uint8_t name_be[2 * VHD_NAME_UNITS] = {0};
	const char *base, *slash;
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
	r = vhdx_refuse_create(child);
	if (r < 0)
		return r;
	r = vhd_open(parent, VHD_OPEN_RDONLY, &p);
	if (r < 0)
		return r;
	if (p->vhdx) {
		vhd_close_chain(p);
		return vhd_set_error(
			-EINVAL,
			"%s: parent %s is a VHDX: a chain does not "
			"mix VHD and VHDX (and VHDX children "
			"cannot be created yet)",
			child, parent);
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
	abs_parent = realpath(parent, NULL);
	slash = strrchr(child, '/');
	child_dir = slash ? strndup(child, (size_t)(slash - child + 1))
			  : strdup(".");
	if (child_dir) {
		char *tmp = realpath(child_dir, NULL);

		free(child_dir);
		child_dir = tmp;
	}
	if (!abs_parent || !child_dir) {
		r = vhd_set_error(-errno ? -errno : -ENOMEM, "%s: %s", child,
				  strerror(errno ? errno : ENOMEM));
		goto out;
	}
	base = strrchr(parent, '/') ? strrchr(parent, '/') + 1 : parent;
	n = vhd_utf8_to_utf16(base, true, name_be, VHD_NAME_UNITS);
	w2ku = malloc(2 * PATH_MAX);
	w2ru = malloc(2 * PATH_MAX);
	if (n < 0 || !w2ku || !w2ru ||
	    relative_path(child_dir, abs_parent, rel, sizeof(rel)) < 0) {
		r = vhd_set_error(
			n < 0 ? n : -ENAMETOOLONG,
			"%s: parent name or path not representable: %s", child,
			parent);
		goto out;
	}
	r = windows_utf16("", abs_parent, w2ku, PATH_MAX, &pl[0].len);
	if (r == 0)
		r = windows_utf16("./", rel, w2ru, PATH_MAX, &pl[1].len);
	if (r < 0) {
		vhd_set_error(r, "%s: parent path not representable: %s", child,
			      parent);
		goto out;
	}
	pl[0].data = w2ku;
	pl[1].data = w2ru;

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
	if (stat(abs_parent, &st) == 0 && st.st_mtime > VHD_EPOCH_OFFSET)
		h.parent_timestamp = (uint32_t)(st.st_mtime - VHD_EPOCH_OFFSET);
	for (int i = 0; i < VHD_NAME_UNITS; i++)
		h.parent_name[i] = vhd_get16(name_be + 2 * i);
	h.loc[0].code = VHD_PLAT_W2KU;
	h.loc[1].code = VHD_PLAT_W2RU;

	r = tmp_open(child, &t);
	if (r < 0)
		goto out;
	r = write_sparse(t.fd, child, &f, &h, pl, 2);
	r = tmp_commit(&t, child, r);
out:
	free(w2ku);
	free(w2ru);
	free(abs_parent);
	free(child_dir);
	vhd_close_chain(p);
	return r;
}
