/* SPDX-License-Identifier: MIT */
/* Private structures of libvhd. Nothing outside vhd/ includes this. */
#ifndef VHD_I_H
#define VHD_I_H

#include <pthread.h>
#include <stdatomic.h>
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
	/* Cached bitmaps, filled lazily with compare-and-swap so readers of
	 * read-only images need no lock; changed only under the write lock. */
	_Atomic(uint8_t *) *bitmaps;
	/*
	 * Blocks whose BAT entry or bitmap changed in memory but not yet on
	 * disk (writable images only; protected by lock). Metadata reaches
	 * the file only in vhd_flush, after the data it describes is
	 * durable, so a crash can never expose unwritten sectors.
	 */
	uint32_t *dirty;
	uint32_t ndirty;
	uint8_t *dirty_flag; /* per block: queued in dirty[] */

	struct vhd_disk *parent;
};

/* error.c */
int vhd_set_error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Every public call that can fail starts with this. */
void vhd_clear_error(void);

/* fileio.c: full-length transfers through the (injectable) ops table. */
int vhd_io_read(int fd, void *buf, size_t len, uint64_t off);
int vhd_io_write(int fd, const void *buf, size_t len, uint64_t off);
int vhd_io_sync(int fd);

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
static inline bool vhd_bit_test(const uint8_t *map, uint32_t i)
{
	return map[i / 8] & (0x80 >> (i % 8));
}
static inline void vhd_bit_set(uint8_t *map, uint32_t i)
{
	map[i / 8] |= (uint8_t)(0x80 >> (i % 8));
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

/* layout.c */
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
int vhd_open_one(const char *path, int flags, struct vhd_disk **out);
void vhd_close_one(struct vhd_disk *d);
/* Close a read-only chain without touching the error message. */
void vhd_close_chain(struct vhd_disk *d);

/* io.c: pending metadata to disk and sync; caller holds the write lock. */
int vhd_flush_locked(struct vhd_disk *d);
/* io.c: internal read of a byte range; caller holds the lock if any. */
int vhd_read_resolved(struct vhd_disk *d, uint8_t *buf, size_t len,
		      uint64_t off);

static inline uint64_t vhd_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

#endif
