#!/usr/bin/env bash
# Crash safety of a merge job: kill -9 the daemon while it merges a
# 3-level chain (throttled so it is caught mid-way), then the child still
# reads as before (`vhd cat`, and through a new mount) and passes
# `vhd check`; rerunning the merge completes it and the base then holds
# the child's view, as the mount and qemu read it.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 64M 0x5a 16M 0


vhdfs_mount "$B" "$M"
ctl "$M" "mid.vhd base.vhd"
head -c $((40 * MiB)) /dev/urandom |
	dd of="$M/mid.vhd" bs=1M seek=8 conv=notrunc,fsync status=none
ctl "$M" "child.vhd mid.vhd"
head -c $((64 * MiB)) /dev/urandom |
	dd of="$M/child.vhd" bs=1M conv=notrunc,fsync status=none
cp "$M/child.vhd" "$T/child.flat"
vhdfs_umount "$M"

# 32 chunks of 2 MiB at 100 ms each: about 3 s of merging.
VHDFS_JOB_THROTTLE_MS=100 vhdfs_mount "$B" "$M"
ctl "$M" "merge child.vhd base.vhd"
id=$(job_of "$(cat "$M/.control" | tail -n 1)")
[ -n "$id" ] || fail "merge did not start a job"
for ((i = 0; i < 600; i++)); do
	pc=$(job_field "$M/.jobs/$id" PercentComplete)
	[ "$(job_field "$M/.jobs/$id" JobState)" = 4 ] ||
		fail "job ended before the kill"
	[ "$pc" -ge 30 ] && break
	sleep 0.05
done
log "killing the daemon at PercentComplete=$pc"
vhdfs_kill9 "$M"

"$VHD" cat "$B/child.vhd" >"$T/after.flat" || fail "vhd cat child after kill"
assert_cmp "$T/child.flat" "$T/after.flat" "child's view after the kill"
"$VHD" check "$B/child.vhd" >&2 || fail "vhd check child after kill"

vhdfs_mount "$B" "$M"
assert_cmp "$T/child.flat" "$M/child.vhd" "child through a new mount"
ctl "$M" "merge child.vhd base.vhd"
id=$(job_of "$(cat "$M/.control" | tail -n 1)")
job_wait "$M" "$id"
cat "$M/.jobs/$id" >&2
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "rerun JobState"
[ ! -e "$B/child.vhd" ] && [ ! -e "$B/mid.vhd" ] ||
	fail "merged levels left behind"
assert_cmp "$T/child.flat" "$M/base.vhd" "base after the rerun (mount)"
vhdfs_umount "$M"
qemu_flat "$B/base.vhd" "$T/q.raw"
assert_cmp "$T/child.flat" "$T/q.raw" "base after the rerun (qemu)"
"$VHD" check "$B/base.vhd" >&2 || fail "vhd check base"
exit 0
