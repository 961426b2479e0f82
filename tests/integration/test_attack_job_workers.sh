#!/usr/bin/env bash
# asan: yes
# Jobs share a few worker threads: every job used to get a thread of its
# own (4096 throttled jobs: 4101 threads, 110 MB RSS). Now at most
# VHDFS_JOB_WORKERS (4) run at once and the rest wait in order, shown as
# JobState=4 PercentComplete=0 (the documented `while JobState=4` loop
# keeps waiting). A queued job cancels at once (JobState=8), the queue
# drains to Completed, and unmounting with queued jobs exits 0.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
"$VHD" create "$B/a.vhd" 1M >/dev/null
# Each validate makes two progress calls: 2 s per job.
VHDFS_JOB_THROTTLE_MS=1000 vhdfs_mount "$B" "$M"
pid=$(vhdfs_pid "$M")

for i in $(seq 64); do echo 'validate a.vhd'; done >"$M/.control"
assert_eq 64 "$(grep -c '^ReturnValue=4096 ' "$M/.control")" "jobs started"
threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
# 4 workers plus libfuse's own threads; a thread per job would be > 64.
[ "$threads" -lt 32 ] || fail "$threads threads for 64 jobs"
assert_eq 0 "$(job_field "$M/.jobs/64" PercentComplete)" "queued job's progress"
assert_eq 4 "$(job_field "$M/.jobs/64" JobState)" "queued job's state"

# A queued job ends at once when cancelled; it never runs.
for i in $(seq 9 64); do echo "cancel $i"; done >"$M/.control"
for i in $(seq 9 64); do
	assert_eq 8 "$(job_field "$M/.jobs/$i" JobState)" "job $i after cancel"
	assert_eq cancelled "$(job_field "$M/.jobs/$i" ErrorDescription)" \
		"job $i after cancel"
done
expect_errno EPERM ctl "$M" "cancel 64"

# The queue drains: jobs 5-8 run once 1-4 are done.
for i in $(seq 1 8); do
	job_wait "$M" "$i"
	assert_eq 7 "$(job_field "$M/.jobs/$i" JobState)" "job $i"
	assert_eq 100 "$(job_field "$M/.jobs/$i" PercentComplete)" "job $i"
done

# Unmount with jobs running and queued: the daemon exits 0 (checked by
# vhdfs_umount) and no job thread is left behind.
for i in $(seq 16); do echo 'validate a.vhd'; done >"$M/.control"
vhdfs_umount "$M"
exit 0
