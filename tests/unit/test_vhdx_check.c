// SPDX-License-Identifier: MIT
/*
 * vhd_check and vhd_repair of VHDX images, each defect planted by hand
 * (the helpers' bitwise CRC-32C) in an image made and written by us:
 * check names the file and the defect and marks it fixable or not, never
 * changing the file (hash before and after); repair fixes what it says it
 * fixes, after which check is clean, `qemu-img check` passes, every
 * sector reads as before, and a second repair changes nothing.
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
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define MIB TH_MIB
#define SIZE (8 * MIB)
/* Where vhd_create puts them (vhdx_create.c) */
#define LOG_OFF (1 * MIB)
#define META_OFF (2 * MIB)
#define BAT_OFF (3 * MIB)
#define H1 (64 * 1024)
#define H2 (128 * 1024)
#define R1 (192 * 1024)
#define R2 (256 * 1024)
#define FIXABLE "(fixable by vhd repair)"
#define UNFIXABLE "(not fixable by vhd repair)"

struct lines {
	int n;
	char all[16384];
};

static void collect(void *ctx, const char *msg)
{
	struct lines *l = ctx;
	size_t used = strlen(l->all);

	l->n++;
	snprintf(l->all + used, sizeof(l->all) - used, "%s\n", msg);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get64(p);
}

static void fix_crc(uint8_t *b, size_t len)
{
	le32(b + 4, 0);
	le32(b + 4, th_crc32c(b, len));
}

/* Read @len bytes at @off, let @fn change them, fix the CRC at +4. */
static void edit(const char *path, uint64_t off, size_t len,
		 void (*fn)(uint8_t *b), bool crc)
{
	uint8_t *b = malloc(len);

	th_pread_raw(path, b, len, off);
	fn(b);
	if (crc)
		fix_crc(b, len);
	th_pwrite_raw(path, b, len, off);
	free(b);
}

static void flip_byte(const char *path, uint64_t off)
{
	uint8_t b;

	th_pread_raw(path, &b, 1, off);
	b ^= 0x10;
	th_pwrite_raw(path, &b, 1, off);
}

static void set_bat(const char *path, uint64_t idx, uint64_t e)
{
	uint8_t b[8];

	le64(b, e);
	th_pwrite_raw(path, b, 8, BAT_OFF + 8 * idx);
}

static uint64_t bat_entry(const char *path, uint64_t idx)
{
	uint8_t b[8];

	th_pread_raw(path, b, 8, BAT_OFF + 8 * idx);
	return get64(b);
}

static uint8_t *flat_of(const char *path)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDONLY);
	uint8_t *flat = th_read_all(d);

	vhd_close(d);
	return flat;
}

/* A dynamic 8 MiB VHDX in 1 MiB blocks, blocks 0, 2 and 5 written;
 * returns its flat content. */
static uint8_t *make_image(const char *path)
{
	struct vhd_create_params p = {VHD_TYPE_DYNAMIC, SIZE, MIB};
	uint8_t *buf = malloc(MIB);
	struct vhd_disk *d;

	assert_int_equal(vhd_create(path, &p), 0);
	d = th_open(path, VHD_OPEN_RDWR);
	th_fill_pattern(buf, MIB, 0, 7);
	th_write(d, buf, 64 * 1024, 0);
	th_write(d, buf, 8192, 2 * MIB + 4096);
	th_write(d, buf, MIB, 5 * MIB);
	assert_int_equal(vhd_close(d), 0);
	free(buf);
	return flat_of(path);
}

static bool qemu_check(const char *path)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd),
		 "qemu-img check -q -f vhdx '%s' >/dev/null 2>&1", path);
	return system(cmd) == 0;
}

/* vhd_check lists problems without changing the file: each of @want
 * (NULL-terminated) appears; returns the lines. */
static struct lines check_lists(const char *path, int n, ...)
{
	struct lines l = {0};
	uint64_t h = th_file_hash(path);
	va_list ap;
	int r = vhd_check(path, collect, &l);

	print_message("  check: %d\n%s", r, l.all);
	assert_true(th_file_hash(path) == h);
	if (r != n)
		fail_msg("check gave %d, %d expected: %s (%s)", r, n, l.all,
			 vhd_errmsg());
	assert_int_equal(l.n, n);
	va_start(ap, n);
	for (const char *w; (w = va_arg(ap, const char *));)
		if (!strcasestr(l.all, w))
			fail_msg("check said \"%s\"; \"%s\" expected", l.all,
				 w);
	va_end(ap);
	/* every line names the file */
	for (char *s = l.all; *s; s = strchr(s, '\n') + 1)
		assert_true(strncmp(s, path, strlen(path)) == 0);
	return l;
}

/* vhd_repair makes @changes changes, naming @what; then all is clean,
 * qemu agrees, the data reads as @flat, and a rerun changes nothing. */
static void repair_fixes(const char *path, unsigned flags, int changes,
			 const char *what, const uint8_t *flat)
{
	struct lines l = {0};
	uint8_t *now;
	uint64_t h;
	int r = vhd_repair(path, flags, collect, &l);

	print_message("  repair: %d\n%s", r, l.all);
	if (r != changes)
		fail_msg("repair gave %d (%s): %s", r, vhd_errmsg(), l.all);
	if (!strcasestr(l.all, what))
		fail_msg("repair said \"%s\"; \"%s\" expected", l.all, what);
	assert_int_equal(vhd_check(path, NULL, NULL), 0);
	assert_true(qemu_check(path));
	now = flat_of(path);
	assert_memory_equal(now, flat, SIZE);
	free(now);
	h = th_file_hash(path);
	l = (struct lines){0};
	assert_int_equal(vhd_repair(path, flags, collect, &l), 0);
	assert_int_equal(l.n, 0);
	assert_true(th_file_hash(path) == h);
}

/* Repair leaves an unfixable defect and the file as it was. */
static void repair_leaves(const char *path, unsigned flags)
{
	uint64_t h = th_file_hash(path);
	struct lines l = {0};
	int r = vhd_repair(path, flags, collect, &l);

	print_message("  repair: %d\n%s", r, l.all);
	assert_true(r == 0 || r == -EINVAL);
	assert_true(th_file_hash(path) == h);
	assert_true(vhd_check(path, NULL, NULL) > 0);
}

static void test_clean(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p);
	uint64_t h = th_file_hash(p);
	struct lines l = {0};

	check_lists(p, 0, NULL);
	assert_int_equal(vhd_repair(p, VHD_REPAIR_CHECKSUMS, collect, &l), 0);
	assert_int_equal(l.n, 0);
	assert_true(th_file_hash(p) == h);
	assert_true(qemu_check(p));
	free(flat);
}

static void version_2(uint8_t *b)
{
	b[66] = 2;
}

static void test_header_damaged(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p);

	flip_byte(p, H1 + 40); /* DataWriteGuid: CRC mismatch */
	check_lists(p, 1, "header 1 (at 64 KiB) is damaged", "CRC-32C", FIXABLE,
		    NULL);
	repair_fixes(p, 0, 1, "rewritten from header 2", flat);
	/* a valid CRC over an unsupported version is damage as well */
	edit(p, H2, 4096, version_2, true);
	check_lists(p, 1, "header 2 (at 128 KiB) is damaged", "version 2",
		    FIXABLE, NULL);
	repair_fixes(p, 0, 1, "rewritten from header 1", flat);
	free(flat);
}

static void new_file_guid(uint8_t *b)
{
	b[16] ^= 0xFF;
}

static void test_header_equal_sequence(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p), h[4096];

	th_pread_raw(p, h, sizeof(h), H1);
	th_pwrite_raw(p, h, sizeof(h), H2);
	edit(p, H2, 4096, new_file_guid, true);
	check_lists(p, 1, "both headers have sequence number", UNFIXABLE, NULL);
	repair_leaves(p, VHD_REPAIR_CHECKSUMS);
	free(flat);
}

static void test_header_checksums(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p);
	uint64_t h;
	struct lines l = {0};

	flip_byte(p, H1 + 4); /* the stored CRCs only */
	flip_byte(p, H2 + 4);
	check_lists(p, 1, "CRC-32C", "(fixable by vhd repair --checksums)",
		    NULL);
	h = th_file_hash(p);
	assert_int_equal(vhd_repair(p, 0, collect, &l), 0);
	assert_non_null(strstr(l.all, "run vhd repair --checksums"));
	assert_true(th_file_hash(p) == h);
	/* the CRC first, then the other header from it */
	repair_fixes(p, VHD_REPAIR_CHECKSUMS, 2, "CRC-32C recomputed", flat);
	free(flat);
}

static void test_region_damaged(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p), *r1;
	size_t n;

	flip_byte(p, R2 + 20);
	check_lists(p, 1, "region table copy 2 (at 256 KiB) is damaged",
		    FIXABLE, NULL);
	repair_fixes(p, 0, 1, "restored from copy 1 through the log", flat);
	flip_byte(p, R1 + 4);
	check_lists(p, 1, "region table copy 1 (at 192 KiB) is damaged",
		    FIXABLE, NULL);
	repair_fixes(p, 0, 1, "restored from copy 2 through the log", flat);
	r1 = th_read_file(p, &n);
	assert_memory_equal(r1 + R1, r1 + R2, 64 * 1024);
	free(r1);
	/* both damaged: nothing to restore from */
	flip_byte(p, R1 + 20);
	flip_byte(p, R2 + 20);
	check_lists(p, 1, "bad region table", UNFIXABLE, NULL);
	repair_leaves(p, 0);
	free(flat);
}

static void test_region_checksums(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p), *f;
	struct lines l = {0};
	size_t n;
	uint64_t h;

	flip_byte(p, R1 + 4); /* the stored CRCs only */
	flip_byte(p, R2 + 5);
	check_lists(p, 1, "bad region table",
		    "(fixable by vhd repair --checksums)", NULL);
	h = th_file_hash(p);
	assert_int_equal(vhd_repair(p, 0, collect, &l), 0);
	assert_non_null(strstr(l.all, "run vhd repair --checksums"));
	assert_true(th_file_hash(p) == h);
	repair_fixes(p, VHD_REPAIR_CHECKSUMS, 1, "both copies written", flat);
	f = th_read_file(p, &n);
	assert_memory_equal(f + R1, f + R2, 64 * 1024);
	free(f);
	free(flat);
}

static void swap_entries(uint8_t *b)
{
	uint8_t t[32];

	memcpy(t, b + 16, 32);
	memcpy(b + 16, b + 48, 32);
	memcpy(b + 48, t, 32);
}

static void test_region_copies_differ(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p);

	edit(p, R2, 64 * 1024, swap_entries, true);
	check_lists(p, 1, "region table copy 2 (at 256 KiB) differs", FIXABLE,
		    NULL);
	repair_fixes(p, 0, 1, "restored from copy 1", flat);
	free(flat);
}

/* A write cut at every point: where the log was written but not yet
 * applied, check says so without replaying it and repair replays it. */
static void test_log_pending(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	const char *orig = th_path(DIR_, "orig.vhdx");
	uint8_t *flat = make_image(p), buf[4096];
	int pending = 0;
	long total;

	free(flat);
	th_copy_file(p, orig);
	th_fill_pattern(buf, sizeof(buf), 0, 9);
	for (long cut = 0;; cut++) {
		struct vhd_disk *d;
		int r;

		th_copy_file(orig, p);
		d = th_open(p, VHD_OPEN_RDWR);
		th_fault_install(cut, TH_CUT_KEEP);
		r = vhd_pwrite(d, buf, sizeof(buf), 7 * MIB) ==
				    (ssize_t)sizeof(buf)
			    ? 0
			    : -EIO;
		/* writes after the cut fail: what a crash leaves */
		if (vhd_close(d) < 0)
			r = -EIO;
		total = th_fault_writes();
		th_fault_remove();
		if (r == 0)
			break;
		{
			struct lines l = {0};
			uint64_t h = th_file_hash(p);
			int n = vhd_check(p, collect, &l);

			assert_true(th_file_hash(p) == h);
			if (!strstr(l.all, "log is not empty"))
				continue;
			print_message("  cut %ld: %s", cut, l.all);
			assert_int_equal(n, 1);
			assert_non_null(strstr(l.all, FIXABLE));
		}
		/* the view is the replayed one (in memory) */
		flat = flat_of(p);
		repair_fixes(p, 0, 1, "replayed, LogGuid cleared", flat);
		free(flat);
		pending++;
	}
	print_message("  %ld writes, %d cuts left a log to replay\n", total,
		      pending);
	assert_true(pending > 0);
}

static void bad_log(uint8_t *b)
{
	memset(b + 48, 0x5A, 16);     /* LogGuid set */
	le64(b + 72, LOG_OFF + 4096); /* not 1 MiB aligned */
}

static void test_log_unreplayable(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p);

	edit(p, H1, 4096, bad_log, true);
	edit(p, H2, 4096, bad_log, true);
	check_lists(p, 1, "log cannot be replayed", "not 1 MiB aligned",
		    UNFIXABLE, NULL);
	repair_leaves(p, VHD_REPAIR_CHECKSUMS);
	free(flat);
}

/* The metadata table's entries: file parameters first in ours. */
static void unknown_required(uint8_t *b)
{
	/* the page 83 id's entry (the third) gets an unknown GUID */
	b[32 + 2 * 32] ^= 0xFF;
	b[32 + 2 * 32 + 24] |= 4; /* IsRequired */
}

/* the virtual disk size's entry (the second) claims 4 bytes */
static void short_size(uint8_t *b)
{
	le32(b + 32 + 32 + 20, 4);
}

static int logical_item(const uint8_t *t)
{
	static const uint8_t g[4] = {0x1d, 0xbf, 0x41, 0x81};

	for (int i = 0; i < 16; i++)
		if (!memcmp(t + 32 + 32 * i, g, 4))
			return i;
	fail_msg("no logical sector size item");
	return -1;
}

static void test_metadata(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p), t[4096], v[4];
	int i;

	th_copy_file(p, th_path(DIR_, "orig.vhdx"));
	edit(p, META_OFF, 4096, unknown_required, false);
	check_lists(p, 1, "unknown required metadata item", UNFIXABLE, NULL);
	repair_leaves(p, 0);
	th_copy_file(th_path(DIR_, "orig.vhdx"), p);
	th_pread_raw(p, t, sizeof(t), META_OFF);
	i = logical_item(t);
	le32(v, 1000);
	th_pwrite_raw(p, v, 4, META_OFF + get32(t + 32 + 32 * i + 16));
	check_lists(p, 1, "logical sector size 1000", UNFIXABLE, NULL);
	repair_leaves(p, 0);
	/* every defective entry, not only the first */
	th_copy_file(th_path(DIR_, "orig.vhdx"), p);
	edit(p, META_OFF, 4096, unknown_required, false);
	edit(p, META_OFF, 4096, short_size, false);
	check_lists(p, 2, "unknown required metadata item",
		    "\"virtual disk size\" is 4 bytes", UNFIXABLE, NULL);
	free(flat);
}

/* Every BAT defect is listed, not only the first. */
static void test_bat_entries(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *flat = make_image(p);
	uint64_t b2 = bat_entry(p, 2), end = th_file_size(p);

	set_bat(p, 0, (bat_entry(p, 0) & ~7ull) | 4);	   /* reserved */
	set_bat(p, 1, b2);				   /* duplicate */
	set_bat(p, 3, 6);				   /* offset 0 */
	set_bat(p, 4, ((end + 4 * MIB) & ~(MIB - 1)) | 6); /* past EOF */
	set_bat(p, 6, META_OFF | 6); /* on the metadata region */
	check_lists(p, 5, "BAT entry 0 of block 0 has reserved state 4",
		    "BAT entry 3 (payload, FULLY_PRESENT) points at offset 0",
		    "BAT entry 4 (payload", "block 1 at offset",
		    "block 6 at offset 2097152 overlaps the metadata region",
		    UNFIXABLE, NULL);
	repair_leaves(p, VHD_REPAIR_CHECKSUMS);
	free(flat);
}

/* A child: its chunk's sector bitmap over a block, then past the end of
 * the file. */
static void test_child_bat(void **state)
{
	char *base = strdup(th_path(DIR_, "base.vhdx"));
	char *child = strdup(th_path(DIR_, "child.avhdx"));
	uint8_t *flat = make_image(base), buf[4096] = {3};
	struct vhd_disk *d;
	uint64_t sb, end;

	assert_int_equal(vhd_create_diff(child, base), 0);
	d = th_open(child, VHD_OPEN_RDWR); /* block 0 partly: a bitmap */
	th_write(d, buf, sizeof(buf), 4096);
	assert_int_equal(vhd_close(d), 0);
	check_lists(child, 0, NULL);
	/* 2 MiB blocks, 512-byte sectors: 2048 blocks a chunk */
	sb = bat_entry(child, 2048);
	assert_int_equal(sb & 7, 6);
	/* the bitmap moved onto block 0's data */
	set_bat(child, 2048, (bat_entry(child, 0) & ~7ull) | 6);
	check_lists(child, 1, "block 0 at offset",
		    "overlaps sector bitmap of chunk 0", UNFIXABLE, NULL);
	end = th_file_size(child);
	set_bat(child, 2048, ((end + 8 * MIB) & ~(MIB - 1)) | 6);
	check_lists(child, 1, "BAT entry 2048 (sector bitmap",
		    "outside the file's data area", UNFIXABLE, NULL);
	free(flat);
	free(base);
	free(child);
}

static void test_parent(void **state)
{
	char *base = strdup(th_path(DIR_, "base.vhdx"));
	char *child = strdup(th_path(DIR_, "child.avhdx"));
	uint8_t *flat = make_image(base), buf[512] = {1};
	struct vhd_disk *d;

	assert_int_equal(vhd_create_diff(child, base), 0);
	check_lists(child, 0, NULL);
	d = th_open(base, VHD_OPEN_RDWR); /* a new DataWriteGuid */
	th_write(d, buf, sizeof(buf), 0);
	assert_int_equal(vhd_close(d), 0);
	check_lists(child, 1, "parent linkage mismatch", UNFIXABLE, NULL);
	assert_int_equal(unlink(base), 0);
	check_lists(child, 1, "parent not found", NULL);
	free(flat);
	free(base);
	free(child);
}

#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_clean),
		T(test_header_damaged),
		T(test_header_equal_sequence),
		T(test_header_checksums),
		T(test_region_damaged),
		T(test_region_checksums),
		T(test_region_copies_differ),
		T(test_log_pending),
		T(test_log_unreplayable),
		T(test_metadata),
		T(test_bat_entries),
		T(test_child_bat),
		T(test_parent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
