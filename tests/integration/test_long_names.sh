#!/usr/bin/env bash
# Names up to NAME_MAX (255 bytes) work for every create, through .control
# (dynamic, fixed as a job, differencing) and the CLI, and leave no
# temporary file behind.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M 0x5a 64K 0
vhdfs_mount "$B" "$M"

name() { # CHAR: a 255-byte name ending in .vhd
	printf '%s.vhd' "$(head -c 251 /dev/zero | tr '\0' "$1")"
}

ctl "$M" "create $(name d) 3M"
assert_eq $((3 * MiB)) "$(stat -c %s "$M/$(name d)")" "dynamic, 255 bytes"
ctl "$M" "$(name c) base.vhd"
cmp -s "$M/$(name c)" "$M/base.vhd" || fail "long-named child reads wrong"
ctl "$M" "$(name g) $(name c)"
ctl "$M" "create $(name f) 2M fixed"
id=$(last_job "$M")
job_wait "$M" "$id"
grep -qx 'JobState=7' "$M/.jobs/$id" || fail "fixed create: $(cat "$M/.jobs/$id")"
assert_eq $((2 * MiB)) "$(stat -c %s "$M/$(name f)")" "fixed, 255 bytes"
# The CLI shares the library's create.
"$VHD" create "$B/$(name x)" 1M >/dev/null
"$VHD" create --fixed "$B/$(name y)" 1M >/dev/null
"$VHD" diff "$B/$(name z)" "$B/$(name x)" >/dev/null
assert_eq 8 "$(ls -A "$B" | wc -l)" "entries in BACKING_DIR"
assert_eq "$(printf '%s\n' base.vhd "$(name c)" "$(name d)" "$(name f)" \
	"$(name g)" "$(name x)" "$(name y)" "$(name z)" | sort)" \
	"$(ls -A "$B" | sort)" "BACKING_DIR"
