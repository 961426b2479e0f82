#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vhd check` and `vhd repair` of qemu-made VHDX images against qemu: a
# damaged header, a damaged region table copy and a log a crashed writer
# left (vhdxcraft.py) are each reported as fixable by check, which does not
# change the file; repair fixes them, after which check is clean,
# `qemu-img check` passes and qemu reads the same data (for the log: what
# `qemu-img check -r all` replays). A defect repair cannot fix leaves the
# file unchanged and repair exits 1.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
MIB=1048576
CRAFT="$PY $REPO/tests/interop/vhdxcraft.py"

qemu-img create -q -f vhdx -o block_size=1M,subformat=dynamic orig.vhdx 16M
qemu-io -f vhdx -c "write -P 0x11 0 1M" -c "write -P 0x22 $((5 * MIB)) 64k" \
	orig.vhdx >/dev/null
qemu-img convert -f vhdx -O raw orig.vhdx before.raw

# flip IMAGE OFFSET: one byte changed
flip() {
	$PY -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2]))
b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x10]))' "$1" "$2"
}

# check_says IMAGE TEXT...: check exits 1, prints each TEXT, changes nothing
check_says() {
	local img=$1 sum out
	shift
	sum=$(sha256sum <"$img")
	out=$("$VHD" check "$img") && fail "check of $img found nothing"
	echo "$out"
	for t in "$@"; do
		grep -qF -- "$t" <<<"$out" || fail "check of $img: no \"$t\""
	done
	[ "$(sha256sum <"$img")" = "$sum" ] || fail "check changed $img"
}

# repaired IMAGE RAW: repair fixes all; qemu agrees and reads RAW
repaired() {
	"$VHD" repair "$1" || fail "repair of $1"
	"$VHD" check "$1" || fail "check after repair of $1"
	qemu-img check -q -f vhdx "$1" || fail "qemu-img check of $1"
	qemu-img compare -q -f vhdx -F raw "$1" "$2" ||
		fail "qemu reads $1 differently"
	out=$("$VHD" repair "$1") || fail "second repair of $1"
	grep -q "nothing repaired" <<<"$out" || fail "second repair: $out"
}

cp orig.vhdx h.vhdx
flip h.vhdx $((64 * 1024 + 40))
check_says h.vhdx "header 1 (at 64 KiB) is damaged" "(fixable by vhd repair)"
repaired h.vhdx before.raw

cp orig.vhdx r.vhdx
flip r.vhdx $((256 * 1024 + 20))
check_says r.vhdx "region table copy 2 (at 256 KiB) is damaged" \
	"(fixable by vhd repair)"
repaired r.vhdx before.raw
cmp <(dd if=r.vhdx bs=64k skip=3 count=1 2>/dev/null) \
	<(dd if=r.vhdx bs=64k skip=4 count=1 2>/dev/null) ||
	fail "region table copies differ after repair"

# a crashed writer's entry: block 9 only in the log
head -c $MIB /dev/urandom >blk
cp orig.vhdx l.vhdx
$CRAFT log l.vhdx 9 blk:0
check_says l.vhdx "log is not empty" "(fixable by vhd repair)"
cp l.vhdx qemu.vhdx
qemu-img check -q -r all -f vhdx qemu.vhdx || fail "qemu's replay"
qemu-img convert -f vhdx -O raw qemu.vhdx replayed.raw
cmp -s replayed.raw before.raw && fail "the logged block is not in qemu's view"
repaired l.vhdx replayed.raw

# both region table copies damaged: nothing to restore from
cp orig.vhdx b.vhdx
flip b.vhdx $((192 * 1024 + 20))
flip b.vhdx $((256 * 1024 + 20))
check_says b.vhdx "bad region table" "(not fixable by vhd repair)"
sum=$(sha256sum <b.vhdx)
"$VHD" repair b.vhdx && fail "repair of b.vhdx exits 0"
[ "$(sha256sum <b.vhdx)" = "$sum" ] || fail "repair changed b.vhdx"
echo "PASS: VHDX defects found by check, fixed by repair, as qemu reads them"
