#!/usr/bin/env bash
# Writes (design.md): truncation to a different size fails, and an open
# with O_TRUNC (`: > img`, cp, dd without conv=notrunc) is such a
# truncation: EINVAL, the image unchanged; truncation to the same size is
# fine. A parent refuses it with EPERM. Unaligned writes into a child are
# read-modify-write of the resolved sectors; the parent is never touched;
# `cp --sparse=always` of the child copies exactly its flat view.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
"$VHD" create "$B/base.vhd" 8M >/dev/null
vhdfs_mount "$B" "$M"
head -c 3M /dev/urandom | dd of="$M/base.vhd" bs=1M conv=notrunc status=none
ctl "$M" "child.vhd base.vhd"
sum() { sha256sum "$B/$1" | cut -d' ' -f1; }
psum=$(sum base.vhd)

csum=$(sum child.vhd)
expect_errno EINVAL sh -c ": >'$M/child.vhd'"
expect_errno EINVAL dd if=/dev/zero of="$M/child.vhd" bs=512 count=1 \
	status=none
expect_errno EINVAL truncate -s 4M "$M/child.vhd"
expect_errno EPERM sh -c ": >'$M/base.vhd'"
assert_eq "$csum" "$(sum child.vhd)" "child after refused truncations"
assert_eq 8388608 "$(stat -c %s "$M/child.vhd")" "child size"
truncate -s 8M "$M/child.vhd"

# Unaligned writes, one across a sector and one across a block boundary.
cp "$M/base.vhd" "$T/want"
for spec in "1000003 HELLO" "2097150 across-the-block"; do
	set -- $spec
	printf '%s' "$2" | dd of="$M/child.vhd" bs=1 seek="$1" \
		conv=notrunc status=none
	printf '%s' "$2" | dd of="$T/want" bs=1 seek="$1" conv=notrunc \
		status=none
done
assert_cmp "$T/want" "$M/child.vhd" "child after unaligned writes"
assert_eq "$psum" "$(sum base.vhd)" "parent after child writes"
cp --sparse=always "$M/child.vhd" "$T/copy"
assert_cmp "$T/want" "$T/copy" "cp --sparse=always of the child"
# The tail past the base's data is a hole in the copy too.
[ "$(stat -c %b "$T/copy")" -lt $((6 * 1024 * 2)) ] ||
	fail "cp --sparse=always copied the holes: $(stat -c %b "$T/copy") blocks"
