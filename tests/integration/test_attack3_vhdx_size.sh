#!/usr/bin/env bash
# asan: yes
# A VHDX may be up to 64 TiB, and the manual and README say expand grows
# one that far, but `create` and `expand` through .control and the CLI's
# `vhd create`/`vhd expand` refused any size past 2040 GiB, the VHD
# limit, whatever the format. The limit now follows the format: a .vhdx
# name may be created up to 64T and a VHDX expanded up to 64T, a VHD
# still stops at 2040G (EINVAL, naming the limit); qemu-img agrees on the
# sizes made.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img fusermount3
require_bins "$VHD"

TiB=$((1024 * 1024 * 1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
qsize() { qemu-img info --output=json "$1" | "$PY" -c \
	'import json, sys; print(json.load(sys.stdin)["virtual-size"])'; }
last() { tail -n 1 "$M/.control"; }

# The CLI.
"$VHD" create "$T/c.vhdx" 3T >/dev/null || fail "vhd create of a 3T VHDX"
assert_eq $((3 * TiB)) "$(qsize "$T/c.vhdx")" "size of the 3T VHDX"
"$VHD" expand "$T/c.vhdx" 4T >/dev/null || fail "vhd expand of a VHDX to 4T"
assert_eq $((4 * TiB)) "$(qsize "$T/c.vhdx")" "size after vhd expand"
"$VHD" check "$T/c.vhdx" >&2 || fail "check of c.vhdx"
set +e
"$VHD" create "$T/c.vhd" 3T 2>"$T/err"
rc=$?
set -e
assert_eq 2 "$rc" "vhd create of a 3T VHD"
grep -q 2040G "$T/err" || fail "the VHD limit is not named: $(cat "$T/err")"
set +e
"$VHD" create "$T/d.vhdx" 65T 2>"$T/err"
rc=$?
set -e
assert_eq 2 "$rc" "vhd create of a 65T VHDX"
grep -q 64T "$T/err" || fail "the VHDX limit is not named: $(cat "$T/err")"

# Through .control.
"$VHD" create "$B/small.vhdx" 1G >/dev/null
"$VHD" create "$B/small.vhd" 1G >/dev/null
vhdfs_mount "$B" "$M"
ctl "$M" "create big.vhdx 3T"
last | grep -q '^ReturnValue=0 ' || fail "create big.vhdx 3T: $(last)"
assert_eq $((3 * TiB)) "$(stat -c %s "$M/big.vhdx")" "st_size of big.vhdx"
expect_errno EINVAL ctl "$M" "create huge.vhdx 65T"
last | grep -q 'size too large: 65T (limit 64T)' || fail "65T: $(last)"
expect_errno EINVAL ctl "$M" "create big.vhd 3T"
last | grep -q 'size too large: 3T (limit 2040G)' || fail "3T VHD: $(last)"
expect_errno EINVAL ctl "$M" "expand small.vhd 3T"
last | grep -q 'larger than a VHD can be' || fail "expand VHD: $(last)"
ctl "$M" "expand small.vhdx 3T"
id=$(last_job "$M")
[ -n "$id" ] || fail "expand small.vhdx 3T did not start a job: $(last)"
job_wait "$M" "$id"
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "expand JobState"
assert_eq $((3 * TiB)) "$(stat -c %s "$M/small.vhdx")" "st_size after expand"
vhdfs_umount "$M"
assert_eq $((3 * TiB)) "$(qsize "$B/small.vhdx")" "qemu size after expand"
assert_eq $((3 * TiB)) "$(qsize "$B/big.vhdx")" "qemu size of big.vhdx"
for f in small.vhdx big.vhdx small.vhd; do
	"$VHD" check "$B/$f" >&2 || fail "check of $f"
done
[ ! -e "$B/huge.vhdx" ] && [ ! -e "$B/big.vhd" ] ||
	fail "a refused create left a file"
exit 0
