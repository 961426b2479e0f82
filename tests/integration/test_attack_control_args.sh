#!/usr/bin/env bash
# asan: yes
# Hostile .control arguments get the errno of the table and leave nothing
# behind: a new image under a path whose "directory" is a file is ENOENT
# (32779, "directory not found"), not EIO (it was 32768 "not a
# directory"); escapes by "..", absolute paths and symlinks are EACCES;
# FIFOs, devices and directories as parents EINVAL; the names of the
# control file and .jobs are not images (EINVAL / ENOENT); names with
# tabs, quotes, backslashes and invalid UTF-8 work when quoted.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_bins "$VHD"

B=$T/backing
M=$T/mnt
O=$T/outside
mkdir -p "$B/d" "$O"
"$VHD" create "$B/base.vhd" 1M >/dev/null
"$VHD" create "$T/o.vhd" 1M >/dev/null
mkfifo "$B/fifo.vhd"
ln -s "$O" "$B/out"
vhdfs_mount "$B" "$M"
before=$(dir_state "$B")

rv() { # ERRNO RETURNVALUE LINE
	expect_errno "$1" ctl "$M" "$3"
	tail -n 1 "$M/.control" | grep -q "^ReturnValue=$2 " ||
		fail "'$3': $(tail -n 1 "$M/.control")"
}
rv ENOENT 32779 "diff base.vhd/x.vhd base.vhd"
rv ENOENT 32779 "create base.vhd/x.vhd 1M"
rv ENOENT 32779 "convert base.vhd base.vhd/x.vhd dynamic"
rv EACCES 32769 "diff ../x.vhd base.vhd"
rv EACCES 32769 "diff d/../../x.vhd base.vhd"
rv EACCES 32769 "diff $O/x.vhd base.vhd"
rv EACCES 32769 "diff out/x.vhd base.vhd"
rv EACCES 32769 "compact ../o.vhd"
rv EACCES 32769 "merge $T/o.vhd"
rv EINVAL 32773 "diff x.vhd fifo.vhd"
rv EINVAL 32773 "diff x.vhd /dev/zero"
rv EINVAL 32773 "diff x.vhd d"
rv EINVAL 32773 "diff .control base.vhd"
rv ENOENT 32779 "diff .jobs/x.vhd base.vhd"
rv EINVAL 32773 "diff \"x.vhd base.vhd"
rv EINVAL 32773 "cancel -1"
rv EINVAL 32773 "cancel 18446744073709551616"
assert_eq "$before" "$(dir_state "$B")" "backing dir after refused commands"
assert_eq "" "$(ls -A "$O")" "outside dir"

for name in "$(printf 't\tb.vhd')" 'q\"x.vhd' 'bs\\y.vhd' "$(printf 'u\xff\xfe.vhd')"; do
	ctl "$M" "diff \"$name\" base.vhd"
done
assert_eq 4 "$(find "$B" -maxdepth 1 -name '*.vhd' ! -name base.vhd \
	! -name fifo.vhd | wc -l)" "children with odd names"
vhdfs_umount "$M"
exit 0
