#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Regenerate the seed corpora of tests/fuzz/corpus/ (committed, so the
# fuzz targets need none of these tools):
#
#	tests/fuzz/make-corpus.sh [BUILD_DIR]	(default: build)
#
# fuzz_image: small images made by our create and diff, by qemu-img, by
# hand with 4 KiB blocks holding data (vhdcraft.py), and skeletons of the
# real-world samples (their metadata as found, blocks dropped so each seed
# stays a few KiB), VHDX files by qemu-img (packed: their non-zero sectors
# only), and regress-* inputs kept from past findings.
# fuzz_control: command lines. fuzz_model: a few fixed
# byte strings (the target reads any input as a program).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$REPO/build}" && pwd)
C=$REPO/tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# The real-world samples, from the repository (tests/data), as tests see them.
. "$REPO/tests/lib/testdata.sh"
TESTDATA=$T/testdata
testdata_unpack "$TESTDATA"

# Inputs that once broke a promise (regress-*) are kept, so every smoke
# run replays them.
mkdir -p "$C"
find "$C" -type f ! -name 'regress-*' -delete
mkdir -p "$C/fuzz_image" "$C/fuzz_control" "$C/fuzz_model"
I=$C/fuzz_image

# A chain seed: "VHDCHAIN", child length (32-bit LE), child, parent.
chain() { # OUT CHILD PARENT
	python3 - "$@" <<'PY'
import os, struct, sys
out, child, parent = sys.argv[1:]
c = open(child, 'rb').read()
with open(out, 'wb') as o:
    o.write(b'VHDCHAIN' + struct.pack('<I', len(c)) + c)
    o.write(open(parent, 'rb').read())
PY
}

cd "$T"
"$BUILD/vhd" create --dynamic --block-size 512K base.vhd 1M >/dev/null
cp base.vhd "$I/ours-dynamic.vhd"
"$BUILD/vhd" create --fixed fixed.vhd 8K >/dev/null
cp fixed.vhd "$I/ours-fixed.vhd"
"$BUILD/vhd" diff child.vhd base.vhd >/dev/null
chain "$I/ours-chain.bin" child.vhd base.vhd

qemu-img create -q -f vpc -o subformat=dynamic q.vhd 1M
cp q.vhd "$I/qemu-dynamic.vhd"
qemu-img create -q -f vpc -o subformat=fixed qf.vhd 16K
cp qf.vhd "$I/qemu-fixed.vhd"

# 64 KiB disks in 4 KiB blocks: data, bitmaps and a chain in a few KiB.
"$BUILD/vhd" create --dynamic small.vhd 64K >/dev/null
python3 - "$REPO/tests/interop" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[1])
import vhdcraft as vc
with open('small.vhd', 'r+b') as f:
    f.seek(512)
    h = bytearray(f.read(1024))
    struct.pack_into('>II', h, 28, 16, 4096)  # entries, block size
    vc.fix_header(h)
    f.seek(512)
    f.write(h)
for blk, fill in ((0, 0x11), (5, 0x55), (15, 0xff)):
    vc.append_block('small.vhd', blk, b'\xff', bytes([fill]) * 4096)
vc.make_diff('smallchild.vhd', 'small.vhd', bs=4096,
             locators=((vc.W2RU, '.\\base.vhd'),
                       (vc.W2KU, 'C:\\vms\\base.vhd')),
             uname='base.vhd')
vc.append_block('smallchild.vhd', 5, b'\xa0', bytes([0x77]) * 4096,
                align=4096)
PY
cp small.vhd "$I/hand-small-blocks.vhd"
chain "$I/hand-small-chain.bin" smallchild.vhd small.vhd

# VHDX by qemu-img, packed ("VHDXPACK", see fuzz_image.c): only the
# non-zero sectors of the megabytes of 1 MiB aligned regions.
pack() { # IN OUT
	python3 - "$@" <<'PY'
import struct, sys
src, out = sys.argv[1:]
b = open(src, 'rb').read()
recs = bytearray(b'VHDXPACK' + struct.pack('<I', len(b)))
off = 0
while off < len(b):
    if not any(b[off:off + 512]):
        off += 512
        continue
    end = off
    while end < len(b) and end - off < 32768 and any(b[end:end + 512]):
        end += 512
    recs += struct.pack('<IH', off, end - off) + b[off:end]
    off = end
open(out, 'wb').write(bytes(recs))
PY
}
qemu-img create -q -f vhdx -o block_size=1M,log_size=1M qx.vhdx 4M
qemu-io -f vhdx -c 'write -P 0x5a 1M 4k' qx.vhdx >/dev/null
pack qx.vhdx "$I/qemu-dynamic.vhdx.bin"
qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M,log_size=1M \
	qxf.vhdx 1M
pack qxf.vhdx "$I/qemu-fixed.vhdx.bin"

# Real-world samples: metadata kept byte for byte, blocks dropped.
for f in "$TESTDATA"/*.vhd; do
	python3 - "$f" "$I/real-$(basename "$f" .vhd).vhd" <<'PY'
import struct, sys
src, out = sys.argv[1:]
b = bytearray(open(src, 'rb').read())
foot = b[-512:]
hdr_off = struct.unpack_from('>Q', b, 16)[0]  # from the copy at 0
h = b[hdr_off:hdr_off + 1024]
table = struct.unpack_from('>Q', h, 16)[0]
mte = struct.unpack_from('>I', h, 28)[0]
end = table + (mte * 4 + 511) // 512 * 512
for i in range(8):
    code, space, length, _, off = struct.unpack_from('>4sIIIQ', h, 576 + 24 * i)
    if code != b'\0\0\0\0' and length:
        end = max(end, off + (length + 511) // 512 * 512)
meta = b[:end]
meta[table:table + mte * 4] = b'\xff' * (mte * 4)
open(out, 'wb').write(bytes(meta) + bytes(foot))
PY
done

cat >"$C/fuzz_control/lines" <<'L'
child.vhd base.vhd
diff "my child.vhd" "dir with space/base.vhd"
create big.vhd 100G
create f.vhd 16M fixed
create d.vhd 2MiB dynamic block=512K
validate base.vhd
cancel 7
merge child.vhd base.vhd
reparent child.vhd base.vhd ignore-id-mismatch
compact d.vhd
expand d.vhd 4G
convert f.vhd g.vhd dynamic block=512K
convert d.vhd h.vhd fixed
merge child.vhd
diff "a\"b.vhd" "c\\d.vhd"
# comment
L
printf 'create x.vhd 1T dynamic block=2M\n' >"$C/fuzz_control/create"
printf '"unterminated base.vhd\n' >"$C/fuzz_control/quote"
printf 'a b c d e f g h i j\n' >"$C/fuzz_control/many"

python3 - "$C/fuzz_model" <<'PY'
import random, sys
for seed in range(6):
    r = random.Random(seed)
    data = bytes(r.randrange(256) for _ in range(24 + 40 * seed))
    open(f'{sys.argv[1]}/seed{seed}', 'wb').write(data)
PY
du -sh "$C"
