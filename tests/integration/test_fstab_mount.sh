#!/usr/bin/env bash
# The fstab way: mount(8) -> mount.fuse3 -> vhdfs with fstab options after
# the directories, daemonized. An fstab line `BACKING MNT fuse.vhdfs
# defaults 0 0` needs vhdfs installed in the default PATH (mount drops the
# caller's PATH), so this uses the equivalent type `fuse` with source
# `/abs/path/vhdfs#BACKING`. `umount` ends the daemon.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io mount.fuse3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B" "$M"
make_base "$B/base.vhd" 4M 0x5a 64K 0
qemu_flat "$B/base.vhd" "$T/base.flat"
mount -t fuse "$VHDFS#$B" "$M" -o defaults,nofail,noatime
cleanup_push "! is_mounted '$M' || umount '$M'"
is_mounted "$M" || fail "mount -t fuse.vhdfs did not mount $M"
# The daemon of this mount, by its command line.
re=$(printf '%s' "$VHDFS $B $M" | sed 's/[][\.*^$+?(){}|]/\\&/g')
pid=$(pgrep -f -- "^$re( |\$)" || true)
[ -n "$pid" ] || fail "no daemon process found for $M"
assert_eq 1 "$(wc -w <<<"$pid")" "daemon processes for $M"

assert_cmp "$T/base.flat" "$M/base.vhd" "base.vhd via fstab-style mount"
ctl "$M" "child.vhd base.vhd"
assert_cmp "$T/base.flat" "$M/child.vhd" "child via fstab-style mount"

umount "$M"
for ((i = 0; i < 300; i++)); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "daemon $pid still running after umount"
exit 0
