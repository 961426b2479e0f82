// SPDX-License-Identifier: MIT
/*
 * vhd_convert: a 3-level chain into fixed and dynamic images equal to its
 * flat view (as the library reads the original chain); dynamic output
 * allocates only blocks holding non-zero data; atomic on every failure
 * (existing target, cancel, a write failing anywhere). The same into a
 * VHDX, and from a VHDX chain into both formats.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define BS (512u << 10)
#define SIZE (8 * (uint64_t)BS + 1536)

static void put(const char *path, uint64_t off, size_t len, uint32_t tag)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDWR);
	uint8_t *buf = malloc(len);

	if (tag)
		th_fill_pattern(buf, len, off, tag);
	else
		memset(buf, 0, len);
	th_write(d, buf, len, off);
	assert_int_equal(vhd_close(d), 0);
	free(buf);
}

/* base <- mid <- child; block 5 is written but holds only zeros. */
static uint8_t *chain(const char *dir)
{
	const char *base = th_path(dir, "base.vhd");
	const char *mid = th_path(dir, "mid.vhd");
	const char *child = th_path(dir, "child.vhd");
	struct vhd_disk *d;
	uint8_t *flat;

	th_create(base, VHD_TYPE_DYNAMIC, SIZE, BS);
	put(base, 0, 100000, 1);
	put(base, 5 * BS, 4096, 2);
	th_create_diff(mid, base);
	put(mid, BS - 700, 3000, 3);
	put(mid, 5 * BS, 4096, 0);
	th_create_diff(child, mid);
	put(child, 50000, 2000, 4);
	put(child, SIZE - 1000, 1000, 5);
	d = th_open(child, VHD_OPEN_RDONLY);
	flat = th_read_all(d);
	vhd_close(d);
	return flat;
}

static int nonzero_blocks(const uint8_t *flat, uint32_t bs)
{
	int n = 0;

	for (uint64_t off = 0; off < SIZE; off += bs) {
		uint64_t len = SIZE - off < bs ? SIZE - off : bs;

		for (uint64_t i = 0; i < len; i++) {
			if (flat[off + i]) {
				n++;
				break;
			}
		}
	}
	return n;
}

static int calls;

static int count(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	assert_true(done <= total);
	calls++;
	return 0;
}

/* The chain into @name (.vhd or .vhdx) as @type with @bs-byte blocks. */
static void convert_into(const char *dir, const char *name, enum vhd_type type,
			 uint32_t bs, uint32_t defbs)
{
	const char *child = th_path(dir, "child.vhd");
	char *out = strdup(th_path(dir, name));
	struct vhd_create_params p = {.type = type, .block_size = bs};
	uint8_t *flat = chain(dir);
	struct vhd_info info;
	struct vhd_disk *d;

	calls = 0;
	assert_int_equal(vhd_convert(child, out, &p, count, NULL), 0);
	assert_true(calls >= 2);
	d = th_open(out, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.type, type);
	assert_int_equal(info.current_size, SIZE);
	th_expect_read(d, flat, SIZE, 0);
	if (type == VHD_TYPE_DYNAMIC)
		assert_int_equal(info.allocated_blocks,
				 nonzero_blocks(flat, bs ? bs : defbs));
	vhd_close(d);
	assert_int_equal(vhd_check(out, NULL, NULL), 0);
	free(flat);
	free(out);
}

static void convert_to(const char *dir, enum vhd_type type, uint32_t bs)
{
	convert_into(dir, "out.vhd", type, bs, 2u << 20);
}

static void test_to_dynamic(void **state)
{
	convert_to(DIR_, VHD_TYPE_DYNAMIC, BS);
}

static void test_to_dynamic_default_block(void **state)
{
	convert_to(DIR_, VHD_TYPE_DYNAMIC, 0);
}

static void test_to_fixed(void **state)
{
	convert_to(DIR_, VHD_TYPE_FIXED, 0);
}

static int stop(void *ctx, uint64_t done, uint64_t total)
{
	(void)total;
	return done >= *(uint64_t *)ctx;
}

/* A write failing at any point of converting @src leaves no @out. */
static void fault_sweep(const char *dir, const char *src, const char *out,
			const struct vhd_create_params *p)
{
	int entries = th_count_entries(dir);
	long writes;

	th_fault_install(-1, TH_CUT_KEEP);
	assert_int_equal(vhd_convert(src, out, p, NULL, NULL), 0);
	writes = th_fault_writes();
	th_fault_remove();
	unlink(out);
	for (long cut = 0; cut < writes; cut++) {
		th_fault_install(cut, TH_CUT_KEEP);
		assert_int_equal(vhd_convert(src, out, p, NULL, NULL), -EIO);
		th_fault_remove();
		assert_int_equal(th_count_entries(dir), entries);
	}
}

static void test_atomic(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *out = th_path(DIR_, "out.vhd");
	const char *base = th_path(DIR_, "base.vhd");
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC};
	uint8_t *flat = chain(DIR_);
	int entries = th_count_entries(DIR_);
	uint64_t h = th_file_hash(base);
	uint64_t at[] = {0, SIZE / 2, SIZE};

	/* Existing target: refused, not replaced. */
	assert_int_equal(vhd_convert(child, base, &p, NULL, NULL), -EEXIST);
	assert_true(th_file_hash(base) == h);
	/* Cancel at the start, mid-way and at the very end. */
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		assert_int_equal(vhd_convert(child, out, &p, stop, &at[i]),
				 -ECANCELED);
		assert_int_equal(th_count_entries(DIR_), entries);
	}
	/* A write failing anywhere leaves nothing. */
	fault_sweep(DIR_, child, out, &p);
	/* Bad parameters. */
	p.size = SIZE * 2;
	assert_int_equal(vhd_convert(child, out, &p, NULL, NULL), -EINVAL);
	p.size = 0;
	p.type = VHD_TYPE_DIFF;
	assert_int_equal(vhd_convert(child, out, &p, NULL, NULL), -EINVAL);
	assert_int_equal(
		vhd_convert(th_path(DIR_, "none.vhd"), out, &p, NULL, NULL),
		-EINVAL);
	p.type = VHD_TYPE_FIXED;
	assert_int_equal(
		vhd_convert(th_path(DIR_, "none.vhd"), out, &p, NULL, NULL),
		-ENOENT);
	assert_int_equal(th_count_entries(DIR_), entries);
	free(flat);
}

/* A VHD chain into a VHDX: dynamic (only non-zero blocks) and fixed. */
static void test_to_vhdx_dynamic(void **state)
{
	convert_into(DIR_, "out.vhdx", VHD_TYPE_DYNAMIC, 1u << 20, 0);
}

static void test_to_vhdx_fixed(void **state)
{
	convert_into(DIR_, "out.vhdx", VHD_TYPE_FIXED, 0, 0);
}

/* A VHDX chain into a VHD and into a VHDX, reading the same. */
static void test_from_vhdx(void **state)
{
	struct vhd_create_params dyn = {.type = VHD_TYPE_DYNAMIC, .size = SIZE};
	char *base = strdup(th_path(DIR_, "b.vhdx"));
	char *child = strdup(th_path(DIR_, "c.avhdx"));
	const char *outs[] = {"o.vhd", "o.vhdx"};
	struct vhd_disk *d;
	uint8_t *flat;

	assert_int_equal(vhd_create(base, &dyn), 0);
	put(base, 0, 100000, 1);
	put(base, 3 * BS, 4096, 2);
	assert_int_equal(vhd_create_diff(child, base), 0);
	put(child, BS - 700, 3000, 3);
	put(child, 3 * BS, 4096, 0);
	put(child, SIZE - 1000, 1000, 5);
	d = th_open(child, VHD_OPEN_RDONLY);
	flat = th_read_all(d);
	vhd_close(d);
	for (int i = 0; i < 2; i++) {
		const char *out = th_path(DIR_, outs[i]);

		assert_int_equal(vhd_convert(child, out, &dyn, NULL, NULL), 0);
		d = th_open(out, VHD_OPEN_RDONLY);
		assert_int_equal(vhd_type(d), VHD_TYPE_DYNAMIC);
		th_expect_read(d, flat, SIZE, 0);
		vhd_close(d);
		assert_int_equal(vhd_check(out, NULL, NULL), 0);
	}
	free(flat);
	free(base);
	free(child);
}

/* Into a VHDX: a write failing anywhere, or a cancel, leaves nothing. */
static void test_vhdx_atomic(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *out = th_path(DIR_, "out.vhdx");
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC,
				      .block_size = 1u << 20};
	uint8_t *flat = chain(DIR_);
	int entries = th_count_entries(DIR_);
	uint64_t half = SIZE / 2;

	assert_int_equal(vhd_convert(child, out, &p, stop, &half), -ECANCELED);
	assert_int_equal(th_count_entries(DIR_), entries);
	fault_sweep(DIR_, child, out, &p);
	free(flat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_to_dynamic),	 T(test_to_dynamic_default_block),
		T(test_to_fixed),	 T(test_atomic),
		T(test_to_vhdx_dynamic), T(test_to_vhdx_fixed),
		T(test_from_vhdx),	 T(test_vhdx_atomic),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
