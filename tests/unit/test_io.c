// SPDX-License-Identifier: MIT
/*
 * Reads and writes through the chain against a flat in-memory model, for
 * fixed, dynamic and differencing images at every level and block sizes of
 * 4 KiB, 512 KiB, 2 MiB and 16 MiB: any offset and length, across block
 * boundaries, sector-granular and unaligned, zero writes that must hide
 * parent data, the end of the disk, SEEK_DATA/SEEK_HOLE and EROFS. Parent
 * files stay byte-identical.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define MAX_LEVELS 4

struct chain {
	const char *dir;
	char paths[MAX_LEVELS][256]; /* [0] = leaf */
	int levels;
	uint64_t size;
	uint32_t leaf_bs; /* 0 = fixed leaf */
	uint8_t *model;
	uint64_t hashes[MAX_LEVELS];
};

/* Fill every @every-th block of a dynamic image @p by hand. */
static void fill_blocks(struct chain *c, const char *p, uint32_t every,
			uint32_t tag)
{
	struct th_layout l;
	uint8_t *blk;

	th_layout_of(p, &l);
	blk = malloc(l.block_size);
	for (uint32_t b = 0; b < l.max_table_entries; b += every) {
		uint64_t off = (uint64_t)b * l.block_size;
		uint64_t n = l.size - off < l.block_size ? l.size - off
							 : l.block_size;

		memset(blk, 0, l.block_size);
		th_fill_pattern(blk, n, off, tag);
		th_alloc_block(p, b, NULL, blk, 0);
		memcpy(c->model + off, blk, n);
	}
	free(blk);
}

/* Differencing @p: partial bitmaps (two bytes) in every @every-th block. */
static void fill_partial(struct chain *c, const char *p, uint32_t every,
			 uint32_t tag)
{
	struct th_layout l;
	uint8_t *blk, *bm;

	th_layout_of(p, &l);
	blk = malloc(l.block_size);
	bm = calloc(1, l.bitmap_size);
	for (uint32_t b = 0; b < l.max_table_entries; b += every) {
		uint64_t off = (uint64_t)b * l.block_size;

		th_fill_pattern(blk, l.block_size, off, tag);
		bm[0] = 0xC3;
		bm[1] = 0x3C;
		th_alloc_block(p, b, bm, blk, 0);
		for (uint32_t s = 0; s < 16 && s < l.block_size / 512; s++)
			if ((bm[s / 8] & (0x80 >> (s % 8))) &&
			    off + (s + 1) * 512 <= l.size)
				memcpy(c->model + off + s * 512, blk + s * 512,
				       512);
	}
	free(blk);
	free(bm);
}

static void chain_init(struct chain *c, const char *dir, uint64_t size)
{
	memset(c, 0, sizeof(*c));
	c->dir = dir;
	c->size = size;
	c->model = calloc(1, size);
}

static const char *push(struct chain *c, const char *name)
{
	/* New leaf at [0]; older levels shift up. */
	memmove(c->paths[1], c->paths[0], sizeof(c->paths[0]) * c->levels);
	snprintf(c->paths[0], sizeof(c->paths[0]), "%s", th_path(c->dir, name));
	c->levels++;
	return c->paths[0];
}

static void base_fixed(struct chain *c, const char *name)
{
	const char *p = push(c, name);

	th_create(p, VHD_TYPE_FIXED, c->size, 0);
	th_fill_pattern(c->model, c->size, 0, 1);
	/* Leave a zero stretch so holes and zeros are both exercised. */
	memset(c->model + c->size / 3, 0, 4096);
	th_pwrite_raw(p, c->model, c->size, 0);
	c->leaf_bs = 0;
}

static void base_dynamic(struct chain *c, const char *name, uint32_t bs,
			 bool by_hand)
{
	const char *p = push(c, name);

	if (by_hand) {
		struct th_spec s = {.type = VHD_TYPE_DYNAMIC,
				    .size = c->size,
				    .block_size = bs};
		th_build(p, &s);
	} else {
		th_create(p, VHD_TYPE_DYNAMIC, c->size, bs);
	}
	fill_blocks(c, p, 2, 2);
	c->leaf_bs = bs;
}

static void add_diff(struct chain *c, const char *name, uint32_t tag)
{
	char parent[256];
	const char *p;
	struct th_layout l;

	snprintf(parent, sizeof(parent), "%s", c->paths[0]);
	p = push(c, name);
	th_create_diff(p, parent);
	fill_partial(c, p, 3, tag);
	th_layout_of(p, &l);
	c->leaf_bs = l.block_size;
}

/* A differencing child made by another writer, with @bs blocks. */
static void add_diff_by_hand(struct chain *c, const char *name, uint32_t bs,
			     uint32_t tag)
{
	struct th_spec s = {
		.type = VHD_TYPE_DIFF, .size = c->size, .block_size = bs};
	char parent[256], ru[300];
	uint8_t f[512];
	const char *p;

	snprintf(parent, sizeof(parent), "%s", c->paths[0]);
	th_read_footer(parent, f);
	memcpy(s.parent_uuid, f + 68, 16);
	s.parent_ts = (uint32_t)(th_mtime(parent) - VHD_EPOCH_OFFSET);
	snprintf(ru, sizeof(ru), ".\\%s", strrchr(parent, '/') + 1);
	s.w2ru = ru;
	p = push(c, name);
	th_build(p, &s);
	fill_partial(c, p, 2, tag);
	c->leaf_bs = bs;
}

static void chain_hash_parents(struct chain *c)
{
	for (int i = 1; i < c->levels; i++)
		c->hashes[i] = th_file_hash(c->paths[i]);
}

static void chain_check_parents(struct chain *c)
{
	for (int i = 1; i < c->levels; i++)
		if (th_file_hash(c->paths[i]) != c->hashes[i])
			fail_msg("parent %s changed", c->paths[i]);
}

static void chain_free(struct chain *c)
{
	free(c->model);
}

enum cfg {
	CFG_FIXED,
	CFG_DYN_512K,
	CFG_DYN_2M,
	CFG_DYN_4K,
	CFG_DYN_16M,
	CFG_DIFF_512K,
	CFG_DIFF_OVER_4K,
	CFG_DIFF_OVER_16M,
	CFG_DIFF_DIFF_FIXED,
	CFG_HAND_DIFF_4K,
	CFG_HAND_DIFF_16M,
	CFG_COUNT
};

static const char *const cfg_names[] = {
	"fixed",
	"dynamic 512K",
	"dynamic 2M",
	"dynamic 4K (other writer)",
	"dynamic 16M (other writer)",
	"diff over dynamic 512K",
	"diff over dynamic 4K",
	"diff over dynamic 16M",
	"diff over diff over fixed",
	"4K-block diff (other writer) over 2M",
	"16M-block diff (other writer) over 512K",
};

static void build_cfg(struct chain *c, const char *dir, enum cfg k)
{
	switch (k) {
	case CFG_FIXED:
		chain_init(c, dir, 5 * TH_MIB + 1536);
		base_fixed(c, "fixed.vhd");
		break;
	case CFG_DYN_512K:
		chain_init(c, dir, 3 * TH_MIB + 512);
		base_dynamic(c, "d512.vhd", 512 << 10, false);
		break;
	case CFG_DYN_2M:
		chain_init(c, dir, 7 * TH_MIB + 1024);
		base_dynamic(c, "d2m.vhd", 2 << 20, false);
		break;
	case CFG_DYN_4K:
		chain_init(c, dir, TH_MIB + 2048);
		base_dynamic(c, "d4k.vhd", 4096, true);
		break;
	case CFG_DYN_16M:
		chain_init(c, dir, 40 * TH_MIB);
		base_dynamic(c, "d16m.vhd", 16 << 20, true);
		break;
	case CFG_DIFF_512K:
		build_cfg(c, dir, CFG_DYN_512K);
		add_diff(c, "c512.vhd", 3);
		break;
	case CFG_DIFF_OVER_4K:
		build_cfg(c, dir, CFG_DYN_4K);
		add_diff(c, "c4k.vhd", 3);
		break;
	case CFG_DIFF_OVER_16M:
		build_cfg(c, dir, CFG_DYN_16M);
		add_diff(c, "c16m.vhd", 3);
		break;
	case CFG_DIFF_DIFF_FIXED:
		build_cfg(c, dir, CFG_FIXED);
		add_diff(c, "mid.vhd", 4);
		add_diff(c, "leaf.vhd", 5);
		break;
	case CFG_HAND_DIFF_4K:
		build_cfg(c, dir, CFG_DYN_2M);
		add_diff_by_hand(c, "h4k.vhd", 4096, 6);
		break;
	case CFG_HAND_DIFF_16M:
		build_cfg(c, dir, CFG_DYN_512K);
		add_diff_by_hand(c, "h16m.vhd", 16 << 20, 7);
		break;
	default:
		fail();
	}
}

static void check_range(struct vhd_disk *d, struct chain *c, uint64_t off,
			size_t len)
{
	if (off >= c->size)
		return;
	if (off + len > c->size)
		len = c->size - off;
	th_expect_read(d, c->model + off, len, off);
}

/* Reads at block edges and at random, against the model. */
static void read_battery(struct vhd_disk *d, struct chain *c, uint32_t bs,
			 uint64_t *rng)
{
	uint32_t step = bs ? bs : 2 << 20;
	/* Long reads span 3 blocks, but at most 4 MiB (time under ASan). */
	uint64_t span = 3ull * step < 4 * TH_MIB ? 3ull * step : 4 * TH_MIB;

	th_expect_read(d, c->model, c->size, 0);
	for (uint64_t e = step; e < c->size; e += step) {
		check_range(d, c, e - 1, 2);
		check_range(d, c, e - 512, 1024);
		check_range(d, c, e - 700, 1500);
		check_range(d, c, e - 3, span + 7);
	}
	for (int i = 0; i < 200; i++) {
		uint64_t off = th_rand_below(rng, c->size);
		size_t len = 1 + th_rand_below(rng, i % 4 ? 9000 : span);

		check_range(d, c, off, len);
	}
	assert_int_equal(vhd_pread(d, c->model, 0, 17), 0);
}

static void test_reads_every_config(void **state)
{
	uint64_t rng = th_seed("VHD_TEST_SEED", "test_io reads");

	for (int k = 0; k < CFG_COUNT; k++) {
		char sub[256];
		struct chain c;
		struct vhd_disk *d;

		snprintf(sub, sizeof(sub), "%s/r%d", DIR_, k);
		assert_int_equal(mkdir(sub, 0755), 0);
		print_message("  reads: %s\n", cfg_names[k]);
		build_cfg(&c, sub, k);
		chain_hash_parents(&c);
		c.hashes[0] = th_file_hash(c.paths[0]);
		d = th_open(c.paths[0], VHD_OPEN_RDONLY);
		read_battery(d, &c, c.leaf_bs, &rng);
		vhd_close(d);
		assert_true(th_file_hash(c.paths[0]) == c.hashes[0]);
		chain_check_parents(&c);
		chain_free(&c);
	}
}

static void do_write(struct vhd_disk *d, struct chain *c, const uint8_t *buf,
		     size_t len, uint64_t off)
{
	if (off >= c->size)
		return;
	if (off + len > c->size)
		len = c->size - off;
	th_write(d, buf, len, off);
	memcpy(c->model + off, buf, len);
	/* The written range and its neighbourhood read back. */
	check_range(d, c, off > 4096 ? off - 4096 : 0, len + 8192);
}

static void write_battery(struct vhd_disk *d, struct chain *c, uint32_t bs,
			  uint64_t *rng)
{
	uint32_t step = bs ? bs : 2 << 20;
	size_t max = 3 * step + 4096;
	/* Slack: random writes start up to 63 bytes in and round up to 512. */
	size_t room = max + 1024;
	uint8_t *buf = malloc(room), *zero = calloc(1, room);
	uint64_t last;

	th_rand_fill(rng, buf, room);
	/* Sector-granular, at the very start. */
	do_write(d, c, buf, 512, 0);
	/* Straddling a block boundary, aligned and not. */
	do_write(d, c, buf + 1, 4096, step - 1024);
	do_write(d, c, buf + 2, 1000, step + 3);
	do_write(d, c, buf + 3, 1, step * 2 - 1);
	/* Zeros over data a parent holds: must hide it. */
	do_write(d, c, zero, 8192, 8192);
	do_write(d, c, zero, 700, 3 * 512 + 5);
	/* A whole block, then spanning three blocks unaligned. */
	if ((uint64_t)step * 2 <= c->size)
		do_write(d, c, buf + 5, step, step);
	do_write(d, c, buf + 7, max - 9, 511);
	/* The tail: last partial sector range and the very last byte. */
	last = c->size - 1;
	do_write(d, c, buf + 11, 1, last);
	do_write(d, c, buf + 13, 3000, c->size - 3000);
	th_expect_read(d, c->model, c->size, 0);

	for (int i = 0; i < 40; i++) {
		bool aligned = th_rand_below(rng, 2);
		uint64_t off = th_rand_below(rng, c->size);
		size_t len = 1 + th_rand_below(rng, i % 5 ? 5000 : max - 1);

		if (aligned) {
			off &= ~511ull;
			len = (len + 511) & ~511ull;
		}
		if (th_rand_below(rng, 4) == 0)
			do_write(d, c, zero, len, off);
		else
			do_write(d, c, buf + th_rand_below(rng, 64), len, off);
		if (i % 10 == 9)
			th_expect_read(d, c->model, c->size, 0);
	}
	free(buf);
	free(zero);
}

static void test_writes_every_config(void **state)
{
	uint64_t rng = th_seed("VHD_TEST_SEED", "test_io writes");

	for (int k = 0; k < CFG_COUNT; k++) {
		char sub[256];
		struct chain c;
		struct vhd_disk *d;
		struct vhd_info info;

		snprintf(sub, sizeof(sub), "%s/w%d", DIR_, k);
		assert_int_equal(mkdir(sub, 0755), 0);
		print_message("  writes: %s\n", cfg_names[k]);
		build_cfg(&c, sub, k);
		chain_hash_parents(&c);
		d = th_open(c.paths[0], VHD_OPEN_RDWR);
		write_battery(d, &c, c.leaf_bs, &rng);
		assert_int_equal(vhd_flush(d), 0);
		assert_int_equal(vhd_close(d), 0);
		chain_check_parents(&c);

		d = th_open(c.paths[0], VHD_OPEN_RDONLY);
		th_expect_read(d, c.model, c.size, 0);
		assert_int_equal(vhd_get_info(d, &info), 0);
		assert_true(info.file_size == th_file_size(c.paths[0]));
		assert_false(info.footer_from_copy);
		vhd_close(d);
		assert_int_equal(vhd_check(c.paths[0], NULL, NULL), 0);
		chain_check_parents(&c);
		chain_free(&c);
	}
}

static void test_read_past_end(void **state)
{
	struct chain c;
	struct vhd_disk *d;
	uint8_t buf[4096];

	build_cfg(&c, DIR_, CFG_DIFF_512K);
	d = th_open(c.paths[0], VHD_OPEN_RDONLY);
	assert_int_equal(vhd_pread(d, buf, 1000, c.size - 100), 100);
	assert_memory_equal(buf, c.model + c.size - 100, 100);
	assert_int_equal(vhd_pread(d, buf, 512, c.size - 512), 512);
	assert_int_equal(vhd_pread(d, buf, 10, c.size), 0);
	assert_int_equal(vhd_pread(d, buf, 10, c.size + 5000), 0);
	assert_int_equal(vhd_pread(d, buf, 10, UINT64_MAX - 5), 0);
	vhd_close(d);
	chain_free(&c);
}

static void test_write_past_end(void **state)
{
	struct chain c;
	struct vhd_disk *d;
	uint8_t buf[1024] = {1};
	uint64_t h;

	build_cfg(&c, DIR_, CFG_DIFF_512K);
	h = th_file_hash(c.paths[0]);
	d = th_open(c.paths[0], VHD_OPEN_RDWR);
	assert_int_equal(vhd_pwrite(d, buf, 512, c.size), -ENOSPC);
	assert_int_equal(vhd_pwrite(d, buf, 1, c.size + 4096), -ENOSPC);
	assert_int_equal(vhd_pwrite(d, buf, 512, UINT64_MAX - 100), -ENOSPC);
	vhd_close(d);
	assert_true(th_file_hash(c.paths[0]) == h);
	chain_free(&c);
}

/* A write crossing the end is short: the bytes up to the end land. */
static void test_write_crossing_end(void **state)
{
	struct chain c;
	struct vhd_disk *d;
	uint8_t buf[1024];

	build_cfg(&c, DIR_, CFG_DIFF_512K);
	th_fill_pattern(buf, sizeof(buf), 0, 77);
	d = th_open(c.paths[0], VHD_OPEN_RDWR);
	assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), c.size - 100), 100);
	memcpy(c.model + c.size - 100, buf, 100);
	th_expect_read(d, c.model, c.size, 0);
	assert_int_equal(vhd_close(d), 0);
	d = th_open(c.paths[0], VHD_OPEN_RDONLY);
	th_expect_read(d, c.model, c.size, 0);
	vhd_close(d);
	chain_free(&c);
}

static void test_readonly_handles(void **state)
{
	struct chain c;
	struct vhd_disk *d;
	uint8_t buf[512] = {1};
	uint64_t h;

	build_cfg(&c, DIR_, CFG_DIFF_DIFF_FIXED);
	h = th_file_hash(c.paths[0]);
	chain_hash_parents(&c);
	d = th_open(c.paths[0], VHD_OPEN_RDONLY);
	assert_int_equal(vhd_pwrite(d, buf, 512, 0), -EROFS);
	assert_int_equal(vhd_pwrite(d, buf, 1, 7), -EROFS);
	vhd_close(d);
	/* Parents of a writable leaf are never writable. */
	d = th_open(c.paths[0], VHD_OPEN_RDWR);
	assert_int_equal(vhd_pwrite(vhd_parent(d), buf, 512, 0), -EROFS);
	assert_int_equal(vhd_pwrite(vhd_parent(vhd_parent(d)), buf, 512, 0),
			 -EROFS);
	vhd_close(d);
	assert_true(th_file_hash(c.paths[0]) == h);
	chain_check_parents(&c);
	chain_free(&c);
}

/* Flat index of sectors present anywhere in @c (any level), by hand. */
static void test_seek_data_hole(void **state)
{
	const char *b = th_path(DIR_, "base.vhd");
	const char *ch = th_path(DIR_, "child.vhd");
	const uint64_t bs = 2 << 20, size = 8 * bs;
	struct th_layout l;
	uint8_t *bm, *blk;
	struct vhd_disk *d;
	int64_t r;

	/* Base: block 1 full. Child: block 4, sectors 8..15 only. */
	th_create(b, VHD_TYPE_DYNAMIC, size, bs);
	blk = malloc(bs);
	th_fill_pattern(blk, bs, bs, 1);
	th_alloc_block(b, 1, NULL, blk, 0);
	th_create_diff(ch, b);
	th_layout_of(ch, &l);
	bm = calloc(1, l.bitmap_size);
	bm[1] = 0xFF;
	th_alloc_block(ch, 4, bm, blk, 0);

	d = th_open(ch, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_seek_data(d, 0), bs);
	assert_int_equal(vhd_seek_data(d, bs + 77), bs + 77);
	assert_int_equal(vhd_seek_hole(d, 0), 0);
	assert_int_equal(vhd_seek_hole(d, bs), 2 * bs);
	r = vhd_seek_data(d, 2 * bs);
	/* Sector precision is the contract; block precision rounds down. */
	assert_true(r >= (int64_t)(4 * bs) && r <= (int64_t)(4 * bs + 4096));
	r = vhd_seek_hole(d, 4 * bs + 4096);
	assert_true(r >= (int64_t)(4 * bs + 8192) && r <= (int64_t)(5 * bs));
	assert_int_equal(vhd_seek_data(d, 5 * bs), -ENXIO);
	assert_int_equal(vhd_seek_hole(d, 5 * bs), 5 * bs);
	assert_int_equal(vhd_seek_data(d, size), -ENXIO);
	assert_int_equal(vhd_seek_hole(d, size), -ENXIO);
	assert_int_equal(vhd_seek_hole(d, size + 1), -ENXIO);
	vhd_close(d);

	/* Writing into the child makes data; zeros written are data too. */
	d = th_open(ch, VHD_OPEN_RDWR);
	memset(blk, 0, 4096);
	th_write(d, blk, 4096, 6 * bs + 8192);
	r = vhd_seek_data(d, 5 * bs);
	assert_true(r >= (int64_t)(6 * bs) && r <= (int64_t)(6 * bs + 8192));
	r = vhd_seek_hole(d, 6 * bs + 8192);
	assert_true(r >= (int64_t)(6 * bs + 12288) && r <= (int64_t)(7 * bs));
	vhd_close(d);

	/* Fixed: all data. */
	th_create(th_path(DIR_, "f.vhd"), VHD_TYPE_FIXED, TH_MIB, 0);
	d = th_open(th_path(DIR_, "f.vhd"), VHD_OPEN_RDONLY);
	assert_int_equal(vhd_seek_data(d, 4096), 4096);
	assert_int_equal(vhd_seek_hole(d, 4096), TH_MIB);
	assert_int_equal(vhd_seek_data(d, TH_MIB), -ENXIO);
	vhd_close(d);
	free(bm);
	free(blk);
}

/* Sizes and allocation visible in vhd_info follow the writes. */
static void test_allocation_accounting(void **state)
{
	const char *b = th_path(DIR_, "base.vhd");
	const char *ch = th_path(DIR_, "child.vhd");
	uint8_t buf[512];
	struct vhd_info info;
	struct vhd_disk *d;

	th_create(b, VHD_TYPE_DYNAMIC, 16 * TH_MIB, 512 << 10);
	th_create_diff(ch, b);
	d = th_open(ch, VHD_OPEN_RDWR);
	memset(buf, 0, sizeof(buf));
	/* Three separate blocks, one written twice. */
	th_write(d, buf, 512, 0);
	th_write(d, buf, 512, 5 * (512 << 10) + 512);
	th_write(d, buf, 1, 5 * (512 << 10) + 4096);
	th_write(d, buf, 512, 16 * TH_MIB - 512);
	assert_int_equal(vhd_flush(d), 0);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.allocated_blocks, 3);
	vhd_close(d);
	d = th_open(ch, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.allocated_blocks, 3);
	assert_true(info.file_size == th_file_size(ch));
	/* Each block costs its bitmap and data; no more than 4 KiB slack. */
	assert_true(th_file_size(ch) <=
		    3 * ((512 << 10) + 512 + 4096) + 64 * TH_KIB);
	vhd_close(d);
}

/*
 * New blocks go into room reserved past the last block; the file then
 * ends in a valid footer with a hole before it. A copy taken before close
 * (a crash) opens and reads right; close gives the room back.
 */
static void test_block_reserve(void **state)
{
	const char *p = th_path(DIR_, "dyn.vhd");
	const char *crash = th_path(DIR_, "crash.vhd");
	const uint64_t bs = 512 << 10, size = 16 * TH_MIB;
	uint8_t *model = calloc(1, size), buf[1024];
	struct vhd_disk *d;
	uint64_t size0, room;

	th_create(p, VHD_TYPE_DYNAMIC, size, (uint32_t)bs);
	size0 = th_file_size(p);
	d = th_open(p, VHD_OPEN_RDWR);
	th_fill_pattern(buf, sizeof(buf), 0, 21);
	/* The first block of an empty image comes alone... */
	th_write(d, buf, sizeof(buf), 3 * bs + 512);
	memcpy(model + 3 * bs + 512, buf, sizeof(buf));
	assert_true(th_file_size(p) <= size0 + bs + 4096);
	/* ...the second with room for one more, which the third fills. */
	th_write(d, buf, 700, 9 * bs + 4000);
	memcpy(model + 9 * bs + 4000, buf, 700);
	assert_int_equal(vhd_flush(d), 0);
	room = th_file_size(p);
	assert_true(room >= size0 + 3 * bs);
	th_write(d, buf, 512, 12 * bs);
	memcpy(model + 12 * bs, buf, 512);
	assert_int_equal(vhd_flush(d), 0);
	assert_true(th_file_size(p) == room);
	/* The next one moves the footer again. */
	th_write(d, buf, 512, 13 * bs);
	memcpy(model + 13 * bs, buf, 512);
	assert_int_equal(vhd_flush(d), 0);
	assert_true(th_file_size(p) >= room + 3 * bs);
	th_copy_file(p, crash);
	assert_int_equal(vhd_close(d), 0);
	/* Closed: each block costs its bitmap and data, nothing more. */
	assert_true(th_file_size(p) <= size0 + 4 * (bs + 4096));
	d = th_open(p, VHD_OPEN_RDONLY);
	th_expect_read(d, model, size, 0);
	vhd_close(d);
	/* The crashed copy: valid, same content, takes new blocks. */
	assert_true(vhd_check(crash, NULL, NULL) >= 0);
	d = th_open(crash, VHD_OPEN_RDWR);
	th_expect_read(d, model, size, 0);
	th_write(d, buf, 512, 15 * bs);
	memcpy(model + 15 * bs, buf, 512);
	assert_int_equal(vhd_close(d), 0);
	d = th_open(crash, VHD_OPEN_RDONLY);
	th_expect_read(d, model, size, 0);
	vhd_close(d);
	free(model);
}

/*
 * A writer's close(2) through the mount (FLUSH) while the handle lives on:
 * vhd_settle leaves the file as vhd_close would (clean, every write there,
 * no room kept, a VHDX's log closed) and the handle takes more writes.
 */
static void check_settle(const char *dir, const char *name, uint64_t bs)
{
	const char *p = th_path(dir, name);
	const char *copy = th_path(
		dir, name[strlen(name) - 1] == 'x' ? "copy.vhdx" : "copy.vhd");
	const uint64_t size = 16 * TH_MIB;
	uint8_t *model = calloc(1, size), buf[4096];
	struct vhd_disk *d, *r;
	uint64_t size0;

	th_create(p, VHD_TYPE_DYNAMIC, size, (uint32_t)bs);
	size0 = th_file_size(p);
	d = th_open(p, VHD_OPEN_RDWR);
	for (uint64_t i = 0; i < 3; i++) {
		th_fill_pattern(buf, sizeof(buf), 0, 30 + (uint32_t)i);
		th_write(d, buf, sizeof(buf), (2 * i + 1) * bs + 512);
		memcpy(model + (2 * i + 1) * bs + 512, buf, sizeof(buf));
	}
	assert_int_equal(vhd_settle(d), 0);
	assert_true(th_file_size(p) <= size0 + 3 * (bs + TH_MIB));
	th_copy_file(p, copy);
	assert_int_equal(vhd_check(copy, NULL, NULL), 0);
	r = th_open(copy, VHD_OPEN_RDONLY);
	th_expect_read(r, model, size, 0);
	vhd_close(r);
	/* More writes through the same handle, then the real close. */
	th_fill_pattern(buf, sizeof(buf), 0, 40);
	th_write(d, buf, sizeof(buf), 5 * bs + 1024);
	memcpy(model + 5 * bs + 1024, buf, sizeof(buf));
	th_write(d, buf, sizeof(buf), 6 * bs);
	memcpy(model + 6 * bs, buf, sizeof(buf));
	assert_int_equal(vhd_close(d), 0);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);
	d = th_open(p, VHD_OPEN_RDONLY);
	th_expect_read(d, model, size, 0);
	vhd_close(d);
	free(model);
}

static void test_settle(void **state)
{
	check_settle(DIR_, "dyn.vhd", 512 << 10);
	check_settle(DIR_, "dyn.vhdx", TH_MIB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_reads_every_config), T(test_writes_every_config),
		T(test_read_past_end),	    T(test_write_past_end),
		T(test_write_crossing_end), T(test_readonly_handles),
		T(test_seek_data_hole),	    T(test_allocation_accounting),
		T(test_block_reserve),	    T(test_settle),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
