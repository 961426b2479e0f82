// SPDX-License-Identifier: MIT
/*
 * Randomized model test: a 3-level chain (base fixed or dynamic with random
 * content, mid differencing written at random, then a leaf written at
 * random) compared after every step with a flat in-memory model, across
 * close and reopen, with the parents byte-identical throughout.
 * Seeded: the seed is printed; VHD_MODEL_SEED=N repeats a run,
 * VHD_MODEL_STEPS=N changes the number of steps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)

struct model {
	uint8_t *flat;
	uint64_t size;
	uint32_t bs;
	uint64_t rng;
	uint8_t *buf, *zero;
	size_t max;
	long step;
};

static void random_write(struct model *m, struct vhd_disk *d)
{
	uint64_t off = th_rand_below(&m->rng, m->size);
	size_t len;
	const uint8_t *src;

	switch (th_rand_below(&m->rng, 6)) {
	case 0: /* whole sectors */
		off &= ~511ull;
		len = 512 * (1 + th_rand_below(&m->rng, 16));
		break;
	case 1: /* tiny, inside or across a sector edge */
		len = 1 + th_rand_below(&m->rng, 3);
		break;
	case 2: /* large, spanning blocks, aligned */
		off &= ~511ull;
		len = 512 * (1 + th_rand_below(&m->rng, m->max / 512 - 1));
		break;
	case 3: /* block-aligned, whole blocks */
		off -= off % m->bs;
		len = m->bs * (1 + th_rand_below(&m->rng, 2));
		break;
	default: /* anything */
		len = 1 + th_rand_below(&m->rng, 20000);
		break;
	}
	if (off + len > m->size)
		len = m->size - off;
	if (len > m->max)
		len = m->max;
	if (th_rand_below(&m->rng, 5) == 0) {
		src = m->zero;
	} else {
		th_rand_fill(&m->rng, m->buf, len);
		src = m->buf;
	}
	th_write(d, src, len, off);
	memcpy(m->flat + off, src, len);
	/* The write itself and its edges read back. */
	th_expect_read(d, m->flat + off, len, off);
}

static void verify(struct model *m, struct vhd_disk *d)
{
	for (int i = 0; i < 3; i++) {
		uint64_t off = th_rand_below(&m->rng, m->size);
		size_t len = 1 + th_rand_below(&m->rng, 3 * m->bs);

		if (off + len > m->size)
			len = m->size - off;
		th_expect_read(d, m->flat + off, len, off);
	}
	th_expect_read(d, m->flat, m->size, 0);
}

static void check_hash(const char *p, uint64_t want)
{
	if (th_file_hash(p) != want)
		fail_msg("%s changed while its child was written", p);
}

/* @steps random writes into @path, reopened now and then. */
static void run_phase(struct model *m, const char *path, long steps,
		      const char *const *parents, const uint64_t *hashes)
{
	struct vhd_disk *d = th_open(path, VHD_OPEN_RDWR);

	for (long i = 0; i < steps; i++, m->step++) {
		random_write(m, d);
		verify(m, d);
		if (th_rand_below(&m->rng, 25) == 0 || i == steps - 1) {
			/*
			 * Half the time close without a flush: no crash,
			 * so every acknowledged write must still be there.
			 */
			if (th_rand_below(&m->rng, 2))
				assert_int_equal(vhd_flush(d), 0);
			assert_int_equal(vhd_close(d), 0);
			for (int k = 0; parents[k]; k++)
				check_hash(parents[k], hashes[k]);
			d = th_open(path, VHD_OPEN_RDWR);
			th_expect_read(d, m->flat, m->size, 0);
		}
	}
	assert_int_equal(vhd_flush(d), 0);
	assert_int_equal(vhd_close(d), 0);
	d = th_open(path, VHD_OPEN_RDONLY);
	th_expect_read(d, m->flat, m->size, 0);
	vhd_close(d);
	assert_int_equal(vhd_check(path, NULL, NULL), 0);
}

static void test_random_chain(void **state)
{
	const char *base = th_path(DIR_, "base.vhd");
	const char *mid = th_path(DIR_, "mid.vhd");
	const char *leaf = th_path(DIR_, "leaf.vhd");
	const char *env = getenv("VHD_MODEL_STEPS");
	long steps = env ? atol(env) : 300;
	struct model m = {0};
	bool fixed;
	struct vhd_disk *d;
	const char *parents[3] = {NULL};
	uint64_t hashes[3];

	m.rng = th_seed("VHD_MODEL_SEED", "test_model");
	fixed = th_rand_below(&m.rng, 3) == 0;
	m.bs = th_rand_below(&m.rng, 2) ? 512 << 10 : 2 << 20;
	/* 2..4 MiB, not a whole number of blocks. */
	m.size = 2 * TH_MIB + 512 * th_rand_below(&m.rng, 4096);
	if (m.size % m.bs == 0)
		m.size += 512;
	m.max = 2 * m.bs + 8192;
	m.flat = calloc(1, m.size);
	m.buf = malloc(m.max);
	m.zero = calloc(1, m.max);
	print_message("test_model: base %s, %llu bytes, block %u, %ld steps\n",
		      fixed ? "fixed" : "dynamic", (unsigned long long)m.size,
		      m.bs, steps);

	/* Base: random content over random ranges, written through us. */
	th_create(base, fixed ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC, m.size,
		  fixed ? 0 : m.bs);
	d = th_open(base, VHD_OPEN_RDWR);
	for (int i = 0; i < 12; i++)
		random_write(&m, d);
	assert_int_equal(vhd_flush(d), 0);
	vhd_close(d);
	parents[0] = base;
	hashes[0] = th_file_hash(base);

	th_create_diff(mid, base);
	d = th_open(mid, VHD_OPEN_RDONLY);
	th_expect_read(d, m.flat, m.size, 0);
	vhd_close(d);
	run_phase(&m, mid, steps / 3, parents, hashes);

	parents[1] = mid;
	hashes[1] = th_file_hash(mid);
	th_create_diff(leaf, mid);
	check_hash(base, hashes[0]);
	check_hash(mid, hashes[1]);
	run_phase(&m, leaf, steps - steps / 3, parents, hashes);
	check_hash(base, hashes[0]);
	check_hash(mid, hashes[1]);

	free(m.flat);
	free(m.buf);
	free(m.zero);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_chain, th_setup_dir,
						th_teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
