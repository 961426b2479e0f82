/* SPDX-License-Identifier: MIT */
/*
 * `vhd info`: what is gathered about an image (info.c) and the two ways of
 * printing it (info_text.c, info_json.c).
 */
#ifndef VHD_CLI_INFO_H
#define VHD_CLI_INFO_H

#include <stdbool.h>
#include <stdio.h>

#include "vhd.h"

struct info_chain_entry {
	const char *path; /* owned by the open handle */
	enum vhd_type type;
};

struct info_report {
	const char *path;
	struct vhd_info info;
	int n_locators;
	struct vhd_locator_info *locators; /* n_locators entries */
	/* Resolved chain, leaf first; just the leaf when unresolved. */
	int chain_len;
	struct info_chain_entry chain[VHD_MAX_CHAIN_DEPTH];
	/* Why the chain did not open ("" when it did). */
	char error[8192];
	/* A file was found where the parent should be, with another unique
	 * id: its path ("" when none) and id. */
	char mismatch_path[4096];
	uint8_t mismatch_uuid[16];
};

void info_print_text(FILE *f, const struct info_report *r);
void info_print_json(FILE *f, const struct info_report *r);

/* Lower-case canonical form of a 16-byte id. */
void info_format_uuid(const uint8_t id[16], char out[37]);
/* VHD time (seconds since 2000) as "YYYY-MM-DD HH:MM:SS UTC". */
void info_format_time(uint32_t vhd_time, char *out, size_t len);
/* Creator host OS code: "Wi2k", "Mac " or "0x%08x" when not printable. */
void info_format_os(uint32_t os, char out[16]);
/* Creator version major.minor. */
void info_format_version(uint32_t v, char out[16]);

#endif
