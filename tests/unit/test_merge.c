// SPDX-License-Identifier: MIT
/*
 * vhd_merge: 1- and 3-level merges into fixed, dynamic and differencing
 * ancestors, each compared with the library's own reading of the original
 * chain; refusal while another image depends on a changed level; cancel;
 * and crash safety: the merge cut after its N-th write (three power-loss
 * modes) and failed at its N-th fsync, after which the child's view must
 * be unchanged and a rerun must complete the merge.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define BS (512u << 10)
#define SIZE (4 * (uint64_t)BS)
#define MAX_LEVELS 4

static const char *const vhd_names[MAX_LEVELS] = {"base.vhd", "mid1.vhd",
						  "mid2.vhd", "child.vhd"};
static const char *const vhdx_names[MAX_LEVELS] = {"base.vhdx", "mid1.avhdx",
						   "mid2.avhdx", "child.avhdx"};
/* The chain the shared cases build: set by the setup of each test. */
static const char *const *names = vhd_names;

/* The journal an interrupted merge of names[3] leaves. */
static const char *marker_of(const char *dir)
{
	char m[64];

	snprintf(m, sizeof(m), ".%s.merging", names[3]);
	return th_path(dir, m);
}

/* Write @len bytes of pattern @tag at @off into @path, and into @flat. */
static void put(const char *path, uint64_t off, size_t len, uint32_t tag,
		uint8_t *flat)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDWR);
	uint8_t *buf = malloc(len);

	th_fill_pattern(buf, len, off, tag);
	th_write(d, buf, len, off);
	assert_int_equal(vhd_close(d), 0);
	if (flat)
		memcpy(flat + off, buf, len);
	free(buf);
}

/*
 * base (@type) <- [mid1 <- mid2 <-] child, when @levels is 2 or 4, with
 * overlapping unaligned writes in every level. Returns the child's flat
 * view as the library reads the original chain (and checks it against
 * what was written).
 */
static uint8_t *build_chain(const char *dir, enum vhd_type type, int levels)
{
	const char *base = th_path(dir, names[0]);
	uint8_t *flat = calloc(1, SIZE), *got;
	struct vhd_disk *d;
	int n = 0;

	/* (a VHDX block is at least 1 MiB) */
	th_create(base, type, SIZE,
		  type == VHD_TYPE_FIXED ? 0
		  : names == vhdx_names	 ? 2 * BS
					 : BS);
	put(base, 0, 300 * 1024, 1, flat);
	put(base, 2 * BS + 512, 4096, 2, flat);
	const char *prev = base;

	for (int i = levels == 2 ? 3 : 1; i < MAX_LEVELS; i++, n++) {
		const char *p = th_path(dir, names[i]);

		th_create_diff(p, prev);
		put(p, 1000 + (uint64_t)i * 70000, 70000, 10 + (uint32_t)i,
		    flat);
		put(p, BS - 512 * (uint64_t)i, 1024, 20 + (uint32_t)i, flat);
		put(p, 3 * BS + 3, 5000 * (uint64_t)i, 30 + (uint32_t)i, flat);
		prev = p;
	}
	d = th_open(prev, VHD_OPEN_RDONLY);
	got = th_read_all(d);
	vhd_close(d);
	assert_memory_equal(got, flat, SIZE);
	free(got);
	return flat;
}

static void expect_flat(const char *path, const uint8_t *flat)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDONLY);

	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
}

static int count_progress(void *ctx, uint64_t done, uint64_t total)
{
	int *calls = ctx;

	assert_true(done <= total);
	assert_int_equal(total, SIZE);
	(*calls)++;
	return 0;
}

static void merged(const char *dir, const char *child, const uint8_t *flat,
		   const char *into, int levels)
{
	expect_flat(into, flat);
	assert_false(th_exists(child));
	if (levels == 4) {
		assert_false(th_exists(th_path(dir, names[1])));
		assert_false(th_exists(th_path(dir, names[2])));
	}
	assert_false(th_exists(marker_of(dir)));
	assert_int_equal(vhd_check(into, NULL, NULL), 0);
}

static void merge_case(const char *dir, enum vhd_type type, int levels,
		       bool explicit_ancestor)
{
	const char *child = th_path(dir, names[3]);
	const char *base = th_path(dir, names[0]);
	uint8_t *flat = build_chain(dir, type, levels);
	int calls = 0;

	assert_int_equal(vhd_merge(child, explicit_ancestor ? base : NULL,
				   count_progress, &calls),
			 0);
	assert_true(calls >= 2);
	merged(dir, child, flat, base, levels);
	free(flat);
}

static void test_one_level_dynamic(void **state)
{
	merge_case(DIR_, VHD_TYPE_DYNAMIC, 2, false);
}

static void test_one_level_fixed(void **state)
{
	merge_case(DIR_, VHD_TYPE_FIXED, 2, true);
}

static void test_three_levels_dynamic(void **state)
{
	merge_case(DIR_, VHD_TYPE_DYNAMIC, 4, true);
}

static void test_three_levels_fixed(void **state)
{
	merge_case(DIR_, VHD_TYPE_FIXED, 4, true);
}

/* Into a differencing ancestor: base stays as it was. */
static void test_into_differencing(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *mid1 = th_path(DIR_, "mid1.vhd");
	const char *base = th_path(DIR_, "base.vhd");
	uint8_t *flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 4);
	uint64_t h = th_file_hash(base);

	assert_int_equal(vhd_merge(child, mid1, NULL, NULL), 0);
	expect_flat(mid1, flat);
	assert_false(th_exists(child));
	assert_false(th_exists(th_path(DIR_, "mid2.vhd")));
	assert_true(th_file_hash(base) == h);
	/* The merged image merges on, down to the base. */
	assert_int_equal(vhd_merge(mid1, NULL, NULL, NULL), 0);
	expect_flat(base, flat);
	free(flat);
}

static uint64_t dir_hash(const char *dir)
{
	uint64_t h = 0;

	for (int i = 0; i < MAX_LEVELS; i++)
		h = h * 31 + th_file_hash(th_path(dir, names[i]));
	return h;
}

/* Another child of a changed or removed level: EPERM, nothing changed. */
static void test_refused_with_dependents(void **state)
{
	char child[PATH_MAX], other[PATH_MAX], snap[PATH_MAX];
	uint8_t *flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 4);
	uint64_t h;

	/* Own copies: th_path's ring of buffers turns over in dir_hash. */
	snprintf(child, sizeof(child), "%s", th_path(DIR_, "child.vhd"));
	snprintf(other, sizeof(other), "%s", th_path(DIR_, "other.vhd"));
	snprintf(snap, sizeof(snap), "%s", th_path(DIR_, "snap.avhd"));
	th_create_diff(other, th_path(DIR_, "base.vhd"));
	h = dir_hash(DIR_);
	assert_int_equal(
		vhd_merge(child, th_path(DIR_, "base.vhd"), NULL, NULL),
		-EPERM);
	assert_true(th_msg_has("other.vhd"));
	assert_true(dir_hash(DIR_) == h);
	unlink(other);

	/* A Hyper-V 2008 R2 snapshot (.avhd) is a dependent like any other. */
	th_create_diff(snap, th_path(DIR_, "base.vhd"));
	h = dir_hash(DIR_);
	assert_int_equal(
		vhd_merge(child, th_path(DIR_, "base.vhd"), NULL, NULL),
		-EPERM);
	assert_true(th_msg_has("snap.avhd"));
	assert_true(dir_hash(DIR_) == h);
	unlink(snap);
	h = dir_hash(DIR_);

	/* A child of an intermediate level that would go. */
	th_create_diff(other, th_path(DIR_, "mid1.vhd"));
	assert_int_equal(
		vhd_merge(child, th_path(DIR_, "base.vhd"), NULL, NULL),
		-EPERM);
	assert_true(dir_hash(DIR_) == h);
	/* Merging only into mid2 leaves mid1 alone: allowed. */
	assert_int_equal(vhd_merge(child, NULL, NULL, NULL), 0);
	expect_flat(th_path(DIR_, "mid2.vhd"), flat);
	free(flat);
}

static void test_bad_arguments(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *base = th_path(DIR_, "base.vhd");
	const char *lone = th_path(DIR_, "lone.vhd");
	uint8_t *flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 2);

	th_create(lone, VHD_TYPE_DYNAMIC, SIZE, BS);
	assert_int_equal(vhd_merge(base, NULL, NULL, NULL), -EINVAL);
	assert_true(th_msg_names(base));
	assert_int_equal(vhd_merge(child, lone, NULL, NULL), -EINVAL);
	assert_true(th_msg_has("not an ancestor"));
	assert_int_equal(vhd_merge(child, child, NULL, NULL), -EINVAL);
	assert_int_equal(vhd_merge(th_path(DIR_, "none.vhd"), NULL, NULL, NULL),
			 -ENOENT);
	assert_int_equal(
		vhd_merge(child, th_path(DIR_, "none.vhd"), NULL, NULL),
		-ENOENT);
	expect_flat(child, flat);
	free(flat);
}

static int cancel_at(void *ctx, uint64_t done, uint64_t total)
{
	(void)total;
	return done >= *(uint64_t *)ctx;
}

static void test_cancel(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *base = th_path(DIR_, "base.vhd");
	uint8_t *flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 4);
	uint64_t at[] = {0, SIZE / 2, SIZE};

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		assert_int_equal(vhd_merge(child, base, cancel_at, &at[i]),
				 -ECANCELED);
		expect_flat(child, flat);
	}
	assert_int_equal(vhd_merge(child, base, NULL, NULL), 0);
	merged(DIR_, child, flat, base, 4);
	free(flat);
}

/*
 * What another tool does in BACKING_DIR while the merge runs (at its first
 * progress call): rename a level, and maybe put a file under its old name.
 */
struct meddle {
	const char *from, *to; /* rename */
	const char *copy;      /* then copy this file to @from, if set */
	bool done;
};

static int meddle(void *ctx, uint64_t done, uint64_t total)
{
	struct meddle *md = ctx;

	(void)done;
	(void)total;
	if (!md->done) {
		md->done = true;
		assert_int_equal(rename(md->from, md->to), 0);
		if (md->copy)
			th_copy_file(md->copy, md->from);
	}
	return 0;
}

/*
 * A level renamed during the merge is removed under its new name; a file
 * that took its old name (here a byte copy of the child, same unique id)
 * is not touched.
 */
static void test_renamed_level(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *base = th_path(DIR_, "base.vhd");
	const char *saved = th_path(DIR_, "saved.copy");
	uint8_t *flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 4);

	th_copy_file(child, saved);
	/* The leaf, then a middle level; the old names get new files. */
	for (int i = 0; i < 2; i++) {
		const char *from = i ? th_path(DIR_, "mid2.vhd") : child;
		const char *to = th_path(DIR_, i ? "moved2.vhd" : "moved.vhd");
		struct meddle md = {from, to, saved, false};
		uint64_t h = th_file_hash(saved);

		if (i) {
			free(flat);
			unlink(child);
			unlink(from);
			unlink(base);
			unlink(th_path(DIR_, "mid1.vhd"));
			flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 4);
			th_copy_file(from, saved);
			h = th_file_hash(saved);
		}
		assert_int_equal(vhd_merge(child, base, meddle, &md), 0);
		assert_true(md.done);
		expect_flat(base, flat);
		/* The file that took the old name first: losing it is worse. */
		assert_true(th_exists(from));
		assert_int_equal(th_file_hash(from), h);
		assert_false(th_exists(to));
		assert_false(th_exists(marker_of(DIR_)));
	}
	free(flat);
}

/*
 * A level moved out of its directory cannot be found: the merge leaves it
 * and says so, naming it; the file under the old name is left alone.
 */
static void test_moved_away_level(void **state)
{
	const char *child = th_path(DIR_, "child.vhd");
	const char *base = th_path(DIR_, "base.vhd");
	char sub[PATH_MAX];
	uint8_t *flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 2);

	snprintf(sub, sizeof(sub), "%s", th_path(DIR_, "sub"));
	assert_int_equal(mkdir(sub, 0755), 0);
	struct meddle md = {child, th_path(sub, "child.vhd"), NULL, false};

	assert_int_equal(vhd_merge(child, base, meddle, &md), -EEXIST);
	assert_non_null(strstr(vhd_errmsg(), "moved out of its directory"));
	expect_flat(base, flat);
	assert_true(th_exists(th_path(sub, "child.vhd")));
	assert_false(th_exists(marker_of(DIR_)));
	unlink(th_path(sub, "child.vhd"));
	rmdir(sub);
	free(flat);
}

/* --- crash sweeps -------------------------------------------------------- */

static void save_chain(const char *dir, int levels)
{
	for (int i = 0; i < MAX_LEVELS; i++) {
		char orig[64];

		if (levels == 2 && i && i < 3)
			continue;
		snprintf(orig, sizeof(orig), "%s.orig", names[i]);
		th_copy_file(th_path(dir, names[i]), th_path(dir, orig));
	}
}

static void restore_chain(const char *dir, int levels)
{
	unlink(marker_of(dir));
	for (int i = 0; i < MAX_LEVELS; i++) {
		char orig[64];

		if (levels == 2 && i && i < 3)
			continue;
		snprintf(orig, sizeof(orig), "%s.orig", names[i]);
		th_copy_file(th_path(dir, orig), th_path(dir, names[i]));
	}
}

static const char *const mode_name[] = {"writes kept", "unsynced lost",
					"only newest unsynced landed"};

/* After an interrupted merge: the child's view, then a rerun completes. */
static void after_cut(const char *dir, const uint8_t *flat, int levels,
		      const char *what)
{
	char child[4096], base[4096];
	struct vhd_disk *d;
	int r;

	snprintf(child, sizeof(child), "%s", th_path(dir, names[3]));
	snprintf(base, sizeof(base), "%s", th_path(dir, names[0]));
	if (th_exists(child)) {
		r = vhd_open(child, VHD_OPEN_RDONLY, &d);
		if (r)
			fail_msg("%s: child does not open: %s", what,
				 vhd_errmsg());
		th_expect_read(d, flat, SIZE, 0);
		vhd_close(d);
	} else if (vhd_merge_pending(child) != 1) {
		/* Gone with no journal: the merge had finished. */
		merged(dir, child, flat, base, levels);
		assert_int_equal(vhd_merge(child, base, NULL, NULL), -ENOENT);
		return;
	}
	r = vhd_merge(child, base, NULL, NULL);
	if (r)
		fail_msg("%s: rerun failed: %d %s", what, r, vhd_errmsg());
	merged(dir, child, flat, base, levels);
}

static void write_sweep(const char *dir, enum vhd_type type, int levels)
{
	/* th_path buffers rotate: keep copies across the sweep. */
	char *child = strdup(th_path(dir, names[3]));
	char *base = strdup(th_path(dir, names[0]));
	uint8_t *flat = build_chain(dir, type, levels);
	char what[128];
	long total;

	save_chain(dir, levels);
	th_fault_install(-1, TH_CUT_KEEP);
	assert_int_equal(vhd_merge(child, base, NULL, NULL), 0);
	total = th_fault_writes();
	th_fault_remove();
	print_message("  %d levels into %s: %ld writes\n", levels,
		      type == VHD_TYPE_FIXED ? "fixed" : "dynamic", total);
	assert_true(total >= 4);
	for (long cut = 0; cut <= total; cut++) {
		for (int mode = 0; mode < 3; mode++) {
			restore_chain(dir, levels);
			th_fault_install(cut, mode);
			vhd_merge(child, base, NULL, NULL);
			th_fault_remove();
			snprintf(what, sizeof(what), "cut after write %ld (%s)",
				 cut, mode_name[mode]);
			after_cut(dir, flat, levels, what);
		}
	}
	free(flat);
	free(child);
	free(base);
}

static void test_cuts_one_level(void **state)
{
	write_sweep(DIR_, VHD_TYPE_DYNAMIC, 2);
}

static void test_cuts_three_levels(void **state)
{
	write_sweep(DIR_, VHD_TYPE_DYNAMIC, 4);
}

static void test_cuts_fixed(void **state)
{
	write_sweep(DIR_, VHD_TYPE_FIXED, 4);
}

/* fsync number fail_at (1-based) and every later one fail with EIO. */
static long fsyncs, fail_at;

static ssize_t sys_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t r = pread(fd, buf, len, off);

	return r < 0 ? -errno : r;
}

static ssize_t sys_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t r = pwrite(fd, buf, len, off);

	return r < 0 ? -errno : r;
}

static int failing_fsync(int fd)
{
	if (fail_at && ++fsyncs >= fail_at)
		return -EIO;
	if (!fail_at)
		fsyncs++;
	return fsync(fd) < 0 ? -errno : 0;
}

static const struct vhd_io_ops fsync_ops = {
	.pread = sys_pread,
	.pwrite = sys_pwrite,
	.fsync = failing_fsync,
};

struct report {
	int leftovers;
};

static void on_problem(void *ctx, const char *msg)
{
	struct report *r = ctx;

	if (strstr(msg, "interrupted merge"))
		r->leftovers++;
}

/*
 * Every sync of the merge failing in turn, down to the directory syncs
 * between the removals: a level left behind is reported by vhd_check and
 * the rerun removes it.
 */
static void test_sync_failures(void **state)
{
	char *child = strdup(th_path(DIR_, names[3]));
	char *base = strdup(th_path(DIR_, names[0]));
	uint8_t *flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 4);
	bool saw_leftover = false;
	char what[64];
	long total;

	save_chain(DIR_, 4);
	fsyncs = fail_at = 0;
	vhd_set_io_ops(&fsync_ops);
	assert_int_equal(vhd_merge(child, base, NULL, NULL), 0);
	vhd_set_io_ops(NULL);
	total = fsyncs;
	print_message("  %ld syncs in the merge\n", total);
	for (long k = 1; k <= total; k++) {
		restore_chain(DIR_, 4);
		fsyncs = 0;
		fail_at = k;
		vhd_set_io_ops(&fsync_ops);
		{
			int r = vhd_merge(child, base, NULL, NULL);

			vhd_set_io_ops(NULL);
			if (r != -EIO)
				fail_msg("sync %ld failing: merge gave %d: %s",
					 k, r, vhd_errmsg());
		}
		for (int i = 1; i < 3; i++) {
			const char *mid = th_path(DIR_, names[i]);
			struct report rep = {0};

			if (th_exists(child) || !th_exists(mid))
				continue;
			assert_true(vhd_check(mid, on_problem, &rep) > 0);
			assert_int_equal(rep.leftovers, 1);
			saw_leftover = true;
		}
		snprintf(what, sizeof(what), "sync %ld failed", k);
		after_cut(DIR_, flat, 4, what);
	}
	assert_true(saw_leftover);
	free(flat);
	free(child);
	free(base);
}

/* --- the same on VHDX chains (.vhdx <- .avhdx levels) -------------------- */

static void test_vhdx_one_level(void **state)
{
	merge_case(DIR_, VHD_TYPE_DYNAMIC, 2, false);
}

static void test_vhdx_three_levels(void **state)
{
	merge_case(DIR_, VHD_TYPE_DYNAMIC, 4, true);
}

static void test_vhdx_three_levels_fixed(void **state)
{
	merge_case(DIR_, VHD_TYPE_FIXED, 4, true);
}

static void test_vhdx_one_level_fixed(void **state)
{
	merge_case(DIR_, VHD_TYPE_FIXED, 2, false);
}

/* A second child of the base (its linkage would break) is refused. */
static void test_vhdx_dependent(void **state)
{
	char *child = strdup(th_path(DIR_, names[3]));
	char *base = strdup(th_path(DIR_, names[0]));
	uint8_t *flat = build_chain(DIR_, VHD_TYPE_DYNAMIC, 2);
	uint64_t h;

	th_create_diff(th_path(DIR_, "other.avhdx"), base);
	h = th_file_hash(base);
	assert_int_equal(vhd_merge(child, NULL, NULL, NULL), -EPERM);
	assert_true(th_msg_has("other.avhdx"));
	assert_true(th_file_hash(base) == h);
	expect_flat(child, flat);
	free(flat);
	free(child);
	free(base);
}

/* A VHDX level left behind is journalled by its DataWriteGuid. */
static void test_vhdx_sync_failures(void **state)
{
	test_sync_failures(state);
}

static void test_vhdx_cuts_one_level(void **state)
{
	write_sweep(DIR_, VHD_TYPE_DYNAMIC, 2);
}

static void test_vhdx_cuts_three_levels(void **state)
{
	write_sweep(DIR_, VHD_TYPE_DYNAMIC, 4);
}

static int setup_vhd(void **state)
{
	names = vhd_names;
	return th_setup_dir(state);
}

static int setup_vhdx(void **state)
{
	names = vhdx_names;
	return th_setup_dir(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup_vhd, th_teardown_dir)
#define TX(f) cmocka_unit_test_setup_teardown(f, setup_vhdx, th_teardown_dir)
		T(test_one_level_dynamic),
		T(test_one_level_fixed),
		T(test_three_levels_dynamic),
		T(test_three_levels_fixed),
		T(test_into_differencing),
		T(test_refused_with_dependents),
		T(test_bad_arguments),
		T(test_cancel),
		T(test_renamed_level),
		T(test_moved_away_level),
		T(test_cuts_one_level),
		T(test_cuts_three_levels),
		T(test_cuts_fixed),
		T(test_sync_failures),
		TX(test_vhdx_one_level),
		TX(test_vhdx_three_levels),
		TX(test_vhdx_three_levels_fixed),
		TX(test_vhdx_dependent),
		TX(test_vhdx_one_level_fixed),
		TX(test_vhdx_cuts_one_level),
		TX(test_vhdx_cuts_three_levels),
		TX(test_vhdx_sync_failures),
#undef TX
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
