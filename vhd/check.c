// SPDX-License-Identifier: MIT
/* Consistency check: what open tolerates but a careful admin wants to know. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd_i.h"

struct checker {
	vhd_report_fn report;
	void *ctx;
	int problems;
};

static void __attribute__((format(printf, 3, 4)))
say(struct checker *c, bool problem, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->problems += problem;
	if (c->report)
		c->report(c->ctx, msg);
}

static void report_overlap(void *ctx, const char *msg)
{
	say(ctx, true, "%s", msg);
}

static void check_footer_copy(struct vhd_disk *d, struct checker *c)
{
	uint8_t copy[VHD_FOOTER_SIZE], trailing[VHD_FOOTER_SIZE];

	if (d->footer_from_copy) {
		say(c, true,
		    "%s: trailing footer is damaged; the copy at "
		    "offset 0 was used",
		    d->path);
		return;
	}
	if (vhd_io_read(d->fd, copy, sizeof(copy), 0) < 0 ||
	    vhd_io_read(d->fd, trailing, sizeof(trailing), d->footer_off) < 0)
		return;
	if (memcmp(copy, trailing, sizeof(copy)) != 0)
		say(c, true,
		    "%s: footer copy at offset 0 differs from the "
		    "trailing footer",
		    d->path);
}

static void check_chain(const char *path, struct checker *c)
{
	struct vhd_disk *chain;
	struct vhd_info info;

	if (vhd_open(path, VHD_OPEN_RDONLY, &chain) < 0) {
		say(c, true, "%s", vhd_errmsg());
		return;
	}
	for (struct vhd_disk *d = chain; d; d = d->parent) {
		vhd_get_info(d, &info);
		if (info.parent_timestamp_mismatch)
			say(c, false,
			    "warning: %s: parent timestamp %u does not match "
			    "the parent file's modification time",
			    d->path, info.parent_timestamp);
	}
	vhd_close_chain(chain);
}

int vhd_check(const char *path, vhd_report_fn report, void *ctx)
{
	struct checker c = {report, ctx, 0};
	struct vhd_disk *d;
	int r;

	vhd_clear_error();
	r = vhd_open_one(path, VHD_OPEN_RDONLY, &d);
	if (r < 0)
		return r;
	if (d->footer.saved_state)
		say(&c, false, "note: %s: saved-state flag is set", path);
	if (d->footer.disk_type != VHD_TYPE_FIXED) {
		check_footer_copy(d, &c);
		r = vhd_layout_overlaps(d, 0, report_overlap, &c);
	}
	vhd_close_one(d);
	if (r < 0)
		return r;
	check_chain(path, &c);
	vhd_clear_error(); /* problems went to @report */
	return c.problems;
}
