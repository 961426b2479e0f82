// SPDX-License-Identifier: MIT
/*
 * VHDX read side, through the public API on images built here by hand
 * (with the helpers' bitwise CRC-32C, so the library's table is not
 * trusted to check itself): header selection by sequence number and CRC,
 * region table copy fallback, metadata items, BAT states and their reads,
 * log replay in memory (file unchanged), read-only refusal of writes,
 * Windows items (CHS, incomplete file) and an optional region past the
 * end of the file, I/O faults passed up unchanged, and a seeded mutation
 * run over the metadata that must never crash (ASan/UBSan build).
 *
 * VHD_VHDX_SEED=n repeats the mutation run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define MIB TH_MIB
#define LOG_OFF (1 * MIB)
#define META_OFF (2 * MIB)
#define BAT_OFF (3 * MIB)
#define DATA_OFF (4 * MIB)

/* --- a hand-made VHDX ------------------------------------------------- */

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static void le32(uint8_t *p, uint32_t v)
{
	le16(p, (uint16_t)v);
	le16(p + 2, (uint16_t)(v >> 16));
}
static void le64(uint8_t *p, uint64_t v)
{
	le32(p, (uint32_t)v);
	le32(p + 4, (uint32_t)(v >> 32));
}

static void fix_crc(uint8_t *p, size_t len)
{
	le32(p + 4, 0);
	le32(p + 4, th_crc32c(p, len));
}

/* GUIDs as stored */
static const uint8_t G_BAT[16] = {0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6,
				  0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e,
				  0x9b, 0xfd, 0x4a, 0x08};
static const uint8_t G_META[16] = {0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47,
				   0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f,
				   0x05, 0x0f, 0x88, 0x6e};
static const uint8_t G_ITEMS[5][16] = {
	{0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0,
	 0xaa, 0x44, 0xe7, 0x6b}, /* file parameters */
	{0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2, 0x11, 0x5d, 0xbe,
	 0xd8, 0x3b, 0xf4, 0xb8}, /* virtual disk size */
	{0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45, 0x93, 0xef, 0xc3, 0x09,
	 0xe0, 0x00, 0xc7, 0x46}, /* page 83 */
	{0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47, 0xba, 0x47, 0xf2, 0x33,
	 0xa8, 0xfa, 0xab, 0x5f}, /* logical sector */
	{0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44, 0x9c, 0xc9, 0xe9, 0x88,
	 0x52, 0x51, 0xc5, 0x56}, /* physical sector */
};
static const uint8_t LOG_GUID[16] = {1, 2,  3,	4,  5,	6,  7,	8,
				     9, 10, 11, 12, 13, 14, 15, 16};

struct vx {
	uint8_t *img;
	size_t len;
	uint64_t size;
	uint32_t bs, lss;
};

static uint8_t *header_at(struct vx *v, int slot)
{
	return v->img + (slot == 1 ? 64 : 128) * TH_KIB;
}

/* DataWriteGuid of the headers set_header writes (all 16 bytes). */
static uint8_t dwg_byte = 0x22;

static void set_header(struct vx *v, int slot, uint64_t seq, bool log)
{
	uint8_t *h = header_at(v, slot);

	memset(h, 0, 4096);
	memcpy(h, "head", 4);
	le64(h + 8, seq);
	memset(h + 16, 0x11, 16);
	memset(h + 32, dwg_byte, 16);
	if (log)
		memcpy(h + 48, LOG_GUID, 16);
	le16(h + 66, 1);
	le32(h + 68, MIB);
	le64(h + 72, LOG_OFF);
	fix_crc(h, 4096);
}

static void set_regions(struct vx *v)
{
	for (int copy = 0; copy < 2; copy++) {
		uint8_t *r = v->img + (192 + 64 * copy) * TH_KIB;

		memset(r, 0, 64 * TH_KIB);
		memcpy(r, "regi", 4);
		le32(r + 8, 2);
		memcpy(r + 16, G_BAT, 16);
		le64(r + 32, BAT_OFF);
		le32(r + 40, MIB);
		le32(r + 44, 1);
		memcpy(r + 48, G_META, 16);
		le64(r + 64, META_OFF);
		le32(r + 72, MIB);
		le32(r + 76, 1);
		fix_crc(r, 64 * TH_KIB);
	}
}

static uint8_t *meta_entry(struct vx *v, int i)
{
	return v->img + META_OFF + 32 + 32 * i;
}

static void set_meta(struct vx *v)
{
	uint8_t *m = v->img + META_OFF;
	uint32_t off = 64 * TH_KIB;

	memcpy(m, "metadata", 8);
	le16(m + 10, 5);
	for (int i = 0; i < 5; i++) {
		uint8_t *e = meta_entry(v, i);
		uint32_t len = i == 0 || i == 1 ? 8 : i == 2 ? 16 : 4;

		memcpy(e, G_ITEMS[i], 16);
		le32(e + 16, off);
		le32(e + 20, len);
		le32(e + 24, i == 0 ? 4 : 6);
		off += len;
	}
	le32(m + 64 * TH_KIB, v->bs);
	le32(m + 64 * TH_KIB + 4, 0);
	le64(m + 64 * TH_KIB + 8, v->size);
	memset(m + 64 * TH_KIB + 16, 0x83, 16);
	le32(m + 64 * TH_KIB + 32, v->lss);
	le32(m + 64 * TH_KIB + 36, 4096);
}

static size_t utf16le(uint8_t *out, const char *s)
{
	size_t n = 0;

	for (; *s; s++, n += 2) {
		out[n] = (uint8_t)*s;
		out[n + 1] = 0;
	}
	return n;
}

/*
 * Make @v a differencing image whose parent is @parent_name beside it
 * (relative_path .\NAME) with parent_linkage @linkage.
 */
static void vx_make_child(struct vx *v, const char *parent_name,
			  const char *linkage)
{
	static const uint8_t G_LOC[16] = {0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3,
					  0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8,
					  0x48, 0x34, 0xab, 0x0c};
	static const uint8_t G_TYPE[16] = {0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1,
					   0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8,
					   0xe9, 0x44, 0x59, 0x13};
	uint8_t *m = v->img + META_OFF, *e = meta_entry(v, 5);
	uint8_t *loc = m + 128 * TH_KIB, *kv = loc + 20;
	char rel[256];
	size_t o = 20 + 3 * 12;
	/* parent_linkage2: the merge alternate; this one never matches */
	const char *keys[3] = {"parent_linkage", "relative_path",
			       "parent_linkage2"};
	const char *vals[3] = {linkage, rel,
			       "{44444444-4444-4444-4444-444444444444}"};

	snprintf(rel, sizeof(rel), ".\\%s", parent_name);
	le32(m + 64 * TH_KIB + 4, 2); /* HasParent */
	le16(m + 10, 6);
	memcpy(loc, G_TYPE, 16);
	le16(loc + 18, 3);
	for (int i = 0; i < 3; i++, kv += 12) {
		size_t kl = utf16le(loc + o, keys[i]), vl;

		le32(kv, (uint32_t)o);
		le16(kv + 8, (uint16_t)kl);
		o += kl;
		vl = utf16le(loc + o, vals[i]);
		le32(kv + 4, (uint32_t)o);
		le16(kv + 10, (uint16_t)vl);
		o += vl;
	}
	memcpy(e, G_LOC, 16);
	le32(e + 16, 128 * TH_KIB);
	le32(e + 20, (uint32_t)o);
	le32(e + 24, 4);
}

static void set_bat(struct vx *v, uint64_t idx, uint64_t e);

/* Sector bitmap of chunk 0 (differencing) at the end, all clear. */
static uint64_t add_sb(struct vx *v)
{
	uint64_t off = v->len, ratio = (1ull << 23) * v->lss / v->bs;

	v->img = realloc(v->img, v->len + MIB);
	assert_non_null(v->img);
	memset(v->img + off, 0, MIB);
	v->len += MIB;
	set_bat(v, ratio, off | 6);
	return off;
}

static void vx_init(struct vx *v, uint64_t size, uint32_t bs, uint32_t lss)
{
	v->size = size;
	v->bs = bs;
	v->lss = lss;
	v->len = DATA_OFF;
	v->img = calloc(1, v->len);
	assert_non_null(v->img);
	memcpy(v->img, "vhdxfile", 8);
	set_header(v, 1, 1, false);
	set_header(v, 2, 2, false);
	set_regions(v);
	set_meta(v);
}

static uint64_t bat_index(const struct vx *v, uint64_t b)
{
	uint64_t ratio = (1ull << 23) * v->lss / v->bs;

	return b + b / ratio;
}

static void set_bat(struct vx *v, uint64_t idx, uint64_t e)
{
	le64(v->img + BAT_OFF + 8 * idx, e);
}

/* Block @b at the end of the file, filled with th_fill_pattern(tag). */
static uint64_t add_block(struct vx *v, uint64_t b, uint32_t tag)
{
	uint64_t off = v->len;

	v->img = realloc(v->img, v->len + v->bs);
	assert_non_null(v->img);
	th_fill_pattern(v->img + off, v->bs, b * v->bs, tag);
	v->len += v->bs;
	set_bat(v, bat_index(v, b), off | 6);
	return off;
}

/* A log entry at the start of the log writing @sector at @file_off. */
static void log_entry_at(struct vx *v, uint32_t pos, uint64_t seq,
			 uint32_t tail, uint64_t file_off,
			 const uint8_t *sector)
{
	uint8_t *e = v->img + LOG_OFF + pos, *d = e + 64, *data = e + 4096;

	memset(e, 0, 8192);
	memcpy(e, "loge", 4);
	le32(e + 8, 8192);
	le32(e + 12, tail);
	le64(e + 16, seq);
	le32(e + 24, 1);
	memcpy(e + 32, LOG_GUID, 16);
	le64(e + 48, v->len);
	le64(e + 56, v->len);
	memcpy(d, "desc", 4);
	memcpy(d + 4, sector + 4092, 4);
	memcpy(d + 8, sector, 8);
	le64(d + 16, file_off);
	le64(d + 24, seq);
	memcpy(data, "data", 4);
	le32(data + 4, (uint32_t)(seq >> 32));
	memcpy(data + 8, sector + 8, 4084);
	le32(data + 4092, (uint32_t)seq);
	fix_crc(e, 8192);
}

static void add_log_entry(struct vx *v, uint64_t file_off,
			  const uint8_t *sector)
{
	log_entry_at(v, 0, 0x500000007ull, 0, file_off, sector);
}

static const char *vx_write(struct vx *v, void **state, const char *name)
{
	const char *p = th_path(DIR_, name);

	th_write_file(p, v->img, v->len);
	return p;
}

static void vx_free(struct vx *v)
{
	free(v->img);
}

/* The standard 8 MiB, 1 MiB-block image with blocks 0 and 3 present. */
static void vx_standard(struct vx *v)
{
	vx_init(v, 8 * MIB, MIB, 512);
	add_block(v, 0, 1);
	add_block(v, 3, 1);
}

static void expect_pattern(struct vhd_disk *d, uint64_t off, size_t len,
			   uint32_t tag, bool zeros)
{
	uint8_t *want = malloc(len);

	assert_non_null(want);
	if (zeros)
		memset(want, 0, len);
	else
		th_fill_pattern(want, len, off, tag);
	th_expect_read(d, want, len, off);
	free(want);
}

/* --- tests ------------------------------------------------------------- */

static void test_crc32c_vector(void **state)
{
	(void)state;
	assert_int_equal(th_crc32c((const uint8_t *)"123456789", 9),
			 0xE3069283u);
}

static void test_dynamic_reads(void **state)
{
	struct vx v;
	struct vhd_info info;
	struct vhd_disk *d;
	const char *p;

	vx_standard(&v);
	p = vx_write(&v, state, "dyn.vhdx");
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_size(d), 8 * MIB);
	assert_int_equal(vhd_type(d), VHD_TYPE_DYNAMIC);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.format, VHD_FORMAT_VHDX);
	assert_int_equal(info.block_size, MIB);
	assert_int_equal(info.allocated_blocks, 2);
	assert_int_equal(info.logical_sector_size, 512);
	assert_int_equal(info.physical_sector_size, 4096);
	assert_false(info.log_replayed);
	expect_pattern(d, 0, MIB, 1, false);
	expect_pattern(d, MIB, 2 * MIB, 0, true);
	expect_pattern(d, 3 * MIB + 7, 1000, 1, false);
	assert_int_equal(vhd_seek_data(d, MIB), 3 * MIB);
	assert_int_equal(vhd_seek_hole(d, 0), MIB);
	assert_int_equal(vhd_close(d), 0);
	vx_free(&v);
}

/* ZERO, UNDEFINED, UNMAPPED (and the v0.95 value 5) read zeros even with
 * an offset kept; reserved 4 and PARTIALLY_PRESENT without a parent are
 * refused. */
static void test_block_states(void **state)
{
	static const unsigned zero_states[] = {1, 2, 3, 5};
	struct vx v;
	struct vhd_disk *d;

	for (size_t i = 0; i < 4; i++) {
		uint64_t off;
		const char *p;

		vx_standard(&v);
		off = add_block(&v, 5, 9);
		set_bat(&v, bat_index(&v, 5), off | zero_states[i]);
		p = vx_write(&v, state, "states.vhdx");
		d = th_open(p, VHD_OPEN_RDONLY);
		expect_pattern(d, 5 * MIB, MIB, 0, true);
		expect_pattern(d, 3 * MIB, MIB, 1, false);
		vhd_close(d);
		vx_free(&v);
	}
	for (unsigned s = 4; s <= 7; s += 3) {
		vx_standard(&v);
		set_bat(&v, bat_index(&v, 3), (DATA_OFF + MIB) | s);
		th_open_fails(vx_write(&v, state, "bad.vhdx"), 0, EINVAL, 0,
			      TH_WORDS("state", "PARTIALLY_PRESENT"));
		vx_free(&v);
	}
}

static void test_block_outside_file(void **state)
{
	struct vx v;

	vx_standard(&v);
	set_bat(&v, bat_index(&v, 3), (64 * MIB) | 6);
	th_open_fails(vx_write(&v, state, "far.vhdx"), 0, EINVAL, 0,
		      TH_WORDS("outside"));
	vx_free(&v);
	vx_standard(&v);
	set_bat(&v, bat_index(&v, 3), 0 | 6); /* over the headers */
	th_open_fails(vx_write(&v, state, "low.vhdx"), 0, EINVAL, 0,
		      TH_WORDS("outside"));
	vx_free(&v);
}

static void test_header_selection(void **state)
{
	struct vx v;
	struct vhd_info info;
	struct vhd_disk *d;
	uint8_t sector[4096];
	const char *p;

	/* Header 1 has the log and the larger number: the log replays,
	 * mapping block 6 to data; header 2 (no log) is stale. */
	vx_standard(&v);
	add_block(&v, 6, 4); /* data present, BAT entry cleared below */
	set_bat(&v, bat_index(&v, 6), 0);
	memcpy(sector, v.img + BAT_OFF, 4096);
	le64(sector + 8 * bat_index(&v, 6), (v.len - MIB) | 6);
	add_log_entry(&v, BAT_OFF, sector);
	set_header(&v, 1, 9, true);
	set_header(&v, 2, 8, false);
	p = vx_write(&v, state, "h1.vhdx");
	uint64_t hash = th_file_hash(p);
	d = th_open(p, VHD_OPEN_RDONLY);
	vhd_get_info(d, &info);
	assert_true(info.log_replayed);
	assert_int_equal(info.allocated_blocks, 3);
	expect_pattern(d, 6 * MIB, MIB, 4, false);
	vhd_close(d);
	assert_true(th_file_hash(p) == hash); /* replayed in memory only */

	/* Header 2 newer (no log): block 6 is absent. */
	set_header(&v, 2, 10, false);
	p = vx_write(&v, state, "h2.vhdx");
	d = th_open(p, VHD_OPEN_RDONLY);
	vhd_get_info(d, &info);
	assert_false(info.log_replayed);
	expect_pattern(d, 6 * MIB, MIB, 0, true);
	vhd_close(d);

	/* The newer header 2 fails its CRC: header 1 (log) is current. */
	header_at(&v, 2)[100] ^= 1;
	p = vx_write(&v, state, "h2bad.vhdx");
	d = th_open(p, VHD_OPEN_RDONLY);
	vhd_get_info(d, &info);
	assert_true(info.log_replayed);
	vhd_close(d);

	/* A log entry with a bad CRC is not replayed. */
	v.img[LOG_OFF + 5000] ^= 1;
	p = vx_write(&v, state, "logcrc.vhdx");
	d = th_open(p, VHD_OPEN_RDONLY);
	vhd_get_info(d, &info);
	assert_false(info.log_replayed);
	expect_pattern(d, 6 * MIB, MIB, 0, true);
	vhd_close(d);

	/* Neither header valid. */
	header_at(&v, 1)[0] = 'H';
	th_open_fails(vx_write(&v, state, "none.vhdx"), 0, EINVAL, 0,
		      TH_WORDS("no valid VHDX header"));
	vx_free(&v);
}

/*
 * A sequence of two entries (tail at the first) rewrites one BAT sector
 * twice: the later one wins. A stale, lower-numbered sequence elsewhere in
 * the ring, and a higher-numbered entry whose tail is outside its own run
 * (not a sequence), are ignored.
 * A file shorter than the log says was durable is refused.
 */
static void test_log_sequence(void **state)
{
	struct vx v;
	struct vhd_disk *d;
	uint8_t s1[4096], s2[4096], stale[4096];
	uint64_t b6;

	vx_standard(&v);
	b6 = add_block(&v, 6, 5);
	set_bat(&v, bat_index(&v, 6), 0);
	memcpy(s1, v.img + BAT_OFF, 4096);
	memcpy(s2, s1, 4096);
	memcpy(stale, s1, 4096);
	le64(s1 + 8 * 6, b6 | 2);	   /* first: ZERO */
	le64(s2 + 8 * 6, b6 | 6);	   /* then: present */
	le64(stale + 8 * 6, DATA_OFF | 6); /* block 0's data */
	log_entry_at(&v, 64 * 1024, 40, 64 * 1024, BAT_OFF, stale);
	log_entry_at(&v, 128 * 1024, 100, 128 * 1024, BAT_OFF, s1);
	log_entry_at(&v, 128 * 1024 + 8192, 101, 128 * 1024, BAT_OFF, s2);
	/* right after the head, numbered out of sequence, tail elsewhere */
	log_entry_at(&v, 128 * 1024 + 16384, 500, 64 * 1024, BAT_OFF, s1);
	set_header(&v, 2, 5, true);
	d = th_open(vx_write(&v, state, "seq.vhdx"), VHD_OPEN_RDONLY);
	expect_pattern(d, 6 * MIB, MIB, 5, false);
	vhd_close(d);

	/* An absurd descriptor count (its sectors overflow 32 bits) over a
	 * log-long entry of valid descriptors: invalid, never read past. */
	{
		uint8_t *e = v.img + LOG_OFF;
		struct vx w = v;

		w.img = malloc(v.len);
		assert_non_null(w.img);
		memcpy(w.img, v.img, v.len);
		e = w.img + LOG_OFF;
		memcpy(e, "loge", 4);
		le32(e + 8, MIB);
		le32(e + 12, 0);
		le64(e + 16, 9);
		le32(e + 24, 0xFFFFFFFFu);
		memcpy(e + 32, LOG_GUID, 16);
		for (uint64_t o = 64; o + 32 <= MIB; o += 32) {
			memcpy(e + o, "desc", 4);
			le64(e + o + 16, BAT_OFF);
			le64(e + o + 24, 9);
		}
		fix_crc(e, MIB);
		d = th_open(vx_write(&w, state, "ndesc.vhdx"), VHD_OPEN_RDONLY);
		vhd_close(d);
		free(w.img);
	}

	/* A ring of fake log-long entry headers (bad CRCs) is refused
	 * after a bounded amount of checking, not scanned quadratically. */
	{
		struct vx w = v;

		w.img = malloc(v.len);
		assert_non_null(w.img);
		memcpy(w.img, v.img, v.len);
		for (uint64_t o = 0; o < MIB; o += 4096) {
			uint8_t *e = w.img + LOG_OFF + o;

			memset(e, 0, 64);
			memcpy(e, "loge", 4);
			le32(e + 8, MIB);
			le64(e + 16, 1);
			memcpy(e + 32, LOG_GUID, 16);
		}
		th_open_fails(vx_write(&w, state, "fake.vhdx"), 0, EINVAL, 0,
			      TH_WORDS("log too damaged"));
		free(w.img);
	}

	/* FlushedFileOffset past the end: the file was truncated */
	le64(v.img + LOG_OFF + 128 * 1024 + 8192 + 48, v.len + MIB);
	fix_crc(v.img + LOG_OFF + 128 * 1024 + 8192, 8192);
	th_open_fails(vx_write(&v, state, "trunc.vhdx"), 0, EINVAL, 0,
		      TH_WORDS("truncated"));
	vx_free(&v);
}

static void test_equal_sequence(void **state)
{
	struct vx v;
	struct vhd_disk *d;

	vx_standard(&v);
	set_header(&v, 1, 4, false);
	set_header(&v, 2, 4, false);
	d = th_open(vx_write(&v, state, "same.vhdx"), VHD_OPEN_RDONLY);
	vhd_close(d);
	set_header(&v, 2, 4, true); /* same number, other content */
	th_open_fails(vx_write(&v, state, "differ.vhdx"), 0, EINVAL, 0,
		      TH_WORDS("sequence"));
	vx_free(&v);
}

static void test_region_tables(void **state)
{
	struct vx v;
	struct vhd_disk *d;
	uint8_t *r1, *r2;

	vx_standard(&v);
	r1 = v.img + 192 * TH_KIB;
	r2 = v.img + 256 * TH_KIB;
	r1[40] = 0x55; /* copy 1: CRC now wrong */
	d = th_open(vx_write(&v, state, "copy2.vhdx"), VHD_OPEN_RDONLY);
	expect_pattern(d, 0, MIB, 1, false);
	vhd_close(d);
	r2[40] = 0x55;
	th_open_fails(vx_write(&v, state, "both.vhdx"), 0, EINVAL, 0,
		      TH_WORDS("region"));
	vx_free(&v);

	/* Valid CRC, bad contents: unknown required region; metadata
	 * region past the end of the file; no metadata region. */
	for (int k = 0; k < 3; k++) {
		vx_standard(&v);
		r1 = v.img + 192 * TH_KIB;
		if (k == 0) {
			le32(r1 + 8, 3);
			memset(r1 + 80, 0x77, 16);
			le64(r1 + 96, 8 * MIB);
			le32(r1 + 104, MIB);
			le32(r1 + 108, 1);
		} else if (k == 1) {
			le64(r1 + 64, 1024 * MIB);
		} else {
			le32(r1 + 8, 1);
		}
		fix_crc(r1, 64 * TH_KIB);
		th_open_fails(vx_write(&v, state, "regbad.vhdx"), 0, EINVAL, 0,
			      TH_WORDS("region"));
		vx_free(&v);
	}
}

static void test_metadata(void **state)
{
	struct vx v;
	struct vhd_disk *d;
	uint8_t *m;

	/* 4096-byte logical sectors: chunk ratio 8x, same layout here. */
	vx_init(&v, 8 * MIB, MIB, 4096);
	add_block(&v, 2, 3);
	d = th_open(vx_write(&v, state, "4k.vhdx"), VHD_OPEN_RDONLY);
	expect_pattern(d, 2 * MIB, MIB, 3, false);
	vhd_close(d);
	vx_free(&v);

	for (int k = 0; k < 7; k++) {
		vx_standard(&v);
		m = v.img + META_OFF;
		switch (k) {
		case 0: /* block size not a power of two */
			le32(m + 64 * TH_KIB, 3 * MIB);
			break;
		case 1: /* sector size */
			le32(m + 64 * TH_KIB + 32, 1024);
			break;
		case 2: /* unknown required item */
			memset(meta_entry(&v, 4), 0x99, 16);
			break;
		case 3: /* item outside the region */
			le32(meta_entry(&v, 1) + 16, MIB - 4);
			break;
		case 4: /* size not a sector multiple */
			le64(m + 64 * TH_KIB + 8, 8 * MIB + 100);
			break;
		case 5: /* has parent, no locator */
			le32(m + 64 * TH_KIB + 4, 2);
			break;
		case 6: /* bad signature */
			m[0] = 'M';
			break;
		}
		th_open_fails(vx_write(&v, state, "meta.vhdx"), 0, EINVAL, 0,
			      TH_WORDS("block size", "sector", "metadata",
				       "locator", "size"));
		vx_free(&v);
	}
}

/*
 * What Windows writers add beside the standard items and regions: the
 * CHS item (openvmm knows it: required or not, the file opens), the
 * incomplete-file marker as openvmm writes it (empty, at offset 0;
 * required: refused by name), and an optional region right past the end
 * of the file (the spec bounds regions by alignment only), which a new
 * block must not land in.
 */
static void test_windows_extras(void **state)
{
	static const uint8_t chs[16] = {0xbc, 0xd7, 0x02, 0xda, 0x3a, 0x3d,
					0x3c, 0x42, 0xac, 0x88, 0x2a, 0x36,
					0xab, 0x21, 0x47, 0x9b};
	static const uint8_t incomplete[16] = {
		0xf0, 0x85, 0xcc, 0x71, 0x69, 0x1b, 0x28, 0x4e,
		0x95, 0x58, 0xc3, 0xbf, 0x83, 0xae, 0x75, 0xd3};
	uint8_t buf[4096], got[4096], e8[8], *e;
	struct vhd_disk *d;
	uint64_t region, entry;
	const char *p;
	struct vx v;

	vx_standard(&v);
	le16(v.img + META_OFF + 10, 6);
	e = meta_entry(&v, 5);
	memcpy(e, chs, 16);
	le32(e + 16, 64 * TH_KIB + 64);
	le32(e + 20, 8);
	le32(e + 24, 6); /* required, virtual disk */
	d = th_open(vx_write(&v, state, "chs.vhdx"), VHD_OPEN_RDONLY);
	expect_pattern(d, 0, MIB, 1, false);
	vhd_close(d);
	memcpy(e, incomplete, 16);
	le32(e + 16, 0);
	le32(e + 20, 0);
	le32(e + 24, 4);
	th_open_fails(vx_write(&v, state, "incomplete.vhdx"), 0, EINVAL, 0,
		      TH_WORDS("incomplete"));
	vx_free(&v);

	vx_standard(&v);
	region = v.len;
	for (int copy = 0; copy < 2; copy++) {
		uint8_t *r = v.img + (192 + 64 * copy) * TH_KIB;

		le32(r + 8, 3);
		memset(r + 80, 0x77, 16);
		le64(r + 96, region);
		le32(r + 104, 2 * MIB);
		le32(r + 108, 0); /* optional */
		fix_crc(r, 64 * TH_KIB);
	}
	p = vx_write(&v, state, "far.vhdx");
	d = th_open(p, VHD_OPEN_RDWR);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), 5 * MIB),
			 (ssize_t)sizeof(buf));
	assert_int_equal(vhd_close(d), 0);
	th_pread_raw(p, e8, 8, BAT_OFF + 8 * bat_index(&v, 5));
	entry = 0;
	for (int i = 7; i >= 0; i--)
		entry = entry << 8 | e8[i];
	assert_int_equal(entry & 7, 6);
	assert_true((entry & ~0xfffffull) >= region + 2 * MIB);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_pread(d, got, sizeof(got), 5 * MIB),
			 (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	expect_pattern(d, 3 * MIB, MIB, 1, false);
	vhd_close(d);
	vx_free(&v);
}

/* A huge BAT is refused before any memory is spent on it; a BAT that
 * does not fit its region is malformed. */
static void test_bat_limits(void **state)
{
	struct vx v;

	vx_standard(&v);
	le64(v.img + META_OFF + 64 * TH_KIB + 8, 8ull << 40); /* 8 TiB */
	th_open_fails(vx_write(&v, state, "huge.vhdx"), 0, EFBIG, 0,
		      TH_WORDS("BAT entries"));
	le64(v.img + META_OFF + 64 * TH_KIB + 8, 256ull << 30); /* 256 GiB */
	th_open_fails(vx_write(&v, state, "long.vhdx"), 0, EINVAL, 0,
		      TH_WORDS("BAT region"));
	vx_free(&v);
}

/*
 * A read-write open that writes nothing changes nothing (the headers get
 * new GUIDs only with the first write); a read-only handle refuses
 * writes.
 */
static void test_read_only(void **state)
{
	struct vx v;
	struct vhd_disk *d;
	const char *p;
	uint8_t buf[512] = {1};

	vx_standard(&v);
	p = vx_write(&v, state, "ro.vhdx");
	uint64_t hash = th_file_hash(p);
	d = th_open(p, VHD_OPEN_RDWR);
	expect_pattern(d, 0, MIB, 1, false);
	assert_int_equal(vhd_close(d), 0);
	assert_true(th_file_hash(p) == hash);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_pwrite(d, buf, sizeof(buf), 0), -EROFS);
	vhd_close(d);
	assert_true(th_file_hash(p) == hash);
	vx_free(&v);
}

/*
 * A writable open replays a crashed writer's log into the file, then
 * clears the LogGuid: the next read-only open has nothing to replay and
 * reads the same.
 */
static void test_rw_replays_log(void **state)
{
	struct vx v;
	struct vhd_disk *d;
	struct vhd_info in;
	uint8_t s[4096];
	uint64_t b6;
	const char *p;

	vx_standard(&v);
	b6 = add_block(&v, 6, 5);
	set_bat(&v, bat_index(&v, 6), 0);
	memcpy(s, v.img + BAT_OFF, 4096);
	le64(s + 8 * 6, b6 | 6);
	add_log_entry(&v, BAT_OFF, s);
	set_header(&v, 2, 5, true);
	p = vx_write(&v, state, "replay.vhdx");
	d = th_open(p, VHD_OPEN_RDWR);
	expect_pattern(d, 6 * MIB, MIB, 5, false);
	assert_int_equal(vhd_close(d), 0);
	d = th_open(p, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &in), 0);
	assert_false(in.log_replayed);
	expect_pattern(d, 6 * MIB, MIB, 5, false);
	expect_pattern(d, 0, MIB, 1, false);
	vhd_close(d);
	vx_free(&v);
}

static void test_neither_format(void **state)
{
	const char *p = th_path(DIR_, "junk.img");
	uint8_t junk[8192];

	memset(junk, 0x42, sizeof(junk));
	th_write_file(p, junk, sizeof(junk));
	th_open_fails(p, 0, EINVAL, 0, TH_WORDS("neither a VHD"));
	assert_non_null(strstr(vhd_errmsg(), "VHDX"));
}

/*
 * Child over the standard image (blocks 0 and 3 of tag 1): block 0 ZERO
 * (zeros, not the parent), block 1 partially present (sectors 8-15 and
 * 2040-2047 of tag 2, the rest from the parent: zeros there), block 3
 * partially present over parent data, block 5 fully present.
 */
static void build_chain(struct vx *child, void **state)
{
	struct vx parent;
	uint64_t sb, ratio;
	uint32_t spb;

	vx_standard(&parent);
	vx_write(&parent, state, "p.vhdx");
	vx_free(&parent);
	vx_init(child, 8 * MIB, MIB, 512);
	vx_make_child(child, "p.vhdx",
		      "{22222222-2222-2222-2222-222222222222}");
	ratio = (1ull << 23) * 512 / MIB;
	spb = MIB / 512;
	add_block(child, 1, 2);
	add_block(child, 3, 2);
	add_block(child, 5, 2);
	set_bat(child, 0, 2);
	set_bat(child, 1, (DATA_OFF) | 7);
	set_bat(child, 3, (DATA_OFF + MIB) | 7);
	sb = add_sb(child);
	child->img[sb + spb / 8 + 1] = 0xFF;   /* block 1: 8-15 */
	child->img[sb + spb / 8 + 255] = 0xFF; /* block 1: 2040-2047 */
	child->img[sb + 3 * spb / 8] = 0x0F;   /* block 3: 0-3 */
	(void)ratio;
}

static void test_differencing(void **state)
{
	struct vx v, parent;
	struct vhd_info info;
	struct vhd_disk *d;
	uint8_t *want, *got;

	build_chain(&v, state);
	d = th_open(vx_write(&v, state, "c.avhdx"), VHD_OPEN_RDONLY);
	assert_int_equal(vhd_type(d), VHD_TYPE_DIFF);
	assert_non_null(vhd_parent(d));
	vhd_get_info(d, &info);
	assert_string_equal(info.parent_name, ".\\p.vhdx");
	want = calloc(1, 8 * MIB);
	assert_non_null(want);
	/* parent: blocks 0 and 3 tag 1; child overrides */
	th_fill_pattern(want + 3 * MIB, MIB, 3 * MIB, 1);
	th_fill_pattern(want + MIB + 8 * 512, 8 * 512, MIB + 8 * 512, 2);
	th_fill_pattern(want + MIB + 2040 * 512, 8 * 512, MIB + 2040 * 512, 2);
	th_fill_pattern(want + 3 * MIB, 4 * 512, 3 * MIB, 2);
	th_fill_pattern(want + 5 * MIB, MIB, 5 * MIB, 2);
	got = th_read_all(d);
	for (size_t i = 0; i < 8 * MIB; i++)
		if (got[i] != want[i])
			fail_msg("differ at %zu: %02x, want %02x", i, got[i],
				 want[i]);
	assert_int_equal(vhd_seek_data(d, 0), MIB + 8 * 512);
	assert_int_equal(vhd_seek_hole(d, MIB + 8 * 512), MIB + 16 * 512);
	free(got);
	free(want);
	vhd_close(d);

	/* Opened without its parent, reads needing it fail ENOENT. */
	assert_int_equal(
		vhd_open(th_path(DIR_, "c.avhdx"), VHD_OPEN_NOPARENT, &d), 0);
	got = malloc(4096);
	assert_int_equal(vhd_pread(d, got, 4096, 3 * MIB + 4096), -ENOENT);
	free(got);
	vhd_close(d);

	/* The parent's DataWriteGuid is not the linkage: clear error. */
	vx_make_child(&v, "p.vhdx", "{33333333-2222-2222-2222-222222222222}");
	th_open_fails(vx_write(&v, state, "c.avhdx"), 0, EINVAL, 0,
		      TH_WORDS("linkage"));
	vx_make_child(&v, "gone.vhdx",
		      "{22222222-2222-2222-2222-222222222222}");
	th_open_fails(vx_write(&v, state, "c.avhdx"), 0, ENOENT, 0,
		      TH_WORDS("parent not found"));
	vx_make_child(&v, "p.vhdx", "not a guid");
	th_open_fails(vx_write(&v, state, "c.avhdx"), 0, EINVAL, 0,
		      TH_WORDS("GUID"));
	/* parent_linkage2 (as a merge left it) is accepted too */
	dwg_byte = 0x44;
	vx_standard(&parent);
	vx_write(&parent, state, "p.vhdx");
	vx_free(&parent);
	dwg_byte = 0x22;
	vx_make_child(&v, "p.vhdx", "{33333333-2222-2222-2222-222222222222}");
	d = th_open(vx_write(&v, state, "c.avhdx"), VHD_OPEN_RDONLY);
	vhd_close(d);
	vx_free(&v);
}

/* A VHD child whose locator leads to a VHDX: formats do not mix. */
static void test_vhd_child_of_vhdx(void **state)
{
	struct th_spec spec = {.type = VHD_TYPE_DIFF,
			       .size = 8 * MIB,
			       .w2ru = ".\\p.vhdx",
			       .parent_name = "p.vhdx"};
	struct vx parent;

	vx_standard(&parent);
	vx_write(&parent, state, "p.vhdx");
	vx_free(&parent);
	th_build(th_path(DIR_, "c.vhd"), &spec);
	th_open_fails(th_path(DIR_, "c.vhd"), 0, EINVAL, 0, TH_WORDS("VHDX"));
}

/* Read errors reach the caller with their errno, at every read. */
static long reads_left;
static ssize_t failing_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t r;

	if (reads_left-- <= 0)
		return -EIO;
	r = pread(fd, buf, len, off);
	return r < 0 ? -errno : r;
}
static ssize_t plain_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t r = pwrite(fd, buf, len, off);

	return r < 0 ? -errno : r;
}
static int plain_fsync(int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

static void test_read_faults(void **state)
{
	static const struct vhd_io_ops ops = {
		.pread = failing_pread,
		.pwrite = plain_pwrite,
		.fsync = plain_fsync,
	};
	struct vx v;
	const char *p;
	int opened = 0;

	vx_standard(&v);
	p = vx_write(&v, state, "faults.vhdx");
	vhd_set_io_ops(&ops);
	for (long n = 0; n < 40 && !opened; n++) {
		struct vhd_disk *d;
		uint8_t buf[4096];
		int r;

		reads_left = n;
		r = vhd_open(p, VHD_OPEN_RDONLY, &d);
		if (r < 0) {
			assert_int_equal(r, -EIO);
			assert_true(th_msg_names(p));
			continue;
		}
		opened = 1;
		reads_left = 0;
		assert_int_equal(vhd_pread(d, buf, sizeof(buf), 0), -EIO);
		vhd_close(d);
	}
	vhd_set_io_ops(NULL);
	assert_true(opened);
	vx_free(&v);
}

/* Seeded damage to headers, region tables, metadata, BAT and log: open
 * fails with a message or succeeds and reads the whole disk. */
static void test_hostile(void **state)
{
	uint64_t rng = th_seed("VHD_VHDX_SEED", "test_hostile");
	static const uint64_t areas[][2] = {
		{64 * TH_KIB, 4096},
		{128 * TH_KIB, 4096},
		{192 * TH_KIB, 4096},
		{256 * TH_KIB, 4096},
		{META_OFF, 256},
		{META_OFF + 64 * TH_KIB, 64},
		{BAT_OFF, 128},
		{LOG_OFF, 8192},
		{META_OFF + 128 * TH_KIB, 128}, /* parent locator */
		{BAT_OFF + 8 * 4096, 8},	/* sector bitmap entry */
	};
	struct vx bases[2], base;
	uint8_t sector[4096];

	vx_standard(&bases[0]);
	memcpy(sector, bases[0].img + BAT_OFF, 4096);
	le64(sector + 8 * 5, (DATA_OFF) | 6);
	add_log_entry(&bases[0], BAT_OFF, sector);
	set_header(&bases[0], 2, 7, true);
	build_chain(&bases[1], state);
	for (int it = 0; it < 600; it++) {
		struct vx v = base = bases[it % 2];
		const uint64_t *a = areas[th_rand_below(&rng, 10)];
		int flips = 1 + (int)th_rand_below(&rng, 4);
		struct vhd_disk *d;
		const char *p;
		uint8_t *all;

		v.img = malloc(base.len);
		assert_non_null(v.img);
		memcpy(v.img, base.img, base.len);
		for (int f = 0; f < flips; f++) {
			uint64_t o = a[0] + th_rand_below(&rng, a[1]);

			v.img[o] = th_rand_below(&rng, 3) == 0
					   ? 0xFF
					   : (uint8_t)th_rand(&rng);
		}
		/* mostly let the damage past the checksums */
		if (th_rand_below(&rng, 4)) {
			fix_crc(header_at(&v, 1), 4096);
			fix_crc(header_at(&v, 2), 4096);
			fix_crc(v.img + 192 * TH_KIB, 64 * TH_KIB);
			fix_crc(v.img + LOG_OFF, 8192);
		}
		if (th_rand_below(&rng, 8) == 0)
			v.len -= th_rand_below(&rng, v.len - 1);
		p = vx_write(&v, state,
			     it % 2 ? "hostile.avhdx" : "hostile.vhdx");
		if (vhd_open(p, VHD_OPEN_RDONLY, &d) < 0) {
			assert_true(vhd_errmsg()[0] != 0);
		} else {
			ssize_t n;

			/* a damaged size may be terabytes: read the
			 * first and last 16 MiB */
			uint64_t size = vhd_size(d), len = 16 * MIB;

			if (len > size)
				len = size;
			all = malloc(len);
			assert_non_null(all);
			for (int k = 0; k < 2; k++) {
				n = vhd_pread(d, all, len, k ? size - len : 0);
				if (n < 0)
					assert_true(th_msg_names(p));
				else
					assert_int_equal(n, len);
			}
			free(all);
			vhd_close(d);
		}
		free(v.img);
	}
	vx_free(&bases[0]);
	vx_free(&bases[1]);
}

#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_crc32c_vector),	  T(test_dynamic_reads),
		T(test_block_states),	  T(test_block_outside_file),
		T(test_header_selection), T(test_equal_sequence),
		T(test_region_tables),	  T(test_metadata),
		T(test_read_only),	  T(test_rw_replays_log),
		T(test_neither_format),	  T(test_read_faults),
		T(test_differencing),	  T(test_vhd_child_of_vhdx),
		T(test_log_sequence),	  T(test_bat_limits),
		T(test_hostile),	  T(test_windows_extras),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
