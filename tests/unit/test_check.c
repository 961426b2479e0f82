// SPDX-License-Identifier: MIT
/*
 * vhd_check: clean images (ours and hand-built, written through us) report
 * nothing; each planted inconsistency is reported, one line per problem,
 * the return value counting the lines; unreadable files give -errno.
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
	size_t used = strlen(l->all);

	assert_non_null(msg);
	assert_true(strlen(msg) > 0);
	l->n++;
	snprintf(l->all + used, sizeof(l->all) - used, "%s\n", msg);
}

/* vhd_check must find problems; returns the lines it reported. */
static struct lines check_finds(const char *p)
{
	struct lines l = {0};
	int r = vhd_check(p, collect, &l);

	print_message("  check %s: %d\n%s", strrchr(p, '/') + 1, r, l.all);
	if (r == 0)
		fail_msg("vhd_check found nothing wrong with %s", p);
	if (r > 0)
		assert_int_equal(r, l.n);
	return l;
}

static void check_clean(const char *p)
{
	struct lines l = {0};
	int r = vhd_check(p, collect, &l);

	if (r != 0)
		fail_msg("vhd_check %s: %d: %s %s", p, r, l.all, vhd_errmsg());
	assert_int_equal(l.n, 0);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);
}

static void make_chain(const char *dir)
{
	const char *b = th_path(dir, "base.vhd");
	const char *c = th_path(dir, "child.vhd");
	uint8_t buf[8192];
	struct vhd_disk *d;

	th_create(b, VHD_TYPE_DYNAMIC, 8 * TH_MIB, 512 << 10);
	d = th_open(b, VHD_OPEN_RDWR);
	th_fill_pattern(buf, sizeof(buf), 0, 1);
	th_write(d, buf, sizeof(buf), 0);
	th_write(d, buf, sizeof(buf), 3 * TH_MIB + 5);
	vhd_flush(d);
	vhd_close(d);
	th_create_diff(c, b);
	d = th_open(c, VHD_OPEN_RDWR);
	th_write(d, buf, 700, 1000);
	th_write(d, buf, sizeof(buf), 6 * TH_MIB);
	th_write(d, buf, 512, TH_MIB);
	vhd_flush(d);
	vhd_close(d);
}

static void test_clean_images(void **state)
{
	const char *f = th_path(DIR_, "fixed.vhd");

	make_chain(DIR_);
	check_clean(th_path(DIR_, "base.vhd"));
	check_clean(th_path(DIR_, "child.vhd"));
	th_create(f, VHD_TYPE_FIXED, TH_MIB, 0);
	check_clean(f);
}

static void test_unreadable(void **state)
{
	const char *p = th_path(DIR_, "junk.vhd");

	assert_int_equal(vhd_check(th_path(DIR_, "none.vhd"), NULL, NULL),
			 -ENOENT);
	th_write_file(p, "definitely not a disk image", 27);
	assert_int_equal(vhd_check(p, NULL, NULL), -EINVAL);
	assert_true(th_msg_names(p));
}

/* Two BAT entries naming the same block. */
static void test_shared_block(void **state)
{
	const char *c = th_path(DIR_, "child.vhd");
	struct th_layout l;
	uint8_t e[4];

	make_chain(DIR_);
	th_layout_of(c, &l);
	th_pread_raw(c, e, 4, l.table_offset);
	assert_true(th_get_be32(e) != TH_UNALLOC);
	th_pwrite_raw(c, e, 4, l.table_offset + 4 * 5);
	check_finds(c);
}

/* A block overlapping the BAT. */
static void test_block_over_metadata(void **state)
{
	const char *c = th_path(DIR_, "child.vhd");
	struct th_layout l;
	uint8_t e[4];

	make_chain(DIR_);
	th_layout_of(c, &l);
	th_be32(e, (uint32_t)(l.table_offset / 512));
	th_pwrite_raw(c, e, 4, l.table_offset + 4 * 7);
	check_finds(c);
}

static void test_bad_trailing_footer(void **state)
{
	const char *c = th_path(DIR_, "child.vhd");
	uint8_t f[512];

	make_chain(DIR_);
	th_read_footer(c, f);
	f[70] ^= 1; /* uuid byte, checksum left stale */
	th_pwrite_raw(c, f, 512, th_file_size(c) - 512);
	check_finds(c);
}

static void test_footer_copy_differs(void **state)
{
	const char *c = th_path(DIR_, "child.vhd");
	uint8_t f[512];

	make_chain(DIR_);
	th_read_footer(c, f);
	th_be32(f + 24, th_get_be32(f + 24) + 1); /* timestamp */
	th_fix_footer_cksum(f);
	th_pwrite_raw(c, f, 512, 0);
	check_finds(c);
}

static void test_missing_parent(void **state)
{
	const char *c = th_path(DIR_, "child.vhd");
	struct lines l;
	int r;

	make_chain(DIR_);
	assert_int_equal(
		rename(th_path(DIR_, "base.vhd"), th_path(DIR_, "moved.vhd")),
		0);
	l = (struct lines){0};
	r = vhd_check(c, collect, &l);
	assert_true(r != 0);
	if (r > 0)
		assert_non_null(strcasestr(l.all, "base.vhd"));
	else
		assert_true(th_msg_has("base.vhd"));
}

static void test_parent_id_mismatch(void **state)
{
	const char *c = th_path(DIR_, "child.vhd");
	uint8_t h[1024];
	int r;

	make_chain(DIR_);
	th_read_header(c, h);
	h[45] ^= 0x20;
	th_write_header(c, h);
	r = vhd_check(c, NULL, NULL);
	assert_true(r != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_clean_images),	     T(test_unreadable),
		T(test_shared_block),	     T(test_block_over_metadata),
		T(test_bad_trailing_footer), T(test_footer_copy_differs),
		T(test_missing_parent),	     T(test_parent_id_mismatch),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
