#!/usr/bin/env bash
# asan: yes
# A child is never made over unsynced parent writes (issue 7, item 5).
# With a reader holding the leaf open, a writer writes new blocks (no
# fsync) and closes; the metadata it left in memory must reach the file by
# the time .control makes a child of the leaf: the child reads the new
# data, and the reader's later close leaves the leaf file as it was. A
# child of an image open for writing is refused: EBUSY, ReturnValue=32774.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 16M 0x5a 1M 0
qemu_flat "$B/base.vhd" "$T/model"
vhdfs_mount "$B" "$M"
ctl "$M" "leaf.vhd base.vhd"

# The reader holds the leaf for the whole scenario.
exec 3<"$M/leaf.vhd"

# New blocks in the leaf: BAT entries and bitmaps stay in memory until a
# flush. Written by dd (no fsync), in blocks the leaf has not allocated.
head -c 65536 /dev/urandom >"$T/data"
for off in 3145728 9437184 13000000; do
	dd if="$T/data" of="$M/leaf.vhd" bs=65536 count=1 seek="$off" \
		oflag=seek_bytes conv=notrunc status=none
	dd if="$T/data" of="$T/model" bs=65536 count=1 seek="$off" \
		oflag=seek_bytes conv=notrunc status=none
done

# The writer has closed; its RELEASE reaches the daemon asynchronously,
# after close(2) returned. The command must wait for it, not refuse.
ctl "$M" "child.vhd leaf.vhd"
[ -f "$B/child.vhd" ] || fail "child.vhd not created"

# The leaf file itself holds the writes, and so does the child's view.
"$VHD" cat "$B/leaf.vhd" >"$T/leaf.flat"
assert_cmp "$T/model" "$T/leaf.flat" "leaf file (vhd cat) after the writer closed"
assert_cmp "$T/model" "$M/child.vhd" "new child of the leaf"

# The reader goes away: nothing may change under the child. The unmount
# waits for every RELEASE, so compare after it.
leaf_sum=$(sha "$B/leaf.vhd")
exec 3<&-
vhdfs_umount "$M"
assert_eq "$leaf_sum" "$(sha "$B/leaf.vhd")" "leaf file after its reader closed"
"$VHD" check "$B/child.vhd" || fail "vhd check child.vhd"

# The same race, many times over: write a new leaf (no fsync), close, and
# at once ask for its child; then reparent that child straight after writing
# into it. No command may see the closed writer as still open (EBUSY).
vhdfs_mount "$B" "$M"
for i in $(seq 1 25); do
	ctl "$M" "r$i.vhd base.vhd"
	dd if="$T/data" of="$M/r$i.vhd" bs=65536 count=1 seek=$((i * 7)) \
		conv=notrunc status=none
	ctl "$M" "r$i-child.vhd r$i.vhd"
	dd if="$T/data" of="$M/r$i-child.vhd" bs=4096 count=1 seek=$((i * 3)) \
		conv=notrunc status=none
	ctl "$M" "reparent r$i-child.vhd r$i.vhd"
done
vhdfs_umount "$M"

# A writer holding the image: the child is refused with EBUSY, 32774, and
# nothing is created. Readers alone do not block it.
vhdfs_mount "$B" "$M"
ctl "$M" "leaf2.vhd child.vhd"
exec 4<"$M/leaf2.vhd"
exec 5<>"$M/leaf2.vhd"
dd if="$T/data" of="$M/leaf2.vhd" bs=65536 count=1 seek=100 \
	conv=notrunc status=none
expect_errno EBUSY ctl "$M" "busy.vhd leaf2.vhd"
[ ! -e "$B/busy.vhd" ] || fail "busy.vhd created while leaf2 was written"
exec 6<"$M/.control"
grep -q 'ReturnValue=32774 .*Command="diff busy.vhd leaf2.vhd"' <&6 ||
	fail ".control does not report 32774 for the refused child"
exec 6<&-
exec 5>&-
exec 4<&-
vhdfs_umount "$M"
exit 0
