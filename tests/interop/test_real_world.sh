#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Images from other writers in $TESTDATA (read in place, never modified):
# ext2.vhd (qemu) equals qemu-img convert's output and holds a clean ext2;
# image.vhd and image-differential.vhd (both footer checksums wrong) are
# refused with a message naming the file and the checksum, or, if read
# leniently, read as libvhdi reads them; fat-differential.vhd (Windows,
# parent absent) fails with "parent not found" naming the paths tried while
# its metadata stays readable; the FreeBSD mkimg image is 8 MiB (current
# size) and agrees with qemu over qemu's shorter CHS size.
. "$(dirname "$0")/lib.sh"
need qemu-img e2fsck debugfs
D=$TESTDATA
[ -r "$D/ext2.vhd" ] || fail "no test data in $D"
sums_before=$(cd "$D" && sha256sum ./*.vhd ./*.gz)

# run CMD...: run, keep stdout in out, stderr in err, status in rc.
# A status above 125 (signal, sanitizer abort) fails the test at once.
run() {
	set +e
	"$@" > out 2> err
	rc=$?
	set -e
	[ $rc -lt 126 ] || fail "$* crashed (status $rc): $(cat err)"
}

# ext2.vhd: qemu agrees byte for byte; the file system inside is clean.
"$VHD" cat "$D/ext2.vhd" > ext2.img || fail "vhd cat ext2.vhd"
qemu-img convert -f vpc -O raw "$D/ext2.vhd" ext2.raw
same ext2.raw ext2.img "ext2.vhd"
[ "$(stat -c %s ext2.img)" = 4212736 ] || fail "ext2.vhd size"
e2fsck -fn ext2.img > fsck.log 2>&1 || fail "e2fsck: $(cat fsck.log)"
debugfs -R ls ext2.img > ls.txt 2> /dev/null || fail "debugfs failed"
grep -q lost+found ls.txt ||
	fail "debugfs: no lost+found in ext2.vhd's file system"

# pyread IMAGE OUT [PARENT]: libvhdi's reading, for the lenient case.
pyread() {
	$PY - "$@" <<'PY'
import sys, pyvhdi
f = pyvhdi.file()
f.open(sys.argv[1])
if len(sys.argv) > 3:
    p = pyvhdi.file()
    p.open(sys.argv[3])
    f.set_parent(p)
open(sys.argv[2], "wb").write(f.read_buffer_at_offset(f.get_media_size(), 0))
PY
}

# image.vhd: both footer copies fail their checksum.
run "$VHD" cat "$D/image.vhd"
if [ $rc -ne 0 ]; then
	grep -q "image.vhd" err || fail "image.vhd refusal does not name it"
	grep -qi "checksum" err || fail "image.vhd refusal: $(cat err)"
	[ ! -s out ] || fail "image.vhd: refused but wrote data"
	echo "image.vhd: refused: $(cat err)"
else
	pyread "$D/image.vhd" theirs
	same theirs out "image.vhd read leniently"
fi

# image-differential.vhd: parent image.vhd by unicode name; checksums bad.
run "$VHD" cat "$D/image-differential.vhd"
if [ $rc -ne 0 ]; then
	grep -q "image" err || fail "image-differential refusal names no file"
	grep -qi "checksum" err || fail "image-differential: $(cat err)"
	echo "image-differential.vhd: refused: $(cat err)"
else
	pyread "$D/image-differential.vhd" theirs "$D/image.vhd"
	same theirs out "image-differential.vhd read leniently"
fi
run "$VHD" info "$D/image-differential.vhd"

# fat-differential.vhd: parent not present; every path tried is named.
run "$VHD" cat "$D/fat-differential.vhd"
[ $rc -eq 1 ] || fail "fat-differential: status $rc, want 1"
[ ! -s out ] || fail "fat-differential: wrote data without a parent"
grep -qi "parent not found" err || fail "fat-differential: $(cat err)"
grep -q "fat-differential.vhd" err || fail "fat-differential: file unnamed"
grep -q "$D/fat-parent.vhd" err ||
	fail "fat-differential: W2ru path tried is not named: $(cat err)"
grep -q 'C:[/\\]Projects[/\\]dfvfs[/\\]test_data[/\\]fat-parent.vhd' err ||
	fail "fat-differential: W2ku path tried is not named: $(cat err)"
run "$VHD" info "$D/fat-differential.vhd"
grep -Eq 'Type: +differencing' out || fail "fat-differential info: $(cat out err)"
grep -Eq 'Table offset: +8192' out || fail "fat-differential: BAT offset"
grep -Eq 'W2ku .*space 4096 .*length 84' out ||
	fail "fat-differential: W2ku locator: $(cat out)"
grep -Eq 'W2ru .*space 65536 .*length 32' out ||
	fail "fat-differential: W2ru locator: $(cat out)"
# With a parent next to a copy: a stranger is refused (unique id); one
# given the right id opens via W2ru and reads as libvhdi reads the chain.
cp "$D/fat-differential.vhd" fd.vhd
chmod u+w fd.vhd
"$VHD" create --dynamic fat-parent.vhd 4M
run "$VHD" cat fd.vhd
[ $rc -eq 1 ] || fail "fat-differential over a stranger: status $rc"
grep -Eqi "uuid|unique|identifier|mismatch" err ||
	fail "fat-differential over a stranger: $(cat err)"
$PY - <<'PY'
import struct, uuid
def fix(f):
    f[64:68] = b"\0" * 4
    struct.pack_into(">I", f, 64, (~sum(f)) & 0xFFFFFFFF)
    return f
d = bytearray(open("fat-parent.vhd", "rb").read())
f = bytearray(d[-512:])
f[68:84] = uuid.UUID("5fa21a55-f394-aa4d-9958-1951a67d5540").bytes
f = fix(f)
d[-512:] = f
d[:512] = f
open("fat-parent.vhd", "wb").write(d)
PY
"$VHD" cat fd.vhd > fd.img || fail "fat-differential over its parent"
pyread fd.vhd theirs fat-parent.vhd
same theirs fd.img "fat-differential.vhd over a parent with its id"
cmp -s fd.img <(head -c 4194304 /dev/zero) &&
	fail "fat-differential read as all zeros"

# FreeBSD mkimg: creator "*img", 8 MiB current size, MBR at 510.
gunzip -c "$D/freebsd-mkimg-63x255-512-mbr.vhd.gz" > fb.vhd
"$VHD" cat fb.vhd > fb.img || fail "vhd cat freebsd image"
[ "$(stat -c %s fb.img)" = 8388608 ] ||
	fail "freebsd image: $(stat -c %s fb.img) bytes, want 8388608"
qemu-img convert -f vpc -O raw fb.vhd fb.raw
qn=$(stat -c %s fb.raw)
[ "$qn" -le 8388608 ] || fail "qemu's size $qn"
cmp -n "$qn" fb.raw fb.img || fail "freebsd image differs from qemu's"
[ "$(dd if=fb.img bs=1 skip=510 count=2 status=none | od -An -tx1 | tr -d ' ')" = 55aa ] ||
	fail "freebsd image: no MBR signature at 510"

[ "$(cd "$D" && sha256sum ./*.vhd ./*.gz)" = "$sums_before" ] ||
	fail "test data changed"
echo "real-world images: ok"
