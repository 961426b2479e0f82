#!/usr/bin/env bash
# `vhd info` tells "parent not found" from "parent found at X but its
# unique id differs (expected U1, found U2)".
. "$(dirname "$0")/../lib/cli.sh"
need_cmd qemu-img
cli_tmpdir

qemu-img create -q -f vpc -o subformat=dynamic base.vhd 4M
"$VHD" diff child.vhd base.vhd
want=$("$VHD" info --json base.vhd | jget /dev/stdin 'd["uuid"]')
# Replace the parent by another image of the same name.
mv base.vhd orig.vhd
qemu-img create -q -f vpc -o subformat=dynamic base.vhd 4M
have=$("$VHD" info --json base.vhd | jget /dev/stdin 'd["uuid"]')
[ "$want" != "$have" ] || fail "the new base has the old id"

run 1 "$VHD" info child.vhd
grep -qF "Parent:               (found at base.vhd but its unique id differs: expected $want, found $have)" out ||
	fail "Parent line: $(grep Parent: out)"
grep -qF "parent found at base.vhd but its unique id differs (expected $want, found $have)" err ||
	fail "message: $(cat err)"
grep -q "not found" out && fail "says not found: $(grep Parent: out)"

# Gone for real: "(not found)".
rm base.vhd
run 1 "$VHD" info child.vhd
grep -q "^Parent: *(not found)$" out || fail "Parent line: $(grep Parent: out)"
grep -q "parent not found" err || fail "message: $(cat err)"
pass "vhd info parent id mismatch"
