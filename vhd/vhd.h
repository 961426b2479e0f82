/* SPDX-License-Identifier: MIT */
/*
 * libvhd: the vhdfs core library. Reads, writes and creates VHD 1.0 images
 * (fixed, dynamic, differencing) and resolves differencing chains; does
 * the same for VHDX images and chains (MS-VHDX), image operations
 * included except repair (and compaction of differencing VHDX).
 *
 * Conventions, for every function below unless it says otherwise:
 * - Returns 0 (or a byte count) on success and -errno on failure. On
 *   failure a human-readable message naming the file and the defect is
 *   left in a thread-local buffer, readable with vhd_errmsg(); every call
 *   that can fail clears it first, so it is non-empty exactly after a
 *   failure.
 * - Handles are opaque. A handle is safe for concurrent vhd_pread() calls
 *   from many threads; vhd_pwrite()/vhd_flush() may run concurrently with
 *   reads and with each other (a per-image rwlock: overwrites of sectors
 *   the image already holds share it with reads, writes that change
 *   metadata take it alone; reads of other images in the chain take no
 *   lock at all).
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
/* Largest virtual size of a VHDX: 64 TiB. */
#define VHD_MAX_SIZE_VHDX (64ull << 40)
/* Deepest chain vhd_open() follows, the leaf counted; deeper is ELOOP. */
#define VHD_MAX_CHAIN_DEPTH 32
#define VHD_DEFAULT_BLOCK_SIZE (2u << 20)

enum vhd_type {
	VHD_TYPE_FIXED = 2,
	VHD_TYPE_DYNAMIC = 3,
	VHD_TYPE_DIFF = 4,
};

/* On-disk format of an image: VHD 1.0, or VHDX. */
enum vhd_format {
	VHD_FORMAT_VHD = 0,
	VHD_FORMAT_VHDX = 1,
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
 * chain. Parent lookup order (the first candidate whose footer's unique id
 * equals the child's parent id wins; others are skipped and named in the
 * error message):
 *  1. W2ru: a relative path, joined to the child's directory. Separators
 *     ('\' or '/') repeated collapse to one, a leading ".\" is dropped,
 *     and a drive letter or leading separator is ignored: it is never taken
 *     as an absolute path.
 *  2. W2ku: an absolute path. A Unix path ("/dir/p.vhd", '\' read as '/') is
 *     tried as is; a Windows one ("C:\dir\p.vhd", "\\server\share\p.vhd")
 *     cannot exist here, so only its bare file name is tried, beside the
 *     child (as Hyper-V users moving disks expect) - never relative to the
 *     working directory.
 *  3. MacX: a file:// URL, its path tried as is.
 *  4. The parent unicode name's bare file name, beside the child.
 * Every candidate (and the leaf) is opened before it is inspected, without
 * blocking, and must be a regular file not on /proc, /sys or a similar
 * pseudo file system; paths inside the tree of vhd_set_path_redirect() are
 * looked up in its replacement. A parent timestamp mismatch is reported
 * in vhd_info, never refused.
 * Locks (OFD, see vhd_lock_*): a VHD_OPEN_RDWR leaf is locked for writing
 * and every parent as a parent, so the same image open for writing by
 * another process (a daemon, qemu) and as a parent here exclude each
 * other: -EBUSY with "in use" in the message. Read-only leaves take none.
 * The trailing footer is used, falling back to the copy at offset 0 when the
 * trailing one is unreadable or fails its checksum.
 * VHD_OPEN_RDWR refuses (-EINVAL, "block N at offset X overlaps ...") an
 * image whose blocks overlap each other or its metadata: a write would
 * corrupt the other party. Read-only opens still read such an image;
 * vhd_check lists every overlap. The check sorts the BAT once at open.
 * On success *@out owns the open files until vhd_close().
 *
 * A file starting with the VHDX identifier "vhdxfile" is opened as VHDX.
 * VHD_OPEN_RDWR on a VHDX first replays a pending log into the file; its
 * writes update the headers' write GUIDs at the first vhd_pwrite and put
 * BAT and sector bitmap changes through the log at each flush; vhd_close
 * leaves the log empty. Its parent is found through the parent locator
 * (relative_path, then absolute_win32_path and volume_path, then their file
 * names beside the child) and must be a VHDX whose DataWriteGuid equals
 * parent_linkage (or parent_linkage2); else -EINVAL. A log left by a
 * crashed writer is replayed in memory by a read-only open, which never
 * writes the file (nor any parent). A chain never mixes VHD and VHDX
 * (-EINVAL). A file of neither format fails -EINVAL naming both.
 */
int vhd_open(const char *path, int flags, struct vhd_disk **out);

/*
 * Close the image and its chain. A writable image first writes its pending
 * metadata and syncs, as vhd_flush; that result is returned (the handle is
 * freed either way).
 */
int vhd_close(struct vhd_disk *disk);

/*
 * A fingerprint of the files behind @disk's view: device, inode, size,
 * mtime and ctime of every open level, leaf to base. Changing any file of
 * the chain (a write, a tool rewriting a parent) changes it, to the
 * resolution of the file system's timestamps. 0 when a file cannot be
 * examined (never a fingerprint). Takes no lock; calls fstat(2) per level.
 */
uint64_t vhd_chain_version(struct vhd_disk *disk);

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
 * past it, and past room for up to 15 more that vhd_close() gives back;
 * the BAT entries and bitmap bits that make written sectors visible are
 * held in memory and written by vhd_flush()/vhd_close() only after the
 * data is durable, so a crash shows each unflushed sector either old or
 * new, never garbage. Writes past the virtual size fail -ENOSPC (a write
 * crossing the end is short); a fixed image is written in place.
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
 * vhd_flush, and leave the file as vhd_close() would: the room kept for
 * new blocks given back (VHD), the log closed (VHDX). The handle stays
 * open for more writes. For a writer's close(2) when the handle itself
 * lives on, so that the final close has no I/O left to do.
 */
int vhd_settle(struct vhd_disk *disk);

/*
 * Data/hole navigation over the resolved chain, as lseek(2) SEEK_DATA and
 * SEEK_HOLE: a sector is data when any image in the chain holds it (for a
 * fixed image every sector is data). Returns the offset found, or -ENXIO
 * when @off is at/after the end (SEEK_DATA: no data after @off).
 */
int64_t vhd_seek_data(struct vhd_disk *disk, uint64_t off);
int64_t vhd_seek_hole(struct vhd_disk *disk, uint64_t off);

struct vhd_info {
	enum vhd_format format;
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
	/* VHDX only (0/false for VHD, whose sectors are 512 bytes): */
	uint32_t logical_sector_size;
	uint32_t physical_sector_size;
	bool log_replayed; /* a crashed writer's log was replayed in memory */
};

int vhd_get_info(const struct vhd_disk *disk, struct vhd_info *info);

/* Path this handle was opened with, as given (or as found, for parents). */
const char *vhd_path(const struct vhd_disk *disk);
/* Identity (st_dev, st_ino) of the file @disk has open. */
void vhd_identity(const struct vhd_disk *disk, dev_t *dev, ino_t *ino);
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
	/* decoded payload, UTF-8, '/' separators; "" when not a path */
	char path[4096];
};
/* Number of locator entries with a non-zero platform code. */
int vhd_locator_count(const struct vhd_disk *disk);
int vhd_get_locator(const struct vhd_disk *disk, int index,
		    struct vhd_locator_info *out);

/*
 * Find the parent file of a differencing image without opening the chain
 * (works on a VHD_OPEN_NOPARENT handle), in vhd_open()'s order. Writes the
 * path found (as it was tried: relative locators joined to the child's
 * directory; the canonical path when redirected) into @buf.
 * -ENOENT with a message listing every path tried when none exists;
 * -EINVAL when the only candidates found have another unique id: @buf then
 * holds the first such candidate, and the message says "parent found at
 * X but its unique id differs (expected U1, found U2)".
 */
int vhd_find_parent(const struct vhd_disk *disk, char *buf, size_t len);

/*
 * Keep image lookups out of a directory tree: a path at or beneath
 * canonical absolute directory @from is looked up beneath @to instead
 * (@from/x becomes @to/x) before any name inside @from is looked up, and a
 * file or directory on device @dev (0: none) is refused (-EXDEV). The
 * daemon passes its MOUNTPOINT, BACKING_DIR and the mount's device, so
 * that resolving a parent never goes through its own mount (which would
 * deadlock). NULL @from clears it. Process-wide; takes effect for opens
 * started after it returns.
 */
int vhd_set_path_redirect(const char *from, const char *to, dev_t dev);

/*
 * realpath(3) of an existing file, looked up as image paths are: one
 * component at a time, a path into the vhd_set_path_redirect() tree
 * resolved in its replacement (never looked up there). -errno (ENOENT,
 * ENOTDIR, ELOOP, EXDEV for the excluded device) with a message.
 */
int vhd_realpath(const char *path, char *out, size_t len);

/* Creation. All are atomic: on failure no file is left at @path, and an
 * existing @path is never replaced (-EEXIST). */
struct vhd_create_params {
	enum vhd_type type;  /* VHD_TYPE_FIXED or VHD_TYPE_DYNAMIC */
	uint64_t size;	     /* bytes, rounded up to a sector */
	uint32_t block_size; /* dynamic: power of two 512 KiB..256 MiB;
				0 = 2 MiB. A .vhdx/.avhdx name makes a VHDX:
				1..256 MiB, 0 = 32 MiB, fixed too */
};
int vhd_create(const char *path, const struct vhd_create_params *params);

/*
 * Who a new image belongs to, and a last word before it gets its name.
 * With no options (NULL, or own false) the file belongs to the process
 * and its mode is 0666 less the process umask; with own set it gets
 * @uid/@gid ((uid_t)-1/(gid_t)-1: leave that id; changing it needs the
 * privilege chown(2) needs) and 0666 & ~@umask. A differencing child's
 * mode then loses what its parent chain denies: group bits unless every
 * level is readable by others, or by its group when that is the child's
 * group; other bits unless every level is readable by others (the owner
 * is assumed to read the parent, which it opened).
 *
 * The image is built as an unnamed file (O_TMPFILE) and linked into place
 * complete; on file systems without O_TMPFILE under a hidden name
 * ".vhdfs-tmp-XXXXXX" beside the target (never shown by vhdfs: not *.vhd),
 * removed on failure. Such names left by a killed process are removed by
 * the next create in that directory that needs one (a live one holds a
 * lock, and is left alone).
 *
 * @commit, when set, runs just before the link with @ctx; a non-zero
 * return (a -errno) abandons the image, leaving nothing, and is returned.
 */
struct vhd_create_opts {
	bool own;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int (*commit)(void *ctx);
	void *ctx;
};
int vhd_create_ex(const char *path, const struct vhd_create_params *params,
		  const struct vhd_create_opts *opts);

/*
 * Create a differencing image at @child whose parent is @parent, as
 * Hyper-V's CreateDifferencingVirtualHardDisk does: creator "win ",
 * sizes and geometry of the parent, parent id copied, parent timestamp =
 * parent file mtime, unicode name = bare file name, W2ru + W2ku locators
 * with data space in bytes, block size of the parent when 512 KiB or 2 MiB
 * else 2 MiB. Costs O(BAT). The parent (and its chain) must open.
 * A @child named .vhdx or .avhdx is a VHDX child of a VHDX @parent (2 MiB
 * blocks, parent_linkage = the parent's DataWriteGuid, relative_path and
 * absolute_win32_path); mixing formats fails -EINVAL, creating nothing.
 */
int vhd_create_diff(const char *child, const char *parent);
int vhd_create_diff_ex(const char *child, const char *parent,
		       const struct vhd_create_opts *opts);

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
 * Merge the differencing image @child into @ancestor (NULL = its parent),
 * as Hyper-V's MergeVirtualHardDisk: every sector held by @child or by a
 * level between it and @ancestor is written into @ancestor (the newest
 * level wins), through vhd_pwrite on @ancestor opened VHD_OPEN_RDWR, and
 * after vhd_flush the merged levels (child and intermediates) are removed.
 * Afterwards @ancestor's flat content equals @child's before, byte for
 * byte. @ancestor may be fixed, dynamic or differencing; it is found by
 * inode among @child's ancestors (-EINVAL when it is none of them).
 *
 * Refused with -EPERM (nothing changed) while another image in @child's
 * directory has a merged level or @ancestor as its parent. -EINVAL when
 * @child is not differencing or is larger than @ancestor.
 *
 * Crash safety: killed at any point (kill -9, power loss, ENOSPC) @child's
 * view is unchanged and readable, and rerunning the same merge completes
 * it. Only sectors the merged levels hold (and so shadow) are written into
 * @ancestor. Removal is journalled: before the first unlink a marker
 * ".CHILDNAME.merging" naming the ancestor and the levels (path and
 * unique id) is written and synced next to @child; levels go leaf first,
 * then the marker. A rerun that finds a complete marker finishes the
 * removal (even when @child itself is already gone) and returns 0; an
 * incomplete marker (crash while writing it) is dropped and the merge
 * redone. vhd_check() reports a level the marker still lists.
 *
 * @progress gets bytes of @child's virtual size scanned; its call with
 * done == total comes after @ancestor is flushed and before anything is
 * removed (the point of no return). On -ECANCELED (or any failure) the
 * merge can be rerun. Not to be run on images another handle writes.
 */
int vhd_merge(const char *child, const char *ancestor, vhd_progress_fn progress,
	      void *ctx);

/*
 * Write the flat, resolved content of @src (any image, with its chain)
 * into a new stand-alone image at @dst, as ConvertVirtualHardDisk:
 * @params->type VHD_TYPE_FIXED or VHD_TYPE_DYNAMIC, block_size as for
 * vhd_create (0 = 2 MiB), size 0 (= @src's virtual size; any other value
 * must equal it, else -EINVAL). A dynamic output allocates only the blocks
 * holding non-zero data; a fixed one is sparse where the data is zero.
 * Atomic like vhd_create: built as a temporary without a name (or under
 * a hidden one next to @dst), synced, then linked; on failure or cancel no
 * file is left, and an existing @dst is never replaced (-EEXIST).
 * @progress gets bytes of the virtual size done; its done == total call
 * precedes the link. vhd_convert_ex owns and modes @dst as @opts says
 * (see vhd_create_ex), and never lets it be readable by someone who
 * cannot read every level of @src's chain.
 */
int vhd_convert(const char *src, const char *dst,
		const struct vhd_create_params *params,
		vhd_progress_fn progress, void *ctx);
int vhd_convert_ex(const char *src, const char *dst,
		   const struct vhd_create_params *params,
		   const struct vhd_create_opts *opts, vhd_progress_fn progress,
		   void *ctx);

/*
 * 1 when an interrupted merge of @child (which may no longer exist) left a
 * complete removal journal next to it, so vhd_merge(@child, ...) would
 * finish it; 0 when not, -errno on a bad path.
 */
int vhd_merge_pending(const char *child);

/*
 * Consistency check of one image (and that its chain opens). Each problem
 * found is passed to @report (may be NULL) as one message line naming the
 * file, ending in "(fixable by vhd repair...)" or "(not fixable by vhd
 * repair)" where repair is concerned. Never writes the file (a VHDX's
 * pending log is replayed in memory). Returns the number of problems
 * (0 = clean), or -errno when the image cannot be read at all (message in
 * vhd_errmsg()).
 */
typedef void (*vhd_report_fn)(void *ctx, const char *msg);
int vhd_check(const char *path, vhd_report_fn report, void *ctx);

/*
 * Image operations: compact, expand, reparent, repair, map. Each opens
 * @path itself and needs it not to be open for writing elsewhere (the
 * daemon and CLI enforce that; the library cannot know). None of them
 * knows about children of @path: callers that do (the daemon, the CLI's
 * directory scan) refuse operations that would change a parent.
 */

/*
 * Compact (CompactVirtualHardDisk, Optimize-VHD). Dynamic: blocks whose
 * data is all zeros are dropped. Differencing: sectors whose data equals
 * what the parent chain shows get their bitmap bit cleared, and blocks left
 * with no bit set are dropped. Live blocks then move down into the freed
 * space and the file is truncated. Each move copies the block, syncs,
 * points the BAT entry at the copy and syncs before the old space is
 * reused, and the new footer is written (and synced) before the file is
 * cut, so a crash at any point leaves every sector reading as before.
 * *@reclaimed (may be NULL) receives the bytes the file shrank by.
 * -EOPNOTSUPP for fixed disks (nothing to reclaim), -EPERM when the
 * saved-state flag is set, -EINVAL when the trailing footer is damaged
 * (run repair first), -ECANCELED when @progress asked to stop (the image
 * is valid, possibly partly compacted).
 */
int vhd_compact(const char *path, uint64_t *reclaimed, vhd_progress_fn progress,
		void *ctx);

/*
 * Expand (ExpandVirtualHardDisk, Resize-VHD growing) a fixed or dynamic
 * disk to @new_size bytes (rounded up to a sector): old content is
 * unchanged and the new tail reads zeros. Current size, original size (so
 * that readers using either agree, as vhd_create writes them) and CHS
 * geometry take the new size. A dynamic disk whose BAT has no room for the
 * new entries first moves the blocks in the way to the end of the file
 * (crash-safe order as vhd_compact). A crash leaves the old or the new size,
 * with old content unchanged. -EINVAL when @new_size is below the current
 * size (an equal size changes nothing), -EFBIG past the VHD limit,
 * -EOPNOTSUPP for a differencing disk, -EPERM with the saved-state flag.
 * A VHDX is rounded up to its logical sector size, limited to 64 TiB
 * (-EFBIG); its new BAT entries (and BAT region, grown in place or moved
 * to the end of the file) are written and synced before one log entry
 * changes its size item and region tables; it gets a new DataWriteGuid.
 */
int vhd_expand(const char *path, uint64_t new_size, vhd_progress_fn progress,
	       void *ctx);

/* Rewrite the parent unique id too (SetParent's IgnoreIdMismatch). */
#define VHD_REPARENT_IGNORE_ID 0x1u

/*
 * Point differencing image @child at @parent (SetParentVirtualHardDisk):
 * parent name, parent timestamp and W2ku/W2ru locators are written as
 * vhd_create_diff writes them; the parent unique id only with
 * VHD_REPARENT_IGNORE_ID. The child's current parent need not exist (the
 * moved-parent case). New locator payloads go to the end of the file
 * first (synced), then the header is replaced in one 1024-byte write and
 * synced, so the child refers either to its old or to its new parent.
 * -EINVAL: @child not differencing, unique id mismatch (without the
 * flag) or virtual sizes differ; -ELOOP: @parent's chain contains @child;
 * errors of opening @parent's chain as vhd_open. A VHDX @child gets a new
 * parent locator item (parent_linkage = @parent's DataWriteGuid, which
 * must equal the child's linkage without the flag), in place or in free
 * space of its metadata region, through its log; it keeps its own
 * DataWriteGuid. @parent must then be a VHDX (-EINVAL for a VHD, and for
 * a VHD child of a VHDX) with the same logical sector size (-EINVAL).
 */
int vhd_reparent(const char *child, const char *parent, unsigned flags);

/* Also recompute bad checksums (a bad checksum can mean a damaged field). */
#define VHD_REPAIR_CHECKSUMS 0x1u

/*
 * Fix what is fixable in @path and pass one line per change to @report: a
 * damaged trailing footer is restored from the copy at offset 0 or the
 * copy from the trailing footer; with VHD_REPAIR_CHECKSUMS, footer and
 * dynamic header checksums are recomputed. A VHDX: a damaged header is
 * rewritten from the good one (next sequence number), a pending log is
 * replayed and the LogGuid cleared, a damaged region table copy is
 * restored from the other through the log; with VHD_REPAIR_CHECKSUMS a
 * header or region table CRC is recomputed when no copy is valid
 * otherwise. Takes the writer lock; writes nothing when nothing is wrong.
 * A defect left alone is reported with what would fix it. Returns the
 * number of changes made, or -errno when no usable footer is found or the
 * file is no VHDX (message in vhd_errmsg()).
 */
int vhd_repair(const char *path, unsigned flags, vhd_report_fn report,
	       void *ctx);

/* One extent of vhd_map. */
struct vhd_extent {
	uint64_t offset; /* in the virtual disk, bytes */
	uint64_t length;
	/* chain level supplying it: 0 = the image, 1 = its parent, ...;
	 * -1 = no image holds it (reads as zeros) */
	int depth;
	const char *file;     /* image of @depth (NULL for -1); valid in @fn */
	uint64_t file_offset; /* where the data lies in @file */
};
typedef int (*vhd_extent_fn)(void *ctx, const struct vhd_extent *e);

/*
 * The allocation of the resolved image as extents, in order, covering the
 * whole virtual size. Neighbours of the same level and file whose data is
 * contiguous in the file are merged (as `qemu-img map`); a dynamic block
 * counts as data as a whole. Stops when @fn returns non-zero and returns
 * that value; else 0 or -errno. Takes the image's read lock.
 */
int vhd_map(struct vhd_disk *disk, vhd_extent_fn fn, void *ctx);

/*
 * Parse a size argument as the CLI and the control file take it: a decimal
 * byte count, optionally followed by K, M, G or T (powers of 1024, any
 * case, optional trailing "B" or "iB": 2M, 2m, 2MiB). Returns 0, -EINVAL
 * when @s is not a size, -ERANGE on 64-bit overflow. Zero is accepted.
 */
int vhd_parse_size(const char *s, uint64_t *out);

/*
 * True when the last component of @name ends in .vhd, .avhd, .vhdx or
 * .avhdx (any case): the files the mount shows and that may be children.
 */
bool vhd_is_image_name(const char *name);

/*
 * Largest virtual size of a new image named @name: VHD_MAX_SIZE_VHDX for a
 * .vhdx or .avhdx name (vhd_create_ex makes a VHDX), else VHD_MAX_SIZE.
 */
uint64_t vhd_max_size_of_name(const char *name);

/*
 * How a message says an image is open for writing by someone else (an
 * OFD lock held by another open file description): "PATH: in use: "
 * VHD_MSG_WRITTEN_ELSEWHERE. The locks cannot tell which process holds
 * them; a caller that knows the holder is itself may say so instead.
 */
#define VHD_MSG_WRITTEN_ELSEWHERE "open for writing by another program"

/* Last error message of this thread ("" when none). */
const char *vhd_errmsg(void);
/* Forget it, e.g. before a thread that runs many operations starts one. */
void vhd_clear_error(void);

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
	/* open(@dir, O_TMPFILE | ...) for creates; NULL: the system's. */
	int (*open_tmpfile)(const char *dir, int flags, mode_t mode);
};
void vhd_set_io_ops(const struct vhd_io_ops *ops);

/* Conversions between Unix time and VHD time (seconds since 2000-01-01). */
#define VHD_EPOCH_OFFSET 946684800u

#endif
