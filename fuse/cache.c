// SPDX-License-Identifier: MIT
/*
 * Which images may keep the kernel's page cache from one open to the next.
 *
 * The kernel drops a file's cached pages at each open unless the open says
 * keep_cache. An image keeps them when its whole chain is unchanged since
 * the previous open of the same path (vhd_chain_version()), nobody has it
 * open for writing, and the daemon changed no image in between. Writes
 * through this mount use direct I/O, which drops the written range from
 * the cache of the path written through (the write handler drops the
 * pages of the file's other open names); other tools' changes move the
 * chain's version. The daemon's
 * own changes (a write open, a job rewriting an image, a reparent, an
 * unlink or rename) move a generation instead, which drops every image's
 * cache once: a version alone could miss a change made within the file
 * system's timestamp granularity, and a change to one file reaches the
 * caches of every path (hard links, symlinks) and child that shows it.
 */
#include <stdatomic.h>
#include <string.h>

#include "vhdfs.h"

#define SLOTS 256 /* a collision only costs a cache drop */

struct slot {
	uint64_t path_hash;
	uint64_t version;
	uint64_t gen;
};

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[SLOTS]; /* protected by slots_lock */
static _Atomic uint64_t generation = 1;

static uint64_t hash_path(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 0x100000001b3ull;
	return h;
}

bool vhdfs_cache_keep(const char *path, uint64_t version)
{
	uint64_t h = hash_path(path), gen = atomic_load(&generation);
	struct slot *s = &slots[h % SLOTS];
	bool keep;

	pthread_mutex_lock(&slots_lock);
	keep = version && s->path_hash == h && s->version == version &&
	       s->gen == gen;
	s->path_hash = h;
	s->version = version;
	s->gen = gen;
	pthread_mutex_unlock(&slots_lock);
	return keep;
}

void vhdfs_cache_changed(void)
{
	atomic_fetch_add(&generation, 1);
}
