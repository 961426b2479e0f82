// SPDX-License-Identifier: MIT
/*
 * Cross-process image locks (vhd/lock.c): an image open for writing and
 * the parents of open chains exclude each other, whether the other side
 * is another vhd_open (OFD locks conflict between open file descriptions
 * even in one process) or a qemu-style holder of the same lock bytes;
 * read-only opens share.
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
#include <unistd.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define SIZE (4 * TH_MIB)

struct msgs {
	int n;
	bool in_use;
};

static void collect(void *ctx, const char *msg)
{
	struct msgs *m = ctx;

	m->n++;
	if (strstr(msg, "in use"))
		m->in_use = true;
}

static void test_two_writers_exclude(void **state)
{
	const char *img = th_path(DIR_, "a.vhd");
	struct vhd_disk *w, *w2 = NULL;

	th_create(img, VHD_TYPE_DYNAMIC, SIZE, 0);
	w = th_open(img, VHD_OPEN_RDWR);
	assert_int_equal(vhd_open(img, VHD_OPEN_RDWR, &w2), -EBUSY);
	assert_true(th_msg_has("in use"));
	assert_true(th_msg_names(img));
	/* Read-only opens of a written leaf still work (no lock). */
	vhd_close(th_open(img, VHD_OPEN_RDONLY));
	vhd_close(w);
	vhd_close(th_open(img, VHD_OPEN_RDWR));
}

static void test_diff_of_written_image_refused(void **state)
{
	const char *img = th_path(DIR_, "a.vhd");
	const char *child = th_path(DIR_, "c.vhd");
	struct msgs m = {0};
	struct vhd_disk *w;

	th_create(img, VHD_TYPE_DYNAMIC, SIZE, 0);
	w = th_open(img, VHD_OPEN_RDWR);
	assert_int_equal(vhd_create_diff(child, img), -EBUSY);
	assert_true(th_msg_has("in use"));
	assert_false(th_exists(child));
	/* check reports a leaf being written as a problem */
	assert_true(vhd_check(img, collect, &m) > 0);
	assert_true(m.in_use);
	vhd_close(w);
	th_create_diff(child, img);
	m = (struct msgs){0};
	assert_int_equal(vhd_check(img, collect, &m), 0);
}

static void test_parent_of_open_chain_not_writable(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "c.vhd");
	const char *child2 = th_path(DIR_, "c2.vhd");
	struct vhd_disk *c, *c2, *w = NULL;
	struct msgs m = {0};

	th_create(base, VHD_TYPE_DYNAMIC, SIZE, 0);
	th_create_diff(child, base);
	th_create_diff(child2, base);
	c = th_open(child, VHD_OPEN_RDONLY);
	/* Two chains share a parent; a writable leaf on top is fine. */
	c2 = th_open(child2, VHD_OPEN_RDWR);
	assert_int_equal(vhd_open(base, VHD_OPEN_RDWR, &w), -EBUSY);
	assert_true(th_msg_has("in use"));
	vhd_close(c2);
	vhd_close(c);
	w = th_open(base, VHD_OPEN_RDWR);
	/* and the other way round: a written parent does not open as one */
	assert_int_equal(vhd_open(child, VHD_OPEN_RDONLY, &c), -EBUSY);
	assert_true(th_msg_has("in use"));
	m = (struct msgs){0};
	assert_true(vhd_check(child, collect, &m) > 0);
	assert_true(m.in_use);
	vhd_close(w);
}

/* qemu holds "write" (byte 101) as a shared lock while it writes. */
static void test_qemu_style_writer_seen(void **state)
{
	const char *img = th_path(DIR_, "a.vhd");
	const char *child = th_path(DIR_, "c.vhd");
	struct flock fl = {.l_type = F_RDLCK, .l_start = 101, .l_len = 1};
	struct vhd_disk *w;
	int fd;

	th_create(img, VHD_TYPE_DYNAMIC, SIZE, 0);
	fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	assert_int_equal(vhd_create_diff(child, img), -EBUSY);
	assert_false(th_exists(child));
	close(fd);

	/* What qemu tests before writing: may it lock byte 201 exclusively? */
	w = th_open(img, VHD_OPEN_RDWR);
	fd = open(img, O_RDWR);
	fl = (struct flock){.l_type = F_WRLCK, .l_start = 201, .l_len = 1};
	assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
	assert_int_not_equal(fl.l_type, F_UNLCK);
	close(fd);
	vhd_close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)
		T(test_two_writers_exclude),
		T(test_diff_of_written_image_refused),
		T(test_parent_of_open_chain_not_writable),
		T(test_qemu_style_writer_seen),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
