// SPDX-License-Identifier: MIT
/*
 * vhd_expand: fixed and dynamic disks grow; old content reads the same,
 * the new tail reads zeros, current and original size and CHS follow the
 * new size, and the image checks clean and takes writes in the new tail.
 * A dynamic disk whose BAT must grow past the blocks after it has those
 * blocks moved to the end. Shrinking is EINVAL, differencing EOPNOTSUPP,
 * the same size a no-op. Crash sweep (cut after each write and before each
 * sync, three modes): the image opens with the old or the new size and
 * the old content, and any new tail reads zeros.
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
#define BS (512u << 10)

static void expect_grown(const char *path, const uint8_t *flat,
			 uint64_t old_size, uint64_t size)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDONLY);
	struct vhd_info info;
	uint8_t *all;
	uint16_t c;
	uint8_t h, s;

	assert_int_equal(vhd_size(d), size);
	vhd_get_info(d, &info);
	assert_int_equal(info.current_size, size);
	assert_int_equal(info.original_size, size);
	/* CHS of the new size, as the specification's algorithm gives. */
	c = (uint16_t)(th_chs(size) >> 16);
	h = (uint8_t)(th_chs(size) >> 8);
	s = (uint8_t)th_chs(size);
	assert_int_equal(info.cylinders, c);
	assert_int_equal(info.heads, h);
	assert_int_equal(info.sectors_per_track, s);
	all = th_read_all(d);
	assert_memory_equal(all, flat, old_size);
	for (uint64_t i = old_size; i < size; i++)
		if (all[i])
			fail_msg("byte %llu of the new tail is 0x%02x",
				 (unsigned long long)i, all[i]);
	free(all);
	vhd_close(d);
	assert_int_equal(vhd_check(path, NULL, NULL), 0);
}

/* A write in the new tail lands and reads back. */
static void write_tail(const char *path, uint64_t size)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDWR);
	uint8_t buf[4096];

	th_fill_pattern(buf, sizeof(buf), size - 4096, 77);
	th_write(d, buf, sizeof(buf), size - 4096);
	assert_int_equal(vhd_close(d), 0);
	d = th_open(path, VHD_OPEN_RDONLY);
	th_expect_read(d, buf, sizeof(buf), size - 4096);
	vhd_close(d);
	assert_int_equal(vhd_check(path, NULL, NULL), 0);
}

/* A dynamic disk with data in every other block of @size. */
static uint8_t *make_dynamic(const char *path, uint64_t size)
{
	uint8_t *flat = calloc(1, size);
	struct vhd_disk *d;

	th_create(path, VHD_TYPE_DYNAMIC, size, BS);
	d = th_open(path, VHD_OPEN_RDWR);
	for (uint64_t off = 0; off < size; off += 2 * BS) {
		size_t n = size - off < 5000 ? (size_t)(size - off) : 5000;

		th_fill_pattern(flat + off + 100, n - 100, off + 100, 4);
		th_write(d, flat + off + 100, n - 100, off + 100);
	}
	assert_int_equal(vhd_close(d), 0);
	return flat;
}

static void test_dynamic_room(void **state)
{
	const char *p = th_path(DIR_, "dyn.vhd");
	uint64_t old = 8ull * BS, size = 40ull * BS + 1000;
	uint8_t *flat = make_dynamic(p, old);
	uint64_t fsize = th_file_size(p);

	/* 41 entries still fit the BAT's 512-byte sector: nothing moves. */
	assert_int_equal(vhd_expand(p, size, NULL, NULL), 0);
	size = (size + 511) / 512 * 512;
	assert_int_equal(th_file_size(p), fsize);
	expect_grown(p, flat, old, size);
	write_tail(p, size);
	free(flat);
}

static void test_dynamic_bat_grows(void **state)
{
	const char *p = th_path(DIR_, "dyn.vhd");
	uint64_t old = 8ull * BS, size = 1000ull * BS;
	uint8_t *flat = make_dynamic(p, old);
	struct th_layout l;
	struct vhd_disk *d;
	struct vhd_info info;

	assert_int_equal(vhd_expand(p, size, NULL, NULL), 0);
	th_layout_of(p, &l);
	assert_int_equal(l.max_table_entries, 1000);
	d = th_open(p, VHD_OPEN_RDONLY);
	vhd_get_info(d, &info);
	assert_int_equal(info.allocated_blocks, 4);
	vhd_close(d);
	expect_grown(p, flat, old, size);
	write_tail(p, size);
	free(flat);
}

/* An empty image whose table grows past the end of the file. */
static void test_dynamic_bat_past_end(void **state)
{
	const char *p = th_path(DIR_, "empty.vhd");
	uint64_t size = 4000ull * BS;
	static const uint8_t zero[4096];
	struct vhd_disk *d;
	struct th_layout l;

	th_create(p, VHD_TYPE_DYNAMIC, BS, BS);
	assert_int_equal(vhd_expand(p, size, NULL, NULL), 0);
	th_layout_of(p, &l);
	assert_int_equal(l.max_table_entries, 4000);
	assert_true(th_file_size(p) >= l.table_offset + 4000 * 4 + 512);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_size(d), size);
	for (uint64_t off = 0; off + 4096 <= size; off += size / 7)
		th_expect_read(d, zero, sizeof(zero), off);
	vhd_close(d);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);
	write_tail(p, size);
}

static void test_fixed(void **state)
{
	const char *p = th_path(DIR_, "fixed.vhd");
	uint64_t old = TH_MIB, size = 3 * TH_MIB + 512;
	uint8_t *flat = malloc(old);
	struct vhd_disk *d;

	th_create(p, VHD_TYPE_FIXED, old, 0);
	d = th_open(p, VHD_OPEN_RDWR);
	th_fill_pattern(flat, old, 0, 6);
	th_write(d, flat, old, 0);
	assert_int_equal(vhd_close(d), 0);
	assert_int_equal(vhd_expand(p, size, NULL, NULL), 0);
	assert_int_equal(th_file_size(p), size + 512);
	expect_grown(p, flat, old, size);
	write_tail(p, size);
	free(flat);
}

static void test_refusals(void **state)
{
	const char *f = th_path(DIR_, "fixed.vhd");
	const char *c = th_path(DIR_, "child.vhd");
	uint64_t hf, hc;

	th_create(f, VHD_TYPE_FIXED, TH_MIB, 0);
	th_create_diff(c, f);
	hf = th_file_hash(f);
	hc = th_file_hash(c);
	assert_int_equal(vhd_expand(f, TH_MIB / 2, NULL, NULL), -EINVAL);
	assert_true(th_msg_names(f));
	assert_true(th_msg_has("shrink"));
	assert_int_equal(vhd_expand(c, 2 * TH_MIB, NULL, NULL), -EOPNOTSUPP);
	assert_true(th_msg_names(c));
	assert_int_equal(vhd_expand(f, VHD_MAX_SIZE + 512, NULL, NULL), -EFBIG);
	assert_int_equal(vhd_expand(f, TH_MIB, NULL, NULL), 0);
	assert_true(th_file_hash(f) == hf);
	assert_true(th_file_hash(c) == hc);
}

static const char *const mode_name[] = {"writes kept", "unsynced lost",
					"only newest unsynced landed"};

static void sweep(const char *pristine, const char *path, const uint8_t *flat,
		  uint64_t old, uint64_t size)
{
	long total;
	int grown = 0;

	th_copy_file(pristine, path);
	th_fault_install_events(-1, TH_CUT_KEEP);
	assert_int_equal(vhd_expand(path, size, NULL, NULL), 0);
	total = th_fault_writes();
	th_fault_remove();
	print_message("  %ld writes and syncs in the expansion\n", total);
	assert_true(total >= 4);

	for (long cut = 0; cut < total; cut++) {
		for (int mode = 0; mode < 3; mode++) {
			struct vhd_disk *d = NULL;
			uint64_t got;
			uint8_t *all;
			int rc;

			th_copy_file(pristine, path);
			th_fault_install_events(cut, mode);
			rc = vhd_expand(path, size, NULL, NULL);
			th_fault_remove();
			rc = vhd_open(path, VHD_OPEN_RDONLY, &d);
			if (rc)
				fail_msg("cut after event %ld (%s): reopen "
					 "failed: %s",
					 cut, mode_name[mode], vhd_errmsg());
			got = vhd_size(d);
			if (got != old && got != size)
				fail_msg("cut %ld (%s): size %llu", cut,
					 mode_name[mode],
					 (unsigned long long)got);
			grown += got == size;
			all = th_read_all(d);
			vhd_close(d);
			assert_memory_equal(all, flat, old);
			for (uint64_t i = old; i < got; i++)
				if (all[i])
					fail_msg("cut %ld (%s): tail byte %llu "
						 "is 0x%02x",
						 cut, mode_name[mode],
						 (unsigned long long)i, all[i]);
			free(all);
			/* Footer copies may differ (repair fixes that). */
			assert_true(vhd_check(path, NULL, NULL) >= 0);
			assert_int_equal(vhd_expand(path, size, NULL, NULL), 0);
			expect_grown(path, flat, old, size);
		}
	}
	print_message("  %d of %ld cuts left the new size\n", grown, 3 * total);
}

static void test_crash_dynamic(void **state)
{
	const char *orig = th_path(DIR_, "dyn.orig");
	uint64_t old = 8ull * BS;
	uint8_t *flat = make_dynamic(orig, old);

	/* The table grows within its sector (moves: small blocks below). */
	sweep(orig, th_path(DIR_, "dyn.vhd"), flat, old, 40ull * BS);
	free(flat);
}

static void test_crash_fixed(void **state)
{
	const char *orig = th_path(DIR_, "fixed.orig");
	uint64_t old = 64 * TH_KIB;
	uint8_t *flat = malloc(old);
	struct vhd_disk *d;

	th_create(orig, VHD_TYPE_FIXED, old, 0);
	d = th_open(orig, VHD_OPEN_RDWR);
	th_fill_pattern(flat, old, 0, 2);
	th_write(d, flat, old, 0);
	assert_int_equal(vhd_close(d), 0);
	sweep(orig, th_path(DIR_, "fixed.vhd"), flat, old, 256 * TH_KIB);
	free(flat);
}

/*
 * Small blocks (4 KiB, built by hand): the table of a 64 KiB disk grows
 * from one sector to eight when it becomes 4 MiB, past the end of an
 * empty file and over the first blocks of a written one.
 */
static void test_crash_small_blocks(void **state)
{
	const char *empty = th_path(DIR_, "empty.orig");
	const char *full = th_path(DIR_, "full.orig");
	struct th_spec s = {.type = VHD_TYPE_DYNAMIC,
			    .size = 64 * TH_KIB,
			    .block_size = 4096,
			    .creator = "win "};
	uint8_t *flat = calloc(1, 64 * TH_KIB);
	struct vhd_disk *d;

	th_build(empty, &s);
	sweep(empty, th_path(DIR_, "empty.vhd"), flat, 64 * TH_KIB, 4 * TH_MIB);
	th_build(full, &s);
	d = th_open(full, VHD_OPEN_RDWR);
	for (uint64_t off = 0; off < 64 * TH_KIB; off += 3 * 4096) {
		th_fill_pattern(flat + off, 4096, off, 12);
		th_write(d, flat + off, 4096, off);
	}
	assert_int_equal(vhd_close(d), 0);
	sweep(full, th_path(DIR_, "full.vhd"), flat, 64 * TH_KIB, 4 * TH_MIB);
	free(flat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_dynamic_room),
		T(test_dynamic_bat_grows),
		T(test_dynamic_bat_past_end),
		T(test_fixed),
		T(test_refusals),
		T(test_crash_dynamic),
		T(test_crash_fixed),
		T(test_crash_small_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
