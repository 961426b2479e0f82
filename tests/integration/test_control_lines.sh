#!/usr/bin/env bash
# .control takes lines, not write requests: a line split across write
# requests runs once and whole (`cat script > .control` beyond 128 KiB, and
# writes of a few bytes); an unterminated last line runs at the last
# close(2) of the open file (not a shell child's), which returns its errno; a NUL byte or a line over 64 KiB fails that line alone
# (EINVAL, read back as 32773) and later lines still run.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M 0x5a 64K 0
vhdfs_mount "$B" "$M"

# A script of N creates with distinct sizes, each line padded with blanks
# between its words (and a comment line between them) so the script is well
# past the 128 KiB a single FUSE write request carries and the request
# boundaries fall inside commands.
script() { # PREFIX N
	local i
	for ((i = 1; i <= $2; i++)); do
		printf 'create %s%d.vhd%*s%dM\n' "$1" "$i" $((2900 + i * 37)) '' \
			$((i * 100 + 1))
		printf '# comment %d\n' "$i"
	done
}
check_sizes() { # PREFIX N
	local i
	for ((i = 1; i <= $2; i++)); do
		assert_eq $(((i * 100 + 1) * MiB)) "$(stat -c %s "$M/$1$i.vhd")" \
			"size of $1$i.vhd"
	done
	assert_eq "$2" "$(find "$B" -name "$1*.vhd" | wc -l)" "images $1*"
}

script c 100 >"$T/script"
size=$(stat -c %s "$T/script")
[ "$size" -gt $((2 * 128 * 1024)) ] || fail "script only $size bytes"
cat "$T/script" >"$M/.control" || fail "cat script > .control failed"
check_sizes c 100

# Writes of 4093 bytes (and of 7) cut nearly every line; all results are
# read back through the same open, in order, each command whole.
script p 40 >"$T/script2"
for chunk in 4093 7; do
	sed "s/create p/create $chunk-p/" "$T/script2" >"$T/script3"
	"$PY" - "$M/.control" "$T/script3" "$chunk" >"$T/out" <<'EOF'
import os, sys
data = open(sys.argv[2], "rb").read()
n = int(sys.argv[3])
fd = os.open(sys.argv[1], os.O_RDWR)
for o in range(0, len(data), n):
    assert os.write(fd, data[o:o + n]) == len(data[o:o + n])
os.lseek(fd, 0, os.SEEK_SET)
out = b""
while True:
    c = os.read(fd, 65536)
    if not c:
        break
    out += c
os.close(fd)
sys.stdout.write(out.decode())
EOF
	check_sizes "$chunk-p" 40
	for ((i = 1; i <= 40; i++)); do
		printf 'ReturnValue=0 Command="create %s-p%d.vhd %dM"\n' \
			"$chunk" "$i" $((i * 100 + 1))
	done >"$T/want"
	assert_cmp "$T/want" "$T/out" "results of $chunk-byte writes"
done

# An unterminated last line runs when the writer closes the file: the
# shell's printf finds the image there as soon as it returns.
printf 'create tail.vhd 3M' >"$M/.control"
assert_eq $((3 * MiB)) "$(stat -c %s "$M/tail.vhd")" "size of tail.vhd"
# ... and close(2) returns its error.
"$PY" - "$M/.control" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"tail2.vhd missing.vhd")
try:
    os.close(fd)
    sys.exit("close ran no failing command")
except OSError as e:
    if e.errno != errno.ENOENT:
        sys.exit(f"close: errno {errno.errorcode[e.errno]}")
EOF
[ ! -e "$B/tail2.vhd" ] || fail "tail2.vhd created"

# A NUL byte fails its own line; the lines after it still run.
"$PY" - "$M/.control" >"$T/out" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    os.write(fd, b"create n1.vhd 1M\ncreate bad\0.vhd 1M\ncreate n2.vhd 2M\n")
    sys.exit("write with a NUL byte succeeded")
except OSError as e:
    if e.errno != errno.EINVAL:
        sys.exit(f"NUL line: errno {errno.errorcode[e.errno]}")
os.lseek(fd, 0, os.SEEK_SET)
sys.stdout.write(os.read(fd, 65536).decode())
os.close(fd)
EOF
cat >"$T/want" <<'EOF'
ReturnValue=0 Command="create n1.vhd 1M"
ReturnValue=32773 Error="NUL byte in command line" Command="create bad\x00.vhd 1M"
ReturnValue=0 Command="create n2.vhd 2M"
EOF
assert_cmp "$T/want" "$T/out" "results around a NUL byte"
assert_eq $((2 * MiB)) "$(stat -c %s "$M/n2.vhd")" "size of n2.vhd"
[ -z "$(find "$B" -name 'bad*')" ] || fail "a file named bad* was created"

# A line over 64 KiB fails with EINVAL, its rest is dropped up to its
# newline (nothing of it runs), and the next line runs.
"$PY" - "$M/.control" >"$T/out" <<'EOF'
import errno, os, sys
data = (b"create o1.vhd 1M\ncreate " + b"o" * 70000 + b" 5M\n"
        b"create o2.vhd 2M\n")
fd = os.open(sys.argv[1], os.O_RDWR)
errs = []
for o in range(0, len(data), 4096):
    try:
        os.write(fd, data[o:o + 4096])
    except OSError as e:
        errs.append(errno.errorcode[e.errno])
if errs != ["EINVAL"]:
    sys.exit(f"write errors: {errs}")
os.lseek(fd, 0, os.SEEK_SET)
sys.stdout.write(os.read(fd, 65536).decode())
os.close(fd)
EOF
{
	echo 'ReturnValue=0 Command="create o1.vhd 1M"'
	printf 'ReturnValue=32773 Error="command line longer than 65536 bytes: discarded" Command="create %s..."\n' \
		"$(head -c 57 /dev/zero | tr '\0' o)"
	echo 'ReturnValue=0 Command="create o2.vhd 2M"'
} >"$T/want"
assert_cmp "$T/want" "$T/out" "results around an overlong line"
assert_eq $((2 * MiB)) "$(stat -c %s "$M/o2.vhd")" "size of o2.vhd"
[ -z "$(find "$B" -name 'ooo*')" ] || fail "part of the long line ran"

# A line split between the processes of one redirection runs whole at the
# last close: a child of the shell closing its copy of the descriptor
# (FLUSH) must not cut it short.
{
	/bin/echo -n "create sp1"
	/bin/echo -n ".vhd "
	/bin/echo "3M"
	/bin/echo -n "create sp2.vhd"
	/bin/echo -n " 5M"
} >"$M/.control" || fail "a line written by two processes failed"
assert_eq $((3 * MiB)) "$(stat -c %s "$M/sp1.vhd")" "size of sp1.vhd"
assert_eq $((5 * MiB)) "$(stat -c %s "$M/sp2.vhd")" "size of sp2.vhd"
[ ! -e "$B/sp1" ] && [ ! -e "$B/create" ] || fail "a piece of a line ran"
