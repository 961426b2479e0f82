#!/bin/bash
# Cost of a writer's close(2): N cycles of open O_RDWR, one 4 KiB pwrite,
# close, through a vhdfs mount of a dynamic VHD and a VHDX, in us per
# cycle (median of 3 runs), for this build and, given a second vhdfs
# binary (e.g. one built at an older commit), its ratio to that one.
# Asserts nothing.
#   scripts/bench-close.sh [N] [OTHER_VHDFS]          (root: FUSE mounts)
set -euo pipefail

n=${1:-1000}
other=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
vhd=$repo/build/vhd
[ -x "$vhd" ] && [ -x "$repo/build/vhdfs" ] || {
	echo "run make first" >&2
	exit 2
}

. "$repo/scripts/bench-lib.sh"
bench_setup bench-close
mkdir -p "$work/b"
"$vhd" create "$work/b/c.vhd" 64M >/dev/null
"$vhd" create "$work/b/c.vhdx" 64M >/dev/null

# cycles DAEMON FILE: median us per cycle of 3 runs of N cycles.
cycles() {
	bench_mount "$1" "$work/b"
	/usr/bin/python3 - "$mnt/$2" "$n" <<'PY'
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
buf, runs = b"x" * 4096, []
for _ in range(3):
    t = time.perf_counter()
    for i in range(n):
        fd = os.open(path, os.O_RDWR)
        os.pwrite(fd, buf, (i % 256) * 4096)
        os.close(fd)
    runs.append((time.perf_counter() - t) / n * 1e6)
print(f"{sorted(runs)[1]:.0f}")
PY
	bench_umount || true
}

for f in c.vhd c.vhdx; do
	this=$(cycles "$repo/build/vhdfs" "$f")
	if [ -n "$other" ]; then
		that=$(cycles "$other" "$f")
		awk -v f="$f" -v a="$this" -v b="$that" 'BEGIN {
			printf "%-7s this %6d us/cycle  other %6d us/cycle  ratio %.2f\n",
				f, a, b, a / b }'
	else
		printf '%-7s this %6d us/cycle\n' "$f" "$this"
	fi
done
