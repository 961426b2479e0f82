// SPDX-License-Identifier: MIT
/*
 * Which images may keep the kernel's page cache from one open to the next.
 *
 * The kernel drops a file's cached pages at each open unless the open says
 * keep_cache. An image keeps them when its whole chain is unchanged since
 * the previous open of the same path (vhd_chain_version()) and nobody has
 * it open for writing. Writes through this mount use direct I/O, which
 * drops the written range from the cache, and a write open drops the
 * image's whole cache, so only other tools can change an image behind a
 * cache, and their changes move the chain's version.
 */
#include <string.h>

#include "vhdfs.h"

#define SLOTS 256 /* a collision only costs a cache drop */

struct slot {
	uint64_t path_hash;
	uint64_t version;
};

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[SLOTS]; /* protected by slots_lock */

static uint64_t hash_path(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 0x100000001b3ull;
	return h;
}

bool vhdfs_cache_keep(const char *path, uint64_t version)
{
	uint64_t h = hash_path(path);
	struct slot *s = &slots[h % SLOTS];
	bool keep;

	pthread_mutex_lock(&slots_lock);
	keep = version && s->path_hash == h && s->version == version;
	s->path_hash = h;
	s->version = version;
	pthread_mutex_unlock(&slots_lock);
	return keep;
}

void vhdfs_cache_forget(const char *path)
{
	uint64_t h = hash_path(path);
	struct slot *s = &slots[h % SLOTS];

	pthread_mutex_lock(&slots_lock);
	if (s->path_hash == h)
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&slots_lock);
}
