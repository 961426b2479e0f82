#!/usr/bin/env bash
# asan: yes
# The kernel caches an image's pages per path, and a write through the
# mount (direct I/O) drops only the pages of the name written through.
# A descriptor already open on another name of the same file (a hard
# link, a symlink in BACKING_DIR) kept reading the old bytes from its
# cache, through read(2) and mmap alike, until it was reopened. Writes
# now drop the pages of the file's other open names: every descriptor
# reads what was written. Readers busy on those names while a writer
# writes neither hang nor see old data once the write returned.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/a.vhd" 8M 0x5a 8M 0
ln "$B/a.vhd" "$B/b.vhd"
ln -s a.vhd "$B/c.vhd"
vhdfs_mount "$B" "$M"

cat >"$T/alias.py" <<'PYEOF'
import mmap, os, sys, threading
m = sys.argv[1]
fds = {}
for n in "abc":
    fd = os.open(f"{m}/{n}.vhd", os.O_RDONLY)
    os.pread(fd, 1 << 20, 0)  # pages cached under this name
    fds[n] = fd
maps = {n: mmap.mmap(fd, 1 << 20, prot=mmap.PROT_READ) for n, fd in fds.items()}
for n in "abc":
    assert maps[n][4096] == 0x5A
bad = []
for w in "abc":
    data = w.upper().encode() * 4096
    wfd = os.open(f"{m}/{w}.vhd", os.O_RDWR)
    os.pwrite(wfd, data, 4096)
    os.close(wfd)
    for n in "abc":
        if os.pread(fds[n], 4096, 4096) != data:
            bad.append(f"read({n}) after a write through {w}")
        if maps[n][4096:8192] != data:
            bad.append(f"mmap({n}) after a write through {w}")
# Readers re-reading b and c while a writer writes through a.
stop = False
def reader(fd):
    while not stop:
        os.pread(fd, 1 << 20, 0)
ts = [threading.Thread(target=reader, args=(fds[n],)) for n in "bc"]
for t in ts:
    t.start()
wfd = os.open(f"{m}/a.vhd", os.O_RDWR)
for i in range(200):
    data = bytes([i]) * 8192
    os.pwrite(wfd, data, 65536 * (i % 64))
    for n in "bc":
        if os.pread(fds[n], 8192, 65536 * (i % 64)) != data:
            bad.append(f"read({n}) of write {i} through a")
os.close(wfd)
stop = True
for t in ts:
    t.join()
print("\n".join(bad) if bad else "ok")
PYEOF
out=$(bounded "$M" "$PY" "$T/alias.py" "$M")
assert_eq ok "$out" "reads through the other names"
vhdfs_umount "$M"
"$VHD" check "$B/a.vhd" >&2 || fail "check of a.vhd"
exit 0
