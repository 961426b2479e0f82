// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <unistd.h>

#include "progress.h"

#define BAR_WIDTH 40

void cli_progress_init(struct cli_progress *p, const char *label)
{
	p->label = label;
	p->enabled = isatty(STDERR_FILENO);
	p->last_permille = -1;
}

int cli_progress_cb(void *ctx, uint64_t done, uint64_t total)
{
	struct cli_progress *p = ctx;
	int permille, filled;

	if (!p->enabled)
		return 0;
	permille = total ? (int)(done * 1000 / total) : 1000;
	if (permille > 1000)
		permille = 1000;
	/* Redraw only on visible change: a terminal is slow. */
	if (permille == p->last_permille)
		return 0;
	p->last_permille = permille;
	filled = permille * BAR_WIDTH / 1000;
	fprintf(stderr, "\r%s [%-*.*s] %3d.%d%%", p->label, BAR_WIDTH, filled,
		"========================================", permille / 10,
		permille % 10);
	fflush(stderr);
	return 0;
}

void cli_progress_done(struct cli_progress *p)
{
	if (p->enabled && p->last_permille >= 0) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	p->last_permille = -1;
}
