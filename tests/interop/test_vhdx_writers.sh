#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# VHDX images laid out as other writers lay them out
# (tests/interop/vhdx_writers_cases.py, crafted with vhdxcraft.build):
#  - Hyper-V New-VHD dynamic: log at 1 MiB, metadata at 2, BAT at 3
#    (openvmm's order), 32 MiB blocks, 512/4096 sectors, a partial last
#    block, blocks allocated out of order, the Windows CHS item (optional,
#    and required: openvmm knows it), an optional user item and an
#    optional unknown region, both kept byte for byte by our writes; an
#    optional region right past the end of the file (new blocks go after
#    it); the incomplete-file item as openvmm writes it, optional
#    (opens) and required (refused with a clear error, as is an unknown
#    required region);
#  - Hyper-V checkpoints <disk>_<GUID>.avhdx, 2 MiB blocks, all five
#    locator keys in varied orders, parent_linkage2 zero and a real
#    (non-matching) GUID, paths with and without \\?\, two levels; a
#    moved checkpoint found through absolute_win32_path's file name
#    beside it; one naming its parent in another case, its linkage in
#    upper-case braces; one whose parent carries parent_linkage2 (a
#    merge in progress); one larger than its parent;
#  - 4096-byte logical sectors (base with 1 MiB blocks, chunk ratio
#    32768, size no block multiple; child with 4 KiB bitmaps; logical 4096
#    over physical 512); 256 MiB blocks; a 4 GiB + 8 MiB disk with blocks
#    across the first chunk boundary and payload past 4 GiB in the file,
#    and a child with sector bitmaps in chunks 0 and 1;
#  - Disk2VHD: identical headers (equal sequence numbers), every block
#    allocated in disk order in a dynamic disk;
#  - block states UNDEFINED/ZERO/UNMAPPED (with and without an offset to
#    garbage) in a base and a child; Windows fixed (all state 6), qemu's
#    fixed (ZERO entries keeping offsets);
#  - a crashed Hyper-V's log: a multi-entry sequence wrapping around the
#    ring, an entry with several descriptors, a zero descriptor, an entry
#    without descriptors, stale valid entries of older sequences.
# Each reads (vhd cat; the mount; ranges of the 4 GiB ones) as the crafter
# says it must, as libvhdi and qemu-img (after its own log replay) read it
# where they can; vhd check finds nothing. Writes through the mount into
# every leaf land where they belong, parents do not change, qemu-img check
# passes, the unknown items and regions survive, and no block overlaps
# another structure (vhdxcraft.py layout).
# Sources of the layouts: [MS-VHDX]; microsoft/openvmm vm/devices/storage/
# vhdx (create.rs: region order, items, incomplete marker; known_meta.rs:
# CHS and PMEM items known); qemu block/vhdx.c (identical headers "as
# Disk2VHD writes", ZERO entries of fixed images); libvhdi issue 17 (a
# 4096/512 image); docs/vhdx-format.md.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img fusermount3 getfattr
require_bins
$PY -c 'import pyvhdi' 2>/dev/null || skip "python3-libvhdi (pyvhdi)"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
CRAFT="$PY $REPO/tests/interop/vhdxcraft.py"
(cd "$REPO/tests/interop" && $PY vhdx_writers_cases.py "$B") ||
	fail "building images"
cd "$B"

# rcmp WHAT RANGES EXPECTED ACTUAL|-CHAIN: byte ranges (off:len,...) of
# ACTUAL (a file; or, with -, libvhdi's view of CHAIN) equal EXPECTED's.
# libvhdi is read 64 KiB at a time (its reads across levels can mix them).
rcmp() {
	$PY - "$@" <<'PY' || fail "$1"
import sys, pyvhdi
what, ranges, exp, act = sys.argv[1:5]
if act.startswith("-"):
    objs = []
    for p in act[1:].split(","):
        f = pyvhdi.file()
        f.open(p)
        objs.append(f)
    for c, p in zip(objs, objs[1:]):
        c.set_parent(p)
    read = lambda n, o: objs[0].read_buffer_at_offset(n, o)
    size = objs[0].get_media_size()
else:
    a = open(act, "rb")
    read = lambda n, o: (a.seek(o), a.read(n))[1]
    a.seek(0, 2)
    size = a.tell()
e = open(exp, "rb")
e.seek(0, 2)
if e.tell() != size:
    sys.exit("%s: size %d, expected %d" % (what, size, e.tell()))
if ranges == "-":
    ranges = "0:%d" % size
for r in ranges.split(","):
    off, n = map(int, r.split(":"))
    for o in range(off, off + n, 65536):
        k = min(65536, off + n - o)
        e.seek(o)
        if read(k, o) != e.read(k):
            sys.exit("%s: differs in [%d, %d)" % (what, o, o + k))
PY
}

log_ok=yes # until the writes: see verify
# verify NAME CHAIN QEMU PYVHDI RANGES: every reader agrees with NAME.flat.
verify() {
	local n=$1 chain=$2 q=$3 p=$4 r=$5 out
	# A crashed writer's log, until a writable open replays it, is the
	# one problem check may report (fixable, as qemu-img check -r all).
	if ! out=$("$VHD" check "$n" 2>&1); then
		[ "$log_ok" = yes ] &&
			! grep -Ev "problems? found$" <<<"$out" |
			grep -qv "log is not empty.*(fixable by vhd repair)" ||
			fail "vhd check $n: $out"
	fi
	"$VHD" info "$n" >"$T/info" || fail "vhd info $n"
	grep -Eq "^Virtual size: +$(stat -c %s "$n.flat") bytes" "$T/info" ||
		fail "vhd info $n: size: $(cat "$T/info")"
	grep -q "^Format: *VHDX" "$T/info" || fail "vhd info $n: format"
	if [ "$r" = - ]; then
		"$VHD" cat "$n" >"$T/got" || fail "vhd cat $n"
		assert_cmp "$n.flat" "$T/got" "vhd cat $n"
	fi
	case $q in
	yes)
		if [ "$r" = - ]; then
			qemu-img convert -f vhdx -O raw "$n" "$T/q.raw" ||
				fail "qemu-img convert $n"
			assert_cmp "$n.flat" "$T/q.raw" "qemu-img's view of $n"
		else # block status on both sides: the holes cost nothing
			qemu-img compare -q -f vhdx -F raw "$n" "$n.flat" ||
				fail "qemu-img compare $n"
		fi
		;;
	log) # qemu reads it only after its own replay, on a copy
		cp "$n" "$T/q.vhdx"
		qemu-img check -q -r all "$T/q.vhdx" || fail "qemu replay of $n"
		qemu-img convert -f vhdx -O raw "$T/q.vhdx" "$T/q.raw"
		assert_cmp "$n.flat" "$T/q.raw" "qemu-img's replay of $n"
		;;
	esac
	[ "$p" != yes ] || rcmp "libvhdi's view of $n" "$r" "$n.flat" "-$chain"
}

while IFS=$'\t' read -r n chain q p _ r; do
	verify "$n" "$chain" "$q" "$p" "$r"
done <manifest

# The two-level checkpoint chain and the moved checkpoint's parent.
g2=$(awk -F'\t' '$2 ~ /^hv-base_.*,hv-base_.*,hv-base.vhdx$/ { print $1 }' \
	manifest)
g1=$(awk -F'\t' -v g="$g2" '$1 == g { split($2, c, ","); print c[2] }' \
	manifest)
"$VHD" info "$g2" | grep -A3 '^Chain:' | grep -Fq "$g1 (differencing)" ||
	fail "$g2: chain does not go through $g1"
mv=$(ls moved_*.avhdx)
"$VHD" info "$mv" | grep -A2 '^Chain:' | grep -Fq "hv-base.vhdx (dynamic)" ||
	fail "$mv: parent not found through absolute_win32_path"
"$VHD" info hv-crash.vhdx | grep -q "^Log: .*replayed" ||
	fail "hv-crash.vhdx: the replay is not reported"
"$VHD" info d2v.vhdx >/dev/null || fail "d2v.vhdx: identical headers"

# Refused, naming the file and the defect.
out=$("$VHD" info bad/hv-incomplete.vhdx 2>&1) &&
	fail "a half-made file (incomplete marker) opened"
grep -q "hv-incomplete.vhdx.*incomplete" <<<"$out" ||
	fail "incomplete file: unclear error: $out"
out=$("$VHD" info bad/req-region.vhdx 2>&1) &&
	fail "an unknown required region was ignored"
grep -q "req-region.vhdx.*unknown required region" <<<"$out" ||
	fail "required region: unclear error: $out"

parents=(hv-base.vhdx "$g1" k4-base.vhdx big.vhdx)
sums=$($CRAFT sum "${parents[@]}")
while read -r n; do $CRAFT extras "$n" >"$n.extras"; done <extras
sha256sum bad/* >"$T/bad.sum"

# Through the mount: sizes, content, the checkpoint chain.
vhdfs_mount "$B" "$M"
while IFS=$'\t' read -r n _ _ _ _ r; do
	assert_eq "$(stat -c %s "$n.flat")" "$(stat -c %s "$M/$n")" "size of $n"
	rcmp "$n through the mount" "$r" "$n.flat" "$M/$n"
done <manifest
assert_eq "$(printf '%s\n' "$g2" "$g1" hv-base.vhdx)" \
	"$(getfattr --absolute-names --only-values -n user.vhd.chain "$M/$g2" |
		xargs -n1 basename)" "chain of $g2"

# Writes into every leaf (as test_writers.sh): 4 KiB-aligned at 0, a
# 576 KiB run at the middle, an unaligned one (read-modify-write of
# 512 and 4096-byte sectors), the last 512 bytes.
head -c 3000000 /dev/urandom >"$T/data"
put() { # IMAGE OFFSET LENGTH SKIP
	dd if="$T/data" of="$M/$1" bs=64k skip="$4" count="$3" seek="$2" \
		iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
		status=none || fail "write $1 at $2"
	dd if="$T/data" of="$1.flat" bs=64k skip="$4" count="$3" seek="$2" \
		iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
		status=none
}
while IFS=$'\t' read -r n _ _ _ leaf r; do
	[ "$leaf" = yes ] || continue
	size=$(stat -c %s "$n.flat")
	put "$n" 0 8192 11
	put "$n" $(((size / 2) & ~4095)) 589824 4000
	put "$n" $(((2 << 20) + 40960 + 100)) $((8192 - 200)) 77
	put "$n" $((size - 512)) 512 999
	sync "$M/$n"
	rcmp "$n after writes, through the mount" "$r" "$n.flat" "$M/$n"
done <manifest
for n in "${parents[@]}"; do
	if dd if=/dev/zero of="$M/$n" bs=512 count=1 conv=notrunc \
		status=none 2>/dev/null; then
		fail "$n, a parent, was written through the mount"
	fi
done
vhdfs_umount "$M"

# After the writes: every reader again; qemu checks what it opens (the
# crashed image's log was replayed into it by the writable open).
sed -i 's/\tlog\t/\tyes\t/' manifest
log_ok=no
while IFS=$'\t' read -r n chain q p leaf r; do
	verify "$n" "$chain" "$q" "$p" "$r"
	if [ "$q" = yes ] && [ "$leaf" = yes ]; then
		qemu-img check -q -f vhdx "$n" || fail "qemu-img check $n"
	fi
	# no block over another structure or region, no ZERO with an offset
	$CRAFT layout "$n" || fail "layout of $n after writes"
done <manifest
assert_eq "$sums" "$($CRAFT sum "${parents[@]}")" "parents after writes"
while read -r n; do
	assert_eq "$(cat "$n.extras")" "$($CRAFT extras "$n")" \
		"unknown items and regions of $n after writes"
done <extras
sha256sum -c --quiet "$T/bad.sum" || fail "refused images changed"
echo "other writers' VHDX images: ok"
