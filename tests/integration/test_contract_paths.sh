#!/usr/bin/env bash
# Control file paths (design.md): relative to BACKING_DIR, or absolute
# inside MOUNTPOINT or BACKING_DIR, spelled any way the kernel accepts
# ("//x", "a//b", "./", "d/.."); paths with spaces in double quotes.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B/my dir" "$B/sd"
"$VHD" create "$B/base.vhd" 4M >/dev/null
vhdfs_mount "$B" "$M"

n=0
made() { # LINE: the command succeeds and makes child c$n.vhd beside base
	ctl "$M" "$1"
	[ -f "$B/c$n.vhd" ] || fail "'$1' did not make c$n.vhd"
	assert_eq "$B/base.vhd" "$(getfattr --only-values -n user.vhd.parent \
		"$M/c$n.vhd")" "parent of c$n.vhd"
	n=$((n + 1))
}
made "c$n.vhd base.vhd"
made "./c$n.vhd ./base.vhd"
made "sd/../c$n.vhd sd/../base.vhd"
made "$M/c$n.vhd $M/base.vhd"
made "$B/c$n.vhd $B/base.vhd"
made "/$M/c$n.vhd /$B/base.vhd"
made "${M%/*}//${M##*/}//c$n.vhd ${B%/*}//${B##*/}/base.vhd"
made "$M/./c$n.vhd base.vhd"

# Quoted paths with spaces, relative and absolute.
ctl "$M" "\"$M/my dir/c 1.vhd\" \"$M/base.vhd\""
ctl "$M" "diff \"my dir/c 2.vhd\" \"my dir/c 1.vhd\""
assert_eq "$B/my dir/c 1.vhd" "$(getfattr --only-values -n user.vhd.parent \
	"$M/my dir/c 2.vhd")" "parent of 'my dir/c 2.vhd'"
grep -qxF "ReturnValue=0 Command=\"diff \\\"my dir/c 2.vhd\\\" \\\"my dir/c 1.vhd\\\"\"" \
	"$M/.control" || fail "result line of the quoted command: $(tail -n 1 "$M/.control")"

# A path that cannot name a file says why: no such file (also under a
# file, ENOTDIR) is 32779 ENOENT; a symlink loop is not "not found".
expect_errno ENOENT ctl "$M" "x1.vhd base.vhd/p.vhd"
ln -s loop.vhd "$B/loop.vhd"
set +e
ctl "$M" "x2.vhd loop.vhd" 2>/dev/null
set -e
line=$(tail -n 1 "$M/.control")
case "$line" in
*"Error=\"loop.vhd: Too many levels of symbolic links\""*) ;;
*) fail "symlink loop: $line" ;;
esac
[ ! -e "$B/x1.vhd" ] && [ ! -e "$B/x2.vhd" ] || fail "a failed command left a file"
