#!/usr/bin/env bash
# asan: yes
# VHDX through the mount: *.vhdx and *.avhdx are listed beside
# *.vhd (other files are not); a qemu-made dynamic .vhdx reads equal to
# `qemu-img convert -O raw`, a crafted differencing .avhdx equal to
# `vhd cat` and to its model; xattrs show the resolved chain; a VHDX
# parent cannot be opened for writing (EPERM);
# `.control` refuses to make a VHD child of a VHDX or a VHDX child of a VHD
# (a chain does not mix formats) and makes VHDX children and dynamic and
# fixed VHDX images that qemu-img and `vhd check` accept; converts a VHDX
# chain into VHDX and VHD and a VHD into VHDX, equal in qemu; merges a
# grandchild into its VHDX parent; reparents a VHDX child (onto a copy of
# its parent; another disk only with ignore-id-mismatch) and expands a
# dynamic VHDX (a differencing one and shrinking refused). ext4 on a .vhdx
# chain made by .control (losetup, mkfs.ext4, files, a dsync write, a
# grandchild over the written child) reads back after a remount, through
# the loop device, `vhd cat` and libvhdi; the base never changes.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 getfattr losetup mkfs.ext4 e2fsck
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

assert_eq OK "$(py_errno open_rd "$M/child.avhdx")" "open for reading"
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

# convert through .control: the crafted VHDX chain and a VHD into VHDX,
# the VHDX chain into a VHD; each equal to its source's flat view
make_flat() { cp "$M/$1" "$T/$1.flat"; }
make_flat child.avhdx
make_flat plain.vhd
for c in "child.avhdx conv-c.vhdx dynamic" "plain.vhd conv-p.vhdx fixed" \
	"child.avhdx conv-c.vhd dynamic"; do
	set -- $c
	ctl "$M" "convert $c"
	id=$(last_job "$M")
	[ -n "$id" ] || fail "convert $c did not start a job"
	job_wait "$M" "$id"
	assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "convert $c"
	assert_cmp "$T/$1.flat" "$M/$2" "convert $c (mount)"
	case $2 in
	*.vhdx) fmt=vhdx && qemu-img check -q -f vhdx "$B/$2" ||
		fail "qemu-img check $2" ;;
	*) fmt=vpc ;;
	esac
	qemu-img compare -q -f $fmt -F raw "$B/$2" "$T/$1.flat" ||
		fail "convert $c: qemu-img compare"
done

# ext4 on a VHDX chain: the new child over base.vhdx, then a grandchild
# over that (the child is its parent now), through a loop device
loop_attach "$M/new.avhdx"
dev=$LOOPDEV
mkfs.ext4 -q -F -b 4096 "$dev"
mount_fs "$dev" "$T/fs"
head -c $((3 * MIB + 123)) /dev/urandom >"$T/fs/big.bin"
echo "small file in a VHDX child" >"$T/fs/small.txt"
sync -f "$T/fs/big.bin"
(cd "$T/fs" && sha256sum big.bin small.txt) >"$T/files.sha"
umount "$T/fs"
loop_detach "$dev"
e2fsck -fn "$M/new.avhdx" >"$T/fsck.log" 2>&1 ||
	{ cat "$T/fsck.log" >&2; fail "e2fsck -fn found problems"; }
assert_cmp "$T/base.flat" "$M/base.vhdx" "parent after ext4 use"
ctl "$M" "top.vhdx new.avhdx"
assert_cmp "$M/new.avhdx" "$M/top.vhdx" "grandchild reads its parent"
loop_attach "$M/top.vhdx"
dev=$LOOPDEV
mount_fs "$dev" "$T/fs"
(cd "$T/fs" && sha256sum --quiet -c "$T/files.sha") >&2 ||
	fail "files differ in the grandchild"
dd if=/dev/urandom of="$T/fs/more.bin" bs=64k count=40 oflag=dsync \
	status=none
(cd "$T/fs" && sha256sum more.bin) >>"$T/files.sha"
umount "$T/fs"
loop_detach "$dev"
cp "$M/top.vhdx" "$T/top.flat"
"$VHD" check "$B/top.vhdx" >/dev/null || fail "vhd check top.vhdx"

# remount: what the daemon wrote is in the files, read by a new daemon,
# by our CLI and by libvhdi
vhdfs_umount "$M"
vhdfs_mount "$B" "$M"
assert_cmp "$T/top.flat" "$M/top.vhdx" "grandchild after remount"
"$VHD" cat "$B/top.vhdx" >"$T/cat.raw"
assert_cmp "$T/top.flat" "$T/cat.raw" "vhd cat of the grandchild"
"$PY" - "$T/lib.raw" "$B/top.vhdx" "$B/new.avhdx" "$B/base.vhdx" <<'PY' ||
import sys, pyvhdi
out, paths = sys.argv[1], sys.argv[2:]
files = []
for p in paths:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
for child, parent in zip(files, files[1:]):
    child.set_parent(parent)
f = files[0]
with open(out, "wb") as o:
    off, size = 0, f.get_media_size()
    while off < size:
        n = min(1 << 20, size - off)
        o.write(f.read_buffer_at_offset(n, off))
        off += n
PY
	fail "pyvhdi read of the chain"
assert_cmp "$T/top.flat" "$T/lib.raw" "libvhdi reading the grandchild"
loop_attach "$M/top.vhdx"
dev=$LOOPDEV
mount_fs "$dev" "$T/fs" -o ro
(cd "$T/fs" && sha256sum --quiet -c "$T/files.sha") >&2 ||
	fail "files differ after remount"
umount "$T/fs"
loop_detach "$dev"

# merge through .control: the grandchild into its parent (a VHDX child)
ctl "$M" "merge top.vhdx"
id=$(last_job "$M")
[ -n "$id" ] || fail "merge did not start a job"
job_wait "$M" "$id"
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "merge top.vhdx"
[ ! -e "$B/top.vhdx" ] || fail "top.vhdx left after the merge"
assert_cmp "$T/top.flat" "$M/new.avhdx" "new.avhdx after the merge"
"$VHD" check "$B/new.avhdx" >/dev/null || fail "vhd check after the merge"

# reparent through .control: the child onto a copy of its parent reads
# the same; another disk needs ignore-id-mismatch, a VHD is refused
cp "$B/base.vhdx" "$B/sub/base-copy.vhdx"
ctl "$M" "reparent new.avhdx sub/base-copy.vhdx"
grep -q 'ReturnValue=0 Command="reparent' "$M/.control" ||
	fail "reparent: $(last_result)"
assert_cmp "$T/top.flat" "$M/new.avhdx" "new.avhdx after reparent"
chain=$(getfattr --only-values -n user.vhd.chain "$M/new.avhdx")
assert_eq "$B/new.avhdx
$B/sub/base-copy.vhdx" "$chain" "user.vhd.chain after reparent"
qemu-img create -q -f vhdx "$B/stranger.vhdx" $((16 * MIB))
expect_errno EINVAL ctl "$M" "reparent new.avhdx stranger.vhdx"
grep -q 'linkage mismatch' "$M/.control" ||
	fail "linkage mismatch not named: $(last_result)"
expect_errno EINVAL ctl "$M" "reparent new.avhdx plain.vhd"
grep -q 'does not mix' "$M/.control" ||
	fail "VHD parent not refused: $(last_result)"
assert_cmp "$T/top.flat" "$M/new.avhdx" "new.avhdx after refusals"
ctl "$M" "reparent new.avhdx stranger.vhdx ignore-id-mismatch"
"$VHD" cat "$B/new.avhdx" | cmp -s - "$M/new.avhdx" ||
	fail "mount and vhd cat differ after ignore-id-mismatch"
chain=$(getfattr --only-values -n user.vhd.chain "$M/new.avhdx")
assert_eq "$B/new.avhdx
$B/stranger.vhdx" "$chain" "chain after ignore-id-mismatch"

# expand through .control: a job; the new tail reads zeros, qemu agrees
head -c $((8 * MIB)) "$M/dyn.vhdx" >"$T/dyn.flat"
ctl "$M" "expand dyn.vhdx 24M"
id=$(last_job "$M")
[ -n "$id" ] || fail "expand did not start a job"
job_wait "$M" "$id"
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "expand dyn.vhdx"
assert_eq $((24 * MIB)) "$(stat -c %s "$M/dyn.vhdx")" "st_size after expand"
truncate -s 24M "$T/dyn.flat"
assert_cmp "$T/dyn.flat" "$M/dyn.vhdx" "dyn.vhdx after expand"
qemu-img check -q -f vhdx "$B/dyn.vhdx" || fail "qemu-img check after expand"
expect_errno EINVAL ctl "$M" "expand dyn.vhdx 8M"
expect_errno EOPNOTSUPP ctl "$M" "expand new.avhdx 32M"

vhdfs_umount "$M"
rm -f "$B/new.avhdx" "$B/dyn.vhdx" "$B/fix.vhdx" "$B/top.vhdx" \
	"$B/conv-c.vhdx" "$B/conv-p.vhdx" "$B/conv-c.vhd" \
	"$B/sub/base-copy.vhdx" "$B/stranger.vhdx"
assert_eq "$before" "$(dir_state "$B")" "backing directory unchanged"
