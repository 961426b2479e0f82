#!/usr/bin/env bash
# Concurrency: on a differencing leaf, one fio writer (random 512 B..16 KiB
# writes, crc32c-verified while writing and after) and two readers that
# verify, at the same time, the parent's pattern read through the chain in
# another region. After a remount the written data verifies again
# (fio --verify_only) and the parent is unchanged.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3 fio
require_bins

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 64M 0x5a 32M 32M
base_sha=$(sha "$B/base.vhd")
vhdfs_mount "$B" "$M"
ctl "$M" "leaf.vhd base.vhd"

cat >"$T/writer.fio" <<EOF
[global]
filename=$M/leaf.vhd
ioengine=psync
verify_state_save=0
[writer]
rw=randwrite
offset=0
size=24M
bsrange=512-16k
blockalign=512
verify=crc32c
verify_backlog=256
do_verify=1
EOF
# Writer and readers in one job file, one group: they run concurrently.
{
	cat "$T/writer.fio"
	cat <<EOF
[readers]
rw=randread
numjobs=2
offset=32M
size=32M
bs=4k
verify=pattern
verify_pattern=0x5a
time_based
runtime=4
EOF
} >"$T/all.fio"
(cd "$T" && fio --output="$T/fio.out" "$T/all.fio") || {
	cat "$T/fio.out" >&2
	fail "fio reported errors"
}
assert_eq 3 "$(grep -c 'groupid=0, jobs=1): err= 0' "$T/fio.out")" \
	"fio jobs in one group without errors"
if grep -qi 'verify failed\|bad magic\|crc32c: verify' "$T/fio.out"; then
	cat "$T/fio.out" >&2
	fail "fio verify failure"
fi

# The parent region read through the chain still equals the base.
qemu_flat "$B/base.vhd" "$T/base.flat"
cmp -s -n $((32 * MiB)) -i $((32 * MiB)) "$T/base.flat" "$M/leaf.vhd" ||
	fail "leaf's untouched half differs from the parent"
vhdfs_umount "$M"
assert_eq "$base_sha" "$(sha "$B/base.vhd")" "parent backing file sha256"

# Durable across a remount: the writer's data verifies again.
vhdfs_mount "$B" "$M"
(cd "$T" && fio --output="$T/fio2.out" --verify_only "$T/writer.fio") || {
	cat "$T/fio2.out" >&2
	fail "fio --verify_only after remount"
}
vhdfs_umount "$M"
exit 0
