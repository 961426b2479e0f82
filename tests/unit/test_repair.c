// SPDX-License-Identifier: MIT
/*
 * vhd_repair and what vhd_check says about repairable defects: a damaged
 * trailing footer is restored from the copy at offset 0 (in place, or
 * after the data when the file was cut short), a damaged copy from the
 * trailing footer; each time the file ends up byte-identical to the
 * undamaged one. Checksums are recomputed only with VHD_REPAIR_CHECKSUMS;
 * without it the file is left unchanged and the report says what would
 * fix it. vhd_check marks each defect "(fixable by vhd repair...)".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)

struct lines {
	int n;
	char all[8192];
};

static void collect(void *ctx, const char *msg)
{
	struct lines *l = ctx;
	size_t len = strlen(l->all);

	l->n++;
	snprintf(l->all + len, sizeof(l->all) - len, "%s\n", msg);
}

/* A dynamic image with two blocks of data; a pristine copy beside it. */
static void make_image(const char *path, const char *pristine)
{
	struct vhd_disk *d;
	uint8_t buf[8192];

	th_create(path, VHD_TYPE_DYNAMIC, 4 * TH_MIB, 512 << 10);
	d = th_open(path, VHD_OPEN_RDWR);
	th_fill_pattern(buf, sizeof(buf), 0, 1);
	th_write(d, buf, sizeof(buf), 0);
	th_write(d, buf, sizeof(buf), 3 * TH_MIB);
	assert_int_equal(vhd_close(d), 0);
	th_copy_file(path, pristine);
}

static void flip(const char *path, uint64_t off)
{
	uint8_t b;

	th_pread_raw(path, &b, 1, off);
	b ^= 0x10;
	th_pwrite_raw(path, &b, 1, off);
}

/* check finds exactly one problem, marked fixable as @how says. */
static void check_says(const char *path, const char *what, const char *how)
{
	struct lines l = {0};
	char want[128];

	assert_int_equal(vhd_check(path, collect, &l), 1);
	snprintf(want, sizeof(want), "(fixable by %s)", how);
	if (!strstr(l.all, want) || !strcasestr(l.all, what))
		fail_msg("check said \"%s\"; expected \"%s\" and \"%s\"", l.all,
			 what, want);
}

static void repair_restores(const char *path, const char *pristine,
			    unsigned flags, const char *what)
{
	struct lines l = {0};

	assert_int_equal(vhd_repair(path, flags, collect, &l), 1);
	assert_int_equal(l.n, 1);
	if (!strcasestr(l.all, what))
		fail_msg("repair said \"%s\"; expected \"%s\"", l.all, what);
	assert_true(th_file_hash(path) == th_file_hash(pristine));
	assert_int_equal(vhd_check(path, NULL, NULL), 0);
	l = (struct lines){0};
	assert_int_equal(vhd_repair(path, flags, collect, &l), 0);
	assert_int_equal(l.n, 0);
}

static void test_trailing_footer(void **state)
{
	const char *p = th_path(DIR_, "img.vhd");
	const char *orig = th_path(DIR_, "img.orig");

	make_image(p, orig);
	flip(p, th_file_size(p) - 512 + 70); /* uuid byte: checksum stale */
	check_says(p, "trailing footer is damaged", "vhd repair");
	repair_restores(p, orig, 0, "restored from the copy at offset 0");
}

static void test_footer_copy(void **state)
{
	const char *p = th_path(DIR_, "img.vhd");
	const char *orig = th_path(DIR_, "img.orig");

	make_image(p, orig);
	flip(p, 3); /* cookie */
	check_says(p, "copy at offset 0", "vhd repair");
	repair_restores(p, orig, 0, "rewritten from the trailing footer");
}

static void test_footer_cut_off(void **state)
{
	const char *p = th_path(DIR_, "img.vhd");
	const char *orig = th_path(DIR_, "img.orig");

	make_image(p, orig);
	th_truncate(p, th_file_size(p) - 512);
	check_says(p, "trailing footer", "vhd repair");
	repair_restores(p, orig, 0, "restored");
	/* garbage after the footer position: cut back to the data */
	th_truncate(p, th_file_size(p) - 512 + 300);
	repair_restores(p, orig, 0, "restored");
}

static void test_header_checksum(void **state)
{
	const char *p = th_path(DIR_, "img.vhd");
	const char *orig = th_path(DIR_, "img.orig");
	struct lines l = {0};
	uint64_t h;

	make_image(p, orig);
	flip(p, 512 + 36); /* the checksum itself */
	check_says(p, "dynamic header checksum", "vhd repair --checksums");
	h = th_file_hash(p);
	assert_int_equal(vhd_repair(p, 0, collect, &l), 0);
	assert_non_null(strstr(l.all, "--checksums"));
	assert_true(th_file_hash(p) == h);
	repair_restores(p, orig, VHD_REPAIR_CHECKSUMS, "checksum recomputed");
}

/* The same field changed in both footer copies: only a checksum fix. */
static void test_both_footers(void **state)
{
	const char *p = th_path(DIR_, "img.vhd");
	const char *orig = th_path(DIR_, "img.orig");
	uint8_t f[512];
	struct lines l = {0};

	make_image(p, orig);
	th_read_footer(p, f);
	f[24] ^= 1; /* timestamp, checksum left stale */
	th_pwrite_raw(p, f, 512, 0);
	th_pwrite_raw(p, f, 512, th_file_size(p) - 512);
	check_says(p, "checksum", "vhd repair --checksums");
	assert_int_equal(vhd_repair(p, 0, collect, &l), 0);
	/* The trailing checksum, then the copy from it. */
	assert_int_equal(vhd_repair(p, VHD_REPAIR_CHECKSUMS, NULL, NULL), 2);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);
	th_read_footer(p, f);
	assert_int_equal(th_get_be32(f + 64), th_checksum(f, 512, 64));
}

static void test_fixed_and_junk(void **state)
{
	const char *p = th_path(DIR_, "fixed.vhd");
	const char *j = th_path(DIR_, "junk.vhd");
	uint8_t f[512];

	th_create(p, VHD_TYPE_FIXED, TH_MIB, 0);
	th_read_footer(p, f);
	f[64] ^= 1;
	th_pwrite_raw(p, f, 512, TH_MIB);
	check_says(p, "checksum", "vhd repair --checksums");
	assert_int_equal(vhd_repair(p, VHD_REPAIR_CHECKSUMS, NULL, NULL), 1);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);

	th_write_file(j, "definitely not a disk image, not even close........",
		      52);
	th_truncate(j, 4096);
	assert_int_equal(vhd_repair(j, VHD_REPAIR_CHECKSUMS, NULL, NULL),
			 -EINVAL);
	assert_true(th_msg_names(j));
	assert_true(th_msg_has("no usable footer"));
	assert_int_equal(vhd_check(j, NULL, NULL), -EINVAL);
}

/*
 * blktap 1.1 set its hidden byte (offset 85) after the checksum. Opening
 * accepts such footers, so check and repair do too: before and after a
 * write, which rewrites the trailing footer with the byte kept and a
 * fresh checksum while the copy at offset 0 keeps the stale one.
 */
static void test_tap_stale_hidden(void **state)
{
	const char *p = th_path(DIR_, "tap.vhd");
	const char *orig = th_path(DIR_, "tap.orig");
	struct vhd_disk *d;
	uint8_t f[512], buf[4096];
	struct lines l = {0};
	uint64_t h;

	make_image(p, orig);
	th_read_footer(p, f);
	memcpy(f + 28, "tap", 4);
	th_be32(f + 32, 0x00010001);
	th_fix_footer_cksum(f);
	f[85] = 1;
	th_pwrite_raw(p, f, 512, 0);
	th_pwrite_raw(p, f, 512, th_file_size(p) - 512);
	h = th_file_hash(p);
	assert_int_equal(vhd_check(p, collect, &l), 0);
	assert_int_equal(vhd_repair(p, VHD_REPAIR_CHECKSUMS, collect, &l), 0);
	assert_int_equal(l.n, 0);
	assert_true(th_file_hash(p) == h);

	d = th_open(p, VHD_OPEN_RDWR);
	th_fill_pattern(buf, sizeof(buf), 0, 2);
	th_write(d, buf, sizeof(buf), 2 * TH_MIB); /* a new block */
	assert_int_equal(vhd_close(d), 0);
	th_read_footer(p, f);
	assert_int_equal(f[85], 1);
	assert_int_equal(th_get_be32(f + 64), th_checksum(f, 512, 64));
	assert_int_equal(vhd_check(p, collect, &l), 0);
	h = th_file_hash(p);
	assert_int_equal(vhd_repair(p, VHD_REPAIR_CHECKSUMS, collect, &l), 0);
	if (l.n)
		fail_msg("check/repair said \"%s\"", l.all);
	assert_true(th_file_hash(p) == h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_trailing_footer),  T(test_footer_copy),
		T(test_footer_cut_off),	  T(test_header_checksum),
		T(test_both_footers),	  T(test_fixed_and_junk),
		T(test_tap_stale_hidden),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
