#!/usr/bin/env bash
# vhd merge / vhd convert: exit codes 0/1/2, nothing on stderr when it is
# not a terminal (no progress bar), messages naming the file, results equal
# to the chain's flat view as `vhd cat` read it before.
. "$(dirname "$0")/../lib/cli.sh"
cli_tmpdir

"$VHD" create base.vhd 8M >/dev/null || fail "create"
"$VHD" diff child.vhd base.vhd || fail "diff"
"$VHD" cat child.vhd >before.raw

rc=0; "$VHD" merge 2>err || rc=$?
[ "$rc" = 2 ] || fail "merge without operands: exit $rc"
rc=0; "$VHD" merge a b c 2>err || rc=$?
[ "$rc" = 2 ] || fail "merge with 3 operands: exit $rc"
rc=0; "$VHD" convert child.vhd out.vhd sparse 2>err || rc=$?
[ "$rc" = 2 ] || fail "convert to an unknown type: exit $rc"
rc=0; "$VHD" convert --fixed --block-size 2M child.vhd out.vhd 2>err || rc=$?
[ "$rc" = 2 ] || fail "convert --fixed --block-size: exit $rc"
rc=0; "$VHD" merge missing.vhd 2>err || rc=$?
[ "$rc" = 1 ] || fail "merge of a missing file: exit $rc"
grep -q missing.vhd err || fail "message does not name the file: $(cat err)"
rc=0; "$VHD" merge base.vhd 2>err || rc=$?
[ "$rc" = 1 ] || fail "merge of a dynamic disk: exit $rc"
grep -q "not a differencing" err || fail "message: $(cat err)"
pass "usage and failure exit codes"

"$VHD" convert --block-size 512K child.vhd out.vhd 2>err || fail "convert"
[ ! -s err ] || fail "convert wrote to stderr: $(cat err)"
"$VHD" cat out.vhd | cmp - before.raw || fail "convert content"
rc=0; "$VHD" convert child.vhd out.vhd 2>err || rc=$?
[ "$rc" = 1 ] || fail "convert onto an existing file: exit $rc"
pass "convert"

"$VHD" merge child.vhd 2>err || fail "merge: $(cat err)"
[ ! -s err ] || fail "merge wrote to stderr: $(cat err)"
[ ! -e child.vhd ] || fail "child.vhd left after the merge"
"$VHD" cat base.vhd | cmp - before.raw || fail "merged content"
pass "merge"
