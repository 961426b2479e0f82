#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# libvhdi as an independent oracle for differencing chains (4 KiB-aligned
# data only: libvhdi misreads partly set bitmap bytes): vhdiinfo sees the
# children we create as differencing with the right parent name and id,
# and pyvhdi reading our chains (set_parent) returns what `vhd cat` and a
# flat model say, for 2 MiB and 512 KiB blocks, three levels deep.
. "$(dirname "$0")/lib.sh"
need vhdiinfo
$PY -c 'import pyvhdi' 2>/dev/null || { echo "SKIP: pyvhdi"; exit 77; }
build_writer

head -c 4000000 /dev/urandom > data.bin
head -c 65536 /dev/zero > zeros.bin

# put IMAGE FLAT OFF SKIP LEN [SRC]: write into the image and the model.
put() {
	local src=${6:-data.bin}
	dd if="$src" of=chunk bs=64k skip="$4" count="$5" \
		iflag=skip_bytes,count_bytes status=none
	"$WRITE" "$1" "$3" < chunk || fail "vhd-write $1 $3"
	dd if=chunk of="$2" bs=1M seek="$3" oflag=seek_bytes conv=notrunc \
		status=none
}

uuid_of() {
	"$VHD" info "$1" | awk '/^UUID:/ {print $2}'
}

pyread() { # LEAF OUT PARENTS... : the chain as pyvhdi reads it
	$PY - "$@" <<'PY'
import sys, pyvhdi
leaf, out, parents = sys.argv[1], sys.argv[2], sys.argv[3:]
files = []
for p in [leaf] + parents:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
for child, parent in zip(files, files[1:]):
    child.set_parent(parent)
f = files[0]
size = f.get_media_size()
with open(out, "wb") as o:
    off = 0
    while off < size:
        n = min(1 << 20, size - off)
        o.write(f.read_buffer_at_offset(n, off))
        off += n
PY
}

for bs in 2M 512K; do
	size=12M
	"$VHD" create --dynamic --block-size $bs base-$bs.vhd $size ||
		fail "create base"
	truncate -s $size flat
	put base-$bs.vhd flat 0 0 1048576
	put base-$bs.vhd flat 4194304 1048576 2097152
	put base-$bs.vhd flat 10485760 3000000 524288

	"$VHD" diff mid-$bs.vhd base-$bs.vhd || fail "vhd diff mid"
	put mid-$bs.vhd flat 4096 100 8192
	put mid-$bs.vhd flat 2093056 200000 8192        # across 2 MiB
	put mid-$bs.vhd flat 520192 300000 12288        # across 512 KiB
	put mid-$bs.vhd flat 8388608 400000 1048576

	"$VHD" diff leaf-$bs.vhd mid-$bs.vhd || fail "vhd diff leaf"
	put leaf-$bs.vhd flat 8192 0 16384 zeros.bin    # zeros over data
	put leaf-$bs.vhd flat 4194304 500000 4096
	put leaf-$bs.vhd flat 6287360 600000 8192
	put leaf-$bs.vhd flat 12578816 700000 4096      # last 4 KiB

	info=$(vhdiinfo leaf-$bs.vhd) || fail "vhdiinfo leaf-$bs.vhd"
	grep -Eq 'Disk type[[:space:]]*: Differential' <<< "$info" ||
		fail "vhdiinfo: leaf not differencing: $info"
	grep -Eq "Parent filename[[:space:]]*: mid-$bs.vhd\$" <<< "$info" ||
		fail "vhdiinfo: parent name: $info"
	mid_uuid=$(uuid_of mid-$bs.vhd)
	[ ${#mid_uuid} -eq 36 ] || fail "vhd info: mid UUID '$mid_uuid'"
	grep -Eq "Parent identifier[[:space:]]*: $mid_uuid" <<< "$info" ||
		fail "vhdiinfo: parent id is not mid's $mid_uuid"
	grep -Eq 'Media size.*\(12582912 bytes\)' <<< "$info" ||
		fail "vhdiinfo: media size: $info"
	binfo=$(vhdiinfo base-$bs.vhd) || fail "vhdiinfo base-$bs.vhd"
	grep -Eq 'Disk type[[:space:]]*: Dynamic' <<< "$binfo" ||
		fail "vhdiinfo: base not dynamic"

	"$VHD" cat leaf-$bs.vhd > ours || fail "vhd cat leaf"
	same flat ours "vhd cat of leaf-$bs"
	pyread leaf-$bs.vhd theirs mid-$bs.vhd base-$bs.vhd ||
		fail "pyvhdi read"
	same flat theirs "pyvhdi read of leaf-$bs"
	pyread mid-$bs.vhd theirs base-$bs.vhd || fail "pyvhdi read mid"
	"$VHD" cat mid-$bs.vhd > ours
	same ours theirs "pyvhdi vs vhd cat of mid-$bs"
done
echo "libvhdi interop: ok"
