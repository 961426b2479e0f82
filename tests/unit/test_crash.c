// SPDX-License-Identifier: MIT
/*
 * Crash consistency by fault injection: a workload (new blocks, partial
 * sectors, zeros, several flushes) is cut after its N-th write for every N,
 * on a fresh copy each time; then the image must open, every write
 * acknowledged before the last successful vhd_flush must read back, any
 * other byte must hold either its flushed value or a value some later
 * write put there, the parent must be unchanged, and the image must take
 * new writes. Each cut runs three times: with the writes before the cut
 * kept (the I/O failed), with every unsynced write undone (power loss),
 * and with only the newest unsynced write landed (power loss after the
 * disk reordered writes: catches metadata written before its data).
 * The same sweeps run on VHDX (dynamic, and a differencing child of a
 * VHDX), whose metadata goes through the log: every cut must reopen,
 * replaying what the log holds.
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

#define DIR_ (*(const char **)state)
/* The block size of the image under test (VHDX blocks are 1 MiB and up). */
static uint32_t BS = 512u << 10;
/* Cuts may fall between a write and the sync after it (see helpers.h). */
static bool cut_syncs;
#define SIZE (4 * (uint64_t)BS + 1536)
#define MAX_OPS 16

struct op {
	bool flush;
	uint64_t off;
	size_t len;
	uint8_t *data;
};

static struct op ops[MAX_OPS];
static int nops;

static void add_write(uint64_t off, size_t len, uint32_t tag)
{
	struct op *o = &ops[nops++];

	o->flush = false;
	o->off = off;
	o->len = len;
	o->data = malloc(len);
	if (tag)
		th_fill_pattern(o->data, len, off, tag);
	else
		memset(o->data, 0, len);
}

static void add_flush(void)
{
	ops[nops++].flush = true;
}

static void make_workload(void)
{
	nops = 0;
	add_write(100 * 1024, 4096, 11); /* new block 0 */
	add_write(BS + 1234, 700, 12);	 /* new block 1, partial */
	add_flush();
	add_write(3, 512, 13);		       /* unaligned, block 0 */
	add_write(3ull * BS - 2048, 8192, 14); /* new blocks 2 and 3 */
	add_flush();
	add_write(100 * 1024 + 1024, 1024, 0); /* zeros over our data */
	add_write(SIZE - 1, 1, 15);	       /* last byte */
	add_write(BS, BS, 16);		       /* whole block 1 */
	add_flush();
	add_write(2ull * BS + 5, 3000, 17);   /* left unflushed */
	add_write(4ull * BS + 512, 1024, 18); /* new partial last block */
}

static void free_workload(void)
{
	for (int i = 0; i < nops; i++)
		if (!ops[i].flush)
			free(ops[i].data);
	nops = 0;
}

struct run {
	uint8_t *pending, *committed;
	/* Writes after the last successful flush, incl. a failed one. */
	int since[MAX_OPS];
	int nsince;
};

/* Run the workload until the first failure; returns ops completed. */
static int run_workload(const char *path, struct run *r)
{
	struct vhd_disk *d = NULL;
	int done = 0;

	r->nsince = 0;
	if (vhd_open(path, VHD_OPEN_RDWR, &d))
		return 0;
	for (int i = 0; i < nops; i++) {
		if (ops[i].flush) {
			if (vhd_flush(d))
				break;
			memcpy(r->committed, r->pending, SIZE);
			r->nsince = 0;
		} else {
			ssize_t n = vhd_pwrite(d, ops[i].data, ops[i].len,
					       ops[i].off);

			r->since[r->nsince++] = i;
			if (n != (ssize_t)ops[i].len)
				break;
			memcpy(r->pending + ops[i].off, ops[i].data,
			       ops[i].len);
		}
		done++;
	}
	/* vhd_close flushes a writable image and returns how that went. */
	if (vhd_close(d) == 0 && done == nops) {
		memcpy(r->committed, r->pending, SIZE);
		r->nsince = 0;
	}
	return done;
}

/* Each byte: its flushed value, or what one of the later writes put. */
static const char *const mode_name[] = {"writes kept", "unsynced lost",
					"only newest unsynced landed"};

static void verify_after_cut(const uint8_t *got, const struct run *r, long cut,
			     int mode)
{
	for (uint64_t i = 0; i < SIZE; i++) {
		bool ok = got[i] == r->committed[i];

		for (int k = 0; k < r->nsince && !ok; k++) {
			const struct op *o = &ops[r->since[k]];

			if (i >= o->off && i < o->off + o->len)
				ok = got[i] == o->data[i - o->off];
			/* A partial-sector write rewrites its sectors. */
			if (!ok && i / 512 >= o->off / 512 &&
			    i / 512 <= (o->off + o->len - 1) / 512)
				ok = got[i] == r->pending[i];
		}
		if (!ok)
			fail_msg("cut after write %ld (%s): byte %llu is 0x%02x"
				 ", flushed value 0x%02x",
				 cut, mode_name[mode], (unsigned long long)i,
				 got[i], r->committed[i]);
	}
}

/* The image takes new writes after the crash. */
static void write_after_cut(const char *path, uint8_t *flat)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDWR);
	uint8_t buf[1024];

	th_fill_pattern(buf, sizeof(buf), 99, 99);
	th_write(d, buf, sizeof(buf), 3 * BS + 4096);
	th_write(d, buf, 700, BS + 77);
	assert_int_equal(vhd_flush(d), 0);
	vhd_close(d);
	memcpy(flat + 3 * BS + 4096, buf, sizeof(buf));
	memcpy(flat + BS + 77, buf, 700);
	d = th_open(path, VHD_OPEN_RDONLY);
	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
}

static void sweep(const char *dir, const char *pristine, const char *path,
		  const char *parent, const uint8_t *initial)
{
	uint64_t parent_hash = parent ? th_file_hash(parent) : 0;
	struct run r;
	long total;

	r.pending = malloc(SIZE);
	r.committed = malloc(SIZE);
	make_workload();

	/* Count the writes of a whole run. */
	th_copy_file(pristine, path);
	memcpy(r.pending, initial, SIZE);
	memcpy(r.committed, initial, SIZE);
	if (cut_syncs)
		th_fault_install_events(-1, TH_CUT_KEEP);
	else
		th_fault_install(-1, TH_CUT_KEEP);
	assert_int_equal(run_workload(path, &r), nops);
	total = th_fault_writes();
	th_fault_remove();
	print_message("  %s: %ld writes in the workload\n", path, total);
	assert_true(total >= 8);

	for (long cut = 0; cut <= total; cut++) {
		for (int mode = 0; mode < 3; mode++) {
			struct vhd_disk *d = NULL;
			uint8_t *got;
			int rc;

			th_copy_file(pristine, path);
			memcpy(r.pending, initial, SIZE);
			memcpy(r.committed, initial, SIZE);
			if (cut_syncs)
				th_fault_install_events(cut, mode);
			else
				th_fault_install(cut, mode);
			run_workload(path, &r);
			th_fault_remove();

			rc = vhd_open(path, VHD_OPEN_RDONLY, &d);
			if (rc)
				fail_msg("cut after write %ld (%s): reopen "
					 "failed: %d %s",
					 cut, mode_name[mode], rc,
					 vhd_errmsg());
			got = th_read_all(d);
			vhd_close(d);
			verify_after_cut(got, &r, cut, mode);
			if (parent && th_file_hash(parent) != parent_hash)
				fail_msg("cut %ld: parent changed", cut);
			assert_true(vhd_check(path, NULL, NULL) >= 0);
			write_after_cut(path, got);
			free(got);
		}
	}
	free_workload();
	free(r.pending);
	free(r.committed);
	(void)dir;
}

static void test_cuts_differencing(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *orig = th_path(DIR_, "child.orig");
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = calloc(1, SIZE);
	struct vhd_disk *d;

	th_create(base, VHD_TYPE_DYNAMIC, SIZE, BS);
	d = th_open(base, VHD_OPEN_RDWR);
	th_fill_pattern(flat, SIZE, 0, 5);
	th_write(d, flat, SIZE, 0);
	assert_int_equal(vhd_flush(d), 0);
	vhd_close(d);
	/* The pristine child is made where it will be used, then kept. */
	th_create_diff(child, base);
	th_copy_file(child, orig);
	sweep(DIR_, orig, child, base, flat);
	free(flat);
}

/*
 * A child from another writer whose blocks already exist with partly set
 * bitmaps: the workload sets bits in existing blocks (deferred metadata).
 */
static void test_cuts_foreign_child(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *orig = th_path(DIR_, "foreign.orig");
	const char *child = th_path(DIR_, "foreign.vhd");
	struct th_spec c = {.type = VHD_TYPE_DIFF,
			    .size = SIZE,
			    .block_size = BS,
			    .w2ru = ".\\base.vhd"};
	uint8_t *flat = calloc(1, SIZE), *bm, *data, f[512];
	struct vhd_disk *d;

	th_create(base, VHD_TYPE_DYNAMIC, SIZE, BS);
	d = th_open(base, VHD_OPEN_RDWR);
	th_fill_pattern(flat, SIZE, 0, 6);
	th_write(d, flat, SIZE, 0);
	assert_int_equal(vhd_close(d), 0);
	th_read_footer(base, f);
	memcpy(c.parent_uuid, f + 68, 16);
	c.parent_ts = (uint32_t)(th_mtime(base) - VHD_EPOCH_OFFSET);
	th_build(child, &c);
	bm = calloc(1, 512);
	data = malloc(BS);
	for (uint32_t b = 0; b < 4; b++) {
		memset(bm, 0, 512);
		for (int i = 0; i < 512; i += 3)
			bm[i] = 0x5a;
		th_fill_pattern(data, BS, (uint64_t)b * BS, 60 + b);
		th_alloc_block(child, b, bm, data, 4096);
		for (uint32_t sct = 0; sct < BS / 512; sct++)
			if (bm[sct / 8] & (0x80 >> (sct % 8)))
				memcpy(flat + (uint64_t)b * BS + sct * 512,
				       data + sct * 512, 512);
	}
	d = th_open(child, VHD_OPEN_RDONLY);
	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
	th_copy_file(child, orig);
	sweep(DIR_, orig, child, base, flat);
	free(bm);
	free(data);
	free(flat);
}

static void test_cuts_dynamic(void **state)
{
	const char *orig = th_path(DIR_, "dyn.orig");
	const char *dyn = th_path(DIR_, "dyn.vhd");
	uint8_t *flat = calloc(1, SIZE);

	th_create(orig, VHD_TYPE_DYNAMIC, SIZE, BS);
	sweep(DIR_, orig, dyn, NULL, flat);
	free(flat);
}

static void test_cuts_vhdx_dynamic(void **state)
{
	const char *orig = th_path(DIR_, "dyn.orig.vhdx");
	const char *dyn = th_path(DIR_, "dyn.vhdx");
	uint8_t *flat;

	BS = 1u << 20;
	cut_syncs = true;
	flat = calloc(1, SIZE);
	th_create(orig, VHD_TYPE_DYNAMIC, SIZE, BS);
	sweep(DIR_, orig, dyn, NULL, flat);
	free(flat);
}

static void test_cuts_vhdx_differencing(void **state)
{
	const char *base = th_path(DIR_, "base.vhdx");
	const char *orig = th_path(DIR_, "child.orig");
	const char *child = th_path(DIR_, "child.avhdx");
	uint8_t *flat;
	struct vhd_disk *d;

	BS = 1u << 20;
	cut_syncs = true;
	flat = calloc(1, SIZE);
	th_create(base, VHD_TYPE_DYNAMIC, SIZE, BS);
	d = th_open(base, VHD_OPEN_RDWR);
	th_fill_pattern(flat, SIZE, 0, 5);
	/* leave block 2 and the last one to the parent's zeros */
	th_write(d, flat, 2 * (size_t)BS, 0);
	th_write(d, flat + 3 * BS, BS, 3 * BS);
	memset(flat + 2 * BS, 0, BS);
	memset(flat + 4 * BS, 0, 1536);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(child, base);
	th_copy_file(child, orig);
	sweep(DIR_, orig, child, base, flat);
	free(flat);
}

/*
 * vhd_close flushes: writes closed without vhd_flush survive a power loss
 * right after the close; written and never closed, they may vanish but the
 * image still opens and shows either old or new data.
 */
static void test_close_makes_durable(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *child = th_path(DIR_, "child.vhd");
	uint8_t *flat = calloc(1, SIZE), *got;
	struct vhd_disk *d;

	th_create(base, VHD_TYPE_DYNAMIC, SIZE, BS);
	d = th_open(base, VHD_OPEN_RDWR);
	th_fill_pattern(flat, SIZE, 0, 5);
	th_write(d, flat, SIZE, 0);
	assert_int_equal(vhd_close(d), 0);
	th_create_diff(child, base);

	make_workload();
	th_fault_install(1000000, TH_CUT_LOSE_UNSYNCED);
	d = th_open(child, VHD_OPEN_RDWR);
	for (int i = 0; i < nops; i++) {
		if (ops[i].flush)
			continue; /* no explicit flush at all */
		th_write(d, ops[i].data, ops[i].len, ops[i].off);
		memcpy(flat + ops[i].off, ops[i].data, ops[i].len);
	}
	assert_int_equal(vhd_close(d), 0);
	th_fault_power_loss();
	th_fault_remove();
	d = th_open(child, VHD_OPEN_RDONLY);
	th_expect_read(d, flat, SIZE, 0);
	vhd_close(d);
	free_workload();

	/* Never flushed nor closed: may be lost, must not corrupt. */
	th_fault_install(1000000, TH_CUT_LOSE_UNSYNCED);
	d = th_open(child, VHD_OPEN_RDWR);
	th_fill_pattern(flat + 5, 3000, 5, 44);
	th_write(d, flat + 5, 3000, 5);
	th_write(d, flat + 5, 3000, 3 * BS + 1);
	th_fault_power_loss();
	vhd_close(d);
	th_fault_remove();
	d = th_open(child, VHD_OPEN_RDONLY);
	got = th_read_all(d);
	vhd_close(d);
	for (uint64_t i = 0; i < SIZE; i++)
		if (got[i] != flat[i] && !(i >= 5 && i < 3005) &&
		    !(i >= 3 * BS + 1 && i < 3 * BS + 3001))
			fail_msg("byte %llu changed by a lost write",
				 (unsigned long long)i);
	free(got);
	free(flat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cuts_differencing,
						th_setup_dir, th_teardown_dir),
		cmocka_unit_test_setup_teardown(test_cuts_foreign_child,
						th_setup_dir, th_teardown_dir),
		cmocka_unit_test_setup_teardown(test_cuts_dynamic, th_setup_dir,
						th_teardown_dir),
		cmocka_unit_test_setup_teardown(test_close_makes_durable,
						th_setup_dir, th_teardown_dir),
		cmocka_unit_test_setup_teardown(test_cuts_vhdx_dynamic,
						th_setup_dir, th_teardown_dir),
		cmocka_unit_test_setup_teardown(test_cuts_vhdx_differencing,
						th_setup_dir, th_teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
