#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# vhdfs demo: make a base disk with a partition table and an ext4 file
# system, mount the image directory with vhdfs, create a differencing child
# with `echo "child.vhd base.vhd" > .control`, look at it with everyday
# tools, write into the child and show the parent unchanged. The mount is
# left live for exploring.
#
#	sudo scripts/demo.sh [WORKDIR]      (default /tmp/vhdfs-demo)
#
# Re-running it first tears down the previous demo in WORKDIR.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
VHD=$BUILD/vhd
VHDFS=$BUILD/vhdfs
DIR=${1:-/tmp/vhdfs-demo}
B=$DIR/images
M=$DIR/mnt
FS=$DIR/fs
MARK=$DIR/.vhdfs-demo
PART_OFF=$((1024 * 1024)) # first partition starts at sector 2048

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() {
	printf '$ %s\n' "$*"
	"$@"
}
# A shell command line with redirections or pipes, shown as typed.
runsh() {
	printf '$ %s\n' "$1"
	bash -c "$1"
}
die() {
	echo "demo: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (FUSE mount, loop devices): sudo $0"
for b in "$VHD" "$VHDFS"; do
	[ -x "$b" ] || die "$b is missing: run make first"
done
for c in fusermount3 losetup mkfs.ext4 sfdisk fdisk hexdump getfattr; do
	command -v "$c" >/dev/null ||
		die "missing $c: run scripts/install-deps.sh"
done

is_mounted() {
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# Tear down a previous run: inner mounts, our loop devices, the vhdfs mount.
teardown() {
	local d dev
	[ -e "$DIR" ] || return 0
	[ -e "$MARK" ] || die "$DIR exists and is not a demo dir; not touching it"
	d=$(realpath "$DIR")
	! is_mounted "$d/fs" || umount "$d/fs"
	while read -r dev; do
		[ -n "$dev" ] && losetup -d "$dev"
	done < <(losetup -l -n -O NAME,BACK-FILE |
		awk -v p="$d/" 'index($2, p) == 1 { print $1 }')
	if is_mounted "$d/mnt"; then
		# The loop detach above completes asynchronously: retry on EBUSY.
		for _ in $(seq 50); do
			fusermount3 -u "$d/mnt" 2>/dev/null && break
			sleep 0.1
		done
		is_mounted "$d/mnt" && die "cannot unmount $d/mnt (busy)"
	fi
	if [ -f "$d/vhdfs.pid" ]; then
		local pid
		pid=$(cat "$d/vhdfs.pid")
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -rf --one-file-system "$d"
}

attach_part() { # IMAGE -> loop device of its first partition
	losetup -f --show -o "$PART_OFF" "$1"
}

teardown
mkdir -p "$B" "$M" "$FS"
touch "$MARK"
DIR=$(realpath "$DIR")
B=$DIR/images M=$DIR/mnt FS=$DIR/fs

say "A 64 MiB dynamic VHD, made with the vhd CLI"
run "$VHD" create --dynamic "$B/base.vhd" 64M
echo "just some notes, not an image (hidden by the mount)" >"$B/notes.txt"

say "Mount the image directory: every .vhd shows up as a flat disk"
setsid "$VHDFS" -f "$B" "$M" </dev/null >"$DIR/vhdfs.log" 2>&1 &
echo $! >"$DIR/vhdfs.pid"
for _ in $(seq 200); do
	is_mounted "$M" && break
	kill -0 "$(cat "$DIR/vhdfs.pid")" 2>/dev/null ||
		die "vhdfs exited: $(cat "$DIR/vhdfs.log")"
	sleep 0.05
done
is_mounted "$M" || die "vhdfs did not mount $M"
echo "vhdfs $B $M   (log: $DIR/vhdfs.log)"
run ls -la "$M"

say "Partition and format the base through the mount (it is a writable leaf)"
runsh "echo 'start=2048, type=83' | sfdisk -q $M/base.vhd"
dev=$(attach_part "$M/base.vhd")
run mkfs.ext4 -q -L demo-base "$dev"
mount "$dev" "$FS"
echo "Hello from the base disk, written $(date -u +%FT%TZ)" >"$FS/hello.txt"
cp /etc/os-release "$FS/os-release"
run ls -l "$FS"
umount "$FS"
losetup -d "$dev"

say "Create a differencing child: one line to the control file"
runsh "echo 'child.vhd base.vhd' > $M/.control"
run cat "$M/.control"
run ls -l "$M"
echo "(st_size is the virtual size; du shows what each layer stores:)"
run du -h "$M"/*.vhd
run ls -l "$B"

say "The child reads exactly like its parent"
run cmp "$M/base.vhd" "$M/child.vhd" || die "child differs from its parent"
echo "identical"
runsh "hexdump -C $M/child.vhd | head -n 8"
run fdisk -l "$M/child.vhd"
run getfattr -d "$M/child.vhd"
run "$VHD" info "$B/child.vhd"

say "Write into the child: mount its ext4 and add a file"
base_sum=$(sha256sum "$B/base.vhd" | cut -d' ' -f1)
dev=$(attach_part "$M/child.vhd")
mount "$dev" "$FS"
echo "Written into the child only" >"$FS/child-only.txt"
run ls -l "$FS"
run cat "$FS/hello.txt" "$FS/child-only.txt"
umount "$FS"
losetup -d "$dev"

say "The parent is unchanged; the child now differs from it"
now_sum=$(sha256sum "$B/base.vhd" | cut -d' ' -f1)
echo "base.vhd sha256 before: $base_sum"
echo "base.vhd sha256 after:  $now_sum"
[ "$base_sum" = "$now_sum" ] || die "the parent changed!"
run cmp "$M/base.vhd" "$M/child.vhd" || true
run du -h "$B"/*.vhd
echo "A parent is read-only while it has a child:"
runsh "echo x | dd of=$M/base.vhd conv=notrunc status=none" || true

cat <<EOF

The mount is live: explore $M (images in $B).
  losetup -f --show -o $PART_OFF $M/child.vhd   # then mount it
  echo "grandchild.vhd child.vhd" > $M/.control
  getfattr -d $M/child.vhd; cat $M/.control
When done:
  fusermount3 -u $M        (or re-run this script to start over)
EOF
