#!/usr/bin/env bash
# compact and expand as jobs, reparent immediate, through .control:
# a throttled compact is polled to completion with PercentComplete taking
# intermediate values; while it runs the image refuses opens (EBUSY) and a
# second compact, other images are served; afterwards the flat view is
# unchanged (mount and qemu) and the file is smaller. A cancelled compact
# ends in JobState 8 with the view unchanged. expand grows an image (tail
# zeros, st_size follows); a parent is refused (EPERM, 32775), an image
# open through the mount EBUSY. reparent points a child at its moved
# parent; a different parent needs ignore-id-mismatch.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
# 32 MiB, 16 blocks of 2 MiB: data in some, zeros written into others.
"$VHD" create "$B/big.vhd" 32M
qemu-io -f vpc -c 'write -P 0x11 0 3M' -c 'write -P 0 4M 8M' \
	-c 'write -P 0x22 20M 1M' -c 'write -P 0 24M 6M' \
	-c 'write -P 0x33 31M 4k' "$B/big.vhd" >/dev/null
make_base "$B/other.vhd" 8M 0x44 8M 0

last_result() { tail -n 1 "$M/.control"; }
field() { job_field "$@"; }
wait_job() { job_wait "$M" "$1"; }

VHDFS_JOB_THROTTLE_MS=150 vhdfs_mount "$B" "$M"
cp "$M/big.vhd" "$T/big.flat"
cp "$M/other.vhd" "$T/other.flat"
size0=$(stat -c %s "$B/big.vhd")

# A cancelled compact: JobState 8, view unchanged, image still checks.
ctl "$M" "compact big.vhd"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "compact did not start a job: $(last_result)"
ctl "$M" "cancel $id"
wait_job "$id"
assert_eq 8 "$(field "$M/.jobs/$id" JobState)" "cancelled compact JobState"
assert_cmp "$T/big.flat" "$M/big.vhd" "big.vhd after a cancelled compact"
"$VHD" check "$B/big.vhd" >&2 || fail "check after a cancelled compact"

# The compact, polled to completion.
ctl "$M" "compact big.vhd"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "compact did not start a job: $(last_result)"
seen=""
busy_checked=0
for ((i = 0; i < 1200; i++)); do
	st=$(field "$M/.jobs/$id" JobState)
	pc=$(field "$M/.jobs/$id" PercentComplete)
	[ "$st" = 4 ] || break
	seen="$seen $pc"
	if [ "$busy_checked" = 0 ] && [ "$pc" -gt 0 ]; then
		assert_eq EBUSY "$(py_errno open_rd "$M/big.vhd")" \
			"read open of the image being compacted"
		assert_eq EBUSY "$(py_errno open_rw "$M/big.vhd")" \
			"write open of the image being compacted"
		expect_errno EBUSY ctl "$M" "compact big.vhd"
		expect_errno EBUSY ctl "$M" "expand big.vhd 64M"
		assert_cmp "$T/other.flat" "$M/other.vhd" "other.vhd during a job"
		busy_checked=1
	fi
	sleep 0.1
done
cat "$M/.jobs/$id" >&2
log "PercentComplete seen:$seen"
assert_eq 1 "$busy_checked" "EBUSY checks ran while the job ran"
assert_eq 7 "$(field "$M/.jobs/$id" JobState)" "compact JobState"
assert_eq 100 "$(field "$M/.jobs/$id" PercentComplete)" "PercentComplete"
mid_values=$(tr ' ' '\n' <<<"$seen" | awk '$1 > 0 && $1 < 100' | sort -u |
	wc -l)
[ "$mid_values" -ge 2 ] ||
	fail "PercentComplete took $mid_values intermediate values:$seen"
size1=$(stat -c %s "$B/big.vhd")
[ "$size1" -lt "$size0" ] || fail "compact: file $size0 -> $size1 bytes"
log "compact: $size0 -> $size1 bytes"
assert_cmp "$T/big.flat" "$M/big.vhd" "big.vhd after compact (mount)"
qemu_flat "$B/big.vhd" "$T/q.raw"
assert_cmp "$T/big.flat" "$T/q.raw" "big.vhd after compact (qemu)"

# expand: st_size follows, tail reads zeros.
ctl "$M" "expand big.vhd 48M"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "expand did not start a job: $(last_result)"
wait_job "$id"
assert_eq 7 "$(field "$M/.jobs/$id" JobState)" "expand JobState"
assert_eq $((48 * MiB)) "$(stat -c %s "$M/big.vhd")" "st_size after expand"
truncate -s 48M "$T/big.flat"
assert_cmp "$T/big.flat" "$M/big.vhd" "big.vhd after expand"
expect_errno EINVAL ctl "$M" "expand big.vhd 16M"
grep -q 'ReturnValue=32773 .*smaller' "$M/.control" ||
	fail "shrink: $(last_result)"
expect_errno EINVAL ctl "$M" "expand big.vhd lots"

# Refusals: a parent (32775), an image open through the mount (32774).
ctl "$M" "kid.vhd other.vhd"
expect_errno EPERM ctl "$M" "expand other.vhd 16M"
grep -q 'ReturnValue=32775 .*parent of kid.vhd' "$M/.control" ||
	fail "expand of a parent: $(last_result)"
expect_errno EPERM ctl "$M" "compact other.vhd"
exec 3<"$M/big.vhd"
expect_errno EBUSY ctl "$M" "compact big.vhd"
exec 3<&-
expect_errno EOPNOTSUPP ctl "$M" "expand kid.vhd 16M"

# reparent: the child's parent moves away, then comes back under a new
# name; a different image needs ignore-id-mismatch.
head -c $((2 * MiB)) /dev/urandom |
	dd of="$M/kid.vhd" bs=1M seek=3 conv=notrunc,fsync status=none
cp "$M/kid.vhd" "$T/kid.flat"
mkdir "$T/elsewhere"
mv "$B/other.vhd" "$T/elsewhere/moved.vhd"
expect_errno ENOENT cat "$M/kid.vhd"
ctl "$M" "reparent kid.vhd $T/elsewhere/moved.vhd"
grep -q 'ReturnValue=0 Command="reparent' "$M/.control" ||
	fail "reparent: $(last_result)"
assert_cmp "$T/kid.flat" "$M/kid.vhd" "kid.vhd after reparent"
make_base "$B/stranger.vhd" 8M
expect_errno EINVAL ctl "$M" "reparent kid.vhd stranger.vhd"
grep -q 'unique id mismatch' "$M/.control" ||
	fail "id mismatch not named: $(last_result)"
expect_errno EINVAL ctl "$M" "reparent kid.vhd stranger.vhd sometimes"
ctl "$M" "reparent kid.vhd stranger.vhd ignore-id-mismatch"
"$VHD" info "$B/kid.vhd" | grep -q 'Parent name: *stranger.vhd' ||
	fail "reparent with ignore-id-mismatch: $("$VHD" info "$B/kid.vhd")"

vhdfs_umount "$M"
exit 0
