#!/usr/bin/env bash
# A new image's directory is opened beneath BACKING_DIR once, and the image
# is created through that descriptor: swapping the directory for a symlink
# to outside BACKING_DIR in the middle of a command (paused there by the
# tests/integration/shims/gate.c LD_PRELOAD shim while the parent path is
# resolved) never makes the daemon write outside.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img fusermount3 cc
require_bins

B=$T/backing
M=$T/mnt
O=$T/outside
mkdir -p "$B/sub" "$O"
make_base "$B/gate.vhd" 8M 0x21 0 4096
cc -shared -fPIC -O2 -o "$T/gate.so" "$REPO/tests/integration/shims/gate.c" -ldl
# An ASan daemon wants its runtime first; the shim only wraps realpath.
ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" \
	LD_PRELOAD=$T/gate.so VHDFS_TEST_GATE=$T/gate vhdfs_mount "$B" "$M"

run_swapped() { # CONTROL-LINE
	rm -f "$T/gate.reached"
	touch "$T/gate"
	(echo "$1" >"$M/.control") 2>"$T/ctl.err" &
	local pid=$! i
	for ((i = 0; i < 600; i++)); do
		[ -e "$T/gate.reached" ] && break
		sleep 0.05
	done
	[ -e "$T/gate.reached" ] || fail "the daemon never reached the gate"
	# The command checked sub/; now sub/ leads outside.
	mv "$B/sub" "$B/sub.real"
	ln -s "$O" "$B/sub"
	rm "$T/gate"
	wait "$pid" || log "'$1' failed: $(cat "$T/ctl.err")"
	rm "$B/sub"
	mv "$B/sub.real" "$B/sub"
}

run_swapped "sub/child.vhd gate.vhd"
assert_eq "" "$(ls -A "$O")" "outside dir after a swapped diff"
[ -f "$B/sub/child.vhd" ] || fail "child not created in the directory checked"
cmp "$M/gate.vhd" "$M/sub/child.vhd" || fail "child does not read as its parent"

vhdfs_umount "$M"
exit 0
