#!/usr/bin/env bash
# Sector-granular content of a 3-level chain (base <- child <- grandchild):
# the base has qemu-written patterns; child and grandchild get distinct
# data written through the mount with dd at sector offsets, including
# sub-sector and block-crossing unaligned writes. Every level must read back
# equal to a flat model built with dd on raw files, and no write may leak
# into an ancestor.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 hexdump
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
SIZE=$((16 * 1024 * 1024))
make_base "$B/base.vhd" "$SIZE" 0x5a 1M 0
qemu_write "$B/base.vhd" 0x3c $((4094 * 512)) 8192      # across block 0/1
qemu_write "$B/base.vhd" 0x77 $((20000 * 512)) $((64 * 512))
qemu_flat "$B/base.vhd" "$T/m.base"
base_sha=$(sha "$B/base.vhd")

# Deterministic, position-unique data: a shift by one byte or sector shows.
gen() { # SEED LEN > stdout
	"$PY" -c 'import hashlib, sys
seed, n = sys.argv[1].encode(), int(sys.argv[2])
out, i = bytearray(), 0
while len(out) < n:
    out += hashlib.sha256(seed + str(i).encode()).digest(); i += 1
sys.stdout.buffer.write(out[:n])' "$1" "$2"
}

# put IMAGE MODEL SEED OFF LEN: one write(2) of LEN bytes at byte OFF
# through the mount, and the same into the flat model.
put() {
	gen "$3" "$5" >"$T/data"
	local f
	for f in "$1" "$2"; do
		dd if="$T/data" of="$f" bs="$5" count=1 seek="$4" \
			oflag=seek_bytes conv=notrunc status=none
	done
}

# Compare a flat model with what the mount shows; on a difference name the
# first differing sector and hexdump it from both.
check_flat() { # MODEL IMAGE WHAT
	local out byte sec n
	assert_eq "$(stat -c %s "$1")" "$(stat -c %s "$2")" "$3 size"
	if out=$(cmp -- "$1" "$2" 2>&1); then
		return 0
	fi
	byte=$(echo "$out" | sed -n 's/.*differ: byte \([0-9]*\).*/\1/p')
	[ -n "$byte" ] || fail "$3: $out"
	sec=$(((byte - 1) / 512))
	n=$(cmp -l -- "$1" "$2" | awk '{ s[int(($1 - 1) / 512)] = 1 }
		END { print length(s) }' || true)
	log "$3: $n sector(s) differ, first is sector $sec"
	log "expected:"
	hexdump -C -s $((sec * 512)) -n 512 "$1" >&2
	log "got:"
	hexdump -C -s $((sec * 512)) -n 512 "$2" >&2
	fail "$3: content differs from the model at sector $sec"
}

vhdfs_mount "$B" "$M"
check_flat "$T/m.base" "$M/base.vhd" "base"

# Level 2: the child.
ctl "$M" "child.vhd base.vhd"
cp "$T/m.base" "$T/m.child"
check_flat "$T/m.child" "$M/child.vhd" "fresh child"
put "$M/child.vhd" "$T/m.child" c1 $((1 * 512)) 512          # one sector
put "$M/child.vhd" "$T/m.child" c2 $((100 * 512)) 4096       # 4 KiB
put "$M/child.vhd" "$T/m.child" c3 $((4095 * 512)) 1536      # block 0|1
put "$M/child.vhd" "$T/m.child" c4 $((5 * 512 + 17)) 100     # sub-sector
put "$M/child.vhd" "$T/m.child" c5 $((20000 * 512 - 300)) 700 # unaligned
put "$M/child.vhd" "$T/m.child" c6 $((30000 * 512)) 512      # over a hole
put "$M/child.vhd" "$T/m.child" c7 $((SIZE - 512)) 512       # last sector
put "$M/child.vhd" "$T/m.child" c8 $((6000 * 512 + 1)) 1     # one byte
sync "$M/child.vhd"
check_flat "$T/m.child" "$M/child.vhd" "child"
check_flat "$T/m.base" "$M/base.vhd" "base after child writes"

# Level 3: the grandchild; the child becomes a read-only parent.
ctl "$M" "grandchild.vhd child.vhd"
cp "$T/m.child" "$T/m.gc"
check_flat "$T/m.gc" "$M/grandchild.vhd" "fresh grandchild"
put "$M/grandchild.vhd" "$T/m.gc" g1 $((101 * 512)) 512       # on child's
put "$M/grandchild.vhd" "$T/m.gc" g2 $((4096 * 512 - 5)) 10   # crossing
put "$M/grandchild.vhd" "$T/m.gc" g3 $((8192 * 512)) 4608     # fresh area
put "$M/grandchild.vhd" "$T/m.gc" g4 $((200 * 512 + 510)) 3   # base only
put "$M/grandchild.vhd" "$T/m.gc" g5 $((5 * 512 + 50)) 20     # on c4
put "$M/grandchild.vhd" "$T/m.gc" g6 $((30000 * 512 + 256)) 512
sync "$M/grandchild.vhd"
check_flat "$T/m.gc" "$M/grandchild.vhd" "grandchild"
check_flat "$T/m.child" "$M/child.vhd" "child after grandchild writes"
check_flat "$T/m.base" "$M/base.vhd" "base after grandchild writes"

# Spot checks in hexdump form: sector 101 comes from the grandchild,
# sector 102 from the child, sector 300 from the base.
hx() { hexdump -C -s $(($2 * 512)) -n 512 "$1"; }
assert_eq "$(hx "$T/m.gc" 101)" "$(hx "$M/grandchild.vhd" 101)" "sector 101"
assert_eq "$(gen g1 512 | hexdump -C | sed -n 1p | cut -c 11-)" \
	"$(hx "$M/grandchild.vhd" 101 | sed -n 1p | cut -c 11-)" \
	"first line of sector 101"
assert_eq "$(gen c2 1536 | tail -c 512 | hexdump -C | sed -n 1p | cut -c 11-)" \
	"$(hx "$M/grandchild.vhd" 102 | sed -n 1p | cut -c 11-)" \
	"first line of sector 102"
assert_eq "00000000  5a 5a 5a 5a 5a 5a 5a 5a  5a 5a 5a 5a 5a 5a 5a 5a  |ZZZZZZZZZZZZZZZZ|" \
	"$(hexdump -C -s 0 -n 512 "$M/grandchild.vhd" | sed -n 1p)" \
	"sector 0 (base pattern)"

# Persisted: after a remount every level still reads the same.
vhdfs_umount "$M"
assert_eq "$base_sha" "$(sha "$B/base.vhd")" "base backing file sha256"
vhdfs_mount "$B" "$M" -o ro
check_flat "$T/m.gc" "$M/grandchild.vhd" "grandchild after remount"
check_flat "$T/m.child" "$M/child.vhd" "child after remount"
vhdfs_umount "$M"
exit 0
