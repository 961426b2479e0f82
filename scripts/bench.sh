#!/bin/bash
# Throughput of vhdfs (VHD, and VHDX reads) against a raw file on the same
# filesystem, measured in one run so the ratios compare like with like.
# Prints MiB/s and ratios; asserts nothing (speed is a figure, not a test).
#   scripts/bench.sh [SIZE_MIB]          (root: it mounts vhdfs)
set -euo pipefail

size_mib=${1:-512}
repo=$(cd "$(dirname "$0")/.." && pwd)
vhd=$repo/build/vhd
vhdfs=$repo/build/vhdfs
[ -x "$vhd" ] && [ -x "$vhdfs" ] || { echo "run make first" >&2; exit 2; }

work=$(mktemp -d /tmp/vhdfs-bench.XXXXXX)
mnt=$work/mnt
daemon=
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" || true
	fi
	[ -n "$daemon" ] && wait "$daemon" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/back" "$mnt"
cd "$work"

# MiB/s of a command moving $size_mib MiB (best of three runs).
rate() {
	local best=0 t0 t1
	for _ in 1 2 3; do
		t0=$(date +%s%N)
		"$@" >/dev/null 2>&1
		t1=$(date +%s%N)
		best=$(awk -v s="$size_mib" -v ns=$((t1 - t0)) -v b="$best" \
			'BEGIN { r = s / (ns / 1e9); print (r > b) ? r : b }')
	done
	echo "$best"
}
row() { printf '%-46s %9.0f MiB/s   x%.2f of baseline\n' "$1" "$2" \
	"$(awk -v a="$2" -v b="$3" 'BEGIN { print a / b }')"; }

# A base full of data, a child and a grandchild each holding a sparse
# quarter of their own, so reads resolve through all three levels.
"$vhd" create back/base.vhd "${size_mib}M" >/dev/null
qemu-io -f vpc -c "write -P 0x5a 0 ${size_mib}M" back/base.vhd >/dev/null
qemu-img convert -f vpc -O raw back/base.vhd raw.img
# VHDX (read-only): the same base made by qemu, and a differencing child
# (qemu cannot make one: tests/interop/vhdxcraft.py) holding a quarter.
qemu-img convert -f raw -O vhdx raw.img back/base.vhdx
head -c $((size_mib / 4))M /dev/urandom >quarter.bin
w=()
for i in 0 1 2 3; do
	off=$((i * size_mib / 4 * 1048576))
	len=$((size_mib / 16 * 1048576))
	w+=(--write "$off:quarter.bin:$((i * len)):$len")
done
/usr/bin/python3 "$repo/tests/interop/vhdxcraft.py" diff back/child.avhdx \
	back/base.vhdx "${w[@]}"
"$vhdfs" -f back "$mnt" 2>daemon.log &
daemon=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { cat daemon.log >&2; exit 1; }
echo "child.vhd base.vhd" >"$mnt/.control"
step=$((size_mib / 16))
for i in $(seq 0 4 15); do
	dd if=/dev/urandom of="$mnt/child.vhd" bs=1M seek=$((i * step)) \
		count=$((step / 2)) conv=notrunc status=none
done
sync "$mnt/child.vhd"
echo "grand.vhd child.vhd" >"$mnt/.control"
for i in $(seq 2 4 15); do
	dd if=/dev/urandom of="$mnt/grand.vhd" bs=1M seek=$((i * step)) \
		count=$((step / 2)) conv=notrunc status=none
done
sync "$mnt/grand.vhd"
cmp <("$vhd" cat back/grand.vhd) "$mnt/grand.vhd"

echo "vhdfs bench: ${size_mib} MiB, page cache warm, best of 3"
base=$(rate dd if=raw.img of=/dev/null bs=1M)
row "baseline: dd raw file" "$base" "$base"
row "library: vhd cat base.vhd (dynamic)" \
	"$(rate "$vhd" cat back/base.vhd)" "$base"
row "library: vhd cat grand.vhd (3 levels)" \
	"$(rate "$vhd" cat back/grand.vhd)" "$base"
row "mount: dd grand.vhd bs=1M (3 levels)" \
	"$(rate dd if="$mnt/grand.vhd" of=/dev/null bs=1M)" "$base"
row "mount: dd grand.vhd bs=4k (3 levels)" \
	"$(rate dd if="$mnt/grand.vhd" of=/dev/null bs=4k)" "$base"
row "library: vhd cat base.vhdx (dynamic, qemu)" \
	"$(rate "$vhd" cat back/base.vhdx)" "$base"
row "library: vhd cat child.avhdx (2 levels)" \
	"$(rate "$vhd" cat back/child.avhdx)" "$base"
row "mount: dd child.avhdx bs=1M (2 levels)" \
	"$(rate dd if="$mnt/child.avhdx" of=/dev/null bs=1M)" "$base"

wbase=$(rate dd if=/dev/zero of=raw-w.img bs=1M count="$size_mib" \
	conv=fsync)
row "baseline: dd write raw file, fsync" "$wbase" "$wbase"
echo "leaf.vhd grand.vhd" >"$mnt/.control"
row "mount: dd write leaf.vhd (new blocks), fsync" \
	"$(rate dd if=/dev/zero of="$mnt/leaf.vhd" bs=1M count="$size_mib" \
		conv=notrunc,fsync)" "$wbase"
"$(dirname "$0")/bench-ops.sh"
