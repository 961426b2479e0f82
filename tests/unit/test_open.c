// SPDX-License-Identifier: MIT
/*
 * Chain resolution: parents found via W2ru, W2ku or the unicode name alone;
 * data space in sectors or bytes; a candidate with the wrong unique id
 * skipped; cycles and over-deep chains refused with ELOOP; a missing parent
 * refused with ENOENT naming every path tried; timestamp mismatch reported,
 * not refused; reads resolve through partial bitmaps at every level.
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
#define BS (2u << 20)
#define SIZE (8 * TH_MIB)

/* Base: blocks 0 and 2 allocated with pattern @tag; flat image in @flat. */
static void mk_base(const char *p, uint32_t tag, uint8_t *flat)
{
	struct th_spec s = {.type = VHD_TYPE_DYNAMIC, .size = SIZE};

	th_build(p, &s);
	memset(flat, 0, SIZE);
	for (uint32_t b = 0; b < 4; b += 2) {
		th_fill_pattern(flat + (uint64_t)b * BS, BS, (uint64_t)b * BS,
				tag);
		th_alloc_block(p, b, NULL, flat + (uint64_t)b * BS, 0);
	}
}

static void uuid_of(const char *p, uint8_t uuid[16])
{
	uint8_t f[512];

	th_read_footer(p, f);
	memcpy(uuid, f + 68, 16);
}

/*
 * Give differencing image @p block @blk with bitmap byte 0 = @bits (rest
 * clear) and data pattern @tag; apply the present sectors to @flat.
 */
static void child_block(const char *p, uint32_t blk, uint8_t bits, uint32_t tag,
			uint8_t *flat)
{
	struct th_layout l;
	uint8_t *bm, *data;

	th_layout_of(p, &l);
	bm = calloc(1, l.bitmap_size);
	data = malloc(l.block_size);
	bm[0] = bits;
	th_fill_pattern(data, l.block_size, (uint64_t)blk * l.block_size, tag);
	th_alloc_block(p, blk, bm, data, 0);
	for (int s = 0; s < 8; s++)
		if (bits & (0x80 >> s))
			memcpy(flat + (uint64_t)blk * l.block_size + s * 512,
			       data + s * 512, 512);
	free(bm);
	free(data);
}

static void mk_child(const char *p, const char *parent, const char *w2ru,
		     const char *w2ku, const char *uname, bool sectors)
{
	struct th_spec c = {.type = VHD_TYPE_DIFF, .size = SIZE};

	uuid_of(parent, c.parent_uuid);
	c.parent_ts = (uint32_t)(th_mtime(parent) - VHD_EPOCH_OFFSET);
	c.w2ru = w2ru;
	c.w2ku = w2ku;
	c.parent_name = uname;
	c.locator_space_sectors = sectors;
	th_build(p, &c);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return !stat(a, &sa) && !stat(b, &sb) && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

/* Open @child, check its parent is @parent and the flat image is @flat. */
static void check_chain(const char *child, const char *parent,
			const uint8_t *flat)
{
	struct vhd_disk *d = th_open(child, VHD_OPEN_RDONLY);
	char found[4096];

	assert_non_null(vhd_parent(d));
	assert_true(same_file(vhd_path(vhd_parent(d)), parent));
	assert_int_equal(vhd_find_parent(d, found, sizeof(found)), 0);
	assert_true(same_file(found, parent));
	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
}

static void run_found_via(void **state, const char *w2ru, bool w2ku,
			  const char *uname, bool sectors)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = malloc(SIZE);

	mk_base(base, 1, flat);
	mk_child(child, base, w2ru, w2ku ? base : NULL, uname, sectors);
	/* Partial bitmap bytes over parent data and over a hole. */
	child_block(child, 2, 0x5a, 2, flat);
	child_block(child, 1, 0x81, 3, flat);
	check_chain(child, base, flat);
	free(flat);
}

static void test_found_via_w2ru_only(void **state)
{
	run_found_via(state, ".\\base.vhd", false, NULL, false);
}

static void test_found_via_w2ku_only(void **state)
{
	run_found_via(state, NULL, true, NULL, false);
}

static void test_found_via_unicode_name_only(void **state)
{
	run_found_via(state, NULL, false, "base.vhd", false);
}

static void test_locator_space_in_sectors(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	struct vhd_locator_info li;
	struct vhd_disk *d;

	run_found_via(state, ".\\base.vhd", false, NULL, true);
	d = th_open(child, VHD_OPEN_NOPARENT);
	assert_int_equal(vhd_locator_count(d), 1);
	assert_int_equal(vhd_get_locator(d, 0, &li), 0);
	assert_int_equal(li.code, TH_W2RU);
	assert_string_equal(li.code_str, "W2ru");
	assert_int_equal(li.data_space, 1);
	assert_int_equal(li.data_length, 20);
	assert_string_equal(li.path, "./base.vhd");
	vhd_close(d);
}

static void test_locator_space_in_bytes(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	struct vhd_locator_info li;
	struct vhd_disk *d;

	run_found_via(state, ".\\base.vhd", true, NULL, false);
	d = th_open(child, VHD_OPEN_NOPARENT);
	assert_int_equal(vhd_locator_count(d), 2);
	assert_int_equal(vhd_get_locator(d, 0, &li), 0);
	assert_int_equal(li.data_space, 512);
	assert_int_equal(li.data_length, 20);
	assert_string_equal(li.path, "./base.vhd");
	assert_int_equal(vhd_get_locator(d, 1, &li), 0);
	assert_int_equal(li.code, TH_W2KU);
	assert_string_equal(li.code_str, "W2ku");
	assert_string_equal(li.path, th_path(DIR_, "base.vhd"));
	assert_true(vhd_get_locator(d, 2, &li) < 0);
	vhd_close(d);
}

/* W2ru into a subdirectory, with Windows separators. */
static void test_w2ru_subdirectory(void **state)
{
	char sub[4096];
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = malloc(SIZE);
	const char *base;

	snprintf(sub, sizeof(sub), "%s/golden", DIR_);
	assert_int_equal(mkdir(sub, 0755), 0);
	base = th_path(sub, "base.vhd");
	mk_base(base, 4, flat);
	mk_child(child, base, ".\\golden\\base.vhd", NULL, "base.vhd", false);
	child_block(child, 0, 0xF0, 5, flat);
	check_chain(child, base, flat);
	free(flat);
}

/* W2ru names an image with another id; the unicode name the right one. */
static void test_wrong_id_candidate_skipped(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *other = th_path(DIR_, "other.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = malloc(SIZE), *junk = malloc(SIZE);

	mk_base(base, 6, flat);
	mk_base(other, 7, junk);
	mk_child(child, base, ".\\other.vhd", other, "base.vhd", false);
	check_chain(child, base, flat);
	free(flat);
	free(junk);
}

static void test_parent_id_mismatch(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = malloc(SIZE), h[1024];
	char found[4096];
	struct vhd_disk *d;

	mk_base(base, 6, flat);
	mk_child(child, base, ".\\base.vhd", base, "base.vhd", false);
	th_read_header(child, h);
	h[40] ^= 0xFF;
	th_write_header(child, h);
	th_open_fails(child, VHD_OPEN_RDONLY, EINVAL, ENOENT,
		      TH_WORDS("id", "uuid", "identifier", "mismatch"));
	d = th_open(child, VHD_OPEN_NOPARENT);
	assert_int_equal(vhd_find_parent(d, found, sizeof(found)), -EINVAL);
	vhd_close(d);
	free(flat);
}

static void test_missing_parent_names_paths(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = malloc(SIZE);
	struct th_spec c = {.type = VHD_TYPE_DIFF, .size = SIZE};
	char found[4096];
	struct vhd_disk *d;

	mk_base(base, 6, flat);
	uuid_of(base, c.parent_uuid);
	c.w2ru = ".\\gone-ru.vhd";
	c.w2ku = "/nonexistent-dir/gone-ku.vhd";
	c.parent_name = "gone-un.vhd";
	th_build(child, &c);
	th_open_fails(child, VHD_OPEN_RDONLY, ENOENT, 0,
		      TH_WORDS("not found", "parent", "no such"));
	assert_true(th_msg_has("gone-ru.vhd"));
	assert_true(th_msg_has("/nonexistent-dir/gone-ku.vhd"));
	assert_true(th_msg_has("gone-un.vhd"));

	d = th_open(child, VHD_OPEN_NOPARENT);
	assert_int_equal(vhd_find_parent(d, found, sizeof(found)), -ENOENT);
	assert_true(th_msg_has("gone-ru.vhd"));
	assert_true(th_msg_has("gone-ku.vhd"));
	assert_true(th_msg_has("gone-un.vhd"));
	vhd_close(d);
	free(flat);
}

/* Without the parent, metadata and child-held sectors stay readable. */
static void test_noparent_open(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *base = th_path(DIR_, "base.vhd");
	uint8_t *flat = malloc(SIZE), buf[512];
	struct vhd_info info;
	struct vhd_disk *d;

	mk_base(base, 8, flat);
	mk_child(child, base, ".\\base.vhd", NULL, "base.vhd", false);
	child_block(child, 1, 0xFF, 9, flat);
	assert_int_equal(unlink(base), 0);

	th_open_fails(child, VHD_OPEN_RDONLY, ENOENT, 0,
		      TH_WORDS("not found", "parent", "no such"));
	d = th_open(child, VHD_OPEN_NOPARENT);
	assert_null(vhd_parent(d));
	assert_int_equal(vhd_type(d), VHD_TYPE_DIFF);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_string_equal(info.parent_name, "base.vhd");
	assert_int_equal(info.allocated_blocks, 1);
	/* Sector 3 of block 1 is in the child; sector 8 would need it. */
	assert_int_equal(vhd_pread(d, buf, 512, BS + 3 * 512), 512);
	assert_memory_equal(buf, flat + BS + 3 * 512, 512);
	assert_int_equal(vhd_pread(d, buf, 512, BS + 8 * 512), -ENOENT);
	assert_int_equal(vhd_pread(d, buf, 512, 0), -ENOENT);
	vhd_close(d);
	free(flat);
}

static void test_info_of_differencing(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = malloc(SIZE), puuid[16], h[1024];
	struct vhd_info info;
	struct vhd_disk *d;

	mk_base(base, 1, flat);
	th_set_mtime(base, 1500000000);
	mk_child(child, base, ".\\base.vhd", NULL, "base.vhd", false);
	uuid_of(base, puuid);
	th_read_header(child, h);

	d = th_open(child, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.type, VHD_TYPE_DIFF);
	assert_memory_equal(info.parent_uuid, puuid, 16);
	assert_int_equal(info.parent_timestamp, 1500000000 - VHD_EPOCH_OFFSET);
	assert_string_equal(info.parent_name, "base.vhd");
	assert_false(info.parent_timestamp_mismatch);
	assert_int_equal(info.block_size, BS);
	assert_int_equal(info.allocated_blocks, 0);
	vhd_close(d);
	free(flat);
}

static void test_timestamp_mismatch_reported(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = malloc(SIZE);
	struct vhd_info info;
	struct vhd_disk *d;

	mk_base(base, 1, flat);
	th_set_mtime(base, 1500000000);
	mk_child(child, base, ".\\base.vhd", NULL, "base.vhd", false);
	child_block(child, 3, 0x3C, 2, flat);
	th_set_mtime(base, 1600000000); /* copied, touched: mtime moved */

	d = th_open(child, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_true(info.parent_timestamp_mismatch);
	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
	free(flat);
}

static void test_cycle_two(void **state)
{
	const char *a = th_path(DIR_, "a.vhd");
	const char *b = th_path(DIR_, "b.vhd");
	struct th_spec sa = {.type = VHD_TYPE_DIFF, .size = SIZE};
	struct th_spec sb = {.type = VHD_TYPE_DIFF, .size = SIZE};

	th_random_uuid(sa.uuid);
	th_random_uuid(sb.uuid);
	memcpy(sa.parent_uuid, sb.uuid, 16);
	memcpy(sb.parent_uuid, sa.uuid, 16);
	sa.w2ru = ".\\b.vhd";
	sa.parent_name = "b.vhd";
	sb.w2ru = ".\\a.vhd";
	sb.parent_name = "a.vhd";
	th_build(a, &sa);
	th_build(b, &sb);
	th_open_fails(a, VHD_OPEN_RDONLY, ELOOP, 0,
		      TH_WORDS("cycle", "loop", "deep", "chain"));
	th_open_fails(b, VHD_OPEN_RDONLY, ELOOP, 0,
		      TH_WORDS("cycle", "loop", "deep", "chain"));
}

static void test_cycle_self(void **state)
{
	const char *a = th_path(DIR_, "self.vhd");
	struct th_spec sa = {.type = VHD_TYPE_DIFF, .size = SIZE};

	th_random_uuid(sa.uuid);
	memcpy(sa.parent_uuid, sa.uuid, 16);
	sa.w2ru = ".\\self.vhd";
	th_build(a, &sa);
	th_open_fails(a, VHD_OPEN_RDONLY, ELOOP, 0,
		      TH_WORDS("cycle", "loop", "deep", "chain"));
}

/* Chain of @depth images (base counted); returns the leaf path. */
static const char *mk_deep(const char *dir, int depth, uint8_t *flat)
{
	char name[64], prev[64];
	const char *leaf = NULL;

	mk_base(th_path(dir, "d0.vhd"), 1, flat);
	snprintf(prev, sizeof(prev), "d0.vhd");
	for (int i = 1; i < depth; i++) {
		char ru[80];

		snprintf(name, sizeof(name), "d%d.vhd", i);
		snprintf(ru, sizeof(ru), ".\\%s", prev);
		leaf = th_path(dir, name);
		mk_child(leaf, th_path(dir, prev), ru, NULL, NULL, false);
		/* Each level owns sector i of block 1. */
		if (i < 8)
			child_block(leaf, 1, (uint8_t)(0x80 >> i), 100 + i,
				    flat);
		snprintf(prev, sizeof(prev), "%s", name);
	}
	return leaf;
}

static void test_chain_at_max_depth(void **state)
{
	uint8_t *flat = malloc(SIZE);
	const char *leaf = mk_deep(DIR_, VHD_MAX_CHAIN_DEPTH, flat);
	struct vhd_disk *d = th_open(leaf, VHD_OPEN_RDONLY), *p;
	int n = 0;

	for (p = d; p; p = vhd_parent(p))
		n++;
	assert_int_equal(n, VHD_MAX_CHAIN_DEPTH);
	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
	free(flat);
}

static void test_chain_too_deep(void **state)
{
	uint8_t *flat = malloc(SIZE);
	const char *leaf = mk_deep(DIR_, VHD_MAX_CHAIN_DEPTH + 1, flat);
	struct vhd_disk *d = NULL;

	/* Which file the message names is the library's choice here. */
	assert_int_equal(vhd_open(leaf, VHD_OPEN_RDONLY, &d), -ELOOP);
	assert_true(th_msg_has("deep") || th_msg_has("depth") ||
		    th_msg_has("chain") || th_msg_has("loop"));
	free(flat);
}

/* Three levels, each with partial bitmaps over the others. */
static void test_three_levels_partial_bitmaps(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *mid = th_path(DIR_, "mid.vhd");
	const char *leaf = th_path(DIR_, "leaf.vhd");
	uint8_t *flat = malloc(SIZE);

	mk_base(base, 1, flat);
	mk_child(mid, base, ".\\base.vhd", base, "base.vhd", false);
	child_block(mid, 0, 0xAA, 2, flat);
	child_block(mid, 1, 0x0F, 3, flat);
	mk_child(leaf, mid, ".\\mid.vhd", mid, "mid.vhd", false);
	child_block(leaf, 0, 0x18, 4, flat);
	child_block(leaf, 3, 0x01, 5, flat);
	check_chain(leaf, mid, flat);
	free(flat);
}

/* A child larger than its parent (expanded): past the parent, zeros. */
static void test_child_larger_than_parent(void **state)
{
	const char *base = th_path(DIR_, "small.vhd");
	const char *child = th_path(DIR_, "big.vhd");
	struct th_spec b = {.type = VHD_TYPE_FIXED, .size = 3 * TH_MIB};
	struct th_spec c = {.type = VHD_TYPE_DIFF, .size = SIZE};
	uint8_t *flat = calloc(1, SIZE);
	struct vhd_disk *d;

	th_build(base, &b);
	th_fill_pattern(flat, 3 * TH_MIB, 0, 12);
	th_pwrite_raw(base, flat, 3 * TH_MIB, 0);
	uuid_of(base, c.parent_uuid);
	c.parent_name = "small.vhd";
	th_build(child, &c);
	child_block(child, 3, 0x40, 13, flat);

	d = th_open(child, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_type(vhd_parent(d)), VHD_TYPE_FIXED);
	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
	free(flat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_found_via_w2ru_only),
		T(test_found_via_w2ku_only),
		T(test_found_via_unicode_name_only),
		T(test_locator_space_in_sectors),
		T(test_locator_space_in_bytes),
		T(test_w2ru_subdirectory),
		T(test_wrong_id_candidate_skipped),
		T(test_parent_id_mismatch),
		T(test_missing_parent_names_paths),
		T(test_noparent_open),
		T(test_info_of_differencing),
		T(test_timestamp_mismatch_reported),
		T(test_cycle_two),
		T(test_cycle_self),
		T(test_chain_at_max_depth),
		T(test_chain_too_deep),
		T(test_three_levels_partial_bitmaps),
		T(test_child_larger_than_parent),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
