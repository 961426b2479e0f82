#!/usr/bin/env bash
# A merge that runs out of space (a small tmpfs): `vhd merge` fails with a
# message naming the ancestor and ENOSPC, the child still reads as before,
# both images pass `vhd check`; with space freed the same command
# completes and the base holds the child's view (as qemu reads it too).
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
S=$T/small
mkdir -p "$B"
make_base "$B/base.vhd" 48M 0x5a 4M 0
vhdfs_mount "$B" "$M"
ctl "$M" "child.vhd base.vhd"
head -c $((32 * MiB)) /dev/urandom |
	dd of="$M/child.vhd" bs=1M seek=8 conv=notrunc,fsync status=none
cp "$M/child.vhd" "$T/child.flat"
vhdfs_umount "$M"

mount_fs tmpfs "$S" -t tmpfs -o size=$((96 * MiB))
cp --sparse=always "$B/base.vhd" "$B/child.vhd" "$S/"
# Leave about 10 MiB: the merge needs 32.
free=$(($(stat -f -c '%a * %S' "$S")))
dd if=/dev/zero of="$S/filler" bs=1M count=$(((free - 10 * MiB) / MiB)) \
	status=none 2>/dev/null || true
log "free before the merge: $(($(stat -f -c '%a * %S' "$S") / MiB)) MiB"

rc=0
"$VHD" merge "$S/child.vhd" 2>"$T/err" || rc=$?
cat "$T/err" >&2
assert_eq 1 "$rc" "exit status of a merge that ran out of space"
grep -q "base.vhd.*No space left on device" "$T/err" ||
	fail "message does not name the ancestor and ENOSPC"
"$VHD" cat "$S/child.vhd" >"$T/after.flat" || fail "vhd cat child"
assert_cmp "$T/child.flat" "$T/after.flat" "child after ENOSPC"
"$VHD" check "$S/child.vhd" >&2 || fail "vhd check child after ENOSPC"
"$VHD" check "$S/base.vhd" >&2 || fail "vhd check base after ENOSPC"

rm "$S/filler"
"$VHD" merge "$S/child.vhd" || fail "rerun with space"
[ ! -e "$S/child.vhd" ] || fail "child left after the rerun"
"$VHD" cat "$S/base.vhd" >"$T/base.flat"
assert_cmp "$T/child.flat" "$T/base.flat" "base after the rerun"
qemu_flat "$S/base.vhd" "$T/q.raw"
assert_cmp "$T/child.flat" "$T/q.raw" "base after the rerun (qemu)"
exit 0
