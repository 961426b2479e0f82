#!/bin/bash
# vhd compact, expand, reparent, repair and map from the command line:
# exit 0 on success, 1 on refused or failed operations (messages name the
# file and the defect, the image is unchanged), 2 on usage errors; no
# progress bar when stderr is not a terminal; expand refuses an image with
# a child next to it; check marks what repair fixes.
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/cli.sh
. "$(dirname "$0")/../lib/cli.sh"
need_cmd qemu-io
cli_tmpdir

"$VHD" create d.vhd 16M
qemu-io -f vpc -c "write -P 0x42 1M 1M" -c "write -P 0 6M 4M" \
	-c "write -P 0x24 12M 64k" d.vhd >/dev/null
"$VHD" create --fixed fixed.vhd 1M
"$VHD" cat d.vhd >d.flat

# --- usage errors: 2, nothing changed --------------------------------------
h=$(sha256sum d.vhd)
run 2 "$VHD" compact
run 2 "$VHD" compact d.vhd extra
run 2 "$VHD" compact --bogus d.vhd
run 2 "$VHD" expand d.vhd
run 2 "$VHD" expand d.vhd 12Q
grep -q 12Q err || fail "bad size not named"
run 2 "$VHD" expand d.vhd 0
run 2 "$VHD" reparent d.vhd
run 2 "$VHD" reparent --bogus d.vhd d.vhd
run 2 "$VHD" repair
run 2 "$VHD" repair --fix-everything d.vhd
run 2 "$VHD" map
run 2 "$VHD" map --yaml d.vhd
[ "$h" = "$(sha256sum d.vhd)" ] || fail "usage error changed d.vhd"
run 0 "$VHD" help compact
grep -q "usage: vhd compact PATH" out || fail "help compact: $(cat out)"

# --- compact ----------------------------------------------------------------
before=$(stat -c %s d.vhd)
run 0 "$VHD" compact d.vhd
grep -q "^d.vhd: [0-9]* bytes reclaimed" out || fail "compact: $(cat out)"
# not a terminal: no progress bar, no control characters
[ ! -s err ] || fail "compact wrote to stderr: $(cat -v err)"
[ "$(stat -c %s d.vhd)" -lt "$before" ] || fail "compact did not shrink"
"$VHD" cat d.vhd | cmp - d.flat || fail "compact changed the content"
# on a terminal (script(1) gives it one): the bar, erased at the end
if command -v script >/dev/null; then
	"$VHD" create tty.vhd 16M
	qemu-io -f vpc -c "write -P 0 0 8M" tty.vhd >/dev/null
	script -qec "$VHD compact tty.vhd" /dev/null >tty.out
	grep -q "compacting \[=*  *\] *[0-9.]*%" tty.out ||
		fail "no progress bar on a terminal: $(cat -v tty.out)"
	grep -q "tty.vhd: [0-9]* bytes reclaimed" tty.out ||
		fail "compact on a terminal: $(cat -v tty.out)"
fi
run 1 "$VHD" compact fixed.vhd
grep -q "fixed.vhd: a fixed disk cannot be compacted" err ||
	fail "compact of fixed: $(cat err)"
run 1 "$VHD" compact missing.vhd
grep -q "missing.vhd" err || fail "missing file not named"

# --- expand -----------------------------------------------------------------
run 0 "$VHD" expand d.vhd 32M
[ ! -s err ] || fail "expand wrote to stderr: $(cat -v err)"
"$VHD" info --json d.vhd >info.json
[ "$(jget info.json 'd["current_size"]')" = $((32 << 20)) ] ||
	fail "expand: size $(jget info.json 'd["current_size"]')"
run 1 "$VHD" expand d.vhd 8M
grep -q "d.vhd: .*cannot shrink" err || fail "shrink: $(cat err)"
"$VHD" diff child.vhd d.vhd
h=$(sha256sum d.vhd)
run 1 "$VHD" expand d.vhd 64M
grep -q "d.vhd: is the parent of ./child.vhd" err ||
	fail "expand of a parent: $(cat err)"
[ "$h" = "$(sha256sum d.vhd)" ] || fail "refused expand changed d.vhd"
run 1 "$VHD" compact d.vhd
grep -q "d.vhd: is the parent of ./child.vhd" err ||
	fail "compact of a parent: $(cat err)"
run 1 "$VHD" expand child.vhd 64M
grep -q "child.vhd: a differencing disk cannot be expanded" err ||
	fail "expand of a child: $(cat err)"

# --- reparent ---------------------------------------------------------------
mkdir sub
mv d.vhd sub/d.vhd
run 1 "$VHD" cat child.vhd
run 1 "$VHD" check child.vhd
grep -q "parent not found.*(if the parent moved: vhd reparent" out ||
	fail "check of a child whose parent moved: $(cat out)"
run 0 "$VHD" reparent child.vhd sub/d.vhd
run 0 "$VHD" info child.vhd
grep -q "W2ru .* path ./sub/d.vhd" out || fail "W2ru: $(cat out)"
"$VHD" create other.vhd 32M
h=$(sha256sum child.vhd)
run 1 "$VHD" reparent child.vhd other.vhd
grep -q "child.vhd: parent unique id mismatch" err ||
	fail "id mismatch: $(cat err)"
[ "$h" = "$(sha256sum child.vhd)" ] || fail "refused reparent changed it"
run 0 "$VHD" reparent --ignore-id-mismatch child.vhd other.vhd
run 1 "$VHD" reparent fixed.vhd other.vhd
grep -q "fixed.vhd: not a differencing disk" err || fail "$(cat err)"

# --- repair and check ---------------------------------------------------------
cp sub/d.vhd r.vhd
cp r.vhd r.orig
sz=$(stat -c %s r.vhd)
printf 'X' | dd of=r.vhd bs=1 seek=$((sz - 500)) conv=notrunc status=none
run 1 "$VHD" check r.vhd
grep -q "^r.vhd: trailing footer is damaged .*(fixable by vhd repair)$" out ||
	fail "check: $(cat out)"
run 0 "$VHD" repair r.vhd
grep -q "restored from the copy at offset 0" out || fail "repair: $(cat out)"
cmp r.vhd r.orig || fail "repair did not restore the file"
run 0 "$VHD" repair r.vhd
grep -q "nothing repaired" out || fail "second repair: $(cat out)"
printf 'X' | dd of=r.vhd bs=1 seek=$((512 + 36)) conv=notrunc status=none
run 1 "$VHD" check r.vhd
grep -q "(fixable by vhd repair --checksums)" out || fail "check: $(cat out)"
run 1 "$VHD" repair r.vhd
grep -q "not changed (run vhd repair --checksums)" out ||
	fail "repair without --checksums: $(cat out)"
run 0 "$VHD" repair --checksums r.vhd
run 0 "$VHD" check r.vhd
run 1 "$VHD" repair nothere.vhd
grep -q nothere.vhd err || fail "missing file not named"

# --- map --------------------------------------------------------------------
run 0 "$VHD" map sub/d.vhd
head -1 out | grep -q "^Offset *Length *Mapped to *File$" ||
	fail "map header: $(head -1 out)"
grep -q "^0 *0x200000 *0x[0-9a-f]* *sub/d.vhd$" out || fail "map: $(cat out)"
"$VHD" diff kid.vhd sub/d.vhd
run 0 "$VHD" map --json kid.vhd
[ "$(jget out 'sum(e["length"] for e in d)')" = $((32 << 20)) ] ||
	fail "map --json does not cover the disk"
[ "$(jget out '[e["depth"] for e in d if e["data"]][0]')" = 1 ] ||
	fail "map --json: parent data not at depth 1: $(cat out)"
pass "compact, expand, reparent, repair and map"
