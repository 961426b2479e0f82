#!/usr/bin/env bash
# asan: yes
# An image removed while open (rm through the mount, any user who may
# delete it) stays usable through its open descriptor, and requests on
# that descriptor come with no path: ftruncate, fchmod, futimens and
# fstat of it crashed the daemon (strcmp of a NULL path; the mount was
# dead). They now answer from the open handle: ftruncate to the same
# size succeeds and to another fails EINVAL, reads and writes go on, and
# the same holds for a removed .jobs/ID still open.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
"$VHD" create "$B/x.vhd" 1M >/dev/null
"$VHD" create "$B/y.vhd" 1M >/dev/null
vhdfs_mount "$B" "$M"
ctl "$M" "validate y.vhd"
job_wait "$M" 1

out=$("$PY" - "$M" <<'PYEOF'
import errno, os, sys
m = sys.argv[1]
def err(f, *a):
    try:
        f(*a)
        return "OK"
    except OSError as e:
        return errno.errorcode[e.errno]
fd = os.open(m + "/x.vhd", os.O_RDWR)
jfd = os.open(m + "/.jobs/1", os.O_RDONLY)
os.unlink(m + "/x.vhd")
os.unlink(m + "/.jobs/1")
res = [err(os.fstat, fd), err(os.ftruncate, fd, 1 << 20),
       err(os.ftruncate, fd, 4096), err(os.fchmod, fd, 0o600),
       err(os.utime, fd, (0, 0)), err(os.fstat, jfd)]
os.pwrite(fd, b"removed!", 512)
res.append(os.pread(fd, 8, 512).decode())
res.append(os.read(jfd, 12).decode().strip())
os.close(fd)
os.close(jfd)
print(" ".join(res))
PYEOF
)
read -r _ trunc_same trunc_other _ _ _ data job <<<"$out"
assert_eq OK "$trunc_same" "ftruncate to the same size"
assert_eq EINVAL "$trunc_other" "ftruncate to another size"
assert_eq removed! "$data" "data written to the removed image"
assert_eq InstanceID=1 "$job" "removed job file"
assert_eq "y.vhd" "$(ls "$M")" "listing after the requests"
vhdfs_umount "$M"
exit 0
