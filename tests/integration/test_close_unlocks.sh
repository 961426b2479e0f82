#!/usr/bin/env bash
# asan: yes
# A writer's close(2) leaves the image ready for other programs: right after
# `dd of=MNT/x` returns, qemu opens BACKING/x with its locks and reads what
# dd wrote. The kernel sends RELEASE only after close(2) has returned; the
# daemon flushes at FLUSH, so the release has no I/O left before the write
# lock goes (before, qemu-img failed "Failed to get shared write lock" on
# 7 of 40 tries on an idle machine, 19 of 40 with both cores busy).
# While another descriptor of the writer is still open, the lock stays.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 64M 0x5a 64M 0
vhdfs_mount "$B" "$M"

# write_then_read NAME FMT CREATE_LINE I: make NAME, dd 1 MiB of byte I
# into it through the mount (across a block boundary), then at once read
# it back with qemu-io (locking, read-only) from BACKING_DIR.
write_then_read() {
	local name=$1 fmt=$2 line=$3 i=$4 off out
	off=$((i * 3 * 1048576 - 65536))
	rm -f "$M/$name"
	ctl "$M" "$line"
	"$PY" -c "import sys; sys.stdout.buffer.write(bytes([$i]) * 1048576)" \
		>"$T/pattern"
	dd if="$T/pattern" of="$M/$name" bs=64k seek=$((off / 65536)) \
		conv=notrunc status=none
	if ! out=$(qemu-io -r -f "$fmt" -c "read -P $i $off 1M" \
		"$B/$name" 2>&1); then
		log "try $i: $out"
		return 1
	fi
	grep -q "read 1048576/1048576 bytes" <<<"$out" &&
		! grep -q "Pattern verification failed" <<<"$out"
}

failed=0
for ((i = 1; i <= 12; i++)); do
	write_then_read d.vhd vpc "create d.vhd 64M" "$i" || failed=$((failed + 1))
done
[ "$failed" -eq 0 ] || fail "dynamic VHD: $failed of 12 reads right after dd failed"
for ((i = 1; i <= 8; i++)); do
	write_then_read d.vhdx vhdx "create d.vhdx 64M" "$i" || failed=$((failed + 1))
done
[ "$failed" -eq 0 ] || fail "dynamic VHDX: $failed of 8 reads right after dd failed"
# A child: qemu reads it as a dynamic image, so only `qemu-img info`.
for ((i = 1; i <= 20; i++)); do
	rm -f "$M/c.vhd"
	ctl "$M" "c.vhd base.vhd"
	head -c 1048576 /dev/urandom |
		dd of="$M/c.vhd" bs=64k seek=$((i * 48 - 1)) conv=notrunc \
			status=none
	qemu-img info "$B/c.vhd" >/dev/null 2>"$T/err" || {
		cat "$T/err" >&2
		failed=$((failed + 1))
	}
done
[ "$failed" -eq 0 ] || fail "child: $failed of 20 qemu-img info right after dd failed"

# The same writer keeps its lock while a descriptor is still open: bash
# closes its dup of fd 3 after each redirected builtin (a FLUSH).
exec 3<>"$M/c.vhd"
printf 'still writing' >&3
if qemu-img info "$B/c.vhd" >/dev/null 2>"$T/err"; then
	exec 3>&-
	fail "qemu-img opened an image still open for writing through the mount"
fi
grep -q 'Failed to get shared "write" lock' "$T/err" ||
	fail "qemu-img: $(cat "$T/err")"
exec 3>&-
qemu-img info "$B/c.vhd" >/dev/null || fail "qemu-img info after the last close"
head -c 13 "$M/c.vhd" | grep -q "still writing" || fail "the last write is not there"
