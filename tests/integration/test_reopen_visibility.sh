#!/usr/bin/env bash
# asan: yes
# A write is visible to the next open: `dd ... conv=notrunc` into a
# differencing leaf, then at once `cmp` (a new open, no fsync in between)
# must see the new bytes, as it would on any file. The kernel sends
# RELEASE asynchronously, so the daemon must not let the next OPEN see
# older metadata. Also reads through an fd opened before the write.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 64M 0x5a 4M 0
qemu_flat "$B/base.vhd" "$T/model"
vhdfs_mount "$B" "$M"
ctl "$M" "leaf.vhd base.vhd"

RANDOM=4242 # a fixed sequence of offsets and lengths
lens=(512 4096 16384 2560 700 65536)
bad=0
for ((i = 0; i < 60; i++)); do
	len=${lens[$((i % ${#lens[@]}))]}
	off=$(((RANDOM * 32768 + RANDOM) % (60 * MiB)))
	[ $((i % 3)) -eq 0 ] || off=$((off / 512 * 512))
	head -c "$len" /dev/urandom >"$T/data"
	dd if="$T/data" of="$M/leaf.vhd" bs="$len" count=1 seek="$off" \
		oflag=seek_bytes conv=notrunc status=none
	dd if="$T/data" of="$T/model" bs="$len" count=1 seek="$off" \
		oflag=seek_bytes conv=notrunc status=none
	if ! cmp -s -n "$len" -i "0:$off" "$T/data" "$M/leaf.vhd"; then
		bad=$((bad + 1))
		[ "$bad" -gt 5 ] ||
			log "write $i ($len bytes at $off) not visible to the next open"
	fi
done
[ "$bad" -eq 0 ] ||
	fail "$bad of 60 writes were not visible to an open right after them"
assert_cmp "$T/model" "$M/leaf.vhd" "leaf after all writes"

# The same from one program, without process start-up in between: write,
# close, open, read, 200 times (in the model too).
"$PY" - "$M/leaf.vhd" "$T/model" <<'EOF' || fail "writes not visible to the next open (python loop)"
import os, random, sys
leaf, model = sys.argv[1:3]
rnd = random.Random(7)
bad = 0
for i in range(200):
    n = rnd.choice([512, 1024, 2560, 4096, 16384, 333])
    off = rnd.randrange(0, 60 << 20)
    if i % 3:
        off -= off % 512
    data = rnd.randbytes(n)
    for path in (leaf, model):
        fd = os.open(path, os.O_WRONLY)
        os.pwrite(fd, data, off)
        os.close(fd)
    fd = os.open(leaf, os.O_RDONLY if i % 2 else os.O_RDWR)
    got = os.pread(fd, n, off)
    os.close(fd)
    if got != data:
        bad += 1
        if bad <= 5:
            kind = "zeros" if got == bytes(n) else "other data"
            print(f"write {i} ({n} bytes at {off}): next open read {kind}",
                  file=sys.stderr)
if bad:
    sys.exit(f"{bad} of 200 writes not visible to the next open")
EOF
assert_cmp "$T/model" "$M/leaf.vhd" "leaf after the python loop"

# An fd opened before the writes sees them too.
exec 3<"$M/leaf.vhd"
head -c 4096 /dev/urandom >"$T/data"
dd if="$T/data" of="$M/leaf.vhd" bs=4096 seek=100 conv=notrunc status=none
"$PY" - "$T/data" <<'EOF' || fail "an fd opened before a write misses it"
import os, sys
want = open(sys.argv[1], "rb").read()
sys.exit(os.pread(3, 4096, 100 * 4096) != want)
EOF
exec 3<&-

vhdfs_umount "$M"
exit 0
