// SPDX-License-Identifier: MIT
/*
 * Dynamic header and BAT decoding: bad cookies, absurd block sizes and
 * table sizes, a BAT or a block beyond the end of the file, locators beyond
 * the end; a BAT away from offset 1536 and 4 KiB-aligned block data (as
 * Windows writes them) are read correctly; the parent name in each byte
 * order writers used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "vhd_i.h"

#define DIR_ (*(const char **)state)

static void build_dyn(const char *p, uint64_t size, uint32_t bs)
{
	struct th_spec s = {
		.type = VHD_TYPE_DYNAMIC, .size = size, .block_size = bs};

	th_build(p, &s);
}

static void patch_header32(const char *p, size_t off, uint32_t v)
{
	uint8_t h[1024];

	th_read_header(p, h);
	th_be32(h + off, v);
	th_write_header(p, h);
}

static void patch_header64(const char *p, size_t off, uint64_t v)
{
	uint8_t h[1024];

	th_read_header(p, h);
	th_be64(h + off, v);
	th_write_header(p, h);
}

static void test_bad_header_cookie(void **state)
{
	const char *p = th_path(DIR_, "hc.vhd");
	uint8_t h[1024];

	build_dyn(p, 4 * TH_MIB, 0);
	th_read_header(p, h);
	memcpy(h, "cxsparsX", 8);
	th_write_header(p, h);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("cookie", "cxsparse", "header"));
}

/*
 * A bad header checksum is either refused (naming the checksum) or
 * tolerated; tolerated, the image must still read right.
 */
static void test_bad_header_checksum(void **state)
{
	const char *p = th_path(DIR_, "hk.vhd");
	uint8_t h[1024], *blk = malloc(2 * TH_MIB);
	struct vhd_disk *d = NULL;
	int r;

	build_dyn(p, 4 * TH_MIB, 0);
	th_fill_pattern(blk, 2 * TH_MIB, 2 * TH_MIB, 9);
	th_alloc_block(p, 1, NULL, blk, 0);
	th_read_header(p, h);
	h[39] ^= 0x04;
	th_pwrite_raw(p, h, 1024, 512);
	r = vhd_open(p, VHD_OPEN_RDONLY, &d);
	if (r) {
		assert_int_equal(r, -EINVAL);
		assert_true(th_msg_has("checksum"));
		assert_true(th_msg_names(p));
	} else {
		th_expect_read(d, blk, 2 * TH_MIB, 2 * TH_MIB);
		vhd_close(d);
	}
	free(blk);
}

static void test_absurd_block_sizes(void **state)
{
	const char *p = th_path(DIR_, "bs.vhd");
	static const uint32_t sizes[] = {
		0,	  3 * 1024 * 1024, 1000000,    256,
		1u << 30, 1u << 31,	   0xFFFFFFFF, 511,
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		build_dyn(p, 4 * TH_MIB, 0);
		patch_header32(p, 32, sizes[i]);
		th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
			      TH_WORDS("block size", "block"));
	}
}

static void test_absurd_max_table_entries(void **state)
{
	const char *p = th_path(DIR_, "mte.vhd");
	/* 8 MiB in 2 MiB blocks needs 4 entries. */
	static const uint32_t mtes[] = {0, 1, 3, 0xFFFFFFFF, 0x40000000};

	for (size_t i = 0; i < sizeof(mtes) / sizeof(mtes[0]); i++) {
		build_dyn(p, 8 * TH_MIB, 0);
		patch_header32(p, 28, mtes[i]);
		th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
			      TH_WORDS("table", "entries", "BAT"));
	}
}

static void test_bat_beyond_eof(void **state)
{
	const char *p = th_path(DIR_, "bat.vhd");

	build_dyn(p, 8 * TH_MIB, 0);
	patch_header64(p, 16, 1ull << 40);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("BAT", "table", "beyond", "eof", "end of file",
			       "truncat"));
}

/* The BAT starts inside the file but runs past its end. */
static void test_bat_straddles_eof(void **state)
{
	const char *p = th_path(DIR_, "bat2.vhd");

	/* 1 GiB in 2 MiB blocks: 512 entries, 2048 bytes of BAT. */
	build_dyn(p, TH_GIB, 0);
	patch_header64(p, 16, th_file_size(p) - 1024);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, 0,
		      TH_WORDS("BAT", "table", "beyond", "eof", "end of file",
			       "truncat"));
}

/*
 * A BAT entry pointing past the end of the file: refused at open, or the
 * read of that block fails; never silently read as zeros or garbage.
 */
static void test_bat_entry_beyond_eof(void **state)
{
	const char *p = th_path(DIR_, "ent.vhd");
	uint8_t entry[4], buf[4096];
	struct vhd_disk *d = NULL;
	struct th_layout l;
	ssize_t n;
	int r;

	build_dyn(p, 8 * TH_MIB, 0);
	th_layout_of(p, &l);
	th_be32(entry, 0x00800000); /* sector 8 Mi = 4 GiB */
	th_pwrite_raw(p, entry, 4, l.table_offset + 4);
	r = vhd_open(p, VHD_OPEN_RDONLY, &d);
	if (r) {
		assert_int_equal(r, -EINVAL);
		assert_true(th_msg_names(p));
		return;
	}
	n = vhd_pread(d, buf, sizeof(buf), 2 * TH_MIB + 4096);
	print_message("read of a block beyond EOF: %zd (%s)\n", n,
		      vhd_errmsg());
	assert_true(n < 0);
	assert_true(n == -EINVAL || n == -EIO);
	/* Blocks that are fine still read. */
	assert_int_equal(vhd_pread(d, buf, sizeof(buf), 0), sizeof(buf));
	vhd_close(d);
}

/* A BAT entry pointing into the header: the block overlaps metadata. */
static void test_bat_entry_into_metadata(void **state)
{
	const char *p = th_path(DIR_, "ent2.vhd");
	uint8_t entry[4], buf[512];
	struct vhd_disk *d = NULL;
	struct th_layout l;
	ssize_t n;
	int r;

	build_dyn(p, 8 * TH_MIB, 0);
	th_layout_of(p, &l);
	/* Make the file long enough that only the overlap is wrong. */
	th_alloc_block(p, 3, NULL, NULL, 0);
	th_be32(entry, 0);
	th_pwrite_raw(p, entry, 4, l.table_offset);
	r = vhd_open(p, VHD_OPEN_RDONLY, &d);
	if (r) {
		assert_int_equal(r, -EINVAL);
		return;
	}
	n = vhd_pread(d, buf, sizeof(buf), 0);
	print_message("read of a block at sector 0: %zd (%s)\n", n,
		      vhd_errmsg());
	/* Lenient readers may return the bytes there; no crash, though. */
	assert_true(n == 512 || n == -EINVAL || n == -EIO);
	vhd_close(d);
}

static void build_diff_with_locator(const char *dir, const char *child,
				    bool space_sectors)
{
	struct th_spec b = {.type = VHD_TYPE_DYNAMIC, .size = 4 * TH_MIB};
	struct th_spec c = {.type = VHD_TYPE_DIFF, .size = 4 * TH_MIB};
	uint8_t f[512];

	th_build(th_path(dir, "lbase.vhd"), &b);
	th_read_footer(th_path(dir, "lbase.vhd"), f);
	memcpy(c.parent_uuid, f + 68, 16);
	c.w2ru = ".\\lbase.vhd";
	c.locator_space_sectors = space_sectors;
	th_build(child, &c);
}

static void test_locator_offset_beyond_eof(void **state)
{
	const char *p = th_path(DIR_, "loc.vhd");
	uint8_t h[1024];

	build_diff_with_locator(DIR_, p, false);
	/* Sanity: it opens as built. */
	vhd_close(th_open(p, VHD_OPEN_RDONLY));
	th_read_header(p, h);
	assert_int_equal(th_get_be32(h + 576), TH_W2RU);
	th_be64(h + 576 + 16, 1ull << 40);
	th_write_header(p, h);
	/* The only way to the parent is broken: malformed or not found. */
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, ENOENT,
		      TH_WORDS("locator", "parent", "W2ru"));
}

static void test_locator_length_beyond_eof(void **state)
{
	const char *p = th_path(DIR_, "loc2.vhd");
	uint8_t h[1024];

	build_diff_with_locator(DIR_, p, false);
	th_read_header(p, h);
	/* Length and space far beyond the end of the file. */
	th_be32(h + 576 + 4, 1u << 30);
	th_be32(h + 576 + 8, 1u << 30);
	th_write_header(p, h);
	th_open_fails(p, VHD_OPEN_RDONLY, EINVAL, ENOENT,
		      TH_WORDS("locator", "parent", "W2ru"));
}

/* Data length larger than data space: the payload overruns its room. */
static void test_locator_length_exceeds_space(void **state)
{
	const char *p = th_path(DIR_, "loc3.vhd");
	uint8_t h[1024];
	struct vhd_disk *d = NULL;
	int r;

	build_diff_with_locator(DIR_, p, false);
	th_read_header(p, h);
	th_be32(h + 576 + 8, 100000);
	th_write_header(p, h);
	r = vhd_open(p, VHD_OPEN_RDONLY, &d);
	assert_true(r == -EINVAL || r == -ENOENT);
}

/* Windows layout: BAT at 0x2000, block data aligned to 4 KiB. */
static void test_moved_bat_and_aligned_data(void **state)
{
	const char *p = th_path(DIR_, "win.vhd");
	struct th_spec s = {.type = VHD_TYPE_DYNAMIC, .size = 6 * TH_MIB};
	uint8_t h[1024], f[512], bat[512], *blk, *file;
	struct vhd_disk *d;
	struct vhd_info info;
	size_t len;

	th_build(p, &s);
	/* Move the BAT: rebuild the file with it at 0x2000. */
	file = th_read_file(p, &len);
	th_read_header(p, h);
	th_read_footer(p, f);
	memcpy(bat, file + 1536, 512);
	free(file);
	th_truncate(p, 0);
	th_pwrite_raw(p, f, 512, 0);
	th_be64(h + 16, 0x2000);
	th_fix_header_cksum(h);
	th_pwrite_raw(p, h, 1024, 512);
	th_pwrite_raw(p, bat, 512, 0x2000);
	th_pwrite_raw(p, f, 512, 0x2200);

	blk = malloc(2 * TH_MIB);
	th_fill_pattern(blk, 2 * TH_MIB, 4 * TH_MIB, 21);
	th_alloc_block(p, 2, NULL, blk, 4096);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_true(info.table_offset == 0x2000);
	th_expect_read(d, blk, 2 * TH_MIB, 4 * TH_MIB);
	vhd_close(d);
	free(blk);
}

/* Block sizes other writers use: 4 KiB, 512 KiB, 16 MiB, 64 MiB. */
static void test_unusual_valid_block_sizes(void **state)
{
	const char *p = th_path(DIR_, "bsok.vhd");
	static const uint32_t sizes[] = {4096, 512 * 1024, 16 << 20, 64 << 20};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t bs = sizes[i];
		uint8_t *blk = malloc(bs);
		struct vhd_info info;
		struct vhd_disk *d;

		build_dyn(p, 3ull * bs, bs);
		th_fill_pattern(blk, bs, bs, bs);
		th_alloc_block(p, 1, NULL, blk, 0);
		d = th_open(p, VHD_OPEN_RDONLY);
		assert_int_equal(vhd_get_info(d, &info), 0);
		assert_int_equal(info.block_size, bs);
		assert_int_equal(info.allocated_blocks, 1);
		th_expect_read(d, blk, bs, bs);
		vhd_close(d);
		free(blk);
	}
}

/* UTF-16BE as specified; with a byte order mark (early blktap); plain
 * little-endian (early VirtualBox). */
static void test_parent_name_byte_orders(void **state)
{
	static const char name[] = "p\xc3\xa4.vhd"; /* "pä.vhd" */
	static const uint16_t units[] = {'p', 0xE4, '.', 'v', 'h', 'd'};
	struct vhd_header h;
	char out[64];

	(void)state;
	for (int form = 0; form < 4; form++) {
		int lead = form >= 2;

		memset(&h, 0, sizeof(h));
		if (form == 2)
			h.parent_name[0] = 0xFEFF;
		if (form == 3)
			h.parent_name[0] = 0xFFFE;
		for (int i = 0; i < 6; i++) {
			uint16_t u = units[i];

			if (form == 1 || form == 3)
				u = (uint16_t)(u << 8 | u >> 8);
			h.parent_name[lead + i] = u;
		}
		vhd_parent_name_utf8(&h, out, sizeof(out));
		assert_string_equal(out, name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_bad_header_cookie),
		T(test_bad_header_checksum),
		T(test_absurd_block_sizes),
		T(test_absurd_max_table_entries),
		T(test_bat_beyond_eof),
		T(test_bat_straddles_eof),
		T(test_bat_entry_beyond_eof),
		T(test_bat_entry_into_metadata),
		T(test_locator_offset_beyond_eof),
		T(test_locator_length_beyond_eof),
		T(test_locator_length_exceeds_space),
		T(test_moved_bat_and_aligned_data),
		T(test_unusual_valid_block_sizes),
		T(test_parent_name_byte_orders),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
