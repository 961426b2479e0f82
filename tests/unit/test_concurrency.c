// SPDX-License-Identifier: MIT
/*
 * Concurrency: reader threads vhd_pread a differencing chain through one
 * shared handle (and the base through its own) while two writer threads
 * vhd_pwrite disjoint regions of the same handle, allocating blocks as they
 * go, and another thread calls vhd_flush over and over. Every sector a reader
 * sees is either the parent's or a whole sector some writer wrote there; at the
 * end the image equals the writers' model, also after reopening.
 * Writers of single sectors interleaved within the same bitmap bytes of
 * allocated blocks (the shared-lock path) lose no bit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define DIR_ (*(const char **)state)
#define BS (512u << 10)
#define SIZE (16 * TH_MIB)
#define WSTART (SIZE / 2) /* writers own [WSTART, SIZE) */
#define READERS 4
#define WRITERS 2
#define READS 1500
#define WRITES 600

struct shared {
	struct vhd_disk *leaf, *base;
	uint8_t *parent; /* base content */
	uint8_t *model;	 /* final content, written by writers only */
	atomic_int failures;
	atomic_int writers_done;
	uint64_t seed;
	char err[256];
	pthread_mutex_t lock;
};

static void stamp(uint8_t *sec, uint64_t sector, uint64_t gen)
{
	th_fill_pattern(sec, 512, sector * 512, (uint32_t)gen | 0x40000000u);
	memcpy(sec, &sector, 8);
	memcpy(sec + 8, &gen, 8);
}

static void record(struct shared *s, const char *what, uint64_t sector)
{
	pthread_mutex_lock(&s->lock);
	if (!s->failures++)
		snprintf(s->err, sizeof(s->err), "%s at sector %llu", what,
			 (unsigned long long)sector);
	pthread_mutex_unlock(&s->lock);
}

/* A sector as read: the parent's, or a writer's whole stamped sector. */
static void check_sector(struct shared *s, const uint8_t *sec, uint64_t sector)
{
	uint8_t want[512];
	uint64_t tag, gen;

	if (!memcmp(sec, s->parent + sector * 512, 512))
		return;
	if (sector * 512 < WSTART) {
		record(s, "reader saw foreign data outside the written half",
		       sector);
		return;
	}
	memcpy(&tag, sec, 8);
	memcpy(&gen, sec + 8, 8);
	if (tag != sector) {
		record(s, "reader saw a sector that is neither old nor new",
		       sector);
		return;
	}
	stamp(want, sector, gen);
	if (memcmp(sec, want, 512))
		record(s, "reader saw a torn sector", sector);
}

static void *reader(void *arg)
{
	struct shared *s = arg;
	uint64_t rng;
	uint8_t *buf = malloc(128 * 1024);

	pthread_mutex_lock(&s->lock);
	rng = s->seed++;
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < READS && !s->failures; i++) {
		uint64_t sector = th_rand_below(&rng, SIZE / 512);
		uint64_t n = 1 + th_rand_below(&rng, 256);
		bool use_base = th_rand_below(&rng, 8) == 0;
		ssize_t r;

		if (sector + n > SIZE / 512)
			n = SIZE / 512 - sector;
		r = vhd_pread(use_base ? s->base : s->leaf, buf, n * 512,
			      sector * 512);
		if (r != (ssize_t)(n * 512)) {
			record(s, "short or failed read", sector);
			break;
		}
		for (uint64_t k = 0; k < n; k++) {
			if (use_base) {
				if (memcmp(buf + k * 512,
					   s->parent + (sector + k) * 512, 512))
					record(s, "base read changed",
					       sector + k);
			} else {
				check_sector(s, buf + k * 512, sector + k);
			}
		}
	}
	free(buf);
	return NULL;
}

struct writer_arg {
	struct shared *s;
	int id;
	uint64_t seed;
};

static void *writer(void *arg)
{
	struct writer_arg *wa = arg;
	struct shared *s = wa->s;
	/* Writer k owns every other 256 KiB stripe of the written half. */
	const uint64_t stripe = 256 * 1024;
	uint64_t rng = wa->seed;
	uint8_t *buf = malloc(stripe);

	for (uint64_t gen = 1; gen <= WRITES && !s->failures; gen++) {
		uint64_t nstripes = (SIZE - WSTART) / stripe / WRITERS;
		uint64_t st = th_rand_below(&rng, nstripes) * WRITERS + wa->id;
		uint64_t base = WSTART + st * stripe;
		uint64_t first = th_rand_below(&rng, stripe / 512);
		uint64_t n = 1 + th_rand_below(&rng, stripe / 512 - first);
		uint64_t sector0 = base / 512 + first;
		ssize_t r;

		for (uint64_t k = 0; k < n; k++)
			stamp(buf + k * 512, sector0 + k,
			      gen * WRITERS + wa->id);
		r = vhd_pwrite(s->leaf, buf, n * 512, sector0 * 512);
		if (r != (ssize_t)(n * 512)) {
			record(s, "write failed", sector0);
			break;
		}
		memcpy(s->model + sector0 * 512, buf, n * 512);
		if (gen % 97 == 0 && vhd_flush(s->leaf))
			record(s, "flush failed", 0);
	}
	free(buf);
	s->writers_done++;
	return NULL;
}

/* Flushes racing the writes, until both writers are done. */
static void *flusher(void *arg)
{
	struct shared *s = arg;

	while (s->writers_done < WRITERS && !s->failures)
		if (vhd_flush(s->leaf))
			record(s, "concurrent flush failed", 0);
	return NULL;
}

static void test_readers_and_writers(void **state)
{
	const char *b = th_path(DIR_, "base.vhd");
	const char *c = th_path(DIR_, "child.vhd");
	pthread_t rt[READERS], wt[WRITERS], ft;
	struct writer_arg wa[WRITERS];
	struct shared s = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct vhd_disk *d;

	s.seed = th_seed("VHD_TEST_SEED", "test_concurrency");
	s.parent = malloc(SIZE);
	th_fill_pattern(s.parent, SIZE, 0, 3);
	th_create(b, VHD_TYPE_DYNAMIC, SIZE, BS);
	d = th_open(b, VHD_OPEN_RDWR);
	/* Leave some base blocks unallocated: zeros are parent data too. */
	memset(s.parent + 3 * BS, 0, BS);
	memset(s.parent + 20 * BS, 0, 2 * BS);
	th_write(d, s.parent, SIZE, 0);
	assert_int_equal(vhd_flush(d), 0);
	vhd_close(d);
	th_create_diff(c, b);
	s.model = malloc(SIZE);
	memcpy(s.model, s.parent, SIZE);

	s.leaf = th_open(c, VHD_OPEN_RDWR);
	s.base = th_open(b, VHD_OPEN_RDONLY);
	for (int i = 0; i < WRITERS; i++) {
		wa[i].s = &s;
		wa[i].id = i;
		wa[i].seed = s.seed * 7919 + 1000 + i;
		assert_int_equal(pthread_create(&wt[i], NULL, writer, &wa[i]),
				 0);
	}
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&rt[i], NULL, reader, &s), 0);
	assert_int_equal(pthread_create(&ft, NULL, flusher, &s), 0);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(wt[i], NULL);
	pthread_join(ft, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(rt[i], NULL);
	if (s.failures)
		fail_msg("%d failures, first: %s", (int)s.failures, s.err);

	th_expect_read(s.leaf, s.model, SIZE, 0);
	assert_int_equal(vhd_flush(s.leaf), 0);
	vhd_close(s.leaf);
	vhd_close(s.base);
	d = th_open(c, VHD_OPEN_RDONLY);
	th_expect_read(d, s.model, SIZE, 0);
	vhd_close(d);
	assert_int_equal(vhd_check(c, NULL, NULL), 0);
	d = th_open(b, VHD_OPEN_RDONLY);
	th_expect_read(d, s.parent, SIZE, 0);
	vhd_close(d);
	free(s.parent);
	free(s.model);
}

struct bits_arg {
	struct vhd_disk *leaf;
	int id;
	int bad;
};

#define BIT_WRITERS 4
#define BIT_SECTORS (2 * BS / 512) /* two allocated blocks */

/* Writer k writes sectors k, k + BIT_WRITERS, ...: neighbours share a
 * bitmap byte with the other writers. */
static void *bit_writer(void *arg)
{
	struct bits_arg *a = arg;
	uint8_t sec[512];

	for (uint64_t s = (uint64_t)a->id; s < BIT_SECTORS; s += BIT_WRITERS) {
		stamp(sec, s, 1);
		if (vhd_pwrite(a->leaf, sec, 512, s * 512) != 512)
			a->bad++;
	}
	return NULL;
}

static void test_shared_bitmap_bytes(void **state)
{
	const char *b = th_path(DIR_, "base.vhd");
	const char *c = th_path(DIR_, "child.vhd");
	struct bits_arg wa[BIT_WRITERS];
	pthread_t wt[BIT_WRITERS];
	uint8_t *model = malloc(SIZE), *zero = calloc(1, 512);
	struct vhd_disk *d;

	th_create(b, VHD_TYPE_DYNAMIC, SIZE, BS);
	th_create_diff(c, b);
	d = th_open(c, VHD_OPEN_RDWR);
	/* Allocate both blocks with one sector each; the rest are the
	 * parent's zeros until the writers fill them. */
	th_write(d, zero, 512, 0);
	th_write(d, zero, 512, BS);
	memset(model, 0, SIZE);
	for (uint64_t s = 0; s < BIT_SECTORS; s++)
		stamp(model + s * 512, s, 1);
	for (int i = 0; i < BIT_WRITERS; i++) {
		wa[i] = (struct bits_arg){.leaf = d, .id = i};
		assert_int_equal(
			pthread_create(&wt[i], NULL, bit_writer, &wa[i]), 0);
	}
	for (int i = 0; i < BIT_WRITERS; i++) {
		pthread_join(wt[i], NULL);
		assert_int_equal(wa[i].bad, 0);
	}
	th_expect_read(d, model, SIZE, 0);
	assert_int_equal(vhd_flush(d), 0);
	vhd_close(d);
	d = th_open(c, VHD_OPEN_RDONLY);
	th_expect_read(d, model, SIZE, 0);
	vhd_close(d);
	assert_int_equal(vhd_check(c, NULL, NULL), 0);
	free(model);
	free(zero);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_readers_and_writers,
						th_setup_dir, th_teardown_dir),
		cmocka_unit_test_setup_teardown(test_shared_bitmap_bytes,
						th_setup_dir, th_teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
