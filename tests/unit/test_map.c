// SPDX-License-Identifier: MIT
/*
 * vhd_map against layouts built by hand: a dynamic image (allocated
 * blocks are data of level 0 at their file offsets, neighbours contiguous
 * in the file merged, the rest holes), a fixed image (one extent), and a
 * three-level chain whose extents name the level and file supplying each
 * range (the same in VHDX, with the bytes at each mapped file offset
 * checked). Extents are in order and cover the disk; a callback's non-zero
 * return stops the walk and is returned.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define BS (512u << 10)
#define MAX_EXT 64

struct ext {
	uint64_t off, len, foff;
	int depth;
	char file[64];
};

struct got {
	int n;
	struct ext e[MAX_EXT];
	int stop_after;
};

static int collect(void *ctx, const struct vhd_extent *e)
{
	struct got *g = ctx;
	struct ext *x = &g->e[g->n++];
	const char *base = e->file ? strrchr(e->file, '/') : NULL;

	assert_true(g->n <= MAX_EXT);
	x->off = e->offset;
	x->len = e->length;
	x->foff = e->file_offset;
	x->depth = e->depth;
	snprintf(x->file, sizeof(x->file), "%s",
		 base	   ? base + 1
		 : e->file ? e->file
			   : "");
	assert_true((e->depth < 0) == (e->file == NULL));
	return g->stop_after && g->n == g->stop_after ? 42 : 0;
}

static void map_of(const char *path, struct got *g)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDONLY);
	uint64_t next = 0;

	memset(g, 0, sizeof(*g));
	assert_int_equal(vhd_map(d, collect, g), 0);
	for (int i = 0; i < g->n; i++) {
		assert_int_equal(g->e[i].off, next);
		next += g->e[i].len;
	}
	assert_int_equal(next, vhd_size(d));
	vhd_close(d);
}

static void expect(const struct got *g, int i, uint64_t off, uint64_t len,
		   int depth, const char *file, uint64_t foff)
{
	const struct ext *x = &g->e[i];

	assert_true(i < g->n);
	if (x->off != off || x->len != len || x->depth != depth ||
	    strcmp(x->file, file) || (depth >= 0 && x->foff != foff))
		fail_msg("extent %d: got %llu+%llu depth %d %s @%llu; expected "
			 "%llu+%llu depth %d %s @%llu",
			 i, (unsigned long long)x->off,
			 (unsigned long long)x->len, x->depth, x->file,
			 (unsigned long long)x->foff, (unsigned long long)off,
			 (unsigned long long)len, depth, file,
			 (unsigned long long)foff);
}

/*
 * Blocks 1, 2 and 5 of 8, data right after each bitmap: 1 and 2 are
 * neighbours in the file but a bitmap lies between their data, so they
 * stay two extents (as qemu-img map shows them).
 */
static void test_dynamic(void **state)
{
	const char *p = th_path(DIR_, "dyn.vhd");
	struct th_spec s = {
		.type = VHD_TYPE_DYNAMIC, .size = 8ull * BS, .block_size = BS};
	struct th_layout l;
	uint64_t b1, b5;
	struct got g;

	th_build(p, &s);
	th_layout_of(p, &l);
	b1 = th_file_size(p) - 512 + l.bitmap_size;
	th_alloc_block(p, 1, NULL, NULL, 0);
	th_alloc_block(p, 2, NULL, NULL, 0);
	b5 = th_file_size(p) - 512 + l.bitmap_size;
	th_alloc_block(p, 5, NULL, NULL, 0);
	map_of(p, &g);
	assert_int_equal(g.n, 6);
	expect(&g, 0, 0, BS, -1, "", 0);
	expect(&g, 1, BS, BS, 0, "dyn.vhd", b1);
	expect(&g, 2, 2ull * BS, BS, 0, "dyn.vhd", b1 + BS + l.bitmap_size);
	expect(&g, 3, 3ull * BS, 2ull * BS, -1, "", 0);
	expect(&g, 4, 5ull * BS, BS, 0, "dyn.vhd", b5);
	expect(&g, 5, 6ull * BS, 2ull * BS, -1, "", 0);
}

static void test_fixed(void **state)
{
	const char *p = th_path(DIR_, "fixed.vhd");
	struct got g;

	th_create(p, VHD_TYPE_FIXED, 3 * TH_MIB, 0);
	map_of(p, &g);
	assert_int_equal(g.n, 1);
	expect(&g, 0, 0, 3 * TH_MIB, 0, "fixed.vhd", 0);
}

/*
 * base: block 0 whole; mid: sectors 8..15 of block 0 and all of block 2;
 * top: sector 0 of block 0 and 4 KiB at the start of block 3.
 */
static void test_chain(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *mid = th_path(DIR_, "mid.vhd");
	const char *top = th_path(DIR_, "top.vhd");
	uint8_t *buf = malloc(BS);
	struct vhd_disk *d;
	struct got g;

	th_create(base, VHD_TYPE_DYNAMIC, 4ull * BS, BS);
	th_fill_pattern(buf, BS, 0, 1);
	d = th_open(base, VHD_OPEN_RDWR);
	th_write(d, buf, BS, 0);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(mid, base);
	d = th_open(mid, VHD_OPEN_RDWR);
	th_write(d, buf, 4096, 4096);
	th_write(d, buf, BS, 2ull * BS);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(top, mid);
	d = th_open(top, VHD_OPEN_RDWR);
	th_write(d, buf, 512, 0);
	th_write(d, buf, 4096, 3ull * BS);
	assert_int_equal(vhd_close(d), 0);

	map_of(top, &g);
	assert_int_equal(g.n, 8);
	expect(&g, 0, 0, 512, 0, "top.vhd", g.e[0].foff);
	expect(&g, 1, 512, 4096 - 512, 2, "base.vhd", g.e[1].foff);
	expect(&g, 2, 4096, 4096, 1, "mid.vhd", g.e[2].foff);
	expect(&g, 3, 8192, BS - 8192, 2, "base.vhd", g.e[3].foff);
	/* base's data is contiguous in its file across the mid extent */
	assert_int_equal(g.e[3].foff, g.e[1].foff + 8192 - 512);
	expect(&g, 4, BS, BS, -1, "", 0);
	expect(&g, 5, 2ull * BS, BS, 1, "mid.vhd", g.e[5].foff);
	expect(&g, 6, 3ull * BS, 4096, 0, "top.vhd", g.e[6].foff);
	expect(&g, 7, 3ull * BS + 4096, BS - 4096, -1, "", 0);
	assert_int_equal(g.e[6].foff % 4096, 0);

	/* A callback's non-zero return stops the walk. */
	d = th_open(top, VHD_OPEN_RDONLY);
	memset(&g, 0, sizeof(g));
	g.stop_after = 3;
	assert_int_equal(vhd_map(d, collect, &g), 42);
	assert_int_equal(g.n, 3);
	vhd_close(d);
	free(buf);
}

/* Each extent's bytes at its file offset are the chain's bytes there. */
static void expect_bytes(const char *dir, const struct got *g,
			 const uint8_t *flat)
{
	for (int i = 0; i < g->n; i++) {
		const struct ext *x = &g->e[i];
		uint8_t *buf = malloc(x->len);
		FILE *f;

		if (x->depth < 0) {
			for (uint64_t k = 0; k < x->len; k++)
				assert_int_equal(flat[x->off + k], 0);
			free(buf);
			continue;
		}
		f = fopen(th_path(dir, x->file), "rb");
		assert_non_null(f);
		assert_int_equal(fseeko(f, (off_t)x->foff, SEEK_SET), 0);
		assert_int_equal(fread(buf, 1, x->len, f), x->len);
		fclose(f);
		assert_memory_equal(buf, flat + x->off, x->len);
		free(buf);
	}
}

/* The same chain as test_chain in VHDX (1 MiB base blocks, 2 MiB child
 * blocks): levels, files, and the bytes at each mapped offset. */
static void test_vhdx_chain(void **state)
{
	const uint64_t MB = 1u << 20;
	const char *base = th_path(DIR_, "base.vhdx");
	const char *mid = th_path(DIR_, "mid.avhdx");
	const char *top = th_path(DIR_, "top.vhdx");
	uint8_t *buf = malloc(MB), *flat;
	struct vhd_disk *d;
	struct got g;

	th_create(base, VHD_TYPE_DYNAMIC, 4 * MB, MB);
	th_fill_pattern(buf, MB, 0, 1);
	d = th_open(base, VHD_OPEN_RDWR);
	th_write(d, buf, MB, 0);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(mid, base);
	th_fill_pattern(buf, MB, 0, 2);
	d = th_open(mid, VHD_OPEN_RDWR);
	th_write(d, buf, 4096, 4096);
	th_write(d, buf, MB, 2 * MB);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(top, mid);
	th_fill_pattern(buf, MB, 0, 3);
	d = th_open(top, VHD_OPEN_RDWR);
	th_write(d, buf, 512, 0);
	th_write(d, buf, 4096, 3 * MB);
	assert_int_equal(vhd_close(d), 0);

	map_of(top, &g);
	assert_int_equal(g.n, 8);
	expect(&g, 0, 0, 512, 0, "top.vhdx", g.e[0].foff);
	expect(&g, 1, 512, 4096 - 512, 2, "base.vhdx", g.e[1].foff);
	expect(&g, 2, 4096, 4096, 1, "mid.avhdx", g.e[2].foff);
	expect(&g, 3, 8192, MB - 8192, 2, "base.vhdx", g.e[3].foff);
	assert_int_equal(g.e[3].foff, g.e[1].foff + 8192 - 512);
	expect(&g, 4, MB, MB, -1, "", 0);
	expect(&g, 5, 2 * MB, MB, 1, "mid.avhdx", g.e[5].foff);
	expect(&g, 6, 3 * MB, 4096, 0, "top.vhdx", g.e[6].foff);
	expect(&g, 7, 3 * MB + 4096, MB - 4096, -1, "", 0);
	assert_int_equal(g.e[1].foff % MB, 512); /* blocks 1 MiB-aligned */
	d = th_open(top, VHD_OPEN_RDONLY);
	flat = th_read_all(d);
	vhd_close(d);
	expect_bytes(DIR_, &g, flat);
	free(flat);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_dynamic),
		T(test_fixed),
		T(test_chain),
		T(test_vhdx_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
