// SPDX-License-Identifier: MIT
/* Thread-local last error message: errno alone cannot name the defect. */
#include <stdarg.h>
#include <stdio.h>

#include "vhd_i.h"

static _Thread_local char errmsg[8192];

int vhd_set_error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return err;
}

void vhd_clear_error(void)
{
	errmsg[0] = 0;
}

const char *vhd_errmsg(void)
{
	return errmsg;
}
