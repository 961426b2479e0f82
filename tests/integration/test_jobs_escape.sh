#!/usr/bin/env bash
# Text that comes from file names and image locators cannot add lines to
# .jobs/ID or to .control results: newline, CR, tab, other control bytes
# and backslash are shown as C escapes (and quotes as \" in .control), so
# every job file has exactly one line per key.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M 0x5a 64K 0
# A parent whose name (and so the child's locators) holds lines of keys.
evil=$'evil\nJobState=4\nErrorCode=0\r\x1b[2J\\.vhd'
cp "$B/base.vhd" "$B/$evil"
"$VHD" diff "$B/child.vhd" "$B/$evil" >/dev/null
rm "$B/$evil"
vhdfs_mount "$B" "$M"

keys='InstanceID Command JobState PercentComplete ErrorCode ErrorDescription StartTime ElapsedTime'
one_line_per_key() { # JOBFILE
	assert_eq "$keys" "$(cut -d= -f1 "$1" | tr '\n' ' ' | sed 's/ $//')" \
		"keys of $1"
}
# validate: the parent is missing, the message names the locator paths.
ctl "$M" "validate child.vhd"
id=$(last_job "$M")
[ -n "$id" ] || fail "validate started no job: $(tail -n 1 "$M/.control")"
job_wait "$M" "$id"
cat "$M/.jobs/$id" >&2
one_line_per_key "$M/.jobs/$id"
assert_eq 1 "$(grep -c '^JobState=' "$M/.jobs/$id")" "JobState lines"
grep -qx 'JobState=10' "$M/.jobs/$id" || fail "validate did not fail"
grep -qF 'evil\nJobState=4\nErrorCode=0\r\x1b[2J\\.vhd' "$M/.jobs/$id" ||
	fail "ErrorDescription does not show the escaped name"

# A fixed create (a job) of a name with control bytes and a backslash.
ctl "$M" $'create "e\x1b\x7f\\\\\t.vhd" 1M fixed'
id=$(last_job "$M")
[ -n "$id" ] || fail "fixed create started no job"
job_wait "$M" "$id"
one_line_per_key "$M/.jobs/$id"
assert_eq 'Command=create "e\x1b\x7f\\\\\t.vhd" 1M fixed' \
	"$(grep '^Command=' "$M/.jobs/$id")" "job Command"
[ -f "$B/"$'e\x1b\x7f\\\t.vhd' ] || fail "fixed create made no file"

# .control results: one line per command, quotes escaped too.
printf '%s\n' $'validate "a\tb\x1bc\rd\\\\.vhd"' >"$T/cmd"
set +e
cat "$T/cmd" >"$M/.control" 2>/dev/null
set -e
cat "$M/.control" >"$T/out"
line=$(tail -n 1 "$T/out")
log "read back: $line"
want='Command="validate \"a\tb\x1bc\rd\\\\.vhd\""'
case "$line" in
ReturnValue=32779\ Error=*"$want") ;;
*) fail "escaped result line: got '$line', want ...'$want'" ;;
esac
case "$line" in
*'a\tb\x1bc\rd\\.vhd'*"$want") ;;
*) fail "Error= text not escaped: '$line'" ;;
esac
# The ring holds three results: three lines, each a whole result.
assert_eq 3 "$(grep -c '^ReturnValue=' "$T/out")" "result lines"
assert_eq 3 "$(wc -l <"$T/out")" "lines read back"
