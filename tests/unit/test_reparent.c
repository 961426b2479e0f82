// SPDX-License-Identifier: MIT
/*
 * vhd_reparent: a child whose parent moved (its locators point nowhere)
 * is pointed at the new place and reads as before; name, timestamp and
 * W2ku/W2ru locators are those vhd_create_diff would write. A parent with
 * another unique id is refused (file unchanged) unless told, then the id
 * is rewritten. Not differencing, size mismatch and cycles are refused.
 * Crash sweep: every cut leaves the child referring to its old or its new
 * parent, reading the same either way.
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

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define SIZE (4 * TH_MIB)

/* base (patterned) in DIR/a, child in DIR with its own writes. */
static uint8_t *make_chain(const char *dir)
{
	const char *base = th_path(dir, "a/base.vhd");
	const char *child = th_path(dir, "child.vhd");
	uint8_t *flat = malloc(SIZE);
	struct vhd_disk *d;

	mkdir(th_path(dir, "a"), 0755);
	mkdir(th_path(dir, "b"), 0755);
	th_create(base, VHD_TYPE_DYNAMIC, SIZE, 512 << 10);
	d = th_open(base, VHD_OPEN_RDWR);
	th_fill_pattern(flat, SIZE, 0, 1);
	th_write(d, flat, SIZE, 0);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(child, base);
	d = th_open(child, VHD_OPEN_RDWR);
	th_fill_pattern(flat + 5000, 70000, 5000, 2);
	th_write(d, flat + 5000, 70000, 5000);
	assert_int_equal(vhd_close(d), 0);
	return flat;
}

static void expect_locators(const char *child, const char *parent_abs,
			    const char *rel)
{
	struct vhd_disk *d = th_open(child, VHD_OPEN_RDONLY);
	struct vhd_locator_info l;
	struct vhd_info info;
	struct stat st;
	bool ku = false, ru = false;

	for (int i = 0; i < vhd_locator_count(d); i++) {
		assert_int_equal(vhd_get_locator(d, i, &l), 0);
		if (!strcmp(l.code_str, "W2ku")) {
			assert_string_equal(l.path, parent_abs);
			ku = true;
		} else if (!strcmp(l.code_str, "W2ru")) {
			assert_string_equal(l.path, rel);
			ru = true;
		}
	}
	assert_true(ku && ru);
	vhd_get_info(d, &info);
	assert_int_equal(stat(parent_abs, &st), 0);
	assert_int_equal(info.parent_timestamp,
			 (uint32_t)(st.st_mtime - VHD_EPOCH_OFFSET));
	assert_string_equal(info.parent_name, strrchr(parent_abs, '/') + 1);
	assert_false(info.parent_timestamp_mismatch);
	vhd_close(d);
}

static void test_moved_parent(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *moved = th_path(DIR_, "b/moved.vhd");
	uint8_t *flat = make_chain(DIR_);
	char abs[4096];
	struct vhd_disk *d;

	assert_int_equal(rename(th_path(DIR_, "a/base.vhd"), moved), 0);
	th_open_fails(child, VHD_OPEN_RDONLY, ENOENT, 0, TH_WORDS("not found"));
	assert_int_equal(vhd_reparent(child, moved, 0), 0);
	d = th_open(child, VHD_OPEN_RDONLY);
	th_expect_read(d, flat, SIZE, 0);
	assert_non_null(strstr(vhd_path(vhd_parent(d)), "b/moved.vhd"));
	vhd_close(d);
	assert_non_null(realpath(moved, abs));
	expect_locators(child, abs, "./b/moved.vhd");
	assert_int_equal(vhd_check(child, NULL, NULL), 0);
	free(flat);
}

static void test_id_mismatch(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *other = th_path(DIR_, "b/other.vhd");
	uint8_t *flat = make_chain(DIR_), f[512], h[1024];
	uint64_t hash;
	struct vhd_disk *d;
	uint8_t *got;

	th_create(other, VHD_TYPE_DYNAMIC, SIZE, 512 << 10);
	hash = th_file_hash(child);
	assert_int_equal(vhd_reparent(child, other, 0), -EINVAL);
	assert_true(th_msg_has("unique id"));
	assert_true(th_msg_names(child));
	assert_true(th_file_hash(child) == hash);

	assert_int_equal(vhd_reparent(child, other, VHD_REPARENT_IGNORE_ID), 0);
	th_read_footer(other, f);
	th_read_header(child, h);
	assert_memory_equal(h + 40, f + 68, 16);
	/* The child's own sectors stay; the rest now reads the new parent. */
	d = th_open(child, VHD_OPEN_RDONLY);
	got = th_read_all(d);
	vhd_close(d);
	assert_memory_equal(got + 5000, flat + 5000, 70000);
	for (uint64_t i = 80000; i < SIZE; i++)
		if (got[i])
			fail_msg("byte %llu reads 0x%02x, not the empty "
				 "parent's zero",
				 (unsigned long long)i, got[i]);
	free(got);
	free(flat);
}

static void test_refusals(void **state)
{
	const char *base = th_path(DIR_, "a/base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	const char *grand = th_path(DIR_, "grand.vhd");
	const char *small = th_path(DIR_, "small.vhd");
	uint8_t *flat = make_chain(DIR_);
	uint64_t hc, hb;

	th_create_diff(grand, child);
	th_create(small, VHD_TYPE_DYNAMIC, SIZE / 2, 512 << 10);
	hc = th_file_hash(child);
	hb = th_file_hash(base);
	assert_int_equal(vhd_reparent(base, child, 0), -EINVAL);
	assert_true(th_msg_has("not a differencing"));
	assert_int_equal(vhd_reparent(child, small, VHD_REPARENT_IGNORE_ID),
			 -EINVAL);
	assert_true(th_msg_has("size"));
	assert_int_equal(vhd_reparent(child, grand, VHD_REPARENT_IGNORE_ID),
			 -ELOOP);
	assert_int_equal(vhd_reparent(child, child, VHD_REPARENT_IGNORE_ID),
			 -ELOOP);
	assert_int_equal(vhd_reparent(child, th_path(DIR_, "none.vhd"), 0),
			 -ENOENT);
	assert_true(th_file_hash(child) == hc);
	assert_true(th_file_hash(base) == hb);
	free(flat);
}

static const char *const mode_name[] = {"writes kept", "unsynced lost",
					"only newest unsynced landed"};

/* The same parent under a second name: old and new references both work. */
static void test_crash(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *orig = th_path(DIR_, "child.orig");
	const char *copy = th_path(DIR_, "b/copy.vhd");
	uint8_t *flat = make_chain(DIR_);
	int to_new = 0;
	long total;

	th_copy_file(th_path(DIR_, "a/base.vhd"), copy);
	th_copy_file(child, orig);
	th_fault_install_events(-1, TH_CUT_KEEP);
	assert_int_equal(vhd_reparent(child, copy, 0), 0);
	total = th_fault_writes();
	th_fault_remove();
	print_message("  %ld writes and syncs in the reparent\n", total);
	for (long cut = 0; cut < total; cut++) {
		for (int mode = 0; mode < 3; mode++) {
			struct vhd_disk *d = NULL;
			int rc;

			th_copy_file(orig, child);
			th_fault_install_events(cut, mode);
			rc = vhd_reparent(child, copy, 0);
			th_fault_remove();
			assert_true(rc < 0);
			rc = vhd_open(child, VHD_OPEN_RDONLY, &d);
			if (rc)
				fail_msg("cut %ld (%s): reopen failed: %s", cut,
					 mode_name[mode], vhd_errmsg());
			to_new +=
				strstr(vhd_path(vhd_parent(d)), "copy") != NULL;
			th_expect_read(d, flat, SIZE, 0);
			vhd_close(d);
			assert_true(vhd_check(child, NULL, NULL) >= 0);
		}
	}
	print_message("  %d of %ld cuts already use the new parent\n", to_new,
		      3 * total);
	free(flat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_moved_parent),
		T(test_id_mismatch),
		T(test_refusals),
		T(test_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
