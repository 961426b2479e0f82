#!/usr/bin/env bash
# -o auto_unmount: when the daemon dies (kill -9), the mount goes away by
# itself; the images are intact and mount again.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 4M 0x5a 64K 0
qemu_flat "$B/base.vhd" "$T/base.flat"
vhdfs_mount "$B" "$M" -o auto_unmount
ctl "$M" "child.vhd base.vhd"
assert_cmp "$T/base.flat" "$M/child.vhd" "child before the kill"

vhdfs_kill9 "$M" --keep-mount
# fusermount3's watcher unmounts once the daemon's fd closes (bounded).
for ((i = 0; i < 600; i++)); do
	is_mounted "$M" || break
	sleep 0.05
done
! is_mounted "$M" || fail "auto_unmount: still mounted 30 s after the kill"

vhdfs_mount "$B" "$M"
assert_cmp "$T/base.flat" "$M/child.vhd" "child after remount"
vhdfs_umount "$M"
exit 0
