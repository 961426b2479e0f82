#!/bin/bash
# Throughput of the long image operations: `vhd merge` (a child full of
# data into its empty dynamic parent) and `vhd convert` (the chain into a
# new dynamic image), in MiB/s of data moved and as a ratio to `cp` + sync
# of the same amount of data in the same run. Medians of 3 rounds, the
# three measurements alternating within each round. Asserts nothing.
#   scripts/bench-ops.sh [SIZE_MIB]      (root: the child is filled through
#                                         a vhdfs mount; default 1024)
set -euo pipefail

size_mib=${1:-1024}
repo=$(cd "$(dirname "$0")/.." && pwd)
vhd=$repo/build/vhd
vhdfs=$repo/build/vhdfs
[ -x "$vhd" ] && [ -x "$vhdfs" ] || { echo "run make first" >&2; exit 2; }

. "$repo/scripts/bench-lib.sh"
bench_setup bench-ops
mkdir -p "$work/orig" "$work/run"
cd "$work"

# The pristine chain: an empty dynamic base and a child full of data.
head -c $((size_mib * 1024 * 1024)) /dev/urandom >data.bin
"$vhd" create orig/base.vhd "${size_mib}M"
bench_mount "$vhdfs" orig
echo "child.vhd base.vhd" >"$mnt/.control"
dd if=data.bin of="$mnt/child.vhd" bs=1M conv=notrunc,fsync status=none
bench_umount

# Seconds (nanosecond resolution) a command takes.
secs() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null
	t1=$(date +%s%N)
	awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.4f\n", ns / 1e9 }'
}
median() { sort -g | sed -n 2p; }
restore() {
	rm -f run/*.vhd copy.bin
	cp --sparse=always orig/base.vhd orig/child.vhd run/
	sync
}
do_cp() { cp data.bin copy.bin && sync copy.bin; }

cp_t=() merge_t=() conv_t=()
for round in 1 2 3; do
	for what in cp merge convert; do
		restore
		case $what in
		cp) cp_t+=("$(secs do_cp)") ;;
		merge) merge_t+=("$(secs "$vhd" merge run/child.vhd)") ;;
		convert)
			conv_t+=("$(secs "$vhd" convert run/child.vhd \
				run/out.vhd dynamic)")
			;;
		esac
	done
	"$vhd" cat run/out.vhd | cmp - data.bin
done
"$vhd" merge run/child.vhd
"$vhd" cat run/base.vhd | cmp - data.bin

cp_s=$(printf '%s\n' "${cp_t[@]}" | median)
merge_s=$(printf '%s\n' "${merge_t[@]}" | median)
conv_s=$(printf '%s\n' "${conv_t[@]}" | median)
row() {
	awk -v n="$1" -v mib="$size_mib" -v s="$2" -v base="$cp_s" 'BEGIN {
		printf "%-44s %8.0f MiB/s   x%.2f of cp\n", n, mib / s, base / s
	}'
}
echo "vhd operations: ${size_mib} MiB of data moved, median of 3 rounds"
row "baseline: cp + sync of the same data" "$cp_s"
row "vhd merge child into empty dynamic parent" "$merge_s"
row "vhd convert child chain to dynamic" "$conv_s"
