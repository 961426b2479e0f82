#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vhd expand` of VHDX against qemu and libvhdi:
# - a qemu-made dynamic and a fixed VHDX with qemu-written data grow:
#   qemu-img info shows the new size, qemu-img check passes, qemu-img
#   compare reads them equal to a raw `truncate` of the old flat content,
#   and libvhdi (pyvhdi) reads the same; qemu-io writes into the new tail;
# - a dynamic one to 200 GiB, whose BAT region must move to the end of
#   the file: qemu-img check passes, qemu-io reads the old data and zeros
#   at the end;
# - a 4096-byte-sector VHDX (qemu cannot open those) reads equal in
#   libvhdi after growing;
# - refused, unchanged: shrinking, a differencing image, an image with a
#   child beside it.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
$PY -c 'import pyvhdi' 2>/dev/null || {
	echo "SKIP: pyvhdi"
	exit 77
}
CRAFT="$PY $REPO/tests/interop/vhdxcraft.py"
MIB=1048576

for sub in dynamic fixed; do
	f=$sub.vhdx
	qemu-img create -q -f vhdx -o block_size=1M,subformat=$sub $f 10M
	qemu-io -f vhdx -c "write -P 0x31 0 3M" -c "write -P 0x32 $((9 * MIB)) 1M" \
		$f >/dev/null || fail "qemu-io $f"
	qemu-img convert -f vhdx -O raw $f $sub.raw
	"$VHD" expand $f 30M >/dev/null || fail "vhd expand $f"
	grep -q "virtual size: 30 MiB (31457280 bytes)" <(qemu-img info $f) ||
		fail "qemu-img info $f: $(qemu-img info $f)"
	qemu-img check -q -f vhdx $f || fail "qemu-img check $f"
	truncate -s 30M $sub.raw
	qemu-img compare -q -f vhdx -F raw $f $sub.raw ||
		fail "qemu reads the grown $f differently"
	pyvhdi_read lib.raw $f || fail "pyvhdi $f"
	same $sub.raw lib.raw "libvhdi on the grown $f"
	"$VHD" cat $f | cmp -s - $sub.raw || fail "vhd cat $f"
	qemu-io -f vhdx -c "write -P 0x33 $((25 * MIB)) 2M" $f >/dev/null ||
		fail "qemu-io write into the new tail of $f"
	qemu-img check -q -f vhdx $f || fail "qemu-img check $f after a write"
	qemu-io -f vhdx -c "read -P 0x33 $((25 * MIB)) 2M" \
		-c "read -P 0x31 0 3M" $f | grep -q "^read" ||
		fail "qemu-io read back $f"
done

# --- a BAT that must move: 200 GiB in 1 MiB blocks -------------------------
qemu-img create -q -f vhdx -o block_size=1M,subformat=dynamic big.vhdx 16M
qemu-io -f vhdx -c "write -P 0x41 0 16M" big.vhdx >/dev/null
len=$(stat -c %s big.vhdx)
"$VHD" expand big.vhdx 200G >/dev/null || fail "vhd expand big.vhdx"
grep -q "virtual size: 200 GiB" <(qemu-img info big.vhdx) ||
	fail "qemu-img info big.vhdx: $(qemu-img info big.vhdx)"
qemu-img check -q -f vhdx big.vhdx || fail "qemu-img check big.vhdx"
"$VHD" info big.vhdx | grep -q "BAT offset: *$len$" ||
	fail "BAT not moved to the old end ($len): $("$VHD" info big.vhdx)"
out=$(qemu-io -f vhdx -c "read -P 0x41 0 16M" -c "read -P 0 16M 1M" \
	-c "read -P 0 $((200 * 1024 - 1))M 1M" big.vhdx) || fail "qemu-io big"
[ "$(grep -c '^read' <<<"$out")" = 3 ] || fail "qemu-io big: $out"

# --- 4096-byte logical sectors: libvhdi --------------------------------------
qemu-img create -q -f vhdx -o block_size=1M s4k.vhdx 8M
$CRAFT sector s4k.vhdx 4096
"$VHD" cat s4k.vhdx >s4k.raw
"$VHD" expand s4k.vhdx 12M >/dev/null || fail "vhd expand s4k.vhdx"
truncate -s 12M s4k.raw
pyvhdi_read lib.raw s4k.vhdx || fail "pyvhdi s4k.vhdx"
same s4k.raw lib.raw "libvhdi on the grown 4k VHDX"

# --- refusals ----------------------------------------------------------------
h=$(sha256sum <dynamic.vhdx)
expect_fail dynamic.vhdx shrink -- "$VHD" expand dynamic.vhdx 10M
"$VHD" diff c.avhdx dynamic.vhdx >/dev/null || fail "vhd diff"
hc=$(sha256sum <c.avhdx)
expect_fail c.avhdx differencing -- "$VHD" expand c.avhdx 40M
expect_fail dynamic.vhdx c.avhdx -- "$VHD" expand dynamic.vhdx 40M
[ "$h" = "$(sha256sum <dynamic.vhdx)" ] || fail "a refusal changed it"
[ "$hc" = "$(sha256sum <c.avhdx)" ] || fail "a refusal changed c.avhdx"
echo "PASS: grown VHDX images read equal in qemu and libvhdi"
