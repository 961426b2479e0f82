// SPDX-License-Identifier: MIT
/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX stores in
 * its headers, region tables and log entries. Byte-wise table: the
 * structures are read once at open, so speed does not matter here.
 */
#include <pthread.h>

#include "vhdx_i.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[i] = c;
	}
}

static uint32_t update(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return crc;
}

uint32_t vhd_crc32c(const void *buf, size_t len)
{
	pthread_once(&table_once, make_table);
	return update(0xFFFFFFFFu, buf, len) ^ 0xFFFFFFFFu;
}

uint32_t vhd_crc32c_skip(const uint8_t *buf, size_t len, size_t off)
{
	static const uint8_t zero[4];
	uint32_t crc = 0xFFFFFFFFu;

	pthread_once(&table_once, make_table);
	if (off + 4 > len)
		return update(crc, buf, len) ^ 0xFFFFFFFFu;
	crc = update(crc, buf, off);
	crc = update(crc, zero, 4);
	crc = update(crc, buf + off + 4, len - off - 4);
	return crc ^ 0xFFFFFFFFu;
}
