#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vhd compact` of a dynamic VHDX against qemu: blocks of zeros (written
# by qemu and by us) are dropped, the disk usage falls by their size, the
# live blocks move down and the file is cut right after the last of them
# (headers, log, regions, then the two live blocks); qemu-img check passes
# and qemu-img compare reads it equal to before; a rerun changes nothing.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
MIB=1048576

qemu-img create -q -f vhdx -o block_size=1M,subformat=dynamic d.vhdx 16M
qemu-io -f vhdx -c "write -P 0x11 0 1M" -c "write -P 0 2M 2M" \
	-c "write -P 0x22 $((9 * MIB + 512)) 4096" \
	-c "write -P 0 12M 1M" d.vhdx >/dev/null
qemu-img convert -f vhdx -O raw d.vhdx before.raw
grep -q "Allocated blocks: *5$" <("$VHD" info d.vhdx) ||
	fail "setup: $("$VHD" info d.vhdx)"
used=$(du -B1 d.vhdx | cut -f1)
len=$(stat -c %s d.vhdx)
out=$("$VHD" compact d.vhdx) || fail "vhd compact"
echo "$out"
grep -q "3145728 bytes reclaimed" <<<"$out" || fail "reclaimed: $out"
grep -q "Allocated blocks: *2$" <("$VHD" info d.vhdx) ||
	fail "after: $("$VHD" info d.vhdx)"
[ "$(du -B1 d.vhdx | cut -f1)" = $((used - 3 * MIB)) ] ||
	fail "disk usage $(du -B1 d.vhdx | cut -f1), was $used"
# end of the last structure qemu made (log and regions), then 2 blocks
want=$(python3 -c '
import struct, sys
sys.path.insert(0, sys.argv[1])
import vhdxcraft as c
with open(sys.argv[2], "rb") as f:
    _, h = c.current_header(f)
    log_len, log_off = struct.unpack_from("<IQ", h, 68)
    ends = [o + n for o, n in c.regions(f).values()] + [log_off + log_len]
print(max(ends) + 2 * c.MIB)' "$REPO/tests/interop" d.vhdx)
new_len=$(stat -c %s d.vhdx)
echo "file length: $len -> $new_len bytes"
[ "$new_len" = "$want" ] || fail "file length $new_len, expected $want"
[ "$new_len" -lt "$len" ] || fail "the file was not cut"
qemu-img check -q -f vhdx d.vhdx || fail "qemu-img check"
qemu-img compare -q -f vhdx -F raw d.vhdx before.raw ||
	fail "qemu reads the compacted image differently"
sum=$(sha256sum <d.vhdx)
out=$("$VHD" compact d.vhdx) || fail "second vhd compact"
grep -q " 0 bytes reclaimed" <<<"$out" || fail "second run: $out"
[ "$(sha256sum <d.vhdx)" = "$sum" ] || fail "second run changed the file"
"$VHD" check d.vhdx || fail "vhd check after compact"
echo "PASS: a compacted dynamic VHDX reads equal in qemu"
