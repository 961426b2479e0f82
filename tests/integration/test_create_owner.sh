#!/usr/bin/env bash
# Images made through .control belong to the user (gid) who wrote the
# command, honour that user's umask, and are never readable by someone who
# cannot read their parent chain; a *.vhd symlink to an image in a private
# directory is not readable through an allow_other mount by other users.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 setpriv
require_bins

B=$T/backing
M=$T/mnt
S=$T/secret
P=$T/public
mkdir -p "$B" "$S" "$P"
chmod 755 "$T" "$B" "$P"
chmod 700 "$S"
make_base "$B/base.vhd" 8M 0x5a 64K 0
make_base "$B/open.vhd" 8M 0x6b 64K 0
make_base "$S/hidden.vhd" 8M 0x7c 64K 0
make_base "$P/shown.vhd" 8M 0x7c 64K 0
chmod 600 "$B/base.vhd"
chmod 644 "$B/open.vhd" "$S/hidden.vhd" "$P/shown.vhd"
# nobody even owns the hidden image: only the 0700 directory keeps it.
chown 65534:65534 "$S/hidden.vhd"
ln -s "$S/hidden.vhd" "$B/link.vhd"
ln -s "$P/shown.vhd" "$B/publink.vhd"
vhdfs_mount "$B" "$M" -o allow_other

nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
mode_owner() { stat -c '%a %u:%g' "$1"; }

# The caller's umask, not the daemon's.
(umask 0 && ctl "$M" "create u0.vhd 1M")
assert_eq "666 0:0" "$(mode_owner "$B/u0.vhd")" "create with umask 0"
(umask 077 && ctl "$M" "create u77.vhd 1M")
assert_eq "600 0:0" "$(mode_owner "$B/u77.vhd")" "create with umask 077"
(umask 027 && ctl "$M" "create fixed.vhd 1M fixed")
job_wait "$M" "$(last_job "$M")"
assert_eq "640 0:0" "$(mode_owner "$B/fixed.vhd")" "fixed create (a job)"

# A child of a 0600 parent is 0600 whatever the umask; of a 0644 one it
# follows the umask.
(umask 022 && ctl "$M" "c600.vhd base.vhd")
assert_eq "600 0:0" "$(mode_owner "$B/c600.vhd")" "child of a 0600 parent"
(umask 002 && ctl "$M" "c644.vhd open.vhd")
assert_eq "664 0:0" "$(mode_owner "$B/c644.vhd")" "child of a 0644 parent"
# A grandchild of the 0600 base through a 0644 middle level stays closed.
chmod 644 "$B/c600.vhd"
(umask 022 && ctl "$M" "grand.vhd c600.vhd")
assert_eq "600 0:0" "$(mode_owner "$B/grand.vhd")" "grandchild of 0600"
chmod 600 "$B/c600.vhd"

# The group of the writer; the parent's group bits do not carry over to
# a child of another group.
chmod 640 "$B/open.vhd"
(umask 0 && setpriv --regid=65534 --clear-groups \
	bash -c "echo 'cgrp.vhd open.vhd' >'$M/.control'")
assert_eq "600 0:65534" "$(mode_owner "$B/cgrp.vhd")" "child of another gid"
(umask 002 && setpriv --regid=65534 --clear-groups \
	bash -c "echo 'create g.vhd 1M' >'$M/.control'")
assert_eq "664 0:65534" "$(mode_owner "$B/g.vhd")" "create by gid 65534"
chmod 644 "$B/open.vhd"

# What another user can read through the mount.
expect_errno EACCES nobody cat "$M/base.vhd"
expect_errno EACCES nobody cat "$M/c600.vhd"
expect_errno EACCES nobody cat "$M/grand.vhd"
nobody cmp -s "$M/c644.vhd" "$M/open.vhd" ||
	fail "nobody cannot read the child of a 0644 parent"
# Symlinked images report the target's mode and owner ...
assert_eq "644 65534:65534" "$(mode_owner "$M/link.vhd")" "symlinked image"
# ... and open checks the real path: the secret one stays closed.
expect_errno EACCES nobody cat "$M/link.vhd"
expect_errno EACCES nobody dd if="$M/link.vhd" of=/dev/null bs=512 count=1 \
	status=none
nobody cat "$M/publink.vhd" >"$T/pub.raw" ||
	fail "nobody cannot read a symlinked image in a public directory"
cmp -s "$M/link.vhd" "$T/pub.raw" || fail "root reads link.vhd differently"
