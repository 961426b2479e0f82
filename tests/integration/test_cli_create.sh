#!/bin/bash
# vhd create: dynamic and fixed images that qemu-img recognises as vpc with
# the same virtual size, and that vhd info/check describe correctly.
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/cli.sh
. "$(dirname "$0")/../lib/cli.sh"
need_cmd qemu-img
cli_tmpdir

# check_image NAME TYPE SIZE BLOCK [CREATE OPTIONS...]
check_image() {
	local name=$1 type=$2 size=$3 block=$4
	shift 4
	run 0 "$VHD" create "$@" "$name" "$size"
	[ -f "$name" ] || fail "$name not created"
	qemu-img info -f vpc --output=json "$name" >qinfo.json
	run 0 "$VHD" info --json "$name"
	cp out info.json

	# One Python run checks qemu's view and ours against the request.
	"$PY" - "$name" "$type" "$size" "$block" "$(stat -c %s "$name")" <<'PYEOF' ||
import json, sys
name, typ, size, block, fsize = sys.argv[1:]
block, fsize = int(block), int(fsize)
shift = {"K": 10, "M": 20, "G": 30, "T": 40}
n = int(size[:-1]) << shift[size[-1]] if size[-1] in shift else int(size)
n = (n + 511) // 512 * 512
q = json.load(open("qinfo.json"))
d = json.load(open("info.json"))
want = {
    "format": (q["format"], "vpc"),
    "qemu virtual-size": (q["virtual-size"], n),
    "type": (d["type"], typ),
    "current_size": (d["current_size"], n),
    "original_size": (d["original_size"], n),
    "file_size": (d["file_size"], fsize),
    "block_size": (d["block_size"], block),
    "chain": (d["chain"], [{"path": name, "type": typ}]),
    "parent": (d["parent"], None),
    "parent_uuid": (d["parent_uuid"], None),
    "locators": (d["locators"], []),
    "error": (d["error"], None),
}
if typ == "fixed":
    want["fixed file size"] = (fsize, n + 512)
else:
    want["max_table_entries"] = (d["max_table_entries"],
                                 (n + block - 1) // block)
    want["allocated_blocks"] = (d["allocated_blocks"], 0)
bad = [f"{k}: got {g!r}, want {w!r}" for k, (g, w) in want.items() if g != w]
for b in bad:
    print(f"{name}: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF
		fail "$name: metadata differs from the request"
	run 0 "$VHD" check "$name"
	[ ! -s out ] || fail "$name: check printed problems on a clean image"
	pass "create $* $name $size: $type, qemu agrees"
}

check_image dyn.vhd dynamic 64M 2097152
check_image dyn512.vhd dynamic 10M 524288 --block-size 512K
check_image dyn1m.vhd dynamic 3M 1048576 --block-size=1M
check_image dynodd.vhd dynamic 1000000 2097152 --dynamic
check_image big.vhd dynamic 100G 2097152
check_image fix.vhd fixed 8M 0 --fixed
check_image fixodd.vhd fixed 1234567 0 --fixed

# qemu sees the fixed image's data area as a plain zero disk.
qemu-img convert -f vpc -O raw fix.vhd fix.raw
cmp fix.raw <(head -c $((8 << 20)) /dev/zero) || fail "fixed image not zero"
pass "fixed image reads as zeros through qemu"

# Existing files are never replaced.
printf 'precious' >keep.vhd
run 1 "$VHD" create keep.vhd 1M
[ "$(cat keep.vhd)" = precious ] || fail "create replaced an existing file"
grep -q 'keep.vhd' err || fail "EEXIST message does not name the file"
pass "create refuses an existing path, exit 1, names it"

# A failed create leaves nothing behind.
run 1 "$VHD" create nodir/x.vhd 1M
[ ! -e nodir/x.vhd ] || fail "file left behind"
grep -q 'nodir/x.vhd' err || fail "message does not name the path"
pass "create into a missing directory fails with exit 1"
