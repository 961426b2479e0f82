#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compact, expand, reparent, repair and map checked by independent readers:
# - compact of a dynamic image written by qemu-io: qemu reads the same flat
#   content before and after, and the file shrinks by what vhd reports;
# - expand (fixed; dynamic with and without BAT growth): qemu-img info shows
#   the new size, qemu-img compare finds the old content and a zero tail
#   (qemu-img check has no vpc support, so compare stands in for it);
# - reparent to a moved parent: libvhdi (pyvhdi, set_parent) reads the
#   chain equal to our flat view from before the move;
# - repair of a damaged trailing footer and of the offset-0 copy: the file
#   is byte-identical to the undamaged one and qemu reads it;
# - map of a dynamic image: the data extents equal qemu-img map's.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
$PY -c 'import pyvhdi' 2>/dev/null || { echo "SKIP: pyvhdi"; exit 77; }

MiB=$((1024 * 1024))
qraw() { qemu-img convert -f vpc -O raw "$1" "$2"; }

# --- compact ---------------------------------------------------------------
"$VHD" create d.vhd 64M
qemu-io -f vpc -c 'write -P 0x11 0 3M' -c 'write -P 0 4M 2M' \
	-c 'write -P 0x33 10M 1M' -c 'write -P 0 20M 4M' \
	-c 'write -P 0x55 40M 512' -c 'write -P 0 63M 1M' d.vhd >/dev/null
qraw d.vhd before.raw
size0=$(stat -c %s d.vhd)
"$VHD" compact d.vhd >out
reclaimed=$(sed -n 's/^d.vhd: \([0-9]*\) bytes reclaimed.*/\1/p' out)
size1=$(stat -c %s d.vhd)
[ -n "$reclaimed" ] || fail "compact printed: $(cat out)"
[ "$((size0 - size1))" -eq "$reclaimed" ] ||
	fail "compact: file shrank by $((size0 - size1)), reported $reclaimed"
# 4 of the 7 allocated 2 MiB blocks were zeros.
[ "$reclaimed" -ge $((4 * 2 * MiB)) ] ||
	fail "compact reclaimed only $reclaimed bytes"
qraw d.vhd after.raw
same before.raw after.raw "compact: qemu's view"
"$VHD" check d.vhd >/dev/null || fail "compact: vhd check"
echo "compact: $size0 -> $size1 bytes, content equal as qemu reads it"

# --- expand ----------------------------------------------------------------
vsize() { qemu-img info -f vpc --output=json "$1" |
	$PY -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }
expand_case() { # IMAGE NEWSIZE-BYTES
	qraw "$1" old.raw
	"$VHD" expand "$1" "$2" || fail "expand $1 $2"
	[ "$(vsize "$1")" -eq "$2" ] ||
		fail "expand $1: qemu sees $(vsize "$1"), want $2"
	truncate -s "$2" old.raw # old content, zero tail
	qemu-img compare -q -f vpc -F raw "$1" old.raw ||
		fail "expand $1: content or tail differs (qemu-img compare)"
	"$VHD" check "$1" >/dev/null || fail "expand $1: vhd check"
}
"$VHD" create e.vhd 64M
qemu-io -f vpc -c 'write -P 0x21 0 5M' -c 'write -P 0x22 62M 2M' e.vhd \
	>/dev/null
expand_case e.vhd $((200 * MiB)) # 100 entries: the BAT sector has room
expand_case e.vhd $((2048 * MiB)) # 1024 entries: blocks move out of the way
"$VHD" create --fixed f.vhd 10M
qemu-io -f vpc -c 'write -P 0x44 0 10M' f.vhd >/dev/null
expand_case f.vhd $((30 * MiB))
echo "expand: qemu sees the new sizes, old content and zero tails"

# --- reparent to a moved parent (libvhdi reads the chain) -------------------
mkdir -p a b
"$VHD" create a/base.vhd 16M
qemu-io -f vpc -c 'write -P 0x61 0 16M' a/base.vhd >/dev/null
"$VHD" diff child.vhd a/base.vhd
build_writer
head -c 65536 /dev/urandom | "$WRITE" child.vhd 4096
head -c $((2 * MiB)) /dev/urandom | "$WRITE" child.vhd $((9 * MiB))
"$VHD" cat child.vhd >chain.raw
mv a/base.vhd b/moved.vhd
if "$VHD" cat child.vhd >/dev/null 2>err; then
	fail "child still opens after its parent moved"
fi
"$VHD" reparent child.vhd b/moved.vhd || fail "reparent"
"$VHD" cat child.vhd >ours.raw
same chain.raw ours.raw "reparent: our view"
$PY - child.vhd b/moved.vhd theirs.raw <<'PY'
import sys, pyvhdi
f = pyvhdi.file()
f.open(sys.argv[1])
p = pyvhdi.file()
p.open(sys.argv[2])
f.set_parent(p)
open(sys.argv[3], "wb").write(f.read_buffer_at_offset(f.get_media_size(), 0))
PY
same chain.raw theirs.raw "reparent: libvhdi's view"
echo "reparent: libvhdi reads the re-parented chain as before the move"

# --- repair ----------------------------------------------------------------
"$VHD" create r.vhd 8M
qemu-io -f vpc -c 'write -P 0x71 1M 3M' r.vhd >/dev/null
cp r.vhd pristine.vhd
sz=$(stat -c %s r.vhd)
printf 'XYZ' | dd of=r.vhd bs=1 seek=$((sz - 512 + 70)) conv=notrunc \
	status=none
if "$VHD" check r.vhd >check.out; then fail "check missed the footer"; fi
grep -q "(fixable by vhd repair)" check.out ||
	fail "check does not say repair fixes it: $(cat check.out)"
"$VHD" repair r.vhd >repair.out || fail "repair: $(cat repair.out)"
grep -q "restored from the copy at offset 0" repair.out ||
	fail "repair did not say what it did: $(cat repair.out)"
same pristine.vhd r.vhd "repair of the trailing footer"
printf 'XYZ' | dd of=r.vhd bs=1 seek=3 conv=notrunc status=none
"$VHD" repair r.vhd >repair.out || fail "repair of the copy"
same pristine.vhd r.vhd "repair of the footer copy"
qemu-img compare -q -f vpc -F vpc r.vhd pristine.vhd || fail "qemu's view"
echo "repair: both footer copies restored byte for byte"

# --- map vs qemu-img map ----------------------------------------------------
"$VHD" map --json d.vhd >ours.json
qemu-img map -f vpc --output=json d.vhd >qemu.json
$PY - ours.json qemu.json <<'PY' || fail "map: data extents differ from qemu's"
import json, sys
def data(path):
    return [(e["start"], e["length"], e["offset"])
            for e in json.load(open(path)) if e["data"]]
ours, theirs = data(sys.argv[1]), data(sys.argv[2])
if ours != theirs:
    print("ours:  ", ours, "\nqemu:  ", theirs, file=sys.stderr)
    sys.exit(1)
print("map: %d data extents, equal to qemu-img map's" % len(ours))
PY
"$VHD" map d.vhd >map.txt
qemu-img map -f vpc d.vhd | sed 's|d.vhd$|d.vhd|' >qmap.txt
same qmap.txt map.txt "map: the human table"
