#!/usr/bin/env bash
# `make install` honours PREFIX and DESTDIR (design.md): the two programs,
# as built, in $DESTDIR$PREFIX/bin and both man pages in share/man/man1
# (section 1 pages), and nothing else, not even an empty directory;
# `make uninstall` with the same variables removes what it installed.
. "$(dirname "$0")/../lib/mount.sh"
require_cmd make
require_bins "$VHD"

D=$T/dest
P=/opt/vhdfs-test
# -o all: install what $BUILD holds, never rebuild it here.
make -s -C "$REPO" -o all BUILD="$BUILD" DESTDIR="$D" PREFIX="$P" \
	install >"$T/out" 2>&1 || fail "make install: $(cat "$T/out")"
want=$(sort <<EOT
d $P
d $P/bin
f $P/bin/vhd 755
f $P/bin/vhdfs 755
d $P/share
d $P/share/man
d $P/share/man/man1
f $P/share/man/man1/vhd.1 644
f $P/share/man/man1/vhdfs.1 644
EOT
)
got=$(cd "$D" && find ".$P" -mindepth 0 \( -type d -printf 'd %P\n' -o \
	-printf '%y %P %m\n' \) | sed "s|^\([df]\) |\1 $P/|; s|/ | |; s|/\$||" |
	sort)
assert_eq "$want" "$got" "files installed under DESTDIR"
assert_cmp "$BUILD/vhd" "$D$P/bin/vhd" "installed vhd"
assert_cmp "$BUILD/vhdfs" "$D$P/bin/vhdfs" "installed vhdfs"
for src in vhd/cli/vhd.1 fuse/vhdfs.1; do
	page=${src##*/}
	name=${page%.1}
	assert_cmp "$REPO/$src" "$D$P/share/man/man1/$page" "installed $page"
	grep -q "^\.TH ${name^^} 1 " "$REPO/$src" ||
		fail "$page is not a section 1 page"
done
"$D$P/bin/vhd" --version | grep -q '^vhd ' || fail "installed vhd runs"

make -s -C "$REPO" -o all BUILD="$BUILD" DESTDIR="$D" PREFIX="$P" \
	uninstall >"$T/out" 2>&1 || fail "make uninstall: $(cat "$T/out")"
left=$(find "$D" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
exit 0
