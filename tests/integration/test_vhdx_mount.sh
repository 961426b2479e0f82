#!/usr/bin/env bash
# asan: yes
# VHDX through the mount, read-only: *.vhdx and *.avhdx are listed beside
# *.vhd (other files are not); a qemu-made dynamic .vhdx reads equal to
# `qemu-img convert -O raw`, a crafted differencing .avhdx equal to
# `vhd cat` and to its model; xattrs show the resolved chain; opening a
# VHDX leaf for writing fails EROFS (its parent EPERM), changing nothing;
# `.control` refuses to make a VHD child of a VHDX or a VHDX child of a VHD
# (a chain does not mix formats) and makes VHDX children and dynamic and
# fixed VHDX images that qemu-img and `vhd check` accept.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 getfattr
require_bins

B=$T/backing
M=$T/mnt
MIB=1048576
mkdir -p "$B/sub"
qemu-img create -q -f vhdx -o block_size=2M "$B/base.vhdx" $((16 * MIB))
qemu-io -f vhdx -c "write -P 0x5a 0 3M" -c "write -P 0xa5 9M 64k" \
	"$B/base.vhdx" >/dev/null
qemu-img convert -f vhdx -O raw "$B/base.vhdx" "$T/base.flat"
head -c $((2 * MIB)) /dev/urandom >"$T/data.bin"
"$PY" "$REPO/tests/interop/vhdxcraft.py" diff "$B/child.avhdx" \
	"$B/base.vhdx" --write "4096:$T/data.bin:0:8192" \
	--write "$((4 * MIB)):$T/data.bin:0:$((2 * MIB))" ||
	fail "craft child"
cp "$T/base.flat" "$T/child.flat"
dd if="$T/data.bin" of="$T/child.flat" bs=4096 seek=1 count=2 conv=notrunc \
	status=none
dd if="$T/data.bin" of="$T/child.flat" bs=1M seek=4 count=2 conv=notrunc \
	status=none
qemu-img create -q -f vhdx "$B/sub/Upper.VHDX" 4M
make_base "$B/plain.vhd" 4M 0x11 512 0
echo "not an image" >"$B/notes.txt"
before=$(dir_state "$B")

vhdfs_mount "$B" "$M"

assert_eq "base.vhdx child.avhdx plain.vhd sub" "$(cd "$M" && echo *)" \
	"listing"
assert_eq "Upper.VHDX" "$(cd "$M/sub" && echo *)" "subdirectory listing"
[ ! -e "$M/notes.txt" ] || fail "non-image file shown"
assert_eq $((16 * MIB)) "$(stat -c %s "$M/base.vhdx")" "st_size base.vhdx"
assert_eq $((16 * MIB)) "$(stat -c %s "$M/child.avhdx")" "st_size child"
assert_cmp "$T/base.flat" "$M/base.vhdx" "base.vhdx through the mount"
assert_cmp "$T/child.flat" "$M/child.avhdx" "child.avhdx through the mount"
"$VHD" cat "$B/child.avhdx" >"$T/cat.raw"
assert_cmp "$T/cat.raw" "$M/child.avhdx" "mount vs vhd cat"
cmp -s /dev/zero "$M/sub/Upper.VHDX" -n $((4 * MIB)) ||
	fail "empty VHDX does not read zeros"
assert_eq differencing "$(getfattr --only-values -n user.vhd.type \
	"$M/child.avhdx")" "user.vhd.type"
chain=$(getfattr --only-values -n user.vhd.chain "$M/child.avhdx")
assert_eq "$B/child.avhdx
$B/base.vhdx" "$chain" "user.vhd.chain"

assert_eq EROFS "$(py_errno open_rw "$M/child.avhdx")" "open for writing"
assert_eq EROFS "$(py_errno open_wr "$M/sub/Upper.VHDX")" "open leaf for writing"
# the parent of a VHDX child is protected as a VHD parent is
assert_eq EPERM "$(py_errno open_wr "$M/base.vhdx")" "open parent for writing"
expect_errno EINVAL ctl "$M" "new.vhd base.vhdx"
expect_errno EINVAL ctl "$M" "new.avhdx plain.vhd"
[ ! -e "$B/new.vhd" ] && [ ! -e "$B/new.avhdx" ] ||
	fail "a refused command left a file"

# VHDX creation through .control: a child of the qemu-made base (the
# same library call as `vhd diff`), a dynamic and a fixed image
ctl "$M" "new.avhdx base.vhdx"
assert_cmp "$T/base.flat" "$M/new.avhdx" "new child reads its parent"
ctl "$M" "create dyn.vhdx 8M"
ctl "$M" "create fix.vhdx 8M fixed"
id=$(last_job "$M")
[ -n "$id" ] || fail "fixed create did not start a job"
job_wait "$M" "$id"
assert_eq $((8 * MIB)) "$(stat -c %s "$M/dyn.vhdx")" "st_size dyn.vhdx"
assert_eq $((8 * MIB)) "$(stat -c %s "$M/fix.vhdx")" "st_size fix.vhdx"
cmp -s /dev/zero "$M/fix.vhdx" -n $((8 * MIB)) ||
	fail "new fixed VHDX does not read zeros"
assert_eq fixed "$(getfattr --only-values -n user.vhd.type "$M/fix.vhdx")" \
	"user.vhd.type fix.vhdx"
for f in new.avhdx dyn.vhdx fix.vhdx; do
	"$VHD" check "$B/$f" >/dev/null || fail "vhd check $f"
done
for f in dyn.vhdx fix.vhdx; do
	qemu-img check -q -f vhdx "$B/$f" || fail "qemu-img check $f"
done

vhdfs_umount "$M"
rm -f "$B/new.avhdx" "$B/dyn.vhdx" "$B/fix.vhdx"
assert_eq "$before" "$(dir_state "$B")" "backing directory unchanged"
