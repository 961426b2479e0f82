// SPDX-License-Identifier: MIT
/*
 * Footer decoding: valid images of each type open with the fields they
 * store; truncated files, bad cookies, bad checksums, bad types and absurd
 * sizes are refused with a message naming the file and the defect, and the
 * offset-0 copy stands in for a bad trailing footer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)

static void build(const char *path, enum vhd_type type, uint64_t size)
{
	struct th_spec s = {.type = type, .size = size};

	th_build(path, &s);
}

static void test_fixed_opens(void **state)
{
	const char *p = th_path(DIR_, "fixed.vhd");
	uint8_t footer[512], data[4096], expect[4096];
	struct vhd_info info;
	struct vhd_disk *d;

	build(p, VHD_TYPE_FIXED, 3 * TH_MIB + 1024);
	th_fill_pattern(data, sizeof(data), 0, 7);
	/* Raw data at offset 1 MiB - 1 KiB must be virtual bytes there. */
	th_pwrite_raw(p, data, sizeof(data), TH_MIB - 1024);
	th_read_footer(p, footer);

	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_type(d), VHD_TYPE_FIXED);
	assert_true(vhd_size(d) == 3 * TH_MIB + 1024);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.type, VHD_TYPE_FIXED);
	assert_true(info.current_size == 3 * TH_MIB + 1024);
	assert_true(info.original_size == 3 * TH_MIB + 1024);
	assert_true(info.file_size == 3 * TH_MIB + 1024 + 512);
	assert_string_equal(info.creator_app, "tst ");
	assert_int_equal(info.creator_os, 0x5769326B);
	assert_int_equal(info.creator_version, 0x00010000);
	assert_int_equal(info.features, 2);
	assert_int_equal(info.timestamp, th_get_be32(footer + 24));
	assert_int_equal(info.cylinders, th_get_be16(footer + 56));
	assert_int_equal(info.heads, footer[58]);
	assert_int_equal(info.sectors_per_track, footer[59]);
	assert_memory_equal(info.uuid, footer + 68, 16);
	assert_false(info.footer_from_copy);
	assert_false(info.saved_state);
	assert_int_equal(info.block_size, 0);
	assert_string_equal(vhd_type_name(VHD_TYPE_FIXED), "fixed");
	assert_string_equal(vhd_path(d), p);
	assert_null(vhd_parent(d));

	th_expect_read(d, data, sizeof(data), TH_MIB - 1024);
	memset(expect, 0, sizeof(expect));
	th_expect_read(d, expect, sizeof(expect), 2 * TH_MIB);
	vhd_close(d);
}

static void test_dynamic_opens(void **state)
{
	const char *p = th_path(DIR_, "dyn.vhd");
	uint8_t footer[512], *blk, *zero;
	struct vhd_info info;
	struct vhd_disk *d;

	build(p, VHD_TYPE_DYNAMIC, 5 * TH_MIB);
	blk = malloc(2 * TH_MIB);
	zero = calloc(1, 2 * TH_MIB);
	th_fill_pattern(blk, 2 * TH_MIB, 2 * TH_MIB, 3);
	th_alloc_block(p, 1, NULL, blk, 0);
	th_read_footer(p, footer);

	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_type(d), VHD_TYPE_DYNAMIC);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_true(info.current_size == 5 * TH_MIB);
	assert_int_equal(info.block_size, 2 * TH_MIB);
	assert_int_equal(info.max_table_entries, 3);
	assert_int_equal(info.allocated_blocks, 1);
	assert_true(info.table_offset == 1536);
	assert_true(info.file_size == th_file_size(p));
	assert_memory_equal(info.uuid, footer + 68, 16);
	assert_false(info.footer_from_copy);
	assert_string_equal(vhd_type_name(VHD_TYPE_DYNAMIC), "dynamic");
	assert_string_equal(vhd_type_name(VHD_TYPE_DIFF), "differencing");

	th_expect_read(d, zero, 2 * TH_MIB, 0);
	th_expect_read(d, blk, 2 * TH_MIB, 2 * TH_MIB);
	th_expect_read(d, zero, TH_MIB, 4 * TH_MIB);
	vhd_close(d);
	free(blk);
	free(zero);
}

static void test_empty_and_short_files(void **state)
{
	const char *p = th_path(DIR_, "short.vhd");
	static const size_t sizes[] = {0, 1, 100, 511};
	uint8_t buf[512];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		/* A footer's first bytes, then nothing: never enough. */
		build(p, VHD_TYPE_FIXED, 0);
		th_pread_raw(p, buf, 512, 0);
		th_write_file(p, buf, sizes[i]);
		th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
			      TH_WORDS("footer", "small", "short", "truncat",
				       "size", "cookie", "not a vhd"));
	}
}

/* A dynamic image truncated into its header: unusable. */
static void test_truncated_header(void **state)
{
	const char *p = th_path(DIR_, "trunc.vhd");

	build(p, VHD_TYPE_DYNAMIC, 4 * TH_MIB);
	th_truncate(p, 1024);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("header", "cxsparse", "truncat", "short",
			       "footer", "BAT", "table"));
}

/* Trailing footer cut in half: the copy at offset 0 stands in. */
static void test_truncated_trailing_footer_uses_copy(void **state)
{
	const char *p = th_path(DIR_, "cut.vhd");
	uint8_t *blk = malloc(2 * TH_MIB);
	struct vhd_info info;
	struct vhd_disk *d;

	build(p, VHD_TYPE_DYNAMIC, 4 * TH_MIB);
	th_fill_pattern(blk, 2 * TH_MIB, 0, 11);
	th_alloc_block(p, 0, NULL, blk, 0);
	th_truncate(p, th_file_size(p) - 256);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_true(info.footer_from_copy);
	th_expect_read(d, blk, 2 * TH_MIB, 0);
	vhd_close(d);
	free(blk);
}

static void test_bad_cookie_fixed(void **state)
{
	const char *p = th_path(DIR_, "cookie.vhd");
	uint8_t f[512];

	build(p, VHD_TYPE_FIXED, TH_MIB);
	th_read_footer(p, f);
	memcpy(f, "conectiy", 8);
	th_fix_footer_cksum(f);
	th_pwrite_raw(p, f, 512, TH_MIB);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("cookie", "footer", "not a vhd", "conectix"));
}

static void test_bad_cookie_both_dynamic(void **state)
{
	const char *p = th_path(DIR_, "cookie2.vhd");
	uint8_t f[512];

	build(p, VHD_TYPE_DYNAMIC, TH_MIB);
	th_read_footer(p, f);
	memcpy(f, "XXXXXXXX", 8);
	th_fix_footer_cksum(f);
	th_pwrite_raw(p, f, 512, th_file_size(p) - 512);
	th_pwrite_raw(p, f, 512, 0);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("cookie", "footer", "not a vhd", "conectix"));
}

/* Only the trailing cookie is bad: the copy is used. */
static void test_bad_trailing_cookie_uses_copy(void **state)
{
	const char *p = th_path(DIR_, "cookie3.vhd");
	struct vhd_info info;
	struct vhd_disk *d;

	build(p, VHD_TYPE_DYNAMIC, TH_MIB);
	th_pwrite_raw(p, "garbage!", 8, th_file_size(p) - 512);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_true(info.footer_from_copy);
	assert_true(vhd_size(d) == TH_MIB);
	vhd_close(d);
}

static void test_bad_checksum_good_copy(void **state)
{
	const char *p = th_path(DIR_, "cks.vhd");
	uint8_t *blk = malloc(2 * TH_MIB), f[512];
	struct vhd_info info;
	struct vhd_disk *d;

	build(p, VHD_TYPE_DYNAMIC, 6 * TH_MIB);
	th_fill_pattern(blk, 2 * TH_MIB, 4 * TH_MIB, 5);
	th_alloc_block(p, 2, NULL, blk, 0);
	th_read_footer(p, f);
	f[64] ^= 0x10; /* checksum off by one bit */
	th_pwrite_raw(p, f, 512, th_file_size(p) - 512);

	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_true(info.footer_from_copy);
	assert_true(info.current_size == 6 * TH_MIB);
	th_expect_read(d, blk, 2 * TH_MIB, 4 * TH_MIB);
	vhd_close(d);
	free(blk);
}

static void test_bad_checksum_both(void **state)
{
	const char *p = th_path(DIR_, "cks2.vhd");
	uint8_t f[512];

	build(p, VHD_TYPE_DYNAMIC, TH_MIB);
	th_read_footer(p, f);
	/* Change a field without fixing the sum, in both copies. */
	f[48 + 5] ^= 0x01;
	th_pwrite_raw(p, f, 512, th_file_size(p) - 512);
	th_pwrite_raw(p, f, 512, 0);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0, TH_WORDS("checksum"));
}

static void test_bad_checksum_fixed(void **state)
{
	const char *p = th_path(DIR_, "cks3.vhd");
	uint8_t f[512];

	build(p, VHD_TYPE_FIXED, TH_MIB);
	th_read_footer(p, f);
	f[64 + 3] ^= 0x01;
	th_pwrite_raw(p, f, 512, TH_MIB);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0, TH_WORDS("checksum"));
}

static void patch_footers(const char *p, size_t off, const void *v, size_t len)
{
	uint8_t f[512];

	th_read_footer(p, f);
	memcpy(f + off, v, len);
	th_write_footers(p, f);
}

static void test_bad_disk_type(void **state)
{
	const char *p = th_path(DIR_, "type.vhd");
	static const uint32_t types[] = {0, 1, 5, 6, 0xFFFFFFFF};
	uint8_t v[4];

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		build(p, VHD_TYPE_DYNAMIC, TH_MIB);
		th_be32(v, types[i]);
		patch_footers(p, 60, v, 4);
		th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0, TH_WORDS("type"));
	}
}

static void test_size_beyond_limit_dynamic(void **state)
{
	const char *p = th_path(DIR_, "huge.vhd");
	uint64_t size = VHD_MAX_SIZE + 2 * TH_MIB;

	/* A well-formed 2040 GiB + 2 MiB image: only the size is wrong. */
	build(p, VHD_TYPE_DYNAMIC, size);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("size", "large", "2040", "limit", "big"));
}

static void test_size_at_limit_dynamic(void **state)
{
	const char *p = th_path(DIR_, "max.vhd");
	uint8_t buf[512], zero[512] = {0};
	struct vhd_disk *d;

	build(p, VHD_TYPE_DYNAMIC, VHD_MAX_SIZE);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_true(vhd_size(d) == VHD_MAX_SIZE);
	assert_int_equal(vhd_pread(d, buf, 512, VHD_MAX_SIZE - 512), 512);
	assert_memory_equal(buf, zero, 512);
	vhd_close(d);
}

static void test_size_beyond_limit_fixed(void **state)
{
	const char *p = th_path(DIR_, "hugefixed.vhd");

	build(p, VHD_TYPE_FIXED, VHD_MAX_SIZE + TH_MIB);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("size", "large", "2040", "limit", "big"));
}

/* A dynamic footer whose data offset points past the file. */
static void test_data_offset_beyond_eof(void **state)
{
	const char *p = th_path(DIR_, "doff.vhd");
	uint8_t v[8];

	build(p, VHD_TYPE_DYNAMIC, TH_MIB);
	th_be64(v, 1ull << 40);
	patch_footers(p, 16, v, 8);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("header", "offset", "beyond", "truncat", "eof",
			       "end of file", "cxsparse"));
}

/* A fixed image whose file holds less data than its footer claims. */
static void test_fixed_size_mismatch(void **state)
{
	const char *p = th_path(DIR_, "fixmis.vhd");
	uint8_t f[512];

	build(p, VHD_TYPE_FIXED, TH_MIB);
	th_read_footer(p, f);
	th_be64(f + 48, 4 * TH_MIB);
	th_be64(f + 40, 4 * TH_MIB);
	th_fix_footer_cksum(f);
	th_pwrite_raw(p, f, 512, TH_MIB);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("size", "truncat", "short", "small", "file"));
}

/* Saved-state and temporary flags are reported, not refused. */
static void test_saved_state_and_temporary(void **state)
{
	const char *p = th_path(DIR_, "saved.vhd");
	struct vhd_info info;
	struct vhd_disk *d;
	uint8_t v[4];

	build(p, VHD_TYPE_DYNAMIC, TH_MIB);
	patch_footers(p, 84, "\1", 1);
	th_be32(v, 3);
	patch_footers(p, 8, v, 4);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_true(info.saved_state);
	assert_int_equal(info.features, 3);
	vhd_close(d);
}

/* Legacy 511-byte footer (reserved area one byte short) on a fixed disk. */
static void test_legacy_511_byte_footer(void **state)
{
	const char *p = th_path(DIR_, "legacy.vhd");
	uint8_t f[512], data[1024];
	struct vhd_disk *d;

	build(p, VHD_TYPE_FIXED, TH_MIB);
	th_fill_pattern(data, sizeof(data), TH_MIB - 1024, 4);
	th_pwrite_raw(p, data, sizeof(data), TH_MIB - 1024);
	th_read_footer(p, f);
	/* The last byte is reserved (zero): the sum is the same without it. */
	assert_int_equal(f[511], 0);
	th_truncate(p, TH_MIB + 511);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_true(vhd_size(d) == TH_MIB);
	th_expect_read(d, data, sizeof(data), TH_MIB - 1024);
	vhd_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_fixed_opens),
		T(test_dynamic_opens),
		T(test_empty_and_short_files),
		T(test_truncated_header),
		T(test_truncated_trailing_footer_uses_copy),
		T(test_bad_cookie_fixed),
		T(test_bad_cookie_both_dynamic),
		T(test_bad_trailing_cookie_uses_copy),
		T(test_bad_checksum_good_copy),
		T(test_bad_checksum_both),
		T(test_bad_checksum_fixed),
		T(test_bad_disk_type),
		T(test_size_beyond_limit_dynamic),
		T(test_size_at_limit_dynamic),
		T(test_size_beyond_limit_fixed),
		T(test_data_offset_beyond_eof),
		T(test_fixed_size_mismatch),
		T(test_saved_state_and_temporary),
		T(test_legacy_511_byte_footer),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
