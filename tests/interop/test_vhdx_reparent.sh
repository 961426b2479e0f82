#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vhd reparent` of VHDX children against libvhdi:
# - a child of a qemu-written parent, with writes of its own, reparented
#   onto a copy of the parent in a subdirectory: the locator is the one
#   `vhd diff` writes (parent_linkage = the copy's DataWriteGuid in lower
#   case braces, relative_path .\sub\p2.vhdx, absolute_win32_path);
#   vhdiinfo shows it, libvhdi (pyvhdi) reads the new chain equal to our
#   reader, which reads it byte-identical to before; the old parent can go;
# - a child in a subdirectory onto a sibling directory: .\..\other\x.vhdx;
# - a grandchild still opens after its parent was reparented;
# - refused, file unchanged: a VHD parent (chains do not mix), another
#   disk without ignore-id-mismatch, a cycle; with the flag it is taken.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io vhdiinfo
$PY -c 'import pyvhdi' 2>/dev/null || {
	echo "SKIP: pyvhdi"
	exit 77
}
build_writer
CRAFT="$PY $REPO/tests/interop/vhdxcraft.py"
MIB=1048576

qemu-img create -q -f vhdx -o block_size=1M,subformat=dynamic p.vhdx 16M
qemu-io -f vhdx -c "write -P 0x31 0 5M" -c "write -P 0x32 9M 3M" p.vhdx \
	>/dev/null || fail "qemu-io p.vhdx"
"$VHD" diff c.avhdx p.vhdx >/dev/null || fail "vhd diff c.avhdx"
head -c $((3 * MIB)) /dev/urandom | "$WRITE" c.avhdx $((4 * MIB + 512)) ||
	fail "vhd-write c.avhdx"
"$VHD" diff g.avhdx c.avhdx >/dev/null || fail "vhd diff g.avhdx"
"$VHD" cat c.avhdx >before.raw || fail "vhd cat before"
before=$(sha256sum <c.avhdx)

# --- onto a copy in a subdirectory -------------------------------------
mkdir sub other k
cp p.vhdx sub/p2.vhdx
"$VHD" reparent c.avhdx sub/p2.vhdx || fail "vhd reparent"
dwg=$($CRAFT info sub/p2.vhdx | cut -d' ' -f1)
[ "$(vhdx_locator c.avhdx parent_linkage)" = "{$dwg}" ] ||
	fail "linkage $(vhdx_locator c.avhdx parent_linkage), want {$dwg}"
[ "$(vhdx_locator c.avhdx relative_path)" = '.\sub\p2.vhdx' ] ||
	fail "relative_path $(vhdx_locator c.avhdx relative_path)"
abs=$(realpath sub/p2.vhdx | tr / '\\')
[ "$(vhdx_locator c.avhdx absolute_win32_path)" = "$abs" ] ||
	fail "absolute_win32_path $(vhdx_locator c.avhdx absolute_win32_path)"
rm p.vhdx
"$VHD" cat c.avhdx >after.raw || fail "vhd cat after"
same before.raw after.raw "the chain after reparent onto a copy"
"$VHD" check c.avhdx >/dev/null || fail "vhd check c.avhdx"
vhdiinfo c.avhdx >vi.txt || fail "vhdiinfo: $(cat vi.txt)"
grep -q "Disk type.*Differential" vi.txt || fail "vhdiinfo: $(cat vi.txt)"
grep -qi "Parent identifier.*$dwg" vi.txt || fail "vhdiinfo: $(cat vi.txt)"
pyvhdi_read lib.raw c.avhdx sub/p2.vhdx || fail "pyvhdi read"
# libvhdi misreads block 0 of a child without a sector bitmap there
# (see test_vhdx_create.sh): compared from block 1 on
cmp -s -i $((2 * MIB)) lib.raw after.raw ||
	fail "libvhdi reads the reparented chain differently"
"$VHD" cat g.avhdx | cmp -s - after.raw || fail "grandchild reads"

# --- from a subdirectory onto a sibling one --------------------------------
"$VHD" diff k/c.avhdx sub/p2.vhdx >/dev/null || fail "vhd diff k/c.avhdx"
cp sub/p2.vhdx other/x.vhdx
"$VHD" reparent k/c.avhdx other/x.vhdx || fail "vhd reparent k/c.avhdx"
[ "$(vhdx_locator k/c.avhdx relative_path)" = '.\..\other\x.vhdx' ] ||
	fail "relative_path $(vhdx_locator k/c.avhdx relative_path)"
pyvhdi_read lib.raw k/c.avhdx other/x.vhdx || fail "pyvhdi read k"
"$VHD" cat k/c.avhdx >ours.raw || fail "vhd cat k/c.avhdx"
"$VHD" cat other/x.vhdx | cmp -s - ours.raw || fail "k/c.avhdx reads"
cmp -s -i $((2 * MIB)) lib.raw ours.raw || fail "libvhdi reads k/c"

# --- refusals --------------------------------------------------------------
"$VHD" create v.vhd 16M >/dev/null
qemu-img create -q -f vhdx -o block_size=1M o.vhdx 16M
h=$(sha256sum <k/c.avhdx)
expect_fail k/c.avhdx mix -- "$VHD" reparent k/c.avhdx v.vhd
expect_fail k/c.avhdx ignore-id-mismatch -- "$VHD" reparent k/c.avhdx o.vhdx
expect_fail cycle -- "$VHD" reparent c.avhdx g.avhdx
[ "$(sha256sum <k/c.avhdx)" = "$h" ] || fail "a refusal changed k/c.avhdx"
"$VHD" reparent --ignore-id-mismatch k/c.avhdx o.vhdx ||
	fail "reparent --ignore-id-mismatch"
"$VHD" cat k/c.avhdx | cmp -s - <(head -c $((16 * MIB)) /dev/zero) ||
	fail "k/c.avhdx does not read its new empty parent"
[ "$before" != "$(sha256sum <c.avhdx)" ] || fail "c.avhdx never changed"
echo "PASS: reparented VHDX chains read equal in libvhdi and our reader"
