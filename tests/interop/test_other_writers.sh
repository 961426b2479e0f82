#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Chains made by other writers, built here from the specification (see
# vhdcraft.py), read against what was put there: partly set bitmap bytes
# (0x5a...) in a child we made, a Windows-style child (BAT at 0x2000,
# 4 KiB-aligned data, 512 KiB blocks, data space in bytes, parent timestamp
# 0, a unicode name that is a Windows path) found only via W2ru, parents
# found only via W2ku, only via the unicode name, through a subdirectory,
# and with data space in sectors; then our own writes on top of them.
. "$(dirname "$0")/lib.sh"
build_writer
export PYTHONPATH=$REPO/tests/interop

head -c 3000000 /dev/urandom > data.bin
put() { # IMAGE FLAT OFF SKIP LEN
	dd if=data.bin of=chunk bs=64k skip="$4" count="$5" \
		iflag=skip_bytes,count_bytes status=none
	"$WRITE" "$1" "$3" < chunk || fail "vhd-write $1 $3"
	dd if=chunk of="$2" bs=1M seek="$3" oflag=seek_bytes conv=notrunc \
		status=none
}

# Base (ours, written by us): 6 MiB, 2 MiB blocks, data in blocks 0 and 1.
"$VHD" create --dynamic base.vhd 6M || fail "create base"
truncate -s 6M base.flat
put base.vhd base.flat 0 0 3145728
base_sum=$(sha256sum < base.vhd)

# craft SCRIPT: run python with vhdcraft imported, in $T.
craft() { $PY -c "from vhdcraft import *; import os
$1" || fail "python crafting failed"; }

# 1. Partial bitmap bytes in a child we made.
"$VHD" diff child.vhd base.vhd || fail "vhd diff"
cp base.flat child.flat
craft '
flat = bytearray(open("child.flat", "rb").read())
bs = 2 << 20
for blk, bits in ((1, [0x5a, 0xff, 0x00, 0x81, 0x01, 0x80]),
                  (2, [0xa5, 0x00, 0x3c])):
    data = bytes((blk * 37 + i * 7 + (i >> 9)) & 0xff | 1 for i in range(bs))
    append_block("child.vhd", blk, bits, data)
    apply_block(flat, blk, bs, bits, data)
open("child.flat", "wb").write(flat)
'
"$VHD" cat child.vhd > got || fail "vhd cat child"
same child.flat got "child with partial bitmap bytes"
"$VHD" check child.vhd >/dev/null || fail "vhd check child with 0x5a bitmap"
# Our writes into those partly set blocks (unaligned and sector-granular).
put child.vhd child.flat 2097155 1000 700
put child.vhd child.flat 2101248 5000 4096
put child.vhd child.flat 4194815 9000 3
"$VHD" cat child.vhd > got
same child.flat got "our writes over partial bitmap bytes"

# 2. Windows-style child, 512 KiB blocks, W2ru only (+ a Windows unicode
#    name that does not exist here), data space in bytes as Windows writes.
craft '
make_diff("win.vhd", "base.vhd", bs=512 << 10, bat_off=0x2000, align=4096,
          locators=[(W2KU, "C:\\Users\\x\\VMs\\base.vhd"),
                    (W2RU, ".\\base.vhd")],
          uname="C:\\Users\\x\\VMs\\base.vhd", ts=0)
flat = bytearray(open("base.flat", "rb").read())
bs = 512 << 10
for blk in (0, 3, 11):
    bits = [0xff] * 8 + [0x0f] + [0] * 7 + [0xf0]
    data = bytes((blk * 11 + i * 3 + (i >> 9)) & 0xff | 1 for i in range(bs))
    append_block("win.vhd", blk, bits, data, align=4096)
    apply_block(flat, blk, bs, bits, data)
open("win.flat", "wb").write(flat)
'
"$VHD" cat win.vhd > got || fail "vhd cat win.vhd"
same win.flat got "Windows-style 512 KiB child found via W2ru"
"$VHD" info win.vhd > info.txt || fail "vhd info win.vhd"
grep -q "Block size: *524288" info.txt || fail "win.vhd block size"
put win.vhd win.flat 524000 100 2000
put win.vhd win.flat 5767168 200 524288
"$VHD" cat win.vhd > got
same win.flat got "our writes into the Windows-style child"

# 3. Parent only via W2ku / only via unicode name / W2ru into a
#    subdirectory / data space in sectors. Each child owns one block.
mkdir -p golden vms
cp base.vhd golden/base.vhd
touch -r base.vhd golden/base.vhd
while read -r name dir kind; do
	craft "
import sys
kind, d = '$kind', '$dir'
parent = os.path.join(d, 'base.vhd') if d != '.' else 'base.vhd'
absp = os.path.abspath(parent)
loc, un, sec = [], None, False
if kind == 'w2ku': loc = [(W2KU, absp)]
if kind == 'uname': un = 'base.vhd'
if kind == 'subdir': loc = [(W2RU, '.\\\\golden\\\\base.vhd')]
if kind == 'sectors': loc, sec = [(W2RU, '.\\\\base.vhd')], True
if kind == 'w2ku-stale-w2ru':
    loc = [(W2RU, '.\\\\nowhere\\\\base.vhd'), (W2KU, absp)]
make_diff('$name', parent, locators=loc, uname=un, space_sectors=sec)
flat = bytearray(open('base.flat', 'rb').read())
bs = 2 << 20
data = bytes((len(kind) * 5 + i) & 0xff | 1 for i in range(bs))
bits = [0x0f, 0xf0, 0x33]
append_block('$name', 2, bits, data)
apply_block(flat, 2, bs, bits, data)
open('$name.flat', 'wb').write(flat)
"
	"$VHD" cat "$name" > got || fail "vhd cat $name ($kind)"
	same "$name.flat" got "parent found via $kind"
done <<'LIST'
c-w2ku.vhd . w2ku
c-uname.vhd . uname
c-subdir.vhd golden subdir
c-sectors.vhd . sectors
vms/c-stale.vhd . w2ku-stale-w2ru
LIST

[ "$(sha256sum < base.vhd)" = "$base_sum" ] || fail "base.vhd changed"
echo "other writers: ok"
