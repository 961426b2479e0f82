#!/usr/bin/env bash
# A VHDX may be larger than a VHD's 2040 GiB (up to 64 TiB): `vhd create`,
# `vhd expand` and the control file's create and expand make and grow one
# past 2040G (qemu-img info and check agree); the VHD limit still holds
# for VHDs (CLI: usage error 2, naming the file for expand; .control:
# 32773 EINVAL) and 64T for VHDX; nothing is left behind.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd fusermount3 qemu-img
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
TiB=$((1024 * 1024 * 1024 * 1024))

vsize() { qemu-img info --output=json "$1" |
	"$PY" -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }
status() { # CMD...: its exit status, output to $T/out
	local st=0
	"$@" >"$T/out" 2>&1 || st=$?
	echo "$st"
}

# The CLI.
assert_eq 0 "$(status "$VHD" create "$B/c3.vhdx" 3T)" "vhd create c3.vhdx 3T"
assert_eq $((3 * TiB)) "$(vsize "$B/c3.vhdx")" "c3.vhdx virtual size"
"$VHD" create "$B/e.vhdx" 1G >/dev/null
assert_eq 0 "$(status "$VHD" expand "$B/e.vhdx" 4T)" "vhd expand e.vhdx 4T"
assert_eq $((4 * TiB)) "$(vsize "$B/e.vhdx")" "e.vhdx virtual size"
qemu-img check -q -f vhdx "$B/e.vhdx" || fail "qemu-img check e.vhdx"
"$VHD" create "$B/v.vhd" 1G >/dev/null
state=$(dir_state "$B")
assert_eq 2 "$(status "$VHD" create "$B/x.vhd" 3T)" "vhd create x.vhd 3T"
assert_eq 2 "$(status "$VHD" create "$B/x.vhdx" 65T)" "vhd create x.vhdx 65T"
assert_eq 2 "$(status "$VHD" expand "$B/v.vhd" 3T)" "vhd expand v.vhd 3T"
grep -q "'3T' for $B/v.vhd (1 byte to 2040G)" "$T/out" ||
	fail "expand message: $(cat "$T/out")"
assert_eq "$state" "$(dir_state "$B")" "backing dir after refusals"

# The control file.
vhdfs_mount "$B" "$M"
ctl "$M" "create m3.vhdx 3T"
assert_eq $((3 * TiB)) "$(stat -c %s "$M/m3.vhdx")" "st_size of m3.vhdx"
ctl "$M" "create mf.vhdx 3T fixed"
id=$(last_job "$M")
job_wait "$M" "$id"
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "create mf.vhdx 3T fixed"
ctl "$M" "expand c3.vhdx 5T"
id=$(last_job "$M")
job_wait "$M" "$id"
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "expand c3.vhdx 5T"
vhdfs_umount "$M"
assert_eq $((3 * TiB)) "$(vsize "$B/m3.vhdx")" "m3.vhdx virtual size"
assert_eq $((3 * TiB)) "$(vsize "$B/mf.vhdx")" "mf.vhdx virtual size"
assert_eq $((5 * TiB)) "$(vsize "$B/c3.vhdx")" "c3.vhdx virtual size"
for f in m3 mf c3; do
	qemu-img check -q -f vhdx "$B/$f.vhdx" || fail "qemu-img check $f.vhdx"
done
rm "$B/mf.vhdx" # 3 TiB long: not for dir_state's hashes

vhdfs_mount "$B" "$M"
state=$(dir_state "$B")
for line in "create x.vhd 3T" "create x.vhdx 65T" "expand v.vhd 3T" \
	"expand e.vhdx 65T"; do
	expect_errno EINVAL ctl "$M" "$line"
	case "$(tail -n 1 "$M/.control")" in
	"ReturnValue=32773 "*) ;;
	*) fail "'$line': $(tail -n 1 "$M/.control")" ;;
	esac
done
assert_eq "$state" "$(dir_state "$B")" "backing dir after refusals"
