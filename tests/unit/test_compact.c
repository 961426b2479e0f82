// SPDX-License-Identifier: MIT
/*
 * vhd_compact: dynamic disks lose their all-zero blocks, differencing
 * disks the sectors and blocks equal to the parent's view; the resolved
 * content is byte-equal before and after, the file shrinks by exactly
 * the blocks dropped, and the result checks clean. Fixed disks are refused
 * (EOPNOTSUPP), a cancel leaves a valid image. Crash sweep: the compaction
 * is cut after each of its writes and before each of its syncs, with the
 * writes kept, the unsynced writes lost, or only the newest unsynced write
 * landed; every cut leaves an image that opens, reads as before and
 * checks, and a rerun finishes the job.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define BS (512u << 10)
#define SLOT ((uint64_t)BS + 4096) /* block + its bitmap, 4K-aligned */

static uint8_t *read_flat(const char *path)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDONLY);
	uint8_t *flat = th_read_all(d);

	vhd_close(d);
	return flat;
}

static uint32_t allocated(const char *path)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDONLY);
	struct vhd_info info;

	vhd_get_info(d, &info);
	vhd_close(d);
	return info.allocated_blocks;
}

static void expect_flat(const char *path, const uint8_t *flat, uint64_t size)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDONLY);

	assert_int_equal(vhd_size(d), size);
	th_expect_read(d, flat, size, 0);
	vhd_close(d);
}

/*
 * 8 blocks of @bs bytes: data in 0, 2, 5 and 7, zeros written into 1, 3
 * and 6 (they are allocated but dead); 4 never written.
 */
static void make_dynamic_bs(const char *path, uint8_t *flat, uint32_t bs)
{
	struct vhd_disk *d;
	uint8_t *zero = calloc(1, bs);

	th_create(path, VHD_TYPE_DYNAMIC, 8ull * bs, bs);
	memset(flat, 0, 8ull * bs);
	d = th_open(path, VHD_OPEN_RDWR);
	for (uint32_t b = 0; b < 8; b++) {
		uint64_t off = (uint64_t)b * bs;

		if (b == 4)
			continue;
		if (b == 1 || b == 3 || b == 6) {
			th_write(d, zero, bs, off);
			continue;
		}
		/* block 7 only partly: one sector in the middle */
		th_fill_pattern(flat + off + (b == 7 ? 4096 : 0),
				b == 7 ? 512 : bs, off + (b == 7 ? 4096 : 0),
				b + 1);
		th_write(d, flat + off + (b == 7 ? 4096 : 0), b == 7 ? 512 : bs,
			 off + (b == 7 ? 4096 : 0));
	}
	assert_int_equal(vhd_close(d), 0);
	free(zero);
}

static void make_dynamic(const char *path, uint8_t *flat)
{
	make_dynamic_bs(path, flat, BS);
}

static void test_dynamic(void **state)
{
	const char *p = th_path(DIR_, "dyn.vhd");
	uint8_t *flat = malloc(8ull * BS);
	uint64_t before, reclaimed = 0;

	make_dynamic(p, flat);
	before = th_file_size(p);
	assert_int_equal(allocated(p), 7);
	assert_int_equal(vhd_compact(p, &reclaimed, NULL, NULL), 0);
	/* Three dead blocks of one slot each. */
	assert_int_equal(reclaimed, 3 * SLOT);
	assert_int_equal(th_file_size(p), before - 3 * SLOT);
	assert_int_equal(allocated(p), 4);
	expect_flat(p, flat, 8ull * BS);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);

	/* Nothing left to do: a second run changes nothing. */
	before = th_file_hash(p);
	assert_int_equal(vhd_compact(p, &reclaimed, NULL, NULL), 0);
	assert_int_equal(reclaimed, 0);
	assert_true(th_file_hash(p) == before);
	free(flat);
}

/*
 * Child of a patterned base: block 0 rewritten with the parent's own
 * data (dropped), block 1 half equal half new (bits cleared in the equal
 * half), block 2 new data, block 3 zeros over parent data (kept).
 */
static void test_differencing(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	uint64_t size = 4ull * BS, reclaimed = 0, before, parent_hash;
	uint8_t *pflat = malloc(size), *buf = malloc(BS), *flat;
	struct vhd_disk *d;

	th_create(base, VHD_TYPE_DYNAMIC, size, BS);
	d = th_open(base, VHD_OPEN_RDWR);
	th_fill_pattern(pflat, size, 0, 3);
	th_write(d, pflat, size, 0);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(child, base);
	d = th_open(child, VHD_OPEN_RDWR);
	th_write(d, pflat, BS, 0);
	memcpy(buf, pflat + BS, BS);
	th_fill_pattern(buf + BS / 2, BS / 2, BS + BS / 2, 9);
	th_write(d, buf, BS, BS);
	th_fill_pattern(buf, BS, 2ull * BS, 10);
	th_write(d, buf, BS, 2ull * BS);
	memset(buf, 0, 4096);
	th_write(d, buf, 4096, 3ull * BS + 8192);
	assert_int_equal(vhd_close(d), 0);
	flat = read_flat(child);
	parent_hash = th_file_hash(base);
	before = th_file_size(child);
	assert_int_equal(allocated(child), 4);

	assert_int_equal(vhd_compact(child, &reclaimed, NULL, NULL), 0);
	assert_int_equal(reclaimed, SLOT);
	assert_int_equal(th_file_size(child), before - SLOT);
	assert_int_equal(allocated(child), 3);
	expect_flat(child, flat, size);
	assert_true(th_file_hash(base) == parent_hash);
	assert_int_equal(vhd_check(child, NULL, NULL), 0);

	/* Block 1's equal half now reads through to the parent. */
	d = th_open(child, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_seek_data(d, BS), BS);
	vhd_close(d);
	{
		struct th_layout l;
		uint8_t e[4], map[512];

		th_layout_of(child, &l);
		th_pread_raw(child, e, 4, l.table_offset + 4);
		th_pread_raw(child, map, 512, th_get_be32(e) * 512ull);
		for (uint32_t s = 0; s < BS / 512; s++)
			assert_int_equal(!!(map[s / 8] & (0x80 >> (s % 8))),
					 s >= BS / 1024);
	}
	free(flat);
	free(pflat);
	free(buf);
}

static void test_fixed_refused(void **state)
{
	const char *p = th_path(DIR_, "fixed.vhd");
	uint64_t h;

	th_create(p, VHD_TYPE_FIXED, TH_MIB, 0);
	h = th_file_hash(p);
	assert_int_equal(vhd_compact(p, NULL, NULL, NULL), -EOPNOTSUPP);
	assert_true(th_msg_names(p));
	assert_true(th_msg_has("fixed"));
	assert_true(th_file_hash(p) == h);
}

static int cancel_at(void *ctx, uint64_t done, uint64_t total)
{
	int *calls = ctx;

	assert_true(done <= total);
	return ++*calls >= 4;
}

static int count_calls(void *ctx, uint64_t done, uint64_t total)
{
	uint64_t *last = ctx;

	assert_true(done <= total);
	assert_true(done >= last[0]);
	last[0] = done;
	last[1]++;
	last[2] = total;
	return 0;
}

static void test_progress_and_cancel(void **state)
{
	const char *p = th_path(DIR_, "dyn.vhd");
	uint8_t *flat = malloc(8ull * BS);
	uint64_t seen[3] = {0};
	int calls = 0;

	make_dynamic(p, flat);
	assert_int_equal(vhd_compact(p, NULL, cancel_at, &calls), -ECANCELED);
	expect_flat(p, flat, 8ull * BS);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);
	assert_int_equal(vhd_compact(p, NULL, count_calls, seen), 0);
	assert_true(seen[1] >= 3);
	assert_true(seen[0] == seen[2]);
	expect_flat(p, flat, 8ull * BS);
	free(flat);
}

static const char *const mode_name[] = {"writes kept", "unsynced lost",
					"only newest unsynced landed"};

/* Cut the compaction of @pristine after every write, in every mode. */
static void sweep(const char *pristine, const char *path, const char *parent)
{
	uint64_t phash = parent ? th_file_hash(parent) : 0, size;
	uint8_t *flat = read_flat(pristine);
	uint64_t full, reclaimed;
	long total;

	{
		struct vhd_disk *d = th_open(pristine, VHD_OPEN_RDONLY);

		size = vhd_size(d);
		vhd_close(d);
	}
	th_copy_file(pristine, path);
	th_fault_install_events(-1, TH_CUT_KEEP);
	assert_int_equal(vhd_compact(path, &reclaimed, NULL, NULL), 0);
	total = th_fault_writes();
	th_fault_remove();
	full = th_file_size(path);
	print_message("  %ld writes and syncs in the compaction\n", total);
	assert_true(total >= 5);

	for (long cut = 0; cut < total; cut++) {
		for (int mode = 0; mode < 3; mode++) {
			struct vhd_disk *d = NULL;
			int rc;

			th_copy_file(pristine, path);
			th_fault_install_events(cut, mode);
			rc = vhd_compact(path, NULL, NULL, NULL);
			th_fault_remove();
			assert_true(rc < 0);
			rc = vhd_open(path, VHD_OPEN_RDONLY, &d);
			if (rc)
				fail_msg("cut after write %ld (%s): reopen "
					 "failed: %s",
					 cut, mode_name[mode], vhd_errmsg());
			th_expect_read(d, flat, size, 0);
			vhd_close(d);
			if (vhd_check(path, NULL, NULL) != 0)
				fail_msg("cut after write %ld (%s): check "
					 "finds problems",
					 cut, mode_name[mode]);
			if (parent && th_file_hash(parent) != phash)
				fail_msg("cut %ld: parent changed", cut);
			/* A rerun finishes the job. */
			assert_int_equal(vhd_compact(path, NULL, NULL, NULL),
					 0);
			expect_flat(path, flat, size);
			assert_int_equal(th_file_size(path), full);
		}
	}
	free(flat);
}

static void test_crash_dynamic(void **state)
{
	const char *orig = th_path(DIR_, "dyn.orig");
	uint8_t *flat = malloc(8ull * BS);

	make_dynamic(orig, flat);
	sweep(orig, th_path(DIR_, "dyn.vhd"), NULL);
	free(flat);
}

static void test_crash_differencing(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	const char *orig = th_path(DIR_, "child.orig");
	uint64_t size = 6ull * BS;
	uint8_t *pflat = malloc(size), *buf = malloc(BS);
	struct vhd_disk *d;

	th_create(base, VHD_TYPE_DYNAMIC, size, BS);
	d = th_open(base, VHD_OPEN_RDWR);
	th_fill_pattern(pflat, size, 0, 3);
	th_write(d, pflat, size, 0);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(child, base);
	d = th_open(child, VHD_OPEN_RDWR);
	th_write(d, pflat, BS, 0); /* dead: equal to the parent */
	th_fill_pattern(buf, BS, BS, 8);
	th_write(d, buf, BS, BS);
	th_write(d, pflat + 2 * BS, 8192, 2ull * BS); /* dead */
	memcpy(buf, pflat + 5ull * BS, BS);
	th_fill_pattern(buf, 4096, 5ull * BS, 9); /* partly equal */
	th_write(d, buf, BS, 5ull * BS);
	assert_int_equal(vhd_close(d), 0);
	th_copy_file(child, orig);
	sweep(orig, child, base);
	free(pflat);
	free(buf);
}

/* --- dynamic VHDX: all-zero blocks become NOT_PRESENT via the log ---- */
#define XBS (1u << 20)

static uint64_t disk_usage(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void test_vhdx_dynamic(void **state)
{
	const char *p = th_path(DIR_, "dyn.vhdx");
	uint8_t *flat = malloc(8ull * XBS);
	uint64_t size, used, reclaimed = 0;

	make_dynamic_bs(p, flat, XBS);
	size = th_file_size(p);
	used = disk_usage(p);
	assert_int_equal(allocated(p), 7);
	assert_int_equal(vhd_compact(p, &reclaimed, NULL, NULL), 0);
	assert_int_equal(allocated(p), 4);
	/* the three dead blocks' space is given back; the live ones move
	 * down and the file ends after the last (structures: 4 MiB) */
	/* (less the log pages the moves first wrote into) */
	assert_true(reclaimed <= 3ull * XBS &&
		    reclaimed >= 3ull * XBS - 4 * 4096);
	assert_int_equal(disk_usage(p), used - reclaimed);
	print_message("  file length %" PRIu64 " -> %" PRIu64 "\n", size,
		      th_file_size(p));
	assert_int_equal(th_file_size(p), 4ull * XBS + 4ull * XBS);
	assert_true(th_file_size(p) < size);
	expect_flat(p, flat, 8ull * XBS);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);
	/* a second run changes nothing */
	assert_int_equal(vhd_compact(p, &reclaimed, NULL, NULL), 0);
	assert_int_equal(reclaimed, 0);
	assert_int_equal(allocated(p), 4);
	free(flat);
}

/* Fixed and differencing VHDX are refused unchanged. */
static void test_vhdx_refused(void **state)
{
	struct vhd_create_params fp = {.type = VHD_TYPE_FIXED, .size = 4 * XBS};
	char *f = strdup(th_path(DIR_, "f.vhdx"));
	char *c = strdup(th_path(DIR_, "c.avhdx"));
	uint64_t h;

	assert_int_equal(vhd_create(f, &fp), 0);
	assert_int_equal(vhd_create_diff(c, f), 0);
	h = th_file_hash(c);
	assert_int_equal(vhd_compact(c, NULL, NULL, NULL), -EOPNOTSUPP);
	assert_true(th_msg_has("differencing VHDX"));
	assert_true(th_file_hash(c) == h);
	unlink(c);
	h = th_file_hash(f);
	assert_int_equal(vhd_compact(f, NULL, NULL, NULL), -EOPNOTSUPP);
	assert_true(th_file_hash(f) == h);
	free(f);
	free(c);
}

static void test_vhdx_crash(void **state)
{
	const char *orig = th_path(DIR_, "dyn.orig");
	uint8_t *flat = malloc(8ull * XBS);

	make_dynamic_bs(orig, flat, XBS);
	sweep(orig, th_path(DIR_, "dyn.vhdx"), NULL);
	free(flat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_dynamic),       T(test_differencing),
		T(test_fixed_refused), T(test_progress_and_cancel),
		T(test_crash_dynamic), T(test_crash_differencing),
		T(test_vhdx_dynamic),  T(test_vhdx_refused),
		T(test_vhdx_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
