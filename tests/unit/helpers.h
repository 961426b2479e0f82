/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the unit tests: temporary directories, raw big-endian
 * structures, images built by hand (so tests do not trust the library to
 * build what it is tested on), file comparison, a seeded PRNG and a
 * fault-injecting vhd_io_ops table. Every helper aborts the test (cmocka
 * fail) on an unexpected system error, so callers need not check.
 */
#ifndef TESTS_HELPERS_H
#define TESTS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vhd.h"

#define TH_KIB 1024ull
#define TH_MIB (1024ull * 1024)
#define TH_GIB (1024ull * 1024 * 1024)

#define TH_FOOTER_SIZE 512
#define TH_HEADER_SIZE 1024
#define TH_UNALLOC 0xFFFFFFFFu
#define TH_W2RU 0x57327275u
#define TH_W2KU 0x57326B75u
#define TH_MACX 0x4D616358u

/* --- temporary directories and paths ----------------------------------- */

/* mkdtemp under $TMPDIR (or /tmp); returns a malloc'd path. */
char *th_tmpdir(void);
/* rm -rf of a directory made by th_tmpdir (no symlink following). */
void th_rmtree(const char *dir);
/* dir/name in one of 32 rotating static buffers (valid for a while). */
const char *th_path(const char *dir, const char *name);
bool th_exists(const char *path);
/* Number of directory entries other than . and .. */
int th_count_entries(const char *dir);

/* --- raw file access --------------------------------------------------- */

uint64_t th_file_size(const char *path);
/* Whole file, malloc'd; *len receives its size (may be NULL). */
uint8_t *th_read_file(const char *path, size_t *len);
void th_write_file(const char *path, const void *buf, size_t len);
void th_pread_raw(const char *path, void *buf, size_t len, uint64_t off);
void th_pwrite_raw(const char *path, const void *buf, size_t len, uint64_t off);
void th_truncate(const char *path, uint64_t size);
void th_copy_file(const char *from, const char *to);
/* FNV-1a 64 of the contents, and the size, for "file unchanged" checks. */
uint64_t th_file_hash(const char *path);
/* Set the file's mtime (seconds since the Unix epoch). */
void th_set_mtime(const char *path, time_t t);
time_t th_mtime(const char *path);

/* --- big-endian fields, checksums, geometry ---------------------------- */

void th_be16(uint8_t *p, uint16_t v);
void th_be32(uint8_t *p, uint32_t v);
void th_be64(uint8_t *p, uint64_t v);
uint16_t th_get_be16(const uint8_t *p);
uint32_t th_get_be32(const uint8_t *p);
uint64_t th_get_be64(const uint8_t *p);
/* Ones' complement byte sum with the 4 bytes at @cks_off taken as zero. */
uint32_t th_checksum(const uint8_t *buf, size_t len, size_t cks_off);
/* CRC-32C (VHDX), bitwise: an oracle independent of the library's table. */
uint32_t th_crc32c(const uint8_t *p, size_t len);
/* Recompute and store footer (512, at 64) / header (1024, at 36) sums. */
void th_fix_footer_cksum(uint8_t *footer);
void th_fix_header_cksum(uint8_t *header);
/* CHS per the specification's appendix, packed as the footer stores it. */
uint32_t th_chs(uint64_t size);
/* ASCII to UTF-16 (BE or LE) into @out; returns bytes written. */
size_t th_utf16(uint8_t *out, const char *s, bool big_endian);
/* UTF-16 (BE or LE) of @len bytes back to ASCII (non-ASCII -> '?'). */
void th_from_utf16(char *out, const uint8_t *in, size_t len, bool big_endian);

/* --- images built by hand ---------------------------------------------- */

struct th_spec {
	enum vhd_type type;
	uint64_t size;	     /* current = original size */
	uint32_t block_size; /* 0 = 2 MiB */
	uint8_t uuid[16];    /* all-zero = random */
	/* differencing: */
	uint8_t parent_uuid[16];
	uint32_t parent_ts;
	const char *parent_name;    /* unicode name (BE); NULL = none */
	const char *w2ru;	    /* payload as stored, e.g. ".\\b.vhd" */
	const char *w2ku;	    /* payload as stored */
	bool locator_space_sectors; /* data space in sectors, not bytes */
	const char *creator;	    /* 4 chars; NULL = "tst " */
	/* Malformed images are made by patching a valid one afterwards. */
};

/* Geometry of a hand-built dynamic/differencing image (from its header). */
struct th_layout {
	uint64_t table_offset;
	uint32_t max_table_entries;
	uint32_t block_size;
	uint32_t bitmap_size; /* padded to 512 */
	uint64_t size;
};

/* Write a valid image per @spec (fixed: zero data). */
void th_build(const char *path, const struct th_spec *spec);
/* Read the layout of any dynamic/differencing image from its header. */
void th_layout_of(const char *path, struct th_layout *l);
/*
 * Allocate block @blk of a dynamic/differencing image at end of file, the
 * way another writer would: @bitmap (bitmap_size bytes, NULL = all ones)
 * and @data (block_size bytes, NULL = zeros); BAT updated, footer moved.
 * @align: data start alignment (0 = right after the bitmap).
 */
void th_alloc_block(const char *path, uint32_t blk, const uint8_t *bitmap,
		    const uint8_t *data, uint32_t align);
/* Raw footer (trailing) and header of a file. */
void th_read_footer(const char *path, uint8_t footer[512]);
void th_read_header(const char *path, uint8_t header[1024]);
/* Rewrite header/footer (both copies) with fixed checksums. */
void th_write_header(const char *path, const uint8_t header[1024]);
void th_write_footers(const char *path, const uint8_t footer[512]);
void th_random_uuid(uint8_t uuid[16]);
/* Fill with the content every image of these tests can be checked by. */
void th_fill_pattern(uint8_t *buf, size_t len, uint64_t off, uint32_t tag);

/* --- library helpers --------------------------------------------------- */

/* vhd_create that must succeed. */
void th_create(const char *path, enum vhd_type type, uint64_t size,
	       uint32_t block_size);
void th_create_diff(const char *child, const char *parent);
struct vhd_disk *th_open(const char *path, int flags);
/* Read the whole virtual disk into a malloc'd buffer. */
uint8_t *th_read_all(struct vhd_disk *d);
/* vhd_pwrite that must succeed fully. */
void th_write(struct vhd_disk *d, const void *buf, size_t len, uint64_t off);
/* Check that @d reads @expect of @len bytes at @off (memcmp, first diff). */
void th_expect_read(struct vhd_disk *d, const uint8_t *expect, size_t len,
		    uint64_t off);
/* Does vhd_errmsg() contain @word (case-insensitive)? Prints it if not. */
bool th_msg_has(const char *word);

/* cmocka setup/teardown: *state = a fresh th_tmpdir(), removed after. */
int th_setup_dir(void **state);
int th_teardown_dir(void **state);
/*
 * vhd_open(@path, @flags) must fail with -@err (or -@alt_err when non-zero)
 * and leave a message naming the file (its base name) that contains one of
 * the NULL-terminated @words (case-insensitive).
 */
void th_open_fails(const char *path, int flags, int err, int alt_err,
		   const char *const *words);
#define TH_WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* Message contains the base name of @path. */
bool th_msg_names(const char *path);

/* --- seeded randomness -------------------------------------------------- */

/* Seed from env var @env if set, else from time; prints it. */
uint64_t th_seed(const char *env, const char *test);
uint64_t th_rand(uint64_t *state);
/* Uniform in [0, n). */
uint64_t th_rand_below(uint64_t *state, uint64_t n);
void th_rand_fill(uint64_t *state, uint8_t *buf, size_t len);

/* --- fault injection --------------------------------------------------- */

enum th_cut_mode {
	TH_CUT_KEEP,	      /* writes before the cut stay (the I/O failed) */
	TH_CUT_LOSE_UNSYNCED, /* power loss: every unsynced write undone */
	/* power loss with reordering: only the newest unsynced write landed */
	TH_CUT_KEEP_NEWEST,
};
/*
 * Install an io ops table that counts pwrite calls. With @cut >= 0 the
 * (cut+1)-th pwrite and every later pwrite/fsync fail with -EIO (so @cut
 * writes succeed); at that moment @mode decides which of the writes not
 * followed by a successful fsync of their fd survive. @cut < 0 counts
 * only. fsync itself is not passed to the disk (the undo log stands in for
 * durability), which keeps cut sweeps fast.
 */
void th_fault_install(long cut, enum th_cut_mode mode);
/*
 * Same, but fsync calls count as events too (th_fault_writes() counts
 * both): a cut can fall between a write and the sync after it, where a
 * power loss reorders the writes not yet synced.
 */
void th_fault_install_events(long cut, enum th_cut_mode mode);
/*
 * Power loss now (install with a large @cut and TH_CUT_LOSE_UNSYNCED): undo
 * every write not followed by a successful fsync of its file, even if the
 * library has closed it since; later pwrite/fsync fail.
 */
void th_fault_power_loss(void);
/* pwrite calls seen (successful or failed) since install. */
long th_fault_writes(void);
bool th_fault_tripped(void);
/* Restore the system calls (any undo happened at the cut). */
void th_fault_remove(void);

#endif
