#!/bin/bash
# vhd cat: the flat image equals what qemu-img convert makes of the same
# dynamic/fixed image (data written by qemu-io into images we created).
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/cli.sh
. "$(dirname "$0")/../lib/cli.sh"
need_cmd qemu-img qemu-io
cli_tmpdir

head -c $((3 << 20)) /dev/urandom >rand.bin

# qio IMAGE CMD...: run qemu-io write commands on a vpc image.
qio() {
	local img=$1 args=()
	shift
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io -f vpc "${args[@]}" "$img" >/dev/null
}

# same IMAGE: vhd cat and qemu-img convert give the same bytes.
same() {
	local img=$1 size
	"$VHD" cat "$img" >"$img.cat"
	qemu-img convert -f vpc -O raw "$img" "$img.raw"
	size=$(qemu-img info -f vpc --output=json "$img" |
		/usr/bin/python3 -c 'import json,sys
print(json.load(sys.stdin)["virtual-size"])')
	[ "$(stat -c %s "$img.cat")" = "$size" ] ||
		fail "$img: cat gave $(stat -c %s "$img.cat") bytes, want $size"
	cmp "$img.cat" "$img.raw" || fail "$img: vhd cat != qemu-img convert"
}

# Fresh dynamic image: all zeros.
"$VHD" create empty.vhd 5M
same empty.vhd
cmp empty.vhd.cat <(head -c $((5 << 20)) /dev/zero) || fail "empty not zero"
pass "empty dynamic image reads as zeros"

# Data in several blocks: block-straddling, unaligned, sub-sector, the end.
"$VHD" create dyn.vhd 9M
qio dyn.vhd "write -s rand.bin 0 1M" \
	"write -P 0xab 2047k 2k" \
	"write -s rand.bin 4100000 3000" \
	"write -P 0x5c 6291456 512" \
	"write -P 0xee 9436160 1k"
same dyn.vhd
cmp -n $((1 << 20)) dyn.vhd.cat rand.bin || fail "dyn.vhd: first MiB"
pass "dynamic image with data: vhd cat == qemu-img convert"

# 512 KiB blocks.
"$VHD" create --block-size 512K small.vhd 3M
qio small.vhd "write -s rand.bin 300k 1M" "write -P 0x11 3071k 1k"
same small.vhd
pass "dynamic 512K-block image: vhd cat == qemu-img convert"

# A size that is not a multiple of the block size.
"$VHD" create odd.vhd 3000000
qio odd.vhd "write -s rand.bin 2097152 902144"
same odd.vhd
pass "dynamic image of odd size: vhd cat == qemu-img convert"

# Fixed image.
"$VHD" create --fixed fix.vhd 4M
qio fix.vhd "write -s rand.bin 1000 2M" "write -P 0x77 4190208 4096"
same fix.vhd
pass "fixed image with data: vhd cat == qemu-img convert"

# A reader that goes away early ends cat quietly.
st=0
"$VHD" cat dyn.vhd 2>cat.err | head -c 1000 >head.out || st=$?
[ "$st" = 0 ] || fail "pipeline status $st"
[ ! -s cat.err ] || fail "cat complained about a closed pipe: $(cat cat.err)"
cmp head.out <(head -c 1000 rand.bin) || fail "head of cat differs"
pass "cat into a closed pipe is quiet"

# Missing file: exit 1, message names it.
st=0
"$VHD" cat nothere.vhd >/dev/null 2>err || st=$?
[ "$st" = 1 ] || fail "cat of missing file exited $st"
grep -q 'nothere.vhd' err || fail "message does not name the file"
pass "cat of a missing file: exit 1, names the file"
