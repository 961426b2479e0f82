#!/usr/bin/env bash
# A *.vhd symlink image is opened only as the file whose permissions were
# checked for the caller: with the link retargeted at a private image
# (0600 in a 0700 directory) after the check passed on the user's own
# image (paused there by the tests/integration/shims/gate.c LD_PRELOAD
# shim), another user of an allow_other mount read the private data.
# Now the open fails (ENOENT, logged) and nothing is read.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd cc qemu-img qemu-io setpriv
require_bins "$VHD"

B=$T/backing
M=$T/mnt
P=$T/gatelinkdir
S=$T/private
mkdir -p "$B" "$P" "$S"
chmod 755 "$T" "$B" "$P"
chmod 700 "$S"
make_base "$P/own.vhd" 1M 0x61 4096
make_base "$S/secret.vhd" 1M 0x53 4096
chown 65534:65534 "$P/own.vhd"
chmod 600 "$S/secret.vhd"
ln -s "$P/own.vhd" "$B/link.vhd"
cc -shared -fPIC -O2 -o "$T/gate.so" "$REPO/tests/integration/shims/gate.c" -ldl
ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" \
	LD_PRELOAD=$T/gate.so VHDFS_TEST_GATE=$T/gate \
	vhdfs_mount "$B" "$M" -o allow_other

touch "$T/gate"
setpriv --reuid=65534 --regid=65534 --clear-groups \
	head -c 4096 "$M/link.vhd" >"$T/read.out" 2>"$T/read.err" &
pid=$!
for ((i = 0; i < 600; i++)); do
	[ -e "$T/gate.reached" ] && break
	sleep 0.05
done
[ -e "$T/gate.reached" ] || fail "the daemon never reached the gate"
ln -sfn "$S/secret.vhd" "$B/link.vhd"
rm "$T/gate"
wait "$pid" || true
if grep -q S "$T/read.out"; then
	fail "the user read the private image through the swapped link"
fi
grep -q "No such file or directory" "$T/read.err" ||
	fail "open did not fail ENOENT: $(cat "$T/read.err")"
grep -q "refusing open of /link.vhd: it changed while being opened" \
	"$(vhdfs_log "$M")" || fail "no log line for the refused open"
vhdfs_umount "$M"
exit 0
