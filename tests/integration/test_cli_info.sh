#!/bin/bash
# vhd info on a real Windows-made differencing disk whose parent is absent:
# the header is still reported, the parent-not-found error names the paths
# tried, exit status 1; and --json stays valid JSON.
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/cli.sh
. "$(dirname "$0")/../lib/cli.sh"
cli_tmpdir
if [ -z "${TESTDATA:-}" ]; then
	. "$REPO/tests/lib/testdata.sh"
	TESTDATA=$tmp/testdata
	testdata_unpack "$TESTDATA" || fail "cannot unpack the test data"
fi
img=$TESTDATA/fat-differential.vhd
[ -f "$img" ] || fail "$img missing"

# Facts of fat-differential.vhd (Windows 10 diskpart), read with xxd and
# vhdiinfo: 4 MiB, parent id 5fa21a55-..., BAT at 0x2000, W2ku at 0x1000
# (84 bytes in 4096), W2ru at 0x3000 (32 bytes in 65536).
parent_name='C:\Projects\dfvfs\test_data\fat-parent.vhd'

run 1 "$VHD" info "$img"
cp out text.out
cp err text.err
grep -Eq '^Type: +differencing$' text.out || fail "type: $(cat text.out)"
grep -Eq '^Virtual size: +4194304 bytes' text.out || fail "virtual size"
grep -Eq '^Block size: +2097152 bytes' text.out || fail "block size"
grep -Eq '^UUID: +f84f1636-cd9e-9041-a69e-dcc2380e416a$' text.out ||
	fail "uuid"
grep -Eq '^Parent UUID: +5fa21a55-f394-aa4d-9958-1951a67d5540$' text.out ||
	fail "parent uuid"
grep -Fq "$parent_name" text.out || fail "parent name"
grep -Eq 'W2ku +offset 4096 space 4096 length 84 ' text.out ||
	fail "W2ku locator: $(grep W2ku text.out)"
grep -Eq 'W2ru +offset 12288 space 65536 length 32 path \./fat-parent.vhd$' \
	text.out || fail "W2ru locator: $(grep W2ru text.out)"
pass "info reports the header of a child whose parent is missing"

grep -qi 'not found' text.err ||
	fail "no parent-not-found error: $(cat text.err)"
grep -q 'fat-parent.vhd' text.err || fail "error does not name the parent"
# The relative locator resolves next to the child: that path was tried.
grep -Fq "$TESTDATA/" text.err || grep -Fq "$(cd "$TESTDATA" && pwd -P)/" \
	text.err || fail "paths tried not listed: $(cat text.err)"
grep -q '^vhd: ' text.err || fail "error not prefixed vhd:"
pass "parent not found: named, with the paths tried, exit 1"

run 1 "$VHD" info --json "$img"
cp out info.json
[ "$(jget info.json 'd["type"]')" = differencing ] || fail "json type"
[ "$(jget info.json 'd["current_size"]')" = 4194304 ] || fail "json size"
[ "$(jget info.json 'd["table_offset"]')" = 8192 ] || fail "json bat"
[ "$(jget info.json 'd["parent_name"]')" = "$parent_name" ] ||
	fail "json parent name (backslashes escaped?)"
[ "$(jget info.json 'd["parent_uuid"]')" = \
	5fa21a55-f394-aa4d-9958-1951a67d5540 ] || fail "json parent uuid"
[ "$(jget info.json 'd["parent_timestamp"]')" = 0 ] || fail "json ptime"
[ "$(jget info.json '[(l["code"], l["offset"], l["space"], l["length"])
	for l in d["locators"]]')" = \
	"[('W2ku', 4096, 4096, 84), ('W2ru', 12288, 65536, 32)]" ] ||
	fail "json locators: $(jget info.json 'd["locators"]')"
[ "$(jget info.json 'd["locators"][1]["path"]')" = ./fat-parent.vhd ] ||
	fail "json W2ru path"
[ "$(jget info.json 'd["parent"]')" = None ] || fail "json parent"
[ "$(jget info.json 'len(d["chain"])')" = 1 ] || fail "json chain"
[ "$(jget info.json 'd["chain"][0]["path"]')" = "$img" ] || fail "json leaf"
jget info.json 'd["error"]' | grep -qi 'not found' || fail "json error"
pass "info --json: valid JSON with header, locators and the error"

# Once a parent with the right id sits next to the child, the chain
# resolves; a parent with another id is skipped, not accepted.
cp "$img" child.vhd
"$VHD" create fat-parent.vhd 4M
run 1 "$VHD" info --json child.vhd
[ "$(jget out 'd["parent"]')" = None ] || fail "parent with wrong id accepted"
pass "a parent with another unique id is not accepted"

# The other real-world images: either valid JSON and exit 0, or nothing on
# stdout, exit 1 and a message naming the file (image.vhd and
# image-differential.vhd carry bad footer checksums in both copies).
for f in "$TESTDATA"/ext2.vhd "$TESTDATA"/image.vhd \
	"$TESTDATA"/image-differential.vhd; do
	[ -f "$f" ] || continue
	st=0
	"$VHD" info --json "$f" >one.json 2>one.err || st=$?
	if [ "$st" = 0 ]; then
		"$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' \
			one.json || fail "$f: invalid JSON"
	elif [ "$st" = 1 ]; then
		[ ! -s one.json ] || "$PY" -c 'import json,sys
json.load(open(sys.argv[1]))' one.json || fail "$f: invalid JSON"
		grep -Fq "$f" one.err || fail "$f: error does not name it"
	else
		fail "$f: exit $st"
	fi
done
[ "$(jget <("$VHD" info --json "$TESTDATA/ext2.vhd") 'd["creator_app"]')" = \
	qemu ] || fail "ext2.vhd creator"
pass "info --json on the other real-world images"
