#!/bin/bash
# vhd exit statuses: 0 for good input, 1 for damaged images and failed
# operations, 2 for usage errors; messages name the file and the problem.
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/cli.sh
. "$(dirname "$0")/../lib/cli.sh"
need_cmd qemu-io
cli_tmpdir

# flip FILE OFFSET: invert one byte in place.
flip() {
	"$PY" - "$1" "$2" <<'PYEOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
PYEOF
}

"$VHD" create good.vhd 6M
qemu-io -f vpc -c "write -P 0x42 1M 1M" -c "write -P 0x24 4M 64k" \
	good.vhd >/dev/null
"$VHD" create --fixed fixed.vhd 1M
size=$(stat -c %s good.vhd)

# --- usage errors: 2, nothing created -----------------------------------
run 2 "$VHD"
run 2 "$VHD" frobnicate x.vhd
grep -q frobnicate err || fail "unknown command not named"
run 2 "$VHD" --frobnicate
run 2 "$VHD" create
run 2 "$VHD" create new.vhd
run 2 "$VHD" create new.vhd 12Q
grep -q 12Q err || fail "bad size not named"
run 2 "$VHD" create new.vhd -5M
run 2 "$VHD" create new.vhd 0
run 2 "$VHD" create new.vhd 2041G
run 2 "$VHD" create new.vhd 1M extra
run 2 "$VHD" create --block-size 3M new.vhd 1M
run 2 "$VHD" create --block-size 256K new.vhd 1M
run 2 "$VHD" create --block-size new.vhd 1M
run 2 "$VHD" create --fixed --block-size 2M new.vhd 1M
run 2 "$VHD" create --bogus new.vhd 1M
grep -q -- --bogus err || fail "unknown option not named"
[ ! -e new.vhd ] || fail "usage error created a file"
run 2 "$VHD" diff only-child.vhd
run 2 "$VHD" diff a.vhd b.vhd c.vhd
run 2 "$VHD" info
run 2 "$VHD" info --yaml good.vhd
run 2 "$VHD" cat
run 2 "$VHD" cat good.vhd more.vhd
run 2 "$VHD" check
run 2 "$VHD" help nosuchcommand
pass "usage errors exit 2"

# --- help and version: 0 -------------------------------------------------
run 0 "$VHD" --help
grep -q 'create' out || fail "--help does not list create"
grep -q 'check' out || fail "--help does not list check"
run 0 "$VHD" --version
grep -Eq '[0-9]+\.[0-9]+\.[0-9]+' out || fail "--version"
run 0 "$VHD" help info
grep -q 'info' out || fail "help info"
run 0 "$VHD" create --help
pass "--help, --version, help CMD exit 0"

# --- good images: 0 ------------------------------------------------------
for img in good.vhd fixed.vhd; do
	run 0 "$VHD" info "$img"
	run 0 "$VHD" info --json "$img"
	run 0 "$VHD" check "$img"
	[ ! -s out ] || fail "check printed on a clean image: $(cat out)"
	run 0 "$VHD" cat "$img"
done
pass "good images: info, check, cat exit 0"

# --- damaged images: 1, messages name the file -------------------------
# Dynamic header checksum flipped (no second copy to fall back on).
cp good.vhd badhdr.vhd
flip badhdr.vhd $((512 + 36))
run 1 "$VHD" check badhdr.vhd
grep -q badhdr.vhd out err || fail "check: bad header not named"
run 1 "$VHD" info badhdr.vhd
grep -q 'badhdr.vhd' err || fail "info: bad header not named"
run 1 "$VHD" cat badhdr.vhd
pass "flipped header checksum: check/info/cat exit 1, named"

# Both footers' checksums flipped: not a VHD any more.
cp good.vhd badfoot.vhd
flip badfoot.vhd 64
flip badfoot.vhd $((size - 512 + 64))
run 1 "$VHD" check badfoot.vhd
run 1 "$VHD" info badfoot.vhd
grep -q 'badfoot.vhd' err || fail "info: bad footer not named"
pass "both footers corrupt: exit 1"

# Only the trailing footer bad: readable through the copy, but check
# reports it.
cp good.vhd onefoot.vhd
flip onefoot.vhd $((size - 512 + 64))
run 0 "$VHD" info --json onefoot.vhd
"$PY" -c 'import json, sys
assert json.load(open(sys.argv[1]))["footer_from_copy"] is True' out ||
	fail "footer_from_copy not reported"
run 0 "$VHD" info onefoot.vhd
grep -q '^Footer: .*copy' out || fail "text info has no footer-copy note"
"$VHD" cat onefoot.vhd | cmp - <("$VHD" cat good.vhd) ||
	fail "data read through the footer copy differs"
run 1 "$VHD" check onefoot.vhd
grep -q '^onefoot.vhd: ' out || fail "check problem lines not 'PATH: problem'"
pass "trailing footer corrupt: info via the copy, check exit 1"

# A fixed image whose footer checksum is flipped has no copy: exit 1.
cp fixed.vhd badfixed.vhd
flip badfixed.vhd $(($(stat -c %s fixed.vhd) - 512 + 64))
run 1 "$VHD" info badfixed.vhd
run 1 "$VHD" check badfixed.vhd
pass "fixed image with a bad footer: exit 1"

# Truncated copy: the allocated blocks are gone.
head -c $((size / 2)) good.vhd >trunc.vhd
run 1 "$VHD" check trunc.vhd
grep -q 'trunc.vhd' out err || fail "truncated image not named"
pass "truncated image: check exit 1"

# Not a VHD at all, empty file, missing file, a directory.
head -c 100000 /dev/urandom >junk.vhd
: >empty.vhd
mkdir dir.vhd
for f in junk.vhd empty.vhd missing.vhd dir.vhd; do
	run 1 "$VHD" info "$f"
	grep -q "$f" err || fail "info $f: message does not name it"
	run 1 "$VHD" check "$f"
	run 1 "$VHD" cat "$f"
done
pass "junk, empty, missing, directory: exit 1, named"
