#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VHDX creation against independent oracles:
# - `vhd create` dynamic and fixed .vhdx: qemu-img info (format, size,
#   32 MiB blocks) and qemu-img check pass; qemu-io writes into them and
#   `vhd cat` reads equal to `qemu-img convert -O raw`; the layout is
#   Hyper-V's (log 1 MiB at 1 MiB, metadata at 2, BAT at 3 MiB, 512/4096
#   sectors, fixed blocks FULLY_PRESENT in order);
# - `vhd diff` .avhdx/.vhdx children (two levels) of a qemu-written
#   parent: 2 MiB blocks, the parent's sector sizes and disk id, locator
#   parent_linkage = parent DataWriteGuid (lower case, braces),
#   relative_path .\name, absolute_win32_path; libvhdi (vhdiinfo and
#   pyvhdi) opens the chain and reads it equal to qemu's view of the parent
#   past block 0 (a libvhdi quirk, below), our reader on all of it; a 4096-byte-sector parent gives a 4096-byte-sector child;
# - refused: VHD child of a VHDX, VHDX child of a VHD, existing target,
#   block size outside 1-256 MiB; nothing is left behind.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io vhdiinfo
$PY -c 'import pyvhdi' 2>/dev/null || { echo "SKIP: pyvhdi"; exit 77; }
CRAFT="$PY $REPO/tests/interop/vhdxcraft.py"
MIB=1048576
cd "$T"

# layout FILE: "log_off log_len bat_off bat_len meta_off lss pss bs flags"
layout() {
	$PY - "$1" <<'PY'
import struct, sys, uuid
f = open(sys.argv[1], 'rb')
def rd(n, off):
    f.seek(off)
    return f.read(n)
assert rd(8, 0) == b'vhdxfile'
hs = [rd(4096, o) for o in (65536, 131072)]
h = max(hs, key=lambda b: struct.unpack_from('<Q', b, 8)[0])
assert h[48:64] == b'\0' * 16, 'log guid not zero'
log_len, log_off = struct.unpack_from('<IQ', h, 68)
r = rd(65536, 196608)
assert r == rd(65536, 262144), 'region tables differ'
regs = {}
for i in range(struct.unpack_from('<I', r, 8)[0]):
    e = r[16 + 32 * i:48 + 32 * i]
    regs[str(uuid.UUID(bytes_le=e[:16]))] = struct.unpack_from('<QII', e, 16)
bat = regs['2dc27766-f623-4200-9d64-115e9bfd4a08']
meta = regs['8b7ca206-4790-4b9a-b8fe-575f050f886e']
t = rd(65536, meta[0])
items = {}
for i in range(struct.unpack_from('<H', t, 10)[0]):
    e = t[32 + 32 * i:64 + 32 * i]
    o, n, fl = struct.unpack_from('<III', e, 16)
    items[str(uuid.UUID(bytes_le=e[:16]))] = (rd(n, meta[0] + o), fl)
bs, fp = struct.unpack('<II', items['caa16737-fa36-4d43-b3b6-33f0aa44e76b'][0])
lss = struct.unpack('<I', items['8141bf1d-a96f-4709-ba47-f233a8faab5f'][0])[0]
pss = struct.unpack('<I', items['cda348c7-445d-4471-9cc9-e9885251c556'][0])[0]
print(log_off, log_len, bat[0], bat[1], meta[0], lss, pss, bs, fp,
      bat[2], meta[2])
PY
}

head -c $((8 * MIB)) /dev/urandom >data.bin

# --- dynamic -------------------------------------------------------------
"$VHD" create d.vhdx 100M >/dev/null || fail "create d.vhdx"
qemu-img info d.vhdx >info.txt
grep -q "^file format: vhdx" info.txt || fail "qemu format: $(cat info.txt)"
grep -q "(104857600 bytes)" info.txt || fail "qemu size: $(cat info.txt)"
grep -q "^cluster_size: 33554432" info.txt || fail "block: $(cat info.txt)"
qemu-img check -f vhdx d.vhdx >/dev/null || fail "qemu-img check d.vhdx"
l=$(layout d.vhdx)
assert_layout() { # WHAT EXPECTED GOT
	[ "$2" = "$3" ] || fail "$1 layout: expected '$2', got '$3'"
}
assert_layout dynamic "$MIB $MIB $((3 * MIB)) $MIB $((2 * MIB)) 512 4096 \
$((32 * MIB)) 0 1 1" "$l"
assert_layout "dynamic size" $((4 * MIB)) "$(stat -c %s d.vhdx)"
"$VHD" cat d.vhdx | cmp -s - <(head -c 104857600 /dev/zero) ||
	fail "new dynamic image does not read zeros"
qemu-io -f vhdx -c "write -s data.bin 0 $((8 * MIB))" \
	-c "write -P 0x77 $((70 * MIB)) 12345" d.vhdx >/dev/null ||
	fail "qemu-io write d.vhdx"
qemu-img check -f vhdx d.vhdx >/dev/null || fail "check after qemu writes"
qemu-img convert -f vhdx -O raw d.vhdx d.raw
"$VHD" cat d.vhdx >ours.raw || fail "vhd cat d.vhdx"
same d.raw ours.raw "dynamic VHDX written by qemu"

# odd size: rounded up to a sector as for VHD
"$VHD" create odd.vhdx 1000001 >/dev/null || fail "create odd.vhdx"
grep -q "(1000448 bytes)" <(qemu-img info odd.vhdx) || fail "odd size"
qemu-img check -f vhdx odd.vhdx >/dev/null || fail "check odd.vhdx"

# --- fixed ---------------------------------------------------------------
"$VHD" create --fixed f.vhdx 50M >/dev/null || fail "create f.vhdx"
qemu-img check -f vhdx f.vhdx >/dev/null || fail "qemu-img check f.vhdx"
l=$(layout f.vhdx)
assert_layout fixed "$MIB $MIB $((3 * MIB)) $MIB $((2 * MIB)) 512 4096 \
$((32 * MIB)) 1 1 1" "$l"
assert_layout "fixed size" $((4 * MIB + 64 * MIB)) "$(stat -c %s f.vhdx)"
grep -q "^Allocated blocks: *2$" <("$VHD" info f.vhdx) ||
	fail "fixed blocks not all present: $("$VHD" info f.vhdx)"
qemu-io -f vhdx -c "write -s data.bin $((30 * MIB)) $((4 * MIB))" f.vhdx \
	>/dev/null || fail "qemu-io write f.vhdx"
# qemu writes in place: the file did not grow
assert_layout "fixed size after writes" $((68 * MIB)) "$(stat -c %s f.vhdx)"
qemu-img convert -f vhdx -O raw f.vhdx f.raw
"$VHD" cat f.vhdx >ours.raw || fail "vhd cat f.vhdx"
same f.raw ours.raw "fixed VHDX written by qemu"

# --- differencing --------------------------------------------------------
dwg=$($CRAFT info d.vhdx | cut -d' ' -f1)
"$VHD" diff c.avhdx d.vhdx >/dev/null || fail "diff c.avhdx"
"$VHD" diff c2.vhdx c.avhdx >/dev/null || fail "diff c2.vhdx"
[ "$($CRAFT info d.vhdx | cut -d' ' -f1)" = "$dwg" ] ||
	fail "parent DataWriteGuid changed by diff"
l=$(layout c.avhdx)
assert_layout child "$MIB $MIB $((3 * MIB)) $MIB $((2 * MIB)) 512 4096 \
$((2 * MIB)) 2 1 1" "$l"
assert_layout "child linkage" "{$dwg}" "$(vhdx_locator c.avhdx parent_linkage)"
assert_layout "child relative_path" '.\d.vhdx' \
	"$(vhdx_locator c.avhdx relative_path)"
abs=$(realpath d.vhdx | tr / '\\')
assert_layout "child absolute_win32_path" "$abs" \
	"$(vhdx_locator c.avhdx absolute_win32_path)"
cid=$($CRAFT info c.avhdx | cut -d' ' -f1)
assert_layout "grandchild linkage" "{$cid}" \
	"$(vhdx_locator c2.vhdx parent_linkage)"
# the child keeps the parent's disk id (Page 83) and size
[ "$($CRAFT info c2.vhdx | cut -d' ' -f2-)" = \
	"104857600 2097152 512 4096" ] || fail "child params: $($CRAFT info c2.vhdx)"
vhdiinfo c2.vhdx >vi.txt || fail "vhdiinfo c2.vhdx: $(cat vi.txt)"
grep -q "Disk type.*Differential" vi.txt || fail "vhdiinfo: $(cat vi.txt)"
grep -qi "Parent identifier.*$cid" vi.txt || fail "vhdiinfo: $(cat vi.txt)"
# libvhdi 20210425 reads a chunk's sector bitmap even when its BAT entry
# is SB_BLOCK_NOT_PRESENT (offset 0: the file identifier), so it shows
# zeros for some sectors of block 0 of any child without a bitmap (a
# vhdxcraft child too). Compare from block 1 on (its bitmap slice is the
# zero part of the identifier); our reader is compared on everything.
pyvhdi_read lib.raw c2.vhdx c.avhdx d.vhdx || fail "pyvhdi read"
cmp -s -i $((2 * MIB)) d.raw lib.raw ||
	fail "libvhdi reading our two-level chain differs past block 0"
"$VHD" cat c2.vhdx >ours.raw || fail "vhd cat c2.vhdx"
same d.raw ours.raw "our reader on our two-level chain"
"$VHD" check c2.vhdx >/dev/null || fail "vhd check c2.vhdx"

# in a subdirectory: relative path with ..
mkdir sub
"$VHD" diff sub/s.avhdx d.vhdx >/dev/null || fail "diff sub/s.avhdx"
assert_layout "subdir relative_path" '.\..\d.vhdx' \
	"$(vhdx_locator sub/s.avhdx relative_path)"
"$VHD" cat sub/s.avhdx | cmp -s - d.raw || fail "sub/s.avhdx reads"

# 4096-byte logical sectors come from the parent
qemu-img create -q -f vhdx -o block_size=8M b4k.vhdx 16M
$CRAFT sector b4k.vhdx 4096
"$VHD" diff c4k.avhdx b4k.vhdx >/dev/null || fail "diff c4k.avhdx"
[ "$($CRAFT info c4k.avhdx | cut -d' ' -f2-)" = \
	"16777216 2097152 4096 4096" ] || fail "4k child: $($CRAFT info c4k.avhdx)"
pyvhdi_read lib.raw c4k.avhdx b4k.vhdx || fail "pyvhdi read 4k"
cmp -s -i $((2 * MIB)) <("$VHD" cat c4k.avhdx) lib.raw || fail "4k chain reads"

# --- refusals ------------------------------------------------------------
"$VHD" create v.vhd 8M >/dev/null
expect_fail v.vhd "is a VHD" mix -- "$VHD" diff x.avhdx v.vhd
expect_fail d.vhdx "is a VHDX" mix -- "$VHD" diff x.vhd d.vhdx
expect_fail c.avhdx exists -- "$VHD" create c.avhdx 8M
expect_fail "1 MiB to 256 MiB" -- "$VHD" create --block-size 512K x.vhdx 8M
[ ! -e x.avhdx ] && [ ! -e x.vhd ] && [ ! -e x.vhdx ] ||
	fail "a refused command left a file"
[ -z "$(ls -A | grep '^\.vhdfs-tmp')" ] || fail "temporary left"
echo "PASS: VHDX images we create open in qemu and libvhdi and read equal"
