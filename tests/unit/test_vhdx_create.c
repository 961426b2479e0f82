// SPDX-License-Identifier: MIT
/*
 * Creating VHDX images: the shape Hyper-V gives them, read back by our own
 * reader after reopening; refusals (mixed formats, bad block sizes) and
 * failed writes leave no file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"
#include "vhd.h"

#define DIR_ (*(const char **)state)
#define MIB (1024ull * 1024)

static void open_info(const char *path, struct vhd_disk **d,
		      struct vhd_info *in)
{
	assert_int_equal(vhd_open(path, VHD_OPEN_RDONLY, d), 0);
	assert_int_equal(vhd_get_info(*d, in), 0);
	assert_int_equal(in->format, VHD_FORMAT_VHDX);
}

static void expect_zeros(struct vhd_disk *d, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	memset(buf, 0x55, len);
	assert_int_equal(vhd_pread(d, buf, len, off), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(buf[i], 0);
	free(buf);
}

static void test_dynamic(void **state)
{
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC,
				      .size = 100 * MIB + 1};
	const char *path = th_path(DIR_, "d.vhdx");
	struct vhd_disk *d;
	struct vhd_info in;

	assert_int_equal(vhd_create(path, &p), 0);
	open_info(path, &d, &in);
	assert_int_equal(in.type, VHD_TYPE_DYNAMIC);
	assert_true(in.current_size == 100 * MIB + 512);
	assert_int_equal(in.block_size, 32 * MIB);
	assert_int_equal(in.logical_sector_size, 512);
	assert_int_equal(in.physical_sector_size, 4096);
	assert_int_equal(in.allocated_blocks, 0);
	assert_true(in.table_offset == 3 * MIB);
	assert_true(in.file_size == 4 * MIB);
	expect_zeros(d, 100 * MIB - 4096, 4096 + 512);
	vhd_close(d);
	/* an existing file is never replaced */
	assert_int_equal(vhd_create(path, &p), -EEXIST);
}

static void test_fixed(void **state)
{
	struct vhd_create_params p = {.type = VHD_TYPE_FIXED, .size = 40 * MIB};
	const char *path = th_path(DIR_, "f.vhdx");
	struct vhd_disk *d;
	struct vhd_info in;

	assert_int_equal(vhd_create(path, &p), 0);
	open_info(path, &d, &in);
	assert_int_equal(in.type, VHD_TYPE_FIXED);
	assert_int_equal(in.allocated_blocks, 2);
	assert_true(in.file_size == 4 * MIB + 64 * MIB);
	expect_zeros(d, 0, 1 << 20);
	vhd_close(d);
}

static void test_differencing(void **state)
{
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC,
				      .size = 64 * MIB,
				      .block_size = 8 * MIB};
	const char *base = th_path(DIR_, "b.vhdx");
	char *child = strdup(th_path(DIR_, "c.avhdx"));
	char *grand = strdup(th_path(DIR_, "g.vhdx"));
	struct vhd_disk *d;
	struct vhd_info in, pin;

	assert_int_equal(vhd_create(base, &p), 0);
	assert_int_equal(vhd_create_diff(child, base), 0);
	assert_int_equal(vhd_create_diff(grand, child), 0);
	open_info(grand, &d, &in);
	assert_int_equal(in.type, VHD_TYPE_DIFF);
	assert_int_equal(in.block_size, 2 * MIB);
	assert_true(in.current_size == 64 * MIB);
	assert_string_equal(in.parent_name, ".\\c.avhdx");
	assert_non_null(vhd_parent(d));
	assert_non_null(vhd_parent(vhd_parent(d)));
	assert_int_equal(vhd_get_info(vhd_parent(d), &pin), 0);
	/* the child keeps the disk id of its parent */
	assert_memory_equal(in.uuid, pin.uuid, 16);
	expect_zeros(d, 0, 1 << 20);
	vhd_close(d);
	free(child);
	free(grand);
}

static void test_refusals(void **state)
{
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC,
				      .size = 8 * MIB};
	char *vhd = strdup(th_path(DIR_, "v.vhd"));
	char *vhdx = strdup(th_path(DIR_, "x.vhdx"));

	assert_int_equal(vhd_create(vhd, &p), 0);
	assert_int_equal(vhd_create(vhdx, &p), 0);
	assert_int_equal(vhd_create_diff(th_path(DIR_, "c.avhdx"), vhd),
			 -EINVAL);
	assert_non_null(strstr(vhd_errmsg(), "does not mix"));
	assert_int_equal(vhd_create_diff(th_path(DIR_, "c.vhd"), vhdx),
			 -EINVAL);
	assert_non_null(strstr(vhd_errmsg(), "does not mix"));
	p.block_size = 512 * 1024;
	assert_int_equal(vhd_create(th_path(DIR_, "s.vhdx"), &p), -EINVAL);
	assert_non_null(strstr(vhd_errmsg(), "1 MiB to 256 MiB"));
	p.block_size = 0;
	p.size = 65ull << 40;
	assert_int_equal(vhd_create(th_path(DIR_, "big.vhdx"), &p), -EFBIG);
	assert_int_equal(th_count_entries(DIR_), 2);
	free(vhd);
	free(vhdx);
}

/* The image operations that do not know VHDX yet refuse it unchanged. */
static void test_ops_refused(void **state)
{
	struct vhd_create_params p = {.type = VHD_TYPE_DYNAMIC,
				      .size = 8 * MIB};
	char *base = strdup(th_path(DIR_, "b.vhdx"));
	char *child = strdup(th_path(DIR_, "c.avhdx"));
	uint64_t hb, hc, reclaimed;

	assert_int_equal(vhd_create(base, &p), 0);
	assert_int_equal(vhd_create_diff(child, base), 0);
	hb = th_file_hash(base);
	hc = th_file_hash(child);
	assert_int_equal(vhd_compact(child, &reclaimed, NULL, NULL),
			 -EOPNOTSUPP);
	assert_non_null(strstr(vhd_errmsg(), "differencing VHDX"));
	assert_int_equal(vhd_repair(child, 0, NULL, NULL), 0); /* clean */
	assert_true(th_file_hash(base) == hb);
	assert_true(th_file_hash(child) == hc);
	assert_int_equal(th_count_entries(DIR_), 2);
	free(base);
	free(child);
}

/* A write failing at any point of creation leaves no file. */
static void test_write_faults(void **state)
{
	struct vhd_create_params p = {.type = VHD_TYPE_FIXED, .size = 8 * MIB};
	const char *path = th_path(DIR_, "w.vhdx");
	long total;

	th_fault_install(-1, TH_CUT_KEEP);
	assert_int_equal(vhd_create(path, &p), 0);
	total = th_fault_writes();
	th_fault_remove();
	assert_true(total >= 6);
	unlink(path);
	for (long cut = 0; cut < total; cut++) {
		th_fault_install(cut, TH_CUT_KEEP);
		assert_int_equal(vhd_create(path, &p), -EIO);
		th_fault_remove();
		assert_false(th_exists(path));
		assert_int_equal(th_count_entries(DIR_), 0);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_dynamic),  T(test_fixed),	T(test_differencing),
		T(test_refusals), T(test_write_faults), T(test_ops_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
