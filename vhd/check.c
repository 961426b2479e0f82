// SPDX-License-Identifier: MIT
/* Consistency check: what open tolerates but a careful admin wants to know. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx_i.h"

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

/* Overlaps are beyond repair: the data of one party is already lost. */
static void report_overlap(void *ctx, const char *msg)
{
	say(ctx, true, "%s (not fixable by vhd repair)", msg);
}

static void check_chain(const char *path, struct checker *c)
{
	struct vhd_disk *chain;
	struct vhd_info info;

	int r = vhd_open(path, VHD_OPEN_RDONLY, &chain);

	/* What fixes a chain that does not open, when something does. */
	if (r == -ENOENT && strstr(vhd_errmsg(), "parent not found"))
		say(c, true,
		    "%s (if the parent moved: vhd reparent CHILD PARENT)",
		    vhd_errmsg());
	else if (r == -EINVAL &&
		 strstr(vhd_errmsg(), "parent linkage mismatch"))
		say(c, true, "%s (not fixable by vhd repair)", vhd_errmsg());
	else if (r == -EINVAL && strstr(vhd_errmsg(), "unique id mismatch"))
		say(c, true,
		    "%s (vhd reparent --ignore-id-mismatch accepts that "
		    "parent)",
		    vhd_errmsg());
	else if (r < 0)
		say(c, true, "%s", vhd_errmsg());
	if (r < 0)
		return;
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

/* Footer and header defects, each with whether vhd repair fixes it. */
static void check_repairable(const char *path, struct checker *c)
{
	int n = vhd_repair_scan(path, c->report, c->ctx);

	if (n > 0)
		c->problems += n;
}

int vhd_check(const char *path, vhd_report_fn report, void *ctx)
{
	struct checker c = {report, ctx, 0};
	struct vhd_disk *d;
	int r;

	vhd_clear_error();
	if (vhdx_probe(path) == 1) {
		bool opens;

		r = vhdx_check_file(path, report, ctx, &opens);
		if (r < 0)
			return r;
		c.problems = r;
		/* The parents, when the file itself opens. */
		if (opens)
			check_chain(path, &c);
		vhd_clear_error();
		return c.problems;
	}
	r = vhd_open_one(path, VHD_OPEN_RDONLY, &d);
	if (r < 0) {
		char why[1024];

		/* Unopenable only because of what repair fixes: say so. */
		snprintf(why, sizeof(why), "%s", vhd_errmsg());
		check_repairable(path, &c);
		if (c.problems)
			return c.problems;
		vhd_set_error(r, "%s", why);
		return r;
	}
	if (vhd_lock_written_elsewhere(d->fd))
		say(&c, true,
		    "%s: in use: " VHD_MSG_WRITTEN_ELSEWHERE "; what "
		    "is checked may change under the check",
		    path);
	if (d->footer.saved_state)
		say(&c, false, "note: %s: saved-state flag is set", path);
	{
		char msg[8192];

		if (vhd_merge_leftover(path, d->footer.uuid, msg, sizeof(msg)))
			say(&c, true, "%s", msg);
	}
	check_repairable(path, &c);
	if (d->footer.disk_type != VHD_TYPE_FIXED)
		r = vhd_layout_overlaps(d, 0, report_overlap, &c);
	vhd_close_one(d);
	if (r < 0)
		return r;
	check_chain(path, &c);
	vhd_clear_error(); /* problems went to @report */
	return c.problems;
}
