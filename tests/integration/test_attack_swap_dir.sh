#!/usr/bin/env bash
# Changes made through the mount stay inside BACKING_DIR whatever is
# swapped in between the kernel's lookup and the daemon's change: mkdir
# and rmdir of MNT/d/X, with d/ replaced by a symlink to a directory
# outside at that moment (paused there by the tests/integration/shims/
# gate.c LD_PRELOAD shim), made and removed directories outside as root.
# chmod, chown and touch of a symlinked image are refused (EPERM): the
# kernel checks the target it saw, the daemon changed whatever the link
# named by then (e.g. /etc/shadow). A directory made through an
# allow_other mount belongs to the user who made it.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd cc setpriv
require_bins "$VHD"

B=$T/backing
M=$T/mnt
O=$T/outside
mkdir -p "$B/d" "$O"
chmod 755 "$T" "$B"
cc -shared -fPIC -O2 -o "$T/gate.so" "$REPO/tests/integration/shims/gate.c" -ldl
ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" \
	LD_PRELOAD=$T/gate.so VHDFS_TEST_GATE=$T/gate \
	vhdfs_mount "$B" "$M" -o allow_other

swapped() { # CMD...: run CMD; at the gate d/ becomes a symlink to outside
	rm -f "$T/gate.reached"
	touch "$T/gate"
	("$@") 2>"$T/cmd.err" &
	local pid=$! i
	for ((i = 0; i < 600; i++)); do
		[ -e "$T/gate.reached" ] && break
		sleep 0.05
	done
	[ -e "$T/gate.reached" ] || fail "the daemon never reached the gate"
	mv "$B/d" "$B/d.real"
	ln -s "$O" "$B/d"
	rm "$T/gate"
	wait "$pid" || log "'$*' failed: $(cat "$T/cmd.err")"
	rm "$B/d"
	mv "$B/d.real" "$B/d"
}

swapped mkdir "$M/d/gatedir"
assert_eq "" "$(ls -A "$O")" "outside dir after a swapped mkdir"
[ -d "$B/d/gatedir" ] || fail "mkdir did not make d/gatedir"

mkdir "$O/gatedir"
swapped rmdir "$M/d/gatedir"
[ -d "$O/gatedir" ] || fail "a swapped rmdir removed a directory outside"
[ ! -e "$B/d/gatedir" ] || fail "rmdir did not remove d/gatedir"

# A symlinked image: its target's attributes are not changed through it.
"$VHD" create "$O/img.vhd" 1M >/dev/null
chmod 644 "$O/img.vhd"
ln -s "$O/img.vhd" "$B/link.vhd"
before=$(stat -c '%a %u %g %Y' "$O/img.vhd")
expect_errno EPERM chmod 666 "$M/link.vhd"
expect_errno EPERM chown 65534 "$M/link.vhd"
expect_errno EPERM touch -d @0 "$M/link.vhd"
assert_eq "$before" "$(stat -c '%a %u %g %Y' "$O/img.vhd")" "symlink target"
# A regular image still takes them.
"$VHD" create "$B/a.vhd" 1M >/dev/null
chmod 600 "$M/a.vhd"
assert_eq 600 "$(stat -c %a "$B/a.vhd")" "mode of a.vhd"

# mkdir by another user on an allow_other mount: that user's directory.
chmod 777 "$B"
setpriv --reuid=65534 --regid=65534 --clear-groups mkdir "$M/udir"
assert_eq "65534 65534" "$(stat -c '%u %g' "$B/udir")" "owner of udir"
setpriv --reuid=65534 --regid=65534 --clear-groups mkdir "$M/udir/sub" ||
	fail "the user cannot use the directory it made"
vhdfs_umount "$M"
exit 0
