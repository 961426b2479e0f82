// SPDX-License-Identifier: MIT
/*
 * vhd map [--json] PATH: which chain level supplies each extent, in the
 * two shapes of `qemu-img map`: the human table lists data extents only,
 * JSON lists every extent (zero ones with "data": false).
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "vhd.h"

struct map_out {
	struct json j;
	bool json;
	int bottom; /* level of the last image of the chain */
};

static int put_text(void *ctx, const struct vhd_extent *e)
{
	(void)ctx;
	if (e->depth >= 0)
		printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
		       e->offset, e->length, e->file_offset, e->file);
	return 0;
}

static int put_json(void *ctx, const struct vhd_extent *e)
{
	struct map_out *m = ctx;
	bool data = e->depth >= 0;

	json_begin_object(&m->j);
	json_kv_uint(&m->j, "start", e->offset);
	json_kv_uint(&m->j, "length", e->length);
	/* qemu gives zero extents the level the read fell through to. */
	json_kv_uint(&m->j, "depth", (uint64_t)(data ? e->depth : m->bottom));
	json_kv_bool(&m->j, "present", data);
	json_kv_bool(&m->j, "zero", !data);
	json_kv_bool(&m->j, "data", data);
	if (data) {
		json_kv_uint(&m->j, "offset", e->file_offset);
		json_kv_string(&m->j, "file", e->file);
	}
	json_end_object(&m->j);
	return 0;
}

int cmd_map(int argc, char **argv)
{
	struct map_out m = {0};
	struct vhd_disk *disk;
	const char *path;
	int st, err;

	st = cli_parse_flag(argc, argv, "json", &m.json, 1);
	if (st >= 0)
		return st;
	path = argv[optind];
	err = vhd_open(path, VHD_OPEN_RDONLY, &disk);
	if (err)
		return cli_fail(path, err);
	for (struct vhd_disk *p = vhd_parent(disk); p; p = vhd_parent(p))
		m.bottom++;
	if (m.json) {
		json_init(&m.j, stdout);
		json_begin_array(&m.j);
		err = vhd_map(disk, put_json, &m);
		json_end_array(&m.j);
		putchar('\n');
	} else {
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
		       "File");
		err = vhd_map(disk, put_text, &m);
	}
	if (err) {
		fflush(stdout);
		err = cli_fail(path, err);
	}
	vhd_close(disk);
	return err ? err : CLI_EXIT_OK;
}
