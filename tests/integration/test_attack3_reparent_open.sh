#!/usr/bin/env bash
# asan: yes
# reparent of a child that is open through the mount: every open of an
# image shares one handle while any descriptor lives, so an open after
# the reparent (and the open descriptor, and its cached pages) went on
# reading the old parent's data. The reparent is now refused with EBUSY
# (32774) while the child is open at all, the child unchanged; once it is
# closed, the reparent succeeds and reads show the new parent.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M 0x5a 8M 0
make_base "$B/other.vhd" 8M 0x11 8M 0
vhdfs_mount "$B" "$M"
ctl "$M" "kid.vhd base.vhd"
byte_at() { od -An -tx1 -j "$2" -N1 "$1" | tr -d ' '; }

sum0=$(sha "$B/kid.vhd")
exec 3<"$M/kid.vhd"
assert_eq 5a "$(byte_at "$M/kid.vhd" 4096)" "child before the reparent"
expect_errno EBUSY ctl "$M" "reparent kid.vhd other.vhd ignore-id-mismatch"
tail -n 1 "$M/.control" | grep -q 'ReturnValue=32774 .*kid.vhd is open through the mount' ||
	fail "refusal result: $(tail -n 1 "$M/.control")"
assert_eq "$sum0" "$(sha "$B/kid.vhd")" "child file after the refusal"
# A new open while the descriptor lives, and the descriptor itself.
assert_eq 5a "$(byte_at "$M/kid.vhd" 4096)" "new open after the refusal"
"$PY" -c 'import os, sys; sys.exit(os.pread(3, 1, 4096) != b"\x5a")' ||
	fail "open descriptor after the refusal"
exec 3<&-

ctl "$M" "reparent kid.vhd other.vhd ignore-id-mismatch"
tail -n 1 "$M/.control" | grep -q '^ReturnValue=0 ' ||
	fail "reparent once closed: $(tail -n 1 "$M/.control")"
assert_eq 11 "$(byte_at "$M/kid.vhd" 4096)" "child after the reparent"
vhdfs_umount "$M"
"$VHD" check "$B/kid.vhd" >&2 || fail "check of the child"
exit 0
