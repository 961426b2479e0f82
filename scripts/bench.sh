#!/bin/bash
# Speed of vhdfs against a floor: build/bench-floor (a minimal high-level
# libfuse passthrough with libfuse defaults, `make bench-floor`) serving an
# already-flat raw file of the same content, and native I/O on that file;
# VHDX reads (a qemu-made base, a crafted child) and writes (a fresh
# .avhdx child made through .control) next to VHD.
# Every figure is the median of ROUNDS alternating rounds (floor, vhdfs and
# native take turns going first) and is printed with its ratio to the
# floor, all from this one run. Asserts nothing: speed is a figure.
#   scripts/bench.sh [SIZE_MIB]     (root: it mounts and uses loop devices)
#   ROUNDS=3 RUNTIME=3 BUILD=build scripts/bench.sh 512   (the defaults)
#   FIGURES=rand,wrand,loop scripts/bench.sh 256   (only these figures, and
#   only the fixtures and rows they need; names as in round() below;
#   NATIVE=0 leaves out the native figures)
# About 5 minutes on 2 idle cores at 512 MiB; 1024 MiB about doubles it.
set -euo pipefail
export LC_ALL=C

size_mib=${1:-512}
rounds=${ROUNDS:-3}
figures=${FIGURES:-}
runtime=${RUNTIME:-3} # seconds of each random-I/O figure
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
vhd=$build/vhd
vhdfs=$build/vhdfs
floor=$build/bench-floor
for b in "$vhd" "$vhdfs" "$floor"; do
	[ -x "$b" ] || { echo "run make all bench-floor first" >&2; exit 2; }
done
for t in fio jq qemu-io qemu-img losetup; do
	command -v $t >/dev/null || { echo "bench needs $t" >&2; exit 2; }
done

# Whether figure $1 is measured this run (all of them without FIGURES).
want() { [ -z "$figures" ] || [[ ",$figures," == *",$1,"* ]]; }
wants() { # any of "$@"
	local f
	for f in "$@"; do want "$f" && return 0; done
	return 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/vhdfs-bench.XXXXXX")
mnts=()
pids=()
loops=()
cleanup() {
	local i
	for i in "${loops[@]}"; do losetup -d "$i" 2>/dev/null || true; done
	for ((i = ${#mnts[@]} - 1; i >= 0; i--)); do
		fusermount3 -u "${mnts[i]}" 2>/dev/null || true
	done
	for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
mkdir -p back big mnt ro fr fw

# Start a FUSE daemon (command line in "$@", mount point last) and wait
# for its mount.
start() {
	local mp=${!#}
	"$@" -f 2>>"$work/daemons.log" &
	pids+=($!)
	for _ in $(seq 100); do mountpoint -q "$mp" && break; sleep 0.1; done
	mountpoint -q "$mp" || { cat "$work/daemons.log" >&2; exit 1; }
	mnts+=("$mp")
}

# --- Fixtures ---------------------------------------------------------
# base.vhd full of data; c1 (depth 1) and d1..d8 (depth 8) each hold 4 MiB
# of every 64 MiB, at offsets shifted per level, so reads resolve through
# every level. flat.raw is what bench-floor serves: c1's flat content.
echo "setting up ${size_mib} MiB images..." >&2
"$vhd" create back/base.vhd "${size_mib}M" >/dev/null
qemu-io -f vpc -c "write -P 0x5a 0 ${size_mib}M" back/base.vhd >/dev/null
start "$vhdfs" back mnt
stripe() { # IMAGE LEVEL: write this level's stripes through the mount
	local i
	for ((i = 0; i < size_mib / 64; i++)); do
		dd if=/dev/urandom of="mnt/$1" bs=1M seek=$((i * 64 + $2 * 4)) \
			count=4 conv=notrunc status=none
	done
	sync "mnt/$1"
}
echo "c1.vhd base.vhd" >mnt/.control
stripe c1.vhd 1
"$vhd" cat back/c1.vhd >flat.raw
if wants seq8 cat; then
	prev=base.vhd
	for l in 1 2 3 4 5 6 7 8; do
		echo "d$l.vhd $prev" >mnt/.control
		stripe "d$l.vhd" "$l"
		prev=d$l.vhd
	done
	"$vhd" cat back/d2.vhd >flat3.raw
fi
truncate -s "${size_mib}M" fresh.raw
# VHDX (read-only): the same base made by qemu, and a differencing child
# (qemu cannot make one: tests/interop/vhdxcraft.py) holding a quarter.
if wants seqx wseqx wrandx catxb catx; then
	qemu-img convert -f vpc -O vhdx back/base.vhd back/base.vhdx
	head -c $((size_mib / 4))M /dev/urandom >quarter.bin
	w=()
	for i in 0 1 2 3; do
		off=$((i * size_mib / 4 * 1048576))
		len=$((size_mib / 16 * 1048576))
		w+=(--write "$off:quarter.bin:$((i * len)):$len")
	done
	/usr/bin/python3 "$repo/tests/interop/vhdxcraft.py" diff \
		back/child.avhdx back/base.vhdx "${w[@]}"
	rm quarter.bin
fi
start "$floor" flat.raw fr
start "$floor" fresh.raw fw
want repeat-ro && start "$vhdfs" -o ro back ro
want create && "$vhd" create big/huge.vhd 2040G >/dev/null

# --- Measuring ----------------------------------------------------------
declare -A res=()  # "figure|who" -> space-separated samples
add() { res["$1|$2"]+="$3 "; }
# FIGURE WHO COMMAND...: one sample of a wanted figure.
measure() {
	local fig=$1 who=$2
	shift 2
	want "$fig" || return 0
	add "$fig" "$who" "$("$@")"
}

# MiB/s of one fio job: "$@" are fio options. Writes by wall clock (so a
# final fsync counts); reads by fio's own clock, since fio's start-up
# (about 0.3 s here) weighs as much as reading 512 MiB from the page cache.
fio_rate() {
	local t0 t1 bytes wbytes
	t0=$(date +%s%N)
	fio --name=b --output-format=json --group_reporting \
		--ioengine=psync --fallocate=none "$@" >fio.json 2>fio.err ||
		{ cat fio.err >&2; echo 0; return; }
	t1=$(date +%s%N)
	wbytes=$(jq '[.jobs[] | .write.io_bytes] | add' fio.json)
	if [ "$wbytes" = 0 ]; then
		jq '.jobs[0].read.bw_bytes / 1048576' fio.json
		return
	fi
	bytes=$(jq '[.jobs[] | .read.io_bytes + .write.io_bytes] | add' fio.json)
	awk -v b="$bytes" -v ns=$((t1 - t0)) 'BEGIN { print b / 1048576 / (ns / 1e9) }'
}
# FUSE files start each read figure with an empty page cache of their own
# (fio's fadvise); the backing files are cached, and native reads run
# from that same cache (--invalidate=0 there, or the floor would lose it).
# The machine's other work evicts pages of the older backing files
# (qemu-io's base.vhd) sooner than flat.raw: each read figure reads every
# backing file first, so neither side reads from the disk.
warm() { cat back/*.vhd* flat*.raw >/dev/null; }
seq_read() {
	warm
	fio_rate --filename="$1" --rw=read --bs=1M --size="${size_mib}M" \
		--invalidate="${2:-1}"
}
rand_read() {
	warm
	fio_rate --filename="$1" --rw=randread --bs=4k --numjobs=2 \
		--size="${size_mib}M" --time_based --runtime="$runtime" \
		--invalidate="${2:-1}"
}
repeat_read() {
	cat "$1" >/dev/null
	fio_rate --filename="$1" --rw=read --bs=1M --size="${size_mib}M" \
		--invalidate=0
}
seq_write() { fio_rate --filename="$1" --rw=write --bs=1M \
	--size="${size_mib}M" --end_fsync=1; }
rand_write() { fio_rate --filename="$1" --rw=randwrite --bs=4k \
	--size="${size_mib}M" --time_based --runtime="$runtime" --end_fsync=1; }
loop_write() {
	local dev
	dev=$(losetup --find --show --direct-io=on "$1")
	loops+=("$dev")
	[ "$(cat "/sys/block/${dev#/dev/}/loop/dio")" = 1 ] ||
		echo "warning: $dev on $1 has no direct I/O" >&2
	fio_rate --filename="$dev" --rw=randwrite --bs=4k --direct=1 \
		--ioengine=libaio --iodepth=16 --time_based --runtime="$runtime" \
		--end_fsync=1 --size="${size_mib}M"
	losetup -d "$dev"
	unset 'loops[-1]'
}
wall_rate() { # MiB/s of a command reading size_mib MiB to /dev/null
	local t0 t1
	"$@" >/dev/null # warm: both sides read from the page cache
	t0=$(date +%s%N)
	"$@" >/dev/null
	t1=$(date +%s%N)
	awk -v s="$size_mib" -v ns=$((t1 - t0)) 'BEGIN { print s / (ns / 1e9) }'
}
fresh_child() { # a new leaf of base.vhd, for writing
	rm -f mnt/w.vhd
	echo "w.vhd base.vhd" >mnt/.control
}
fresh_childx() { # a new VHDX leaf of base.vhdx, for writing
	rm -f mnt/wx.avhdx
	echo "wx.avhdx base.vhdx" >mnt/.control
}
fresh_raw() { rm -f fresh.raw && truncate -s "${size_mib}M" fresh.raw; }

create_time() { # ms to make a child of the 2040 GiB parent
	local t0 t1
	rm -f big/child.vhd
	t0=$(date +%s%N)
	"$vhd" diff big/child.vhd big/huge.vhd >/dev/null
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

round() {
	local who=$1
	case $who in
	floor)
		measure seq "$who" seq_read fr/disk.raw
		measure rand "$who" rand_read fr/disk.raw
		measure repeat "$who" repeat_read fr/disk.raw
		fresh_raw
		measure wseq "$who" seq_write fw/disk.raw
		fresh_raw
		measure wrand "$who" rand_write fw/disk.raw
		fresh_raw
		measure loop "$who" loop_write fw/disk.raw
		measure cat "$who" wall_rate cat flat3.raw
		;;
	vhdfs)
		measure seq "$who" seq_read mnt/c1.vhd
		measure seq8 "$who" seq_read mnt/d8.vhd
		measure seqx "$who" seq_read mnt/child.avhdx
		measure rand "$who" rand_read mnt/c1.vhd
		measure repeat "$who" repeat_read mnt/base.vhd
		measure repeat-ro "$who" repeat_read ro/c1.vhd
		want wseq && fresh_child
		measure wseq "$who" seq_write mnt/w.vhd
		want wrand && fresh_child
		measure wrand "$who" rand_write mnt/w.vhd
		want loop && fresh_child
		measure loop "$who" loop_write mnt/w.vhd
		rm -f mnt/w.vhd
		want wseqx && fresh_childx
		measure wseqx "$who" seq_write mnt/wx.avhdx
		want wrandx && fresh_childx
		measure wrandx "$who" rand_write mnt/wx.avhdx
		rm -f mnt/wx.avhdx
		measure cat "$who" wall_rate "$vhd" cat back/d2.vhd
		measure catxb "$who" wall_rate "$vhd" cat back/base.vhdx
		measure catx "$who" wall_rate "$vhd" cat back/child.avhdx
		measure create "$who" create_time
		;;
	native)
		measure seq "$who" seq_read flat.raw 0
		measure rand "$who" rand_read flat.raw 0
		want wseq && fresh_raw
		measure wseq "$who" seq_write fresh.raw
		want wrand && fresh_raw
		measure wrand "$who" rand_write fresh.raw
		;;
	esac
}

who_order=(floor vhdfs native)
[ "${NATIVE:-1}" = 0 ] && who_order=(floor vhdfs)
for ((r = 1; r <= rounds; r++)); do
	echo "round $r of $rounds..." >&2
	for ((k = 0; k < ${#who_order[@]}; k++)); do
		round "${who_order[(k + r - 1) % ${#who_order[@]}]}"
	done
done

median() {
	tr ' ' '\n' <<<"$1" | { grep . || echo 0; } | sort -g | awk '{ v[NR] = $1 }
		END { m = int((NR + 1) / 2); print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'
}
get() { median "${res["$1|$2"]:-}"; }
row() { # LABEL FIGURE WHO [FLOOR_FIGURE]; nothing for an unmeasured one
	local v f
	[ -n "${res["$2|$3"]:-}" ] || return 0
	v=$(get "$2" "$3")
	f=$(get "${4:-$2}" floor)
	printf '%-50s %8.0f MiB/s  %5.2fx floor\n' "$1" "$v" \
		"$(awk -v a="$v" -v b="$f" 'BEGIN { print a / b }')"
}

# RSS of the vhdfs daemon while streaming: peak after one pass of the
# depth-8 leaf and after three (no growth means a longer stream adds none).
if [ -z "$figures" ]; then
	rss_pid=${pids[0]}
	hwm() { awk '/VmHWM/ { print $2 }' "/proc/$rss_pid/status"; }
	dd if=mnt/d8.vhd of=/dev/null bs=1M status=none
	rss1=$(hwm)
	for _ in 1 2; do
		dd if=mnt/d8.vhd of=/dev/null bs=1M status=none
	done
	rss3=$(hwm)
	# In-memory tables of the open chain: 4 bytes per BAT entry and one
	# cached sector bitmap per allocated block, for each of the 9 levels.
	bats=$((9 * (size_mib / 2) * (4 + 512) / 1024))
fi

echo
echo "vhdfs bench: ${size_mib} MiB images, median of $rounds rounds, ${SECONDS} s," \
	"$(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' \
	/proc/cpuinfo)), kernel $(uname -r)"
row "floor: seq 1 MiB reads (fio, 1 job)" seq floor
row "native: seq 1 MiB reads of the flat file" seq native
row "vhdfs: seq 1 MiB reads, depth-1 child" seq vhdfs
row "vhdfs: seq 1 MiB reads, depth-8 child" seq8 vhdfs seq
if want seq8 && want seq; then
	printf '%-50s %23.2fx depth 1\n' "vhdfs: depth 8 vs depth 1" \
		"$(awk -v a="$(get seq8 vhdfs)" -v b="$(get seq vhdfs)" \
			'BEGIN { print a / b }')"
fi
row "vhdfs: seq 1 MiB reads, VHDX depth-1 child" seqx vhdfs seq
row "floor: random 4 KiB reads (2 jobs)" rand floor
row "native: random 4 KiB reads" rand native
row "vhdfs: random 4 KiB reads, depth-1 child" rand vhdfs
row "floor: repeat seq reads (after a cat)" repeat floor
row "vhdfs: repeat seq reads of a parent" repeat vhdfs
row "vhdfs: repeat seq reads of a leaf, -o ro mount" repeat-ro vhdfs repeat
row "floor: seq 1 MiB writes + fsync" wseq floor
row "native: seq 1 MiB writes + fsync" wseq native
row "vhdfs: seq 1 MiB writes + fsync, fresh child" wseq vhdfs
row "vhdfs: seq 1 MiB writes + fsync, fresh VHDX child" wseqx vhdfs wseq
row "floor: random 4 KiB writes + fsync" wrand floor
row "native: random 4 KiB writes + fsync" wrand native
row "vhdfs: random 4 KiB writes + fsync, fresh child" wrand vhdfs
row "vhdfs: random 4 KiB writes + fsync, VHDX child" wrandx vhdfs wrand
row "floor: loop dio=on, 4 KiB random writes, qd16" loop floor
row "vhdfs: loop dio=on, 4 KiB random writes, qd16" loop vhdfs
row "cat of the flat raw file" cat floor
row "vhd cat of a 3-level chain" cat vhdfs
row "vhd cat of base.vhdx (qemu-made)" catxb vhdfs cat
row "vhd cat of a 2-level VHDX chain" catx vhdfs cat
want create && printf '%-50s %8d ms     (target < 50 ms)\n' \
	"vhd diff: child of a 2040 GiB parent" "$(get create vhdfs)"
[ -n "$figures" ] && exit 0
printf '%-50s %8d KiB after %d MiB, %d KiB after %d MiB\n' \
	"vhdfs daemon peak RSS (VmHWM) streaming d8" "$rss1" "$size_mib" \
	"$rss3" $((3 * size_mib))
printf '%-50s %8d KiB (9 levels)\n' "  of which open BATs and bitmaps, at most" \
	"$bats"

"$repo/scripts/bench-ops.sh" "$size_mib"
