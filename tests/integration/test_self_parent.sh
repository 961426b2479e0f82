#!/usr/bin/env bash
# A hostile child whose W2ru and W2ku locators name its parent through the
# mount itself (MNT/base.vhd, as `vhd diff` writes when given that path):
# the daemon must never look the parent up through its own mount, which
# deadlocked it (stat, ls -l, open hung in D state). Paths inside MOUNTPOINT
# are resolved in BACKING_DIR instead; checked with a multi-threaded and a
# single-threaded (-s) daemon. A hang fails the test (bounded, with the
# FUSE connection aborted) rather than hanging the suite.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 getfattr
require_bins "$VHD"

B=$T/backing
M=$T/mnt
S=$T/mnt-s
mkdir -p "$B"
make_base "$B/base.vhd" 8M 0x5a 1M 1M
qemu_flat "$B/base.vhd" "$T/base.flat"
vhdfs_mount "$B" "$M"
vhdfs_mount "$B" "$S" -s

# Children whose locators name the parent through each mount: W2ru
# ..\mnt\base.vhd for one, W2ku MNT\base.vhd (absolute) for the other,
# and a unicode name that exists nowhere, so only the mount paths lead to
# the parent. (The mount itself shows flat disks, not VHDs: the daemon must
# map these paths to BACKING_DIR to find the parent at all.)
craft() { # CHILD CODE PATH (PATH with '/', stored with '\')
	PYTHONPATH=$REPO/tests/interop C=$1 K=$2 P=$3 BASE=$B/base.vhd $PY -c '
import os
from vhdcraft import *
e = os.environ
make_diff(e["C"], e["BASE"], uname="gone.vhd",
          locators=[(W2RU if e["K"] == "W2ru" else W2KU,
                     e["P"].replace("/", "\\"))])'
}
craft "$B/child.vhd" W2ru ../mnt/base.vhd
craft "$B/child-s.vhd" W2ku "$S/base.vhd"
info=$("$VHD" info "$B/child.vhd" 2>&1 || true)
grep -q 'W2ru .*path \.\./mnt/base.vhd$' <<<"$info" ||
	fail "W2ru does not name the mount: $info"
info=$("$VHD" info "$B/child-s.vhd" 2>&1 || true)
grep -qF "W2ku" <<<"$info" || fail "no W2ku: $info"

for pair in "$M child.vhd" "$S child-s.vhd"; do
	set -- $pair
	mnt=$1 img=$2
	bounded "$mnt" stat "$mnt/$img" >/dev/null
	bounded "$mnt" ls -l "$mnt" >/dev/null
	size=$(bounded "$mnt" stat -c %s "$mnt/$img")
	assert_eq 8388608 "$size" "size of $mnt/$img"
	bounded "$mnt" cmp "$T/base.flat" "$mnt/$img" ||
		fail "$mnt/$img does not read as its parent"
	parent=$(bounded "$mnt" getfattr --absolute-names --only-values -n user.vhd.parent \
		"$mnt/$img")
	assert_eq "$B/base.vhd" "$parent" "user.vhd.parent of $mnt/$img"
done

# The parent is protected as such, through either name.
assert_eq EPERM "$(bounded "$M" py_errno open_rw "$M/base.vhd")" \
	"write open of the parent"
# And a child made through .control with a MOUNTPOINT parent path works.
bounded "$M" ctl "$M" "c2.vhd $M/base.vhd"
bounded "$M" cmp "$T/base.flat" "$M/c2.vhd"
# Through a symlink into the mount, on the single-threaded daemon (where
# any lookup through its own mount is a deadlock).
ln -s "$S" "$T/slink"
bounded "$S" ctl "$S" "c3.vhd $T/slink/base.vhd"
bounded "$S" cmp "$T/base.flat" "$S/c3.vhd"

# A *.vhd symlink in BACKING_DIR into the mount is followed into
# BACKING_DIR: stat and ls -l of it do not deadlock the -s daemon.
ln -s "$S/base.vhd" "$B/evil.vhd"
bounded "$S" stat "$S/evil.vhd" >/dev/null
bounded "$S" ls -l "$S" >/dev/null
bounded "$S" cmp "$T/base.flat" "$S/evil.vhd"
rm "$B/evil.vhd"

vhdfs_umount "$S"
vhdfs_umount "$M"
exit 0
