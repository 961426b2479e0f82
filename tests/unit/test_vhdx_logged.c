// SPDX-License-Identifier: MIT
/*
 * vhdx_log_sectors(): metadata-region and region-table sectors changed
 * through the log. The change lands whole; bad requests change nothing;
 * and a cut after every write or sync (three ways, as test_crash.c) leaves
 * an image whose replayed sectors are all old or all new, agree with the
 * queued BAT change they were logged with, and pass `qemu-img check -r
 * all` (qemu's own replay) with the same contents.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "vhdx_i.h"

#define DIR_ (*(const char **)state)
#define MIB (1024u * 1024)
#define SZ (8ull * MIB)
#define NSEC 4
#define S VHDX_LOG_SECTOR

/* The sectors changed: both region tables' first sectors, the sector of
 * the metadata items (page 83 id), an unused one of the metadata region. */
struct change {
	uint64_t off[NSEC];
	uint8_t old[NSEC * S], new[NSEC * S];
};

static void swap_regions(uint8_t *table)
{
	uint8_t tmp[32];

	memcpy(tmp, table + 16, 32);
	memcpy(table + 16, table + 48, 32);
	memcpy(table + 48, tmp, 32);
	vhdx_put32(table + 4, vhd_crc32c_skip(table, VHDX_REGION_SIZE, 4));
}

static void make_change(const char *path, struct change *c)
{
	uint8_t *table = malloc(VHDX_REGION_SIZE);
	uint64_t meta = 2ull * MIB;

	c->off[0] = VHDX_REGION1_OFF;
	c->off[1] = VHDX_REGION2_OFF;
	c->off[2] = meta + VHDX_META_TABLE_SIZE;
	c->off[3] = meta + 512 * 1024;
	for (int i = 0; i < NSEC; i++)
		th_pread_raw(path, c->old + i * S, S, c->off[i]);
	memcpy(c->new, c->old, sizeof(c->new));
	for (int i = 0; i < 2; i++) {
		th_pread_raw(path, table, VHDX_REGION_SIZE, c->off[i]);
		swap_regions(table);
		memcpy(c->new + i *S, table, S);
	}
	/* page 83 id: third item, 16 bytes after the first two */
	memset(c->new + 2 * S + 16, 0xA5, 16);
	th_fill_pattern(c->new + 3 * S, S, 0, 77);
	free(table);
}

/* 0: all old, 1: all new; fails on a mix. */
static int state_of(const uint8_t *got, const struct change *c, long cut,
		    int mode)
{
	bool old = true, new = true;

	for (int i = 0; i < NSEC; i++) {
		old = old && !memcmp(got + i * S, c->old + i * S, S);
		new = new && !memcmp(got + i * S, c->new + i *S, S);
	}
	if (!old && !new)
		fail_msg("cut %ld mode %d: metadata sectors mixed", cut, mode);
	return new;
}

/* The changed sectors as a reader opening @path sees them (replayed). */
static void read_replayed(const char *path, const struct change *c,
			  uint8_t *got)
{
	struct vhdx *x = NULL;
	int r = vhdx_open_file(path, VHD_OPEN_RDONLY, &x);

	if (r)
		fail_msg("%s: reopen: %d %s", path, r, vhd_errmsg());
	for (int i = 0; i < NSEC; i++)
		assert_int_equal(vhdx_pread_file(x, got + i * S, S, c->off[i]),
				 0);
	vhdx_free(x);
}

static void workload(const char *path, const struct change *c,
		     const uint8_t *data)
{
	struct vhd_disk *d = NULL;

	if (vhd_open(path, VHD_OPEN_RDWR, &d))
		return;
	/* a queued BAT change travels in the same entry */
	if (vhd_pwrite(d, data, MIB, MIB) == (ssize_t)MIB)
		vhdx_log_sectors(d->vhdx, c->off, c->new, NSEC);
	vhd_close(d);
}

static bool qemu_check(const char *path)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd),
		 "qemu-img check -q -r all -f vhdx '%s' >/dev/null 2>&1", path);
	return system(cmd) == 0;
}

static void test_applies(void **state)
{
	const char *p = th_path(DIR_, "a.vhdx");
	uint8_t *data = malloc(MIB), got[NSEC * S];
	struct change c;
	struct vhd_disk *d;

	th_create(p, VHD_TYPE_DYNAMIC, SZ, MIB);
	make_change(p, &c);
	th_fill_pattern(data, MIB, MIB, 3);
	workload(p, &c, data);
	for (int i = 0; i < NSEC; i++)
		th_pread_raw(p, got + i * S, S, c.off[i]);
	assert_memory_equal(got, c.new, sizeof(got));
	d = th_open(p, VHD_OPEN_RDONLY);
	th_expect_read(d, data, MIB, MIB);
	assert_memory_equal(d->vhdx->meta.page83, c.new + 2 * S + 16, 16);
	assert_int_equal(d->vhdx->bat_region.offset, 3 * MIB);
	vhd_close(d);
	assert_true(qemu_check(p));
	free(data);
}

static void test_refuses(void **state)
{
	const char *p = th_path(DIR_, "r.vhdx");
	static const struct {
		uint64_t off;
		const char *word;
	} bad[] = {
		{VHDX_REGION1_OFF + 512, "aligned"},
		{VHDX_HEADER1_OFF, "headers"},
		{MIB + 8192, "log"},
		{3 * MIB, "BAT"},
		{64 * MIB, "end of the file"},
	};
	uint8_t buf[2 * S] = {0};
	uint64_t hash, two[2] = {2 * MIB + 8192, 2 * MIB + 8192};
	struct vhd_disk *d;

	th_create(p, VHD_TYPE_DYNAMIC, SZ, MIB);
	hash = th_file_hash(p);
	d = th_open(p, VHD_OPEN_RDWR);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vhdx_log_sectors(d->vhdx, &bad[i].off, buf, 1),
				 -EINVAL);
		assert_true(th_msg_has(bad[i].word));
	}
	assert_int_equal(vhdx_log_sectors(d->vhdx, two, buf, 2), -EINVAL);
	assert_true(th_msg_has("twice"));
	assert_int_equal(vhd_close(d), 0);
	assert_true(th_file_hash(p) == hash);
}

static void test_cuts(void **state)
{
	const char *orig = th_path(DIR_, "orig.vhdx");
	const char *p = th_path(DIR_, "cut.vhdx");
	const char *q = th_path(DIR_, "qemu.vhdx");
	uint8_t *data = malloc(MIB), *zero = calloc(1, MIB);
	uint8_t got[NSEC * S], after_qemu[NSEC * S];
	int seen[2] = {0};
	struct change c;
	long total;

	th_create(orig, VHD_TYPE_DYNAMIC, SZ, MIB);
	make_change(orig, &c);
	th_fill_pattern(data, MIB, MIB, 9);
	th_copy_file(orig, p);
	th_fault_install_events(-1, TH_CUT_KEEP);
	workload(p, &c, data);
	total = th_fault_writes();
	th_fault_remove();
	print_message("  %ld writes and syncs in the change\n", total);
	assert_true(total >= 10);
	for (long cut = 0; cut <= total; cut++) {
		for (int mode = 0; mode < 3; mode++) {
			struct vhd_disk *d;
			int st;

			th_copy_file(orig, p);
			th_fault_install_events(cut, mode);
			workload(p, &c, data);
			th_fault_remove();
			read_replayed(p, &c, got);
			st = state_of(got, &c, cut, mode);
			seen[st]++;
			/* the BAT entry was logged with them */
			d = th_open(p, VHD_OPEN_RDONLY);
			th_expect_read(d, st ? data : zero, MIB, MIB);
			vhd_close(d);
			assert_true(vhd_check(p, NULL, NULL) >= 0);
			th_copy_file(p, q);
			if (!qemu_check(q))
				fail_msg("cut %ld mode %d: qemu-img check "
					 "fails",
					 cut, mode);
			for (int i = 0; i < NSEC; i++)
				th_pread_raw(q, after_qemu + i * S, S,
					     c.off[i]);
			if (memcmp(after_qemu, got, sizeof(got)))
				fail_msg("cut %ld mode %d: qemu replays "
					 "otherwise",
					 cut, mode);
		}
	}
	/* the sweep saw both outcomes */
	assert_true(seen[0] > 0 && seen[1] > 0);
	free(data);
	free(zero);
}

#define T(f) cmocka_unit_test_setup_teardown(f, th_setup_dir, th_teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_applies),
		T(test_refuses),
		T(test_cuts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
