/* SPDX-License-Identifier: MIT */
/*
 * Progress bar of long CLI commands: drawn on stderr only when stderr is a
 * terminal, so scripts and logs see no control characters.
 */
#ifndef VHD_CLI_PROGRESS_H
#define VHD_CLI_PROGRESS_H

#include <stdint.h>

struct cli_progress {
	const char *label; /* e.g. "merging" */
	int enabled;	   /* stderr is a tty */
	int last_permille; /* last drawn, -1 = nothing drawn yet */
};

/* Prepare @p; the bar is enabled only when stderr is a terminal. */
void cli_progress_init(struct cli_progress *p, const char *label);
/* A vhd_progress_fn: @ctx is a struct cli_progress. Never cancels. */
int cli_progress_cb(void *ctx, uint64_t done, uint64_t total);
/* Erase the bar (if drawn) so the next message starts on a clean line. */
void cli_progress_done(struct cli_progress *p);

#endif
