#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# qemu as an independent oracle for dynamic and fixed images (never for
# differencing content, which qemu misreads): images we create open in
# qemu-img with the right virtual size; content qemu-io writes into them,
# and content we write, reads the same through `vhd cat` and through
# `qemu-img convert`; qemu-made images read right through `vhd cat`, also
# as the parent of a child we create and write.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
build_writer


qsize() { # IMAGE -> virtual size as qemu sees it
	qemu-img info -f vpc --output=json "$1" |
		$PY -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'
}
oursize() {
	"$VHD" info "$1" | awk '/^Virtual size:/ {print $3}'
}
qraw() { # IMAGE OUT
	qemu-img convert -f vpc -O raw "$1" "$2" || fail "qemu-img convert $1"
}

# 1. Our images in qemu: format, size, readable end to end.
while read -r kind size want args; do
	img=$kind-$size.vhd
	# shellcheck disable=SC2086
	"$VHD" create --$kind $args "$img" "$size" || fail "vhd create $img"
	qemu-img info "$img" >/dev/null || fail "qemu-img info $img"
	[ "$(qsize "$img")" = "$want" ] ||
		fail "$img: qemu size $(qsize "$img"), want $want"
	[ "$(oursize "$img")" = "$want" ] ||
		fail "$img: our size $(oursize "$img"), want $want"
	if [ "$kind" = dynamic ]; then
		qemu-img info --output=json "$img" > qinfo ||
			fail "qemu-img info $img"
		grep -q '"format": "vpc"' qinfo ||
			fail "$img not probed as vpc"
	fi
	# Reading a big empty image end to end only costs time.
	[ "$want" -le 104857600 ] || continue
	qraw "$img" "$img.raw"
	"$VHD" cat "$img" > "$img.cat" || fail "vhd cat $img"
	same "$img.raw" "$img.cat" "empty $img"
done <<'LIST'
dynamic 100M 104857600
dynamic 12345678 12345856
dynamic 2040G 2190433320960
fixed 10M 10485760
fixed 3000001 3000320
dynamic 5M 5242880 --block-size 512K
LIST

# 2. qemu-io writes into our images; `vhd cat` equals qemu's own reading.
qwrites() { # IMAGE
	qemu-io -f vpc \
		-c 'write -P 0x11 0 4k' \
		-c 'write -P 0x22 1048064 8k' \
		-c 'write -P 0x33 2093056 16k' \
		-c 'write -P 0x44 33280 1024' \
		-c 'write -P 0x55 4194304 2M' \
		-c 'write -z 4198400 4k' \
		"$1" >/dev/null || fail "qemu-io write $1"
}
for spec in "dynamic 8M" "dynamic 8M --block-size 512K" "fixed 8M"; do
	set -- $spec
	img=q-$1-${3:+512k}.vhd
	"$VHD" create --$1 ${3:+$3 $4} "$img" "$2" || fail "create $img"
	qwrites "$img"
	qraw "$img" "$img.raw"
	"$VHD" cat "$img" > "$img.cat" || fail "vhd cat $img"
	same "$img.raw" "$img.cat" "qemu-written $img"
	"$VHD" check "$img" >/dev/null || fail "vhd check $img after qemu wrote"
done

# 3. We write (sector-granular and unaligned); qemu reads the same.
head -c 3000000 /dev/urandom > data.bin
ourwrites() { # IMAGE FLAT: same writes into the image and a flat model
	local img=$1 flat=$2
	while read -r off skip len; do
		dd if=data.bin of=chunk bs=64k skip="$skip" count="$len" \
			iflag=skip_bytes,count_bytes status=none
		"$WRITE" "$img" "$off" < chunk || fail "vhd-write $img $off"
		dd if=chunk of="$flat" bs=1M seek="$off" oflag=seek_bytes \
			conv=notrunc status=none
	done <<'LIST'
0 0 512
1000 7 3000
2096640 100 1024
524287 5000 1
3145728 9000 2097152
8388095 11 1
4194304 300 0
7000001 12345 777777
LIST
}
for spec in "dynamic 8M" "dynamic 8M --block-size 512K" "fixed 8M"; do
	set -- $spec
	img=o-$1-${3:+512k}.vhd
	"$VHD" create --$1 ${3:+$3 $4} "$img" "$2" || fail "create $img"
	truncate -s 8M "$img.flat"
	ourwrites "$img" "$img.flat"
	qraw "$img" "$img.raw"
	same "$img.flat" "$img.raw" "qemu reading what we wrote into $img"
	"$VHD" cat "$img" > "$img.cat"
	same "$img.flat" "$img.cat" "vhd cat of what we wrote into $img"
done

# 4. qemu-made images read right; a child of one reads and writes right.
for sub in dynamic fixed; do
	img=qemu-$sub.vhd
	qemu-img create -q -f vpc -o subformat=$sub "$img" 20M ||
		fail "qemu-img create $img"
	qwrites "$img"
	[ "$(oursize "$img")" = "$(qsize "$img")" ] ||
		fail "$img: size $(oursize "$img") vs qemu $(qsize "$img")"
	qraw "$img" "$img.raw"
	"$VHD" cat "$img" > "$img.cat" || fail "vhd cat $img"
	same "$img.raw" "$img.cat" "qemu-made $img"

	sum=$(sha256sum < "$img")
	"$VHD" diff "child-$sub.vhd" "$img" || fail "vhd diff on $img"
	# qemu opens our child (as a stand-alone disk) with the same size.
	[ "$(qsize "child-$sub.vhd")" = "$(oursize "$img")" ] ||
		fail "child of $img: qemu size $(qsize "child-$sub.vhd")"
	"$VHD" cat "child-$sub.vhd" > child.cat
	same "$img.raw" child.cat "empty child of $img"
	cp "$img.raw" child.flat
	ourwrites "child-$sub.vhd" child.flat
	"$VHD" cat "child-$sub.vhd" > child.cat
	same child.flat child.cat "written child of $img"
	[ "$(sha256sum < "$img")" = "$sum" ] || fail "$img changed under child"
done
echo "qemu interop: ok"
