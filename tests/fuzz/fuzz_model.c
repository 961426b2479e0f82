// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: read/write sequences against a flat model (as
 * tests/unit/test_model.c, with the input choosing every step). The input
 * picks the base (fixed or dynamic), its size and block size, then a list
 * of operations: writes of any offset, length and content, reads compared
 * with the model, flushes, close and reopen, data/hole navigation, and
 * new differencing children (later writes go to the newest). Every read
 * must equal the model; parents must never change; the final image reads
 * as the model after reopening and vhd_check finds nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "vhd.h"

#define MAX_OPS 48
#define MAX_LEVELS 4
#define MAX_LEN (70 * 1024)

struct state {
	uint8_t *flat;
	uint64_t size;
	struct vhd_disk *d;
	const char *path;
	int levels;
	uint8_t *parent_copy[MAX_LEVELS]; /* contents at child creation */
	size_t parent_len[MAX_LEVELS];
	const char *parent_path[MAX_LEVELS];
};

static uint8_t buf[MAX_LEN];

/*
 * Whole file, malloc'd. The loops of this harness are instrumented like
 * the library: byte loops here would cost more than the code under test,
 * so comparisons go through memcmp.
 */
static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
	uint8_t *b = size < 0 ? NULL : malloc((size_t)size + 1);

	FZ_ASSERT(b && pread(fd, b, (size_t)size, 0) == size, "read %s", path);
	close(fd);
	*len = (size_t)size;
	return b;
}

static const uint8_t zeros[MAX_LEN];
/* Write contents: pattern + seed, so no fill loop per write. */
static uint8_t pattern[MAX_LEN + 256];

static void expect(struct state *s, uint64_t off, size_t len)
{
	ssize_t r = vhd_pread(s->d, buf, len, off);

	FZ_ASSERT(r == (ssize_t)len, "read %zu at %llu: %zd (%s)", len,
		  (unsigned long long)off, r, vhd_errmsg());
	if (!memcmp(buf, s->flat + off, len))
		return;
	for (size_t i = 0; i < len; i++)
		FZ_ASSERT(buf[i] == s->flat[off + i],
			  "byte %llu reads %u, model has %u",
			  (unsigned long long)(off + i), buf[i],
			  s->flat[off + i]);
}

static void reopen(struct state *s, int flags)
{
	int r = vhd_close(s->d);

	FZ_ASSERT(r == 0, "close: %s", vhd_errmsg());
	r = vhd_open(s->path, flags, &s->d);
	FZ_ASSERT(r == 0, "reopen: %s", vhd_errmsg());
}

static void op_write(struct state *s, struct fz_in *in)
{
	uint64_t off = fz_take(in, 4) % s->size;
	size_t len = 1 + fz_take(in, 2) * 4 % MAX_LEN;
	unsigned seed = (unsigned)fz_take(in, 1);
	const uint8_t *src;
	ssize_t w;

	if (fz_take(in, 1) & 1) { /* sector-aligned, the common case */
		off &= ~511ull;
		len = (len + 511) & ~(size_t)511;
	}
	if (len > s->size - off)
		len = s->size - off;
	src = seed % 4 ? pattern + seed : zeros;
	w = vhd_pwrite(s->d, src, len, off);
	FZ_ASSERT(w == (ssize_t)len, "write %zu at %llu: %zd (%s)", len,
		  (unsigned long long)off, w, vhd_errmsg());
	memcpy(s->flat + off, src, len);
	expect(s, off, len);
}

static void op_seek(struct state *s, struct fz_in *in)
{
	uint64_t off = fz_take(in, 4) % s->size;
	int64_t data = vhd_seek_data(s->d, off);
	int64_t hole = vhd_seek_hole(s->d, off);
	uint64_t end = data == -ENXIO ? s->size : (uint64_t)data;

	FZ_ASSERT(data == -ENXIO ||
			  (data >= (int64_t)off && (uint64_t)data < s->size),
		  "seek_data(%llu) = %lld", (unsigned long long)off,
		  (long long)data);
	FZ_ASSERT(hole >= (int64_t)off && (uint64_t)hole <= s->size,
		  "seek_hole(%llu) = %lld", (unsigned long long)off,
		  (long long)hole);
	/* Skipped as a hole: the model must hold zeros there. */
	for (uint64_t i = off; i < end; i += MAX_LEN) {
		size_t n = end - i < MAX_LEN ? end - i : MAX_LEN;

		if (memcmp(s->flat + i, zeros, n))
			fz_fail("seek_data(%llu) = %lld skipped data in "
				"[%llu, %llu)",
				(unsigned long long)off, (long long)data,
				(unsigned long long)i,
				(unsigned long long)(i + n));
	}
}

static void op_child(struct state *s)
{
	const char *names[MAX_LEVELS] = {"base.vhd", "c1.vhd", "c2.vhd",
					 "c3.vhd"};
	const char *child;
	int r;

	if (s->levels + 1 >= MAX_LEVELS)
		return;
	r = vhd_close(s->d);
	FZ_ASSERT(r == 0, "close: %s", vhd_errmsg());
	s->parent_path[s->levels] = s->path;
	s->parent_copy[s->levels] = slurp(s->path, &s->parent_len[s->levels]);
	child = fz_path(s->levels + 1, names[s->levels + 1]);
	r = vhd_create_diff(child, s->path);
	FZ_ASSERT(r == 0, "create_diff: %s", vhd_errmsg());
	s->levels++;
	s->path = child;
	r = vhd_open(s->path, VHD_OPEN_RDWR, &s->d);
	FZ_ASSERT(r == 0, "open child: %s", vhd_errmsg());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size, 0};
	struct vhd_create_params p = {0};
	struct state s = {0};
	int r;

	if (!pattern[1])
		for (size_t i = 0; i < sizeof(pattern); i++)
			pattern[i] = (uint8_t)(i * 13 + i / 512 + 1);
	p.type = fz_take(&in, 1) % 3 ? VHD_TYPE_DYNAMIC : VHD_TYPE_FIXED;
	p.block_size = fz_take(&in, 1) & 1 ? 512u << 10 : 2u << 20;
	/* 256 KiB .. 2 MiB, often not a whole number of blocks. */
	p.size = (1 + fz_take(&in, 1) % 8) * (256u << 10) +
		 512 * (fz_take(&in, 1) % 4);
	s.size = (p.size + 511) & ~511ull;
	s.flat = calloc(1, s.size);
	if (!s.flat)
		return 0;
	s.path = fz_path(0, "base.vhd");
	r = vhd_create(s.path, &p);
	FZ_ASSERT(r == 0, "create: %s", vhd_errmsg());
	r = vhd_open(s.path, VHD_OPEN_RDWR, &s.d);
	FZ_ASSERT(r == 0, "open: %s", vhd_errmsg());
	FZ_ASSERT(vhd_size(s.d) == s.size, "size %llu, asked %llu",
		  (unsigned long long)vhd_size(s.d),
		  (unsigned long long)s.size);

	for (int i = 0; i < MAX_OPS && in.pos < in.len; i++) {
		switch (fz_take(&in, 1) % 10) {
		case 0:
		case 1:
		case 2:
		case 3:
			op_write(&s, &in);
			break;
		case 4: {
			uint64_t off = fz_take(&in, 4) % s.size;
			size_t len = fz_take(&in, 2) * 2 % MAX_LEN;

			expect(&s, off,
			       len < s.size - off ? len : s.size - off);
			break;
		}
		case 5:
			FZ_ASSERT(vhd_flush(s.d) == 0, "flush: %s",
				  vhd_errmsg());
			break;
		case 6:
			reopen(&s, VHD_OPEN_RDWR);
			break;
		case 7:
			op_seek(&s, &in);
			break;
		default:
			op_child(&s);
			break;
		}
	}
	reopen(&s, VHD_OPEN_RDONLY);
	for (uint64_t off = 0; off < s.size; off += MAX_LEN)
		expect(&s, off,
		       s.size - off < MAX_LEN ? s.size - off : MAX_LEN);
	vhd_close(s.d);
	for (int i = 0; i < s.levels; i++) {
		size_t len;
		uint8_t *now = slurp(s.parent_path[i], &len);

		FZ_ASSERT(len == s.parent_len[i] &&
				  !memcmp(now, s.parent_copy[i], len),
			  "parent %s changed", s.parent_path[i]);
		free(now);
		free(s.parent_copy[i]);
	}
	r = vhd_check(s.path, NULL, NULL);
	FZ_ASSERT(r == 0, "vhd_check of the final image: %d (%s)", r,
		  vhd_errmsg());
	free(s.flat);
	fz_clean();
	return 0;
}
