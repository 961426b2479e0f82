/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer targets: a scratch directory made once per
 * process (in $FUZZ_TMPDIR, else /dev/shm when it exists, else $TMPDIR or
 * /tmp) and removed at exit, and whole-file writes into it. A failed
 * system call here is not a finding: it aborts with a message.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The scratch directory (created on first call). */
const char *fz_dir(void);
/* fz_dir()/@name in a static buffer per call site slot (@slot 0..3). */
const char *fz_path(int slot, const char *name);
/* Replace @path by @len bytes of @data. */
void fz_write_file(const char *path, const void *data, size_t len);
/* Remove every file of the scratch directory (not the directory). */
void fz_clean(void);
/* Abort with "fuzz: @what: ..." unless @cond: a broken promise. */
#define FZ_ASSERT(cond, ...) ((cond) ? (void)0 : fz_fail(__VA_ARGS__))
void fz_fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* Little-endian integers from the fuzz input, 0 past its end. */
struct fz_in {
	const uint8_t *p;
	size_t len, pos;
};
uint64_t fz_take(struct fz_in *in, int bytes);

#endif
