// SPDX-License-Identifier: MIT
/* Parent locators and the UTF-16 text they (and the parent name) hold. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vhd_i.h"

/* Data space is in sectors per the spec, in bytes per Windows/VirtualBox. */
uint32_t vhd_locator_space_bytes(const struct vhd_locator *l)
{
	if (l->data_space < VHD_SECTOR_SIZE)
		return l->data_space * VHD_SECTOR_SIZE;
	return l->data_space;
}

void vhd_code_str(uint32_t code, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(code >> (24 - 8 * i));

		out[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	out[4] = 0;
}

int vhd_locators_validate(struct vhd_disk *d, uint64_t file_size)
{
	for (int i = 0; i < VHD_LOCATOR_COUNT; i++) {
		const struct vhd_locator *l = &d->header.loc[i];
		char name[5];

		if (!l->code)
			continue;
		vhd_code_str(l->code, name);
		if (l->data_length > VHD_MAX_LOCATOR_LEN)
			return vhd_set_error(
				-EINVAL,
				"%s: parent locator %d (%s) length "
				"%u is absurd",
				d->path, i, name, l->data_length);
		if (l->data_offset > file_size ||
		    file_size - l->data_offset < l->data_length)
			return vhd_set_error(
				-EINVAL,
				"%s: parent locator %d (%s) data at "
				"offset %" PRIu64 " length %u is "
				"beyond the end of the file (%" PRIu64
				" bytes)",
				d->path, i, name, l->data_offset,
				l->data_length, file_size);
	}
	return 0;
}

static int put_utf8(uint32_t cp, char *out, size_t len, size_t *pos)
{
	char tmp[4];
	size_t n;

	if (cp < 0x80) {
		tmp[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		tmp[0] = (char)(0xC0 | cp >> 6);
		tmp[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		tmp[0] = (char)(0xE0 | cp >> 12);
		tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		tmp[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		tmp[0] = (char)(0xF0 | cp >> 18);
		tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		tmp[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (*pos + n >= len)
		return -ENAMETOOLONG;
	memcpy(out + *pos, tmp, n);
	*pos += n;
	return 0;
}

/* Stops at the first NUL unit. Unpaired surrogates become U+FFFD. */
int vhd_utf16_to_utf8(const uint8_t *in, size_t units, bool big_endian,
		      char *out, size_t len)
{
	size_t pos = 0;
	int r;

	if (!len)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < units; i++) {
		const uint8_t *p = in + 2 * i;
		uint32_t u = big_endian ? (uint32_t)(p[0] << 8 | p[1])
					: (uint32_t)(p[1] << 8 | p[0]);

		if (!u)
			break;
		if (u >= 0xD800 && u < 0xDC00 && i + 1 < units) {
			const uint8_t *q = p + 2;
			uint32_t lo = big_endian ? (uint32_t)(q[0] << 8 | q[1])
						 : (uint32_t)(q[1] << 8 | q[0]);

			if (lo >= 0xDC00 && lo < 0xE000) {
				u = 0x10000 + ((u - 0xD800) << 10) +
				    (lo - 0xDC00);
				i++;
			} else {
				u = 0xFFFD;
			}
		} else if (u >= 0xD800 && u < 0xE000) {
			u = 0xFFFD;
		}
		r = put_utf8(u, out, len, &pos);
		if (r < 0)
			return r;
	}
	out[pos] = 0;
	return (int)pos;
}

static void put_unit(uint8_t *p, uint16_t u, bool big_endian)
{
	p[big_endian ? 0 : 1] = (uint8_t)(u >> 8);
	p[big_endian ? 1 : 0] = (uint8_t)u;
}

int vhd_utf8_to_utf16(const char *in, bool big_endian, uint8_t *out,
		      size_t max_units)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t n = 0;

	while (*s) {
		uint32_t cp;
		int extra;

		if (*s < 0x80) {
			cp = *s;
			extra = 0;
		} else if ((*s & 0xE0) == 0xC0) {
			cp = *s & 0x1F;
			extra = 1;
		} else if ((*s & 0xF0) == 0xE0) {
			cp = *s & 0x0F;
			extra = 2;
		} else if ((*s & 0xF8) == 0xF0) {
			cp = *s & 0x07;
			extra = 3;
		} else {
			return -EINVAL;
		}
		s++;
		for (int i = 0; i < extra; i++, s++) {
			if ((*s & 0xC0) != 0x80)
				return -EINVAL;
			cp = cp << 6 | (*s & 0x3F);
		}
		if (cp >= 0x10000) {
			if (n + 2 > max_units)
				return -ENAMETOOLONG;
			cp -= 0x10000;
			put_unit(out + 2 * n++, (uint16_t)(0xD800 + (cp >> 10)),
				 big_endian);
			put_unit(out + 2 * n++,
				 (uint16_t)(0xDC00 + (cp & 0x3FF)), big_endian);
		} else {
			if (n + 1 > max_units)
				return -ENAMETOOLONG;
			put_unit(out + 2 * n++, (uint16_t)cp, big_endian);
		}
	}
	return (int)n;
}

/*
 * The name is UTF-16BE, but early blktap wrote it with a byte order mark
 * and early VirtualBox little-endian: a name whose every unit reads as
 * 0xXX00 is a little-endian one (no real name is made of U+XX00 only).
 */
void vhd_parent_name_utf8(const struct vhd_header *h, char *out, size_t len)
{
	uint8_t be[2 * VHD_NAME_UNITS];
	const uint16_t *n = h->parent_name;
	size_t units = VHD_NAME_UNITS;
	bool little = n[0] != 0;

	if (n[0] == 0xFEFF || n[0] == 0xFFFE) {
		little = n[0] == 0xFFFE;
		n++;
		units--;
	} else {
		for (size_t i = 0; i < units && n[i]; i++)
			if ((n[i] & 0xFF) || !(n[i] >> 8))
				little = false;
	}
	for (size_t i = 0; i < units; i++)
		vhd_put16(be + 2 * i, n[i]);
	if (vhd_utf16_to_utf8(be, units, !little, out, len) < 0)
		out[0] = 0;
}

int vhd_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * file://[host]/path with %XX escapes → /path. blktap writes a relative
 * path after the scheme ("file://./p.vhd", "file://../d/p.vhd"): kept
 * relative, not taken for a host name.
 */
static void macx_to_path(char *s)
{
	char *src = s, *dst = s;

	if (strncmp(src, "file://", 7) == 0) {
		src += 7;
		if (*src != '/' && strncmp(src, "./", 2) != 0 &&
		    strncmp(src, "../", 3) != 0) {
			char *slash = strchr(src, '/');

			src = slash ? slash : src + strlen(src);
		}
	}
	while (*src) {
		if (src[0] == '%' && vhd_hexval(src[1]) >= 0 &&
		    vhd_hexval(src[2]) >= 0) {
			*dst++ = (char)(vhd_hexval(src[1]) << 4 |
					vhd_hexval(src[2]));
			src += 3;
		} else {
			*dst++ = *src++;
		}
	}
	*dst = 0;
}

/*
 * Decode locator @slot's payload to a UTF-8 path with '/' separators, as
 * stored (a W2ru path stays relative). Returns its length or -errno;
 * 0 for a code that holds no path (Virtual PC for Mac's binary "Mac "
 * alias record, unknown codes).
 */
int vhd_locator_decode(const struct vhd_disk *d, int slot, char *out,
		       size_t len)
{
	const struct vhd_locator *l = &d->header.loc[slot];
	uint8_t *raw;
	int r;

	if (!len)
		return -ENAMETOOLONG;
	out[0] = 0;
	if (l->code != VHD_PLAT_W2RU && l->code != VHD_PLAT_W2KU &&
	    l->code != VHD_PLAT_MACX && l->code != VHD_PLAT_WI2R &&
	    l->code != VHD_PLAT_WI2K)
		return 0;
	raw = malloc(l->data_length + 2);
	if (!raw)
		return -ENOMEM;
	r = vhd_io_read(d->fd, raw, l->data_length, l->data_offset);
	if (r < 0)
		goto out;
	raw[l->data_length] = 0;
	raw[l->data_length + 1] = 0;
	switch (l->code) {
	case VHD_PLAT_W2RU:
	case VHD_PLAT_W2KU:
		r = vhd_utf16_to_utf8(raw, l->data_length / 2, false, out, len);
		break;
	default:
		/* MacX is UTF-8; the deprecated codes are plain bytes. */
		r = snprintf(out, len, "%s", (char *)raw) >= (int)len
			    ? -ENAMETOOLONG
			    : 0;
		if (r == 0 && l->code == VHD_PLAT_MACX)
			macx_to_path(out);
		break;
	}
	if (r < 0)
		goto out;
	for (char *p = out; *p; p++)
		if (*p == '\\')
			*p = '/';
	r = (int)strlen(out);
out:
	free(raw);
	return r;
}

/* Relative path from directory @from to file @to, both canonical. */
static int relative_path(const char *from, const char *to, char *out,
			 size_t len)
{
	const char *from_rest, *to_rest;
	size_t i = 0, pos = 0;

	while (from[i] && from[i] == to[i])
		i++;
	if (!from[i] && to[i] == '/') { /* @to is below @from */
		from_rest = from + i;
		to_rest = to + i + 1;
	} else {
		while (i > 0 && from[i - 1] != '/')
			i--;
		from_rest = from + i;
		to_rest = to + i;
	}
	/* one "../" per component of @from below the common directory */
	for (const char *p = from_rest; *p;
	     p = strchr(p, '/') ? strchr(p, '/') + 1 : "") {
		if (pos + 3 >= len)
			return -ENAMETOOLONG;
		memcpy(out + pos, "../", 3);
		pos += 3;
	}
	if (pos + strlen(to_rest) >= len)
		return -ENAMETOOLONG;
	strcpy(out + pos, to_rest);
	return 0;
}

/* Windows path text: '/' → '\', as UTF-16LE. */
static int windows_utf16(const char *prefix, const char *path, uint8_t *out,
			 size_t max_units, uint32_t *bytes)
{
	char *s = malloc(strlen(prefix) + strlen(path) + 1);
	int n;

	if (!s)
		return -ENOMEM;
	strcpy(s, prefix);
	strcat(s, path);
	for (char *p = s; *p; p++)
		if (*p == '/')
			*p = '\\';
	n = vhd_utf8_to_utf16(s, false, out, max_units);
	free(s);
	if (n < 0)
		return n;
	*bytes = (uint32_t)n * 2;
	return 0;
}

int vhd_parent_ref_make(const char *child, const char *parent,
			struct vhd_parent_ref *ref)
{
	char *abs_parent = NULL, *child_dir = NULL, rel[PATH_MAX];
	uint8_t name_be[2 * VHD_NAME_UNITS] = {0};
	const char *base, *slash;
	struct stat st;
	int r = 0, n;

	memset(ref, 0, sizeof(*ref));
	abs_parent = realpath(parent, NULL);
	slash = strrchr(child, '/');
	child_dir = slash ? strndup(child, (size_t)(slash - child + 1))
			  : strdup(".");
	if (child_dir) {
		char *tmp = realpath(child_dir, NULL);

		free(child_dir);
		child_dir = tmp;
	}
	if (!abs_parent || !child_dir) {
		r = vhd_set_error(-errno ? -errno : -ENOMEM, "%s: %s", child,
				  strerror(errno ? errno : ENOMEM));
		goto out;
	}
	base = strrchr(parent, '/') ? strrchr(parent, '/') + 1 : parent;
	n = vhd_utf8_to_utf16(base, true, name_be, VHD_NAME_UNITS);
	ref->w2ku = malloc(2 * PATH_MAX);
	ref->w2ru = malloc(2 * PATH_MAX);
	if (n < 0 || !ref->w2ku || !ref->w2ru ||
	    relative_path(child_dir, abs_parent, rel, sizeof(rel)) < 0) {
		r = vhd_set_error(
			n < 0 ? n : -ENAMETOOLONG,
			"%s: parent name or path not representable: %s", child,
			parent);
		goto out;
	}
	r = windows_utf16("", abs_parent, ref->w2ku, PATH_MAX, &ref->w2ku_len);
	if (r == 0)
		r = windows_utf16("./", rel, ref->w2ru, PATH_MAX,
				  &ref->w2ru_len);
	if (r < 0) {
		vhd_set_error(r, "%s: parent path not representable: %s", child,
			      parent);
		goto out;
	}
	for (int i = 0; i < VHD_NAME_UNITS; i++)
		ref->name[i] = vhd_get16(name_be + 2 * i);
	if (stat(abs_parent, &st) == 0 && st.st_mtime > VHD_EPOCH_OFFSET)
		ref->timestamp = (uint32_t)(st.st_mtime - VHD_EPOCH_OFFSET);
out:
	free(abs_parent);
	free(child_dir);
	if (r < 0)
		vhd_parent_ref_free(ref);
	return r;
}

void vhd_parent_ref_free(struct vhd_parent_ref *ref)
{
	free(ref->w2ku);
	free(ref->w2ru);
	ref->w2ku = ref->w2ru = NULL;
}
