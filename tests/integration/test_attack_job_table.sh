#!/usr/bin/env bash
# asan: yes
# The job table is bounded: every `validate` line kept a ~10 KiB record
# until `rm .jobs/ID` (20000 lines: 200 MB, and `ls -l .jobs` took 46 s).
# Past 4096 kept records a new job is refused with EBUSY (ReturnValue
# 32774, "too many jobs"), later lines and other commands still run,
# .jobs lists 4096 entries, and removing a finished job makes room again.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
"$VHD" create "$B/a.vhd" 1M >/dev/null
vhdfs_mount "$B" "$M"

# One open, many lines: the write reports the first failure (EBUSY).
expect_errno EBUSY bash -c "yes 'validate a.vhd' | head -n 4100 >'$M/.control'"
res=$(cat "$M/.control")
assert_eq 4 "$(grep -c '^ReturnValue=32774 Error="too many jobs' <<<"$res")" \
	"refused lines among the last results"
assert_eq 4096 "$(find "$M/.jobs" -mindepth 1 | wc -l)" "entries in .jobs"
# A command that starts no job still runs.
ctl "$M" "c.vhd a.vhd"
[ -f "$B/c.vhd" ] || fail "diff did not run with the job table full"

job_wait "$M" 4096
grep -q '^JobState=7$' "$M/.jobs/4096" || fail "job 4096 did not complete"
rm "$M/.jobs/1"
ctl "$M" "validate a.vhd"
id=$(last_job "$M")
assert_eq 4097 "$id" "job started once one was removed"
job_wait "$M" "$id"
expect_errno EBUSY ctl "$M" "validate a.vhd"
vhdfs_umount "$M"
exit 0
