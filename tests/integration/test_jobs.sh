#!/usr/bin/env bash
# asan: yes
# `create` through the control file (dynamic: immediate; fixed: a job) and
# the job files: `.jobs/ID` Key=Value fields, the documented wait loop,
# completion, `rm .jobs/ID`; `validate` as a job on a good and a damaged
# image; `cancel` leaves either a completed image or nothing.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 getfattr
require_bins

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M 0x5a 1M 0
vhdfs_mount "$B" "$M"

last_result() { cat "$M/.control" | tail -n 1; }
# job_of "LINE": the job id a 4096 result names.
job_of() {
	sed -n 's|^ReturnValue=4096 Job=\.jobs/\([0-9][0-9]*\) .*|\1|p' <<<"$1"
}
field() { # JOBFILE KEY
	sed -n "s/^$2=//p" "$1"
}
# The documented wait loop, bounded so a stuck job fails the test.
wait_job() { # ID
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q 'JobState=[34]$' "$M/.jobs/$1" || return 0
		sleep 0.1
	done
	cat "$M/.jobs/$1" >&2
	fail "job $1 still running after 120 s"
}

# Dynamic create: immediate, ReturnValue 0.
ctl "$M" "create dyn.vhd 10M"
assert_eq 'ReturnValue=0 Command="create dyn.vhd 10M"' "$(last_result)" \
	"result of a dynamic create"
assert_eq $((10 * MiB)) "$(stat -c %s "$M/dyn.vhd")" "dyn.vhd size"
assert_eq dynamic "$(getfattr --only-values -n user.vhd.type "$M/dyn.vhd")"
cmp -n $((10 * MiB)) /dev/zero "$M/dyn.vhd" || fail "dyn.vhd is not zero"
ctl "$M" "create \"with space.vhd\" 3M dynamic block=512K"
assert_eq 524288 \
	"$(getfattr --only-values -n user.vhd.block_size "$M/with space.vhd")" \
	"block=512K"
assert_eq $((3 * MiB)) "$(stat -c %s "$M/with space.vhd")" \
	"size of 'with space.vhd'"

# Fixed create: a job.
ctl "$M" "create fixed.vhd 4M fixed"
res=$(last_result)
log "result: $res"
id=$(job_of "$res")
[ -n "$id" ] || fail "fixed create did not report a job: $res"
assert_eq 'Command="create fixed.vhd 4M fixed"' "${res#* Job=.jobs/"$id" }" \
	"job result line"
[ -f "$M/.jobs/$id" ] || fail ".jobs/$id missing"
ls "$M/.jobs" | grep -qx "$id" || fail ".jobs does not list $id"
wait_job "$id"
cat "$M/.jobs/$id" >&2
for k in InstanceID Command JobState PercentComplete ErrorCode \
	ErrorDescription StartTime ElapsedTime; do
	grep -q "^$k=" "$M/.jobs/$id" || fail ".jobs/$id lacks $k"
done
assert_eq 7 "$(field "$M/.jobs/$id" JobState)" "JobState (Completed)"
assert_eq 100 "$(field "$M/.jobs/$id" PercentComplete)" "PercentComplete"
assert_eq 0 "$(field "$M/.jobs/$id" ErrorCode)" "ErrorCode"
assert_eq fixed "$(getfattr --only-values -n user.vhd.type "$M/fixed.vhd")"
assert_eq $((4 * MiB)) "$(stat -c %s "$M/fixed.vhd")" "fixed.vhd size"
assert_eq $((4 * MiB + 512)) "$(stat -c %s "$B/fixed.vhd")" \
	"fixed.vhd backing file size"
cmp -n $((4 * MiB)) /dev/zero "$M/fixed.vhd" || fail "fixed.vhd not zero"
# The fixed image is usable: write and read back.
printf 'fixed data' | dd of="$M/fixed.vhd" bs=512 seek=9 conv=notrunc \
	status=none
assert_eq "fixed data" "$(dd if="$B/fixed.vhd" bs=512 skip=9 count=1 \
	status=none | tr -d '\0')" "write into fixed.vhd lands in place"
# A finished job goes away with rm.
rm "$M/.jobs/$id"
[ ! -e "$M/.jobs/$id" ] || fail ".jobs/$id still there after rm"

# validate: a good image completes with ErrorCode 0.
ctl "$M" "validate base.vhd"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "validate did not start a job: $(last_result)"
wait_job "$id"
assert_eq 7 "$(field "$M/.jobs/$id" JobState)" "validate good: JobState"
assert_eq 0 "$(field "$M/.jobs/$id" ErrorCode)" "validate good: ErrorCode"

# validate: a BAT entry pointing past the end of the file is reported.
make_base "$B/bad.vhd" 8M 0x11 4M 0
bat=$(od -An -tu8 --endian=big -j $((512 + 16)) -N 8 "$B/bad.vhd" | tr -d ' ')
printf '\x00\x10\x00\x00' |
	dd of="$B/bad.vhd" bs=1 seek=$((bat + 4)) conv=notrunc status=none
ctl "$M" "validate bad.vhd" || true
res=$(last_result)
log "validate bad.vhd: $res"
id=$(job_of "$res")
if [ -n "$id" ]; then
	wait_job "$id"
	cat "$M/.jobs/$id" >&2
	assert_eq 10 "$(field "$M/.jobs/$id" JobState)" \
		"validate of a damaged image: JobState (Exception)"
	[ "$(field "$M/.jobs/$id" ErrorCode)" != 0 ] ||
		fail "validate of a damaged image: ErrorCode 0"
	[ -n "$(field "$M/.jobs/$id" ErrorDescription)" ] ||
		fail "validate of a damaged image: no ErrorDescription"
else
	# Refused up front is acceptable too, as long as it is an error.
	case "$res" in
	ReturnValue=0\ *) fail "validate of a damaged image succeeded" ;;
	esac
fi

# validate of a VHDX: clean, then a damaged header is named, fixable.
ctl "$M" "create x.vhdx 8M"
ctl "$M" "validate x.vhdx"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "validate x.vhdx did not start a job: $(last_result)"
wait_job "$id"
assert_eq 0 "$(field "$M/.jobs/$id" ErrorCode)" "validate x.vhdx: ErrorCode"
printf '\xff' | dd of="$B/x.vhdx" bs=1 seek=$((64 * 1024 + 40)) \
	conv=notrunc status=none
sum=$(sha256sum <"$B/x.vhdx")
ctl "$M" "validate x.vhdx" || true
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "validate damaged x.vhdx: $(last_result)"
wait_job "$id"
cat "$M/.jobs/$id" >&2
assert_eq 10 "$(field "$M/.jobs/$id" JobState)" "damaged x.vhdx: JobState"
grep -q "^ErrorDescription=.*header 1 (at 64 KiB) is damaged.*(fixable by vhd repair)" \
	"$M/.jobs/$id" || fail "validate did not name the damaged header"
[ "$(sha256sum <"$B/x.vhdx")" = "$sum" ] || fail "validate changed x.vhdx"

# cancel: either the job was still running (Terminated, no file left) or
# it had already completed (cancel refused, image complete).
ctl "$M" "create big.vhd 1G fixed"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "big fixed create did not start a job"
if ctl "$M" "cancel $id" 2>"$T/cancel.err"; then
	wait_job "$id"
	assert_eq 8 "$(field "$M/.jobs/$id" JobState)" "cancelled JobState"
	[ ! -e "$B/big.vhd" ] || fail "cancelled create left big.vhd"
	[ ! -e "$M/big.vhd" ] || fail "cancelled create shows big.vhd"
	log "cancelled job $id"
else
	grep -q "Operation not permitted" "$T/cancel.err" ||
		fail "cancel failed oddly: $(cat "$T/cancel.err")"
	wait_job "$id"
	assert_eq 7 "$(field "$M/.jobs/$id" JobState)" "uncancelled JobState"
	assert_eq $((1024 * MiB + 512)) "$(stat -c %s "$B/big.vhd")" \
		"completed big.vhd"
	log "job $id completed before the cancel"
fi
expect_errno EINVAL ctl "$M" "cancel nonsense"
expect_errno ENOENT ctl "$M" "cancel 999999"

vhdfs_umount "$M"
exit 0
