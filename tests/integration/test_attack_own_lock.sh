#!/usr/bin/env bash
# asan: yes
# Lock messages name the holder when the daemon can know it: `validate` of
# an image open for writing through the mount said "open for writing by
# another program" (the lock is the daemon's own write handle); it now
# says "open for writing through the mount". A real other program holding
# the write lock (an OFD lock on qemu's byte 101) is still "another
# program".
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
"$VHD" create "$B/a.vhd" 1M >/dev/null
vhdfs_mount "$B" "$M"

validate_error() { # -> ErrorDescription of `validate a.vhd`
	local id
	ctl "$M" "validate a.vhd"
	id=$(last_job "$M")
	job_wait "$M" "$id"
	job_field "$M/.jobs/$id" ErrorDescription
}

exec 3<>"$M/a.vhd"
echo data >&3
err=$(validate_error)
exec 3>&-
case "$err" in
*"$B/a.vhd: in use: open for writing through the mount;"*) ;;
*) fail "validate with a writer through the mount: $err" ;;
esac

# Another program's write lock, held while validate runs.
"$PY" - "$B/a.vhd" "$T/locked" <<'PYEOF' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, 0, 101, 1, 0))
open(sys.argv[2], "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.05)
PYEOF
holder=$!
cleanup_push "rm -f '$T/locked'; wait $holder"
for ((i = 0; i < 600; i++)); do
	[ -e "$T/locked" ] && break
	sleep 0.05
done
[ -e "$T/locked" ] || fail "lock holder did not start"
err=$(validate_error)
rm -f "$T/locked"
case "$err" in
*"$B/a.vhd: in use: open for writing by another program;"*) ;;
*) fail "validate with another program's lock: $err" ;;
esac
vhdfs_umount "$M"
exit 0
