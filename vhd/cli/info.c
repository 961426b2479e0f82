// SPDX-License-Identifier: MIT
/*
 * vhd info [--json] PATH: gathers the leaf's metadata from a handle opened
 * without its parents (so a broken chain still shows the header), then
 * opens the chain separately to resolve it.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "cli.h"
#include "info.h"

void info_format_uuid(const uint8_t id[16], char out[37])
{
	uuid_unparse_lower(id, out);
}

void info_format_time(uint32_t vhd_time, char *out, size_t len)
{
	time_t t = (time_t)vhd_time + VHD_EPOCH_OFFSET;
	struct tm tm;

	if (!gmtime_r(&t, &tm) ||
	    !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, len, "?");
}

void info_format_os(uint32_t os, char out[16])
{
	char c[4] = {(char)(os >> 24), (char)(os >> 16), (char)(os >> 8),
		     (char)os};
	int i;

	for (i = 0; i < 4; i++) {
		if (!isprint((unsigned char)c[i])) {
			snprintf(out, 16, "0x%08x", os);
			return;
		}
	}
	snprintf(out, 16, "%.4s", c);
}

void info_format_version(uint32_t v, char out[16])
{
	snprintf(out, 16, "%u.%u", v >> 16, v & 0xFFFF);
}

static int get_locators(struct vhd_disk *meta, struct info_report *r)
{
	int n = vhd_locator_count(meta), i, err;

	if (n < 0)
		return n;
	if (n == 0)
		return 0;
	r->locators = calloc((size_t)n, sizeof(*r->locators));
	if (!r->locators)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		err = vhd_get_locator(meta, i, &r->locators[i]);
		if (err)
			return err;
	}
	r->n_locators = n;
	return 0;
}

/*
 * The chain did not open: explain why. vhd_find_parent()'s message lists
 * every path tried, which is what a user needs when the parent is missing;
 * when the parent itself is found, the failure is further up the chain
 * and vhd_open()'s own message says where.
 */
static void explain_chain_error(struct vhd_disk *meta, struct info_report *r,
				int open_err)
{
	char found[4096] = "";
	const char *m = vhd_errmsg();
	int err;

	if (m && *m)
		snprintf(r->error, sizeof(r->error), "%s", m);
	else
		snprintf(r->error, sizeof(r->error), "%s: %s", r->path,
			 strerror(-open_err));

	err = vhd_find_parent(meta, found, sizeof(found));
	if (err) {
		struct vhd_disk *other;
		struct vhd_info oi;

		m = vhd_errmsg();
		if (m && *m)
			snprintf(r->error, sizeof(r->error), "%s", m);
		/* Found, but not the parent: say where and which id. */
		if (err == -EINVAL && found[0] &&
		    vhd_open(found, VHD_OPEN_NOPARENT, &other) == 0) {
			if (vhd_get_info(other, &oi) == 0) {
				snprintf(r->mismatch_path,
					 sizeof(r->mismatch_path), "%s", found);
				memcpy(r->mismatch_uuid, oi.uuid, 16);
			}
			vhd_close(other);
		}
	}
}

/* Fill the chain (leaf first) from an opened chain. */
static void walk_chain(struct vhd_disk *full, struct info_report *r)
{
	struct vhd_disk *d;

	r->chain_len = 0;
	for (d = full; d && r->chain_len < VHD_MAX_CHAIN_DEPTH;
	     d = vhd_parent(d)) {
		r->chain[r->chain_len].path = vhd_path(d);
		r->chain[r->chain_len].type = vhd_type(d);
		r->chain_len++;
	}
}

/*
 * Resolve the chain of a differencing image into @r (leaf first). The
 * chain handle is kept in *@full so the path strings stay valid.
 */
static void resolve_chain(struct vhd_disk *meta, struct info_report *r,
			  struct vhd_disk **full)
{
	struct vhd_info fi;
	int err;

	err = vhd_open(r->path, VHD_OPEN_RDONLY, full);
	if (err) {
		*full = NULL;
		explain_chain_error(meta, r, err);
		return;
	}
	walk_chain(*full, r);
	/* Only the opened chain can compare the parent file's mtime. */
	if (!vhd_get_info(*full, &fi))
		r->info.parent_timestamp_mismatch =
			fi.parent_timestamp_mismatch;
}

/* Returns -1 to go on (operand at argv[optind]) or an exit status. */
static int parse_args(int argc, char **argv, bool *json)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'h':
			cli_print_usage(stdout, argv[0]);
			return CLI_EXIT_OK;
		default:
			return cli_option_error(argv[0], c, argv);
		}
	}
	return cli_check_operands(argc, argv, 1);
}

int cmd_info(int argc, char **argv)
{
	struct vhd_disk *meta = NULL, *full = NULL;
	struct info_report *r;
	bool json = false;
	int err, ret;

	ret = parse_args(argc, argv, &json);
	if (ret >= 0)
		return ret;
	ret = CLI_EXIT_OK;
	r = calloc(1, sizeof(*r));
	if (!r) {
		cli_msg("%s", strerror(ENOMEM));
		return CLI_EXIT_FAIL;
	}
	r->path = argv[optind];

	/* The leaf alone first, so a broken chain still shows its header. */
	err = vhd_open(r->path, VHD_OPEN_RDONLY | VHD_OPEN_NOPARENT, &meta);
	if (!err)
		err = vhd_get_info(meta, &r->info);
	if (!err && r->info.type == VHD_TYPE_DIFF)
		err = get_locators(meta, r);
	if (err) {
		ret = cli_fail(r->path, err);
		goto out;
	}
	r->chain[0].path = vhd_path(meta);
	r->chain[0].type = r->info.type;
	r->chain_len = 1;
	if (r->info.type == VHD_TYPE_DIFF)
		resolve_chain(meta, r, &full);

	if (json)
		info_print_json(stdout, r);
	else
		info_print_text(stdout, r);
	fflush(stdout);

	if (r->info.parent_timestamp_mismatch)
		cli_msg("warning: %s: parent timestamp mismatch", r->path);
	if (r->error[0]) {
		cli_msg("%s", r->error);
		ret = CLI_EXIT_FAIL;
	}
out:
	if (full)
		vhd_close(full);
	if (meta)
		vhd_close(meta);
	free(r->locators);
	free(r);
	return ret;
}
