# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Shared helpers for vhdfs integration tests. Source it first thing:
#
#	. "$(dirname "$0")/../lib/mount.sh"
#
# It sets `set -euo pipefail`, makes the test's own temporary directory $T,
# and installs ONE EXIT trap that runs the registered cleanup actions newest
# first (inner filesystems, loop devices, vhdfs mounts), then checks that
# every vhdfs daemon exited 0. A failing cleanup fails the test.
#
# Environment (from tests/run.sh): VHD, VHDFS, TESTDATA, REPO, BUILD.
# Exit status: 0 pass, 77 skip (turned into a failure when CI=true), else
# fail.

set -euo pipefail
# Error messages are matched as text: keep them untranslated.
export LC_ALL=C

T_NAME=$(basename "$0" .sh)
: "${REPO:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${BUILD:=$REPO/build}"
: "${VHD:=$BUILD/vhd}"
: "${VHDFS:=$BUILD/vhdfs}"
# The system python has pyvhdi; a python3 earlier in PATH may not.
PY=/usr/bin/python3

# Sanitizer settings for a daemon built with `make asan`: report and fail.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

T=$(realpath "$(mktemp -d "${TMPDIR:-/tmp}/vhdfs-$T_NAME.XXXXXX")")

# Run on its own (not from tests/run.sh): unpack the real-world images.
if [ -z "${TESTDATA:-}" ]; then
	. "$REPO/tests/lib/testdata.sh"
	TESTDATA=$T/testdata
	testdata_unpack "$TESTDATA" || {
		echo "$T_NAME: cannot unpack the test data" >&2
		exit 1
	}
fi

_T_CLEANUPS=()
declare -A _T_PID=()    # mountpoint -> daemon pid
declare -A _T_LOG=()    # mountpoint -> daemon log
_T_NMOUNT=0

log() { printf '%s: %s\n' "$T_NAME" "$*" >&2; }

fail() {
	printf '%s: FAIL: %s\n' "$T_NAME" "$*" >&2
	exit 1
}

# A skip is a failure in CI: mount tests must really run there.
skip() {
	if [ "${CI:-}" = true ]; then
		fail "cannot run under CI=true: $*"
	fi
	printf '%s: SKIP: %s\n' "$T_NAME" "$*" >&2
	exit 77
}

# Register a shell command to run at exit (newest first).
cleanup_push() { _T_CLEANUPS+=("$*"); }

_t_exit() {
	local rc=$? i
	set +e
	trap - EXIT
	# Descriptors a test held open on the mount would make it busy.
	for i in 3 4 5 6 7 8 9; do eval "exec $i>&-"; done
	for ((i = ${#_T_CLEANUPS[@]} - 1; i >= 0; i--)); do
		if ! eval "${_T_CLEANUPS[i]}"; then
			printf '%s: cleanup failed: %s\n' "$T_NAME" \
				"${_T_CLEANUPS[i]}" >&2
			[ "$rc" -ne 0 ] || rc=1
		fi
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		local l
		for l in "$T"/vhdfs-*.log; do
			[ -s "$l" ] || continue
			printf '%s: --- tail of %s ---\n' "$T_NAME" "$l" >&2
			tail -n 40 "$l" >&2
		done
	fi
	if grep -qF " $T" /proc/self/mountinfo; then
		printf '%s: mounts left under %s, not removing it\n' \
			"$T_NAME" "$T" >&2
		[ "$rc" -ne 0 ] || rc=1
	elif [ -n "${KEEP_TMP:-}" ]; then
		printf '%s: kept %s\n' "$T_NAME" "$T" >&2
	else
		rm -rf --one-file-system "$T"
	fi
	exit "$rc"
}
trap _t_exit EXIT
# Name the command when set -e ends the test, so no failure is silent.
set -o errtrace
trap '[[ $- != *e* ]] || printf "%s: line %s: command failed (status %s): %s\n" \
	"$T_NAME" "$LINENO" "$?" "$BASH_COMMAND" >&2' ERR
# Run the EXIT trap on signals too (e.g. tests/run.sh's timeout).
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# ---------------------------------------------------------------- asserts

assert_eq() { # EXPECTED ACTUAL [WHAT]
	[ "$1" = "$2" ] ||
		fail "${3:-value}: expected '$1', got '$2'"
}

assert_cmp() { # EXPECTED_FILE ACTUAL_FILE [WHAT]
	local out
	out=$(cmp -- "$1" "$2" 2>&1) || fail "${3:-content} differs: $out"
}

# strerror text of an errno name, as the shell and coreutils print it.
errno_msg() {
	case "$1" in
	EPERM) echo "Operation not permitted" ;;
	ENOENT) echo "No such file or directory" ;;
	EIO) echo "Input/output error" ;;
	EACCES) echo "Permission denied" ;;
	EBUSY) echo "Device or resource busy" ;;
	EEXIST) echo "File exists" ;;
	EINVAL) echo "Invalid argument" ;;
	EROFS) echo "Read-only file system" ;;
	ENOSPC) echo "No space left on device" ;;
	ENXIO) echo "No such device or address" ;;
	ELOOP) echo "Too many levels of symbolic links" ;;
	EOPNOTSUPP) echo "Operation not supported" ;;
	ENAMETOOLONG) echo "File name too long" ;;
	*) fail "errno_msg: unknown errno name $1" ;;
	esac
}

# expect_errno ERRNO CMD...: CMD must fail and its error message must be
# strerror(ERRNO) (e.g. `bash: echo: write error: No such file or
# directory`). The command runs in a subshell so a redirection error does
# not end the test.
expect_errno() {
	local name=$1 msg err rc
	shift
	msg=$(errno_msg "$name")
	set +e
	err=$( ("$@") 2>&1 >/dev/null)
	rc=$?
	set -e
	[ "$rc" -ne 0 ] || fail "expected $name, but succeeded: $*"
	case "$err" in
	*"$msg"*) ;;
	*) fail "expected $name ($msg) from: $*; got rc=$rc: $err" ;;
	esac
}

# Exact errno of open(2)/unlink/rename etc. through python, for checks the
# shell cannot make precisely. py_errno OP PATH [ARG]: prints the errno name
# or OK.
py_errno() {
	"$PY" - "$@" <<'EOF'
import errno, os, sys
op, path = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else None
try:
    if op == "open_rw":
        os.close(os.open(path, os.O_RDWR))
    elif op == "open_wr":
        os.close(os.open(path, os.O_WRONLY))
    elif op == "open_rd":
        os.close(os.open(path, os.O_RDONLY))
    elif op == "unlink":
        os.unlink(path)
    elif op == "rename":
        os.rename(path, arg)
    elif op == "truncate":
        os.truncate(path, int(arg))
    else:
        sys.exit("py_errno: unknown op " + op)
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

# ctl MNT LINE: write one command line to MNT/.control (the shell's echo).
ctl() {
	echo "$2" >"$1/.control"
}

# job_wait MNT ID: the documented wait loop on MNT/.jobs/ID, bounded so a
# stuck job fails the test.
job_wait() {
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q '^JobState=[34]$' "$1/.jobs/$2" || return 0
		sleep 0.1
	done
	cat "$1/.jobs/$2" >&2
	fail "job $2 still running after 120 s"
}

# The job a ReturnValue=4096 line starts, from the latest result of MNT.
last_job() { # MNT
	tail -n 1 "$1/.control" |
		sed -n 's|^ReturnValue=4096 Job=\.jobs/\([0-9]*\) .*|\1|p'
}

# Listing with sizes and hashes of every file under DIR, for "nothing was
# left behind / nothing changed" checks.
dir_state() {
	(cd "$1" && find . -mindepth 1 \( -type f -printf '%y %s %p\n' -o \
		! -type f -printf '%y %p -> %l\n' \) | sort &&
		find . -type f -print0 | sort -z | xargs -0r sha256sum)
}

require_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (FUSE mounts, loop devices)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			skip "missing command $c (run scripts/install-deps.sh)"
	done
}

require_bins() {
	[ -x "$VHDFS" ] || fail "vhdfs daemon not built: $VHDFS"
	local b
	for b in "$@"; do
		[ -x "$b" ] || fail "not built: $b"
	done
}

# ---------------------------------------------------------------- mounts

is_mounted() { # DIR (by /proc/self/mountinfo: never blocks on a dead FUSE)
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# vhdfs_mount BACKING MNT [FUSE options...]: start the daemon in the
# foreground (in the background of this shell) with its own log file, wait
# for the mount to appear, register its unmount.
vhdfs_mount() {
	local backing=$1 mnt i pid log
	mkdir -p "$2"
	mnt=$(realpath "$2")
	shift 2
	_T_NMOUNT=$((_T_NMOUNT + 1))
	log="$T/vhdfs-$_T_NMOUNT.log"
	"$VHDFS" -f "$@" "$backing" "$mnt" >"$log" 2>&1 &
	pid=$!
	_T_PID[$mnt]=$pid
	_T_LOG[$mnt]=$log
	cleanup_push "vhdfs_umount '$mnt'"
	# Bounded wait for the mount (slow under ASan, hence generous).
	for ((i = 0; i < 600; i++)); do
		is_mounted "$mnt" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" && i=0 || i=$?
			unset "_T_PID[$mnt]"
			fail "vhdfs exited (status $i) before mounting $mnt"
		fi
		sleep 0.05
	done
	fail "vhdfs did not mount $mnt within 30 s"
}

vhdfs_pid() { echo "${_T_PID[$(realpath "$1")]}"; }
vhdfs_log() { echo "${_T_LOG[$(realpath "$1")]}"; }

# Wait (bounded) for daemon PID to exit; return its exit status.
_wait_daemon() {
	local pid=$1 i
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		printf '%s: daemon %s still running 30 s after unmount\n' \
			"$T_NAME" "$pid" >&2
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	local rc=0
	wait "$pid" || rc=$?
	return "$rc"
}

# vhdfs_umount MNT: `fusermount3 -u` (never lazy; retried while EBUSY, as a
# just-detached loop device may hold the file a moment longer), then the
# daemon must exit 0. Idempotent: nothing to do if already unmounted by us.
vhdfs_umount() {
	local mnt pid i err rc=0
	mnt=$(realpath "$1")
	pid=${_T_PID[$mnt]:-}
	[ -n "$pid" ] || return 0
	unset "_T_PID[$mnt]"
	for ((i = 0; i < 100; i++)); do
		is_mounted "$mnt" || break
		err=$(fusermount3 -u "$mnt" 2>&1) && break
		case "$err" in
		*busy*) sleep 0.1 ;;
		*)
			printf '%s: fusermount3 -u %s: %s\n' "$T_NAME" \
				"$mnt" "$err" >&2
			return 1
			;;
		esac
	done
	if is_mounted "$mnt"; then
		printf '%s: %s still mounted (busy): %s\n' "$T_NAME" "$mnt" \
			"$err" >&2
		fuser -vm "$mnt" >&2 2>&1 || true
		return 1
	fi
	_wait_daemon "$pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		printf '%s: vhdfs for %s exited with status %s (log %s)\n' \
			"$T_NAME" "$mnt" "$rc" "${_T_LOG[$mnt]}" >&2
		return 1
	fi
	return 0
}

# vhdfs_abort MNT: abort the FUSE connection of MNT (as given to
# vhdfs_mount, never realpath'ed here: a hung mount would hang that too),
# which fails every request waiting on a deadlocked daemon so the test can
# report and clean up.
vhdfs_abort() {
	local dev conn=/sys/fs/fuse/connections
	dev=$(awk -v m="$1" '$5 == m { d = $3 } END { print d }' \
		/proc/self/mountinfo)
	[ -n "$dev" ] || return 0
	[ -d "$conn/${dev#*:}" ] ||
		mount -t fusectl fusectl "$conn" 2>/dev/null || true
	echo 1 >"$conn/${dev#*:}/abort"
}

# bounded MNT CMD...: run CMD; a hang (deadlock) fails the test instead of
# hanging it: after 30 s the connection of MNT is aborted.
bounded() {
	local mnt=$1 pid i rc=0
	shift
	"$@" &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" || rc=$?
			return "$rc"
		fi
		sleep 0.05
	done
	log "hung, aborting the FUSE connection of $mnt: $*"
	vhdfs_abort "$mnt"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" || true
	fail "hung (deadlock) until the connection was aborted: $*"
}

# Crash case only: SIGKILL the daemon of MNT and remove the dead mount
# (a dead FUSE mount normally unmounts; lazy only as a last resort here).
# With --keep-mount the dead mount is left for the caller (auto_unmount).
vhdfs_kill9() {
	local mnt pid
	mnt=$(realpath "$1")
	pid=${_T_PID[$mnt]}
	unset "_T_PID[$mnt]"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	if [ "${2:-}" = --keep-mount ]; then
		cleanup_push "! is_mounted '$mnt' || fusermount3 -u -z '$mnt'"
		return 0
	fi
	if ! fusermount3 -u "$mnt" 2>/dev/null; then
		log "dead mount did not unmount normally; lazy unmount"
		fusermount3 -u -z "$mnt"
	fi
	! is_mounted "$mnt" || fail "dead mount $mnt still mounted"
}

# ---------------------------------------------------------- loop devices

# loop_attach FILE: attach FILE to a free loop device, set LOOPDEV to it
# and register its detach (by name). Not for $(...): the registration would
# be lost in the subshell.
loop_attach() {
	LOOPDEV=$(losetup -f --show -- "$1") || fail "losetup $1"
	cleanup_push "loop_detach '$LOOPDEV' '$(realpath "$1")'"
}

# loop_detach DEV [FILE]: detach DEV if it is (still) attached to FILE, so
# a device name reused by a later attach is never detached by mistake.
loop_detach() {
	local dev=$1 name i back
	name=${dev#/dev/}
	back=$(cat "/sys/block/$name/loop/backing_file" 2>/dev/null) ||
		return 0
	[ -z "${2:-}" ] || [ "$back" = "$2" ] || return 0
	losetup -d "$dev" || return 1
	# Detach completes asynchronously once the last opener is gone.
	for ((i = 0; i < 100; i++)); do
		[ -e "/sys/block/$name/loop/backing_file" ] || return 0
		sleep 0.1
	done
	printf '%s: %s still attached\n' "$T_NAME" "$dev" >&2
	return 1
}

# mount_fs DEV DIR [mount options...]: mount a filesystem, register umount.
mount_fs() {
	local dev=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	mount "$@" "$dev" "$dir"
	cleanup_push "umount_fs '$(realpath "$dir")'"
}

umount_fs() {
	is_mounted "$1" || return 0
	umount "$1"
}

# ----------------------------------------------------------------- images

# make_base PATH SIZE [BYTE LEN [OFF]]: a qemu-made dynamic VHD whose
# original and current size are exactly SIZE (force_size), optionally with
# LEN bytes of pattern BYTE written at OFF.
make_base() {
	qemu-img create -q -f vpc -o subformat=dynamic,force_size=on \
		"$1" "$2"
	if [ $# -ge 4 ]; then
		qemu_write "$1" "$3" "${5:-0}" "$4"
	fi
}

# qemu_write PATH BYTE OFF LEN: fill with a pattern (dynamic/fixed only:
# qemu treats differencing images as dynamic).
qemu_write() {
	qemu-io -f vpc -c "write -P $2 $3 $4" "$1" >/dev/null
}

# qemu_flat PATH OUT: flat content of a dynamic/fixed VHD.
qemu_flat() {
	qemu-img convert -f vpc -O raw "$1" "$2"
}

# sha256 of a file
sha() { sha256sum -- "$1" | cut -d' ' -f1; }

# ------------------------------------------------------------------- jobs

# job_of "LINE": the job id a `ReturnValue=4096 Job=.jobs/ID` result names.
job_of() {
	sed -n 's|^ReturnValue=4096 Job=\.jobs/\([0-9][0-9]*\) .*|\1|p' <<<"$1"
}
# job_field JOBFILE KEY: one Key=Value field of a .jobs/ID file.
job_field() { sed -n "s/^$2=//p" "$1"; }
# job_wait MNT ID: the documented wait loop, bounded so a stuck job fails.
job_wait() {
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q 'JobState=[34]$' "$1/.jobs/$2" || return 0
		sleep 0.1
	done
	cat "$1/.jobs/$2" >&2
	fail "job $2 still running after 120 s"
}
