// SPDX-License-Identifier: MIT
/*
 * Hostile images: a seeded mutation test. Valid seed images (dynamic,
 * differencing children made by the library and by hand, fixed, small
 * blocks) are copied and damaged a few bytes or fields at a time, biased
 * to the metadata (both footers, the dynamic header, BAT entries, bitmaps,
 * locator entries and payloads), sometimes with boundary values, sometimes
 * truncated or extended; most of the time the checksums are recomputed so
 * the damage reaches past the first check. Every public call must then
 * fail with -errno and a message naming a file, or succeed with the counts
 * and invariants the contract promises: reads of the right length, holes
 * found by vhd_seek_data reading as zeros, writes reading back, and a
 * message exactly after a failure. Crashes, leaks and undefined behaviour
 * are caught by the ASan/UBSan build. Pristine seeds (parents of every
 * chain opened) must be unchanged at the end.
 *
 * VHD_HOSTILE_SEED=n repeats a run, VHD_HOSTILE_ITERS=n sets its length,
 * VHD_HOSTILE_ONLY=i runs iteration i alone, VHD_HOSTILE_VERBOSE=1 prints
 * every mutation before it is tried (to find the one that crashed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define DEFAULT_SEED 20261126u
#define DEFAULT_ITERS 3000
#define READ_CAP (16 * TH_MIB) /* bytes read per opened image */
#define MAX_CHUNK (1536 * TH_KIB)
#define BASE_SIZE (5 * TH_MIB + 1536) /* last 2 MiB block partial */
#define MAX_REGIONS 64
#define MAX_FIELDS 128
#define LOG_LEN 4096
#define EXTEND_MAX (4 * TH_MIB) /* bytes appended, at most */

enum seed_id { S_BASE, S_CHILD, S_GRAND, S_FIXED, S_HAND, S_SMALL, S_COUNT };

static const char *const seed_names[S_COUNT] = {
	"base.vhd",  "child.vhd", "grand.vhd",
	"fixed.vhd", "hand.vhd",  "small.vhd",
};

struct region {
	uint64_t off, len;
	unsigned weight;
};

struct field {
	uint64_t off;
	unsigned width; /* 4 or 8 */
};

struct seed {
	uint8_t *buf;
	size_t len;
	bool fixed;
	struct region regions[MAX_REGIONS];
	int nregions;
	unsigned total_weight;
	struct field fields[MAX_FIELDS];
	int nfields;
	uint64_t hash; /* pristine file in the seed dir must never change */
};

static struct seed seeds[S_COUNT];
static char seed_dir[4096], work_dir[4096];
static uint8_t *rbuf, *rbuf2;
static uint8_t *mbuf; /* the image being damaged */
static size_t mbuf_len;

/* What the current iteration did, printed on failure. */
static struct {
	uint64_t seed;
	long iter;
	const char *scenario;
	char log[LOG_LEN];
	size_t loglen;
	bool verbose;
	const char *names[4]; /* base names of the files in the chain */
} it;

static long opened, refused, rdwr_opened, writes_ok, seeks_done;

static void __attribute__((format(printf, 1, 2))) logf_(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (it.loglen >= LOG_LEN - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(it.log + it.loglen, LOG_LEN - it.loglen, fmt, ap);
	va_end(ap);
	if (n > 0)
		it.loglen += (size_t)n;
	if (it.loglen >= LOG_LEN)
		it.loglen = LOG_LEN - 1;
}

/*
 * A broken promise is recorded and the run goes on, so one defect hit
 * often does not hide the others (nor stop the sanitizers' search): the
 * first two of each kind are printed with the mutation that caused them,
 * and the test fails at the end with a count per kind.
 */
#define MAX_KINDS 64
static struct {
	char key[96];
	long count;
	char first[512];
} kinds[MAX_KINDS];
static int nkinds;
static long violations;

static void __attribute__((format(printf, 2, 3)))
violation(const char *key, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int k;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	violations++;
	for (k = 0; k < nkinds && strcmp(kinds[k].key, key); k++)
		;
	if (k == nkinds && nkinds < MAX_KINDS) {
		snprintf(kinds[k].key, sizeof(kinds[k].key), "%s", key);
		snprintf(kinds[k].first, sizeof(kinds[k].first), "%.400s", msg);
		nkinds++;
	}
	if (k < MAX_KINDS && kinds[k].count++ >= 2)
		return;
	print_message("VIOLATION %s: %s\n  seed %llu iteration %ld (%s): "
		      "%s\n",
		      key, msg, (unsigned long long)it.seed, it.iter,
		      it.scenario, it.log);
}

#define STR_(x) #x
#define STR(x) STR_(x)
#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			violation("line " STR(__LINE__), __VA_ARGS__);         \
	} while (0)
#define CHECK_K(key, cond, ...)                                                \
	do {                                                                   \
		if (!(cond))                                                   \
			violation(key, __VA_ARGS__);                           \
	} while (0)

/* A failed call: -errno, and a message naming a file of the chain. */
static void check_error(long long r, const char *what)
{
	const char *m = vhd_errmsg();
	char key[96];
	bool named = false;

	for (int i = 0; i < 4 && it.names[i] && !named; i++)
		named = strstr(m, it.names[i]) != NULL;
	snprintf(key, sizeof(key), "%s: not -errno", what);
	CHECK_K(key, r < 0 && r > -4096, "%s: %lld is not a negative errno",
		what, r);
	snprintf(key, sizeof(key), "%s: failure without message", what);
	CHECK_K(key, m[0], "%s failed (%lld) with an empty message", what, r);
	snprintf(key, sizeof(key), "%s: message names no file", what);
	CHECK_K(key, !m[0] || named,
		"%s failed (%lld): message \"%s\" names no file", what, r, m);
}

/*
 * A successful call leaves no message: it is non-empty exactly after a
 * failure, so a stale one would be blamed on the next call.
 */
static void check_clean(const char *what)
{
	char key[96];

	snprintf(key, sizeof(key), "%s: success with a message", what);
	CHECK_K(key, !vhd_errmsg()[0],
		"%s succeeded but left the message \"%s\"", what, vhd_errmsg());
}

/* --- seed images --------------------------------------------------------- */

static void add_region(struct seed *s, uint64_t off, uint64_t len,
		       unsigned weight)
{
	if (s->nregions >= MAX_REGIONS || !len || off >= s->len)
		return;
	if (len > s->len - off)
		len = s->len - off;
	s->regions[s->nregions++] = (struct region){off, len, weight};
	s->total_weight += weight;
}

static void add_field(struct seed *s, uint64_t off, unsigned width)
{
	if (s->nfields < MAX_FIELDS && off + width <= s->len)
		s->fields[s->nfields++] = (struct field){off, width};
}

static void add_footer_fields(struct seed *s, uint64_t at)
{
	static const struct {
		unsigned off, width;
	} f[] = {{8, 4},  {12, 4}, {16, 8}, {40, 8}, {48, 8}, {48, 4},
		 {52, 4}, {56, 4}, {60, 4}, {64, 4}, {16, 4}, {20, 4}};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		add_field(s, at + f[i].off, f[i].width);
}

/* Regions and fields of a pristine seed, found from its own metadata. */
static void map_seed(struct seed *s)
{
	const uint8_t *b = s->buf;
	uint64_t foot = s->len - 512, toff, hdr;
	uint32_t mte, bs, bitmap;

	add_region(s, foot, 512, 10);
	add_footer_fields(s, foot);
	add_region(s, 0, s->len, 2); /* anywhere */
	if (s->fixed)
		return;
	add_region(s, 0, 512, 5);
	add_footer_fields(s, 0);
	hdr = th_get_be64(b + foot + 16);
	assert_int_equal(hdr, 512);
	add_region(s, hdr, 1024, 12);
	add_region(s, hdr, 40, 10); /* offsets, sizes, version */
	add_region(s, hdr + 576, 8 * 24, 8);
	add_field(s, hdr + 8, 8);
	add_field(s, hdr + 16, 8);
	add_field(s, hdr + 20, 4);
	add_field(s, hdr + 24, 4);
	add_field(s, hdr + 28, 4);
	add_field(s, hdr + 32, 4);
	add_field(s, hdr + 36, 4);
	toff = th_get_be64(b + hdr + 16);
	mte = th_get_be32(b + hdr + 28);
	bs = th_get_be32(b + hdr + 32);
	bitmap = (uint32_t)((bs / 512 / 8 + 511) / 512 * 512);
	for (int i = 0; i < 8; i++) {
		const uint8_t *e = b + hdr + 576 + 24 * i;
		uint64_t at = hdr + 576 + 24 * i;

		for (unsigned k = 0; k < 16; k += 4)
			add_field(s, at + k, 4);
		add_field(s, at + 16, 8);
		add_field(s, at + 20, 4);
		if (th_get_be32(e))
			add_region(s, th_get_be64(e + 16), th_get_be32(e + 8),
				   4);
	}
	add_region(s, toff, (uint64_t)mte * 4, 12);
	for (uint32_t i = 0; i < mte; i++) {
		uint32_t e = th_get_be32(b + toff + 4ull * i);

		if (i < 16 || e != TH_UNALLOC)
			add_field(s, toff + 4ull * i, 4);
		if (e != TH_UNALLOC) {
			add_region(s, (uint64_t)e * 512, bitmap, 4);
			add_region(s, (uint64_t)e * 512 + bitmap, 512, 1);
		}
	}
}

static void write_pattern(struct vhd_disk *d, uint64_t off, size_t len,
			  uint32_t tag)
{
	uint8_t *buf = malloc(len);

	th_fill_pattern(buf, len, off, tag);
	th_write(d, buf, len, off);
	free(buf);
}

/* Move the BAT of a hand-built image to the next 4 KiB past its end. */
static void move_bat(const char *p)
{
	struct th_layout l;
	uint8_t h[1024], f[512], *bat, *zero;
	uint64_t end = th_file_size(p) - 512, to = (end + 4095) / 4096 * 4096;
	size_t bytes;

	th_layout_of(p, &l);
	bytes = ((size_t)l.max_table_entries * 4 + 511) / 512 * 512;
	bat = malloc(bytes);
	zero = calloc(1, bytes);
	th_pread_raw(p, bat, bytes, l.table_offset);
	th_read_footer(p, f);
	th_pwrite_raw(p, zero, bytes, l.table_offset);
	th_pwrite_raw(p, zero, 512, end);
	th_pwrite_raw(p, bat, bytes, to);
	th_pwrite_raw(p, f, 512, to + bytes);
	th_read_header(p, h);
	th_be64(h + 16, to);
	th_write_header(p, h);
	free(bat);
	free(zero);
}

static void build_seeds(const char *dir)
{
	struct vhd_create_params fixed = {VHD_TYPE_FIXED, TH_MIB + 3584, 0};
	struct th_spec hand = {.type = VHD_TYPE_DIFF,
			       .size = BASE_SIZE,
			       .block_size = 512 * TH_KIB,
			       .parent_name = "base.vhd",
			       .w2ru = ".\\base.vhd",
			       .locator_space_sectors = true};
	struct th_spec small = {.type = VHD_TYPE_DYNAMIC,
				.size = 300 * TH_KIB + 512,
				.block_size = 4096};
	uint8_t footer[512], bitmap[512], *data;
	struct vhd_disk *d;
	int r;

	snprintf(seed_dir, sizeof(seed_dir), "%s/seeds", dir);
	snprintf(work_dir, sizeof(work_dir), "%s/work", dir);
	assert_int_equal(mkdir(seed_dir, 0755), 0);
	assert_int_equal(mkdir(work_dir, 0755), 0);

	th_create(th_path(seed_dir, "base.vhd"), VHD_TYPE_DYNAMIC, BASE_SIZE,
		  0);
	d = th_open(th_path(seed_dir, "base.vhd"), VHD_OPEN_RDWR);
	write_pattern(d, 4096, 300 * TH_KIB, 1);
	write_pattern(d, 4 * TH_MIB + 512, 8 * TH_KIB + 100, 2);
	assert_int_equal(vhd_close(d), 0);

	th_create_diff(th_path(seed_dir, "child.vhd"),
		       th_path(seed_dir, "base.vhd"));
	d = th_open(th_path(seed_dir, "child.vhd"), VHD_OPEN_RDWR);
	write_pattern(d, 8192 + 17, 1000, 3);
	write_pattern(d, 2 * TH_MIB - 1024, 3 * 512, 4);
	write_pattern(d, 5 * TH_MIB, 1536, 5);
	assert_int_equal(vhd_close(d), 0);

	th_create_diff(th_path(seed_dir, "grand.vhd"),
		       th_path(seed_dir, "child.vhd"));
	d = th_open(th_path(seed_dir, "grand.vhd"), VHD_OPEN_RDWR);
	write_pattern(d, 2 * TH_MIB - 512, 512, 6);
	write_pattern(d, 4 * TH_MIB + 4096, 4096, 7);
	assert_int_equal(vhd_close(d), 0);

	r = vhd_create(th_path(seed_dir, "fixed.vhd"), &fixed);
	assert_int_equal(r, 0);
	d = th_open(th_path(seed_dir, "fixed.vhd"), VHD_OPEN_RDWR);
	write_pattern(d, 0, 64 * TH_KIB, 8);
	write_pattern(d, TH_MIB, 3584, 9);
	assert_int_equal(vhd_close(d), 0);

	/* Hand-built child: 512 KiB blocks, BAT moved, 4 KiB-aligned data. */
	th_read_footer(th_path(seed_dir, "base.vhd"), footer);
	memcpy(hand.parent_uuid, footer + 68, 16);
	hand.w2ku = th_path(seed_dir, "base.vhd");
	th_build(th_path(seed_dir, "hand.vhd"), &hand);
	move_bat(th_path(seed_dir, "hand.vhd"));
	data = malloc(512 * TH_KIB);
	for (uint32_t blk = 1; blk < 11; blk += 4) {
		memset(bitmap, 0, sizeof(bitmap));
		for (int i = 0; i < 128; i++)
			bitmap[i] = (uint8_t)(blk * 37 + i * 11);
		th_fill_pattern(data, 512 * TH_KIB, blk * 512 * TH_KIB, 10);
		th_alloc_block(th_path(seed_dir, "hand.vhd"), blk, bitmap, data,
			       4096);
	}
	free(data);

	/* Small blocks no writer here makes, but a reader must take. */
	th_build(th_path(seed_dir, "small.vhd"), &small);
	data = malloc(4096);
	for (uint32_t blk = 0; blk < 76; blk += 9) {
		th_fill_pattern(data, 4096, blk * 4096, 11);
		th_alloc_block(th_path(seed_dir, "small.vhd"), blk, NULL, data,
			       0);
	}
	free(data);

	for (int i = 0; i < S_COUNT; i++) {
		const char *p = th_path(seed_dir, seed_names[i]);

		/* The seeds must be valid, or the mutations test nothing. */
		r = vhd_check(p, NULL, NULL);
		if (r != 0)
			fail_msg("seed %s: vhd_check %d %s", p, r,
				 vhd_errmsg());
		seeds[i].buf = th_read_file(p, &seeds[i].len);
		seeds[i].fixed = i == S_FIXED;
		seeds[i].hash = th_file_hash(p);
		map_seed(&seeds[i]);
		if (seeds[i].len + EXTEND_MAX > mbuf_len)
			mbuf_len = seeds[i].len + EXTEND_MAX;
	}
	mbuf = malloc(mbuf_len);
}

/* --- mutation ------------------------------------------------------------ */

static uint64_t boundary(uint64_t *rng, uint64_t cur, uint64_t fsize)
{
	static const uint64_t fixed[] = {
		0,
		1,
		0xFFFFFFFFu,
		0xFFFFFFFEu,
		0x80000000u,
		0x7FFFFFFFu,
		512,
		1536,
		4096,
		8192,
		65536, /* the longest locator payload taken */
		65537,
		TH_MIB,
		256 * TH_MIB,
		512 * TH_MIB,
		0xFF000000u,
		VHD_MAX_SIZE,
		VHD_MAX_SIZE + 512,
		~0ull,
		1ull << 63,
		1ull << 32,
	};
	uint64_t n = sizeof(fixed) / sizeof(fixed[0]);
	uint64_t k = th_rand_below(rng, n + 9);

	if (k < n)
		return fixed[k];
	switch (k - n) {
	case 0:
		return fsize;
	case 1:
		return fsize / 512;
	case 2:
		return fsize - 512;
	case 3:
		return (fsize - 512) / 512;
	case 4:
		return fsize + 512;
	case 5:
		return cur + 1;
	case 6:
		return cur - 1;
	case 7:
		return cur + (th_rand_below(rng, 2) ? 512 : -512ull);
	default:
		return 1ull << th_rand_below(rng, 64);
	}
}

static uint64_t get_field(const uint8_t *b, const struct field *f)
{
	return f->width == 8 ? th_get_be64(b + f->off)
			     : th_get_be32(b + f->off);
}

static void put_field(uint8_t *b, const struct field *f, uint64_t v)
{
	if (f->width == 8)
		th_be64(b + f->off, v);
	else
		th_be32(b + f->off, (uint32_t)v);
}

static const struct region *pick_region(uint64_t *rng, const struct seed *s)
{
	uint64_t w = th_rand_below(rng, s->total_weight);

	for (int i = 0; i < s->nregions; i++) {
		if (w < s->regions[i].weight)
			return &s->regions[i];
		w -= s->regions[i].weight;
	}
	return &s->regions[0];
}

/* One mutation of @m (@len bytes, a copy of @s possibly resized). */
static void mutate_one(uint64_t *rng, const struct seed *s, uint8_t *m,
		       size_t len)
{
	uint64_t kind = th_rand_below(rng, 11);

	if (kind == 10 && !s->fixed && len >= 1536) {
		/* A whole locator entry: any code, payload anywhere. */
		static const uint32_t codes[] = {
			TH_W2RU, TH_W2KU, TH_MACX, 0x57693272, 0x5769326B, 0};
		uint8_t *e = m + 512 + 576 + 24 * th_rand_below(rng, 8);
		uint32_t code = codes[th_rand_below(rng, 6)];
		uint32_t dlen = (uint32_t)(th_rand_below(rng, 2)
						   ? boundary(rng, 0, len)
						   : th_rand_below(rng, 70000));
		uint64_t off = th_rand_below(rng, 4) ? th_rand_below(rng, len)
						     : boundary(rng, 0, len);

		th_be32(e, code ? code : (uint32_t)th_rand(rng));
		th_be32(e + 4, (uint32_t)th_rand_below(rng, 131072));
		th_be32(e + 8, dlen);
		th_be64(e + 16, off);
		logf_("locator@%llu=%08x len %u off %llu; ",
		      (unsigned long long)(e - m), th_get_be32(e), dlen,
		      (unsigned long long)off);
	} else if (kind < 4 && s->nfields) {
		const struct field *f =
			&s->fields[th_rand_below(rng, (uint64_t)s->nfields)];
		uint64_t v;

		if (f->off + f->width > len)
			return;
		if (kind == 3) /* another field's value: overlaps, aliases */
			v = get_field(m, &s->fields[th_rand_below(
						 rng, (uint64_t)s->nfields)]);
		else
			v = boundary(rng, get_field(m, f), len);
		put_field(m, f, v);
		logf_("f%u@%llu=0x%llx; ", f->width * 8,
		      (unsigned long long)f->off, (unsigned long long)v);
	} else {
		const struct region *r = pick_region(rng, s);
		uint64_t off = r->off + th_rand_below(rng, r->len);

		/* The trailing footer region follows the (resized) end. */
		if (r == &s->regions[0])
			off = len >= 512 ? len - 512 + off % 512 : off % len;
		if (off >= len)
			return;
		if (kind < 7 && off + 4 <= len) {
			uint32_t v = (uint32_t)th_rand(rng);

			off &= ~3ull;
			th_be32(m + off, v);
			logf_("w32@%llu=0x%x; ", (unsigned long long)off, v);
		} else if (kind < 9) {
			uint8_t v = (uint8_t)(1u << th_rand_below(rng, 8));

			m[off] ^= v;
			logf_("xor@%llu^0x%x; ", (unsigned long long)off, v);
		} else {
			m[off] = (uint8_t)th_rand(rng);
			logf_("b@%llu=0x%x; ", (unsigned long long)off, m[off]);
		}
	}
}

/* Recompute the checksums wherever a footer or header now is. */
static void fix_checksums(uint64_t *rng, uint8_t *m, size_t len, bool fixed)
{
	uint64_t hdr = 512;
	uint8_t *foot = len >= 512 ? m + len - 512 : NULL;

	if (foot && th_rand_below(rng, 10) < 9) {
		th_fix_footer_cksum(foot);
		logf_("fixsum tail; ");
	}
	if (!fixed && len >= 512 && !memcmp(m, "conectix", 8) &&
	    th_rand_below(rng, 10) < 9) {
		th_fix_footer_cksum(m);
		logf_("fixsum copy; ");
	}
	if (foot && !memcmp(foot, "conectix", 8))
		hdr = th_get_be64(foot + 16);
	else if (len >= 512 && !memcmp(m, "conectix", 8))
		hdr = th_get_be64(m + 16);
	if (th_rand_below(rng, 10) < 9) {
		if (hdr < len && len - hdr >= 1024 &&
		    !memcmp(m + hdr, "cxsparse", 8))
			th_fix_header_cksum(m + hdr);
		if (hdr != 512 && len >= 1536 &&
		    !memcmp(m + 512, "cxsparse", 8))
			th_fix_header_cksum(m + 512);
		logf_("fixsum header; ");
	}
}

/*
 * Write @have bytes of @m to a new file at @p, then extend it with zeros
 * to @len; all-zero chunks are left as holes, which keeps copies of mostly
 * empty blocks cheap.
 */
static void write_sparse(const char *p, const uint8_t *m, size_t have,
			 uint64_t len)
{
	static const uint8_t zero[65536];
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	for (size_t off = 0; off < have; off += sizeof(zero)) {
		size_t n =
			have - off < sizeof(zero) ? have - off : sizeof(zero);

		if (memcmp(m + off, zero, n))
			assert_int_equal(pwrite(fd, m + off, n, (off_t)off),
					 (ssize_t)n);
	}
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	close(fd);
}

/*
 * Write a copy of seed @id to the work directory under its own name,
 * damaged when @mutate.
 */
static void make_victim(uint64_t *rng, int id, bool mutate)
{
	const struct seed *s = &seeds[id];
	const char *p = th_path(work_dir, seed_names[id]);
	size_t len = s->len;
	uint8_t *m = mbuf;
	uint64_t sparse = 0, op;
	int n;

	memcpy(m, s->buf, len);
	if (!mutate) {
		write_sparse(p, m, len, len);
		return;
	}
	logf_("[%s] ", seed_names[id]);
	op = th_rand_below(rng, 20);
	if (op < 2) { /* truncate: near the end, or anywhere */
		static const uint64_t cut[] = {1, 2, 511, 512, 513, 1024, 4096};
		uint64_t c = th_rand_below(rng, 2)
				     ? cut[th_rand_below(rng, 7)]
				     : th_rand_below(rng, len + 1);

		len = c <= len ? len - c : 0;
		if (op == 1)
			len = th_rand_below(rng, 2) ? th_rand_below(rng, 2048)
						    : len;
		logf_("truncate to %zu; ", len);
	} else if (op < 4) { /* extend: garbage or zeros, footer moved */
		size_t add = op == 2 ? th_rand_below(rng, 65536)
				     : th_rand_below(rng, EXTEND_MAX);

		if (op == 2)
			th_rand_fill(rng, m + len, add);
		else
			memset(m + len, 0, add);
		if (op == 3 && th_rand_below(rng, 2) && add >= 512)
			memcpy(m + len + add - 512, s->buf + s->len - 512, 512);
		len += add;
		logf_("extend by %zu (%s); ", add,
		      op == 2 ? "garbage" : "zeros");
	} else if (op == 4) {
		sparse = th_rand_below(rng, 16 * TH_MIB) + 1;
		logf_("sparse extend by %llu; ", (unsigned long long)sparse);
	}
	/* 1 to 8, mostly few: one defect at a time reaches deepest. */
	n = 1 + (int)th_rand_below(rng, 1 + th_rand_below(rng, 8));
	for (int i = 0; i < n && len; i++)
		mutate_one(rng, s, m, len);
	if (th_rand_below(rng, 10) < 8)
		fix_checksums(rng, m, len, s->fixed);
	write_sparse(p, m, len, len + sparse);
}

/* --- exercising an image ------------------------------------------------- */

static void check_zero(struct vhd_disk *d, uint64_t off, uint64_t end)
{
	size_t len = (size_t)(end - off < 65536 ? end - off : 65536);
	ssize_t n;

	if (!len)
		return;
	n = vhd_pread(d, rbuf2, len, off);
	CHECK(n == (ssize_t)len, "read of a hole at %llu: %zd (%s)",
	      (unsigned long long)off, n, vhd_errmsg());
	if (n != (ssize_t)len)
		return;
	for (size_t i = 0; i < len; i++) {
		if (rbuf2[i]) {
			CHECK(0, "hole byte %llu reads 0x%02x",
			      (unsigned long long)(off + i), rbuf2[i]);
			return;
		}
	}
}

static void exercise_seek(struct vhd_disk *d, uint64_t off)
{
	uint64_t size = vhd_size(d);
	int64_t r = vhd_seek_data(d, off);

	seeks_done++;
	if (off >= size) {
		CHECK(r == -ENXIO, "seek_data(%llu) past end: %lld",
		      (unsigned long long)off, (long long)r);
	} else if (r == -ENXIO) {
		check_zero(d, off, size);
	} else if (r < 0) {
		check_error(r, "vhd_seek_data");
	} else {
		CHECK((uint64_t)r >= off && (uint64_t)r < size,
		      "seek_data(%llu) = %lld, size %llu",
		      (unsigned long long)off, (long long)r,
		      (unsigned long long)size);
		check_zero(d, off, (uint64_t)r);
	}
	r = vhd_seek_hole(d, off);
	if (off >= size)
		CHECK(r == -ENXIO, "seek_hole(%llu) past end: %lld",
		      (unsigned long long)off, (long long)r);
	else if (r < 0)
		check_error(r, "vhd_seek_hole");
	else
		CHECK((uint64_t)r >= off && (uint64_t)r <= size,
		      "seek_hole(%llu) = %lld, size %llu",
		      (unsigned long long)off, (long long)r,
		      (unsigned long long)size);
}

static void read_checked(struct vhd_disk *d, size_t len, uint64_t off)
{
	uint64_t size = vhd_size(d);
	size_t want = off >= size ? 0 : (size - off < len ? size - off : len);
	ssize_t n = vhd_pread(d, rbuf, len, off);

	if (n < 0) {
		check_error(n, "vhd_pread");
		return;
	}
	CHECK(n == (ssize_t)want, "read %zu at %llu of %llu: %zd", len,
	      (unsigned long long)off, (unsigned long long)size, n);
	check_clean("vhd_pread");
}

static size_t chunk(uint64_t *rng)
{
	switch (th_rand_below(rng, 4)) {
	case 0:
		return 1 + th_rand_below(rng, 1024);
	case 1:
		return 512 * (1 + th_rand_below(rng, 64));
	default:
		return 1 + th_rand_below(rng, MAX_CHUNK);
	}
}

static void exercise_reads(uint64_t *rng, struct vhd_disk *d)
{
	uint64_t size = vhd_size(d), total = 0;

	if (size <= READ_CAP) {
		for (uint64_t off = 0; off < size;) {
			size_t len = chunk(rng);

			read_checked(d, len, off);
			off += len;
		}
	} else {
		read_checked(d, MAX_CHUNK, 0);
		read_checked(d, MAX_CHUNK, size - 1000);
		while (total < READ_CAP) {
			size_t len = chunk(rng);

			read_checked(d, len, th_rand_below(rng, size));
			total += len;
		}
	}
	read_checked(d, 4096, size);
	read_checked(d, 1, size + th_rand_below(rng, 1u << 20));
	if (size && th_rand_below(rng, 4) == 0) {
		/* Same bytes twice: no state leaks between reads. */
		size_t len = (size_t)(size < 65536 ? size : 65536);
		uint64_t off = th_rand_below(rng, size - len + 1);

		if (vhd_pread(d, rbuf, len, off) == (ssize_t)len &&
		    vhd_pread(d, rbuf2, len, off) == (ssize_t)len)
			CHECK(!memcmp(rbuf, rbuf2, len),
			      "two reads of %zu at %llu differ", len,
			      (unsigned long long)off);
	}
}

static void exercise_writes(uint64_t *rng, struct vhd_disk *d)
{
	uint64_t size = vhd_size(d);
	int n = 1 + (int)th_rand_below(rng, 4);

	for (int i = 0; i < n && size; i++) {
		uint64_t off = th_rand_below(rng, size);
		/* Inside one sector: a layout however odd cannot split it. */
		size_t len = 1 + th_rand_below(rng, 512 - off % 512);
		size_t want = size - off < len ? size - off : len;
		uint8_t buf[512];
		ssize_t r;

		th_rand_fill(rng, buf, len);
		r = vhd_pwrite(d, buf, len, off);
		if (r < 0) {
			check_error(r, "vhd_pwrite");
			continue;
		}
		CHECK(r == (ssize_t)want, "write %zu at %llu of %llu: %zd", len,
		      (unsigned long long)off, (unsigned long long)size, r);
		check_clean("vhd_pwrite");
		writes_ok++;
		r = vhd_pread(d, rbuf, want, off);
		CHECK(r == (ssize_t)want, "read back %zu at %llu: %zd (%s)",
		      want, (unsigned long long)off, r, vhd_errmsg());
		CHECK(!memcmp(rbuf, buf, want),
		      "write at %llu does not read back",
		      (unsigned long long)off);
	}
	if (th_rand_below(rng, 3) == 0) {
		/* Larger, possibly across blocks: only the count is checked. */
		uint64_t off = th_rand_below(rng, size ? size : 1);
		size_t len = 1 + th_rand_below(rng, 256 * TH_KIB);
		ssize_t r = vhd_pwrite(d, rbuf, len, off);

		if (r < 0)
			check_error(r, "vhd_pwrite");
		else
			CHECK(r == (ssize_t)(size - off < len ? size - off
							      : len),
			      "write %zu at %llu: %zd", len,
			      (unsigned long long)off, r);
	}
	if (th_rand_below(rng, 2)) {
		int r = vhd_flush(d);

		if (r)
			check_error(r, "vhd_flush");
		else
			check_clean("vhd_flush");
	}
}

static void exercise(uint64_t *rng, struct vhd_disk *d, bool rdwr)
{
	struct vhd_info info;
	struct vhd_locator_info loc;
	uint64_t size = vhd_size(d);
	char parent[4096];
	int n, r;

	r = vhd_get_info(d, &info);
	CHECK(r == 0, "vhd_get_info: %d", r);
	CHECK(info.current_size == size, "info size %llu, vhd_size %llu",
	      (unsigned long long)info.current_size, (unsigned long long)size);
	CHECK(info.type == vhd_type(d), "info type %d", info.type);
	CHECK(info.type == VHD_TYPE_FIXED || info.type == VHD_TYPE_DYNAMIC ||
		      info.type == VHD_TYPE_DIFF,
	      "type %d opened", info.type);
	CHECK(size <= VHD_MAX_SIZE, "size %llu opened",
	      (unsigned long long)size);
	CHECK(info.allocated_blocks <= info.max_table_entries,
	      "%u blocks allocated of %u", info.allocated_blocks,
	      info.max_table_entries);

	n = vhd_locator_count(d);
	CHECK(n >= 0 && n <= 8, "%d locators", n);
	for (int i = 0; i < n; i++) {
		r = vhd_get_locator(d, i, &loc);
		CHECK(r != -ENOENT, "locator %d of %d: -ENOENT", i, n);
		if (r < 0)
			check_error(r, "vhd_get_locator");
		else
			CHECK(memchr(loc.path, 0, sizeof(loc.path)) && loc.code,
			      "locator %d: bad result", i);
	}
	r = vhd_find_parent(d, parent, sizeof(parent));
	if (r < 0)
		check_error(r, "vhd_find_parent");
	else
		check_clean("vhd_find_parent");
	if (r == 0)
		CHECK(info.type == VHD_TYPE_DIFF && parent[0],
		      "vhd_find_parent of a %s disk: %d",
		      vhd_type_name(info.type), r);

	exercise_reads(rng, d);
	exercise_seek(d, 0);
	for (int i = 0; i < 3; i++)
		exercise_seek(d, th_rand_below(rng, size + 1024));
	if (size)
		exercise_seek(d, size - 1);
	exercise_seek(d, size);
	if (rdwr)
		exercise_writes(rng, d);
	else
		CHECK(vhd_pwrite(d, rbuf, 1, 0) == -EROFS,
		      "write to a read-only handle");
}

static void report_line(void *ctx, const char *msg)
{
	CHECK(msg && msg[0], "empty vhd_check report line");
	(*(int *)ctx)++;
}

static void try_image(uint64_t *rng, const char *path, int flags)
{
	struct vhd_disk *d = NULL;
	int r = vhd_open(path, flags, &d);

	if (r) {
		refused++;
		check_error(r, "vhd_open");
		if (it.verbose)
			print_message("  refused: %s\n", vhd_errmsg());
		return;
	}
	assert_non_null(d);
	check_clean("vhd_open");
	opened++;
	rdwr_opened += !!(flags & VHD_OPEN_RDWR);
	exercise(rng, d, flags & VHD_OPEN_RDWR);
	r = vhd_close(d);
	if (r)
		check_error(r, "vhd_close");
	else
		check_clean("vhd_close");
}

static void one_iteration(uint64_t seed, long iter)
{
	static const char *const scen[] = {"dynamic", "child", "parent",
					   "fixed",   "hand",  "small",
					   "grand"};
	uint64_t rng = seed ^ ((uint64_t)iter + 1) * 0xD1B54A32D192ED03ull;
	uint64_t sc;
	const char *victim;
	int lines = 0, r;

	th_rand(&rng);
	for (int i = 0; i < S_COUNT; i++)
		unlink(th_path(work_dir, seed_names[i]));
	it.iter = iter;
	it.loglen = 0;
	it.log[0] = 0;
	memset(it.names, 0, sizeof(it.names));
	sc = th_rand_below(&rng, 7);
	it.scenario = scen[sc];
	it.names[1] = "base.vhd";
	switch (sc) {
	case 0:
		make_victim(&rng, S_BASE, true);
		victim = "base.vhd";
		break;
	case 1:
		make_victim(&rng, S_CHILD, true);
		victim = "child.vhd";
		break;
	case 2: /* the parent damaged, the child maybe too */
		make_victim(&rng, S_BASE, true);
		make_victim(&rng, S_CHILD, th_rand_below(&rng, 3) == 0);
		victim = "child.vhd";
		break;
	case 3:
		make_victim(&rng, S_FIXED, true);
		victim = "fixed.vhd";
		break;
	case 4:
		if (th_rand_below(&rng, 3) == 0)
			make_victim(&rng, S_BASE, true);
		make_victim(&rng, S_HAND, true);
		victim = "hand.vhd";
		break;
	case 5:
		make_victim(&rng, S_SMALL, true);
		victim = "small.vhd";
		break;
	default: {
		uint64_t which = th_rand_below(&rng, 3);

		make_victim(&rng, S_CHILD, which != 0);
		make_victim(&rng, S_GRAND, which != 1);
		victim = "grand.vhd";
		it.names[2] = "child.vhd";
		break;
	}
	}
	it.names[0] = victim;
	if (it.verbose)
		print_message("iteration %ld (%s): %s\n", iter, it.scenario,
			      it.log);

	victim = th_path(work_dir, victim);
	try_image(&rng, victim,
		  th_rand_below(&rng, 8) ? VHD_OPEN_RDONLY
					 : VHD_OPEN_RDONLY | VHD_OPEN_NOPARENT);
	if (th_rand_below(&rng, 3) == 0)
		try_image(&rng, victim, VHD_OPEN_RDWR);
	r = vhd_check(victim, report_line, &lines);
	if (r < 0)
		check_error(r, "vhd_check");
	else
		CHECK(r <= lines, "vhd_check: %d problems in %d lines", r,
		      lines);
	if (r >= 0)
		check_clean("vhd_check");
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

static void test_hostile_images(void **state)
{
	const char *v = getenv("VHD_HOSTILE_SEED");
	long iters = env_long("VHD_HOSTILE_ITERS", DEFAULT_ITERS);
	long only = env_long("VHD_HOSTILE_ONLY", -1);

	it.seed = v && *v ? strtoull(v, NULL, 0) : DEFAULT_SEED;
	it.verbose = env_long("VHD_HOSTILE_VERBOSE", 0) != 0;
	print_message("hostile: seed %llu, %ld iterations (set "
		      "VHD_HOSTILE_SEED / VHD_HOSTILE_ITERS to change)\n",
		      (unsigned long long)it.seed, iters);
	rbuf = malloc(MAX_CHUNK + 4096);
	rbuf2 = malloc(65536);
	build_seeds(DIR_);
	for (long i = 0; i < iters; i++)
		if (only < 0 || i == only)
			one_iteration(it.seed, i);
	for (int i = 0; i < S_COUNT; i++) {
		CHECK(th_file_hash(th_path(seed_dir, seed_names[i])) ==
			      seeds[i].hash,
		      "seed %s changed: a parent was written", seed_names[i]);
		free(seeds[i].buf);
	}
	print_message("hostile: %ld opened (%ld writable), %ld refused, "
		      "%ld writes read back, %ld seeks\n",
		      opened, rdwr_opened, refused, writes_ok, seeks_done);
	for (int k = 0; k < nkinds; k++)
		print_message("hostile: %ld x %s (first: %s)\n", kinds[k].count,
			      kinds[k].key, kinds[k].first);
	assert_true(opened > 0 && refused > 0);
	if (violations)
		fail_msg("%ld broken promises of %d kinds (listed above)",
			 violations, nkinds);
	free(rbuf);
	free(rbuf2);
	free(mbuf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hostile_images,
						th_setup_dir, th_teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
