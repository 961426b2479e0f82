#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VHDX writes through libvhd (vhd-write) against independent oracles:
# - dynamic and fixed VHDX we made and wrote (unaligned, across blocks,
#   the last byte): qemu-img check passes, qemu-img convert reads equal to
#   a flat model and to `vhd cat`; the fixed file does not grow; qemu can
#   write on top and we read what it wrote;
# - a differencing chain (.avhdx over a .vhdx, then a .vhdx grandchild)
#   written by us: libvhdi (pyvhdi) reads each level equal to the model
#   and to `vhd cat`; the parents are unchanged by writes to a child;
# - 4096-byte logical sectors: a child of a 4 KiB-sector parent, written
#   with partial sectors, reads equal in libvhdi;
# - every image is left with an empty log (qemu opens it read-only, which
#   it refuses while a log is pending);
# - a crashed writer (our write sequence cut after every write): our
#   in-memory replay and qemu's `check -r all` replay read the same.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
$PY -c 'import pyvhdi' 2>/dev/null || { echo "SKIP: pyvhdi"; exit 77; }
build_writer
MIB=1048576

head -c $((8 * MIB)) /dev/urandom >data.bin

# put IMG MODEL OFF LEN SKIP: data.bin bytes into IMG (ours) and MODEL
put() {
	dd if=data.bin bs=64k skip="$5" count="$4" iflag=skip_bytes,count_bytes \
		status=none | "$WRITE" "$1" "$3" || fail "vhd-write $1 $3"
	dd if=data.bin of="$2" bs=64k skip="$5" count="$4" seek="$3" \
		iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
		status=none
}

check_qemu() { # IMG MODEL WHAT
	qemu-img check -q -f vhdx "$1" || fail "qemu-img check $1 ($3)"
	qemu-img convert -f vhdx -O raw "$1" q.raw || fail "qemu convert $1"
	same "$2" q.raw "$3: qemu"
	"$VHD" cat "$1" >ours.raw || fail "vhd cat $1"
	same "$2" ours.raw "$3: vhd cat"
}

# --- dynamic -------------------------------------------------------------
"$VHD" create d.vhdx 100M >/dev/null
truncate -s 100M d.model
put d.vhdx d.model 1000 5000 0
put d.vhdx d.model $((32 * MIB - 3000)) $((2 * MIB)) 7 # across blocks
put d.vhdx d.model $((100 * MIB - 1)) 1 99
put d.vhdx d.model 1500 700 12345 # into a block we already have
check_qemu d.vhdx d.model "dynamic"
qemu-io -f vhdx -c "write -P 0x3c $((64 * MIB + 512)) 4096" d.vhdx \
	>/dev/null || fail "qemu-io on our written image"
printf '\x3c%.0s' $(seq 4096) | dd of=d.model bs=1 seek=$((64 * MIB + 512)) \
	conv=notrunc status=none
check_qemu d.vhdx d.model "dynamic after a qemu write"

# --- fixed ---------------------------------------------------------------
"$VHD" create --fixed f.vhdx 40M >/dev/null
size=$(stat -c %s f.vhdx)
truncate -s 40M f.model
put f.vhdx f.model 3 $((5 * MIB)) 100
put f.vhdx f.model $((40 * MIB - 4096)) 4096 9
check_qemu f.vhdx f.model "fixed"
[ "$(stat -c %s f.vhdx)" = "$size" ] || fail "fixed file grew"

# --- differencing ---------------------------------------------------------
cp d.model c.model
"$VHD" diff c.avhdx d.vhdx >/dev/null
dsha=$(sha256sum <d.vhdx)
put c.avhdx c.model 100 3000 5         # partial sectors, block 0
put c.avhdx c.model $((3 * MIB)) $((MIB)) 0 # block 1, half
put c.avhdx c.model $((6 * MIB)) $((2 * MIB)) 77 # block 3, whole
put c.avhdx c.model $((99 * MIB)) 4096 4 # last block
"$VHD" cat c.avhdx >ours.raw || fail "vhd cat c.avhdx"
same c.model ours.raw "child: vhd cat"
pyvhdi_read lib.raw c.avhdx d.vhdx || fail "pyvhdi c.avhdx"
same c.model lib.raw "child: libvhdi"
[ "$(sha256sum <d.vhdx)" = "$dsha" ] || fail "parent changed"
"$VHD" check c.avhdx >/dev/null || fail "vhd check c.avhdx"

cp c.model g.model
"$VHD" diff g.vhdx c.avhdx >/dev/null
csha=$(sha256sum <c.avhdx)
put g.vhdx g.model $((3 * MIB + 512)) 1024 50
put g.vhdx g.model $((50 * MIB)) $((3 * MIB)) 1
"$VHD" cat g.vhdx >ours.raw || fail "vhd cat g.vhdx"
same g.model ours.raw "grandchild: vhd cat"
pyvhdi_read lib.raw g.vhdx c.avhdx d.vhdx || fail "pyvhdi g.vhdx"
same g.model lib.raw "grandchild: libvhdi"
[ "$(sha256sum <c.avhdx)" = "$csha" ] || fail "child changed"
grep -q "Allocated blocks: *3$" <("$VHD" info g.vhdx) ||
	fail "grandchild blocks: $("$VHD" info g.vhdx)"
# --- 4096-byte logical sectors (a child of a qemu image set to 4096) --
qemu-img create -q -f vhdx -o block_size=8M b4k.vhdx 16M
qemu-io -f vhdx -c "write -P 0x5a 0 16M" b4k.vhdx >/dev/null
$PY "$REPO/tests/interop/vhdxcraft.py" sector b4k.vhdx 4096
"$VHD" cat b4k.vhdx >c4k.model
"$VHD" diff c4k.avhdx b4k.vhdx >/dev/null
put c4k.avhdx c4k.model 1000 $((MIB)) 3 # partial 4 KiB sectors
put c4k.avhdx c4k.model $((5 * MIB)) 8192 11
"$VHD" cat c4k.avhdx >ours.raw || fail "vhd cat c4k.avhdx"
same c4k.model ours.raw "4k child: vhd cat"
pyvhdi_read lib.raw c4k.avhdx b4k.vhdx || fail "pyvhdi c4k.avhdx"
same c4k.model lib.raw "4k child: libvhdi"

# --- a crashed writer: cut our write sequence after every write ---------
# For each cut, our reader (replaying the log in memory) and qemu after
# `qemu-img check -r all` (replaying it in the file) read the same; some
# cuts leave a log entry to replay.
"$VHD" create --block-size 1M cut.vhdx 8M >/dev/null
put cut.vhdx /dev/null 0 $((MIB)) 0 # a block before the crash
cp cut.vhdx cut.orig
n=0 replayed=0
while :; do
	cp cut.orig cut.vhdx
	if dd if=data.bin bs=64k count=3 status=none |
		VHD_WRITE_CUT=$n "$WRITE" cut.vhdx $((MIB - 100000)) \
			2>/dev/null; then
		break
	fi
	"$VHD" cat cut.vhdx >ours.raw || fail "cut $n: vhd cat: $(cat ours.raw)"
	if "$VHD" info cut.vhdx | grep -qi "replayed"; then
		replayed=$((replayed + 1))
	fi
	cp cut.vhdx q.vhdx
	qemu-img check -q -r all -f vhdx q.vhdx >/dev/null 2>&1 || true
	qemu-img convert -f vhdx -O raw q.vhdx q.raw ||
		fail "cut $n: qemu cannot open the image"
	same q.raw ours.raw "cut after write $n: qemu vs vhd cat"
	n=$((n + 1))
	[ $n -lt 200 ] || fail "the write sequence never completed"
done
[ $replayed -gt 0 ] || fail "no cut left a log to replay ($n cuts)"
echo "cut sweep: $n cuts, $replayed with a log replayed"
echo "PASS: VHDX we write reads equal in qemu, libvhdi and our reader"
