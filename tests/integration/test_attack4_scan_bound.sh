#!/usr/bin/env bash
# asan: yes
# At a writer's close the daemon reads /proc/PID/fd of the closing process,
# the opener and their descendants (fuse/holders.c). That work must be
# bounded: a caller's 250 children sharing 19000 descriptors made one
# close(2) take 20 s, and twelve such closes held every daemon thread
# (another program's 4 KiB read of another image waited 53 s). Past the
# bound the daemon assumes a holder, as for anything it cannot read: the
# lock stays until the release. Shown here without timing: a closer with
# 6000 descriptors and a holder it cannot see (passed over a socket)
# keeps the lock, which it let go before the bound.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
vhdfs_mount "$B" "$M"
ctl "$M" "create a.vhd 16M"

"$PY" - "$M" "$B" <<'PYEOF' || fail "a close with many descriptors in sight"
import array, os, resource, socket, subprocess, sys

mnt, back = sys.argv[1:3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < 6100:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(6100, hard), hard))
nul = os.open("/dev/null", os.O_RDONLY)
extra = [os.dup(nul) for _ in range(6000)]

a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
pid = os.fork()
if pid == 0:
    a.close()
    for d in extra:
        os.close(d)
    if os.fork():
        os._exit(0)
    _, anc, _, _ = b.recvmsg(16, socket.CMSG_LEN(4))
    fd = array.array("i", anc[0][2][:4])[0]
    b.recv(16)
    os.close(fd)
    b.send(b"closed")
    os._exit(0)
b.close()
os.waitpid(pid, 0)
fd = os.open(f"{mnt}/a.vhd", os.O_RDWR)
os.pwrite(fd, b"G" * 4096, 0)
a.sendmsg([b"fd"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                     array.array("i", [fd]))])
os.close(fd)
r = subprocess.run(["qemu-img", "info", f"{back}/a.vhd"],
                   capture_output=True, text=True)
a.send(b"end")
assert a.recv(16) == b"closed"
assert r.returncode != 0 and 'shared "write" lock' in r.stderr, \
    "the lock went after a scan of 6000 descriptors: " + r.stderr
PYEOF
vhdfs_umount "$M"
"$VHD" check "$B/a.vhd" >"$T/check" 2>&1 || fail "vhd check: $(cat "$T/check")"
