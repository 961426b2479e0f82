#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vhd convert` between VHD and VHDX against independent readers:
# - a 2-level VHD chain into a dynamic and a fixed .vhdx: qemu-img check
#   passes, qemu-img compare equals the chain's flat model (and libvhdi
#   reads it equal); the dynamic one allocates only the blocks holding
#   non-zero data (a block the child overwrote with zeros is not copied);
# - a differencing VHDX chain (.avhdx over .vhdx) into a .vhd (qemu vpc)
#   and a .vhdx (qemu vhdx), both equal to the model;
# - a 4096-byte-sector VHDX keeps its logical sector size;
# - converting onto an existing file is refused and changes nothing.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
$PY -c 'import pyvhdi' 2>/dev/null || { echo "SKIP: pyvhdi"; exit 77; }
build_writer
MIB=1048576

head -c $((4 * MIB)) /dev/urandom >data.bin

# put IMG MODEL OFF LEN SKIP: data.bin bytes (or zeros when SKIP is z)
# into IMG through libvhd and into MODEL
put() {
	local src=data.bin skip=$5
	if [ "$5" = z ]; then src=/dev/zero skip=0; fi
	dd if=$src bs=64k skip="$skip" count="$4" \
		iflag=skip_bytes,count_bytes status=none |
		"$WRITE" "$1" "$3" || fail "vhd-write $1 $3"
	dd if=$src of="$2" bs=64k skip="$skip" count="$4" seek="$3" \
		iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
		status=none
}

# qemu_eq IMG FMT MODEL WHAT
qemu_eq() {
	if [ "$2" = vhdx ]; then # (qemu has no check of vpc)
		qemu-img check -q -f vhdx "$1" || fail "qemu-img check $1 ($4)"
	fi
	qemu-img compare -q -f "$2" -F raw "$1" "$3" ||
		fail "$4: qemu-img compare $1 differs from the model"
}

# --- a VHD chain into VHDX -----------------------------------------------
"$VHD" create --block-size 2M base.vhd 40M >/dev/null
truncate -s 40M model
put base.vhd model 1000 $((3 * MIB)) 0      # blocks 0 and 1
put base.vhd model $((10 * MIB)) 4096 7     # block 5
"$VHD" diff child.vhd base.vhd >/dev/null
put child.vhd model $((MIB - 300)) 5000 11  # across blocks 0 and 1
put child.vhd model $((10 * MIB)) 4096 z    # block 5 back to zeros
put child.vhd model $((40 * MIB - 512)) 512 3 # the last sector
"$VHD" convert --block-size 2M child.vhd dyn.vhdx dynamic ||
	fail "convert to a dynamic VHDX"
"$VHD" convert child.vhd fix.vhdx fixed || fail "convert to a fixed VHDX"
for f in dyn fix; do
	qemu_eq $f.vhdx vhdx model "VHD chain to $f VHDX"
	pyvhdi_read lib.raw $f.vhdx || fail "pyvhdi $f.vhdx"
	same model lib.raw "$f.vhdx: libvhdi"
	"$VHD" check $f.vhdx >/dev/null || fail "vhd check $f.vhdx"
done
grep -q "Type: *dynamic" <("$VHD" info dyn.vhdx) || fail "dyn.vhdx type"
grep -q "Type: *fixed" <("$VHD" info fix.vhdx) || fail "fix.vhdx type"
# blocks 0, 1 and 19 hold data; block 5 is zeros again
grep -q "Allocated blocks: *3$" <("$VHD" info dyn.vhdx) ||
	fail "dynamic VHDX blocks: $("$VHD" info dyn.vhdx)"

# --- a VHDX chain into VHD and VHDX --------------------------------------
"$VHD" create --block-size 1M xb.vhdx 24M >/dev/null
truncate -s 24M xmodel
put xb.vhdx xmodel 0 $((2 * MIB)) 5
"$VHD" diff xc.avhdx xb.vhdx >/dev/null
put xc.avhdx xmodel 4096 8192 99
put xc.avhdx xmodel $((20 * MIB)) $((MIB)) 1
"$VHD" convert xc.avhdx x.vhd dynamic || fail "VHDX chain to VHD"
qemu_eq x.vhd vpc xmodel "VHDX chain to a dynamic VHD"
"$VHD" convert xc.avhdx x.vhdx dynamic || fail "VHDX chain to VHDX"
qemu_eq x.vhdx vhdx xmodel "VHDX chain to a dynamic VHDX"
"$VHD" convert x.vhd back.vhdx fixed || fail "VHD to fixed VHDX"
qemu_eq back.vhdx vhdx xmodel "VHD round trip"

# --- 4096-byte logical sectors are kept -----------------------------------
qemu-img create -q -f vhdx -o block_size=8M,log_size=1M b4k.vhdx 16M
qemu-io -f vhdx -c "write -P 0x5a 4096 1M" b4k.vhdx >/dev/null
$PY "$REPO/tests/interop/vhdxcraft.py" sector b4k.vhdx 4096
"$VHD" cat b4k.vhdx >m4k
"$VHD" convert b4k.vhdx c4k.vhdx dynamic || fail "convert a 4k VHDX"
# (qemu opens no 4 KiB-sector VHDX: our reader and libvhdi)
"$VHD" cat c4k.vhdx | cmp - m4k || fail "4k VHDX: vhd cat differs"
pyvhdi_read lib.raw c4k.vhdx || fail "pyvhdi c4k.vhdx"
same m4k lib.raw "4k VHDX: libvhdi"
"$VHD" info c4k.vhdx | grep -q "Logical sector size: *4096" ||
	fail "logical sector size not kept: $("$VHD" info c4k.vhdx)"

# --- an existing target is refused, unchanged ------------------------------
sha=$(sha256sum <x.vhdx)
expect_fail exists -- "$VHD" convert child.vhd x.vhdx dynamic
[ "$(sha256sum <x.vhdx)" = "$sha" ] || fail "existing target changed"
echo "PASS: vhd convert between VHD and VHDX reads equal in qemu and libvhdi"
