# shellcheck shell=bash
# Sourced by bench-ops.sh and bench-close.sh: a scratch directory $work
# with a mount point $mnt, removed at exit (unmounted first), and one
# vhdfs daemon at a time ($daemon).

# bench_setup NAME: make $work (/tmp/vhdfs-NAME.XXXXXX) and $mnt in it.
bench_setup() {
	work=$(mktemp -d "/tmp/vhdfs-$1.XXXXXX")
	mnt=$work/mnt
	daemon=
	mkdir -p "$mnt"
	trap bench_cleanup EXIT
}

bench_cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" || true
	fi
	[ -n "$daemon" ] && wait "$daemon" 2>/dev/null || true
	rm -rf "$work"
}

# bench_mount VHDFS BACKING_DIR: run VHDFS in the foreground on $mnt and
# wait for the mount (its stderr: $work/daemon.log).
bench_mount() {
	"$1" -f "$2" "$mnt" 2>"$work/daemon.log" &
	daemon=$!
	for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
	mountpoint -q "$mnt" || {
		cat "$work/daemon.log" >&2
		exit 1
	}
}

# bench_umount: unmount $mnt; the daemon's exit status.
bench_umount() {
	local st=0

	fusermount3 -u "$mnt"
	wait "$daemon" || st=$?
	daemon=
	return "$st"
}
