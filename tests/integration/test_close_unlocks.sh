#!/usr/bin/env bash
# asan: yes
# A writer's close(2) leaves the image ready for other programs: right after
# `dd of=MNT/x` returns, qemu opens BACKING/x with its locks and reads what
# dd wrote. The kernel sends RELEASE only after close(2) has returned; the
# daemon flushes at FLUSH, so the release has no I/O left before the write
# lock goes (before, qemu-img failed "Failed to get shared write lock" on
# 7 of 40 tries on an idle machine, 19 of 40 with both cores busy).
# While another descriptor of the writer is still open, the lock stays.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 64M 0x5a 64M 0
vhdfs_mount "$B" "$M"

# write_then_read NAME FMT CREATE_LINE I: make NAME, dd 1 MiB of byte I
# into it through the mount (across a block boundary), then at once read
# it back with qemu-io (locking, read-only) from BACKING_DIR.
write_then_read() {
	local name=$1 fmt=$2 line=$3 i=$4 off out
	off=$((i * 3 * 1048576 - 65536))
	rm -f "$M/$name"
	ctl "$M" "$line"
	"$PY" -c "import sys; sys.stdout.buffer.write(bytes([$i]) * 1048576)" \
		>"$T/pattern"
	dd if="$T/pattern" of="$M/$name" bs=64k seek=$((off / 65536)) \
		conv=notrunc status=none
	if ! out=$(qemu-io -r -f "$fmt" -c "read -P $i $off 1M" \
		"$B/$name" 2>&1); then
		log "try $i: $out"
		return 1
	fi
	grep -q "read 1048576/1048576 bytes" <<<"$out" &&
		! grep -q "Pattern verification failed" <<<"$out"
}

failed=0
for ((i = 1; i <= 12; i++)); do
	write_then_read d.vhd vpc "create d.vhd 64M" "$i" || failed=$((failed + 1))
done
[ "$failed" -eq 0 ] || fail "dynamic VHD: $failed of 12 reads right after dd failed"
for ((i = 1; i <= 8; i++)); do
	write_then_read d.vhdx vhdx "create d.vhdx 64M" "$i" || failed=$((failed + 1))
done
[ "$failed" -eq 0 ] || fail "dynamic VHDX: $failed of 8 reads right after dd failed"
# A child: qemu reads it as a dynamic image, so only `qemu-img info`.
for ((i = 1; i <= 20; i++)); do
	rm -f "$M/c.vhd"
	ctl "$M" "c.vhd base.vhd"
	head -c 1048576 /dev/urandom |
		dd of="$M/c.vhd" bs=64k seek=$((i * 48 - 1)) conv=notrunc \
			status=none
	qemu-img info "$B/c.vhd" >/dev/null 2>"$T/err" || {
		cat "$T/err" >&2
		failed=$((failed + 1))
	}
done
[ "$failed" -eq 0 ] || fail "child: $failed of 20 qemu-img info right after dd failed"

# The same writer keeps its lock while a descriptor is still open: bash
# closes its dup of fd 3 after each redirected builtin (a FLUSH).
exec 3<>"$M/c.vhd"
printf 'still writing' >&3
if qemu-img info "$B/c.vhd" >/dev/null 2>"$T/err"; then
	exec 3>&-
	fail "qemu-img opened an image still open for writing through the mount"
fi
grep -q 'Failed to get shared "write" lock' "$T/err" ||
	fail "qemu-img: $(cat "$T/err")"
exec 3>&-
qemu-img info "$B/c.vhd" >/dev/null || fail "qemu-img info after the last close"
head -c 13 "$M/c.vhd" | grep -q "still writing" || fail "the last write is not there"

# A descriptor the daemon cannot see (passed to an unrelated process over a
# socket) loses the lock at its opener's close; its next write takes it
# back, reading the file afresh, unless the image became a parent
# meanwhile: then that write fails EPERM and changes nothing.
"$PY" - "$M" "$B" "$VHD" <<'EOF' || fail "a descriptor passed to another process"
import array, hashlib, os, socket, subprocess, sys
mnt, back, vhd = sys.argv[1:4]


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def handed_over(name):
    """Open NAME for writing, write, pass the descriptor to an unrelated
    process (a grandchild) and close it here. Returns our socket end: each
    "go" makes the holder write 4 KiB and answer with the result; anything
    else makes it close the descriptor and answer "closed"."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        a.close()
        if os.fork():
            os._exit(0)
        _, anc, _, _ = b.recvmsg(16, socket.CMSG_LEN(4))
        fd = array.array("i", anc[0][2][:4])[0]
        off = 4096
        while b.recv(16) == b"go":
            try:
                os.pwrite(fd, b"H" * 4096, off)
                b.send(b"ok")
            except OSError as e:
                b.send(os.strerror(e.errno).encode())
            off += 4096
        os.close(fd)
        b.send(b"closed")
        os._exit(0)
    b.close()
    os.waitpid(pid, 0)
    fd = os.open(f"{mnt}/{name}", os.O_RDWR)
    os.pwrite(fd, b"G" * 4096, 0)
    a.sendmsg([b"fd"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                         array.array("i", [fd]))])
    os.close(fd)
    return a


for name in ("p.vhd", "q.vhd"):
    with open(f"{mnt}/.control", "w") as f:
        f.write(f"{name} base.vhd\n")

# No child made meanwhile: the holder's write takes the lock back.
a = handed_over("p.vhd")
r = run("qemu-img", "info", f"{back}/p.vhd")
assert r.returncode == 0, "lock kept after the opener's close: " + r.stderr
a.send(b"go")
assert a.recv(64) == b"ok", "the holder's write failed"
r = run("qemu-img", "info", f"{back}/p.vhd")
assert r.returncode != 0 and 'shared "write" lock' in r.stderr, \
    "lock not taken back: " + r.stderr
a.send(b"end")
assert a.recv(64) == b"closed"
r = run("qemu-io", "-r", "-f", "vpc", "-c", "read -P 0x47 0 4096",
        "-c", "read -P 0x48 4096 4096", f"{back}/p.vhd")
assert r.stdout.count("read 4096/4096") == 2 and "fail" not in r.stdout, \
    r.stdout + r.stderr

# A child made in the gap: the holder's write fails EPERM, nothing changes.
a = handed_over("q.vhd")
r = run(vhd, "diff", f"{back}/k.vhd", f"{back}/q.vhd")
assert r.returncode == 0, "vhd diff in the gap: " + r.stderr
before = sha(f"{back}/q.vhd")
a.send(b"go")
answer = a.recv(64).decode()
assert answer == os.strerror(1), "write into a parent: " + answer
assert sha(f"{back}/q.vhd") == before, "a refused write changed the parent"
a.send(b"end")
assert a.recv(64) == b"closed"
EOF
