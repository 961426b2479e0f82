#!/usr/bin/env bash
# asan: yes
# An unterminated .control line runs at the last close only; the daemon
# finds the other descriptors of the file in /proc/PID/fd. It compared
# their whole path with MOUNTPOINT/.control, so through a bind mount of
# the mount (as containers have it) the shell's own descriptor went
# unseen: in `{ printf 'create a.vhd'; printf ' 1M\n'; } > DIR/.control`
# (external printf) the first printf's exit ran 'create a.vhd' alone
# (32773), then ' 1M' as a command of its own. The path below the mount
# is what is compared now. Images written through DIR keep working.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd fusermount3 /usr/bin/printf
require_bins

B=$T/backing
M=$T/mnt
D=$T/bound
mkdir -p "$B" "$D"
vhdfs_mount "$B" "$M"
mount --bind "$M" "$D"
cleanup_push "! is_mounted '$D' || umount '$D'"

printf_bin=/usr/bin/printf
{
	"$printf_bin" 'create a.vhd' || true
	"$printf_bin" ' 1M\n' || true
} >"$D/.control"
assert_eq 'ReturnValue=0 Command="create a.vhd 1M"' "$(tail -n 1 "$D/.control")" \
	"the last .control result"
grep -q 32773 "$M/.control" && fail "a part of the line ran: $(cat "$M/.control")"
[ -f "$B/a.vhd" ] || fail "a.vhd was not created"

head -c 65536 /dev/urandom >"$T/data"
dd if="$T/data" of="$D/a.vhd" bs=64k seek=3 conv=notrunc status=none
cmp "$T/data" <(dd if="$M/a.vhd" bs=64k skip=3 count=1 status=none) ||
	fail "what was written through the bind mount reads back wrong"
umount "$D"
vhdfs_umount "$M"
"$VHD" check "$B/a.vhd" >"$T/check" 2>&1 || fail "vhd check: $(cat "$T/check")"
