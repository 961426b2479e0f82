// SPDX-License-Identifier: MIT
/*
 * `vhd info --json`: the same facts as the text form, snake_case keys.
 * Every key is always present; fields that do not apply to the type are
 * null (parent fields of a non-differencing image), so consumers can rely
 * on one shape.
 */
#include "info.h"
#include "json.h"

static void put_uuid(struct json *j, const char *key, const uint8_t id[16])
{
	char s[37];

	info_format_uuid(id, s);
	json_kv_string(j, key, s);
}

static void put_time(struct json *j, const char *key, const char *utc_key,
		     uint32_t t)
{
	char s[64];

	info_format_time(t, s, sizeof(s));
	json_kv_uint(j, key, t);
	json_kv_string(j, utc_key, s);
}

static void put_locators(struct json *j, const struct info_report *r)
{
	int i;

	json_key(j, "locators");
	json_begin_array(j);
	for (i = 0; i < r->n_locators; i++) {
		const struct vhd_locator_info *l = &r->locators[i];

		json_begin_object(j);
		json_kv_string(j, "code", l->code_str);
		json_kv_uint(j, "code_value", l->code);
		json_kv_uint(j, "offset", l->data_offset);
		json_kv_uint(j, "space", l->data_space);
		json_kv_uint(j, "length", l->data_length);
		json_kv_string(j, "path", l->path);
		json_end_object(j);
	}
	json_end_array(j);
}

static void put_parent(struct json *j, const struct info_report *r)
{
	const struct vhd_info *in = &r->info;
	bool diff = in->type == VHD_TYPE_DIFF;

	if (diff) {
		put_uuid(j, "parent_uuid", in->parent_uuid);
		put_time(j, "parent_timestamp", "parent_timestamp_utc",
			 in->parent_timestamp);
		json_kv_bool(j, "parent_timestamp_mismatch",
			     in->parent_timestamp_mismatch);
		json_kv_string(j, "parent_name", in->parent_name);
	} else {
		json_key(j, "parent_uuid");
		json_null(j);
		json_key(j, "parent_timestamp");
		json_null(j);
		json_key(j, "parent_timestamp_utc");
		json_null(j);
		json_key(j, "parent_timestamp_mismatch");
		json_null(j);
		json_key(j, "parent_name");
		json_null(j);
	}
	put_locators(j, r);
	json_kv_string(j, "parent", r->chain_len > 1 ? r->chain[1].path : NULL);
}

static void put_chain(struct json *j, const struct info_report *r)
{
	int i;

	json_key(j, "chain");
	json_begin_array(j);
	for (i = 0; i < r->chain_len; i++) {
		json_begin_object(j);
		json_kv_string(j, "path", r->chain[i].path);
		json_kv_string(j, "type", vhd_type_name(r->chain[i].type));
		json_end_object(j);
	}
	json_end_array(j);
}

void info_print_json(FILE *f, const struct info_report *r)
{
	const struct vhd_info *in = &r->info;
	struct json j;
	char s[64];

	json_init(&j, f);
	json_begin_object(&j);
	json_kv_string(&j, "path", r->path);
	json_kv_string(&j, "format",
		       in->format == VHD_FORMAT_VHDX ? "vhdx" : "vhd");
	json_kv_string(&j, "type", vhd_type_name(in->type));
	json_kv_uint(&j, "current_size", in->current_size);
	json_kv_uint(&j, "original_size", in->original_size);
	json_kv_uint(&j, "file_size", in->file_size);
	json_kv_uint(&j, "block_size", in->block_size);
	json_kv_uint(&j, "max_table_entries", in->max_table_entries);
	json_kv_uint(&j, "allocated_blocks", in->allocated_blocks);
	json_kv_uint(&j, "table_offset", in->table_offset);
	json_kv_uint(&j, "features", in->features);
	put_time(&j, "timestamp", "timestamp_utc", in->timestamp);
	json_kv_string(&j, "creator_app", in->creator_app);
	info_format_version(in->creator_version, s);
	json_kv_string(&j, "creator_version", s);
	info_format_os(in->creator_os, s);
	json_kv_string(&j, "creator_os", s);
	json_key(&j, "geometry");
	json_begin_object(&j);
	json_kv_uint(&j, "cylinders", in->cylinders);
	json_kv_uint(&j, "heads", in->heads);
	json_kv_uint(&j, "sectors_per_track", in->sectors_per_track);
	json_end_object(&j);
	put_uuid(&j, "uuid", in->uuid);
	json_kv_bool(&j, "saved_state", in->saved_state);
	json_kv_bool(&j, "footer_from_copy", in->footer_from_copy);
	if (in->format == VHD_FORMAT_VHDX) {
		json_kv_uint(&j, "logical_sector_size",
			     in->logical_sector_size);
		json_kv_uint(&j, "physical_sector_size",
			     in->physical_sector_size);
		json_kv_bool(&j, "log_replayed", in->log_replayed);
	}
	put_parent(&j, r);
	put_chain(&j, r);
	json_kv_string(&j, "error", r->error[0] ? r->error : NULL);
	json_end_object(&j);
}
