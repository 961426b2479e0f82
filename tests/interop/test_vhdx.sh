#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VHDX read side against independent oracles:
# - qemu-made fixed and dynamic VHDX (several block sizes, a size that is
#   not a block multiple, random data written with qemu-io, and made by
#   `qemu-img convert -O vhdx`) read through `vhd cat` equal to
#   `qemu-img convert -O raw`;
# - differencing VHDX (crafted by vhdxcraft.py over qemu-made parents, as
#   qemu cannot make them), two and three levels, 512 and 4096-byte
#   logical sectors, read equal to libvhdi (pyvhdi) and to a flat model;
#   ZERO/UNMAPPED/UNDEFINED block states and 512-byte partial blocks equal
#   to the model (libvhdi reads those states from the parent);
# - a crashed writer's log entry (a BAT sector) is replayed in memory:
#   `vhd cat` equals qemu after `qemu-img check -r all` replayed a copy,
#   and the file is unchanged;
# - clear errors: parent_linkage mismatch, missing parent, a VHD where the
#   VHDX parent should be, a VHD child of a VHDX (and a VHDX child of a
#   VHD), a file of neither format.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
$PY -c 'import pyvhdi' 2>/dev/null || { echo "SKIP: pyvhdi"; exit 77; }
CRAFT="$PY $REPO/tests/interop/vhdxcraft.py"
MIB=1048576

head -c $((12 * MIB)) /dev/urandom >data.bin

# qwrite IMG OFF LEN SKIP: data.bin bytes via qemu-io (write -s FILE)
qwrite() {
	dd if=data.bin of=chunk bs=64k skip="$4" count="$3" \
		iflag=skip_bytes,count_bytes status=none
	qemu-io -f vhdx -c "write -s chunk $2 $3" "$1" >/dev/null ||
		fail "qemu-io write $1 $2"
}

# model FLAT OFF LEN SKIP: the same bytes into a flat file
model() {
	dd if=data.bin of="$1" bs=64k skip="$4" count="$3" seek="$2" \
		iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
		status=none
}

zero_model() { # FLAT OFF LEN
	dd if=/dev/zero of="$1" bs=64k count="$3" seek="$2" \
		iflag=count_bytes oflag=seek_bytes conv=notrunc status=none
}

cat_eq() { # IMAGE EXPECTED_FLAT WHAT
	"$VHD" cat "$1" >out.raw || fail "vhd cat $1: $(cat out.raw)"
	same "$2" out.raw "$3"
}

qemu_eq() { # IMAGE WHAT
	qemu-img convert -f vhdx -O raw "$1" q.raw || fail "qemu convert $1"
	cat_eq "$1" q.raw "$2"
}

pyread() { pyvhdi_read "$2" "$1" "${@:3}"; } # LEAF OUT PARENTS...

# --- qemu-made fixed and dynamic images --------------------------------
n=0
for opts in "subformat=dynamic" "subformat=dynamic,block_size=1M" \
	"subformat=dynamic,block_size=32M" "subformat=fixed" \
	"subformat=fixed,block_size=2M" "subformat=dynamic,block_state_zero=off"; do
	n=$((n + 1))
	img=q$n.vhdx
	# 70 MiB + 4 KiB: the last block is partial
	qemu-img create -q -f vhdx -o "$opts" "$img" $((70 * MIB + 4096)) ||
		fail "qemu-img create $opts"
	qwrite "$img" 0 65536 0
	qwrite "$img" $((3 * MIB + 512)) $((2 * MIB)) 100000
	qwrite "$img" $((33 * MIB - 4096)) 8192 5000000
	qwrite "$img" $((70 * MIB)) 4096 7000000
	"$VHD" info "$img" >info.txt || fail "vhd info $img"
	grep -q "^Format: *VHDX" info.txt || fail "$img: format not VHDX"
	case $opts in
	*fixed*) grep -q "^Type: *fixed" info.txt || fail "$img: not fixed" ;;
	*) grep -q "^Type: *dynamic" info.txt || fail "$img: not dynamic" ;;
	esac
	qemu_eq "$img" "qemu-img $opts"
done
# made by conversion from raw (every block written)
head -c $((9 * MIB)) /dev/urandom >flat.raw
for sub in dynamic fixed; do
	qemu-img convert -f raw -O vhdx -o subformat=$sub flat.raw conv-$sub.vhdx ||
		fail "convert $sub"
	cat_eq conv-$sub.vhdx flat.raw "qemu-img convert -O vhdx $sub"
done
"$VHD" info --json q1.vhdx | grep -q '"format": "vhdx"' ||
	fail "info --json has no format"

# --- differencing chains, 512-byte sectors ------------------------------
# base: qemu dynamic 24 MiB with data; child and grandchild crafted with
# 4 KiB-aligned writes (what libvhdi reads right).
qemu-img create -q -f vhdx -o block_size=8M base.vhdx $((24 * MIB))
qwrite base.vhdx 0 $((3 * MIB)) 0
qwrite base.vhdx $((10 * MIB)) $MIB 3000000
qwrite base.vhdx $((20 * MIB)) 65536 4000000
qemu-img convert -f vhdx -O raw base.vhdx flat
base_sha=$(sha256sum <base.vhdx)

w=()
put() { # OFF LEN SKIP: a write into the next crafted child and the model
	w+=(--write "$1:data.bin:$3:$2")
	model flat "$1" "$2" "$3"
}
put 0 4096 8000000                        # partial block 0 (bitmap)
put $((2 * MIB)) $((2 * MIB)) 8100000     # block 1 fully present
put $((9 * MIB)) 65536 9000000            # inside base data
put $((23 * MIB)) $MIB 9500000            # last block, partly
$CRAFT diff child.avhdx base.vhdx "${w[@]}" || fail "craft child"
cat_eq child.avhdx flat "child over base"
pyread child.avhdx py.raw base.vhdx
same flat py.raw "libvhdi reading child"
same py.raw out.raw "vhd cat vs libvhdi (child)"
grep -q "^Type: *differencing" <("$VHD" info child.avhdx) ||
	fail "child not differencing"
# relative_path leads nowhere: absolute_win32_path's file name beside it
$CRAFT diff moved.avhdx base.vhdx --relative '..\gone\base.vhdx' \
	"${w[@]}" || fail "craft moved"
cat_eq moved.avhdx flat "parent by absolute_win32_path's file name"

w=()
put $((4096 * 3)) 8192 10000000
put $((10 * MIB + 4096)) 4096 10100000
put $((16 * MIB)) $((4 * MIB)) 0
$CRAFT diff grand.avhdx child.avhdx --block-size $((4 * MIB)) "${w[@]}" ||
	fail "craft grandchild"
cat_eq grand.avhdx flat "three levels"
pyread grand.avhdx py.raw child.avhdx base.vhdx
same flat py.raw "libvhdi reading three levels"
"$VHD" info grand.avhdx | grep -A3 '^Chain:' | grep -q base.vhdx ||
	fail "chain of grand does not reach base"

# block states and 512-byte granularity (model only: libvhdi reads ZERO
# and UNMAPPED from the parent, the spec says zeros)
w=()
put 512 1024 11000000
put $((6 * MIB + 1536)) 512 11100000
$CRAFT diff states.avhdx base.vhdx "${w[@]}" --state 5:2 --state 10:3 \
	--state 11:1 || fail "craft states"
# model from base: base content + writes, blocks 5, 10, 11 (2 MiB) zero
qemu-img convert -f vhdx -O raw base.vhdx flat
model flat 512 1024 11000000
model flat $((6 * MIB + 1536)) 512 11100000
zero_model flat $((10 * MIB)) $((2 * MIB))
zero_model flat $((20 * MIB)) $((4 * MIB))
cat_eq states.avhdx flat "ZERO/UNMAPPED/UNDEFINED states, 512-byte writes"

# --- 4096-byte logical sectors -----------------------------------------
qemu-img create -q -f vhdx -o block_size=8M b4k.vhdx $((32 * MIB))
qwrite b4k.vhdx $MIB $((2 * MIB)) 1000
qemu-img convert -f vhdx -O raw b4k.vhdx flat4k
$CRAFT sector b4k.vhdx 4096
grep -q "^Logical sector size: *4096" <("$VHD" info b4k.vhdx) ||
	fail "4096-byte sectors not shown"
cat_eq b4k.vhdx flat4k "4096-byte sector base"
$CRAFT diff c4k.avhdx b4k.vhdx --write "$((MIB + 4096)):data.bin:0:4096" \
	--write "$((20 * MIB)):data.bin:4096:$((2 * MIB))" ||
	fail "craft 4k child"
model flat4k $((MIB + 4096)) 4096 0
model flat4k $((20 * MIB)) $((2 * MIB)) 4096
cat_eq c4k.avhdx flat4k "4096-byte sector child"
pyread c4k.avhdx py.raw b4k.vhdx
same flat4k py.raw "libvhdi reading the 4096-byte sector child"

# --- log replay ---------------------------------------------------------
qemu-img create -q -f vhdx -o block_size=2M logged.vhdx $((16 * MIB))
qwrite logged.vhdx 0 $MIB 0
qemu-img convert -f vhdx -O raw logged.vhdx before.raw
# block 3 (6-8 MiB) is mapped only by the log entry
$CRAFT log logged.vhdx 3 data.bin:2000000 || fail "craft log"
sum=$(sha256sum <logged.vhdx)
"$VHD" info logged.vhdx | grep -q "^Log: .*replayed" ||
	fail "info does not report the replay"
"$VHD" cat logged.vhdx >ours.raw || fail "vhd cat of a logged image"
[ "$(sha256sum <logged.vhdx)" = "$sum" ] ||
	fail "reading changed the file with a log"
cmp -s before.raw ours.raw && fail "the log entry was not applied"
cp logged.vhdx replayed.vhdx
qemu-img check -q -r all replayed.vhdx || fail "qemu replay"
qemu-img convert -f vhdx -O raw replayed.vhdx after.raw
same after.raw ours.raw "in-memory replay vs qemu's replay"
cp before.raw expect.raw
model expect.raw $((6 * MIB)) $((2 * MIB)) 2000000
same expect.raw ours.raw "replayed block content"

# --- errors -------------------------------------------------------------
$CRAFT diff bad.avhdx base.vhdx \
	--linkage '{01234567-89ab-cdef-0123-456789abcdef}' || fail "craft bad"
expect_fail bad.avhdx linkage 01234567-89ab-cdef-0123-456789abcdef -- \
	"$VHD" cat bad.avhdx
mkdir lone mix
cp child.avhdx lone/
expect_fail "parent not found" 'd.vhdx\|base.vhdx' -- "$VHD" cat lone/child.avhdx
cp child.avhdx mix/
"$VHD" create --dynamic mix/x.vhd 24M >/dev/null
mv mix/x.vhd mix/base.vhdx
expect_fail "not a VHDX" "mix" -- "$VHD" cat mix/child.avhdx
expect_fail "VHDX" "mix" -- "$VHD" diff vhdchild.vhd base.vhdx
[ ! -e vhdchild.vhd ] || fail "a failed diff left a file"
expect_fail "is a VHD" "mix" -- "$VHD" diff x.avhdx mix/base.vhdx
[ ! -e x.avhdx ] || fail "a failed diff left a file"
head -c 4M /dev/urandom >junk.img
expect_fail junk.img "neither a VHD" VHDX -- "$VHD" info junk.img

[ "$(sha256sum <base.vhdx)" = "$base_sha" ] || fail "base.vhdx changed"
echo "PASS: VHDX reads equal qemu-img and libvhdi; log replayed in memory"
