#!/usr/bin/env bash
# asan: yes
# The mount bound elsewhere (mount --bind MNT DIR, as containers do):
# a hostile child whose W2ku locator names its parent through DIR, or a
# file bind-mounted from the mount, or a *.vhd symlink into DIR, froze a
# single-threaded daemon on a plain stat (the chain walk stat'ed the
# bound directory, a request to the daemon busy with the caller). Such
# paths are refused without a request to the mount: stat shows the
# image, an open fails ENOENT, a symlink into DIR is not listed.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img
require_bins "$VHD"

B=$T/backing
M=$T/mnt
D=$T/bound
mkdir -p "$B" "$D"
"$VHD" create "$B/base.vhd" 1M >/dev/null
vhdfs_mount "$B" "$M" -s
mount --bind "$M" "$D"
cleanup_push "! is_mounted '$D' || umount '$D'"
touch "$T/file.vhd"
mount --bind "$M/base.vhd" "$T/file.vhd"
cleanup_push "! is_mounted '$T/file.vhd' || umount '$T/file.vhd'"

craft() { # CHILD PARENT-IN-LOCATOR
	PYTHONPATH=$REPO/tests/interop C=$1 P=$2 BASE=$B/base.vhd $PY -c '
import os
from vhdcraft import *
e = os.environ
make_diff(e["C"], e["BASE"], uname="gone.vhd",
          locators=[(W2KU, e["P"].replace("/", "\\"))])'
}
craft "$B/dir.vhd" "$D/base.vhd"
craft "$B/file.vhd" "$T/file.vhd"
ln -s "$D/base.vhd" "$B/link.vhd"

for img in dir file; do
	assert_eq 1048576 "$(bounded "$M" stat -c %s "$M/$img.vhd")" \
		"size of $img.vhd"
	assert_eq ENOENT "$(bounded "$M" py_errno open_rd "$M/$img.vhd")" \
		"open of $img.vhd"
done
listing=$(bounded "$M" ls "$M")
assert_eq "base.vhd dir.vhd file.vhd" "$(echo $listing)" "listing"
grep -q "tried: $D/base.vhd (inside the vhdfs mount)" "$(vhdfs_log "$M")" ||
	fail "the log does not say why dir.vhd has no parent"
umount "$T/file.vhd"
umount "$D"
vhdfs_umount "$M"
exit 0
