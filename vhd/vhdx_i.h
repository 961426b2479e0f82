/* SPDX-License-Identifier: MIT */
/*
 * Private structures of the VHDX reader (MS-VHDX). Nothing outside vhd/
 * includes this. Every structure is decoded from little-endian into native
 * values once, by the file named after it; all file reads go through
 * vhdx_pread_file(), which applies the in-memory log replay.
 */
#ifndef VHDX_I_H
#define VHDX_I_H

#include "vhd_i.h"

#define VHDX_KIB 1024ull
#define VHDX_MIB (1024ull * 1024)
#define VHDX_HEADER_SIZE 4096u
#define VHDX_HEADER1_OFF (64 * VHDX_KIB)
#define VHDX_HEADER2_OFF (128 * VHDX_KIB)
#define VHDX_REGION1_OFF (192 * VHDX_KIB)
#define VHDX_REGION2_OFF (256 * VHDX_KIB)
#define VHDX_REGION_SIZE (64 * VHDX_KIB)
#define VHDX_REGION_MAX_ENTRIES 2047u
#define VHDX_META_TABLE_SIZE (64 * VHDX_KIB)
#define VHDX_META_MAX_ENTRIES 2047u
#define VHDX_META_ITEM_MAX VHDX_MIB
#define VHDX_LOG_SECTOR 4096u
#define VHDX_MAX_SIZE VHD_MAX_SIZE_VHDX
#define VHDX_MIN_BLOCK VHDX_MIB
#define VHDX_MAX_BLOCK (256 * VHDX_MIB)
/* What Hyper-V's New-VHD makes: dynamic and differencing blocks. */
#define VHDX_DEFAULT_BLOCK (32 * VHDX_MIB)
#define VHDX_DIFF_BLOCK (2 * VHDX_MIB)
/*
 * BAT entries held in memory: 32 MiB of table (and as much of bitmap
 * pointers for a differencing disk): 4 TiB in 1 MiB blocks, 64 TiB from
 * 16 MiB blocks on (Hyper-V makes 32 MiB). A sparse hostile file must not
 * cost more memory than that at open.
 */
#define VHDX_MAX_BAT_ENTRIES (1ull << 22)
/* Largest file offset a log entry may name (a sparse 2^56 is absurd). */
#define VHDX_MAX_FILE_OFFSET (1ull << 56)
/* Lines a check gives one kind of defect before counting the rest. */
#define VHDX_CHECK_MAX_LINES 32
/* Open flag (internal): stop after the region table (vhdx_open_regions). */
#define VHDX_OPEN_I_REGIONS 0x200
/* Longest log read into memory for replay. */
#define VHDX_MAX_LOG (256 * VHDX_MIB)

/* BAT entry states (bits 0-2). */
enum vhdx_block_state {
	VHDX_PAYLOAD_NOT_PRESENT = 0,
	VHDX_PAYLOAD_UNDEFINED = 1,
	VHDX_PAYLOAD_ZERO = 2,
	VHDX_PAYLOAD_UNMAPPED = 3,
	VHDX_PAYLOAD_UNMAPPED_V095 = 5, /* draft value qemu also reads */
	VHDX_PAYLOAD_FULLY_PRESENT = 6,
	VHDX_PAYLOAD_PARTIALLY_PRESENT = 7,
	VHDX_SB_NOT_PRESENT = 0,
	VHDX_SB_PRESENT = 6,
};
#define VHDX_BAT_STATE(e) ((unsigned)((e)&7))
#define VHDX_BAT_OFFSET(e) ((e)&0xFFFFFFFFFFF00000ull)

/* On-disk GUIDs, as stored (Windows GUID byte order). */
extern const uint8_t vhdx_guid_bat[16];
extern const uint8_t vhdx_guid_metadata[16];
extern const uint8_t vhdx_guid_file_params[16];
extern const uint8_t vhdx_guid_disk_size[16];
extern const uint8_t vhdx_guid_page83[16];
extern const uint8_t vhdx_guid_logical_sector[16];
extern const uint8_t vhdx_guid_physical_sector[16];
extern const uint8_t vhdx_guid_parent_locator[16];
extern const uint8_t vhdx_guid_locator_type[16];
extern const uint8_t vhdx_guid_chs[16];
extern const uint8_t vhdx_guid_pmem_labels[16];
extern const uint8_t vhdx_guid_incomplete[16];

struct vhdx_header {
	uint64_t seq;
	uint8_t file_write_guid[16];
	uint8_t data_write_guid[16];
	uint8_t log_guid[16];
	uint16_t log_version;
	uint16_t version;
	uint32_t log_length;
	uint64_t log_offset;
};

struct vhdx_region {
	uint8_t guid[16];
	uint64_t offset;
	uint32_t length;
	bool required;
};

/* Parent locator values, UTF-8 ('\' kept as stored); "" when absent. */
struct vhdx_locator {
	bool present;
	char parent_linkage[64];
	char parent_linkage2[64];
	char relative_path[4096];
	char volume_path[4096];
	char absolute_win32_path[4096];
};

struct vhdx_meta {
	uint32_t block_size;
	bool leave_allocated;
	bool has_parent;
	uint64_t disk_size;
	uint32_t logical_sector;
	uint32_t physical_sector;
	uint8_t page83[16];
	struct vhdx_locator loc;
};

/* One replayed 4 KiB sector of the log; data NULL means zeros. */
struct vhdx_overlay_sector {
	uint64_t offset;
	size_t order; /* position in the replay: the last write wins */
	uint8_t *data;
};

struct vhdx {
	char *path;
	int fd;
	uint64_t file_size; /* max(real size, replayed LastFileOffset) */
	uint64_t real_size;
	struct vhdx_header header; /* the current one */
	int header_slot;	   /* 1 or 2 */
	bool log_replayed;	   /* a log sequence was applied in memory */
	uint64_t log_entries;	   /* entries applied */
	struct vhdx_overlay_sector *overlay; /* sorted by offset */
	size_t noverlay;
	struct vhdx_region bat_region;
	struct vhdx_region meta_region;
	uint64_t regions_end;  /* end of the furthest region, known or not */
	bool region_from_copy; /* region table 1 bad, copy 2 used */
	struct vhdx_meta meta;
	uint32_t chunk_ratio;
	uint64_t payload_blocks;
	uint64_t bat_entries;
	uint64_t *bat;
	uint32_t sectors_per_block;
	/* Per payload block, that block's slice of its chunk's sector
	 * bitmap, loaded on first use with compare-and-swap (read-only
	 * images need no lock). */
	_Atomic(uint8_t *) *bitmaps;

	/* Writing (VHD_OPEN_RDWR leaf only; under the vhd_disk's write
	 * lock). See vhdx_write.c. */
	bool rw;
	bool session; /* headers carry this session's write GUIDs */
	/* A merge writes only what the levels above shadow: they keep
	 * their parent (DataWriteGuid) until removed; see merge.c. */
	bool keep_data_guid;
	bool log_active;	  /* the header's LogGuid is set */
	uint64_t log_seq;	  /* number of the last entry written */
	uint32_t log_head;	  /* ring offset of the next entry */
	uint64_t alloc_end;	  /* next new block (0: not yet known) */
	struct vhdx_dirty *dirty; /* metadata sectors changed in memory */
	size_t ndirty, dirty_cap;
};

/* A 4 KiB metadata sector changed in memory, not yet logged. */
struct vhdx_dirty {
	uint64_t offset;
	uint64_t chunk; /* sector bitmap of this chunk; UINT64_MAX: BAT */
	uint8_t *data;	/* non-NULL: these new contents (vhdx_log_sectors) */
};

/* crc32c.c: CRC-32C (Castagnoli), init and final XOR 0xFFFFFFFF. */
uint32_t vhd_crc32c(const void *buf, size_t len);
/* CRC of @len bytes with the 4 bytes at @off taken as zero. */
uint32_t vhd_crc32c_skip(const uint8_t *buf, size_t len, size_t off);

static inline uint16_t vhdx_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t vhdx_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t vhdx_le64(const uint8_t *p)
{
	return (uint64_t)vhdx_le32(p) | (uint64_t)vhdx_le32(p + 4) << 32;
}
static inline void vhdx_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void vhdx_put32(uint8_t *p, uint32_t v)
{
	vhdx_put16(p, (uint16_t)v);
	vhdx_put16(p + 2, (uint16_t)(v >> 16));
}
static inline void vhdx_put64(uint8_t *p, uint64_t v)
{
	vhdx_put32(p, (uint32_t)v);
	vhdx_put32(p + 4, (uint32_t)(v >> 32));
}
static inline bool vhdx_guid_is_zero(const uint8_t g[16])
{
	for (int i = 0; i < 16; i++)
		if (g[i])
			return false;
	return true;
}

/* vhdx_guid.c: text form, lower case, no braces (37 bytes with NUL). */
void vhdx_guid_str(const uint8_t g[16], char out[37]);
/* Parse "{xxxxxxxx-...}" or without braces, any case; 0 or -EINVAL. */
int vhdx_guid_parse(const char *s, uint8_t g[16]);

/* vhdx_file.c: read through the replay overlay; beyond the real end of
 * file but inside the replayed size reads zeros. -EINVAL past file_size. */
int vhdx_pread_file(struct vhdx *x, void *buf, size_t len, uint64_t off);
/* Does @path start with the "vhdxfile" identifier? 1, 0 or -errno. */
int vhdx_probe(const char *path);
/* The same for a file already open. */
int vhdx_probe_fd(int fd);
/* Does the name end in .vhdx or .avhdx (any case)? */
bool vhdx_is_vhdx_name(const char *path);

/* vhdx_create.c: what a new image is. */
struct vhdx_new {
	enum vhd_type type; /* FIXED, DYNAMIC or DIFF */
	uint64_t size;
	uint32_t block_size;
	uint32_t logical_sector, physical_sector;
	const uint8_t *page83; /* NULL: a new one */
	/* differencing only: the parent's DataWriteGuid and its paths as
	 * UTF-16LE without NUL ('.\rel' and the absolute one) */
	const uint8_t *parent_linkage;
	const uint8_t *relative_path, *absolute_path;
	uint32_t relative_len, absolute_len; /* bytes */
};
/*
 * The parent locator item of the differencing @n, as the v2 image service
 * writes it (UTF-16LE keys and values without NULs: parent_linkage = the
 * parent's DataWriteGuid in lower case braces, relative_path,
 * absolute_win32_path), into @it of VHDX_LOCATOR_ITEM_BUF bytes; its length.
 */
#define VHDX_LOCATOR_ITEM_BUF (4 * 65536)
uint32_t vhdx_locator_item(uint8_t *it, const struct vhdx_new *n);
/* A random GUID in the on-disk layout. */
void vhdx_guid_new(uint8_t g[16]);
/* BAT entries of a disk of @size bytes in @bs blocks, @lss-byte sectors. */
uint64_t vhdx_bat_entries_for(uint64_t size, uint32_t bs, uint32_t lss,
			      bool diff);
/* A header with its CRC, into 4 KiB at @b. */
void vhdx_header_encode(const struct vhdx_header *h, uint8_t *b);
/* Write the whole new image into the empty file @fd; 0 or -errno. */
int vhdx_create_write(int fd, const char *path, const struct vhdx_new *n);

/* vhdx_header.c: identifier and both headers; picks the current one. */
int vhdx_header_decode(const uint8_t *buf, struct vhdx_header *h);
extern const uint64_t vhdx_header_at[2]; /* file offsets of the copies */
int vhdx_read_headers(struct vhdx *x);

/* vhdx_log.c: replay a non-empty log into x->overlay (no file writes). */
int vhdx_log_replay(struct vhdx *x);
void vhdx_log_free(struct vhdx *x);
/* Writable open: make the replayed overlay durable in the file and clear
 * the header's LogGuid. */
int vhdx_log_commit_replay(struct vhdx *x);
/* One log entry holding x->dirty (at most VHDX_LOG_MAX_DESC sectors):
 * written, synced, applied in place, synced. */
int vhdx_log_write_dirty(struct vhdx *x);
#define VHDX_LOG_MAX_DESC 126u

/* vhdx_header.c: write x->header with the next sequence number into the
 * other slot, sync, then the same into the first, sync (both agree). */
int vhdx_header_update(struct vhdx *x);

/* vhdx_write.c: writes into a VHDX leaf (the vhd_disk's write lock held). */
int vhdx_write(struct vhd_disk *d, const uint8_t *buf, size_t len,
	       uint64_t off);
int vhdx_flush_locked(struct vhdx *x);
/* pwrite @len bytes at @off of @x's file; the message names file and
 * offset. 0 or -errno. */
int vhdx_write_file(struct vhdx *x, const void *buf, size_t len, uint64_t off);
/* The current in-memory contents of dirty metadata sector @dd. */
int vhdx_dirty_sector(struct vhdx *x, const struct vhdx_dirty *dd,
		      uint8_t *out);
/* Flush, then clear the LogGuid: the log is empty when closed cleanly. */
int vhdx_close_locked(struct vhdx *x);
/* Queue the sector at 4 KiB-aligned @off with the new contents @data (4 KiB,
 * copied) for the next log entry; a sector already queued is replaced. */
int vhdx_queue_sector(struct vhdx *x, uint64_t off, const uint8_t *data);
/* Forget every queued sector (after they were written in place). */
void vhdx_dirty_clear(struct vhdx *x);

/*
 * vhdx_logged.c: change metadata-region, region-table (or other non-BAT
 * metadata) sectors of a writable @x crash-safely. @n sectors (at most
 * VHDX_LOG_MAX_DESC) at the 4 KiB-aligned, distinct file offsets @offs get
 * the contents @data (@n x 4 KiB, not kept), in MS-VHDX's order: the
 * session's headers first (new FileWriteGuid, and DataWriteGuid unless
 * x->keep_data_guid: the change is visible), data written so far synced, a
 * new LogGuid if this session has none, one log entry holding these
 * sectors together with any queued BAT and bitmap sectors (those are
 * flushed in an entry of their own first when both do not fit), sync, the
 * sectors in place, sync. After a crash at any write, replay gives either
 * all old or all new contents. The sectors must lie inside the file
 * (grow it first), outside the headers, the log and the BAT (BAT entries
 * change through vhdx_set_bat): else -EINVAL, nothing written. The caller
 * holds the write lock (or the only handle) and updates what it keeps in
 * memory of these sectors (x->meta, regions). 0 or -errno.
 */
int vhdx_log_sectors(struct vhdx *x, const uint64_t *offs, const uint8_t *data,
		     size_t n);

/* vhdx_region.c: region table (copy 2 when copy 1 is bad). */
extern const uint64_t vhdx_region_at[2]; /* file offsets of the copies */
int vhdx_read_regions(struct vhdx *x);
/* Parse one 64 KiB copy into x->bat_region and x->meta_region; -EINVAL
 * with a reason (no path) when it is bad, *@soft set when the copy is
 * merely damaged (signature or CRC: worth trying the other one). */
int vhdx_region_parse(struct vhdx *x, const uint8_t *b, bool *soft);

/*
 * vhdx_repair.c: the walk of vhd_repair over headers, log and region
 * tables; @dry only reports (what vhd_check does), each defect marked
 * fixable or not. Returns the defects found (@dry) or the changes made,
 * -errno when the file is no VHDX or I/O fails; *@blocking (may be NULL)
 * tells whether a defect found stops every open.
 */
int vhdx_repair_walk(const char *path, unsigned flags, bool dry,
		     vhd_report_fn report, void *ctx, bool *blocking);
/*
 * vhdx_region_fix.c: write the 64 KiB region table @table into copy 1
 * (@copies bit 0) and/or copy 2 (bit 1) through the log of @x (writable,
 * log empty, x->bat_region from @table), then clear the LogGuid.
 */
int vhdx_region_write(struct vhdx *x, const uint8_t *table, unsigned copies);
/* vhdx_check.c: vhd_check of one VHDX file (not its parents): the number
 * of problems reported, or -errno when it is not readable as a VHDX;
 * *@opens when the file opens read-only (its chain can be checked). */
int vhdx_check_file(const char *path, vhd_report_fn report, void *ctx,
		    bool *opens);

/* vhdx_metadata.c: metadata table and known items. */
int vhdx_read_metadata(struct vhdx *x);
/* The same, each defect given to @fn: returns how many (0: x->meta is
 * decoded), or -errno other than a defect (-ENOMEM, I/O). */
int vhdx_check_metadata(struct vhdx *x, vhd_report_fn fn, void *ctx);
/* Decode a parent locator item of @len bytes. */
int vhdx_locator_decode(const char *path, const uint8_t *item, uint32_t len,
			struct vhdx_locator *loc);

/* vhdx_bat.c: load and check the BAT (vhdx_bat_read, vhdx_bat_check). */
int vhdx_bat_load(struct vhdx *x);
/* Geometry from the metadata and the raw table into x->bat, unchecked. */
int vhdx_bat_read(struct vhdx *x);
/*
 * Check every entry. Without @fn: 0 or the first defect's -EINVAL. With
 * @fn: each defect's message goes to @fn (a long list ends in one line
 * counting the rest); returns the lines given to @fn.
 */
int vhdx_bat_check(struct vhdx *x, vhd_report_fn fn, void *ctx);
/* Does BAT entry @e (state 6 or 7, or a present sector bitmap) of @len
 * bytes lie inside the file, past the first 1 MiB? */
bool vhdx_bat_extent_ok(const struct vhdx *x, uint64_t e, uint64_t len);
/* Bytes of payload block @b the file must hold (the last one may end at
 * the virtual end). */
uint64_t vhdx_block_len(const struct vhdx *x, uint64_t b);
static inline uint64_t vhdx_payload_index(const struct vhdx *x, uint64_t b)
{
	return b + b / x->chunk_ratio;
}
static inline uint64_t vhdx_sb_index(const struct vhdx *x, uint64_t chunk)
{
	return chunk * (x->chunk_ratio + 1) + x->chunk_ratio;
}
/* Blocks of the BAT in state 6 or 7 (what this file itself stores). */
uint64_t vhdx_bat_allocated(const struct vhdx *x);
/* Sector bitmap slice of payload block @b (sectors_per_block bits). */
int vhdx_bitmap_get(struct vhdx *x, uint64_t b, uint8_t **out);

/* vhdx_open.c: one file, no parent; and freeing it. */
int vhdx_open_file(const char *path, int flags, struct vhdx **out);
/* Read-only, headers, log (replayed in memory) and region table only:
 * the metadata and the BAT are what a check walks itself. */
int vhdx_open_regions(const char *path, struct vhdx **out);
/* The same for a file open at @fd (stays the caller's; @x keeps a dup). */
int vhdx_open_fd(int fd, const char *name, int flags, struct vhdx **out);
void vhdx_free(struct vhdx *x);

/* vhdx_chain.c: the vhd_disk wrappers of a VHDX chain. */
int vhdx_open_chain(const char *path, int flags, struct vhd_disk **out);
/* One VHDX file (no parent) as a vhd_disk. */
int vhdx_open_one(const char *path, int flags, struct vhd_disk **out);
/* New FileWriteGuid and DataWriteGuid in the headers of a writable @x
 * (its children no longer match it). */
int vhdx_renew_data_guid(struct vhdx *x);
/* vhdx_write.c, under the write lock: the headers of this session (new
 * FileWriteGuid; a new DataWriteGuid unless keep_data_guid), once; and a
 * BAT entry changed in memory, queued for the next flush (the log). */
int vhdx_begin_session(struct vhdx *x);
int vhdx_set_bat(struct vhdx *x, uint64_t idx, uint64_t e);
/* reparent.c: what reparenting checks for both formats: -ELOOP when @c is
 * in @p's chain, -EINVAL when the virtual sizes differ. */
int vhd_reparent_check_chain(const struct vhd_disk *c,
			     const struct vhd_disk *p);
/* vhdx_reparent.c: vhd_reparent() of a VHDX child (a VHDX @child). */
int vhdx_reparent(const char *child, const char *parent, unsigned flags);
/*
 * vhdx_expand.c: grow the fixed or dynamic VHDX @d (open read-write, no
 * parent) to @size (a multiple of its logical sector, above its size, at
 * most VHDX_MAX_SIZE: the caller checked). New BAT entries, a BAT region
 * moved to the end of the file (or grown in place when the space after
 * it is free) and a fixed disk's new blocks are written and synced first;
 * then one log entry changes the size item and the region tables.
 */
int vhdx_expand(struct vhd_disk *d, uint64_t size);
/* vhdx_compact.c: vhd_compact() of a dynamic VHDX open read-write. */
int vhdx_compact(struct vhd_disk *d, uint64_t *reclaimed,
		 vhd_progress_fn progress, void *ctx);
/* One VHDX (no parent) from @fd, as vhd_open_one_fd() for a VHD. */
int vhdx_open_one_fd(int fd, const char *name, int flags,
		     struct vhd_disk **out);
int vhdx_find_parent(const struct vhd_disk *d, char *buf, size_t len);
int vhdx_get_info(const struct vhd_disk *d, struct vhd_info *info);

/*
 * vhdx_io.c: [@in, @in + @len) of payload block @b of a VHDX chain member,
 * by its BAT state, parents through the chain (vhd_read_resolved splits
 * reads into blocks for both formats).
 */
int vhdx_read_block(struct vhd_disk *d, uint64_t b, uint32_t in, uint8_t *buf,
		    size_t len);
/* What @d's own file says of [@off, *@end) (@end <= @limit): */
enum vhdx_own {
	VHDX_OWN_BELOW, /* nothing: the parent's data shows */
	VHDX_OWN_DATA,	/* data stored in the file */
	VHDX_OWN_ZERO,	/* zeros (a zero block state, or past the end) */
};
int vhdx_own_extent(struct vhd_disk *d, uint64_t off, uint64_t limit,
		    enum vhdx_own *own, uint64_t *end);
/* vhd_locate() of a VHDX chain member (map.c's contract). */
int vhdx_locate(struct vhd_disk *d, uint64_t off, uint64_t limit, int depth,
		struct vhd_where *w);
int vhdx_extent(struct vhd_disk *d, uint64_t off, uint64_t limit, bool *data,
		uint64_t *end);

#endif
