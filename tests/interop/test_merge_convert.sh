#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# merge and convert against independent readers: a 3-level chain (4 KiB-
# aligned data, for libvhdi) is read by `vhd cat` and kept as a flat model;
# after `vhd merge LEAF BASE` the dynamic base reads the same through
# qemu-img and pyvhdi; a 1-level merge into a fixed base likewise through
# qemu; `vhd convert` of the chain to dynamic and fixed reads the same
# through qemu and pyvhdi, and the dynamic output holds only non-zero
# blocks.
. "$(dirname "$0")/lib.sh"
need qemu-img vhdiinfo
$PY -c 'import pyvhdi' 2>/dev/null || { echo "SKIP: pyvhdi"; exit 77; }
build_writer

head -c 4000000 /dev/urandom > data.bin

put() { # IMAGE OFF SKIP LEN
	dd if=data.bin of=chunk bs=64k skip="$3" count="$4" \
		iflag=skip_bytes,count_bytes status=none
	"$WRITE" "$1" "$2" < chunk || fail "vhd-write $1 $2"
}

pyflat() { # IMAGE OUT: a stand-alone image as pyvhdi reads it
	$PY - "$1" "$2" <<'PY'
import sys, pyvhdi
f = pyvhdi.file()
f.open(sys.argv[1])
size = f.get_media_size()
with open(sys.argv[2], "wb") as o:
    off = 0
    while off < size:
        n = min(1 << 20, size - off)
        o.write(f.read_buffer_at_offset(n, off))
        off += n
PY
}

chain() { # BASE_TYPE: base <- mid <- leaf, 12 MiB
	rm -f base.vhd mid.vhd leaf.vhd
	"$VHD" create --"$1" base.vhd 12M || fail "create base"
	put base.vhd 0 0 1048576
	put base.vhd 10485760 3000000 524288
	"$VHD" diff mid.vhd base.vhd || fail "diff mid"
	put mid.vhd 4096 100 8192
	put mid.vhd 2093056 200000 8192
	put mid.vhd 8388608 400000 1048576
	"$VHD" diff leaf.vhd mid.vhd || fail "diff leaf"
	put leaf.vhd 4194304 500000 4096
	put leaf.vhd 8392704 600000 8192
	put leaf.vhd 12578816 700000 4096
	"$VHD" cat leaf.vhd > model || fail "vhd cat leaf"
}

# 3 levels into a dynamic base.
chain dynamic
"$VHD" convert leaf.vhd conv-dyn.vhd dynamic || fail "convert dynamic"
"$VHD" convert --fixed leaf.vhd conv-fixed.vhd || fail "convert fixed"
"$VHD" merge leaf.vhd base.vhd || fail "merge leaf into base"
[ ! -e leaf.vhd ] && [ ! -e mid.vhd ] || fail "merged levels left behind"
"$VHD" check base.vhd || fail "check base after merge"
qemu-img convert -f vpc -O raw base.vhd q.raw
same model q.raw "qemu: 3-level merge into dynamic"
pyflat base.vhd p.raw
same model p.raw "pyvhdi: 3-level merge into dynamic"

for t in dyn fixed; do
	qemu-img convert -f vpc -O raw conv-$t.vhd q.raw
	same model q.raw "qemu: convert to $t"
	pyflat conv-$t.vhd p.raw
	same model p.raw "pyvhdi: convert to $t"
done
info=$(vhdiinfo conv-dyn.vhd) || fail "vhdiinfo conv-dyn.vhd"
grep -Eq 'Disk type[[:space:]]*: Dynamic' <<<"$info" ||
	fail "vhdiinfo: conv-dyn.vhd not dynamic: $info"
# Non-zero 2 MiB blocks of the model = blocks allocated.
want=$($PY - model <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
B = 2 << 20
print(sum(1 for o in range(0, len(d), B) if any(d[o:o + B])))
PY
)
got=$("$VHD" info --json conv-dyn.vhd | $PY -c \
	'import json,sys; print(json.load(sys.stdin)["allocated_blocks"])')
[ "$want" = "$got" ] || fail "convert allocated $got blocks, want $want"

# 1 level into a fixed base.
chain fixed
"$VHD" merge leaf.vhd || fail "merge leaf into mid"
"$VHD" merge mid.vhd || fail "merge mid into fixed base"
qemu-img convert -f vpc -O raw base.vhd q.raw
same model q.raw "qemu: merges into fixed"
pyflat base.vhd p.raw
same model p.raw "pyvhdi: merges into fixed"
echo "ok"
