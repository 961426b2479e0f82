#!/usr/bin/env bash
# Reading .control: one `ReturnValue=N ... Command="..."` line per command
# written through that open file, in order; a fresh open that wrote nothing
# reads the most recent results, newest last. Several lines in one write run
# in order.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M 0x5a 64K 0
vhdfs_mount "$B" "$M"

# One open file: a success, a failure, another success; then read it back.
"$PY" - "$M/.control" >"$T/session.out" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b"diff a.vhd base.vhd\n")
try:
    os.write(fd, b"diff b.vhd missing.vhd\n")
    sys.exit("write of a failing command succeeded")
except OSError as e:
    if e.errno != errno.ENOENT:
        sys.exit(f"failing command: errno {errno.errorcode[e.errno]}")
os.write(fd, b"diff c.vhd a.vhd\n")
os.lseek(fd, 0, os.SEEK_SET)
data = b""
while True:
    chunk = os.read(fd, 65536)
    if not chunk:
        break
    data += chunk
os.close(fd)
sys.stdout.write(data.decode())
EOF
log "session read back:"
cat "$T/session.out" >&2
assert_eq 3 "$(wc -l <"$T/session.out")" "result lines of the session"
assert_eq 'ReturnValue=0 Command="diff a.vhd base.vhd"' \
	"$(sed -n 1p "$T/session.out")" "line 1"
grep -Eqx 'ReturnValue=32779 Error="[^"]+" Command="diff b\.vhd missing\.vhd"' \
	<(sed -n 2p "$T/session.out") ||
	fail "line 2 is not a 32779 result: $(sed -n 2p "$T/session.out")"
assert_eq 'ReturnValue=0 Command="diff c.vhd a.vhd"' \
	"$(sed -n 3p "$T/session.out")" "line 3"
[ -f "$B/a.vhd" ] && [ -f "$B/c.vhd" ] || fail "a.vhd/c.vhd not created"
[ ! -e "$B/b.vhd" ] || fail "failed command left b.vhd behind"

# Two commands in one write(2), the second depending on the first.
printf 'diff d.vhd base.vhd\ndiff e.vhd d.vhd\n' >"$M/.control"
[ -f "$B/d.vhd" ] && [ -f "$B/e.vhd" ] || fail "multi-line write"
assert_cmp "$M/base.vhd" "$M/e.vhd" "e.vhd (grandchild of base)"

# A fresh open that wrote nothing: most recent results, newest last.
cat "$M/.control" >"$T/fresh.out"
log "fresh read:"
cat "$T/fresh.out" >&2
assert_eq 'ReturnValue=0 Command="diff e.vhd d.vhd"' \
	"$(tail -n 1 "$T/fresh.out")" "newest result"
assert_eq 'ReturnValue=0 Command="diff d.vhd base.vhd"' \
	"$(tail -n 2 "$T/fresh.out" | head -n 1)" "second newest result"

# The implicit form "CHILD PARENT" and a failure by echo, then a fresh read.
ctl "$M" "f.vhd base.vhd"
cat "$M/.control" | tail -n 1 | grep -Eqx \
	'ReturnValue=0 Command="(diff )?f\.vhd base\.vhd"' ||
	fail "implicit diff: $(cat "$M/.control" | tail -n 1)"
expect_errno EEXIST ctl "$M" "f.vhd base.vhd"
cat "$M/.control" | tail -n 1 | grep -Eqx \
	'ReturnValue=32773 Error="[^"]+" Command="(diff )?f\.vhd base\.vhd"' ||
	fail "EEXIST result: $(cat "$M/.control" | tail -n 1)"
# design.md's example, byte for byte: the implicit form, a missing parent.
expect_errno ENOENT ctl "$M" "child.vhd missing.vhd"
assert_eq 'ReturnValue=32779 Error="parent not found: missing.vhd" Command="diff child.vhd missing.vhd"' \
	"$(tail -n 1 "$M/.control")" "result of the design's example"
[ ! -e "$B/child.vhd" ] || fail "the failed example left child.vhd"
# Every line has the ReturnValue=N form.
grep -Evq '^ReturnValue=[0-9]+ ' "$M/.control" &&
	fail "malformed result line: $(grep -Ev '^ReturnValue=[0-9]+ ' \
		"$M/.control" | head -n 1)"

vhdfs_umount "$M"
exit 0
