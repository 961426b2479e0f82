#!/usr/bin/env bash
# Every row of the control file's errno table (design.md), provoked the way
# a user would, checked by the message the shell prints; after each failure
# nothing was left behind in (or outside) BACKING_DIR.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 setpriv
require_bins

B=$T/backing
M=$T/mnt
O=$T/outside
mkdir -p "$B" "$O"
make_base "$B/base.vhd" 8M 0x5a 1M 0
make_base "$B/leaf.vhd" 8M 0x6b 4096 0
echo "not a vhd at all" >"$O/junk.vhd"
head -c 4096 /dev/urandom >>"$O/junk.vhd"
ln -s "$O" "$B/link"
# Let an unprivileged user reach the mount, so only vhdfs can refuse it.
chmod 755 "$T" "$O"

vhdfs_mount "$B" "$M" -o allow_other

state=$(dir_state "$B")
ostate=$(dir_state "$O")
unchanged() { # WHAT
	assert_eq "$state" "$(dir_state "$B")" "backing dir after $1"
	assert_eq "$ostate" "$(dir_state "$O")" "outside dir after $1"
}
expect_ctl() { # ERRNO LINE
	expect_errno "$1" ctl "$M" "$2"
	unchanged "'$2' ($1)"
}

# 32779 File not found -> ENOENT
expect_ctl ENOENT "child.vhd missing.vhd"
expect_ctl ENOENT "diff child.vhd missing.vhd"
expect_ctl ENOENT "diff child.vhd nodir/base.vhd"

# 32773 Invalid parameter -> EINVAL: malformed lines, bad size, not a VHD
expect_ctl EINVAL "diff child.vhd"
expect_ctl EINVAL "child.vhd \"base.vhd"
expect_ctl EINVAL "frobnicate child.vhd base.vhd"
expect_ctl EINVAL "create sized.vhd 12Q"
expect_ctl EINVAL "child.vhd $O/junk.vhd"
# A new image's name: every extension the mount shows is named.
expect_ctl EINVAL "create disk.img 1M"
tail -n 1 "$M/.control" | grep -qF \
	'Error="image name must end in .vhd, .avhd, .vhdx or .avhdx: disk.img"' ||
	fail "name without an image extension: $(tail -n 1 "$M/.control")"
# A name longer than NAME_MAX is an invalid parameter too (32773), with
# the errno that says why, not 32768 Failed / EIO.
long=$(printf 'n%.0s' $(seq 300))
expect_ctl ENAMETOOLONG "create $long.vhd 1M"
expect_ctl ENAMETOOLONG "$long.vhd base.vhd"
tail -n 1 "$M/.control" | grep -q '^ReturnValue=32773 ' ||
	fail "too long a name: $(tail -n 1 "$M/.control" | cut -c1-80)"

# A good command, then 32773 with EEXIST for an existing target.
ctl "$M" "child.vhd base.vhd"
[ -f "$B/child.vhd" ] || fail "child.vhd not created"
state=$(dir_state "$B")
expect_ctl EEXIST "child.vhd base.vhd"
expect_ctl EEXIST "diff child.vhd leaf.vhd"
expect_ctl EEXIST "leaf.vhd base.vhd"

# 32769 Access Denied -> EACCES: the child must end up inside BACKING_DIR.
expect_ctl EACCES "../x.vhd base.vhd"
expect_ctl EACCES "$O/x.vhd base.vhd"
expect_ctl EACCES "/tmp/vhdfs-errno-x.vhd base.vhd"
expect_ctl EACCES "link/x.vhd base.vhd"
expect_ctl EACCES "$M/../outside/x.vhd base.vhd"
[ ! -e /tmp/vhdfs-errno-x.vhd ] || fail "created /tmp/vhdfs-errno-x.vhd"

# Absolute paths inside MOUNTPOINT or BACKING_DIR are fine, as is a parent
# living outside BACKING_DIR.
ctl "$M" "$M/abs1.vhd $M/base.vhd"
ctl "$M" "$B/abs2.vhd $B/base.vhd"
cp --sparse=always "$B/leaf.vhd" "$O/golden.vhd"
ctl "$M" "fromgolden.vhd $O/golden.vhd"
for f in abs1 abs2 fromgolden; do
	[ -f "$B/$f.vhd" ] || fail "$f.vhd not created"
done
cmp -s "$M/fromgolden.vhd" "$M/leaf.vhd" ||
	fail "child of an outside parent reads differently from it"
state=$(dir_state "$B")
ostate=$(dir_state "$O")

# 32775 Invalid state -> EPERM: a parent cannot be opened for writing.
expect_errno EPERM dd if=/dev/zero of="$M/base.vhd" bs=512 count=1 \
	conv=notrunc status=none
assert_eq EPERM "$(py_errno open_rw "$M/base.vhd")" "open(O_RDWR) of parent"
assert_eq EPERM "$(py_errno open_wr "$M/base.vhd")" "open(O_WRONLY) of parent"
assert_eq OK "$(py_errno open_rd "$M/base.vhd")" "open(O_RDONLY) of parent"
grep -q 'child.vhd\|abs1.vhd\|abs2.vhd' "$(vhdfs_log "$M")" ||
	fail "no log line names the child holding base.vhd"
unchanged "writing a parent"

# 32774 System is in use -> EBUSY: rm/mv of a parent; a child of an image
# that is open for writing.
expect_errno EBUSY rm "$M/base.vhd"
expect_errno EBUSY mv "$M/base.vhd" "$M/moved.vhd"
assert_eq EBUSY "$(py_errno rename "$M/base.vhd" "$M/moved.vhd")" \
	"rename(2) of parent"
unchanged "rm/mv of a parent"
exec 5<>"$M/leaf.vhd"
expect_ctl EBUSY "busy.vhd leaf.vhd"
exec 5>&-
# Closed again: allowed now (the image is no longer being written).
ctl "$M" "notbusy.vhd leaf.vhd"
[ -f "$B/notbusy.vhd" ] || fail "notbusy.vhd not created after close"
state=$(dir_state "$B")

# A non-owner cannot use .control (reaching the mount itself works).
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_nobody ls "$M" >/dev/null || fail "user nobody cannot list the mount"
set +e
err=$(as_nobody bash -c "echo 'byother.vhd base.vhd' > '$M/.control'" 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "user nobody could write .control"
case "$err" in
*"Permission denied"* | *"Operation not permitted"*) ;;
*) fail "non-owner write to .control: unexpected error: $err" ;;
esac
unchanged "a non-owner's write to .control"

# 32768 etc. on a read-only mount: EROFS for the control file and images.
vhdfs_umount "$M"
vhdfs_mount "$B" "$M" -o ro
expect_ctl EROFS "ro.vhd base.vhd"
expect_errno EROFS dd if=/dev/zero of="$M/child.vhd" bs=512 count=1 \
	conv=notrunc status=none
expect_errno EROFS rm "$M/notbusy.vhd"
unchanged "writes to a read-only mount"
vhdfs_umount "$M"
exit 0
