// SPDX-License-Identifier: MIT
/*
 * vhd_reparent of a VHDX child: the new locator item is the one creation
 * writes (parent_linkage = the new parent's DataWriteGuid, relative and
 * absolute paths), in place or, when longer, in free space of the metadata
 * region; the chain reads as before and the child's own children still
 * match it. Refusals (not differencing, size, logical sector size, cycle,
 * linkage mismatch without ignore-id-mismatch, a VHD parent) change
 * nothing. Crash sweep: every cut leaves the child naming its old or its
 * new parent, reading the same.
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
#include "vhdx_i.h"

#define DIR_ (*(const char **)state)
#define SIZE (4 * TH_MIB)

/* a/base.vhdx (patterned) and child.avhdx with writes of its own. */
static uint8_t *make_chain(const char *dir)
{
	const char *base = th_path(dir, "a/base.vhdx");
	const char *child = th_path(dir, "child.avhdx");
	uint8_t *flat = malloc(SIZE);
	struct vhd_disk *d;

	mkdir(th_path(dir, "a"), 0755);
	mkdir(th_path(dir, "b"), 0755);
	th_create(base, VHD_TYPE_DYNAMIC, SIZE, TH_MIB);
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

static void expect_locator(const char *child, const char *parent,
			   const char *rel)
{
	struct vhd_disk *d = th_open(child, VHD_OPEN_RDONLY);
	struct vhd_disk *p = vhd_parent(d);
	const struct vhdx_locator *loc = &d->vhdx->meta.loc;
	char abs[4096], g[37], want[40];

	assert_non_null(realpath(parent, abs));
	assert_string_equal(vhd_path(p), parent);
	assert_string_equal(loc->relative_path, rel);
	assert_non_null(
		strstr(loc->absolute_win32_path, strrchr(parent, '/') + 1));
	vhdx_guid_str(p->vhdx->header.data_write_guid, g);
	snprintf(want, sizeof(want), "{%s}", g);
	assert_string_equal(loc->parent_linkage, want);
	vhd_close(d);
}

static void expect_chain(const char *child, const uint8_t *flat)
{
	struct vhd_disk *d = th_open(child, VHD_OPEN_RDONLY);

	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
	assert_int_equal(vhd_check(child, NULL, NULL), 0);
}

static uint32_t locator_offset(const char *child)
{
	uint8_t table[VHDX_META_TABLE_SIZE];
	uint16_t n;

	th_pread_raw(child, table, sizeof(table), 2 * TH_MIB);
	n = vhdx_le16(table + 10);
	for (uint16_t i = 0; i < n; i++)
		if (!memcmp(table + 32 + 32 * i, vhdx_guid_parent_locator, 16))
			return vhdx_le32(table + 32 + 32 * i + 16);
	fail_msg("no locator");
	return 0;
}

static void test_moved_parent(void **state)
{
	const char *child = th_path(DIR_, "child.avhdx");
	const char *grand = th_path(DIR_, "grand.avhdx");
	const char *moved = th_path(DIR_, "b/moved.vhdx");
	uint8_t *flat = make_chain(DIR_);
	uint32_t at = locator_offset(child);

	th_create_diff(grand, child);
	assert_int_equal(rename(th_path(DIR_, "a/base.vhdx"), moved), 0);
	th_open_fails(child, VHD_OPEN_RDONLY, ENOENT, 0, TH_WORDS("not found"));
	assert_int_equal(vhd_reparent(child, moved, 0), 0);
	expect_locator(child, moved, ".\\b\\moved.vhdx");
	/* shorter than "a\base.vhdx"'s item: in place */
	assert_int_equal(locator_offset(child), at);
	expect_chain(child, flat);
	/* the child's DataWriteGuid stayed: its own child still opens */
	expect_chain(grand, flat);
	free(flat);
}

/* An unknown optional item of 100 bytes right after the locator item. */
static uint32_t add_item_after_locator(const char *child)
{
	uint8_t table[VHDX_META_TABLE_SIZE], fill[100];
	uint16_t n;
	uint32_t end = 0;

	th_pread_raw(child, table, sizeof(table), 2 * TH_MIB);
	n = vhdx_le16(table + 10);
	for (uint16_t i = 0; i < n; i++)
		if (!memcmp(table + 32 + 32 * i, vhdx_guid_parent_locator, 16))
			end = vhdx_le32(table + 32 + 32 * i + 16) +
			      vhdx_le32(table + 32 + 32 * i + 20);
	memset(table + 32 + 32 * n, 0x3c, 16);
	vhdx_put32(table + 32 + 32 * n + 16, end);
	vhdx_put32(table + 32 + 32 * n + 20, sizeof(fill));
	vhdx_put16(table + 10, (uint16_t)(n + 1));
	th_pwrite_raw(child, table, sizeof(table), 2 * TH_MIB);
	memset(fill, 0x5e, sizeof(fill));
	th_pwrite_raw(child, fill, sizeof(fill), 2 * TH_MIB + end);
	return end;
}

/* A longer item than the old one goes to free space of the region. */
static void test_longer_locator(void **state)
{
	const char *child = th_path(DIR_, "child.avhdx");
	char sub[512], name[1024];
	uint8_t *flat = make_chain(DIR_), fill[100], want[100];
	uint32_t at = locator_offset(child), other;
	char rel[1100];

	snprintf(sub, sizeof(sub), "%s/b/%0200d", DIR_, 7);
	mkdir(sub, 0755);
	snprintf(name, sizeof(name), "%s/%0150d.vhdx", sub, 8);
	th_copy_file(th_path(DIR_, "a/base.vhdx"), name);
	other = add_item_after_locator(child);
	expect_chain(child, flat);
	assert_int_equal(vhd_reparent(child, name, 0), 0);
	snprintf(rel, sizeof(rel), ".\\b\\%0200d\\%0150d.vhdx", 7, 8);
	expect_locator(child, name, rel);
	/* after the other item, which is intact */
	assert_true(locator_offset(child) >= other + sizeof(fill));
	assert_true(locator_offset(child) != at);
	th_pread_raw(child, fill, sizeof(fill), 2 * TH_MIB + other);
	memset(want, 0x5e, sizeof(want));
	assert_memory_equal(fill, want, sizeof(fill));
	expect_chain(child, flat);
	/* and back: the short one fits where the long one now is */
	assert_int_equal(vhd_reparent(child, th_path(DIR_, "a/base.vhdx"), 0),
			 0);
	expect_locator(child, th_path(DIR_, "a/base.vhdx"), ".\\a\\base.vhdx");
	expect_chain(child, flat);
	free(flat);
}

static void test_id_mismatch(void **state)
{
	const char *child = th_path(DIR_, "child.avhdx");
	const char *other = th_path(DIR_, "b/other.vhdx");
	uint8_t *flat = make_chain(DIR_);
	uint64_t hash;
	struct vhd_disk *d;
	uint8_t *got;

	th_create(other, VHD_TYPE_DYNAMIC, SIZE, TH_MIB);
	hash = th_file_hash(child);
	assert_int_equal(vhd_reparent(child, other, 0), -EINVAL);
	assert_true(th_msg_has("linkage mismatch"));
	assert_true(th_msg_has("ignore-id-mismatch"));
	assert_true(th_msg_names(child));
	assert_true(th_file_hash(child) == hash);

	assert_int_equal(vhd_reparent(child, other, VHD_REPARENT_IGNORE_ID), 0);
	expect_locator(child, other, ".\\b\\other.vhdx");
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
	const char *base = th_path(DIR_, "a/base.vhdx");
	const char *child = th_path(DIR_, "child.avhdx");
	const char *grand = th_path(DIR_, "grand.avhdx");
	const char *small = th_path(DIR_, "small.vhdx");
	const char *big4k = th_path(DIR_, "b/sect4k.vhdx");
	const char *vhd = th_path(DIR_, "b/same.vhd");
	uint8_t *flat = make_chain(DIR_), lss[4];
	uint64_t hc, hb;

	th_create_diff(grand, child);
	th_create(small, VHD_TYPE_DYNAMIC, SIZE / 2, TH_MIB);
	th_create(vhd, VHD_TYPE_DYNAMIC, SIZE, 512 << 10);
	/* the same disk with 4096-byte logical sectors (the item is the
	 * fourth in the table creation writes; no checksum covers it) */
	th_copy_file(base, big4k);
	vhdx_put32(lss, 4096);
	th_pwrite_raw(big4k, lss, 4, 2 * TH_MIB + 64 * 1024 + 32);
	hc = th_file_hash(child);
	hb = th_file_hash(base);
	assert_int_equal(vhd_reparent(base, child, 0), -EINVAL);
	assert_true(th_msg_has("not a differencing"));
	assert_int_equal(vhd_reparent(child, small, VHD_REPARENT_IGNORE_ID),
			 -EINVAL);
	assert_true(th_msg_has("size"));
	assert_int_equal(vhd_reparent(child, big4k, VHD_REPARENT_IGNORE_ID),
			 -EINVAL);
	assert_true(th_msg_has("logical sector"));
	assert_int_equal(vhd_reparent(child, vhd, VHD_REPARENT_IGNORE_ID),
			 -EINVAL);
	assert_true(th_msg_has("does not mix"));
	assert_int_equal(vhd_reparent(child, grand, VHD_REPARENT_IGNORE_ID),
			 -ELOOP);
	assert_int_equal(vhd_reparent(child, child, VHD_REPARENT_IGNORE_ID),
			 -ELOOP);
	assert_int_equal(vhd_reparent(child, th_path(DIR_, "none.vhdx"), 0),
			 -ENOENT);
	assert_true(th_file_hash(child) == hc);
	assert_true(th_file_hash(base) == hb);
	expect_chain(grand, flat);
	free(flat);
}

static const char *const mode_name[] = {"writes kept", "unsynced lost",
					"only newest unsynced landed"};

/* The same parent under a second name: old and new references both work. */
static void test_crash(void **state)
{
	const char *child = th_path(DIR_, "child.avhdx");
	const char *orig = th_path(DIR_, "child.orig");
	const char *copy = th_path(DIR_, "b/copy.vhdx");
	uint8_t *flat = make_chain(DIR_);
	int to_new = 0, to_old = 0;
	long total;

	th_copy_file(th_path(DIR_, "a/base.vhdx"), copy);
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
			if (strstr(vhd_path(vhd_parent(d)), "copy"))
				to_new++;
			else
				to_old++;
			th_expect_read(d, flat, SIZE, 0);
			vhd_close(d);
			/* A cut may leave the log to replay: repair's job. */
			if (vhd_check(child, NULL, NULL) != 0)
				assert_true(vhd_repair(child, 0, NULL, NULL) >
					    0);
			assert_int_equal(vhd_check(child, NULL, NULL), 0);
			assert_int_equal(vhd_open(child, VHD_OPEN_RDONLY, &d),
					 0);
			th_expect_read(d, flat, SIZE, 0);
			vhd_close(d);
		}
	}
	print_message("  %d cuts named the new parent, %d the old\n", to_new,
		      to_old);
	assert_true(to_new > 0 && to_old > 0);
	free(flat);
}

#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_moved_parent), T(test_longer_locator),
		T(test_id_mismatch),  T(test_refusals),
		T(test_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
