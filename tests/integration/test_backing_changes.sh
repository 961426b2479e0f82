#!/usr/bin/env bash
# asan: yes
# The mount follows BACKING_DIR: images created, copied or removed there by
# other tools show up (or vanish) without a remount, also in new
# subdirectories; non-.vhd files stay hidden. rm of a leaf through the mount
# deletes its file; a size change by truncate fails. `fusermount3 -u`
# makes the daemon exit 0. Writes past the end fail with ENOSPC.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/first.vhd" 4M 0x11 64K 0
vhdfs_mount "$B" "$M"
assert_eq "first.vhd" "$(cd "$M" && echo *)" "initial listing"

# Added by other tools while mounted.
make_base "$B/added.vhd" 6M 0x22 1M 512
mkdir "$B/newdir"
make_base "$B/newdir/inner.vhd" 2M 0x33 4096 0
cp --sparse=always "$B/first.vhd" "$B/copied.vhd"
echo "ignore me" >"$B/readme.txt"
assert_eq "added.vhd copied.vhd first.vhd newdir" "$(cd "$M" && echo *)" \
	"listing after additions"
assert_eq "inner.vhd" "$(cd "$M/newdir" && echo *)" "new subdirectory"
assert_eq 6291456 "$(stat -c %s "$M/added.vhd")" "size of added.vhd"
qemu_flat "$B/added.vhd" "$T/added.flat"
assert_cmp "$T/added.flat" "$M/added.vhd" "added.vhd content"
qemu_flat "$B/newdir/inner.vhd" "$T/inner.flat"
assert_cmp "$T/inner.flat" "$M/newdir/inner.vhd" "newdir/inner.vhd content"
assert_cmp "$M/first.vhd" "$M/copied.vhd" "copied.vhd content"
[ ! -e "$M/readme.txt" ] || fail "readme.txt shown in the mount"

# A new image can be a parent at once.
ctl "$M" "newdir/child.vhd newdir/inner.vhd"
assert_cmp "$T/inner.flat" "$M/newdir/child.vhd" "child of a new image"

# Removed by another tool: gone from the listing.
rm "$B/copied.vhd"
assert_eq "added.vhd first.vhd newdir" "$(cd "$M" && echo *)" \
	"listing after an external rm"
# A cached positive entry may outlive the file for the kernel's entry
# timeout; it must go away without a remount (bounded wait).
for ((i = 0; i < 100; i++)); do
	[ -e "$M/copied.vhd" ] || break
	sleep 0.1
done
[ ! -e "$M/copied.vhd" ] || fail "removed image still visible"

# rm of a leaf through the mount deletes its file.
rm "$M/added.vhd"
[ ! -e "$B/added.vhd" ] || fail "rm through the mount left added.vhd"
[ ! -e "$M/added.vhd" ] || fail "added.vhd still shown after rm"

# A size change by truncate fails and changes nothing.
sum=$(sha "$B/first.vhd")
if truncate -s 1M "$M/first.vhd" 2>"$T/trunc.err"; then
	fail "truncate to another size succeeded"
fi
assert_eq 4194304 "$(stat -c %s "$M/first.vhd")" "size after truncate"
assert_eq "$sum" "$(sha "$B/first.vhd")" "backing file after truncate"

# A write past the end of the disk fails and changes nothing.
expect_errno ENOSPC dd if=/dev/zero of="$M/first.vhd" bs=512 count=1 \
	seek=$((4194304 / 512)) conv=notrunc status=none
assert_eq 4194304 "$(stat -c %s "$M/first.vhd")" "size after write past end"
assert_eq "$sum" "$(sha "$B/first.vhd")" "backing file after write past end"

# Unmount: daemon exit status 0 (checked by vhdfs_umount), nothing mounted.
vhdfs_umount "$M"
is_mounted "$M" && fail "still mounted"
exit 0
