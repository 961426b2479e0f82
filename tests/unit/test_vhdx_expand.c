// SPDX-License-Identifier: MIT
/*
 * vhd_expand of VHDX: dynamic and fixed disks grow; old content reads the
 * same, the new tail reads zeros (also where another writer left bytes
 * past the old end of the last block), a fixed disk gets FULLY_PRESENT
 * blocks; the BAT region grows in place when the space after it is free
 * and moves to the end of the file when blocks follow it; the size is
 * rounded up to the logical sector; the DataWriteGuid is renewed. qemu-img
 * check passes. Differencing EOPNOTSUPP, shrinking EINVAL, past 64 TiB
 * EFBIG, each changing nothing. Crash sweeps (cut after each write and
 * sync, three modes): the image opens with the old or the new size and
 * the old content, and qemu's log replay (qemu-img check -r all) agrees.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "vhdx_i.h"

#define DIR_ (*(const char **)state)
#define MIB TH_MIB
#define OLD (8 * MIB)
#define HUGE (200 * TH_GIB) /* needs a 2 MiB BAT with 1 MiB blocks */

static bool qemu_check(const char *path)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd),
		 "qemu-img check -q -r all -f vhdx '%s' >/dev/null 2>&1", path);
	return system(cmd) == 0;
}

/* A dynamic (or fixed) VHDX of @size in 1 MiB blocks; @flat its content
 * (patterned up to @written bytes). */
static void make(const char *path, enum vhd_type t, uint64_t size,
		 uint64_t written, uint8_t *flat)
{
	struct vhd_disk *d;

	th_create(path, t, size, (uint32_t)MIB);
	memset(flat, 0, size);
	th_fill_pattern(flat, written, 0, 3);
	d = th_open(path, VHD_OPEN_RDWR);
	if (written)
		th_write(d, flat, written, 0);
	assert_int_equal(vhd_close(d), 0);
}

/* @path reads @flat (@old bytes) then zeros up to @size (sampled past
 * 64 MiB), checks clean in vhd and qemu. */
static void expect_grown(const char *path, const uint8_t *flat, uint64_t old,
			 uint64_t size)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDONLY);
	uint64_t upto = size < 64 * MIB ? size : 64 * MIB;
	uint8_t *buf = malloc(upto), *zero = calloc(1, MIB);

	assert_int_equal(vhd_size(d), size);
	assert_int_equal(vhd_pread(d, buf, upto, 0), (ssize_t)upto);
	assert_memory_equal(buf, flat, old);
	for (uint64_t i = old; i < upto; i++)
		if (buf[i])
			fail_msg("byte %llu of the new tail reads 0x%02x",
				 (unsigned long long)i, buf[i]);
	if (size > upto) {
		assert_int_equal(vhd_pread(d, buf, MIB, size - MIB),
				 (ssize_t)MIB);
		assert_memory_equal(buf, zero, MIB);
	}
	vhd_close(d);
	assert_int_equal(vhd_check(path, NULL, NULL), 0);
	assert_true(qemu_check(path));
	free(buf);
	free(zero);
}

/* The new tail takes writes and keeps them after reopen. */
static void write_tail(const char *path, uint64_t off)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDWR);
	uint8_t buf[8192];

	th_fill_pattern(buf, sizeof(buf), off, 8);
	th_write(d, buf, sizeof(buf), off);
	assert_int_equal(vhd_close(d), 0);
	d = th_open(path, VHD_OPEN_RDONLY);
	th_expect_read(d, buf, sizeof(buf), off);
	vhd_close(d);
	assert_true(qemu_check(path));
}

static void guids(const char *path, uint8_t dwg[16], uint64_t *bat_off,
		  uint32_t *bat_len)
{
	struct vhdx *x;

	assert_int_equal(vhdx_open_file(path, VHD_OPEN_RDONLY, &x), 0);
	memcpy(dwg, x->header.data_write_guid, 16);
	*bat_off = x->bat_region.offset;
	*bat_len = x->bat_region.length;
	vhdx_free(x);
}

static void test_dynamic(void **state)
{
	const char *p = th_path(DIR_, "d.vhdx");
	uint8_t *flat = malloc(OLD), g0[16], g1[16];
	uint64_t off;
	uint32_t len;

	make(p, VHD_TYPE_DYNAMIC, OLD, OLD, flat);
	guids(p, g0, &off, &len);
	/* rounded up to the 512-byte logical sector */
	assert_int_equal(vhd_expand(p, 20 * MIB + 1000, NULL, NULL), 0);
	expect_grown(p, flat, OLD, 20 * MIB + 1024);
	guids(p, g1, &off, &len);
	assert_memory_not_equal(g0, g1, 16);
	assert_int_equal(off, 3 * MIB);
	assert_int_equal(len, MIB);
	write_tail(p, 20 * MIB - 8192);
	/* the same size again changes nothing */
	assert_int_equal(vhd_expand(p, 20 * MIB + 1024, NULL, NULL), 0);
	free(flat);
}

/* Nothing after the BAT: its region grows where it is. */
static void test_bat_in_place(void **state)
{
	const char *p = th_path(DIR_, "e.vhdx");
	uint8_t *flat = malloc(OLD), g[16];
	uint64_t off;
	uint32_t len;

	make(p, VHD_TYPE_DYNAMIC, OLD, 0, flat);
	assert_int_equal(vhd_expand(p, HUGE, NULL, NULL), 0);
	guids(p, g, &off, &len);
	assert_int_equal(off, 3 * MIB);
	assert_int_equal(len, 2 * MIB);
	expect_grown(p, flat, OLD, HUGE);
	write_tail(p, 150 * TH_GIB);
	free(flat);
}

/* Blocks after the BAT: the region moves to the end of the file. */
static void test_bat_moved(void **state)
{
	const char *p = th_path(DIR_, "m.vhdx");
	uint8_t *flat = malloc(OLD), g[16];
	uint64_t off, end;
	uint32_t len;

	make(p, VHD_TYPE_DYNAMIC, OLD, OLD, flat);
	end = th_file_size(p);
	assert_int_equal(vhd_expand(p, HUGE, NULL, NULL), 0);
	guids(p, g, &off, &len);
	assert_int_equal(off, end);
	assert_int_equal(len, 2 * MIB);
	expect_grown(p, flat, OLD, HUGE);
	write_tail(p, HUGE - 8192);
	free(flat);
}

static void test_fixed(void **state)
{
	const char *p = th_path(DIR_, "f.vhdx");
	uint8_t *flat = malloc(OLD);
	struct vhd_disk *d;
	struct vhdx *x;

	make(p, VHD_TYPE_FIXED, OLD, OLD, flat);
	assert_int_equal(vhd_expand(p, 12 * MIB, NULL, NULL), 0);
	expect_grown(p, flat, OLD, 12 * MIB);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_type(d), VHD_TYPE_FIXED);
	x = d->vhdx;
	assert_int_equal(x->payload_blocks, 12);
	for (uint64_t b = 0; b < 12; b++)
		assert_int_equal(
			VHDX_BAT_STATE(x->bat[vhdx_payload_index(x, b)]),
			VHDX_PAYLOAD_FULLY_PRESENT);
	vhd_close(d);
	write_tail(p, 10 * MIB);
	free(flat);
}

/* Bytes past the old end inside the last block read zeros after. */
static void test_tail_zeroed(void **state)
{
	const char *p = th_path(DIR_, "t.vhdx");
	uint64_t old = OLD - 1536;
	uint8_t *flat = malloc(OLD), junk[1536];
	struct vhd_disk *d;
	uint64_t e;

	make(p, VHD_TYPE_DYNAMIC, old, old, flat);
	d = th_open(p, VHD_OPEN_RDONLY);
	e = d->vhdx->bat[vhdx_payload_index(d->vhdx, 7)];
	vhd_close(d);
	memset(junk, 0xEE, sizeof(junk));
	th_pwrite_raw(p, junk, sizeof(junk), VHDX_BAT_OFFSET(e) + MIB - 1536);
	assert_int_equal(vhd_expand(p, 2 * OLD, NULL, NULL), 0);
	expect_grown(p, flat, old, 2 * OLD);
	free(flat);
}

static void test_refusals(void **state)
{
	const char *p = th_path(DIR_, "r.vhdx");
	const char *c = th_path(DIR_, "c.avhdx");
	const char *k = th_path(DIR_, "k.vhdx");
	uint8_t *flat = malloc(OLD), lss[4];
	uint64_t hp, hc;
	struct vhd_disk *d;

	make(p, VHD_TYPE_DYNAMIC, OLD, MIB, flat);
	th_create_diff(c, p);
	hp = th_file_hash(p);
	hc = th_file_hash(c);
	assert_int_equal(vhd_expand(c, 2 * OLD, NULL, NULL), -EOPNOTSUPP);
	assert_true(th_msg_has("differencing"));
	assert_int_equal(vhd_expand(p, OLD / 2, NULL, NULL), -EINVAL);
	assert_true(th_msg_has("shrink"));
	assert_int_equal(vhd_expand(p, (64ull << 40) + 512, NULL, NULL),
			 -EFBIG);
	assert_true(th_msg_has("64 TiB"));
	assert_int_equal(vhd_expand(p, UINT64_MAX, NULL, NULL), -EFBIG);
	assert_true(th_file_hash(p) == hp);
	assert_true(th_file_hash(c) == hc);

	/* 4096-byte logical sectors round up to 4096 */
	th_create(k, VHD_TYPE_DYNAMIC, OLD, (uint32_t)MIB);
	vhdx_put32(lss, 4096);
	th_pwrite_raw(k, lss, 4, 2 * MIB + 64 * 1024 + 32);
	assert_int_equal(vhd_expand(k, 10 * MIB + 1, NULL, NULL), 0);
	d = th_open(k, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_size(d), 10 * MIB + 4096);
	vhd_close(d);
	/* (qemu opens only 512-byte logical sectors) */
	assert_int_equal(vhd_check(k, NULL, NULL), 0);
	free(flat);
}

static const char *const mode_name[] = {"writes kept", "unsynced lost",
					"only newest unsynced landed"};

static void sweep(const char *q, const char *orig, const char *p,
		  const uint8_t *flat, uint64_t old, uint64_t size)
{
	int seen[2] = {0};
	long total;

	th_copy_file(orig, p);
	th_fault_install_events(-1, TH_CUT_KEEP);
	assert_int_equal(vhd_expand(p, size, NULL, NULL), 0);
	total = th_fault_writes();
	th_fault_remove();
	print_message("  %ld writes and syncs in the expansion\n", total);
	for (long cut = 0; cut < total; cut++) {
		for (int mode = 0; mode < 3; mode++) {
			struct vhd_disk *d = NULL;
			uint64_t got;
			uint8_t *buf = malloc(old);
			int rc;

			th_copy_file(orig, p);
			th_fault_install_events(cut, mode);
			rc = vhd_expand(p, size, NULL, NULL);
			th_fault_remove();
			assert_true(rc < 0);
			rc = vhd_open(p, VHD_OPEN_RDONLY, &d);
			if (rc)
				fail_msg("cut %ld (%s): reopen failed: %s", cut,
					 mode_name[mode], vhd_errmsg());
			got = vhd_size(d);
			if (got != old && got != size)
				fail_msg("cut %ld (%s): size %llu", cut,
					 mode_name[mode],
					 (unsigned long long)got);
			seen[got == size]++;
			assert_int_equal(vhd_pread(d, buf, old, 0),
					 (ssize_t)old);
			if (memcmp(buf, flat, old))
				fail_msg("cut %ld (%s): old content changed",
					 cut, mode_name[mode]);
			vhd_close(d);
			assert_true(vhd_check(p, NULL, NULL) >= 0);
			/* qemu replays the log to the same size */
			th_copy_file(p, q);
			if (!qemu_check(q))
				fail_msg("cut %ld (%s): qemu-img check fails",
					 cut, mode_name[mode]);
			d = th_open(q, VHD_OPEN_RDONLY);
			assert_int_equal(vhd_size(d), got);
			vhd_close(d);
			free(buf);
		}
	}
	assert_true(seen[0] > 0 && seen[1] > 0);
}

static void test_crash_bat_moved(void **state)
{
	const char *orig = th_path(DIR_, "orig.vhdx");
	uint8_t *flat = malloc(OLD);

	make(orig, VHD_TYPE_DYNAMIC, OLD, OLD, flat);
	sweep(th_path(DIR_, "q.vhdx"), orig, th_path(DIR_, "m.vhdx"), flat, OLD,
	      HUGE);
	free(flat);
}

static void test_crash_fixed(void **state)
{
	const char *orig = th_path(DIR_, "orig.vhdx");
	uint8_t *flat = malloc(OLD);

	make(orig, VHD_TYPE_FIXED, OLD, OLD, flat);
	sweep(th_path(DIR_, "q.vhdx"), orig, th_path(DIR_, "f.vhdx"), flat, OLD,
	      12 * MIB);
	free(flat);
}

#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_dynamic),	 T(test_bat_in_place),
		T(test_bat_moved),	 T(test_fixed),
		T(test_tail_zeroed),	 T(test_refusals),
		T(test_crash_bat_moved), T(test_crash_fixed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
