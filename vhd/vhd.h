/* SPDX-License-Identifier: MIT */
/*
 * libvhd: the vhdfs core library. Reads, writes and creates VHD 1.0 images
 * (fixed, dynamic, differencing) and resolves differencing chains.
 *
 * Conventions, for every function below unless it says otherwise:
 * - Returns 0 (or a byte count) on success and -errno on failure. On
 *   failure a human-readable message naming the file and the defect is
 *   left in a thread-local buffer, readable with vhd_errmsg(); every call
 *   that can fail clears it first, so it is non-empty exactly after a
 *   failure.
 * - Handles are opaque. A handle is safe for concurrent vhd_pread() calls
 *   from many threads; vhd_pwrite()/vhd_flush() may run concurrently with
 *   reads and with each other (a per-image rwlock serialises writers; reads
 *   of other images in the chain take no lock at all).
 * - Errors used: EINVAL malformed image or argument, ENOENT file or parent
 *   missing, EEXIST target exists, ELOOP parent cycle or chain too deep,
 *   EROFS write to a handle opened read-only, ENOSPC/EFBIG size limits,
 *   EIO/others as passed up from the operating system.
 */
#ifndef VHD_H
#define VHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VHD_SECTOR_SIZE 512u
/* Largest virtual size the format allows: 2040 GiB (0xFF000000 sectors). */
#define VHD_MAX_SIZE (0xFF000000ull * VHD_SECTOR_SIZE)
/* Deepest chain vhd_open() follows, the leaf counted; deeper is ELOOP. */
#define VHD_MAX_CHAIN_DEPTH 32
#define VHD_DEFAULT_BLOCK_SIZE (2u << 20)

enum vhd_type {
	VHD_TYPE_FIXED = 2,
	VHD_TYPE_DYNAMIC = 3,
	VHD_TYPE_DIFF = 4,
};

struct vhd_disk;

/* Open flags. */
#define VHD_OPEN_RDONLY 0x0
/* Writable: only this image is ever written; parents are always read-only. */
#define VHD_OPEN_RDWR 0x1
/*
 * Do not open the parent chain. Metadata (info, locators) is available;
 * reads of a differencing image that would need the parent fail -ENOENT.
 */
#define VHD_OPEN_NOPARENT 0x2

/*
 * Open the image at @path and, unless VHD_OPEN_NOPARENT, its whole parent
 * chain. Parents are searched via W2ru (relative to the child's directory),
 * W2ku, MacX, then the parent unicode name next to the child; a candidate
 * whose unique id differs from the child's parent id is skipped. A parent
 * timestamp mismatch is reported in vhd_info, never refused.
 * The trailing footer is used, falling back to the copy at offset 0 when the
 * trailing one is unreadable or fails its checksum.
 * VHD_OPEN_RDWR refuses (-EINVAL, "block N at offset X overlaps ...") an
 * image whose blocks overlap each other or its metadata: a write would
 * corrupt the other party. Read-only opens still read such an image;
 * vhd_check lists every overlap. The check sorts the BAT once at open.
 * On success *@out owns the open files until vhd_close().
 */
int vhd_open(const char *path, int flags, struct vhd_disk **out);

/*
 * Close the image and its chain. A writable image first writes its pending
 * metadata and syncs, as vhd_flush; that result is returned (the handle is
 * freed either way).
 */
int vhd_close(struct vhd_disk *disk);

/*
 * Read @len bytes at byte offset @off of the virtual disk, resolved through
 * the chain. Any offset and length; reads past the virtual size are short
 * (return the bytes up to the end, 0 at or past it).
 */
ssize_t vhd_pread(struct vhd_disk *disk, void *buf, size_t len, uint64_t off);

/*
 * Write @len bytes at @off into this image (never into a parent). Partial
 * sectors are read-modify-write of the resolved sector. A new block goes
 * at the end of the file after the footer has moved (and been synced)
 * past it; the BAT entries and bitmap bits that make written sectors
 * visible are held in memory and written by vhd_flush()/vhd_close() only
 * after the data is durable, so a crash shows each unflushed sector either
 * old or new, never garbage. Writes past the virtual size fail -ENOSPC
 * (a write crossing the end is short); a fixed image is written in place.
 * Returns the bytes written.
 */
ssize_t vhd_pwrite(struct vhd_disk *disk, const void *buf, size_t len,
		   uint64_t off);

/*
 * Make every write acknowledged so far durable in the backing file: sync
 * the data, write pending BAT entries and bitmaps, sync again.
 */
int vhd_flush(struct vhd_disk *disk);

/*
 * Data/hole navigation over the resolved chain, as lseek(2) SEEK_DATA and
 * SEEK_HOLE: a sector is data when any image in the chain holds it (for a
 * fixed image every sector is data). Returns the offset found, or -ENXIO
 * when @off is at/after the end (SEEK_DATA: no data after @off).
 */
int64_t vhd_seek_data(struct vhd_disk *disk, uint64_t off);
int64_t vhd_seek_hole(struct vhd_disk *disk, uint64_t off);

struct vhd_info {
	enum vhd_type type;
	uint64_t current_size;	/* virtual size, bytes */
	uint64_t original_size; /* bytes */
	uint64_t file_size;	/* bytes of the backing file */
	uint32_t block_size;	/* 0 for fixed */
	uint32_t max_table_entries;
	uint32_t allocated_blocks;
	uint64_t table_offset;
	uint32_t features;
	uint32_t timestamp;  /* seconds since 2000-01-01 UTC */
	char creator_app[5]; /* NUL-terminated, e.g. "win " */
	uint32_t creator_version;
	uint32_t creator_os;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors_per_track;
	bool saved_state;
	bool footer_from_copy; /* trailing footer bad; offset-0 copy used */
	uint8_t uuid[16];
	/* differencing only: */
	uint8_t parent_uuid[16];
	uint32_t parent_timestamp;
	char parent_name[1024]; /* parent unicode name, as UTF-8 */
	/* parent file's mtime differs from parent_timestamp (informational) */
	bool parent_timestamp_mismatch;
};

int vhd_get_info(const struct vhd_disk *disk, struct vhd_info *info);

/* Path this handle was opened with, as given (or as found, for parents). */
const char *vhd_path(const struct vhd_disk *disk);
/* Opened parent, or NULL (not differencing, or VHD_OPEN_NOPARENT). */
struct vhd_disk *vhd_parent(const struct vhd_disk *disk);
/* Virtual size in bytes. */
uint64_t vhd_size(const struct vhd_disk *disk);
enum vhd_type vhd_type(const struct vhd_disk *disk);
const char *vhd_type_name(enum vhd_type type); /* "fixed", ... */

/* Parent locator entries as stored (differencing images). */
struct vhd_locator_info {
	uint32_t code; /* e.g. 0x57327275 'W2ru' */
	char code_str[5];
	uint32_t data_space; /* as stored */
	uint32_t data_length;
	uint64_t data_offset;
	char path[4096]; /* decoded payload, UTF-8, '/' separators */
};
/* Number of locator entries with a non-zero platform code. */
int vhd_locator_count(const struct vhd_disk *disk);
int vhd_get_locator(const struct vhd_disk *disk, int index,
		    struct vhd_locator_info *out);

/*
 * Find the parent file of a differencing image without opening the chain
 * (works on a VHD_OPEN_NOPARENT handle). Writes the path found (as it was
 * tried: relative locators joined to the child's directory) into @buf.
 * -ENOENT with a message listing every path tried when none exists;
 * -EINVAL when the only candidates found have another unique id.
 */
int vhd_find_parent(const struct vhd_disk *disk, char *buf, size_t len);

/* Creation. All are atomic: on failure no file is left at @path, and an
 * existing @path is never replaced (-EEXIST). */
struct vhd_create_params {
	enum vhd_type type;  /* VHD_TYPE_FIXED or VHD_TYPE_DYNAMIC */
	uint64_t size;	     /* bytes, rounded up to a sector */
	uint32_t block_size; /* dynamic: power of two 512 KiB..256 MiB;
				0 = 2 MiB */
};
int vhd_create(const char *path, const struct vhd_create_params *params);

/*
 * Create a differencing image at @child whose parent is @parent, as
 * Hyper-V's CreateDifferencingVirtualHardDisk does: creator "win ",
 * sizes and geometry of the parent, parent id copied, parent timestamp =
 * parent file mtime, unicode name = bare file name, W2ru + W2ku locators
 * with data space in bytes, block size of the parent when 512 KiB or 2 MiB
 * else 2 MiB. Costs O(BAT). The parent (and its chain) must open.
 */
int vhd_create_diff(const char *child, const char *parent);

/*
 * Progress of a long operation (merge, compact, expand, convert, validate):
 * called from the operation's thread with the bytes done so far of @total
 * (both in the operation's own unit; done <= total, non-decreasing), at
 * least once at the start and once at the end and often enough for a
 * cancel to take effect within a second. Returning non-zero asks the
 * operation to stop: it leaves the images as its crash-safety rule says
 * and returns -ECANCELED. A NULL callback means no progress is reported.
 */
typedef int (*vhd_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/*
 * Consistency check of one image (and that its chain opens). Each problem
 * found is passed to @report (may be NULL) as one message line. Returns the
 * number of problems (0 = clean), or -errno when the image cannot be read
 * at all (message in vhd_errmsg()).
 */
typedef void (*vhd_report_fn)(void *ctx, const char *msg);
int vhd_check(const char *path, vhd_report_fn report, void *ctx);

/*
 * Parse a size argument as the CLI and the control file take it: a decimal
 * byte count, optionally followed by K, M, G or T (powers of 1024, any
 * case, optional trailing "B" or "iB": 2M, 2m, 2MiB). Returns 0, -EINVAL
 * when @s is not a size, -ERANGE on 64-bit overflow. Zero is accepted.
 */
int vhd_parse_size(const char *s, uint64_t *out);

/* Last error message of this thread ("" when none). */
const char *vhd_errmsg(void);

/*
 * File I/O goes through this table so tests can inject faults (cut the
 * write sequence after the N-th write). Each op returns like the syscall
 * but with -errno instead of -1/errno. Short transfers are retried by the
 * library. vhd_set_io_ops(NULL) restores the system calls. Not to be
 * changed while images are open in other threads.
 */
struct vhd_io_ops {
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	int (*fsync)(int fd);
};
void vhd_set_io_ops(const struct vhd_io_ops *ops);

/* Conversions between Unix time and VHD time (seconds since 2000-01-01). */
#define VHD_EPOCH_OFFSET 946684800u

#endif
