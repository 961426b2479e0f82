#!/usr/bin/env bash
# asan: yes
# merge into an ancestor that is open through the mount: the open
# descriptor's handle keeps the ancestor's block table from before the
# merge, so once its cached pages went it read zeros where the merge had
# put the child's data. The merge job now fails with EBUSY (32774) when
# it finds the ancestor open, changing nothing; while a merge runs, the
# ancestor refuses opens (EBUSY); after it, an open of the ancestor reads
# the child's data.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 16M 0x5a 1M 0
VHDFS_JOB_THROTTLE_MS=100 vhdfs_mount "$B" "$M"
ctl "$M" "kid.vhd base.vhd"
head -c $((4 * MiB)) /dev/zero | tr '\0' 'w' |
	dd of="$M/kid.vhd" bs=1M seek=2 conv=notrunc status=none
cp "$M/kid.vhd" "$T/kid.flat"
base0=$(sha "$B/base.vhd")
kid0=$(sha "$B/kid.vhd")

# 1) The ancestor open for reading: the job fails, nothing changes.
exec 3<"$M/base.vhd"
ctl "$M" "merge kid.vhd"
id=$(last_job "$M")
[ -n "$id" ] || fail "merge did not start a job: $(tail -n 1 "$M/.control")"
job_wait "$M" "$id"
assert_eq 32774 "$(job_field "$M/.jobs/$id" ErrorCode)" "ErrorCode"
grep -q '^ErrorDescription=base.vhd: open through the mount' \
	"$M/.jobs/$id" || fail "job result: $(cat "$M/.jobs/$id")"
assert_eq "$base0" "$(sha "$B/base.vhd")" "base.vhd after the refusal"
assert_eq "$kid0" "$(sha "$B/kid.vhd")" "kid.vhd after the refusal"
"$PY" - <<'PYEOF' || fail "open descriptor of base.vhd after the refusal"
import os, sys
os.posix_fadvise(3, 0, 0, os.POSIX_FADV_DONTNEED)
sys.exit(os.pread(3, 4, 3 << 20) != b"\0" * 4)
PYEOF
exec 3<&-

# 2) Closed: the merge runs; meanwhile base.vhd refuses opens.
ctl "$M" "merge kid.vhd"
id=$(last_job "$M")
[ -n "$id" ] || fail "merge did not start a job: $(tail -n 1 "$M/.control")"
checked=0
for ((i = 0; i < 1200; i++)); do
	st=$(job_field "$M/.jobs/$id" JobState)
	[ "$st" = 4 ] || break
	pc=$(job_field "$M/.jobs/$id" PercentComplete)
	if [ "$checked" = 0 ] && [ "$pc" -gt 0 ] && [ "$pc" -lt 60 ]; then
		assert_eq EBUSY "$(py_errno open_rd "$M/base.vhd")" \
			"read open of the ancestor during the merge"
		checked=1
	fi
	sleep 0.1
done
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "merge JobState"
assert_eq 1 "$checked" "checks made while the merge ran"
assert_cmp "$T/kid.flat" "$M/base.vhd" "base.vhd after the merge"
vhdfs_umount "$M"
"$VHD" check "$B/base.vhd" >&2 || fail "check of base.vhd"
qemu-img convert -f vpc -O raw "$B/base.vhd" "$T/base.raw"
assert_cmp "$T/kid.flat" "$T/base.raw" "base.vhd read by qemu"
exit 0
