#!/usr/bin/env bash
# An image opened for writing through the mount is the file the path
# named beneath BACKING_DIR: with the image's directory swapped for a
# symlink to another directory between the kernel's lookup and the
# daemon's open (paused there by the tests/integration/shims/gate.c
# LD_PRELOAD shim), the daemon opened and wrote the image of the same
# name outside BACKING_DIR. Now the open sees the change and fails
# (ENOENT, logged); the outside image is unchanged.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd cc
require_bins "$VHD"

B=$T/backing
M=$T/mnt
O=$T/outside
mkdir -p "$B/gateopen" "$O"
"$VHD" create "$B/gateopen/x.vhd" 1M >/dev/null
"$VHD" create "$O/x.vhd" 1M >/dev/null
sha=$(sha256sum <"$O/x.vhd")
cc -shared -fPIC -O2 -o "$T/gate.so" "$REPO/tests/integration/shims/gate.c" -ldl
ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" \
	LD_PRELOAD=$T/gate.so VHDFS_TEST_GATE=$T/gate vhdfs_mount "$B" "$M"
stat "$M/gateopen/x.vhd" >/dev/null # its metadata cached: no open later

touch "$T/gate"
"$PY" - "$M/gateopen/x.vhd" >"$T/writer.out" 2>&1 <<'PYEOF' &
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_RDWR)
    os.pwrite(fd, b"X" * 4096, 0)
    os.close(fd)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PYEOF
pid=$!
for ((i = 0; i < 600; i++)); do
	[ -e "$T/gate.reached" ] && break
	sleep 0.05
done
[ -e "$T/gate.reached" ] || fail "the daemon never reached the gate"
mv "$B/gateopen" "$B/gateopen.real"
ln -s "$O" "$B/gateopen"
rm "$T/gate"
wait "$pid"
assert_eq ENOENT "$(cat "$T/writer.out")" "write open through a swapped dir"
assert_eq "$sha" "$(sha256sum <"$O/x.vhd")" "image outside BACKING_DIR"
grep -q "refusing open of /gateopen/x.vhd: it changed while being opened" \
	"$(vhdfs_log "$M")" || fail "no log line for the refused open"
rm "$B/gateopen"
mv "$B/gateopen.real" "$B/gateopen"
vhdfs_umount "$M"
exit 0
