/* SPDX-License-Identifier: MIT */
/* Private structures of libvhd. Nothing outside vhd/ includes this. */
#ifndef VHD_I_H
#define VHD_I_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "vhd.h"

#define VHD_FOOTER_SIZE 512u
#define VHD_HEADER_SIZE 1024u
#define VHD_LOCATOR_COUNT 8
#define VHD_BAT_UNUSED 0xFFFFFFFFu
#define VHD_NAME_UNITS 256 /* UTF-16 code units in the parent name */
/* Block data is placed on 4 KiB boundaries (what Hyper-V does). */
#define VHD_DATA_ALIGN 4096u
#define VHD_MIN_BLOCK_SIZE 512u
#define VHD_MAX_BLOCK_SIZE (256u << 20)
/*
 * BAT entries a disk may use: enough for 2040 GiB in 512 KiB blocks (what
 * Hyper-V makes). Only tiny blocks on huge disks need more, and honouring
 * them would let a sparse hostile file cost gigabytes of memory at open.
 */
#define VHD_MAX_USED_ENTRIES (1u << 22)
/* A locator payload longer than this is not a path. */
#define VHD_MAX_LOCATOR_LEN 65536u

#define VHD_CODE(a, b, c, d)                                                   \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 |      \
	 (uint32_t)(d))
#define VHD_PLAT_W2RU VHD_CODE('W', '2', 'r', 'u')
#define VHD_PLAT_W2KU VHD_CODE('W', '2', 'k', 'u')
#define VHD_PLAT_MACX VHD_CODE('M', 'a', 'c', 'X')
#define VHD_PLAT_WI2R VHD_CODE('W', 'i', '2', 'r')
#define VHD_PLAT_WI2K VHD_CODE('W', 'i', '2', 'k')
#define VHD_OS_WINDOWS VHD_CODE('W', 'i', '2', 'k')

/* Decoded footer (native byte order). */
struct vhd_footer {
	char cookie[8];
	uint32_t features;
	uint32_t version;
	uint64_t data_offset;
	uint32_t timestamp;
	char creator_app[4];
	uint32_t creator_version;
	uint32_t creator_os;
	uint64_t original_size;
	uint64_t current_size;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors_per_track;
	uint32_t disk_type;
	uint32_t checksum;
	uint8_t uuid[16];
	uint8_t saved_state;
	/* Kept as read: blktap stores its "hidden" flag at offset 85. */
	uint8_t reserved[VHD_FOOTER_SIZE - 85];
};

struct vhd_locator {
	uint32_t code;
	uint32_t data_space; /* as stored: sectors or bytes */
	uint32_t data_length;
	uint32_t reserved;
	uint64_t data_offset;
};

/* Decoded dynamic header (native byte order). */
struct vhd_header {
	char cookie[8];
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t version;
	uint32_t max_table_entries;
	uint32_t block_size;
	uint32_t checksum;
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	uint16_t parent_name[VHD_NAME_UNITS]; /* native code units */
	struct vhd_locator loc[VHD_LOCATOR_COUNT];
};

struct vhd_disk {
	char *path;
	int fd;
	int flags;
	dev_t dev;
	ino_t ino;
	struct vhd_footer footer;
	struct vhd_header header; /* dynamic and differencing only */
	bool footer_from_copy;
	bool parent_ts_mismatch;
	uint64_t size; /* virtual size */
	uint32_t block_size;
	uint32_t bitmap_size; /* bytes, padded to a sector */
	uint32_t sectors_per_block;
	uint32_t entries; /* BAT entries in use: ceil(size/block_size) */

	/*
	 * Taken for writing by vhd_pwrite/vhd_flush and for reading by
	 * vhd_pread, only on images opened VHD_OPEN_RDWR: read-only images
	 * (every parent) never change, so their reads take no lock.
	 * Lock order: leaf before parents (parents are never locked).
	 */
	pthread_rwlock_t lock;
	uint32_t *bat;	     /* protected by lock */
	uint64_t footer_off; /* trailing footer; protected by lock */
	/*
	 * Where the next new block goes (0: at footer_off, not yet known).
	 * Below footer_off when space is reserved for new blocks: a hole no
	 * BAT entry references, given back by vhd_close(). Protected by lock.
	 */
	uint64_t alloc_end;
	/* Cached bitmaps, filled lazily with compare-and-swap so readers of
	 * read-only images need no lock. Writers set bits of allocated
	 * blocks under the shared lock (vhd_bit_set_atomic); anything else
	 * changes only under the write lock. */
	_Atomic(uint8_t *) *bitmaps;
	/*
	 * Blocks whose BAT entry or bitmap changed in memory but not yet on
	 * disk (writable images only; protected by lock, appended to under
	 * the shared lock with atomics by write_allocated). Metadata reaches
	 * the file only in vhd_flush, after the data it describes is
	 * durable, so a crash can never expose unwritten sectors.
	 */
	uint32_t *dirty;
	uint32_t ndirty;
	uint8_t *dirty_flag; /* per block: queued in dirty[] */

	struct vhd_disk *parent;
	/* A VHDX image (read-only): the fields above hold only path, flags,
	 * dev/ino, size, block_size, footer.disk_type/sizes/uuid, parent;
	 * reads and info dispatch to vhdx_*. NULL for a VHD. */
	struct vhdx *vhdx;
};

/* error.c */
int vhd_set_error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Every public call that can fail starts with vhd_clear_error() (vhd.h). */

/* fileio.c: full-length transfers through the (injectable) ops table. */
int vhd_io_read(int fd, void *buf, size_t len, uint64_t off);
int vhd_io_write(int fd, const void *buf, size_t len, uint64_t off);
int vhd_io_sync(int fd);
/* open(@dir, O_TMPFILE | @flags, @mode): an fd, or -errno. */
int vhd_io_open_tmpfile(const char *dir, int flags, mode_t mode);

/* endian helpers */
static inline uint16_t vhd_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t vhd_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t vhd_get64(const uint8_t *p)
{
	return (uint64_t)vhd_get32(p) << 32 | vhd_get32(p + 4);
}
static inline void vhd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void vhd_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void vhd_put64(uint8_t *p, uint64_t v)
{
	vhd_put32(p, (uint32_t)(v >> 32));
	vhd_put32(p + 4, (uint32_t)v);
}

/* footer.c */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off);
void vhd_footer_decode(const uint8_t *buf, struct vhd_footer *f);
void vhd_footer_encode(const struct vhd_footer *f, uint8_t *buf);
/* 0, or -EINVAL with a message naming @path and the defect. */
int vhd_footer_validate(const char *path, const uint8_t *buf, uint64_t where);
void vhd_geometry(uint64_t size, uint16_t *cyl, uint8_t *heads, uint8_t *spt);
int vhd_read_footer(struct vhd_disk *d, uint64_t file_size);

/* header.c */
void vhd_header_decode(const uint8_t *buf, struct vhd_header *h);
void vhd_header_encode(const struct vhd_header *h, uint8_t *buf);
int vhd_read_header(struct vhd_disk *d, uint64_t file_size);

/* bat.c */
/* Bounds of the table itself were checked by vhd_read_header. */
int vhd_bat_load(struct vhd_disk *d);
int vhd_bat_write_entry(struct vhd_disk *d, uint32_t block);
int vhd_bat_alloc_dirty(struct vhd_disk *d);
uint32_t vhd_bat_allocated(const struct vhd_disk *d);

/* bitmap.c */
/* Cached bitmaps of writable images gain bits under the shared lock
 * (vhd_bit_set_atomic): bytes are read atomically. */
static inline bool vhd_bit_test(const uint8_t *map, uint32_t i)
{
	return __atomic_load_n(&map[i / 8], __ATOMIC_RELAXED) &
	       (0x80 >> (i % 8));
}
static inline void vhd_bit_set(uint8_t *map, uint32_t i)
{
	map[i / 8] |= (uint8_t)(0x80 >> (i % 8));
}
/* Set bit @i against concurrent setters; whether it was clear. */
static inline bool vhd_bit_set_atomic(uint8_t *map, uint32_t i)
{
	uint8_t bit = (uint8_t)(0x80 >> (i % 8));

	return !(__atomic_fetch_or(&map[i / 8], bit, __ATOMIC_RELAXED) & bit);
}
/* Cached bitmap of an allocated block (loads it on first use). */
int vhd_bitmap_get(struct vhd_disk *d, uint32_t block, uint8_t **out);
/* Length of the run of sectors from @first (< @end) with the same bit. */
uint32_t vhd_bitmap_run(const uint8_t *map, uint32_t first, uint32_t end,
			bool *set);
void vhd_bitmap_free(struct vhd_disk *d);

/* locator.c */
/* Platform code as 4 printable characters ('?' for others). */
void vhd_code_str(uint32_t code, char out[5]);
uint32_t vhd_locator_space_bytes(const struct vhd_locator *l);
int vhd_locators_validate(struct vhd_disk *d, uint64_t file_size);
int vhd_locator_decode(const struct vhd_disk *d, int slot, char *out,
		       size_t len);
int vhd_utf16_to_utf8(const uint8_t *in, size_t units, bool big_endian,
		      char *out, size_t len);
/* Returns the number of UTF-16 units written, or -EINVAL/-ENAMETOOLONG. */
int vhd_utf8_to_utf16(const char *in, bool big_endian, uint8_t *out,
		      size_t max_units);
void vhd_parent_name_utf8(const struct vhd_header *h, char *out, size_t len);
/* Value of a hexadecimal digit, or -1. */
int vhd_hexval(char c);

/*
 * resolve.c: open the file at @path for the library with @oflags
 * (O_RDONLY/O_RDWR), walking it one component at a time past the excluded
 * tree of vhd_set_path_redirect(), never following the last component
 * into a FIFO or device, and never blocking (O_NONBLOCK until checked).
 * Only regular files not on a kernel pseudo file system (/proc, /sys)
 * pass: -EINVAL "not a regular file" otherwise. Returns the descriptor
 * (close-on-exec), fills *@st, and sets *@used (malloc'ed, may be NULL) to
 * the path used: @path itself, or its canonical redirected form.
 */
int vhd_file_open(const char *path, int oflags, struct stat *st, char **used);

/*
 * resolve.c: open directory @path for reading (O_RDONLY | O_DIRECTORY,
 * close-on-exec), walked as vhd_file_open() walks: never looked up inside
 * the excluded tree, -EXDEV for one on the excluded device, -ENOTDIR for
 * anything else. Returns the descriptor (for fdopendir) or -errno with a
 * message.
 */
int vhd_dir_open(const char *path);

/*
 * Windows compares file names without case, so a locator may say
 * BASE.VHD for base.vhd: calls @try with each file beside @path whose
 * name differs from @path's only in case, until @try returns 0 or
 * -errno, which is returned; 1 when no call did (or the directory
 * cannot be listed).
 */
int vhd_each_case_variant(const char *path,
			  int (*try)(void *ctx, const char *cand), void *ctx);

/*
 * lock.c: OFD locks shared with other processes (and qemu, which uses the
 * same bytes). A writer holds "consistent read" and "write" and does not
 * share "write"; a parent of an open chain holds "consistent read" and
 * does not share "write". -EBUSY with a message naming @path on conflict;
 * 0 where the file system has no OFD locks.
 */
int vhd_lock_writer(int fd, const char *path);
int vhd_lock_parent(int fd, const char *path);
/* True when another open file description holds @fd's file for writing. */
bool vhd_lock_written_elsewhere(int fd);

/* Private open flag: lock the leaf itself as a parent (it is about to get
 * a child). */
#define VHD_OPEN_I_PARENT 0x100

/*
 * What a child stores about its parent, as vhd_create_diff writes it: bare
 * file name (native code units), parent mtime (VHD epoch), W2ku (absolute)
 * and W2ru (relative to @child's directory) payloads in UTF-16LE with
 * backslashes. @child need not exist; its directory must. The payloads
 * are malloc'd: release with vhd_parent_ref_free (also after a failure).
 */
struct vhd_parent_ref {
	uint16_t name[VHD_NAME_UNITS];
	uint32_t timestamp;
	uint8_t *w2ku, *w2ru;
	uint32_t w2ku_len, w2ru_len; /* bytes */
};
int vhd_parent_ref_make(const char *child, const char *parent,
			struct vhd_parent_ref *ref);
void vhd_parent_ref_free(struct vhd_parent_ref *ref);

/* progress.c: a long operation's progress (units of its choice). */
struct vhd_progress {
	vhd_progress_fn fn; /* may be NULL */
	void *ctx;
	uint64_t done, total;
	const char *path, *what; /* for "PATH: WHAT cancelled" */
};
/* Add @add done (capped at total) and report; -ECANCELED when asked. */
int vhd_progress_add(struct vhd_progress *p, uint64_t add);
/* The final report (done = total), after which nothing is cancelled. */
void vhd_progress_end(struct vhd_progress *p);

/* relocate.c: moving blocks and the footer, crash-safely. */
/*
 * -EPERM with the saved-state flag, -EINVAL when the trailing footer is
 * damaged (repair first): an image in either state is not rewritten.
 */
int vhd_check_rewritable(const struct vhd_disk *d);
/* Where a block's bitmap goes at or after @from (data 4 KiB aligned). */
uint64_t vhd_block_place(const struct vhd_disk *d, uint64_t from);
/* Bytes a block takes in the file: bitmap + data. */
uint64_t vhd_block_span(const struct vhd_disk *d);
/* Write/sync with a message naming the file on failure. */
int vhd_write_named(struct vhd_disk *d, const void *buf, size_t len,
		    uint64_t off);
int vhd_sync_named(struct vhd_disk *d);
/*
 * Write the footer at @off and sync; when @off is below the current footer
 * the file is then cut after it (and synced). Updates d->footer_off and
 * ends any room reserved for new blocks: the next one goes at the footer.
 */
int vhd_footer_move(struct vhd_disk *d, uint64_t off);
/*
 * Copy block @block to byte offset @dest (free space, sector aligned),
 * sync, point its BAT entry there (memory and file), sync. Only then may
 * the caller reuse the old place.
 */
int vhd_block_move(struct vhd_disk *d, uint32_t block, uint64_t dest);

/* map.c: what supplies byte @off of @d (at chain level @depth). */
struct vhd_where {
	struct vhd_disk *disk; /* NULL: no image holds it (zeros) */
	int depth;
	uint64_t file_off; /* in disk's file */
	uint64_t end;	   /* the same answer holds up to here (<= limit) */
};
int vhd_locate(struct vhd_disk *d, uint64_t off, uint64_t limit, int depth,
	       struct vhd_where *w);

/*
 * repair.c: vhd_repair's walk without writing: each defect is reported
 * with "(fixable by vhd repair[ --checksums])". Returns the number found.
 */
int vhd_repair_scan(const char *path, vhd_report_fn report, void *ctx);

/* repair.c: what a repair walk of either format says. */
struct vhd_fixer {
	const char *path;
	unsigned flags; /* VHD_REPAIR_* */
	bool dry;	/* only report, as vhd_check does */
	vhd_report_fn report;
	void *ctx;
	int changes, found;
};
void vhd_fixer_say(struct vhd_fixer *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * A defect @what: in a dry run, reported with what fixes it ("(fixable by
 * vhd repair[ --checksums])"); else reported with @action, or as left
 * alone when only --checksums (@checksum) may fix it. Returns whether to
 * write the fix.
 */
bool vhd_fixer_defect(struct vhd_fixer *f, bool checksum, const char *what,
		      const char *action);
/* vhd_errmsg() without a leading "@path: ". */
const char *vhd_errmsg_reason(const char *path);

/* layout.c */
/* One extent of a file's layout, [start, end): a structure @what (with
 * @index, UINT64_MAX for the only one), or block @index when @what is NULL. */
struct vhd_span {
	uint64_t start, end;
	const char *what;
	uint64_t index;
};
/* The extent one sort key of vhd_layout_sweep stands for. */
typedef void (*vhd_span_fn)(const void *arg, uint64_t key,
			    struct vhd_span *out);
/* Sort keys ascending (O(n log n)). */
void vhd_layout_sort(uint64_t *keys, uint64_t n);
/*
 * Every overlap among @meta (@nmeta structures, any order; sorted in
 * place) and the blocks @keys stand for (through @span; sorted so that
 * their starts ascend) goes to @fn as "PATH: X overlaps Y", stopping after
 * @max (0: all). Returns the number found; no I/O, no allocation.
 */
int vhd_layout_sweep(const char *path, struct vhd_span *meta, int nmeta,
		     const uint64_t *keys, uint64_t nkeys, vhd_span_fn span,
		     const void *arg, int max, vhd_report_fn fn, void *ctx);
/*
 * Overlaps between the footer copy, header, BAT, locator payloads and
 * allocated blocks of a dynamic/differencing image (BAT loaded): @fn gets
 * one message per overlap ("PATH: block N at offset X overlaps ..."),
 * stopping after @max (0: all). Returns the number found, or -ENOMEM.
 * O(n log n) in the allocated blocks; no I/O.
 */
int vhd_layout_overlaps(const struct vhd_disk *d, int max, vhd_report_fn fn,
			void *ctx);

/* chain.c */
/* @u as 8-4-4-4-12 lowercase hex, bytes in stored order. */
void vhd_uuid_str(const uint8_t *u, char out[37]);
int vhd_open_one(const char *path, int flags, struct vhd_disk **out);
void vhd_close_one(struct vhd_disk *d);
/*
 * Close @disk (flushing as vhd_close) after an operation that returned
 * @r: a failure's message survives the close. Returns @r, or the close's
 * result when @r is 0.
 */
int vhd_close_keep(struct vhd_disk *disk, int r);
/* Close a read-only chain without touching the error message. */
void vhd_close_chain(struct vhd_disk *d);

/* io.c: pending metadata to disk and sync; caller holds the write lock. */
int vhd_flush_locked(struct vhd_disk *d);
/* io.c: give back space reserved for new blocks; caller holds the write
 * lock and has flushed. */
int vhd_trim_locked(struct vhd_disk *d);
/*
 * io.c: what sectors absent from @d read as: the parent's (resolved down
 * its chain), or zeros when @d has no parent. Shared by VHD and VHDX.
 */
int vhd_read_below(struct vhd_disk *d, uint8_t *buf, size_t len, uint64_t off);
/* io.c: internal read of a byte range; caller holds the lock if any. */
int vhd_read_resolved(struct vhd_disk *d, uint8_t *buf, size_t len,
		      uint64_t off);

/*
 * create.c, for images built by long operations (convert): validate as
 * vhd_create_ex does and build the empty image as a temporary that has no
 * name at @path yet (an O_TMPFILE, or a hidden name beside @path), owned
 * as @opts says and, when @source is given, never readable by anyone who
 * cannot read @source's chain. vhd_open_one_fd(@u->fd, ...) opens it.
 * vhd_link_unlinked() then syncs it and links it to @path when @r is 0
 * (never replacing a file: -EEXIST), or discards it; it returns the
 * outcome and releases @u either way.
 */
/*
 * chain.c: one image (no parents) from a file already open at @fd (which
 * stays the caller's; the handle keeps a duplicate); @name is its path in
 * messages. For files that have no name yet (vhd_create_unlinked).
 */
int vhd_open_one_fd(int fd, const char *name, int flags, struct vhd_disk **out);

struct tmpfile;
struct vhd_unlinked {
	int fd; /* the temporary, open read-write; owned by @tmp */
	struct tmpfile *tmp;
};
int vhd_create_unlinked(const char *path, const struct vhd_create_params *p,
			const struct vhd_create_opts *opts,
			const struct vhd_disk *source, struct vhd_unlinked *u);
int vhd_link_unlinked(struct vhd_unlinked *u, const char *path,
		      const struct vhd_create_opts *opts, int r);

/*
 * merge.c, for check.c: 1 and a message in @msg when a merge journal next
 * to @path lists the image with unique id @uuid as a level to remove.
 */
int vhd_merge_leftover(const char *path, const uint8_t uuid[16], char *msg,
		       size_t len);

static inline uint64_t vhd_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* Does @buf hold only zero bytes? (An empty buffer does.) */
static inline bool vhd_all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

#endif
