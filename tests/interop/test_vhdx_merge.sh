#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vhd merge` on VHDX chains against independent readers: a 3-level chain
# (.vhdx <- .avhdx <- .avhdx <- .avhdx, written by us in every level)
# merged into its base, and a 1-level chain merged into its parent: the
# merged image reads equal to the child's flat view before, in qemu
# (qemu-img check and compare) and libvhdi; the levels and the journal
# are gone; the base got a new DataWriteGuid (its child in another
# directory, which the merge does not look for, no longer opens).
. "$(dirname "$0")/lib.sh"
need qemu-img
$PY -c 'import pyvhdi' 2>/dev/null || { echo "SKIP: pyvhdi"; exit 77; }
build_writer
MIB=1048576

head -c $((4 * MIB)) /dev/urandom >data.bin

# put IMG OFF LEN SKIP: data.bin bytes into IMG through libvhd
put() {
	dd if=data.bin bs=64k skip="$4" count="$3" \
		iflag=skip_bytes,count_bytes status=none |
		"$WRITE" "$1" "$2" || fail "vhd-write $1 $2"
}

# merged IMG MODEL WHAT
merged() {
	qemu-img check -q -f vhdx "$1" || fail "qemu-img check $1 ($3)"
	qemu-img compare -q -f vhdx -F raw "$1" "$2" ||
		fail "$3: qemu-img compare differs from the child before"
	pyvhdi_read lib.raw "$1" || fail "pyvhdi $1"
	same "$2" lib.raw "$3: libvhdi"
	"$VHD" check "$1" >/dev/null || fail "vhd check $1 ($3)"
}

"$VHD" create --block-size 1M base.vhdx 24M >/dev/null
put base.vhdx 0 $((3 * MIB)) 0
mkdir sub
"$VHD" diff sub/other.avhdx base.vhdx >/dev/null # (another directory)
"$VHD" cat sub/other.avhdx >/dev/null || fail "sub/other.avhdx does not open"
"$VHD" diff m1.avhdx base.vhdx >/dev/null
put m1.avhdx $((MIB - 100)) 9000 5
"$VHD" diff m2.avhdx m1.avhdx >/dev/null
put m2.avhdx $((8 * MIB)) $((2 * MIB)) 77
"$VHD" diff child.avhdx m2.avhdx >/dev/null
put child.avhdx 4096 512 3
put child.avhdx $((24 * MIB - 4096)) 4096 11
"$VHD" cat child.avhdx >model || fail "vhd cat child.avhdx"
"$VHD" merge child.avhdx base.vhdx || fail "3-level merge"
for f in m1.avhdx m2.avhdx child.avhdx .child.avhdx.merging; do
	[ ! -e "$f" ] || fail "$f left after the merge"
done
merged base.vhdx model "3 levels into the base"
expect_fail linkage -- "$VHD" cat sub/other.avhdx

# 1 level: a child over the merged base, into it
"$VHD" diff c.avhdx base.vhdx >/dev/null
put c.avhdx $((5 * MIB + 1000)) $((MIB)) 1234
"$VHD" cat c.avhdx >model1
"$VHD" merge c.avhdx || fail "1-level merge"
[ ! -e c.avhdx ] || fail "c.avhdx left after the merge"
merged base.vhdx model1 "1 level into its parent"
echo "PASS: merged VHDX chains read equal in qemu and libvhdi"
