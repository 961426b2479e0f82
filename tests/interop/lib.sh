# SPDX-License-Identifier: MIT
# Shared setup of the interop tests (sourced, not run): checks the env the
# runner passes, makes $T (a temp dir removed on exit), and helpers.
set -euo pipefail
export LC_ALL=C # tool output matched below must not be translated

: "${VHD:?VHD (path of the vhd CLI) must be set}"
: "${BUILD:?BUILD must be set}"
: "${REPO:?REPO must be set}"
PY=/usr/bin/python3

T=$(mktemp -d "${TMPDIR:-/tmp}/vhd-interop.XXXXXX")
cleanup() { rm -rf "$T"; }
trap cleanup EXIT

# Run on its own (not from tests/run.sh): unpack the real-world images.
if [ -z "${TESTDATA:-}" ]; then
	. "$REPO/tests/lib/testdata.sh"
	TESTDATA=$T/testdata
	testdata_unpack "$TESTDATA" || {
		echo "FAIL: cannot unpack the test data" >&2
		exit 1
	}
fi

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Skip (77) when an oracle tool is missing.
need() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || {
			echo "SKIP: $t not installed"
			exit 77
		}
	done
}

# Build tests/interop/vhd-write.c against this build's libvhd.a into $T.
# An ASan build's library needs the sanitizer runtime at link time too.
build_writer() {
	local san=""
	# (no grep -q: an early exit would SIGPIPE nm under pipefail)
	if nm "$BUILD/libvhd.a" 2>/dev/null | grep __asan_ >/dev/null; then
		san="-fsanitize=address,undefined"
	fi
	cc -std=gnu11 -O1 -g $san -I"$REPO/vhd" \
		"$REPO/tests/interop/vhd-write.c" "$BUILD/libvhd.a" \
		-luuid -pthread -o "$T/vhd-write" ||
		fail "cannot build vhd-write"
	WRITE=$T/vhd-write
}

# same FILE1 FILE2 WHAT: byte-for-byte equality, with the first difference.
same() {
	cmp "$1" "$2" >/dev/null 2>&1 && return 0
	cmp "$1" "$2" | head -1 >&2 || true
	fail "$3: $1 and $2 differ"
}

# Every script works inside its own temp dir.
cd "$T" || exit 1

# pyvhdi_read OUT FILES... (leaf first): the chain as libvhdi reads it
pyvhdi_read() {
	$PY - "$@" <<'PY'
import sys, pyvhdi
out, paths = sys.argv[1], sys.argv[2:]
files = []
for p in paths:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
for child, parent in zip(files, files[1:]):
    child.set_parent(parent)
f = files[0]
size = f.get_media_size()
with open(out, "wb") as o:
    off = 0
    while off < size:
        n = min(1 << 20, size - off)
        o.write(f.read_buffer_at_offset(n, off))
        off += n
PY
}

# expect_fail WORD... -- CMD...: CMD fails, its message has every WORD
# (case-insensitive).
expect_fail() {
	local words=()
	while [ "$1" != -- ]; do
		words+=("$1")
		shift
	done
	shift
	if "$@" >/dev/null 2>err.txt; then
		fail "expected failure: $*"
	fi
	for wd in "${words[@]}"; do
		grep -qi -- "$wd" err.txt || fail "no '$wd' in: $(cat err.txt)"
	done
}

# vhdx_locator FILE KEY: value of KEY in FILE's VHDX parent locator item
vhdx_locator() {
	$PY - "$1" "$2" <<'PY'
import struct, sys, uuid
f = open(sys.argv[1], 'rb')
def rd(n, off):
    f.seek(off)
    return f.read(n)
r = rd(65536, 196608)
for i in range(struct.unpack_from('<I', r, 8)[0]):
    e = r[16 + 32 * i:48 + 32 * i]
    if str(uuid.UUID(bytes_le=e[:16])) == '8b7ca206-4790-4b9a-b8fe-575f050f886e':
        moff = struct.unpack_from('<Q', e, 16)[0]
t = rd(65536, moff)
for i in range(struct.unpack_from('<H', t, 10)[0]):
    e = t[32 + 32 * i:64 + 32 * i]
    if str(uuid.UUID(bytes_le=e[:16])) == 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c':
        o, n = struct.unpack_from('<II', e, 16)
        it = rd(n, moff + o)
for k in range(struct.unpack_from('<H', it, 18)[0]):
    ko, vo, kl, vl = struct.unpack_from('<IIHH', it, 20 + 12 * k)
    if it[ko:ko + kl].decode('utf-16-le') == sys.argv[2]:
        print(it[vo:vo + vl].decode('utf-16-le'))
PY
}
