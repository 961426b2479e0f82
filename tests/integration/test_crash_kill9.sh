#!/usr/bin/env bash
# Crash safety: kill -9 the daemon while dd writes a pattern into a
# differencing leaf with O_DSYNC. After cleaning up the dead mount and
# remounting, every byte dd reported written reads back, each sector of the
# write in flight is either old or new, everything after it is still the
# parent's, the image passes `vhd check` (a VHDX may have a log to replay,
# reported as fixable; `vhd repair` replays it, the content unchanged),
# and the parent is unchanged.
# Run on a VHD chain and on a VHDX chain (.avhdx over a qemu-made .vhdx,
# whose metadata goes through the log).
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

MiB=$((1024 * 1024))
BS=16384
COUNT=3072 # 48 MiB of O_DSYNC writes: far more than are done at the kill
# crash_run BASE LEAF: the whole scenario on BASE (made) and child LEAF
crash_run() {
	local base=$1 leaf=$2 B=$T/backing-$2 M=$T/mnt
	mkdir -p "$B"
	if [ "${base##*.}" = vhdx ]; then
		qemu-img create -q -f vhdx -o block_size=8M "$B/$base" 64M
		qemu-io -f vhdx -c "write -P 0x5a 0 64M" "$B/$base" >/dev/null
	else
		make_base "$B/$base" 64M 0x5a 64M 0
	fi
	base_sha=$(sha "$B/$base")
	qemu-img convert -O raw "$B/$base" "$T/base.flat"

	vhdfs_mount "$B" "$M"
	ctl "$M" "$leaf $base"
	size0=$(stat -c %s "$B/$leaf")

	dd if="$T/pattern" of="$M/$leaf" bs=$BS count=$COUNT oflag=dsync \
		conv=notrunc 2>"$T/dd.err" &
	ddpid=$!
	# Wait until a few blocks have been allocated in the backing file (bounded).
	for ((i = 0; i < 1200; i++)); do
		[ "$(stat -c %s "$B/$leaf")" -gt $((size0 + 3 * 2 * MiB)) ] && break
		kill -0 "$ddpid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$ddpid" 2>/dev/null ||
		fail "dd ended before the kill: $(cat "$T/dd.err")"
	vhdfs_kill9 "$M"
	ddrc=0
	wait "$ddpid" || ddrc=$?
	cat "$T/dd.err" >&2
	[ "$ddrc" -ne 0 ] || fail "dd completed all writes; nothing was in flight"
	done_bytes=$(sed -n 's/^\([0-9]*\) bytes.*copied.*/\1/p' "$T/dd.err")
	[ -n "$done_bytes" ] || fail "cannot parse dd's byte count"
	[ "$done_bytes" -gt 0 ] || fail "dd wrote nothing before the kill"
	log "dd reported $done_bytes bytes written before the kill"

	# A VHDX writer killed may leave its last log entry: check says it
	# is fixable (the next writable open replays it), without writing.
	leaf_sha=$(sha "$B/$leaf")
	if ! out=$("$VHD" check "$B/$leaf" 2>&1); then
		echo "$out" >&2
		[ "${leaf##*.}" = avhdx ] && ! grep -v \
			-e "log is not empty: .* (fixable by vhd repair)$" \
			-e "1 problem found$" <<<"$out" >/dev/null ||
			fail "vhd check $leaf after the crash"
	fi
	assert_eq "$leaf_sha" "$(sha "$B/$leaf")" "vhd check wrote $leaf"
	assert_eq "$base_sha" "$(sha "$B/$base")" "parent sha256 after crash"

	vhdfs_mount "$B" "$M"
	# 1) Every acknowledged byte reads back.
	cmp -n "$done_bytes" "$T/pattern" "$M/$leaf" ||
		fail "acknowledged O_DSYNC writes lost or corrupted"
	# 2) The write in flight: each sector is old (parent) or new (pattern).
	# 3) Everything after it: the parent's content.
	"$PY" - "$M/$leaf" "$T/pattern" "$T/base.flat" "$done_bytes" "$BS" \
		<<'EOF' || fail "leaf content after the acknowledged writes"
import sys
leaf, pat, base = (open(p, "rb") for p in sys.argv[1:4])
done, bs = int(sys.argv[4]), int(sys.argv[5])
start = done - done % 512
end = (done // bs + 1) * bs
for off in range(start, end, 512):
    for f in (leaf, pat, base):
        f.seek(off)
    l, p, b = leaf.read(512), pat.read(512), base.read(512)
    if l != p and l != b:
        sys.exit(f"in-flight sector at {off} is neither old nor new")
leaf.seek(end); base.seek(end)
off = end
while True:
    l, b = leaf.read(1 << 20), base.read(1 << 20)
    if l != b:
        i = next(i for i in range(min(len(l), len(b))) if l[i] != b[i]) \
            if len(l) == len(b) else 0
        sys.exit(f"after the in-flight write: differs from parent near {off + i}")
    if not l:
        break
    off += len(l)
EOF
	vhdfs_umount "$M"
	assert_eq "$base_sha" "$(sha "$B/$base")" "parent sha256 at the end"
	# vhd repair replays what is left; the content stays as it read.
	"$VHD" cat "$B/$leaf" >"$T/leaf.flat"
	"$VHD" repair "$B/$leaf" >&2 || fail "vhd repair $leaf"
	"$VHD" check "$B/$leaf" >&2 || fail "vhd check $leaf after repair"
	"$VHD" cat "$B/$leaf" | cmp - "$T/leaf.flat" ||
		fail "vhd repair changed what $leaf reads"
}

head -c $((BS * COUNT)) /dev/urandom >"$T/pattern"
crash_run base.vhd leaf.vhd
crash_run base.vhdx leaf.avhdx
exit 0
