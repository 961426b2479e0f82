#!/usr/bin/env bash
# asan: yes
# Mount smoke test: the mount shows each .vhd (and nothing else) as a flat
# image of its virtual size; `echo "child parent" > .control` creates a
# differencing child whose flat content equals the parent's; writes to the
# child leave the parent's file untouched; `fusermount3 -u` ends the daemon
# with status 0. A Hyper-V 2008 R2 snapshot (a differencing VHD named
# .avhd) is shown too.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B" "$B/sub"
make_base "$B/base.vhd" 16M 0x5a 1M 0
qemu_write "$B/base.vhd" 0xa5 $((8 * 1024 * 1024 + 4096)) 65536
make_base "$B/sub/deep.vhd" 4M 0x11 512 0
echo "not an image" >"$B/notes.txt"
qemu_flat "$B/base.vhd" "$T/base.flat"
assert_eq 16777216 "$(stat -c %s "$T/base.flat")" "qemu flat size"
base_sha=$(sha "$B/base.vhd")

vhdfs_mount "$B" "$M"

# Listing: images only (subdirectories mirrored), plus the control file.
assert_eq "base.vhd sub" "$(cd "$M" && echo *)" "top-level listing"
assert_eq "deep.vhd" "$(cd "$M/sub" && echo *)" "subdirectory listing"
[ ! -e "$M/notes.txt" ] || fail "non-.vhd file shown in the mount"
[ -f "$M/.control" ] || fail "no .control file"
assert_eq 16777216 "$(stat -c %s "$M/base.vhd")" "st_size of base.vhd"
assert_eq 4194304 "$(stat -c %s "$M/sub/deep.vhd")" "st_size of deep.vhd"

# Flat reads equal qemu's reading of the same dynamic image.
assert_cmp "$T/base.flat" "$M/base.vhd" "base.vhd through the mount"
qemu_flat "$B/sub/deep.vhd" "$T/deep.flat"
assert_cmp "$T/deep.flat" "$M/sub/deep.vhd" "sub/deep.vhd"

# The main job: a differencing child by echo.
ctl "$M" "child.vhd base.vhd"
[ -f "$B/child.vhd" ] || fail "child.vhd not created in the backing dir"
[ -f "$M/child.vhd" ] || fail "child.vhd not shown in the mount"
assert_eq 16777216 "$(stat -c %s "$M/child.vhd")" "st_size of child.vhd"
assert_cmp "$T/base.flat" "$M/child.vhd" "fresh child vs parent flat"
# A fresh child stores no data blocks: its st_blocks is far below the
# parent's 1 MiB + 64 KiB of data (BAT and headers only).
child_blocks=$(stat -c %b "$M/child.vhd")
base_blocks=$(stat -c %b "$M/base.vhd")
[ "$child_blocks" -lt 256 ] ||
	fail "fresh child st_blocks=$child_blocks (expected only metadata)"
[ "$base_blocks" -ge 2176 ] ||
	fail "base st_blocks=$base_blocks, expected >= 1088 KiB of data"

# Write into the child: reads show the write; the parent file is untouched.
printf 'hello from the child' |
	dd of="$M/child.vhd" bs=512 seek=3 conv=notrunc status=none
cp "$T/base.flat" "$T/expect.flat"
printf 'hello from the child' |
	dd of="$T/expect.flat" bs=512 seek=3 conv=notrunc status=none
sync "$M/child.vhd"
assert_cmp "$T/expect.flat" "$M/child.vhd" "child after write"
assert_cmp "$T/base.flat" "$M/base.vhd" "parent after child write"
assert_eq "$base_sha" "$(sha "$B/base.vhd")" "parent backing file sha256"

# A clean unmount: the daemon exits 0 (checked by vhdfs_umount).
vhdfs_umount "$M"
is_mounted "$M" && fail "still mounted after fusermount3 -u"

# The child on disk still resolves to the same content after remount.
vhdfs_mount "$B" "$M" -o ro
assert_cmp "$T/expect.flat" "$M/child.vhd" "child after remount"
cp "$B/child.vhd" "$B/snap.avhd"
assert_eq "base.vhd child.vhd snap.avhd sub" "$(cd "$M" && echo *)" \
	"listing with an .avhd"
assert_eq 16777216 "$(stat -c %s "$M/snap.avhd")" "st_size of snap.avhd"
assert_cmp "$T/expect.flat" "$M/snap.avhd" "snap.avhd through the mount"
vhdfs_umount "$M"
exit 0
