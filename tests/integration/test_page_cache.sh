#!/usr/bin/env bash
# asan: yes
# The kernel's page cache of an image survives from one open to the next
# when nothing behind the image changed (a parent read twice is served
# from memory), and is dropped whenever something did: another tool
# rewriting the parent's file, a write through the mount, a parent that
# became a leaf and was written, a job (merge, expand, compact, reparent)
# that changed it. A cached fd sees writes made through another fd of the
# mount.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 fincore
require_bins

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 16M 0x5a 16M 0
vhdfs_mount "$B" "$M"
ctl "$M" "leaf.vhd base.vhd"

# Resident bytes of an image as fincore sees them (fincore opens it too).
resident() { fincore -n -b -o RES "$1" | tr -d ' '; }
byte_at() { # FILE OFFSET: the byte there, as two hex digits
	od -An -tx1 -j "$2" -N1 "$1" | tr -d ' '
}

# 1) A parent read twice stays cached for the next open.
cat "$M/base.vhd" >/dev/null
cat "$M/base.vhd" >/dev/null
res=$(resident "$M/base.vhd")
[ "$res" -ge $((16 * MiB)) ] ||
	fail "parent not kept in the page cache: $res bytes resident"

# 2) Another tool rewrites the parent's file: the next open drops the
# cache and reads the new bytes (through the leaf too).
sleep 0.1 # a later mtime than the open that recorded the chain
qemu_write "$B/base.vhd" 0xa5 0 1M
assert_eq a5 "$(byte_at "$M/base.vhd" 4096)" "parent byte after qemu-io"
assert_eq a5 "$(byte_at "$M/leaf.vhd" 4096)" "leaf byte after qemu-io"

# 3) A cached fd of the leaf sees a write made through another fd.
cat "$M/leaf.vhd" >/dev/null
exec 3<"$M/leaf.vhd"
"$PY" - <<'EOF' || fail "cached fd reads old data before the write"
import os, sys
sys.exit(os.pread(3, 4096, 8192) != b"\xa5" * 4096)
EOF
head -c 4096 /dev/zero | tr '\0' '<' >"$T/data"
dd if="$T/data" of="$M/leaf.vhd" bs=4096 seek=2 conv=notrunc status=none
"$PY" - "$T/data" <<'EOF' || fail "a cached fd misses a write made through another fd"
import os, sys
want = open(sys.argv[1], "rb").read()
sys.exit(os.pread(3, 4096, 8192) != want)
EOF
exec 3<&-
assert_eq 3c "$(byte_at "$M/leaf.vhd" 8192)" "leaf byte after the write"

# 4) The parent becomes a leaf (its child removed) and is written through
# the mount: its cached pages go.
cat "$M/base.vhd" >/dev/null
cat "$M/base.vhd" >/dev/null
rm "$M/leaf.vhd"
dd if="$T/data" of="$M/base.vhd" bs=4096 seek=3 conv=notrunc status=none
assert_eq 3c "$(byte_at "$M/base.vhd" 12288)" "former parent after a write"
assert_eq a5 "$(byte_at "$M/base.vhd" 4096)" "former parent, unwritten part"

# 5) Jobs that change an image drop its cached pages: a merge into it, an
# expansion, a compaction (blocks move, content stays), a reparent of a
# child (the child's view changes).
cached() { # FILE: read twice, so the second open keeps the first's pages
	cat "$1" >/dev/null
	cat "$1" >/dev/null
	[ "$(resident "$1")" -ge "$(stat -c %s "$1")" ] ||
		fail "$1 not kept in the page cache"
}
run_job() { # LINE: start a job through .control and wait for its end
	local id
	ctl "$M" "$1"
	id=$(last_job "$M")
	[ -n "$id" ] || fail "$1 did not start a job: $(tail -n 1 "$M/.control")"
	job_wait "$M" "$id"
	assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "JobState of $1"
}
ctl "$M" "kid.vhd base.vhd"
head -c 65536 /dev/zero | tr '\0' 'w' |
	dd of="$M/kid.vhd" bs=64k seek=16 conv=notrunc status=none
cached "$M/base.vhd"
run_job "merge kid.vhd base.vhd"
assert_eq 77 "$(byte_at "$M/base.vhd" $MiB)" "parent after a merge into it"

cached "$M/base.vhd"
run_job "expand base.vhd 32M"
assert_eq $((32 * MiB)) "$(stat -c %s "$M/base.vhd")" "size after expand"
assert_eq 77 "$(byte_at "$M/base.vhd" $MiB)" "after expand, old part"
assert_eq 00 "$(byte_at "$M/base.vhd" $((30 * MiB)))" "after expand, tail"

qemu_write "$B/base.vhd" 0 0 2M # zeros in the first block: compact drops it
cached "$M/base.vhd"
qemu_flat "$B/base.vhd" "$T/base.flat"
run_job "compact base.vhd"
assert_cmp "$T/base.flat" "$M/base.vhd" "base.vhd after compact"

make_base "$B/other.vhd" 32M 0x11 32M 0
ctl "$M" "kid2.vhd base.vhd"
cached "$M/kid2.vhd"
ctl "$M" "reparent kid2.vhd other.vhd ignore-id-mismatch"
grep -q 'ReturnValue=0 Command="reparent' "$M/.control" ||
	fail "reparent: $(tail -n 1 "$M/.control")"
assert_eq 11 "$(byte_at "$M/kid2.vhd" $MiB)" "child after a reparent"

vhdfs_umount "$M"
exit 0
