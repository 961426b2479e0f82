#!/bin/bash
# vhd diff: a fresh child reads exactly like its parent, carries the
# Hyper-V metadata (checked with vhd info --json and libvhdi's vhdiinfo),
# and failures leave nothing behind.
set -euo pipefail

# shellcheck source=SCRIPTDIR/../lib/cli.sh
. "$(dirname "$0")/../lib/cli.sh"
need_cmd qemu-io vhdiinfo
cli_tmpdir

head -c $((2 << 20)) /dev/urandom >rand.bin
mkdir -p golden vms
"$VHD" create golden/base.vhd 12M
qemu-io -f vpc -c "write -s rand.bin 0 2M" -c "write -P 0x3c 5000k 100k" \
	-c "write -P 0xf0 12284k 4k" golden/base.vhd >/dev/null
touch -d '2025-01-02 03:04:05 UTC' golden/base.vhd
before=$(sha256sum golden/base.vhd)

# Child in another directory: relative locator must go ../golden/.
run 0 "$VHD" diff vms/child.vhd golden/base.vhd
[ -f vms/child.vhd ] || fail "child not created"
"$VHD" cat golden/base.vhd >base.flat
"$VHD" cat vms/child.vhd >child.flat
cmp base.flat child.flat || fail "vhd cat child != vhd cat parent"
[ "$(stat -c %s child.flat)" = $((12 << 20)) ] || fail "flat size"
pass "vhd diff, then vhd cat child == vhd cat parent"

[ "$(sha256sum golden/base.vhd)" = "$before" ] || fail "parent modified"
pass "parent untouched by diff and cat"

# Creation costs O(BAT): the child is small.
[ "$(stat -c %s vms/child.vhd)" -lt $((256 << 10)) ] ||
	fail "child is $(stat -c %s vms/child.vhd) bytes"
pass "child file is small"

# Metadata, through vhd info --json.
run 0 "$VHD" info --json golden/base.vhd
cp out base.json
run 0 "$VHD" info --json vms/child.vhd
cp out child.json
j() { jget child.json "$1"; }
[ "$(j 'd["type"]')" = differencing ] || fail "type"
[ "$(j 'd["current_size"]')" = $((12 << 20)) ] || fail "current_size"
[ "$(j 'd["original_size"]')" = $((12 << 20)) ] || fail "original_size"
[ "$(j 'd["block_size"]')" = 2097152 ] || fail "block_size"
[ "$(j 'd["allocated_blocks"]')" = 0 ] || fail "allocated_blocks"
[ "$(j 'd["creator_app"]')" = "win " ] || fail "creator_app"
[ "$(j 'd["parent_name"]')" = base.vhd ] || fail "parent_name"
[ "$(j 'd["parent_uuid"]')" = "$(jget base.json 'd["uuid"]')" ] ||
	fail "parent_uuid is not the parent's uuid"
[ "$(j 'd["uuid"]')" != "$(jget base.json 'd["uuid"]')" ] ||
	fail "child has the parent's uuid"
[ "$(j 'd["geometry"]')" = "$(jget base.json 'd["geometry"]')" ] ||
	fail "geometry differs from the parent's"
# 2025-01-02 03:04:05 UTC in VHD time (seconds since 2000).
[ "$(j 'd["parent_timestamp"]')" = $((1735787045 - 946684800)) ] ||
	fail "parent_timestamp is not the parent's mtime"
[ "$(j 'd["parent_timestamp_mismatch"]')" = False ] || fail "mismatch"
[ "$(j 'sorted(l["code"] for l in d["locators"])')" = "['W2ku', 'W2ru']" ] ||
	fail "locators are not W2ru + W2ku"
w2ru=$(j '[l["path"] for l in d["locators"] if l["code"] == "W2ru"][0]')
w2ku=$(j '[l["path"] for l in d["locators"] if l["code"] == "W2ku"][0]')
[ "vms/$w2ru" -ef golden/base.vhd ] || fail "W2ru path '$w2ru'"
case $w2ru in ./*) ;; *) fail "W2ru path '$w2ru' does not start ./" ;; esac
case $w2ku in /*) ;; *) fail "W2ku path '$w2ku' is not absolute" ;; esac
[ "$w2ku" -ef golden/base.vhd ] || fail "W2ku path '$w2ku'"
[ "$(j 'all(l["space"] % 512 == 0 and l["space"] >= 512 and
	l["length"] <= l["space"] for l in d["locators"])')" = True ] ||
	fail "locator data space not in bytes"
[ "$(j '[c["type"] for c in d["chain"]]')" = \
	"['differencing', 'dynamic']" ] || fail "chain types"
[ "$(j 'd["chain"][0]["path"]')" = vms/child.vhd ] || fail "chain leaf"
[ "$(j 'd["chain"][1]["path"]')" -ef golden/base.vhd ] || fail "chain base"
[ "$(j 'd["parent"]')" -ef golden/base.vhd ] || fail "parent"
[ "$(j 'd["error"]')" = None ] || fail "error set"
pass "vhd info --json: Hyper-V style child metadata and chain"

# Text form: chain leaf to base, one per line, with types.
run 0 "$VHD" info vms/child.vhd
grep -A2 '^Chain:' out | sed 1d >chain.txt
sed -n 1p chain.txt | grep -q 'vms/child.vhd (differencing)' ||
	fail "text chain leaf: $(cat chain.txt)"
sed -n 2p chain.txt | grep -q 'base.vhd (dynamic)' ||
	fail "text chain base: $(cat chain.txt)"
grep -q 'W2ru' out || fail "text locators: no W2ru"
grep -q 'W2ku' out || fail "text locators: no W2ku"
pass "vhd info text: chain and locators"

# libvhdi agrees on the type and the parent name.
vhdiinfo vms/child.vhd >vhdi.txt
grep -Eq 'Disk type[[:space:]]*: Differential' vhdi.txt ||
	fail "vhdiinfo type: $(cat vhdi.txt)"
grep -Eq 'Parent filename[[:space:]]*: base.vhd$' vhdi.txt ||
	fail "vhdiinfo parent name: $(cat vhdi.txt)"
grep -Eq "Parent identifier[[:space:]]*: $(jget base.json 'd["uuid"]')" \
	vhdi.txt || fail "vhdiinfo parent id: $(cat vhdi.txt)"
pass "vhdiinfo: Differential, parent base.vhd, parent id"

# A chain of three; the middle image is read-only to everyone now.
run 0 "$VHD" diff vms/grandchild.vhd vms/child.vhd
"$VHD" cat vms/grandchild.vhd | cmp - base.flat || fail "grandchild data"
run 0 "$VHD" info --json vms/grandchild.vhd
cp out gc.json
[ "$(jget gc.json '[c["type"] for c in d["chain"]]')" = \
	"['differencing', 'differencing', 'dynamic']" ] || fail "3-chain"
[ "$(jget gc.json 'd["parent_name"]')" = child.vhd ] || fail "gc name"
pass "three-level chain resolves and reads like the base"

# Parent mtime changed after the child was made: warned, not refused.
touch -d '2025-06-01 00:00:00 UTC' golden/base.vhd
run 0 "$VHD" info --json vms/child.vhd
cp out mm.json
[ "$(jget mm.json 'd["parent_timestamp_mismatch"]')" = True ] ||
	fail "timestamp mismatch not reported"
grep -qi 'parent timestamp mismatch' err || fail "no mismatch warning"
run 0 "$VHD" info vms/child.vhd
grep -qi 'parent timestamp mismatch' out err || fail "no text warning"
"$VHD" cat vms/child.vhd | cmp - base.flat || fail "data after touch"
pass "parent timestamp mismatch is a warning"

# JSON escaping: a parent name with a quote, a tab and non-ASCII letters
# (backslashes are covered by the Windows names in test_cli_info.sh).
weird=$'we"ird\tn\xc3\xa4me.vhd'
"$VHD" create "$weird" 1M
run 0 "$VHD" diff odd-child.vhd "$weird"
run 0 "$VHD" info --json odd-child.vhd
cp out weird.json
[ "$(jget weird.json 'd["parent_name"]')" = "$weird" ] ||
	fail "parent name with special characters: $(cat weird.json)"
pass "JSON escapes quotes and control characters, keeps UTF-8"

# Relative locators for a parent in the child's own directory or below it
# are ./NAME and ./SUB/NAME, however the paths are spelled.
w2ru_of() {
	"$VHD" info --json "$1" >w.json
	jget w.json '[l["path"] for l in d["locators"] if l["code"] == "W2ru"][0]'
}
mkdir -p same/sub
"$VHD" create same/p.vhd 1M
"$VHD" create same/sub/q.vhd 1M
(cd same && "$VHD" diff c1.vhd p.vhd)
"$VHD" diff same/c2.vhd same/p.vhd
"$VHD" diff "$tmp/same/c3.vhd" "$tmp/same/p.vhd"
(cd same && "$VHD" diff c4.vhd sub/q.vhd)
"$VHD" diff same/c5.vhd same/sub/q.vhd
for c in c1 c2 c3; do
	[ "$(w2ru_of same/$c.vhd)" = ./p.vhd ] ||
		fail "same/$c.vhd: W2ru '$(w2ru_of same/$c.vhd)', want ./p.vhd"
done
for c in c4 c5; do
	[ "$(w2ru_of same/$c.vhd)" = ./sub/q.vhd ] ||
		fail "same/$c.vhd: W2ru '$(w2ru_of same/$c.vhd)', want ./sub/q.vhd"
done
pass "W2ru of a parent beside or below the child"

# The same, from directories of every name length 1..64: an off-by-one
# past the end of the directory string shows up only for some lengths.
for n in $(seq 1 64); do
	d=len/$(head -c "$n" /dev/zero | tr '\0' d)
	mkdir -p "$d"
	(cd "$d" && "$VHD" create p.vhd 1M && "$VHD" diff c.vhd p.vhd)
	got=$("$VHD" info "$d/c.vhd" | awk '$2 == "W2ru" { print $NF }')
	[ "$got" = ./p.vhd ] ||
		fail "diff in a directory named with $n letters: W2ru '$got'"
done
pass "W2ru ./p.vhd from directories of 64 name lengths"

# Block size of a child: the parent's when 512K or 2M, else 2M; a fixed
# parent gets 2M.
bs_of() { "$VHD" info "$1" | awk '$1 == "Block" { print $3 }'; }
"$VHD" create --block-size 512K bs512.vhd 3M
"$VHD" create --block-size 1M bs1m.vhd 3M
"$VHD" create --block-size 4M bs4m.vhd 3M
"$VHD" create --fixed bsfix.vhd 3M
for p in bs512:524288 bs1m:2097152 bs4m:2097152 bsfix:2097152; do
	"$VHD" diff "${p%%:*}-child.vhd" "${p%%:*}.vhd"
	[ "$(bs_of "${p%%:*}-child.vhd")" = "${p#*:}" ] ||
		fail "${p%%:*}: child block size $(bs_of "${p%%:*}-child.vhd")"
	"$VHD" cat "${p%%:*}-child.vhd" | cmp - <("$VHD" cat "${p%%:*}.vhd") ||
		fail "${p%%:*}: child data"
done
pass "child block size follows the parent's 512K/2M, else 2M"

# Move the whole tree: W2ku goes stale, no parent sits next to the child
# under its own name, so only the relative locator can find it.
mkdir moved
mv vms golden moved/
run 0 "$VHD" info --json moved/vms/child.vhd
cp out moved.json
[ "$(jget moved.json 'd["parent"]')" -ef moved/golden/base.vhd ] ||
	fail "moved chain not resolved through W2ru"
"$VHD" cat moved/vms/child.vhd | cmp - base.flat || fail "moved data"
pass "a moved chain resolves through the relative locator"

# Failures: existing child, missing parent, non-VHD parent.
printf 'x' >exists.vhd
run 1 "$VHD" diff exists.vhd moved/golden/base.vhd
[ "$(cat exists.vhd)" = x ] || fail "existing child replaced"
grep -q exists.vhd err || fail "EEXIST message"
run 1 "$VHD" diff orphan.vhd missing.vhd
[ ! -e orphan.vhd ] || fail "child left behind for a missing parent"
grep -q missing.vhd err || fail "missing parent not named"
head -c 4096 /dev/urandom >junk.vhd
run 1 "$VHD" diff orphan.vhd junk.vhd
[ ! -e orphan.vhd ] || fail "child left behind for a junk parent"
grep -q junk.vhd err || fail "junk parent not named"
pass "diff failures: exit 1, named, nothing left behind"
