#!/usr/bin/env bash
# Messages name the file: a command (ReturnValue 32768, write(2) EIO as
# the table says) or job that fails while the daemon
# holds the target's directory open (ENOSPC on a full BACKING_DIR) reports
# the path under BACKING_DIR in `.control`'s Error and the job's
# ErrorDescription, never a /proc/self/fd/N name; nothing is left behind.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mount_fs tmpfs "$B" -t tmpfs -o size=2M
"$VHD" create "$B/src.vhd" 1M >/dev/null
vhdfs_mount "$B" "$M"
head -c 1M /dev/urandom | dd of="$M/src.vhd" bs=64K conv=notrunc status=none
# Fill what is left, so new images cannot be written.
dd if=/dev/zero of="$B/filler" bs=64K status=none 2>/dev/null || true
state=$(dir_state "$B")

# 32768 (Failed): write(2) returns EIO as the table says; Error says why.
expect_errno EIO ctl "$M" "create new.vhd 1000G"
line=$(tail -n 1 "$M/.control")
case "$line" in
*"/proc/self/fd"*) fail "Error names an fd, not the file: $line" ;;
"ReturnValue=32768 Error=\"$B/new.vhd: "*"No space left on device"*) ;;
*) fail "Error does not name $B/new.vhd and ENOSPC: $line" ;;
esac
assert_eq "$state" "$(dir_state "$B")" "backing dir after failed create"

ctl "$M" "convert src.vhd out.vhd dynamic"
id=$(last_job "$M")
job_wait "$M" "$id"
desc=$(sed -n 's/^ErrorDescription=//p' "$M/.jobs/$id")
grep -qx 'JobState=10' "$M/.jobs/$id" || fail "convert did not fail: $desc"
case "$desc" in
*"/proc/self/fd"*) fail "ErrorDescription names an fd: $desc" ;;
"$B/out.vhd: "*) ;;
*) fail "ErrorDescription does not name $B/out.vhd: $desc" ;;
esac
assert_eq "$state" "$(dir_state "$B")" "backing dir after failed convert"
