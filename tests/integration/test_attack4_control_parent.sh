#!/usr/bin/env bash
# asan: yes
# An unterminated .control line runs at the last close only. The daemon
# looked for other descriptors among the closing process, the opener and
# their descendants, not the closer's parent: in
# `bash -c 'printf "create a.vhd" >&3; (cat; printf " 1M\n" >&3) &' 3>.control`
# the opener (bash -c) has ended when cat exits; cat's exit closed its copy
# while the subshell that forked it kept one, and 'create a.vhd' ran alone
# (32773), then ' 1M' as a command of its own.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
vhdfs_mount "$B" "$M"
mkfifo "$T/go" "$T/done"

# The opener ends first; then cat (a child of the background subshell)
# closes its copy; then the subshell finishes the line and closes.
bash -c 'printf "create a.vhd" >&3
	(cat "$1" >/dev/null; printf " 1M\n" >&3; exec 3>&-; echo >"$2") &
	exit 0' _ "$T/go" "$T/done" 3>"$M/.control"
echo >"$T/go"
read -r _ <"$T/done"

assert_eq 'ReturnValue=0 Command="create a.vhd 1M"' "$(tail -n 1 "$M/.control")" \
	"the last .control result"
grep -q 32773 "$M/.control" && fail "a part of the line ran: $(cat "$M/.control")"
[ -f "$B/a.vhd" ] || fail "a.vhd was not created"
vhdfs_umount "$M"
"$VHD" check "$B/a.vhd" >"$T/check" 2>&1 || fail "vhd check: $(cat "$T/check")"
