#!/usr/bin/env bash
# asan: yes
# The results one open of .control keeps are bounded in bytes, not only
# in lines: 1024 results of long names full of control bytes (each shown
# \xHH-escaped, ~33 KiB) kept 33 MB per open file, and every open could
# do the same. The results read back through that open are at most
# 1 MiB, newest last, and every line written still ran (failed, EINVAL).
. "$(dirname "$0")/../lib/mount.sh"
require_root

B=$T/backing
M=$T/mnt
mkdir -p "$B"
vhdfs_mount "$B" "$M"

out=$("$PY" - "$M/.control" <<'PYEOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
junk = "\x01" * 4000
fails = 0
for i in range(1100):
    try:
        os.write(fd, ("diff %s%d.vhd %s.vhd\n" % (junk, i, junk)).encode())
    except OSError as e:
        fails += e.errno == errno.EINVAL or e.errno == errno.ENAMETOOLONG \
            or e.errno == errno.EIO
text = b""
while True:
    chunk = os.read(fd, 1 << 20)
    if not chunk:
        break
    text += chunk
os.close(fd)
last = text.rstrip(b"\n").split(b"\n")[-1]
print(fails, len(text), b'\\x011099.vhd' in last)
PYEOF
)
read -r fails bytes newest <<<"$out"
assert_eq 1100 "$fails" "lines that failed"
[ "$bytes" -le 1048576 ] || fail "one open keeps $bytes bytes of results"
[ "$bytes" -gt 500000 ] || fail "only $bytes bytes of results kept"
assert_eq True "$newest" "newest result last"
vhdfs_umount "$M"
exit 0
