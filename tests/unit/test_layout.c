// SPDX-License-Identifier: MIT
/*
 * Overlapping layouts (layout.c): a BAT entry pointing into the header or
 * the BAT, two entries whose blocks overlap, a block past the trailing
 * footer. Opening read-write fails -EINVAL with a message naming the block
 * and what it overlaps, and leaves the file unchanged; read-only opens
 * still read (the data there is what it is) and vhd check lists it.
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
#define SIZE (8 * TH_MIB)
#define BS (512u << 10)

/* A dynamic image with blocks 0, 3 and 9 written with the pattern. */
static const char *make_image(const char *dir)
{
	const char *p = th_path(dir, "img.vhd");
	uint8_t buf[4096];
	struct vhd_disk *d;

	th_create(p, VHD_TYPE_DYNAMIC, SIZE, BS);
	d = th_open(p, VHD_OPEN_RDWR);
	for (uint64_t b = 0; b < 16; b += 3) {
		th_fill_pattern(buf, sizeof(buf), b * BS, 7);
		th_write(d, buf, sizeof(buf), b * BS);
	}
	assert_int_equal(vhd_close(d), 0);
	return p;
}

static void set_entry(const char *p, uint32_t block, uint32_t sector)
{
	struct th_layout l;
	uint8_t e[4];

	th_layout_of(p, &l);
	th_be32(e, sector);
	th_pwrite_raw(p, e, 4, l.table_offset + 4ull * block);
}

static uint32_t get_entry(const char *p, uint32_t block)
{
	struct th_layout l;
	uint8_t e[4];

	th_layout_of(p, &l);
	th_pread_raw(p, e, 4, l.table_offset + 4ull * block);
	return th_get_be32(e);
}

static void count_lines(void *ctx, const char *msg)
{
	(void)msg;
	(*(int *)ctx)++;
}

/*
 * Read-write refused with a message containing every word of @words; the
 * file is unchanged; read-only opens and reads; vhd check reports it.
 */
static void refused_rw(const char *p, const char *const *words)
{
	uint64_t hash = th_file_hash(p);
	struct vhd_disk *d = NULL;
	uint8_t *all;
	int lines = 0;

	assert_int_equal(vhd_open(p, VHD_OPEN_RDWR, &d), -EINVAL);
	print_message("  %s\n", vhd_errmsg());
	assert_true(th_msg_names(p));
	for (int i = 0; words[i]; i++)
		assert_true(th_msg_has(words[i]));
	assert_true(th_file_hash(p) == hash);

	d = th_open(p, VHD_OPEN_RDONLY);
	all = th_read_all(d);
	free(all);
	vhd_close(d);
	assert_true(vhd_check(p, count_lines, &lines) > 0);
	assert_true(lines > 0);
}

static void test_clean_opens_rw(void **state)
{
	const char *p = make_image(DIR_);
	struct vhd_disk *d = th_open(p, VHD_OPEN_RDWR);

	assert_int_equal(vhd_close(d), 0);
	assert_int_equal(vhd_check(p, NULL, NULL), 0);
}

static void test_entry_into_bat(void **state)
{
	const char *p = make_image(DIR_);
	struct th_layout l;

	th_layout_of(p, &l);
	set_entry(p, 5, (uint32_t)(l.table_offset / 512));
	refused_rw(p, TH_WORDS("block 5 at offset", "overlaps", "block table"));
}

static void test_entry_into_header(void **state)
{
	const char *p = make_image(DIR_);

	set_entry(p, 7, 1); /* the dynamic header is at offset 512 */
	refused_rw(p, TH_WORDS("block 7 at offset 512", "overlaps",
			       "dynamic header"));
}

static void test_two_entries_same_block(void **state)
{
	const char *p = make_image(DIR_);
	char want[64];

	set_entry(p, 4, get_entry(p, 3));
	snprintf(want, sizeof(want), "at offset %llu",
		 (unsigned long long)get_entry(p, 3) * 512);
	refused_rw(p, TH_WORDS("block 4", "overlaps block 3", want));
}

/* Not the same start: the second block begins inside the first's data. */
static void test_partial_overlap(void **state)
{
	const char *p = make_image(DIR_);

	set_entry(p, 1, get_entry(p, 6) + 8);
	refused_rw(p, TH_WORDS("overlaps", "block 6", "block 1"));
}

/* Past the trailing footer: refused by every open, as before. */
static void test_block_past_footer(void **state)
{
	const char *p = make_image(DIR_);
	uint32_t last = (uint32_t)((th_file_size(p) - 512) / 512);

	set_entry(p, 2, last - 8);
	th_open_fails(p, VHD_OPEN_RDWR, EINVAL, 0, TH_WORDS("block 2", "end"));
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("block 2", "end"));
}

struct lines {
	int n;
	char all[4096];
};

static void collect(void *ctx, const char *msg)
{
	struct lines *l = ctx;
	size_t used = strlen(l->all);

	l->n++;
	snprintf(l->all + used, sizeof(l->all) - used, "%s\n", msg);
}

/*
 * vhd check lists every overlap through the same code: block 5 in the
 * BAT reaches over block 0 too (3 lines), block 4 shares block 3's place.
 */
static void test_check_lists_each(void **state)
{
	const char *p = make_image(DIR_);
	struct th_layout l;
	struct lines out = {0};

	th_layout_of(p, &l);
	set_entry(p, 4, get_entry(p, 3));
	set_entry(p, 5, (uint32_t)(l.table_offset / 512));
	assert_int_equal(vhd_check(p, collect, &out), 3);
	print_message("%s", out.all);
	assert_int_equal(out.n, 3);
	assert_non_null(strstr(out.all, "block 5 at offset 1536 overlaps the "
					"block table at offset 1536"));
	assert_non_null(strstr(out.all, "overlaps block 5 at offset 1536"));
	assert_non_null(strstr(out.all, "block 4 at offset"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_clean_opens_rw),	   T(test_entry_into_bat),
		T(test_entry_into_header), T(test_two_entries_same_block),
		T(test_partial_overlap),   T(test_block_past_footer),
		T(test_check_lists_each),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
