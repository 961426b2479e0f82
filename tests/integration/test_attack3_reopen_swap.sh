#!/usr/bin/env bash
# asan: yes
# When the last writer of an image closes while readers remain, the
# daemon swaps the shared handle for a read-only one, opened by path.
# Had another tool put another file at that path meanwhile (mv over it in
# BACKING_DIR), the readers' open descriptors silently went on reading
# that other file. The swap now opens only the same file (by inode), or
# keeps the handle it has: the reader reads on what it opened, the
# writer's data included, and new opens get the file now at the path
# (not the reader's pages: the kernel caches per path, so such an open
# reads past the cache, and the reader's close drops it).
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/x.vhd" 8M 0x5a 8M 0
make_base "$B/y.vhd" 8M 0x11 8M 0
vhdfs_mount "$B" "$M"

out=$("$PY" - "$M" "$B" <<'PYEOF'
import os, sys
m, b = sys.argv[1], sys.argv[2]
r = os.open(m + "/x.vhd", os.O_RDONLY)
w = os.open(m + "/x.vhd", os.O_RDWR)
os.pwrite(w, b"W" * 4096, 0)
os.rename(b + "/y.vhd", b + "/x.vhd")  # another tool, behind the mount
os.close(w)
# The release is asynchronous: a new open waits for it to finish.
os.close(os.open(m + "/x.vhd", os.O_RDONLY))
os.posix_fadvise(r, 0, 0, os.POSIX_FADV_DONTNEED)
got = [os.pread(r, 1, 0).hex(), os.pread(r, 1, 8192).hex()]
with open(m + "/x.vhd", "rb") as f:
    got.append(f.read(1).hex())
os.close(r)
for i in range(2):  # the reader gone: its pages are not the new file's
    with open(m + "/x.vhd", "rb") as f:
        got.append(f.read(8193)[::8192].hex())
print(" ".join(got))
PYEOF
)
assert_eq "57 5a 11 1111 1111" "$out" \
	"reader's bytes (written, old), new opens'"
grep -q "reopen of $B/x.vhd read-only failed: Stale file handle" \
	"$(vhdfs_log "$M")" || fail "no log line for the kept handle"
vhdfs_umount "$M"
"$VHD" check "$B/x.vhd" >&2 || fail "check of x.vhd"
exit 0
