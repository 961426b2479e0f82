// SPDX-License-Identifier: MIT
/* `vhd info` for humans: one "Label: value" line per field. */
#include <ctype.h>
#include <string.h>

#include "info.h"
#include "size.h"

#define LABEL "%-21s "

/* Creator app as printable text: "tap\0" and other codes stay readable. */
static void printable(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < len; i++)
		out[i] = isprint((unsigned char)in[i]) ? in[i] : '?';
	out[i] = '\0';
}

static void print_size(FILE *f, const char *label, uint64_t v)
{
	char h[32];

	fprintf(f, LABEL "%llu bytes (%s)\n", label, (unsigned long long)v,
		cli_format_size(v, h, sizeof(h)));
}

static void print_time(FILE *f, const char *label, uint32_t t)
{
	char s[64];

	info_format_time(t, s, sizeof(s));
	fprintf(f, LABEL "%u (%s)\n", label, t, s);
}

static void print_locators(FILE *f, const struct info_report *r)
{
	int i;

	fprintf(f, LABEL "%d\n", "Parent locators:", r->n_locators);
	for (i = 0; i < r->n_locators; i++) {
		const struct vhd_locator_info *l = &r->locators[i];

		fprintf(f,
			"  [%d] %-4s offset %llu space %u length %u path %s\n",
			i, l->code_str, (unsigned long long)l->data_offset,
			l->data_space, l->data_length, l->path);
	}
}

static void print_parent(FILE *f, const struct info_report *r)
{
	const struct vhd_info *in = &r->info;
	char s[64];

	info_format_uuid(in->parent_uuid, s);
	fprintf(f, LABEL "%s\n", "Parent UUID:", s);
	print_time(f, "Parent timestamp:", in->parent_timestamp);
	if (in->parent_timestamp_mismatch)
		fprintf(f, LABEL "%s\n", "Warning:",
			"parent timestamp mismatch (the parent file's mtime "
			"differs from the one recorded in the child)");
	fprintf(f, LABEL "%s\n", "Parent name:", in->parent_name);
	print_locators(f, r);
	if (r->chain_len > 1) {
		fprintf(f, LABEL "%s\n", "Parent:", r->chain[1].path);
	} else if (r->mismatch_path[0]) {
		char other[64];

		info_format_uuid(r->mismatch_uuid, other);
		fprintf(f,
			LABEL "(found at %s but its unique id differs: "
			      "expected %s, found %s)\n",
			"Parent:", r->mismatch_path, s, other);
	} else {
		fprintf(f, LABEL "%s\n", "Parent:", "(not found)");
	}
}

static void print_chain(FILE *f, const struct info_report *r)
{
	int i;

	fprintf(f, "Chain:%s\n", r->error[0] ? " (unresolved)" : "");
	for (i = 0; i < r->chain_len; i++)
		fprintf(f, "  %s (%s)\n", r->chain[i].path,
			vhd_type_name(r->chain[i].type));
}

/* VHDX has no footer fields (creator, geometry, timestamps). */
static void print_vhdx(FILE *f, const struct info_report *r)
{
	const struct vhd_info *in = &r->info;
	char s[64];

	fprintf(f, LABEL "%s\n", "Format:", "VHDX");
	fprintf(f, LABEL "%s\n", "Type:", vhd_type_name(in->type));
	print_size(f, "Virtual size:", in->current_size);
	print_size(f, "File size:", in->file_size);
	print_size(f, "Block size:", in->block_size);
	fprintf(f, LABEL "%u\n",
		"Logical sector size:", in->logical_sector_size);
	fprintf(f, LABEL "%u\n",
		"Physical sector size:", in->physical_sector_size);
	fprintf(f, LABEL "%u\n", "BAT entries:", in->max_table_entries);
	fprintf(f, LABEL "%u\n", "Allocated blocks:", in->allocated_blocks);
	fprintf(f, LABEL "%llu\n",
		"BAT offset:", (unsigned long long)in->table_offset);
	info_format_uuid(in->uuid, s);
	fprintf(f, LABEL "%s\n", "Virtual disk ID:", s);
	if (in->log_replayed)
		fprintf(f, LABEL "%s\n", "Log:",
			"a crashed writer's log was replayed in memory (the "
			"file is unchanged)");
	if (in->type == VHD_TYPE_DIFF) {
		info_format_uuid(in->parent_uuid, s);
		fprintf(f, LABEL "%s\n", "Parent linkage:", s);
		fprintf(f, LABEL "%s\n", "Parent name:", in->parent_name);
		fprintf(f, LABEL "%s\n", "Parent:",
			r->chain_len > 1 ? r->chain[1].path : "(not found)");
	}
	print_chain(f, r);
}

void info_print_text(FILE *f, const struct info_report *r)
{
	const struct vhd_info *in = &r->info;
	char s[64];

	fprintf(f, LABEL "%s\n", "Path:", r->path);
	if (in->format == VHD_FORMAT_VHDX) {
		print_vhdx(f, r);
		return;
	}
	fprintf(f, LABEL "%s\n", "Type:", vhd_type_name(in->type));
	print_size(f, "Virtual size:", in->current_size);
	print_size(f, "Original size:", in->original_size);
	print_size(f, "File size:", in->file_size);
	if (in->type == VHD_TYPE_FIXED) {
		fprintf(f, LABEL "%s\n", "Block size:", "none (fixed)");
	} else {
		print_size(f, "Block size:", in->block_size);
		fprintf(f, LABEL "%u\n",
			"Max table entries:", in->max_table_entries);
		fprintf(f, LABEL "%u\n",
			"Allocated blocks:", in->allocated_blocks);
		fprintf(f, LABEL "%llu\n",
			"Table offset:", (unsigned long long)in->table_offset);
	}
	fprintf(f, LABEL "0x%08x%s\n", "Features:", in->features,
		in->features & 1 ? " (temporary)" : "");
	print_time(f, "Timestamp:", in->timestamp);
	printable(in->creator_app, s, sizeof(s));
	fprintf(f, LABEL "\"%s\"\n", "Creator application:", s);
	info_format_version(in->creator_version, s);
	fprintf(f, LABEL "%s\n", "Creator version:", s);
	info_format_os(in->creator_os, s);
	fprintf(f, LABEL "%s\n", "Creator OS:", s);
	fprintf(f, LABEL "%u/%u/%u\n", "Geometry (C/H/S):", in->cylinders,
		in->heads, in->sectors_per_track);
	info_format_uuid(in->uuid, s);
	fprintf(f, LABEL "%s\n", "UUID:", s);
	fprintf(f, LABEL "%s\n",
		"Saved state:", in->saved_state ? "yes" : "no");
	if (in->footer_from_copy)
		fprintf(f, LABEL "%s\n", "Footer:",
			"trailing footer damaged; using the copy at offset 0");
	if (in->type == VHD_TYPE_DIFF)
		print_parent(f, r);
	print_chain(f, r);
}
