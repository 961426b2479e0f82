// SPDX-License-Identifier: MIT
/*
 * Opening image files and parent candidates (vhd/resolve.c, chain.c):
 * a FIFO never blocks an open, /proc and device files are refused as
 * candidates, paths into a redirected tree (the daemon's own mount) are
 * looked up in its replacement without touching it, Windows locators are
 * never taken relative to the working directory, and an id mismatch says
 * where the wrong file was found.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define SIZE (4 * TH_MIB)

static void uuid_of(const char *p, uint8_t uuid[16])
{
	uint8_t f[512];

	th_read_footer(p, f);
	memcpy(uuid, f + 68, 16);
}

static void mk_base(const char *p)
{
	struct th_spec s = {.type = VHD_TYPE_DYNAMIC, .size = SIZE};

	th_build(p, &s);
}

/* A child of @parent with only the given locators (NULL: none). */
static void mk_child(const char *p, const char *parent, const char *w2ru,
		     const char *w2ku)
{
	struct th_spec c = {.type = VHD_TYPE_DIFF, .size = SIZE};

	uuid_of(parent, c.parent_uuid);
	c.w2ru = w2ru;
	c.w2ku = w2ku;
	th_build(p, &c);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return !stat(a, &sa) && !stat(b, &sb) && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

/* Guard: a regression hangs in open(2); fail the binary instead. */
static void no_hang(void)
{
	alarm(30);
}

static void test_fifo_leaf_does_not_block(void **state)
{
	const char *fifo = th_path(DIR_, "fifo.vhd");
	struct vhd_disk *d = NULL;

	assert_int_equal(mkfifo(fifo, 0644), 0);
	no_hang();
	assert_int_equal(vhd_open(fifo, VHD_OPEN_RDONLY, &d), -EINVAL);
	assert_true(th_msg_has("not a regular file"));
	assert_true(th_msg_names(fifo));
	assert_int_equal(vhd_open(fifo, VHD_OPEN_RDWR, &d), -EINVAL);
	assert_int_equal(vhd_check(fifo, NULL, NULL), -EINVAL);
	alarm(0);
}

/* The only locator names @cand: the open fails and the message says why. */
static void expect_refused_candidate(void **state, const char *cand)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	struct vhd_disk *d = NULL;

	mk_base(base);
	mk_child(child, base, NULL, cand);
	no_hang();
	assert_int_equal(vhd_open(child, VHD_OPEN_RDONLY, &d), -ENOENT);
	alarm(0);
	assert_true(th_msg_has(cand));
	assert_true(th_msg_has("not a regular file"));
}

static void test_fifo_candidate_refused(void **state)
{
	const char *fifo = th_path(DIR_, "p.vhd");

	assert_int_equal(mkfifo(fifo, 0644), 0);
	expect_refused_candidate(state, fifo);
}

static void test_proc_candidate_refused(void **state)
{
	expect_refused_candidate(state, "/proc/self/mem");
}

static void test_sys_candidate_refused(void **state)
{
	expect_refused_candidate(state, "/sys/kernel/notes");
}

static void test_device_candidate_refused(void **state)
{
	expect_refused_candidate(state, "/dev/zero");
}

/*
 * The tree "mnt" stands for the daemon's mount: it holds a FIFO where
 * the locator points, which a lookup there would find (and skip). With
 * the redirect the parent is found in "backing" instead, by a path
 * naming mnt directly, through a symlink to it, or through "..".
 */
static void test_redirect_keeps_out_of_tree(void **state)
{
	const char *mnt = th_path(DIR_, "mnt");
	const char *back = th_path(DIR_, "backing");
	const char *base = th_path(back, "base.vhd");
	const char *link = th_path(DIR_, "link");
	const char *child = th_path(back, "child.vhd");
	const char *via[3];
	char found[4096];
	struct vhd_disk *d;

	assert_int_equal(mkdir(mnt, 0755), 0);
	assert_int_equal(mkdir(back, 0755), 0);
	assert_int_equal(mkfifo(th_path(mnt, "base.vhd"), 0644), 0);
	assert_int_equal(symlink(mnt, link), 0);
	mk_base(base);
	via[0] = th_path(mnt, "base.vhd");
	via[1] = th_path(link, "base.vhd");
	via[2] = th_path(back, "../mnt/./base.vhd");
	assert_int_equal(vhd_set_path_redirect(mnt, back, 0), 0);
	for (int i = 0; i < 3; i++) {
		unlink(child);
		mk_child(child, base, NULL, via[i]);
		no_hang();
		d = th_open(child, VHD_OPEN_RDONLY);
		alarm(0);
		assert_true(same_file(vhd_path(vhd_parent(d)), base));
		assert_int_equal(vhd_find_parent(d, found, sizeof(found)), 0);
		assert_string_equal(found, base);
		vhd_close(d);
	}
	assert_int_equal(vhd_set_path_redirect(NULL, NULL, 0), 0);
}

/* Nothing on the excluded device (the mount reached another way, e.g. a
 * bind mount) is opened: /dev stands for it here. */
static void test_redirect_refuses_device(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	struct stat dev, here;
	struct vhd_disk *d;

	assert_int_equal(stat("/dev", &dev), 0);
	assert_int_equal(stat(DIR_, &here), 0);
	if (dev.st_dev == here.st_dev)
		skip();
	mk_base(base);
	mk_child(child, base, NULL, "/dev/zero");
	assert_int_equal(
		vhd_set_path_redirect("/nonexistent-mnt", DIR_, dev.st_dev), 0);
	assert_int_equal(vhd_open(child, VHD_OPEN_RDONLY, &d), -ENOENT);
	assert_true(th_msg_has("inside the vhdfs mount"));
	assert_int_equal(vhd_set_path_redirect(NULL, NULL, 0), 0);
}

/*
 * "C:\VMs\old\base.vhd" is looked up as base.vhd beside the child, never
 * as "C:/VMs/old/base.vhd" under the working directory (where a decoy
 * with the right id waits).
 */
static void test_windows_w2ku_beside_child(void **state)
{
	const char *vm = th_path(DIR_, "vm");
	const char *base = th_path(vm, "base.vhd");
	const char *child = th_path(vm, "child.vhd");
	const char *work = th_path(DIR_, "work");
	char cwd[4096], decoy[4096];
	struct vhd_disk *d;

	assert_int_equal(mkdir(vm, 0755), 0);
	assert_int_equal(mkdir(work, 0755), 0);
	mk_base(base);
	mk_child(child, base, NULL, "C:\\VMs\\old\\base.vhd");
	snprintf(decoy, sizeof(decoy), "%s/C:", work);
	assert_int_equal(mkdir(decoy, 0755), 0);
	strcat(decoy, "/VMs");
	assert_int_equal(mkdir(decoy, 0755), 0);
	strcat(decoy, "/old");
	assert_int_equal(mkdir(decoy, 0755), 0);
	strcat(decoy, "/base.vhd");
	th_copy_file(base, decoy);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(work), 0);
	d = th_open(child, VHD_OPEN_RDONLY);
	assert_int_equal(chdir(cwd), 0);
	assert_true(same_file(vhd_path(vhd_parent(d)), base));
	vhd_close(d);

	/* UNC paths too. */
	unlink(child);
	mk_child(child, base, NULL, "\\\\server\\share\\base.vhd");
	d = th_open(child, VHD_OPEN_RDONLY);
	assert_true(same_file(vhd_path(vhd_parent(d)), base));
	vhd_close(d);
}

/* ".\\..\\base.vhd" (doubled separators) is ../base.vhd from the child. */
static void test_w2ru_repeated_separators(void **state)
{
	const char *sub = th_path(DIR_, "sub");
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(sub, "child.vhd");
	struct vhd_disk *d;

	assert_int_equal(mkdir(sub, 0755), 0);
	mk_base(base);
	mk_child(child, base, ".\\\\..\\\\base.vhd", NULL);
	d = th_open(child, VHD_OPEN_RDONLY);
	assert_true(same_file(vhd_path(vhd_parent(d)), base));
	vhd_close(d);

	/* A W2ru with a leading separator is still relative. */
	unlink(child);
	mk_child(child, base, "\\..\\base.vhd", NULL);
	d = th_open(child, VHD_OPEN_RDONLY);
	assert_true(same_file(vhd_path(vhd_parent(d)), base));
	vhd_close(d);
}

static void test_mismatch_names_where_found(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *other = th_path(DIR_, "other.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	char found[4096];
	struct vhd_disk *d;

	mk_base(base);
	mk_base(other);
	mk_child(child, base, NULL, other);
	d = th_open(child, VHD_OPEN_NOPARENT);
	assert_int_equal(vhd_find_parent(d, found, sizeof(found)), -EINVAL);
	assert_string_equal(found, other);
	assert_true(th_msg_has("parent found at"));
	assert_true(th_msg_has(other));
	assert_true(th_msg_has("unique id differs"));
	vhd_close(d);
}

/*
 * A name spelt in another case is looked for by listing the directory it
 * names, walked as every candidate is: a locator into the redirected tree
 * lists the replacement (the FIFO in "mnt" is never touched), and a
 * directory on the excluded device is never listed at all.
 */
static void test_case_folded_keeps_out_of_tree(void **state)
{
	const char *mnt = th_path(DIR_, "mnt");
	const char *back = th_path(DIR_, "backing");
	const char *base = th_path(back, "base.vhd");
	const char *child = th_path(back, "child.vhd");
	char upper[4096];
	struct stat dev, here;
	struct vhd_disk *d;

	assert_int_equal(mkdir(mnt, 0755), 0);
	assert_int_equal(mkdir(back, 0755), 0);
	assert_int_equal(mkfifo(th_path(mnt, "base.vhd"), 0644), 0);
	mk_base(base);
	snprintf(upper, sizeof(upper), "%s/BASE.VHD", mnt);
	mk_child(child, base, NULL, upper);
	assert_int_equal(vhd_set_path_redirect(mnt, back, 0), 0);
	no_hang();
	d = th_open(child, VHD_OPEN_RDONLY);
	alarm(0);
	assert_true(same_file(vhd_path(vhd_parent(d)), base));
	vhd_close(d);
	assert_int_equal(vhd_set_path_redirect(NULL, NULL, 0), 0);

	/* /dev stands for the mount reached another way (a bind mount). */
	assert_int_equal(stat("/dev", &dev), 0);
	assert_int_equal(stat(DIR_, &here), 0);
	if (dev.st_dev == here.st_dev)
		skip();
	unlink(child);
	mk_child(child, base, NULL, "/dev/NULL");
	assert_int_equal(
		vhd_set_path_redirect("/nonexistent-mnt", DIR_, dev.st_dev), 0);
	assert_int_equal(vhd_open(child, VHD_OPEN_RDONLY, &d), -ENOENT);
	assert_non_null(strstr(vhd_errmsg(), "/dev/NULL"));
	if (strstr(vhd_errmsg(), "/dev/null"))
		fail_msg("listed /dev: %s", vhd_errmsg());
	assert_int_equal(vhd_set_path_redirect(NULL, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_fifo_leaf_does_not_block),
		T(test_fifo_candidate_refused),
		T(test_proc_candidate_refused),
		T(test_sys_candidate_refused),
		T(test_device_candidate_refused),
		T(test_redirect_keeps_out_of_tree),
		T(test_redirect_refuses_device),
		T(test_windows_w2ku_beside_child),
		T(test_w2ru_repeated_separators),
		T(test_mismatch_names_where_found),
		T(test_case_folded_keeps_out_of_tree),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
