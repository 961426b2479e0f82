#!/usr/bin/env bash
# asan: yes
# A .control argument naming a directory through "." or ".." ("validate
# .", "reparent kid.vhd sub/..", "/") failed as ReturnValue 32768 with
# write(2) EIO and the text "Is a directory", while "validate sub" was
# the invalid parameter it is (32773, EINVAL, "not a regular file").
# Every spelling of a directory is now that same invalid parameter, and
# nothing changes.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B/sub"
make_base "$B/base.vhd" 8M
vhdfs_mount "$B" "$M"
ctl "$M" "kid.vhd base.vhd"
before=$(dir_state "$B")
for line in "validate ." "validate ./" "validate sub" "validate sub/.." \
	"validate /" "reparent kid.vhd ." "reparent kid.vhd sub/.." \
	"merge kid.vhd ." "diff n.vhd ." "diff n.vhd sub/." \
	"convert . out.vhd dynamic" "compact ." "expand sub/.. 16M"; do
	expect_errno EINVAL ctl "$M" "$line"
	tail -n 1 "$M/.control" |
		grep -q '^ReturnValue=32773 Error="not a regular file: ' ||
		fail "$line: $(tail -n 1 "$M/.control")"
done
assert_eq "$before" "$(dir_state "$B")" "BACKING_DIR after the refusals"
vhdfs_umount "$M"
exit 0
