# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# The real-world images of tests/data/real-world/ (made by other writers),
# unpacked for a test: the mostly-zero .vhd files are stored gzipped in the
# repository and decompressed here, except those SHA256SUMS lists as .gz
# (the FreeBSD image, which the tests gunzip themselves). Every file is checked against
# SHA256SUMS and made read-only, since tests use them as golden images.
#
#	. "$REPO/tests/lib/testdata.sh"
#	testdata_unpack DEST   # DEST is created; returns non-zero on failure
#
# A missing or damaged file is an error, never a reason to skip.

testdata_unpack() { # DEST
	local src dest=$1 gz name
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../data/real-world" &&
		pwd) || {
		echo "testdata: tests/data/real-world missing" >&2
		return 1
	}
	mkdir -p "$dest" || return 1
	for gz in "$src"/*.gz; do
		[ -e "$gz" ] || {
			echo "testdata: no images in $src" >&2
			return 1
		}
		name=$(basename "$gz")
		# SHA256SUMS names each file as the tests see it: a .gz
		# named there is used compressed, any other is gunzipped.
		if awk -v n="$name" '$2 == n { f = 1 } END { exit !f }' \
			"$src/SHA256SUMS"; then
			cp "$gz" "$dest/$name"
		else
			gunzip -c "$gz" > "$dest/${name%.gz}"
		fi || {
			echo "testdata: cannot unpack $gz" >&2
			return 1
		}
	done
	cp "$src/SHA256SUMS" "$dest/" || return 1
	(cd "$dest" && sha256sum --quiet -c SHA256SUMS) >&2 || {
		echo "testdata: $dest does not match $src/SHA256SUMS" >&2
		return 1
	}
	chmod a-w "$dest"/*
}
