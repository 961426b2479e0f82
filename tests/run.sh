#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Test runner behind `make check`:
#
#	tests/run.sh [MODE] BUILD_DIR [[MODE] BUILD_DIR...]
#	MODE: --unit-only, --marked or --fuzz
#
# For every BUILD_DIR: each executable BUILD_DIR/tests/test_* (cmocka unit
# tests), then every tests/integration/test_*.sh and tests/interop/test_*.sh
# against that build's vhd and vhdfs. --unit-only (for the BUILD_DIRs after
# it) runs the unit tests alone; --marked the unit tests and the scripts
# marked `# asan: yes` (the TSan build); --fuzz runs each libFuzzer target
# BUILD_DIR/fuzz_* for FUZZ_TIME seconds (default 20) from its seed corpus
# tests/fuzz/corpus/NAME, and fails on any crash, leak or broken promise
# (the input is saved next to the log). Integration runs against the ASan
# build too: it costs about a minute more and catches memory errors and
# leaks in the daemon (a daemon that does not exit 0 fails its test). With
# TEST_ASAN_INTEGRATION=marked, later BUILD_DIRs run only the scripts
# marked with a line `# asan: yes` (the mount smoke tests).
#
# One line per test: PASS, FAIL (with the log path and its tail) or SKIP.
# The last line is always `N passed, N failed, N skipped`. Exit 1 if any
# test failed. Under CI=true a skipped mount test (exit 77) is a failure.
#
# Environment: TEST_TIMEOUT (seconds per test, default 300), TEST_FILTER
# (only run tests whose name contains it), KEEP_TMP (keep test temp dirs).

set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1

if [ $# -eq 0 ]; then
	echo "usage: tests/run.sh [--unit-only|--marked|--fuzz] BUILD_DIR..." >&2
	exit 2
fi
FUZZ_TIME=${FUZZ_TIME:-20}
export FUZZ_TIME

TIMEOUT=${TEST_TIMEOUT:-300}
export REPO

passed=0
failed=0
skipped=0
failures=()
start_all=$(date +%s)

# Scratch space of this run: each test gets TMPDIR=$RUN_TMP/NAME, so leaked
# mounts and loop devices can be found and reported afterwards.
# Traversable by others: tests check that vhdfs itself refuses other users.
RUN_TMP=$(mktemp -d /tmp/vhdfs-check.XXXXXX)
chmod 755 "$RUN_TMP"

# The real-world images, unpacked once for every test of this run (unless
# TESTDATA names a directory already). If this fails, the tests that need
# them fail: missing data is never a skip.
if [ -z "${TESTDATA:-}" ]; then
	. "$REPO/tests/lib/testdata.sh"
	TESTDATA=$RUN_TMP/testdata
	testdata_unpack "$TESTDATA" ||
		echo "run.sh: could not unpack tests/data/real-world" >&2
fi
export TESTDATA

# Anything a test left mounted or attached under its TMPDIR is a failure;
# remove it so later tests start clean.
check_leaks() { # DIR
	local dir=$1 leaks="" m dev
	while read -r m; do
		leaks="$leaks mount:$m"
		umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
	done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' \
		/proc/self/mountinfo | sort -r)
	while read -r dev; do
		[ -n "$dev" ] || continue
		leaks="$leaks loop:$dev"
		losetup -d "$dev" 2>/dev/null
	done < <(losetup -l -n -O NAME,BACK-FILE 2>/dev/null |
		awk -v d="$dir/" 'index($2, d) == 1 { print $1 }')
	if [ -n "$leaks" ]; then
		echo "left behind:$leaks"
		return 1
	fi
	return 0
}

# run_one KIND NAME LOG CMD...
run_one() {
	local kind=$1 name=$2 logf=$3 rc t0 t1 tmp
	shift 3
	if [ -n "${TEST_FILTER:-}" ] && [[ $name != *"$TEST_FILTER"* ]]; then
		return 0
	fi
	mkdir -p "$(dirname "$logf")"
	tmp="$RUN_TMP/$(echo "$name" | tr -c 'A-Za-z0-9._\n-' '_')"
	mkdir -p -m 755 "$tmp"
	t0=$(date +%s)
	TMPDIR=$tmp timeout -k 15 "$TIMEOUT" "$@" </dev/null >"$logf" 2>&1
	rc=$?
	t1=$(date +%s)
	if [ "$kind" = mount ]; then
		local leak
		if ! leak=$(check_leaks "$tmp"); then
			echo "run.sh: $leak" >>"$logf"
			[ "$rc" -ne 0 ] || rc=1
		fi
	fi
	[ -n "${KEEP_TMP:-}" ] || rm -rf --one-file-system "$tmp" 2>/dev/null
	if [ "$rc" -eq 77 ] && ! { [ "$kind" = mount ] &&
		[ "${CI:-}" = true ]; }; then
		skipped=$((skipped + 1))
		printf 'SKIP %-50s (%ss) %s\n' "$name" "$((t1 - t0))" \
			"$(tail -n 1 "$logf")"
		return 0
	fi
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS %-50s (%ss)\n' "$name" "$((t1 - t0))"
		return 0
	fi
	failed=$((failed + 1))
	failures+=("$name")
	local why="exit $rc"
	[ "$rc" -ne 124 ] || why="timed out after ${TIMEOUT}s"
	[ "$rc" -ne 77 ] || why="skipped under CI=true"
	printf 'FAIL %-50s (%ss) %s, log: %s\n' "$name" "$((t1 - t0))" \
		"$why" "$logf"
	tail -n 25 "$logf" | sed 's/^/    | /'
	return 0
}

# fuzz_one TARGET LOGDIR: one smoke run of a libFuzzer target. New inputs
# go to a scratch directory, never into the committed corpus.
fuzz_one() {
	local t=$1 logdir=$2 n work
	n=$(basename "$t")
	work=$(mktemp -d "${TMPDIR:-/tmp}/$n.XXXXXX")
	# libFuzzer's default error exit status, 77, would read as a skip.
	"$t" -max_total_time="$FUZZ_TIME" -timeout=30 -rss_limit_mb=2048 \
		-error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
		-artifact_prefix="$logdir/$n-" \
		"$work" "$REPO/tests/fuzz/corpus/$n"
	local rc=$?
	rm -rf "$work"
	return "$rc"
}
export -f fuzz_one # run under timeout(1), through bash -c

mode=all
first=1
for b in "$@"; do
	case "$b" in
	--unit-only)
		mode=unit
		continue
		;;
	--fuzz)
		mode=fuzz
		continue
		;;
	--marked)
		mode=marked
		continue
		;;
	esac
	if [ ! -d "$b" ]; then
		failed=$((failed + 1))
		failures+=("$b")
		echo "FAIL $b: no such build directory (run make / make asan)"
		continue
	fi
	BUILD=$(cd "$b" && pwd)
	VHD=$BUILD/vhd
	VHDFS=$BUILD/vhdfs
	export BUILD VHD VHDFS
	logs=$BUILD/test-logs
	rm -rf "$logs"
	mkdir -p "$logs"
	label=${BUILD#"$REPO"/}

	if [ "$mode" = fuzz ]; then
		found=0
		for t in "$BUILD"/fuzz_*; do
			[ -f "$t" ] && [ -x "$t" ] || continue
			found=1
			n=$(basename "$t")
			run_one unit "$label/$n (${FUZZ_TIME}s)" "$logs/$n.log" \
				bash -c 'fuzz_one "$@"' fuzz_one "$t" "$logs"
		done
		if [ "$found" -eq 0 ]; then
			failed=$((failed + 1))
			failures+=("$label")
			echo "FAIL $label: no fuzz targets (run make fuzz)"
		fi
		continue
	fi

	found=0
	for t in "$BUILD"/tests/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		found=1
		n=$(basename "$t")
		run_one unit "$label/tests/$n" "$logs/$n.log" "$t"
	done
	if [ "$found" -eq 0 ]; then
		failed=$((failed + 1))
		failures+=("$label/tests")
		echo "FAIL $label/tests: no unit test binaries (run make tests)"
	fi

	if [ "$mode" != unit ]; then
		for t in tests/integration/test_*.sh tests/interop/test_*.sh; do
			[ -f "$t" ] || continue
			if { [ "$mode" = marked ] || { [ "$first" -eq 0 ] &&
				[ "${TEST_ASAN_INTEGRATION:-all}" = marked ]; }; } &&
				! grep -q '^# asan: yes' "$t"; then
				continue
			fi
			n=${t#tests/}
			name=$n
			[ "$first" -eq 1 ] || name="$n [$label]"
			run_one mount "$name" "$logs/${n//\//_}.log" \
				bash "$t"
		done
	fi
	first=0
done

if [ -n "${KEEP_TMP:-}" ]; then
	echo "run.sh: test directories kept in $RUN_TMP"
else
	rm -rf --one-file-system "$RUN_TMP"
fi

echo "run.sh: $(($(date +%s) - start_all))s in all${failures[*]:+; failed: ${failures[*]}}"
summary="$passed passed, $failed failed"
[ "$skipped" -eq 0 ] || summary="$summary, $skipped skipped"
# Kept for .ci/run, which repeats it after make's own error line.
echo "$summary" >"$REPO/build/test-summary" 2>/dev/null || true
echo "$summary"
[ "$failed" -eq 0 ]
