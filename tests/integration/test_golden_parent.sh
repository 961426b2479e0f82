#!/usr/bin/env bash
# A read-only golden image elsewhere as the parent: a child in BACKING_DIR
# of the real-world ext2.vhd (qemu-made) reads as that disk, its
# ext2 file system can be checked, mounted through a loop device and
# written; the golden image stays byte-identical to its SHA256SUMS entry.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img fusermount3 losetup e2fsck
require_bins

G=$TESTDATA/ext2.vhd
[ -f "$G" ] || fail "missing $G (tests/data/real-world, unpacked)"
want=$(awk '$2 == "ext2.vhd" { print $1 }' "$TESTDATA/SHA256SUMS")
[ -n "$want" ] || fail "ext2.vhd not in $TESTDATA/SHA256SUMS"
assert_eq "$want" "$(sha "$G")" "golden ext2.vhd before the test"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
qemu_flat "$G" "$T/golden.flat"
vhdfs_mount "$B" "$M"

ctl "$M" "vm.vhd $G"
assert_cmp "$T/golden.flat" "$M/vm.vhd" "child of the golden image"
parent=$(getfattr --only-values -n user.vhd.parent "$M/vm.vhd")
[ "$parent" = "$G" ] || [ "$parent" = "$(realpath "$G")" ] ||
	fail "user.vhd.parent is '$parent', not $G"
e2fsck -fn "$M/vm.vhd" >&2 || fail "e2fsck of the fresh child"

loop_attach "$M/vm.vhd"
mount_fs "$LOOPDEV" "$T/fs"
echo "written into the child of a golden image" >"$T/fs/child-note.txt"
head -c 200000 /dev/urandom >"$T/fs/blob"
sum=$(sha "$T/fs/blob")
umount "$T/fs"
loop_detach "$LOOPDEV"
e2fsck -fn "$M/vm.vhd" >&2 || fail "e2fsck of the written child"

# Read back through a fresh loop device, read-only.
loop_attach "$M/vm.vhd"
mount_fs "$LOOPDEV" "$T/fs" -o ro
assert_eq "written into the child of a golden image" \
	"$(cat "$T/fs/child-note.txt")" "note in the child"
assert_eq "$sum" "$(sha "$T/fs/blob")" "blob in the child"
umount "$T/fs"
loop_detach "$LOOPDEV"

vhdfs_umount "$M"
assert_eq "$want" "$(sha "$G")" "golden ext2.vhd after the test"
exit 0
