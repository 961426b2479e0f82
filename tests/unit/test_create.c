// SPDX-License-Identifier: MIT
/*
 * vhd_create / vhd_create_diff: the raw bytes of what they write (field by
 * field, as design.md "Created images" specifies), atomicity (never
 * replacing, nothing left behind on any failure, including every cut of a
 * fault-injected write sequence) and O(BAT) cost.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static void check_footer_sane(const uint8_t *f, enum vhd_type type,
			      uint64_t size)
{
	assert_memory_equal(f, "conectix", 8);
	assert_int_equal(th_get_be32(f + 8) & 2, 2);
	assert_int_equal(th_get_be32(f + 12), 0x00010000);
	assert_int_equal(th_get_be32(f + 64), th_checksum(f, 512, 64));
	assert_true(th_get_be64(f + 40) == size);
	assert_true(th_get_be64(f + 48) == size);
	assert_int_equal(th_get_be32(f + 60), type);
	if (type == VHD_TYPE_FIXED)
		assert_true(th_get_be64(f + 16) == ~0ull);
	else
		assert_true(th_get_be64(f + 16) == 512);
	assert_int_equal(f[84], 0);
	for (int i = 85; i < 512; i++)
		assert_int_equal(f[i], 0);
}

/* Dynamic images: footer, copy, header, empty BAT, small file. */
static void check_dynamic(const char *p, uint64_t size, uint32_t bs)
{
	uint8_t f[512], f0[512], h[1024];
	uint32_t mte = (uint32_t)((size + bs - 1) / bs);
	uint64_t table, fsize = th_file_size(p);
	uint8_t *bat;

	th_read_footer(p, f);
	th_pread_raw(p, f0, 512, 0);
	check_footer_sane(f, VHD_TYPE_DYNAMIC, size);
	assert_memory_equal(f, f0, 512);
	assert_int_equal(th_get_be32(f + 56), th_chs(size));
	th_pread_raw(p, h, 1024, 512);
	assert_memory_equal(h, "cxsparse", 8);
	assert_true(th_get_be64(h + 8) == ~0ull);
	assert_int_equal(th_get_be32(h + 24), 0x00010000);
	assert_int_equal(th_get_be32(h + 28), mte);
	assert_int_equal(th_get_be32(h + 32), bs);
	assert_int_equal(th_get_be32(h + 36), th_checksum(h, 1024, 36));
	table = th_get_be64(h + 16);
	assert_true(table >= 1536 && table % 512 == 0);
	assert_true(table + 4ull * mte <= fsize - 512);
	bat = malloc(4ull * mte);
	th_pread_raw(p, bat, 4ull * mte, table);
	for (uint32_t i = 0; i < mte; i++)
		assert_int_equal(th_get_be32(bat + 4 * i), TH_UNALLOC);
	free(bat);
	/* O(BAT): header, BAT and footer, 4 KiB alignment slack at most. */
	assert_true(fsize <= table + round_up(4ull * mte, 4096) + 4096 + 512);
	assert_int_equal(fsize % 512, 0);
}

static void test_dynamic_sizes(void **state)
{
	static const struct {
		uint64_t size, want;
		uint32_t bs, want_bs;
	} c[] = {
		{TH_MIB, TH_MIB, 0, 2 << 20},
		{10 * TH_MIB + 1, 10 * TH_MIB + 512, 0, 2 << 20},
		{3 * TH_GIB, 3 * TH_GIB, 512 << 10, 512 << 10},
		{7 * TH_MIB - 512, 7 * TH_MIB - 512, 2 << 20, 2 << 20},
		{100 * TH_MIB + 1000, 100 * TH_MIB + 1024, 256u << 20,
		 256u << 20},
		{127 * TH_GIB + 3, 127 * TH_GIB + 512, 0, 2 << 20},
		{VHD_MAX_SIZE, VHD_MAX_SIZE, 0, 2 << 20},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		const char *p = th_path(DIR_, "d.vhd");
		struct vhd_info info;
		struct vhd_disk *d;

		unlink(p);
		th_create(p, VHD_TYPE_DYNAMIC, c[i].size, c[i].bs);
		check_dynamic(p, c[i].want, c[i].want_bs);
		d = th_open(p, VHD_OPEN_RDONLY);
		assert_true(vhd_size(d) == c[i].want);
		assert_int_equal(vhd_get_info(d, &info), 0);
		assert_int_equal(info.allocated_blocks, 0);
		assert_false(info.footer_from_copy);
		vhd_close(d);
	}
}

static void test_fixed_sizes(void **state)
{
	static const struct {
		uint64_t size, want;
	} c[] = {
		{TH_MIB, TH_MIB},
		{5 * TH_MIB + 7, 5 * TH_MIB + 512},
		{512, 512},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		const char *p = th_path(DIR_, "f.vhd");
		uint8_t f[512], *zero, *data;
		struct vhd_disk *d;

		unlink(p);
		th_create(p, VHD_TYPE_FIXED, c[i].size, 0);
		assert_true(th_file_size(p) == c[i].want + 512);
		th_read_footer(p, f);
		check_footer_sane(f, VHD_TYPE_FIXED, c[i].want);
		assert_int_equal(th_get_be32(f + 56), th_chs(c[i].want));
		data = th_read_file(p, NULL);
		zero = calloc(1, c[i].want);
		assert_memory_equal(data, zero, c[i].want);
		d = th_open(p, VHD_OPEN_RDONLY);
		assert_true(vhd_size(d) == c[i].want);
		th_expect_read(d, zero, c[i].want, 0);
		vhd_close(d);
		free(zero);
		free(data);
	}
}

static void create_fails(const char *dir, const char *name, enum vhd_type type,
			 uint64_t size, uint32_t bs, int e1, int e2)
{
	struct vhd_create_params prm = {type, size, bs};
	int before = th_count_entries(dir);
	int r = vhd_create(th_path(dir, name), &prm);

	if (r == 0)
		fail_msg("vhd_create %s size %llu bs %u succeeded, want %d",
			 name, (unsigned long long)size, bs, -e1);
	if (r != -e1 && r != -e2)
		fail_msg("vhd_create %s size %llu bs %u: %d (%s), want %d",
			 name, (unsigned long long)size, bs, r, vhd_errmsg(),
			 -e1);
	assert_int_equal(th_count_entries(dir), before);
	assert_false(th_exists(th_path(dir, name)));
}

static void test_create_rejects_bad_params(void **state)
{
	create_fails(DIR_, "a.vhd", VHD_TYPE_DYNAMIC, TH_MIB, 3 << 20, EINVAL,
		     EINVAL);
	create_fails(DIR_, "a.vhd", VHD_TYPE_DYNAMIC, TH_MIB, 512u << 20,
		     EINVAL, EINVAL);
	create_fails(DIR_, "a.vhd", VHD_TYPE_DYNAMIC, 0, 0, EINVAL, EINVAL);
	create_fails(DIR_, "a.vhd", VHD_TYPE_DIFF, TH_MIB, 0, EINVAL, EINVAL);
	create_fails(DIR_, "a.vhd", VHD_TYPE_DYNAMIC, VHD_MAX_SIZE + 512, 0,
		     EFBIG, ENOSPC);
	create_fails(DIR_, "a.vhd", VHD_TYPE_FIXED, VHD_MAX_SIZE + 512, 0,
		     EFBIG, ENOSPC);
	/* vhd.h: dynamic block sizes are 512 KiB..256 MiB. */
	create_fails(DIR_, "a.vhd", VHD_TYPE_DYNAMIC, TH_MIB, 256 << 10, EINVAL,
		     EINVAL);
	create_fails(DIR_, "a.vhd", VHD_TYPE_DYNAMIC, TH_MIB, 4096, EINVAL,
		     EINVAL);
	assert_int_equal(th_count_entries(DIR_), 0);
}

static void test_eexist_never_replaces(void **state)
{
	const char *p = th_path(DIR_, "x.vhd");
	const char *b = th_path(DIR_, "b.vhd");
	struct vhd_create_params prm = {VHD_TYPE_DYNAMIC, TH_MIB, 0};
	uint64_t h;

	th_write_file(p, "precious", 8);
	h = th_file_hash(p);
	assert_int_equal(vhd_create(p, &prm), -EEXIST);
	prm.type = VHD_TYPE_FIXED;
	assert_int_equal(vhd_create(p, &prm), -EEXIST);
	th_create(b, VHD_TYPE_DYNAMIC, TH_MIB, 0);
	assert_int_equal(vhd_create_diff(p, b), -EEXIST);
	assert_true(th_file_hash(p) == h);
	/* An existing image is not replaced either. */
	h = th_file_hash(b);
	prm.type = VHD_TYPE_DYNAMIC;
	assert_int_equal(vhd_create(b, &prm), -EEXIST);
	assert_true(th_file_hash(b) == h);
	/* A dangling symlink is an existing name too. */
	assert_int_equal(symlink("nowhere.vhd", th_path(DIR_, "l.vhd")), 0);
	assert_int_equal(vhd_create(th_path(DIR_, "l.vhd"), &prm), -EEXIST);
	assert_false(th_exists(th_path(DIR_, "nowhere.vhd")));
	assert_int_equal(th_count_entries(DIR_), 3);
}

static void test_missing_directory(void **state)
{
	struct vhd_create_params prm = {VHD_TYPE_DYNAMIC, TH_MIB, 0};
	const char *b = th_path(DIR_, "b.vhd");

	assert_int_equal(vhd_create(th_path(DIR_, "no/such/x.vhd"), &prm),
			 -ENOENT);
	th_create(b, VHD_TYPE_DYNAMIC, TH_MIB, 0);
	assert_int_equal(vhd_create_diff(th_path(DIR_, "no/c.vhd"), b),
			 -ENOENT);
	assert_int_equal(th_count_entries(DIR_), 1);
}

static void test_diff_bad_parent(void **state)
{
	const char *c = th_path(DIR_, "c.vhd");
	const char *junk = th_path(DIR_, "junk.vhd");

	assert_int_equal(vhd_create_diff(c, th_path(DIR_, "missing.vhd")),
			 -ENOENT);
	assert_true(th_msg_has("missing.vhd"));
	assert_false(th_exists(c));
	th_write_file(junk, "not a vhd at all", 16);
	assert_int_equal(vhd_create_diff(c, junk), -EINVAL);
	assert_false(th_exists(c));
	assert_int_equal(th_count_entries(DIR_), 1);
}

/*
 * Every cut of the write sequence of a creation fails it and leaves the
 * directory as it was; past the last write, creation succeeds.
 */
static void sweep_cuts(const char *dir, const char *name, const char *parent,
		       enum vhd_type type, uint64_t size)
{
	struct vhd_create_params prm = {type, size, 0};
	const char *p = th_path(dir, name);
	int before = th_count_entries(dir);
	long total;
	int r;

	th_fault_install(-1, false);
	r = parent ? vhd_create_diff(p, parent) : vhd_create(p, &prm);
	total = th_fault_writes();
	th_fault_remove();
	assert_int_equal(r, 0);
	assert_true(total > 0);
	assert_int_equal(unlink(p), 0);

	for (long n = 0; n < total; n++) {
		th_fault_install(n, false);
		r = parent ? vhd_create_diff(p, parent) : vhd_create(p, &prm);
		th_fault_remove();
		if (r == 0)
			fail_msg("%s: creation succeeded with writes cut at "
				 "%ld of %ld",
				 name, n, total);
		assert_int_equal(r, -EIO);
		assert_false(th_exists(p));
		assert_int_equal(th_count_entries(dir), before);
	}
}

static void test_create_fault_leaves_nothing(void **state)
{
	const char *b = th_path(DIR_, "base.vhd");

	sweep_cuts(DIR_, "dyn.vhd", NULL, VHD_TYPE_DYNAMIC, 64 * TH_MIB);
	sweep_cuts(DIR_, "fix.vhd", NULL, VHD_TYPE_FIXED, 3 * TH_MIB);
	th_create(b, VHD_TYPE_DYNAMIC, 64 * TH_MIB, 0);
	sweep_cuts(DIR_, "child.vhd", b, 0, 0);
}

/* Locator entry with @code in header @h, or NULL. */
static const uint8_t *find_locator(const uint8_t *h, uint32_t code)
{
	for (int i = 0; i < 8; i++)
		if (th_get_be32(h + 576 + 24 * i) == code)
			return h + 576 + 24 * i;
	return NULL;
}

static void locator_payload(const char *p, const uint8_t *e, char *out,
			    uint64_t fsize)
{
	uint32_t space = th_get_be32(e + 4), len = th_get_be32(e + 8);
	uint64_t off = th_get_be64(e + 16);
	uint8_t buf[8192];

	/* Data space in bytes: a multiple of 512, room for the payload. */
	assert_true(space >= 512);
	assert_int_equal(space % 512, 0);
	assert_true(len <= space);
	assert_true(len > 0 && len % 2 == 0 && len < sizeof(buf));
	assert_int_equal(off % 512, 0);
	assert_true(off >= 1536 && off + space <= fsize - 512);
	th_pread_raw(p, buf, len, off);
	th_from_utf16(out, buf, len, false);
	/* No terminator counted. */
	assert_int_equal(strlen(out) * 2, len);
}

/*
 * Every field of a child as design.md specifies, against a parent with
 * odd geometry (copied, not recomputed) and a known mtime.
 */
static void check_child(const char *child, const char *parent, uint32_t want_bs)
{
	uint8_t cf[512], c0[512], pf[512], h[1024], name[512] = {0};
	const uint8_t *ru, *ku;
	char path[4096], real[PATH_MAX], joined[PATH_MAX * 2];
	const char *base = strrchr(parent, '/') + 1;
	uint64_t fsize = th_file_size(child), size, table;
	uint32_t mte;
	uint8_t *bat;

	th_read_footer(parent, pf);
	th_read_footer(child, cf);
	th_pread_raw(child, c0, 512, 0);
	size = th_get_be64(pf + 48);
	check_footer_sane(cf, VHD_TYPE_DIFF, size);
	assert_memory_equal(cf, c0, 512);
	assert_memory_equal(cf + 28, "win ", 4);
	assert_int_equal(th_get_be32(cf + 56), th_get_be32(pf + 56));
	assert_memory_not_equal(cf + 68, pf + 68, 16);
	assert_memory_not_equal(cf + 68, name, 16);

	th_pread_raw(child, h, 1024, 512);
	assert_memory_equal(h, "cxsparse", 8);
	assert_true(th_get_be64(h + 8) == ~0ull);
	assert_int_equal(th_get_be32(h + 36), th_checksum(h, 1024, 36));
	assert_int_equal(th_get_be32(h + 32), want_bs);
	mte = (uint32_t)((size + want_bs - 1) / want_bs);
	assert_int_equal(th_get_be32(h + 28), mte);
	assert_memory_equal(h + 40, pf + 68, 16);
	assert_int_equal(th_get_be32(h + 56),
			 (uint32_t)(th_mtime(parent) - VHD_EPOCH_OFFSET));
	th_utf16(name, base, true);
	assert_memory_equal(h + 64, name, 512);
	assert_int_equal(th_get_be32(h + 60), 0);

	ru = find_locator(h, TH_W2RU);
	ku = find_locator(h, TH_W2KU);
	assert_non_null(ru);
	assert_non_null(ku);
	locator_payload(child, ru, path, fsize);
	assert_true(path[0] == '.' && path[1] == '\\');
	{
		/* Resolves, from the child's directory, to the parent. */
		char cdir[PATH_MAX];
		struct stat a, b;

		snprintf(cdir, sizeof(cdir), "%s", child);
		*strrchr(cdir, '/') = 0;
		for (char *s = path; *s; s++)
			if (*s == '\\')
				*s = '/';
		snprintf(joined, sizeof(joined), "%s/%s", cdir, path);
		if (stat(joined, &a))
			fail_msg("W2ru %s does not resolve", joined);
		assert_int_equal(stat(parent, &b), 0);
		assert_true(a.st_ino == b.st_ino);
	}
	locator_payload(child, ku, path, fsize);
	for (char *s = path; *s; s++)
		if (*s == '\\')
			*s = '/';
	assert_non_null(realpath(parent, real));
	assert_string_equal(path, real);

	table = th_get_be64(h + 16);
	bat = malloc(4ull * mte);
	th_pread_raw(child, bat, 4ull * mte, table);
	for (uint32_t i = 0; i < mte; i++)
		assert_int_equal(th_get_be32(bat + 4 * i), TH_UNALLOC);
	free(bat);
	/* BAT and locators do not overlap each other or the header. */
	assert_true(table >= 1536);
	for (const uint8_t *e = ru; e; e = (e == ru ? ku : NULL)) {
		uint64_t o = th_get_be64(e + 16), s = th_get_be32(e + 4);

		assert_true(o >= table + 4ull * mte || o + s <= table);
	}
	{
		uint64_t o1 = th_get_be64(ru + 16), s1 = th_get_be32(ru + 4);
		uint64_t o2 = th_get_be64(ku + 16), s2 = th_get_be32(ku + 4);

		assert_true(o1 + s1 <= o2 || o2 + s2 <= o1);
	}
}

static void test_diff_fields_dynamic_parent(void **state)
{
	const char *b = th_path(DIR_, "base.vhd");
	const char *c = th_path(DIR_, "child.vhd");
	struct th_spec s = {.type = VHD_TYPE_DYNAMIC,
			    .size = 300 * TH_MIB,
			    .block_size = 512 << 10,
			    .creator = "qemu"};
	uint8_t f[512];
	struct vhd_info info;
	struct vhd_disk *d;

	th_build(b, &s);
	/* Geometry the algorithm would never give: must be copied. */
	th_read_footer(b, f);
	th_be32(f + 56, 0x01020304);
	th_write_footers(b, f);
	th_set_mtime(b, 1234567890);
	th_create_diff(c, b);
	check_child(c, b, 512 << 10);

	d = th_open(c, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_int_equal(info.type, VHD_TYPE_DIFF);
	assert_string_equal(info.creator_app, "win ");
	assert_false(info.parent_timestamp_mismatch);
	assert_string_equal(info.parent_name, "base.vhd");
	assert_int_equal(info.cylinders, 0x0102);
	assert_int_equal(info.heads, 3);
	assert_int_equal(info.sectors_per_track, 4);
	vhd_close(d);
}

static void test_diff_block_size_rules(void **state)
{
	static const struct {
		enum vhd_type type;
		uint32_t bs, want;
		bool hand;
	} c[] = {
		{VHD_TYPE_DYNAMIC, 512 << 10, 512 << 10, false},
		{VHD_TYPE_DYNAMIC, 2 << 20, 2 << 20, false},
		{VHD_TYPE_FIXED, 0, 2 << 20, false},
		{VHD_TYPE_DYNAMIC, 4096, 2 << 20, true},
		{VHD_TYPE_DYNAMIC, 1 << 20, 2 << 20, false},
		{VHD_TYPE_DYNAMIC, 16 << 20, 2 << 20, false},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char bn[32], cn[32];
		const char *b, *ch;

		snprintf(bn, sizeof(bn), "base%zu.vhd", i);
		snprintf(cn, sizeof(cn), "child%zu.vhd", i);
		b = th_path(DIR_, bn);
		ch = th_path(DIR_, cn);
		if (c[i].hand) {
			struct th_spec s = {.type = c[i].type,
					    .size = 5 * TH_MIB + 512,
					    .block_size = c[i].bs};
			th_build(b, &s);
		} else {
			th_create(b, c[i].type, 5 * TH_MIB + 512, c[i].bs);
		}
		th_set_mtime(b, 1300000000 + i);
		th_create_diff(ch, b);
		check_child(ch, b, c[i].want);
	}
}

/* A child of a child: the parent's (differencing) fields are copied. */
static void test_diff_of_diff(void **state)
{
	const char *b = th_path(DIR_, "base.vhd");
	const char *m = th_path(DIR_, "mid.vhd");
	const char *l = th_path(DIR_, "leaf.vhd");
	struct vhd_disk *d;
	int n = 0;

	th_create(b, VHD_TYPE_DYNAMIC, 9 * TH_MIB, 512 << 10);
	th_create_diff(m, b);
	th_create_diff(l, m);
	check_child(l, m, 512 << 10);
	d = th_open(l, VHD_OPEN_RDONLY);
	for (struct vhd_disk *p = d; p; p = vhd_parent(p))
		n++;
	assert_int_equal(n, 3);
	vhd_close(d);
}

/* Child and parent in different directories; then both moved. */
static void test_diff_other_directory(void **state)
{
	char pd[PATH_MAX], cd[PATH_MAX], moved[PATH_MAX];
	const char *b, *c;
	struct vhd_disk *d;

	snprintf(pd, sizeof(pd), "%s/golden", DIR_);
	snprintf(cd, sizeof(cd), "%s/vms", DIR_);
	assert_int_equal(mkdir(pd, 0755), 0);
	assert_int_equal(mkdir(cd, 0755), 0);
	b = th_path(pd, "base.vhd");
	c = th_path(cd, "child.vhd");
	th_create(b, VHD_TYPE_DYNAMIC, 4 * TH_MIB, 0);
	th_create_diff(c, b);
	check_child(c, b, 2 << 20);
	vhd_close(th_open(c, VHD_OPEN_RDONLY));

	/* W2ku is stale after the move; W2ru still finds the parent. */
	snprintf(moved, sizeof(moved), "%s/moved", DIR_);
	assert_int_equal(mkdir(moved, 0755), 0);
	assert_int_equal(rename(pd, th_path(moved, "golden")), 0);
	assert_int_equal(rename(cd, th_path(moved, "vms")), 0);
	d = th_open(th_path(moved, "vms/child.vhd"), VHD_OPEN_RDONLY);
	assert_non_null(vhd_parent(d));
	assert_non_null(strstr(vhd_path(vhd_parent(d)), "moved"));
	vhd_close(d);
}

/* Creation cost is O(BAT): a child of a 1 TiB parent stays small. */
static void test_diff_cost_is_bat(void **state)
{
	const char *b = th_path(DIR_, "big.vhd");
	const char *c = th_path(DIR_, "child.vhd");
	struct stat st;
	/* 1 TiB in 2 MiB blocks: 2 MiB of BAT. */
	const uint64_t bat = (TH_GIB * 1024 / (2 << 20)) * 4;

	th_create(b, VHD_TYPE_DYNAMIC, 1024 * TH_GIB, 0);
	assert_true(th_file_size(b) < bat + 64 * TH_KIB);
	th_create_diff(c, b);
	assert_int_equal(stat(c, &st), 0);
	assert_true((uint64_t)st.st_size < bat + 256 * TH_KIB);
	assert_true((uint64_t)st.st_blocks * 512 < bat + 512 * TH_KIB);
	check_child(c, b, 2 << 20);
}

/* Non-ASCII parent names: UTF-16 (with a surrogate pair) both ways. */
static void test_diff_unicode_name(void **state)
{
	/* "b\u00e4se \u20ac\U0001F600.vhd" */
	const char *name = "b\xc3\xa4se \xe2\x82\xac\xf0\x9f\x98\x80.vhd";
	static const uint16_t units[] = {'b',	 0xE4,	 's', 'e', ' ', 0x20AC,
					 0xD83D, 0xDE00, '.', 'v', 'h', 'd'};
	const char *b = th_path(DIR_, name);
	const char *c = th_path(DIR_, "child.vhd");
	uint8_t h[1024], want[512] = {0};
	struct vhd_locator_info li;
	struct vhd_info info;
	struct vhd_disk *d;
	int found = 0;

	th_create(b, VHD_TYPE_DYNAMIC, 4 * TH_MIB, 0);
	th_create_diff(c, b);
	th_pread_raw(c, h, 1024, 512);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		th_be16(want + 2 * i, units[i]);
	assert_memory_equal(h + 64, want, 512);

	d = th_open(c, VHD_OPEN_RDONLY);
	assert_int_equal(vhd_get_info(d, &info), 0);
	assert_string_equal(info.parent_name, name);
	for (int i = 0; i < vhd_locator_count(d); i++) {
		assert_int_equal(vhd_get_locator(d, i, &li), 0);
		if (li.code == TH_W2RU) {
			assert_int_equal(li.data_length,
					 2 * (strlen(".\\") + 12));
			assert_non_null(strstr(li.path, name));
			found++;
		}
		if (li.code == TH_W2KU) {
			assert_string_equal(li.path, b);
			found++;
		}
	}
	assert_int_equal(found, 2);
	assert_non_null(vhd_parent(d));
	vhd_close(d);
}

/* A 255-byte name (NAME_MAX) ending in .vhd, starting with @c. */
static const char *long_name(char c)
{
	static char name[256];

	memset(name, c, 251);
	memcpy(name + 251, ".vhd", 5);
	return name;
}

/* Legal long names work for dynamic, fixed and differencing creates. */
static void test_long_names(void **state)
{
	struct vhd_create_params fixed = {VHD_TYPE_FIXED, TH_MIB, 0};
	char dyn[PATH_MAX], fix[PATH_MAX];
	struct vhd_disk *d;

	snprintf(dyn, sizeof(dyn), "%s", th_path(DIR_, long_name('d')));
	snprintf(fix, sizeof(fix), "%s", th_path(DIR_, long_name('f')));
	th_create(dyn, VHD_TYPE_DYNAMIC, TH_MIB, 0);
	assert_int_equal(vhd_create(fix, &fixed), 0);
	assert_int_equal(vhd_create_diff(th_path(DIR_, long_name('c')), dyn),
			 0);
	d = th_open(th_path(DIR_, long_name('c')), VHD_OPEN_RDONLY);
	assert_non_null(vhd_parent(d));
	vhd_close(d);
	/* Nothing else (no temporary) is left in the directory. */
	assert_int_equal(th_count_entries(DIR_), 3);
	assert_int_equal(vhd_create(fix, &fixed), -EEXIST);
	assert_int_equal(th_count_entries(DIR_), 3);
}

static bool no_tmpfile_fail_write;

static ssize_t nt_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t r = pread(fd, buf, len, off);

	return r < 0 ? -errno : r;
}

static ssize_t nt_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t r;

	if (no_tmpfile_fail_write)
		return -ENOSPC;
	r = pwrite(fd, buf, len, off);
	return r < 0 ? -errno : r;
}

static int nt_fsync(int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

static int nt_open_tmpfile(const char *dir, int flags, mode_t mode)
{
	(void)dir, (void)flags, (void)mode;
	return -EOPNOTSUPP; /* as vfat or an old NFS says */
}

static const struct vhd_io_ops no_tmpfile_ops = {
	.pread = nt_pread,
	.pwrite = nt_pwrite,
	.fsync = nt_fsync,
	.open_tmpfile = nt_open_tmpfile,
};

/*
 * Without O_TMPFILE: a short hidden temporary that fits NAME_MAX, gone
 * after success and failure; a stale one (no lock) is swept, a live one
 * (locked) is left alone.
 */
static void test_named_tmp_fallback(void **state)
{
	struct vhd_create_params prm = {VHD_TYPE_DYNAMIC, TH_MIB, 0};
	const char *live = th_path(DIR_, ".vhdfs-tmp-11111111");
	char name[PATH_MAX];
	int lfd;

	th_write_file(th_path(DIR_, ".vhdfs-tmp-deadbeef"), "x", 1);
	th_write_file(live, "y", 1);
	lfd = open(live, O_RDONLY);
	assert_true(lfd >= 0);
	assert_int_equal(flock(lfd, LOCK_EX), 0);
	vhd_set_io_ops(&no_tmpfile_ops);
	snprintf(name, sizeof(name), "%s", th_path(DIR_, long_name('n')));
	assert_int_equal(vhd_create(name, &prm), 0);
	assert_int_equal(vhd_create_diff(th_path(DIR_, long_name('m')), name),
			 0);
	no_tmpfile_fail_write = true;
	assert_int_equal(vhd_create(th_path(DIR_, "fail.vhd"), &prm), -ENOSPC);
	assert_int_equal(vhd_create_diff(th_path(DIR_, "fail2.vhd"), name),
			 -ENOSPC);
	no_tmpfile_fail_write = false;
	vhd_set_io_ops(NULL);
	assert_false(th_exists(th_path(DIR_, ".vhdfs-tmp-deadbeef")));
	assert_true(th_exists(live));
	assert_int_equal(th_count_entries(DIR_), 3); /* n, m and the live */
	close(lfd);
	vhd_close(th_open(th_path(DIR_, long_name('m')), VHD_OPEN_RDONLY));
}

static mode_t mode_of(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 07777;
}

static int refuse_commit(void *ctx)
{
	(*(int *)ctx)++;
	return -ECANCELED;
}

/*
 * Modes: 0666 less the umask (the process's, or the one given), and a
 * child keeps no group/other bit its parent chain denies. The commit hook
 * can still abandon a complete image.
 */
static void test_modes_and_commit(void **state)
{
	struct vhd_create_params prm = {VHD_TYPE_DYNAMIC, TH_MIB, 0};
	struct vhd_create_opts o = {
		.own = true, .uid = (uid_t)-1, .gid = (gid_t)-1, .umask = 0};
	const char *base = th_path(DIR_, "base.vhd");
	mode_t old = umask(027);
	char b[PATH_MAX], mid[PATH_MAX];
	int calls = 0;

	snprintf(b, sizeof(b), "%s", base);
	assert_int_equal(vhd_create(b, &prm), 0);
	assert_int_equal(mode_of(b), 0640);
	umask(old);
	assert_int_equal(vhd_create_ex(th_path(DIR_, "open.vhd"), &prm, &o), 0);
	assert_int_equal(mode_of(th_path(DIR_, "open.vhd")), 0666);
	/* 0640 parent of our group: the group may read, others not. */
	assert_int_equal(vhd_create_diff_ex(th_path(DIR_, "c1.vhd"), b, &o), 0);
	assert_int_equal(mode_of(th_path(DIR_, "c1.vhd")), 0660);
	/* A 0600 level anywhere in the chain closes the child. */
	assert_int_equal(chmod(b, 0600), 0);
	snprintf(mid, sizeof(mid), "%s", th_path(DIR_, "mid.vhd"));
	assert_int_equal(vhd_create_diff_ex(mid, b, &o), 0);
	assert_int_equal(chmod(mid, 0644), 0);
	assert_int_equal(vhd_create_diff_ex(th_path(DIR_, "c2.vhd"), mid, &o),
			 0);
	assert_int_equal(mode_of(th_path(DIR_, "c2.vhd")), 0600);
	o.umask = 077;
	assert_int_equal(chmod(b, 0644), 0);
	assert_int_equal(vhd_create_diff_ex(th_path(DIR_, "c3.vhd"), b, &o), 0);
	assert_int_equal(mode_of(th_path(DIR_, "c3.vhd")), 0600);
	if (geteuid() == 0) {
		struct stat st;

		/* Given away; the parent's group (ours) is not the child's. */
		o.uid = 65534;
		o.gid = 65534;
		o.umask = 0;
		assert_int_equal(chmod(b, 0640), 0);
		assert_int_equal(
			vhd_create_diff_ex(th_path(DIR_, "c4.vhd"), b, &o), 0);
		assert_int_equal(stat(th_path(DIR_, "c4.vhd"), &st), 0);
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	o.commit = refuse_commit;
	o.ctx = &calls;
	assert_int_equal(vhd_create_ex(th_path(DIR_, "no.vhd"), &prm, &o),
			 -ECANCELED);
	assert_int_equal(vhd_create_diff_ex(th_path(DIR_, "no2.vhd"), b, &o),
			 -ECANCELED);
	assert_int_equal(calls, 2);
	assert_false(th_exists(th_path(DIR_, "no.vhd")));
	assert_false(th_exists(th_path(DIR_, "no2.vhd")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_dynamic_sizes),
		T(test_fixed_sizes),
		T(test_create_rejects_bad_params),
		T(test_eexist_never_replaces),
		T(test_missing_directory),
		T(test_diff_bad_parent),
		T(test_create_fault_leaves_nothing),
		T(test_diff_fields_dynamic_parent),
		T(test_diff_block_size_rules),
		T(test_diff_of_diff),
		T(test_diff_other_directory),
		T(test_diff_cost_is_bat),
		T(test_diff_unicode_name),
		T(test_long_names),
		T(test_named_tmp_fallback),
		T(test_modes_and_commit),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
