#!/usr/bin/env bash
# Paths a hostile image or a careless command names:
# - `validate PATH` takes only images inside BACKING_DIR (or MOUNTPOINT):
#   anything else is EACCES and starts no job, as the job's result is
#   readable by every user;
# - the daemon opens only regular files for locators: /proc/self/mem,
#   /dev/zero and a FIFO are refused with "not a regular file" (logged),
#   and the image reads as ENOENT;
# - the CLI never blocks on a FIFO named as an image.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M
make_base "$T/outside.vhd" 8M
vhdfs_mount "$B" "$M"

for p in /etc/passwd "$T/outside.vhd" "$B/../outside.vhd"; do
	expect_errno EACCES ctl "$M" "validate $p"
done
grep -q 'ReturnValue=32769 .*validate /etc/passwd' "$M/.control" ||
	fail "no Access Denied result: $(cat "$M/.control")"
[ -z "$(ls "$M/.jobs")" ] || fail "a validate job started: $(ls "$M/.jobs")"
ctl "$M" "validate $M/base.vhd"
ctl "$M" "validate $B/base.vhd"

# Children whose only locator names a non-regular file.
mkfifo "$T/fifo.vhd"
craft() { # CHILD W2KU-PATH
	PYTHONPATH=$REPO/tests/interop C=$1 P=$2 BASE=$B/base.vhd $PY -c '
import os
from vhdcraft import *
e = os.environ
make_diff(e["C"], e["BASE"], uname="gone.vhd", locators=[(W2KU, e["P"])])'
}
n=0
for target in /proc/self/mem /dev/zero "$T/fifo.vhd"; do
	n=$((n + 1))
	craft "$B/c$n.vhd" "$target"
	expect_errno ENOENT bounded "$M" cat "$M/c$n.vhd"
	grep -qF "$target (not a regular file)" "$(vhdfs_log "$M")" ||
		fail "no 'not a regular file' for $target in the log"
done

# The CLI on a FIFO: a clear error, no hang.
st=0
bounded "$M" "$VHD" info "$T/fifo.vhd" 2>"$T/err" || st=$?
assert_eq 1 "$st" "vhd info of a FIFO: exit status"
grep -q "not a regular file" "$T/err" || fail "vhd info FIFO: $(cat "$T/err")"

vhdfs_umount "$M"
exit 0
