// SPDX-License-Identifier: MIT
/* Shared helpers of the unit tests; see helpers.h for the contracts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "helpers.h"

#define die(...) fail_msg(__VA_ARGS__)

/* --- temporary directories and paths ----------------------------------- */

char *th_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/vhdtest.XXXXXX", base) < 0)
		die("asprintf");
	if (!mkdtemp(p))
		die("mkdtemp %s: %s", p, strerror(errno));
	return p;
}

void th_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (!lstat(sub, &st) && S_ISDIR(st.st_mode)) {
			chmod(sub, 0700);
			th_rmtree(sub);
		} else {
			unlink(sub);
		}
	}
	closedir(d);
	rmdir(dir);
}

const char *th_path(const char *dir, const char *name)
{
	static char bufs[32][PATH_MAX];
	static int next;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char *b;

	pthread_mutex_lock(&lock);
	b = bufs[next++ % 32];
	pthread_mutex_unlock(&lock);
	snprintf(b, PATH_MAX, "%s/%s", dir, name);
	return b;
}

bool th_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int th_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		die("opendir %s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* --- raw file access --------------------------------------------------- */

uint64_t th_file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		die("stat %s: %s", path, strerror(errno));
	return st.st_size;
}

static void full_pread(int fd, void *buf, size_t len, uint64_t off,
		       const char *path)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n =
			pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("pread %s: %s", path, strerror(errno));
		if (n == 0) {
			memset((char *)buf + done, 0, len - done);
			return;
		}
		done += n;
	}
}

static void full_pwrite(int fd, const void *buf, size_t len, uint64_t off,
			const char *path)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
				   off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("pwrite %s: %s", path, strerror(errno));
		done += n;
	}
}

uint8_t *th_read_file(const char *path, size_t *len)
{
	uint64_t size = th_file_size(path);
	int fd = open(path, O_RDONLY);
	uint8_t *buf;

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	buf = malloc(size ? size : 1);
	if (!buf)
		die("malloc %llu", (unsigned long long)size);
	full_pread(fd, buf, size, 0, path);
	close(fd);
	if (len)
		*len = size;
	return buf;
}

void th_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	full_pwrite(fd, buf, len, 0, path);
	close(fd);
}

void th_pread_raw(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	full_pread(fd, buf, len, off, path);
	close(fd);
}

void th_pwrite_raw(const char *path, const void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	full_pwrite(fd, buf, len, off, path);
	close(fd);
}

void th_truncate(const char *path, uint64_t size)
{
	if (truncate(path, size))
		die("truncate %s: %s", path, strerror(errno));
}

void th_copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static char buf[1 << 16];
	uint64_t off = 0;
	ssize_t n;

	if (in < 0 || out < 0)
		die("copy %s -> %s: %s", from, to, strerror(errno));
	/* Keep holes: skip all-zero chunks, then set the size. */
	while ((n = pread(in, buf, sizeof(buf), off)) > 0) {
		bool zero = true;

		for (ssize_t i = 0; i < n && zero; i++)
			zero = !buf[i];
		if (!zero)
			full_pwrite(out, buf, n, off, to);
		off += n;
	}
	if (n < 0 || ftruncate(out, off))
		die("copy %s: %s", from, strerror(errno));
	close(in);
	close(out);
}

uint64_t th_file_hash(const char *path)
{
	int fd = open(path, O_RDONLY);
	static char buf[1 << 16];
	uint64_t h = 1469598103934665603ull, off = 0;
	ssize_t n;

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ (uint8_t)buf[i]) * 1099511628211ull;
		off += n;
	}
	close(fd);
	return h ^ off;
}

void th_set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = {{t, 0}, {t, 0}};

	if (utimensat(AT_FDCWD, path, ts, 0))
		die("utimensat %s: %s", path, strerror(errno));
}

time_t th_mtime(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		die("stat %s: %s", path, strerror(errno));
	return st.st_mtime;
}

/* --- big-endian fields, checksums, geometry ---------------------------- */

void th_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

void th_be32(uint8_t *p, uint32_t v)
{
	th_be16(p, v >> 16);
	th_be16(p + 2, v);
}

void th_be64(uint8_t *p, uint64_t v)
{
	th_be32(p, v >> 32);
	th_be32(p + 4, v);
}

uint16_t th_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t th_get_be32(const uint8_t *p)
{
	return (uint32_t)th_get_be16(p) << 16 | th_get_be16(p + 2);
}

uint64_t th_get_be64(const uint8_t *p)
{
	return (uint64_t)th_get_be32(p) << 32 | th_get_be32(p + 4);
}

uint32_t th_checksum(const uint8_t *buf, size_t len, size_t cks_off)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < cks_off || i >= cks_off + 4)
			sum += buf[i];
	return ~sum;
}

uint32_t th_crc32c(const uint8_t *p, size_t len)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return ~c;
}

void th_fix_footer_cksum(uint8_t *footer)
{
	th_be32(footer + 64, th_checksum(footer, 512, 64));
}

void th_fix_header_cksum(uint8_t *header)
{
	th_be32(header + 36, th_checksum(header, 1024, 36));
}

uint32_t th_chs(uint64_t size)
{
	uint64_t total = size / 512, cth;
	uint32_t spt, heads;

	if (total > 65535ull * 16 * 255)
		total = 65535ull * 16 * 255;
	if (total >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = total / spt;
	} else {
		spt = 17;
		cth = total / spt;
		heads = (cth + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024ull || heads > 16) {
			spt = 31;
			heads = 16;
			cth = total / spt;
		}
		if (cth >= heads * 1024ull) {
			spt = 63;
			heads = 16;
			cth = total / spt;
		}
	}
	return (uint32_t)(cth / heads) << 16 | heads << 8 | spt;
}

size_t th_utf16(uint8_t *out, const char *s, bool big_endian)
{
	size_t n = 0;

	for (; *s; s++, n += 2) {
		out[n + (big_endian ? 0 : 1)] = 0;
		out[n + (big_endian ? 1 : 0)] = (uint8_t)*s;
	}
	return n;
}

void th_from_utf16(char *out, const uint8_t *in, size_t len, bool big_endian)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		unsigned c = big_endian ? (in[i] << 8 | in[i + 1])
					: (in[i + 1] << 8 | in[i]);
		if (!c)
			break;
		*out++ = c < 128 ? (char)c : '?';
	}
	*out = 0;
}

/* --- images built by hand ---------------------------------------------- */

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

void th_random_uuid(uint8_t uuid[16])
{
	uuid_generate(uuid);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void make_footer(uint8_t *f, const struct th_spec *s,
			uint64_t data_offset)
{
	memset(f, 0, 512);
	memcpy(f, "conectix", 8);
	th_be32(f + 8, 2);
	th_be32(f + 12, 0x00010000);
	th_be64(f + 16, data_offset);
	th_be32(f + 24, (uint32_t)(time(NULL) - VHD_EPOCH_OFFSET));
	memcpy(f + 28, s->creator ? s->creator : "tst ", 4);
	th_be32(f + 32, 0x00010000);
	th_be32(f + 36, 0x5769326B);
	th_be64(f + 40, s->size);
	th_be64(f + 48, s->size);
	th_be32(f + 56, th_chs(s->size));
	th_be32(f + 60, s->type);
	if (all_zero(s->uuid, 16))
		th_random_uuid(f + 68);
	else
		memcpy(f + 68, s->uuid, 16);
	th_fix_footer_cksum(f);
}

static void set_locator(uint8_t *h, int slot, uint32_t code, uint32_t space,
			uint32_t len, uint64_t off)
{
	uint8_t *e = h + 576 + 24 * slot;

	th_be32(e, code);
	th_be32(e + 4, space);
	th_be32(e + 8, len);
	th_be32(e + 12, 0);
	th_be64(e + 16, off);
}

void th_build(const char *path, const struct th_spec *s)
{
	uint32_t bs = s->block_size ? s->block_size : VHD_DEFAULT_BLOCK_SIZE;
	uint8_t footer[512], header[1024];
	uint32_t mte;
	uint64_t bat_off = 1536, pos;
	size_t bat_bytes;
	uint8_t *bat;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	if (s->type == VHD_TYPE_FIXED) {
		make_footer(footer, s, ~0ull);
		full_pwrite(fd, footer, 512, s->size, path);
		close(fd);
		return;
	}
	mte = (uint32_t)((s->size + bs - 1) / bs);
	bat_bytes = round_up((uint64_t)mte * 4, 512);
	bat = malloc(bat_bytes);
	memset(bat, 0xFF, bat_bytes);
	full_pwrite(fd, bat, bat_bytes, bat_off, path);
	free(bat);
	pos = bat_off + bat_bytes;

	memset(header, 0, sizeof(header));
	memcpy(header, "cxsparse", 8);
	th_be64(header + 8, ~0ull);
	th_be64(header + 16, bat_off);
	th_be32(header + 24, 0x00010000);
	th_be32(header + 28, mte);
	th_be32(header + 32, bs);
	if (s->type == VHD_TYPE_DIFF) {
		const char *pay[2] = {s->w2ru, s->w2ku};
		uint32_t codes[2] = {TH_W2RU, TH_W2KU};
		int slot = 0;

		memcpy(header + 40, s->parent_uuid, 16);
		th_be32(header + 56, s->parent_ts);
		if (s->parent_name)
			th_utf16(header + 64, s->parent_name, true);
		for (int i = 0; i < 2; i++) {
			uint8_t buf[8192] = {0};
			size_t n, space;

			if (!pay[i])
				continue;
			n = th_utf16(buf, pay[i], false);
			space = round_up(n ? n : 1, 512);
			full_pwrite(fd, buf, space, pos, path);
			set_locator(header, slot++, codes[i],
				    s->locator_space_sectors
					    ? (uint32_t)(space / 512)
					    : (uint32_t)space,
				    (uint32_t)n, pos);
			pos += space;
		}
	}
	th_fix_header_cksum(header);
	full_pwrite(fd, header, 1024, 512, path);
	make_footer(footer, s, 512);
	full_pwrite(fd, footer, 512, 0, path);
	full_pwrite(fd, footer, 512, pos, path);
	close(fd);
}

void th_read_footer(const char *path, uint8_t footer[512])
{
	th_pread_raw(path, footer, 512, th_file_size(path) - 512);
}

void th_read_header(const char *path, uint8_t header[1024])
{
	uint8_t f[512];

	th_read_footer(path, f);
	th_pread_raw(path, header, 1024, th_get_be64(f + 16));
}

void th_write_header(const char *path, const uint8_t header[1024])
{
	uint8_t f[512], h[1024];

	memcpy(h, header, 1024);
	th_fix_header_cksum(h);
	th_read_footer(path, f);
	th_pwrite_raw(path, h, 1024, th_get_be64(f + 16));
}

void th_write_footers(const char *path, const uint8_t footer[512])
{
	uint8_t f[512];
	uint32_t type = th_get_be32(footer + 60);

	memcpy(f, footer, 512);
	th_fix_footer_cksum(f);
	th_pwrite_raw(path, f, 512, th_file_size(path) - 512);
	if (type != VHD_TYPE_FIXED)
		th_pwrite_raw(path, f, 512, 0);
}

void th_layout_of(const char *path, struct th_layout *l)
{
	uint8_t f[512], h[1024];

	th_read_footer(path, f);
	th_read_header(path, h);
	if (memcmp(h, "cxsparse", 8))
		die("%s: no dynamic header", path);
	l->table_offset = th_get_be64(h + 16);
	l->max_table_entries = th_get_be32(h + 28);
	l->block_size = th_get_be32(h + 32);
	l->bitmap_size = round_up(l->block_size / 512 / 8, 512);
	l->size = th_get_be64(f + 48);
}

void th_alloc_block(const char *path, uint32_t blk, const uint8_t *bitmap,
		    const uint8_t *data, uint32_t align)
{
	struct th_layout l;
	uint8_t footer[512], entry[4];
	uint64_t end, bm_pos, data_pos;
	uint8_t *buf;
	int fd;

	th_layout_of(path, &l);
	if (blk >= l.max_table_entries)
		die("block %u out of range", blk);
	end = th_file_size(path) - 512;
	th_pread_raw(path, footer, 512, end);
	data_pos = end + l.bitmap_size;
	if (align)
		data_pos = round_up(data_pos, align);
	bm_pos = data_pos - l.bitmap_size;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	buf = calloc(1, l.bitmap_size + l.block_size + (bm_pos - end));
	if (bitmap)
		memcpy(buf + (bm_pos - end), bitmap, l.bitmap_size);
	else
		memset(buf + (bm_pos - end), 0xFF, l.bitmap_size);
	if (data)
		memcpy(buf + (data_pos - end), data, l.block_size);
	full_pwrite(fd, buf, (data_pos - end) + l.block_size, end, path);
	full_pwrite(fd, footer, 512, data_pos + l.block_size, path);
	th_be32(entry, (uint32_t)(bm_pos / 512));
	full_pwrite(fd, entry, 4, l.table_offset + 4ull * blk, path);
	close(fd);
	free(buf);
}

void th_fill_pattern(uint8_t *buf, size_t len, uint64_t off, uint32_t tag)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t p = off + i;
		uint64_t x = (p >> 3) * 0x9E3779B97F4A7C15ull ^
			     (uint64_t)tag * 0xC2B2AE3D27D4EB4Full;

		x ^= x >> 29;
		buf[i] = (uint8_t)(x >> ((p & 7) * 8)) | 1;
	}
}

/* --- library helpers --------------------------------------------------- */

void th_create(const char *path, enum vhd_type type, uint64_t size,
	       uint32_t block_size)
{
	struct vhd_create_params p = {type, size, block_size};
	int r = vhd_create(path, &p);

	if (r)
		die("vhd_create %s: %d %s", path, r, vhd_errmsg());
}

void th_create_diff(const char *child, const char *parent)
{
	int r = vhd_create_diff(child, parent);

	if (r)
		die("vhd_create_diff %s %s: %d %s", child, parent, r,
		    vhd_errmsg());
}

struct vhd_disk *th_open(const char *path, int flags)
{
	struct vhd_disk *d = NULL;
	int r = vhd_open(path, flags, &d);

	if (r || !d)
		die("vhd_open %s: %d %s", path, r, vhd_errmsg());
	return d;
}

uint8_t *th_read_all(struct vhd_disk *d)
{
	uint64_t size = vhd_size(d);
	uint8_t *buf = malloc(size ? size : 1);
	ssize_t n;

	if (!buf)
		die("malloc");
	n = vhd_pread(d, buf, size, 0);
	if (n != (ssize_t)size)
		die("vhd_pread all: %zd of %llu: %s", n,
		    (unsigned long long)size, vhd_errmsg());
	return buf;
}

void th_write(struct vhd_disk *d, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = vhd_pwrite(d, buf, len, off);

	if (n != (ssize_t)len)
		die("vhd_pwrite %zu at %llu: %zd %s", len,
		    (unsigned long long)off, n, vhd_errmsg());
}

void th_expect_read(struct vhd_disk *d, const uint8_t *expect, size_t len,
		    uint64_t off)
{
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t n = vhd_pread(d, buf, len, off);

	if (n != (ssize_t)len) {
		free(buf);
		die("vhd_pread %zu at %llu: %zd %s", len,
		    (unsigned long long)off, n, vhd_errmsg());
	}
	if (!memcmp(buf, expect, len))
		len = 0; /* equal: skip the search for the first difference */
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != expect[i]) {
			uint8_t got = buf[i];

			free(buf);
			die("read mismatch at byte %llu (read of %zu at %llu):"
			    " got 0x%02x expected 0x%02x",
			    (unsigned long long)(off + i), len,
			    (unsigned long long)off, got, expect[i]);
		}
	}
	free(buf);
}

bool th_msg_has(const char *word)
{
	const char *m = vhd_errmsg();

	if (m && strcasestr(m, word))
		return true;
	print_message("vhd_errmsg() \"%s\" lacks \"%s\"\n", m ? m : "(null)",
		      word);
	return false;
}

int th_setup_dir(void **state)
{
	*state = th_tmpdir();
	return 0;
}

int th_teardown_dir(void **state)
{
	vhd_set_io_ops(NULL);
	th_rmtree(*state);
	free(*state);
	return 0;
}

bool th_msg_names(const char *path)
{
	const char *base = strrchr(path, '/');

	return th_msg_has(base ? base + 1 : path);
}

void th_open_fails(const char *path, int flags, int err, int alt_err,
		   const char *const *words)
{
	struct vhd_disk *d = NULL;
	int r = vhd_open(path, flags, &d);
	bool found = false;

	if (r == 0) {
		vhd_close(d);
		die("vhd_open %s succeeded; expected %s", path, strerror(err));
	}
	if (r != -err && (!alt_err || r != -alt_err))
		die("vhd_open %s: got %d (%s), expected -%d (%s) [%s]", path, r,
		    strerror(-r), err, strerror(err), vhd_errmsg());
	if (!th_msg_names(path))
		die("message does not name the file");
	for (int i = 0; words[i] && !found; i++)
		found = strcasestr(vhd_errmsg(), words[i]) != NULL;
	if (!found)
		die("message \"%s\" names none of the expected defect words"
		    " (first: %s)",
		    vhd_errmsg(), words[0]);
}

/* --- seeded randomness -------------------------------------------------- */

uint64_t th_seed(const char *env, const char *test)
{
	const char *v = getenv(env);
	uint64_t seed;
	struct timespec ts;

	if (v && *v) {
		seed = strtoull(v, NULL, 0);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000003u ^ ts.tv_nsec ^ getpid();
	}
	print_message("%s: seed %llu (set %s=%llu to repeat)\n", test,
		      (unsigned long long)seed, env, (unsigned long long)seed);
	return seed ? seed : 1;
}

uint64_t th_rand(uint64_t *s)
{
	/* splitmix64: any seed, good enough spread for test inputs. */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

uint64_t th_rand_below(uint64_t *s, uint64_t n)
{
	return n ? th_rand(s) % n : 0;
}

void th_rand_fill(uint64_t *s, uint8_t *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t r = th_rand(s);

		for (int k = 0; k < 8 && i < len; k++, r >>= 8)
			buf[i++] = (uint8_t)r;
	}
}

/* --- fault injection --------------------------------------------------- */

struct undo {
	int fd;
	char path[PATH_MAX]; /* the fd may be closed by the time of the undo */
	uint64_t off;
	size_t len; /* bytes of @old that existed before the write */
	uint64_t old_size;
	uint8_t *old;
	const uint8_t *new_data; /* copy of what was written */
	size_t new_len;
};

static struct {
	pthread_mutex_t lock;
	long cut;
	long writes;
	enum th_cut_mode mode;
	bool count_syncs; /* fsync calls are cut points too */
	bool tripped;
	struct undo *log;
	size_t nlog, cap;
} fault = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void undo_clear(int fd)
{
	size_t j = 0;

	for (size_t i = 0; i < fault.nlog; i++) {
		if (fd >= 0 && fault.log[i].fd != fd) {
			fault.log[j++] = fault.log[i];
			continue;
		}
		free(fault.log[i].old);
		free((void *)fault.log[i].new_data);
	}
	fault.nlog = j;
}

/*
 * Power loss: put back, newest first, whatever unsynced writes changed;
 * with @keep_newest, then redo the newest one as if it alone had landed.
 */
static void undo_apply(bool keep_newest)
{
	struct undo *last = fault.nlog ? &fault.log[fault.nlog - 1] : NULL;

	for (size_t i = fault.nlog; i-- > 0;) {
		struct undo *u = &fault.log[i];
		int fd;

		if (keep_newest && u == last)
			continue;
		fd = open(u->path, O_WRONLY);
		if (fd < 0)
			die("undo open %s: %s", u->path, strerror(errno));
		if (u->len && pwrite(fd, u->old, u->len, u->off) < 0)
			die("undo pwrite: %s", strerror(errno));
		if (ftruncate(fd, u->old_size))
			die("undo ftruncate: %s", strerror(errno));
		close(fd);
	}
	if (keep_newest && last) {
		int fd = open(last->path, O_WRONLY);

		if (fd < 0 ||
		    pwrite(fd, last->new_data, last->new_len, last->off) < 0)
			die("redo pwrite: %s", strerror(errno));
		close(fd);
	}
	undo_clear(-1);
}

static void undo_record(int fd, const void *buf, size_t len, off_t off)
{
	struct stat st;
	struct undo *u;

	if (fstat(fd, &st))
		die("fstat: %s", strerror(errno));
	if (fault.nlog == fault.cap) {
		fault.cap = fault.cap ? fault.cap * 2 : 64;
		fault.log = realloc(fault.log, fault.cap * sizeof(*fault.log));
	}
	u = &fault.log[fault.nlog++];
	u->fd = fd;
	{
		char link[64];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, u->path, sizeof(u->path) - 1);
		if (n < 0)
			die("readlink %s: %s", link, strerror(errno));
		u->path[n] = 0;
	}
	u->off = off;
	u->old_size = st.st_size;
	u->len = (uint64_t)off < (uint64_t)st.st_size
			 ? (size_t)((uint64_t)st.st_size - off < len
					    ? (uint64_t)st.st_size - off
					    : len)
			 : 0;
	u->old = malloc(u->len ? u->len : 1);
	u->new_data = malloc(len ? len : 1);
	memcpy((void *)u->new_data, buf, len);
	u->new_len = len;
	if (u->len && pread(fd, u->old, u->len, off) != (ssize_t)u->len)
		die("undo pread: %s", strerror(errno));
}

static ssize_t f_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static ssize_t f_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n;

	pthread_mutex_lock(&fault.lock);
	fault.writes++;
	if (getenv("TH_FAULT_TRACE"))
		print_message("    pwrite #%ld fd %d off %lld len %zu\n",
			      fault.writes, fd, (long long)off, len);
	if (fault.cut >= 0 && fault.writes > fault.cut) {
		if (!fault.tripped && fault.mode != TH_CUT_KEEP)
			undo_apply(fault.mode == TH_CUT_KEEP_NEWEST);
		fault.tripped = true;
		pthread_mutex_unlock(&fault.lock);
		return -EIO;
	}
	if (fault.mode != TH_CUT_KEEP && fault.cut >= 0)
		undo_record(fd, buf, len, off);
	n = pwrite(fd, buf, len, off);
	pthread_mutex_unlock(&fault.lock);
	return n < 0 ? -errno : n;
}

static int f_fsync(int fd)
{
	int r;

	pthread_mutex_lock(&fault.lock);
	if (getenv("TH_FAULT_TRACE"))
		print_message("    fsync after pwrite #%ld\n", fault.writes);
	if (fault.count_syncs && !fault.tripped && fault.cut >= 0 &&
	    ++fault.writes > fault.cut) {
		/* Power lost before this sync reached the disk. */
		if (fault.mode != TH_CUT_KEEP)
			undo_apply(fault.mode == TH_CUT_KEEP_NEWEST);
		fault.tripped = true;
	} else if (fault.count_syncs && fault.cut < 0) {
		fault.writes++;
	}
	if (fault.tripped) {
		pthread_mutex_unlock(&fault.lock);
		return -EIO;
	}
	/* Durability is modelled by the undo log, not asked of the disk. */
	r = fcntl(fd, F_GETFD) < 0 ? -errno : 0;
	if (!r)
		undo_clear(fd);
	pthread_mutex_unlock(&fault.lock);
	return r;
}

static const struct vhd_io_ops fault_ops = {
	.pread = f_pread, .pwrite = f_pwrite, .fsync = f_fsync};

void th_fault_install_events(long cut, enum th_cut_mode mode)
{
	th_fault_install(cut, mode);
	pthread_mutex_lock(&fault.lock);
	fault.count_syncs = true;
	pthread_mutex_unlock(&fault.lock);
}

void th_fault_install(long cut, enum th_cut_mode mode)
{
	pthread_mutex_lock(&fault.lock);
	fault.count_syncs = false;
	undo_clear(-1);
	fault.cut = cut;
	fault.writes = 0;
	fault.mode = mode;
	fault.tripped = false;
	pthread_mutex_unlock(&fault.lock);
	vhd_set_io_ops(&fault_ops);
}

void th_fault_power_loss(void)
{
	pthread_mutex_lock(&fault.lock);
	undo_apply(false);
	fault.tripped = true;
	pthread_mutex_unlock(&fault.lock);
}

long th_fault_writes(void)
{
	return fault.writes;
}

bool th_fault_tripped(void)
{
	return fault.tripped;
}

void th_fault_remove(void)
{
	vhd_set_io_ops(NULL);
	pthread_mutex_lock(&fault.lock);
	undo_clear(-1);
	fault.cut = -1;
	pthread_mutex_unlock(&fault.lock);
}
