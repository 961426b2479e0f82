// SPDX-License-Identifier: MIT
/*
 * Writing a new VHDX into an empty file, laid out as Hyper-V does: log at
 * 1 MiB, metadata at 2 MiB, BAT at 3 MiB (1 MiB each, the BAT rounded up
 * to whole MiB), payload after. The log is left zero (empty): LogGuid is
 * zero in both headers. The caller (create.c) owns the temporary file and
 * links it into place only when this succeeded.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "vhdx_i.h"

#define LOG_OFF VHDX_MIB
#define LOG_LEN VHDX_MIB
#define META_OFF (2 * VHDX_MIB)
#define META_LEN VHDX_MIB
#define BAT_OFF (3 * VHDX_MIB)

/* metadata item flags */
#define IS_VIRTUAL_DISK 2u
#define IS_REQUIRED 4u

void vhdx_guid_new(uint8_t g[16])
{
	/* RFC 4122 bytes to the Windows layout, so the text form shows the
	 * version-4 digit where tools expect it. */
	static const int pos[16] = {3, 2, 1,  0,  5,  4,  7,  6,
				    8, 9, 10, 11, 12, 13, 14, 15};
	uuid_t u;

	uuid_generate_random(u);
	for (int i = 0; i < 16; i++)
		g[pos[i]] = u[i];
}

uint64_t vhdx_bat_entries_for(uint64_t size, uint32_t bs, uint32_t lss,
			      bool diff)
{
	uint64_t cr = ((uint64_t)1 << 23) * lss / bs;
	uint64_t payload = (size + bs - 1) / bs;
	uint64_t chunks = (payload + cr - 1) / cr;

	return diff ? chunks * (cr + 1) : payload + (payload - 1) / cr;
}

void vhdx_header_encode(const struct vhdx_header *h, uint8_t *b)
{
	memset(b, 0, VHDX_HEADER_SIZE);
	memcpy(b, "head", 4);
	vhdx_put64(b + 8, h->seq);
	memcpy(b + 16, h->file_write_guid, 16);
	memcpy(b + 32, h->data_write_guid, 16);
	memcpy(b + 48, h->log_guid, 16);
	vhdx_put16(b + 64, h->log_version);
	vhdx_put16(b + 66, h->version);
	vhdx_put32(b + 68, h->log_length);
	vhdx_put64(b + 72, h->log_offset);
	vhdx_put32(b + 4, vhd_crc32c_skip(b, VHDX_HEADER_SIZE, 4));
}

static void region_table(uint8_t *b, uint64_t bat_len)
{
	memset(b, 0, VHDX_REGION_SIZE);
	memcpy(b, "regi", 4);
	vhdx_put32(b + 8, 2);
	memcpy(b + 16, vhdx_guid_bat, 16);
	vhdx_put64(b + 32, BAT_OFF);
	vhdx_put32(b + 40, (uint32_t)bat_len);
	vhdx_put32(b + 44, 1);
	memcpy(b + 48, vhdx_guid_metadata, 16);
	vhdx_put64(b + 64, META_OFF);
	vhdx_put32(b + 72, META_LEN);
	vhdx_put32(b + 76, 1);
	vhdx_put32(b + 4, vhd_crc32c_skip(b, VHDX_REGION_SIZE, 4));
}

struct meta_builder {
	uint8_t *b;
	uint16_t count;
	uint32_t next; /* where the next item goes */
};

static void meta_add(struct meta_builder *m, const uint8_t guid[16],
		     const void *data, uint32_t len, uint32_t flags)
{
	uint8_t *e = m->b + 32 + 32 * (size_t)m->count++;

	memcpy(e, guid, 16);
	vhdx_put32(e + 16, m->next);
	vhdx_put32(e + 20, len);
	vhdx_put32(e + 24, flags);
	memcpy(m->b + m->next, data, len);
	m->next += len;
}

uint32_t vhdx_locator_item(uint8_t *it, const struct vhdx_new *n)
{
	static const char *const keys[] = {"parent_linkage", "relative_path",
					   "absolute_win32_path"};
	const uint8_t *vals[3];
	uint32_t vlens[3], pos;
	uint8_t linkage[2 * 40];
	char text[40];
	char g[37];

	vhdx_guid_str(n->parent_linkage, g);
	snprintf(text, sizeof(text), "{%s}", g);
	for (int i = 0; i < 38; i++) {
		linkage[2 * i] = (uint8_t)text[i];
		linkage[2 * i + 1] = 0;
	}
	vals[0] = linkage;
	vlens[0] = 76;
	vals[1] = n->relative_path;
	vlens[1] = n->relative_len;
	vals[2] = n->absolute_path;
	vlens[2] = n->absolute_len;
	memcpy(it, vhdx_guid_locator_type, 16);
	vhdx_put16(it + 18, 3);
	pos = 20 + 12 * 3;
	for (int i = 0; i < 3; i++) {
		uint8_t *e = it + 20 + 12 * i;
		size_t kl = strlen(keys[i]);

		vhdx_put32(e, pos);
		vhdx_put16(e + 8, (uint16_t)(2 * kl));
		for (size_t k = 0; k < kl; k++) {
			it[pos + 2 * k] = (uint8_t)keys[i][k];
			it[pos + 2 * k + 1] = 0;
		}
		pos += (uint32_t)(2 * kl);
		vhdx_put32(e + 4, pos);
		vhdx_put16(e + 10, (uint16_t)vlens[i]);
		memcpy(it + pos, vals[i], vlens[i]);
		pos += vlens[i];
	}
	return pos;
}

static int meta_region(uint8_t *b, const struct vhdx_new *n,
		       const uint8_t page83[16])
{
	struct meta_builder m = {.b = b, .next = VHDX_META_TABLE_SIZE};
	uint8_t fp[8], size[8], lss[4], pss[4];
	uint8_t *loc = NULL;

	memset(b, 0, META_LEN);
	memcpy(b, "metadata", 8);
	vhdx_put32(fp, n->block_size);
	vhdx_put32(fp + 4, (n->type == VHD_TYPE_FIXED ? 1u : 0) |
				   (n->type == VHD_TYPE_DIFF ? 2u : 0));
	vhdx_put64(size, n->size);
	vhdx_put32(lss, n->logical_sector);
	vhdx_put32(pss, n->physical_sector);
	meta_add(&m, vhdx_guid_file_params, fp, 8, IS_REQUIRED);
	meta_add(&m, vhdx_guid_disk_size, size, 8,
		 IS_REQUIRED | IS_VIRTUAL_DISK);
	meta_add(&m, vhdx_guid_page83, page83, 16,
		 IS_REQUIRED | IS_VIRTUAL_DISK);
	meta_add(&m, vhdx_guid_logical_sector, lss, 4,
		 IS_REQUIRED | IS_VIRTUAL_DISK);
	meta_add(&m, vhdx_guid_physical_sector, pss, 4,
		 IS_REQUIRED | IS_VIRTUAL_DISK);
	if (n->type == VHD_TYPE_DIFF) {
		uint32_t len;

		/* keys + three values of at most 64 KiB each */
		loc = calloc(1, VHDX_LOCATOR_ITEM_BUF);
		if (!loc)
			return -ENOMEM;
		len = vhdx_locator_item(loc, n);
		if (len > VHDX_META_ITEM_MAX - VHDX_META_TABLE_SIZE) {
			free(loc);
			return -ENAMETOOLONG;
		}
		meta_add(&m, vhdx_guid_parent_locator, loc, len, IS_REQUIRED);
		free(loc);
	}
	vhdx_put16(b + 10, m.count);
	return 0;
}

int vhdx_create_write(int fd, const char *path, const struct vhdx_new *n)
{
	uint64_t entries =
		vhdx_bat_entries_for(n->size, n->block_size, n->logical_sector,
				     n->type == VHD_TYPE_DIFF);
	uint64_t bat_len = (entries * 8 + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
	uint64_t payload = (n->size + n->block_size - 1) / n->block_size;
	uint64_t cr = ((uint64_t)1 << 23) * n->logical_sector / n->block_size;
	uint64_t data_off = BAT_OFF + bat_len, end = data_off;
	uint8_t *buf = calloc(1, META_LEN > bat_len ? META_LEN : bat_len);
	struct vhdx_header h = {0};
	uint8_t page83[16];
	int r;

	if (!buf)
		return vhd_set_error(-ENOMEM, "out of memory");
	/* identifier and creator (UTF-16LE, diagnostic only) */
	memcpy(buf, "vhdxfile", 8);
	for (size_t i = 0; i < strlen("vhdfs"); i++)
		buf[8 + 2 * i] = (uint8_t) "vhdfs"[i];
	r = vhd_io_write(fd, buf, 8 + 512, 0);
	/* headers: sequence numbers 1 and 2, both naming the same state */
	h.seq = 1;
	vhdx_guid_new(h.file_write_guid);
	vhdx_guid_new(h.data_write_guid);
	h.version = 1;
	h.log_length = LOG_LEN;
	h.log_offset = LOG_OFF;
	for (int i = 0; r == 0 && i < 2; i++, h.seq++) {
		vhdx_header_encode(&h, buf);
		r = vhd_io_write(fd, buf, VHDX_HEADER_SIZE, vhdx_header_at[i]);
	}
	region_table(buf, bat_len);
	if (r == 0)
		r = vhd_io_write(fd, buf, VHDX_REGION_SIZE, VHDX_REGION1_OFF);
	if (r == 0)
		r = vhd_io_write(fd, buf, VHDX_REGION_SIZE, VHDX_REGION2_OFF);
	if (r < 0)
		goto io;
	if (n->page83)
		memcpy(page83, n->page83, 16);
	else
		vhdx_guid_new(page83);
	r = meta_region(buf, n, page83);
	if (r < 0) {
		free(buf);
		return vhd_set_error(r, "%s: parent locator does not fit: %s",
				     path, strerror(-r));
	}
	r = vhd_io_write(fd, buf, META_LEN, META_OFF);
	if (r < 0)
		goto io;
	/* BAT: all 0 (NOT_PRESENT), or for a fixed disk every block
	 * FULLY_PRESENT in order after the BAT (sparse until written). */
	memset(buf, 0, bat_len);
	if (n->type == VHD_TYPE_FIXED) {
		for (uint64_t b = 0; b < payload; b++) {
			vhdx_put64(buf + 8 * (b + b / cr),
				   end | VHDX_PAYLOAD_FULLY_PRESENT);
			end += n->block_size;
		}
	}
	r = vhd_io_write(fd, buf, bat_len, BAT_OFF);
	if (r == 0 && ftruncate(fd, (off_t)end) < 0)
		r = -errno;
io:
	free(buf);
	if (r < 0)
		return vhd_set_error(r, "%s: write failed: %s", path,
				     strerror(-r));
	return 0;
}
