// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: image parsing and chain open. The input is one image
 * file, or "VHDCHAIN" + 32-bit little-endian length + that many bytes of a
 * child + the rest as its parent "base.vhd" next to it, or "VHDXPACK" + a
 * 32-bit file size + records (32-bit offset, 16-bit length, that many
 * bytes) written into an otherwise sparse file: a VHDX file is megabytes
 * of 1 MiB aligned regions, mostly zeros, which this keeps out of the
 * corpus and out of the mutations (all integers little-endian). The image is
 * opened read-only (info, locators, reads at the start, middle and across
 * the end, data/hole navigation), checked with vhd_check, then opened
 * read-write: a write must read back, also after close and reopen.
 * Promises checked: a failure returns -errno with a message, a success
 * leaves none; reads have the promised length.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "vhd.h"

#define MAGIC "VHDCHAIN"
#define PACK "VHDXPACK"
#define PACK_MAX (64u << 20) /* file size: room for a few 1 MiB regions */
#define RBUF (64 * 1024)

static uint8_t rbuf[RBUF], wbuf[512];

static void failed(int r, const char *what)
{
	FZ_ASSERT(r < 0 && r > -4096, "%s returned %d", what, r);
	FZ_ASSERT(*vhd_errmsg(), "%s failed (%d) without a message", what, r);
}

static void read_at(struct vhd_disk *d, uint64_t off, size_t len)
{
	uint64_t size = vhd_size(d);
	size_t want = off >= size ? 0 : size - off < len ? size - off : len;
	ssize_t r = vhd_pread(d, rbuf, len, off);

	if (r < 0)
		failed((int)r, "vhd_pread");
	else
		FZ_ASSERT((size_t)r == want,
			  "read of %zu at %llu: %zd, not %zu", len,
			  (unsigned long long)off, r, want);
}

static void navigate(struct vhd_disk *d)
{
	uint64_t size = vhd_size(d);
	int64_t data = vhd_seek_data(d, 0), hole = vhd_seek_hole(d, 0);

	FZ_ASSERT(data == -ENXIO || (data >= 0 && (uint64_t)data < size) ||
			  (data < 0 && *vhd_errmsg()),
		  "seek_data: %lld", (long long)data);
	FZ_ASSERT(hole == -ENXIO || (hole >= 0 && (uint64_t)hole <= size) ||
			  (hole < 0 && *vhd_errmsg()),
		  "seek_hole: %lld", (long long)hole);
	/* A hole before the first data reads as zeros. */
	if (data > 0) {
		size_t n = data < (int64_t)sizeof(rbuf) ? (size_t)data
							: sizeof(rbuf);

		if (vhd_pread(d, rbuf, n, 0) == (ssize_t)n)
			for (size_t i = 0; i < n; i++)
				FZ_ASSERT(!rbuf[i], "hole byte %zu is %u", i,
					  rbuf[i]);
	}
}

static void read_only(const char *path)
{
	struct vhd_locator_info *loc = malloc(sizeof(*loc));
	struct vhd_disk *d;
	struct vhd_info info;
	char parent[4096];
	int r = vhd_open(path, VHD_OPEN_RDONLY, &d);

	if (r) {
		failed(r, "vhd_open");
		free(loc);
		return;
	}
	FZ_ASSERT(!*vhd_errmsg(), "message after a successful open");
	vhd_get_info(d, &info);
	FZ_ASSERT(info.current_size == vhd_size(d), "sizes differ");
	for (int i = 0; i < vhd_locator_count(d) && loc; i++)
		if ((r = vhd_get_locator(d, i, loc)) < 0)
			failed(r, "vhd_get_locator");
	if (vhd_type(d) == VHD_TYPE_DIFF &&
	    (r = vhd_find_parent(d, parent, sizeof(parent))) < 0)
		failed(r, "vhd_find_parent");
	read_at(d, 0, RBUF);
	read_at(d, vhd_size(d) / 2 / 512 * 512, 4096);
	read_at(d, vhd_size(d) > 1000 ? vhd_size(d) - 1000 : 0, 3000);
	read_at(d, vhd_size(d), 512);
	navigate(d);
	vhd_close(d);
	free(loc);
}

#define MAX_WRITES 8

/* Sector @off's content in the writes below: unique per offset. */
static void pattern(uint64_t off)
{
	for (size_t i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 7 + off / 512 * 31 + 1);
}

/*
 * Where to write: the sector picked by the input, and the first sector of
 * each data extent (allocated blocks: where a block that overlaps
 * something else shows). Distinct sectors, so every write must survive.
 */
static int pick_writes(struct vhd_disk *d, uint64_t where, uint64_t *offs)
{
	uint64_t size = vhd_size(d) / 512 * 512;
	int64_t pos = 0;
	int n = 0;

	if (size < sizeof(wbuf))
		return 0;
	offs[n++] = where % (size / 512) * 512;
	while (n < MAX_WRITES && (uint64_t)pos < size) {
		int64_t data = vhd_seek_data(d, (uint64_t)pos);
		bool dup = false;

		if (data < 0 || (uint64_t)data >= size)
			break;
		data &= ~511ll;
		for (int i = 0; i < n; i++)
			dup |= offs[i] == (uint64_t)data;
		if (!dup)
			offs[n++] = (uint64_t)data;
		pos = vhd_seek_hole(d, (uint64_t)data);
		if (pos <= data)
			break;
	}
	return n;
}

static void read_write(const char *path, uint64_t where)
{
	uint64_t offs[MAX_WRITES];
	struct vhd_disk *d;
	int n, r = vhd_open(path, VHD_OPEN_RDWR, &d);

	if (r) {
		failed(r, "vhd_open read-write");
		return;
	}
	n = pick_writes(d, where, offs);
	for (int i = 0; i < n; i++) {
		ssize_t w;

		pattern(offs[i]);
		w = vhd_pwrite(d, wbuf, sizeof(wbuf), offs[i]);
		if (w < 0) {
			failed((int)w, "vhd_pwrite");
			vhd_close(d);
			return;
		}
		FZ_ASSERT(w == (ssize_t)sizeof(wbuf), "short write %zd", w);
	}
	for (int i = 0; i < n; i++) {
		pattern(offs[i]);
		FZ_ASSERT(vhd_pread(d, rbuf, sizeof(wbuf), offs[i]) ==
					  sizeof(wbuf) &&
				  !memcmp(rbuf, wbuf, sizeof(wbuf)),
			  "write at %llu does not read back",
			  (unsigned long long)offs[i]);
	}
	r = vhd_close(d);
	if (r) {
		failed(r, "vhd_close");
		return;
	}
	/* Acknowledged and closed: the next open must see every write. */
	r = vhd_open(path, VHD_OPEN_RDONLY, &d);
	FZ_ASSERT(r == 0, "reopen after a clean close: %s", vhd_errmsg());
	for (int i = 0; i < n; i++) {
		pattern(offs[i]);
		FZ_ASSERT(vhd_pread(d, rbuf, sizeof(wbuf), offs[i]) ==
					  sizeof(wbuf) &&
				  !memcmp(rbuf, wbuf, sizeof(wbuf)),
			  "write at %llu lost after close and reopen",
			  (unsigned long long)offs[i]);
	}
	vhd_close(d);
}

/* Expand a VHDXPACK input (after its magic) into the sparse file @path. */
static void unpack(const char *path, struct fz_in *in)
{
	uint64_t fsize = fz_take(in, 4) % (PACK_MAX + 1);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)fsize) < 0) {
		perror(path);
		abort();
	}
	while (in->pos + 6 <= in->len) {
		uint64_t off = fz_take(in, 4);
		size_t n = (size_t)fz_take(in, 2);

		if (n > in->len - in->pos)
			n = in->len - in->pos;
		/* Inside the file: the size stays what the input says. */
		if (off < fsize && n > fsize - off)
			n = (size_t)(fsize - off);
		if (off < fsize &&
		    pwrite(fd, in->p + in->pos, n, (off_t)off) != (ssize_t)n) {
			perror(path);
			abort();
		}
		in->pos += n;
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *img = fz_path(0, "img.vhd");
	struct fz_in in = {data, size, 0};
	uint64_t where = 0;
	int r;

	if (size >= 12 && !memcmp(data, MAGIC, 8)) {
		uint32_t n =
			(uint32_t)(data[8] | data[9] << 8 | data[10] << 16 |
				   (uint32_t)data[11] << 24);

		if (n > size - 12)
			n = (uint32_t)(size - 12);
		fz_write_file(img, data + 12, n);
		fz_write_file(fz_path(1, "base.vhd"), data + 12 + n,
			      size - 12 - n);
	} else if (size >= 8 && !memcmp(data, PACK, 8)) {
		in.pos = 8;
		unpack(img, &in);
	} else {
		fz_write_file(img, data, size);
	}
	/* Where to write: from the footer's bytes, so it mutates too. */
	in.pos = size > 520 ? size - 520 : 0;
	where = fz_take(&in, 8);

	read_only(img);
	r = vhd_check(img, NULL, NULL);
	if (r < 0)
		failed(r, "vhd_check");
	read_write(img, where);
	fz_clean();
	return 0;
}
