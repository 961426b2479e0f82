// SPDX-License-Identifier: MIT
/* Logging: stderr in the foreground, syslog once daemonized. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "vhdfs.h"

void vhdfs_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vhdfs_cfg.syslog) {
		vsyslog(LOG_NOTICE, fmt, ap);
	} else {
		/* One fprintf per line so lines of threads do not interleave.
		 */
		char line[2048];

		vsnprintf(line, sizeof(line), fmt, ap);
		fprintf(stderr, "vhdfs: %s\n", line);
	}
	va_end(ap);
}
