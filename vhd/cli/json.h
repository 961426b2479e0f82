/* SPDX-License-Identifier: MIT */
/*
 * A minimal streaming JSON writer for `vhd info --json`: pretty-printed,
 * strings escaped per RFC 8259, invalid UTF-8 replaced by U+FFFD so the
 * output always parses.
 */
#ifndef VHD_CLI_JSON_H
#define VHD_CLI_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int depth;
	/* first[d]: nothing written yet at nesting level d */
	bool first[JSON_MAX_DEPTH];
	/* a key was just written: the next value follows it on the line */
	bool after_key;
};

void json_init(struct json *j, FILE *f);

/* Write @s as a quoted, escaped JSON string (no separators). */
void json_put_string(FILE *f, const char *s);

void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);

/* Inside an object: the key of the next value. */
void json_key(struct json *j, const char *key);

void json_string(struct json *j, const char *s); /* NULL writes null */
void json_uint(struct json *j, uint64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/* Shorthands for key + value inside an object. */
void json_kv_string(struct json *j, const char *key, const char *s);
void json_kv_uint(struct json *j, const char *key, uint64_t v);
void json_kv_bool(struct json *j, const char *key, bool v);

#endif
