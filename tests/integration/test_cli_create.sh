#!/bin/bash
# vhd create: dynamic and fixed images that qemu-img recognises as vpc with
# the same virtual size, and that vhd info/check describe correctly.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
REPO=${REPO:-$(cd "$here/../.." && pwd)}
VHD=${VHD:-$REPO/build/vhd}
case $VHD in /*) ;; *) VHD=$PWD/$VHD ;; esac
PY=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }
[ -x "$VHD" ] || fail "vhd CLI not found at $VHD"
command -v qemu-img >/dev/null || { echo "skip: qemu-img missing"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vhd-cli-create.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# run STATUS CMD...: stdout to $tmp/out, stderr to $tmp/err, exact status.
run() {
	local want=$1 st=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || st=$?
	if [ "$st" -ne "$want" ]; then
		cat "$tmp/out" "$tmp/err" >&2
		fail "'$*' exited $st, want $want"
	fi
}

# jget FILE EXPR: evaluate a Python expression over the JSON in FILE as d.
jget() {
	PYTHONIOENCODING=utf-8 "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}

# check_image NAME TYPE SIZE BLOCK [CREATE OPTIONS...]
check_image() {
	local name=$1 type=$2 size=$3 block=$4
	shift 4
	run 0 "$VHD" create "$@" "$name" "$size"
	[ -f "$name" ] || fail "$name not created"

	qemu-img info -f vpc --output=json "$name" >qinfo.json
	[ "$(jget qinfo.json 'd["format"]')" = vpc ] ||
		fail "$name: qemu-img format is not vpc"
	local bytes
	bytes=$("$PY" -c 'import sys
s = sys.argv[1]
m = {"K": 10, "M": 20, "G": 30, "T": 40}
n = int(s[:-1]) << m[s[-1]] if s[-1] in m else int(s)
print((n + 511) // 512 * 512)' "$size")
	[ "$(jget qinfo.json 'd["virtual-size"]')" = "$bytes" ] ||
		fail "$name: qemu-img virtual size $(jget qinfo.json \
'd["virtual-size"]') != $bytes"

	run 0 "$VHD" info --json "$name"
	cp out info.json
	[ "$(jget info.json 'd["type"]')" = "$type" ] || fail "$name: type"
	[ "$(jget info.json 'd["current_size"]')" = "$bytes" ] ||
		fail "$name: current_size"
	[ "$(jget info.json 'd["original_size"]')" = "$bytes" ] ||
		fail "$name: original_size"
	[ "$(jget info.json 'd["file_size"]')" = "$(stat -c %s "$name")" ] ||
		fail "$name: file_size"
	[ "$(jget info.json 'd["block_size"]')" = "$block" ] ||
		fail "$name: block_size"
	[ "$(jget info.json 'd["chain"]')" = \
		"[{'path': '$name', 'type': '$type'}]" ] || fail "$name: chain"
	[ "$(jget info.json 'd["parent"]')" = None ] || fail "$name: parent"
	if [ "$type" = fixed ]; then
		[ "$(stat -c %s "$name")" = $((bytes + 512)) ] ||
			fail "$name: fixed file size is not size + footer"
	else
		local entries=$(((bytes + block - 1) / block))
		[ "$(jget info.json 'd["max_table_entries"]')" = "$entries" ] ||
			fail "$name: max_table_entries"
		[ "$(jget info.json 'd["allocated_blocks"]')" = 0 ] ||
			fail "$name: allocated_blocks"
	fi
	run 0 "$VHD" check "$name"
	[ ! -s out ] || fail "$name: check printed problems on a clean image"
	pass "create $* $name $size: $type, $bytes bytes, qemu agrees"
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
