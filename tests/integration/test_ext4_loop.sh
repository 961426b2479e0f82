#!/usr/bin/env bash
# The losetup workflow: a differencing child made by echo, attached to a
# loop device, mkfs.ext4, mounted, filled with files, unmounted; e2fsck -fn
# finds it clean, the files read back after a fresh attach, the parent's
# backing file is bit-for-bit unchanged, and an independent reader (libvhdi
# through pyvhdi, given the parent) sees exactly what the mount shows.
# ext4 with 4 KiB blocks writes 4 KiB-aligned data, which libvhdi reads
# soundly.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 losetup mkfs.ext4 e2fsck
require_bins
"$PY" -c 'import pyvhdi' 2>/dev/null ||
	skip "python3-libvhdi (pyvhdi) missing for $PY"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 64M 0x5a 1M 0
qemu_write "$B/base.vhd" 0xc3 $((40 * 1024 * 1024)) 2M
base_sha=$(sha "$B/base.vhd")
qemu_flat "$B/base.vhd" "$T/base.flat"

vhdfs_mount "$B" "$M"
ctl "$M" "child.vhd base.vhd"
assert_cmp "$T/base.flat" "$M/child.vhd" "fresh child"

# mkfs + files through a loop device on the child.
loop_attach "$M/child.vhd"
dev=$LOOPDEV
mkfs.ext4 -q -F -b 4096 -L vhdfs-test "$dev"
mount_fs "$dev" "$T/fs"
mkdir -p "$T/fs/dir/sub"
head -c $((3 * 1024 * 1024 + 123)) /dev/urandom >"$T/fs/big.bin"
head -c 70000 /dev/urandom >"$T/fs/dir/mid.bin"
echo "small file in a differencing VHD" >"$T/fs/dir/sub/small.txt"
for i in $(seq 1 50); do echo "file $i" >"$T/fs/dir/f$i"; done
(cd "$T/fs" && find . -type f ! -path './lost+found/*' -print0 |
	sort -z | xargs -0 sha256sum) >"$T/files.sha"
umount "$T/fs"
loop_detach "$dev"

e2fsck -fn "$M/child.vhd" >"$T/fsck.log" 2>&1 ||
	{ cat "$T/fsck.log" >&2; fail "e2fsck -fn found problems in child"; }

# Parent untouched, both as a file and as the flat image it shows.
assert_eq "$base_sha" "$(sha "$B/base.vhd")" "parent backing file sha256"
assert_cmp "$T/base.flat" "$M/base.vhd" "parent flat after ext4 use"

# Files read back through a fresh loop device.
loop_attach "$M/child.vhd"
dev=$LOOPDEV
mount_fs "$dev" "$T/fs" -o ro
(cd "$T/fs" && sha256sum --quiet -c "$T/files.sha") >&2 ||
	fail "files differ after remounting the ext4"
umount "$T/fs"
loop_detach "$dev"

# Independent reader: libvhdi with the parent set explicitly.
"$PY" - "$B/child.vhd" "$B/base.vhd" "$M/child.vhd" <<'EOF' ||
import sys, pyvhdi
child, parent, flat = sys.argv[1:4]
f = pyvhdi.file(); f.open(child)
p = pyvhdi.file(); p.open(parent)
f.set_parent(p)
size = f.get_media_size()
with open(flat, "rb") as m:
    m.seek(0, 2)
    if m.tell() != size:
        sys.exit(f"size: libvhdi {size}, mount {m.tell()}")
    m.seek(0)
    off, chunk = 0, 1 << 20
    while off < size:
        a = f.read_buffer_at_offset(min(chunk, size - off), off)
        b = m.read(len(a))
        if a != b:
            i = next(i for i in range(len(a)) if a[i] != b[i])
            sys.exit(f"libvhdi and the mount differ at byte {off + i}")
        off += len(a)
print(f"libvhdi agrees on {size} bytes", file=sys.stderr)
EOF
	fail "libvhdi's reading of child.vhd differs from the mount"

vhdfs_umount "$M"
assert_eq "$base_sha" "$(sha "$B/base.vhd")" "parent sha256 after unmount"
exit 0
