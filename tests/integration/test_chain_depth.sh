#!/usr/bin/env bash
# The chain depth limit: 32 images, the leaf counted. A 32-deep chain built
# through the control file (across subdirectories and names with spaces)
# reads every level's own sector correctly; a 33rd level is refused and
# leaves nothing behind.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 getfattr
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B/level dir" "$B/other"
make_base "$B/l01.vhd" 4M 0x5a 4M 0
qemu_flat "$B/l01.vhd" "$T/model"
vhdfs_mount "$B" "$M"

# Level i lives in one of three places, so locators must work across
# directories; each level writes its own sector i (and a byte at the end).
place() { # LEVEL -> relative path
	case $(($1 % 3)) in
	0) printf 'l%02d.vhd' "$1" ;;
	1) printf 'level dir/l %02d.vhd' "$1" ;;
	2) printf 'other/l%02d.vhd' "$1" ;;
	esac
}
prev=l01.vhd
for ((i = 2; i <= 32; i++)); do
	cur=$(place "$i")
	ctl "$M" "\"$cur\" \"$prev\""
	printf 'level %02d' "$i" >"$T/data"
	for f in "$M/$cur" "$T/model"; do
		dd if="$T/data" of="$f" bs=512 seek="$i" conv=notrunc \
			status=none
		printf '%02d' "$i" | dd of="$f" bs=1 seek=$((4194304 - 2)) \
			conv=notrunc status=none
	done
	prev=$cur
done
sync "$M/$prev"
assert_cmp "$T/model" "$M/$prev" "leaf of the 32-deep chain"
assert_eq 32 "$(getfattr --only-values -n user.vhd.chain "$M/$prev" |
	grep -c .)" "user.vhd.chain lines"

state=$(dir_state "$B")
set +e
ctl "$M" "l33.vhd \"$prev\"" 2>"$T/err33"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a 33rd chain level was created"
log "33rd level refused: $(cat "$T/err33")"
assert_eq "$state" "$(dir_state "$B")" "backing dir after the refusal"

vhdfs_umount "$M"
# Still all there after a remount.
vhdfs_mount "$B" "$M" -o ro
assert_cmp "$T/model" "$M/$prev" "32-deep leaf after remount"
vhdfs_umount "$M"
exit 0
