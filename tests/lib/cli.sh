# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Shared preamble of the vhd CLI tests (tests/integration/test_cli_*.sh),
# which run the CLI only and mount nothing. Source it first thing:
#
#	. "$(dirname "$0")/../lib/cli.sh"
#
# then skip on what is missing (need_cmd, skip) and call cli_tmpdir.
#
# Environment (from tests/run.sh; defaults for a direct run): REPO, VHD.
# Exit status: 0 pass, 77 skip, else fail.
#
# Not tests/lib/mount.sh: that one prefixes messages with the test name,
# fails a skip under CI=true and checks daemons at exit; these tests keep
# their own plainer messages.

set -euo pipefail

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VHD=${VHD:-$REPO/build/vhd}
# A relative VHD is relative to where the test started, before cli_tmpdir.
case $VHD in /*) ;; *) VHD=$PWD/$VHD ;; esac
# The system python has pyvhdi; a python3 earlier in PATH may not.
PY=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }
skip() { echo "skip: $*"; exit 77; }

[ -x "$VHD" ] || fail "vhd CLI not found at $VHD"

# need_cmd CMD...: skip the test unless every CMD is on PATH.
need_cmd() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || skip "$t missing"
	done
}

# cli_tmpdir: the test's own directory $tmp (vhd-cli-NAME.XXXXXX for
# test_cli_NAME.sh), removed at exit, and the current directory from now.
cli_tmpdir() {
	local name=${0##*/}
	name=${name%.sh}
	name=${name#test_}
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/vhd-${name//_/-}.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	cd "$tmp"
}

# run STATUS CMD...: stdout to $tmp/out, stderr to $tmp/err, exact status.
run() {
	local want=$1 st=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || st=$?
	if [ "$st" -ne "$want" ]; then
		cat "$tmp/out" "$tmp/err" >&2
		fail "'$*' exited $st, want $want"
	fi
}

# jget FILE EXPR: print the Python expression EXPR over d, FILE's JSON.
jget() {
	PYTHONIOENCODING=utf-8 "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}
