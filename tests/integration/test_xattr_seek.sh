#!/usr/bin/env bash
# Extended attributes (getfattr) of dynamic and differencing images, and
# SEEK_DATA/SEEK_HOLE over the resolved chain (`cp --sparse=always` keeps
# holes), plus st_blocks counting only what each layer stores.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 getfattr
require_bins

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
# Whole 2 MiB blocks of data in the base: blocks 0 and 4.
make_base "$B/base.vhd" 16M 0x5a 2M 0
qemu_write "$B/base.vhd" 0x6b $((8 * MiB)) 2M

vhdfs_mount "$B" "$M"
ctl "$M" "child.vhd base.vhd"
# 4 KiB of the child's own at 12 MiB (a hole in the base).
head -c 4096 /dev/urandom |
	dd of="$M/child.vhd" bs=4096 seek=$((12 * MiB / 4096)) \
		conv=notrunc,fsync status=none

xa() { getfattr --only-values -n "user.vhd.$2" "$1"; }
# UUID of an image from its footer (bytes 68..83 of the last 512).
footer_uuid() {
	local hex
	hex=$(tail -c 512 "$1" | od -An -tx1 -j68 -N16 | tr -d ' \n')
	echo "${hex:0:8}-${hex:8:4}-${hex:12:4}-${hex:16:4}-${hex:20:12}"
}

# getfattr -d lists them all.
getfattr -d "$M/child.vhd" >"$T/child.xattrs"
cat "$T/child.xattrs" >&2
for a in type uuid parent chain block_size allocated_blocks; do
	grep -q "^user\.vhd\.$a=" "$T/child.xattrs" ||
		fail "getfattr -d does not list user.vhd.$a"
done

assert_eq differencing "$(xa "$M/child.vhd" type)" "child type"
assert_eq dynamic "$(xa "$M/base.vhd" type)" "base type"
assert_eq "$(footer_uuid "$B/child.vhd")" \
	"$(xa "$M/child.vhd" uuid | tr 'A-F' 'a-f')" "child uuid"
assert_eq "$(footer_uuid "$B/base.vhd")" \
	"$(xa "$M/base.vhd" uuid | tr 'A-F' 'a-f')" "base uuid"
parent=$(xa "$M/child.vhd" parent)
case "$parent" in
*base.vhd) ;;
*) fail "user.vhd.parent is '$parent', expected the resolved base.vhd" ;;
esac
chain=$(xa "$M/child.vhd" chain)
assert_eq 2 "$(printf '%s\n' "$chain" | grep -c .)" "chain length"
case "$(printf '%s\n' "$chain" | sed -n 1p)" in
*child.vhd) ;;
*) fail "chain does not start at the leaf: $chain" ;;
esac
case "$(printf '%s\n' "$chain" | sed -n 2p)" in
*base.vhd) ;;
*) fail "chain does not end at the base: $chain" ;;
esac
assert_eq 2097152 "$(xa "$M/child.vhd" block_size)" "child block_size"
assert_eq 2097152 "$(xa "$M/base.vhd" block_size)" "base block_size"
assert_eq 1 "$(xa "$M/child.vhd" allocated_blocks)" "child blocks"
assert_eq 2 "$(xa "$M/base.vhd" allocated_blocks)" "base blocks"
getfattr -n user.vhd.parent "$M/base.vhd" >/dev/null 2>&1 &&
	fail "a dynamic image has user.vhd.parent"
chain=$(xa "$M/base.vhd" chain)
assert_eq 1 "$(printf '%s\n' "$chain" | grep -c .)" "base chain length"

# st_blocks: what the layer itself stores.
cb=$(($(stat -c %b "$M/child.vhd") * 512))
bb=$(($(stat -c %b "$M/base.vhd") * 512))
[ "$cb" -ge 4096 ] && [ "$cb" -le $((2 * MiB + 64 * 1024)) ] ||
	fail "child st_blocks = $cb bytes (expected 4 KiB .. one block)"
[ "$bb" -ge $((4 * MiB)) ] || fail "base st_blocks = $bb bytes (< 4 MiB)"

# SEEK_DATA / SEEK_HOLE: data is [0,2M) [8M,10M) from the base and
# [12M,12M+4K) from the child; the rest is a hole up to 16 MiB.
"$PY" - "$M/child.vhd" <<'EOF' || fail "SEEK_DATA/SEEK_HOLE"
import errno, os, sys
M = 1 << 20
fd = os.open(sys.argv[1], os.O_RDONLY)
def seek(off, whence):
    try:
        return os.lseek(fd, off, whence)
    except OSError as e:
        return errno.errorcode[e.errno]
D, H = os.SEEK_DATA, os.SEEK_HOLE
want = [
    (0, D, 0), (0, H, 2 * M), (4096, H, 2 * M), (2 * M, D, 8 * M),
    (2 * M, H, 2 * M), (8 * M, H, 10 * M), (9 * M, D, 9 * M),
    (10 * M, D, 12 * M), (12 * M, H, 12 * M + 4096),
    (12 * M + 512, D, 12 * M + 512), (12 * M + 4096, D, "ENXIO"),
    (12 * M + 4096, H, 12 * M + 4096), (16 * M, D, "ENXIO"),
    (16 * M, H, "ENXIO"),
]
bad = 0
for off, whence, exp in want:
    got = seek(off, whence)
    if got != exp:
        name = "SEEK_DATA" if whence == D else "SEEK_HOLE"
        print(f"lseek({off}, {name}) = {got}, expected {exp}",
              file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
EOF

# cp --sparse=always keeps the holes and the content.
cp --sparse=always "$M/child.vhd" "$T/copy.raw"
assert_cmp "$M/child.vhd" "$T/copy.raw" "sparse copy"
alloc=$(($(stat -c %b "$T/copy.raw") * 512))
[ "$alloc" -le $((4 * MiB + 64 * 1024)) ] ||
	fail "sparse copy allocates $alloc bytes; holes were not skipped"

vhdfs_umount "$M"
exit 0
