#!/usr/bin/env bash
# Error messages name the file the user named, even when its directory is
# called like one of the daemon's descriptors: the library names a new
# image through /proc/self/fd/N/NAME and the daemon rewrote that, then
# rewrote its own output again (BACKING/proc/self/fd/N/x.vhd became
# BACKING/BACKING/.../ or the path of whatever file descriptor N was,
# e.g. /dev/null or another user's image).
. "$(dirname "$0")/../lib/mount.sh"
require_root

B=$T/backing
M=$T/mnt
mkdir -p "$B"
vhdfs_mount "$B" "$M"

for n in $(seq 0 24); do
	mkdir -p "$B/proc/self/fd/$n"
	expect_errno EINVAL ctl "$M" "create proc/self/fd/$n/x.vhd 1M block=3"
	err=$(tail -n 1 "$M/.control" | sed -n 's/.* Error="\([^"]*\)".*/\1/p')
	case "$err" in
	"$B/proc/self/fd/$n/x.vhd: block size 3 "*) ;;
	*) fail "fd $n: message names another file: $err" ;;
	esac
done
vhdfs_umount "$M"
exit 0
