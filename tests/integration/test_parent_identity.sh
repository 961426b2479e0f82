#!/usr/bin/env bash
# Identity is the inode, and protection crosses processes:
# - a hard link or a symlink to a parent is the parent: write opens fail
#   EPERM, rm and mv fail EBUSY, through the mount;
# - an image the daemon has open for writing cannot get a child from the
#   CLI (`vhd diff` fails "in use", nothing left behind) and `vhd check`
#   reports it as a problem; once closed, both work;
# - an image qemu has open for writing (qemu's own OFD locks) is refused
#   as a parent by the CLI and as a writable image by the daemon.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M 0x33 0 64k
make_base "$B/leaf.vhd" 8M
make_base "$B/q.vhd" 8M
vhdfs_mount "$B" "$M"

ctl "$M" "child.vhd base.vhd"
ln "$B/base.vhd" "$B/hard.vhd"
ln -s base.vhd "$B/sym.vhd"
for name in base hard sym; do
	assert_eq EPERM "$(py_errno open_rw "$M/$name.vhd")" "write open of $name"
	assert_eq EBUSY "$(py_errno unlink "$M/$name.vhd")" "rm of $name"
	assert_eq EBUSY "$(py_errno rename "$M/$name.vhd" "$M/moved.vhd")" \
		"mv of $name"
done
[ -e "$B/hard.vhd" ] && [ -L "$B/sym.vhd" ] || fail "a name of the parent went"

# The daemon writes leaf.vhd: the CLI must not make a child of it.
exec 3<>"$M/leaf.vhd"
printf 'written through the mount' >&3
st=0
"$VHD" diff "$T/c.vhd" "$B/leaf.vhd" 2>"$T/err" || st=$?
assert_eq 1 "$st" "vhd diff of an image open for writing: exit status"
grep -q "in use" "$T/err" || fail "vhd diff message: $(cat "$T/err")"
grep -q "$(errno_msg EBUSY)" "$T/err" || fail "no EBUSY: $(cat "$T/err")"
[ ! -e "$T/c.vhd" ] || fail "vhd diff left $T/c.vhd"
st=0
"$VHD" check "$B/leaf.vhd" >"$T/out" 2>&1 || st=$?
assert_eq 1 "$st" "vhd check of an image open for writing: exit status"
grep -q "in use" "$T/out" || fail "vhd check output: $(cat "$T/out")"
exec 3>&-
# Closed (the release is asynchronous: wait for the lock to go).
for ((i = 0; i < 200; i++)); do
	"$VHD" diff "$T/c.vhd" "$B/leaf.vhd" 2>/dev/null && break
	sleep 0.05
done
[ -e "$T/c.vhd" ] || fail "vhd diff after the writer closed"
"$VHD" check "$B/leaf.vhd" >/dev/null || fail "vhd check after close"

# qemu writes q.vhd (commands from a pipe keep it open).
mkfifo "$T/qcmd"
qemu-io -f vpc "$B/q.vhd" <"$T/qcmd" >"$T/qemu.out" 2>&1 &
qpid=$!
exec 4>"$T/qcmd"
cleanup_push "kill $qpid 2>/dev/null; wait $qpid 2>/dev/null; true"
ino=$(stat -c %i "$B/q.vhd")
for ((i = 0; i < 600; i++)); do
	grep -q "OFDLCK.*:$ino " /proc/locks && break
	sleep 0.05
done
grep -q "OFDLCK.*:$ino " /proc/locks || fail "qemu-io took no lock on q.vhd"
st=0
"$VHD" diff "$T/qc.vhd" "$B/q.vhd" 2>"$T/err" || st=$?
assert_eq 1 "$st" "vhd diff of an image qemu writes"
grep -q "in use" "$T/err" || fail "vhd diff message: $(cat "$T/err")"
assert_eq EBUSY "$(py_errno open_rw "$M/q.vhd")" "write open of what qemu writes"
echo quit >&4
exec 4>&-
wait "$qpid" || true

vhdfs_umount "$M"
exit 0
