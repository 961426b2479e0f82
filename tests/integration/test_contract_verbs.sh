#!/usr/bin/env bash
# The ReturnValue/errno table of design.md, verb by verb: every command
# that names a missing image says ENOENT (32779), one outside BACKING_DIR
# EACCES (32769), an existing target EEXIST (32773), an image open for
# writing or a job running on it (validate too) EBUSY (32774), an
# operation the image type cannot take EOPNOTSUPP (32770), a parent EPERM
# (32775); the `.control` line carries the same ReturnValue. A running
# job's status file cannot be removed (EBUSY) or written; a finished one
# can be removed. Malformed lines and unsuitable parameters (a parent that
# would close a cycle) are EINVAL (32773). Nothing is left behind by any
# failure.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd fusermount3 qemu-io
require_bins "$VHD"

B=$T/backing
M=$T/mnt
O=$T/outside
mkdir -p "$B" "$O"
"$VHD" create "$B/base.vhd" 8M >/dev/null
"$VHD" diff "$B/child.vhd" "$B/base.vhd" >/dev/null
"$VHD" create "$B/leaf.vhd" 8M >/dev/null
"$VHD" create --fixed "$B/fix.vhd" 1M >/dev/null
"$VHD" create "$O/out.vhd" 8M >/dev/null
"$VHD" diff "$O/outc.vhd" "$O/out.vhd" >/dev/null
"$VHD" create "$B/busy.vhd" 8M >/dev/null
# Data before the mount: a write through it finishes in the backing file
# only at RELEASE, after close(2) returned, racing the snapshot below.
qemu_write "$B/busy.vhd" 0x5a 0 8M
"$VHD" diff "$B/r1.vhd" "$B/base.vhd" >/dev/null
"$VHD" diff "$B/r2.vhd" "$B/r1.vhd" >/dev/null
VHDFS_JOB_THROTTLE_MS=200 vhdfs_mount "$B" "$M"

state=$(dir_state "$B")
ostate=$(dir_state "$O")
expect() { # ERRNO RETURNVALUE LINE
	expect_errno "$1" ctl "$M" "$3"
	case "$(tail -n 1 "$M/.control")" in
	"ReturnValue=$2 "*) ;;
	*) fail "'$3': $(tail -n 1 "$M/.control") (want $2)" ;;
	esac
	assert_eq "$state" "$(dir_state "$B")" "backing dir after '$3'"
	assert_eq "$ostate" "$(dir_state "$O")" "outside dir after '$3'"
}

for line in "c.vhd nope.vhd" "diff c.vhd nope.vhd" "create d/x.vhd 1M" \
	"merge nope.vhd" "merge child.vhd nope.vhd" "compact nope.vhd" \
	"expand nope.vhd 16M" "reparent nope.vhd base.vhd" \
	"reparent child.vhd nope.vhd" "convert nope.vhd x.vhd dynamic" \
	"validate nope.vhd" "cancel 4242"; do
	expect ENOENT 32779 "$line"
done
for line in "$O/x.vhd base.vhd" "create $O/x.vhd 1M" "merge $O/outc.vhd" \
	"compact $O/out.vhd" "expand $O/out.vhd 16M" \
	"reparent $O/outc.vhd base.vhd" "convert base.vhd $O/x.vhd dynamic" \
	"validate $O/out.vhd"; do
	expect EACCES 32769 "$line"
done
for line in "leaf.vhd base.vhd" "create leaf.vhd 1M" \
	"convert base.vhd leaf.vhd dynamic"; do
	expect EEXIST 32773 "$line"
done
# A parent that would make a cycle is an invalid parameter too.
for line in "reparent r1.vhd r1.vhd ignore-id-mismatch" \
	"reparent r1.vhd r2.vhd ignore-id-mismatch" "reparent leaf.vhd base.vhd" \
	"expand leaf.vhd 4M" "create x.vhd 0" "frob x.vhd"; do
	expect EINVAL 32773 "$line"
done
for line in "compact fix.vhd" "expand child.vhd 16M"; do
	expect EOPNOTSUPP 32770 "$line"
done
for line in "compact base.vhd" "expand base.vhd 16M"; do
	expect EPERM 32775 "$line"
done
exec 3<>"$M/leaf.vhd" 4<>"$M/child.vhd"
for line in "x.vhd leaf.vhd" "compact leaf.vhd" "expand leaf.vhd 16M" \
	"convert leaf.vhd x.vhd dynamic" "merge child.vhd" \
	"reparent child.vhd base.vhd"; do
	expect EBUSY 32774 "$line"
done
exec 3>&- 4>&-

# A running job's file stays; a finished one goes with rm.
ctl "$M" "compact busy.vhd"
id=$(last_job "$M")
expect_errno EBUSY rm "$M/.jobs/$id"
# validate of an image a job runs on: in use (32774), no job started.
expect_errno EBUSY ctl "$M" "validate busy.vhd"
case "$(tail -n 1 "$M/.control")" in
"ReturnValue=32774 "*) ;;
*) fail "validate during compact: $(tail -n 1 "$M/.control")" ;;
esac
assert_eq "$id" "$(ls "$M/.jobs" | sort -n | tail -n 1)" "newest job"
expect_errno EACCES sh -c "echo x >'$M/.jobs/$id'"
job_wait "$M" "$id"
expect_errno EPERM ctl "$M" "cancel $id"
rm "$M/.jobs/$id"
[ ! -e "$M/.jobs/$id" ] || fail ".jobs/$id still listed after rm"
