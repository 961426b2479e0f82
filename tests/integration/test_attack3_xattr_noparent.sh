#!/usr/bin/env bash
# asan: yes
# A differencing image whose parent is not found (moved away, or only a
# file with another unique id is there) listed user.vhd.parent, and
# getxattr of it failed with ENOENT (or EINVAL): `getfattr -d` printed
# "No such file or directory" for a file that is there. The attribute
# now has no value: it is not listed, getxattr says ENODATA (and the log
# says why), the other attributes read as before, user.vhd.chain ends at
# the child; once the parent is back, it is listed and read again.
# Hostile sizes: a size-0 query gives the length, a short buffer ERANGE.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img fusermount3 getfattr
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 8M
qemu-img create -q -f vhdx "$B/x.vhdx" 8M
vhdfs_mount "$B" "$M"
ctl "$M" "kid.vhd base.vhd"
ctl "$M" "xk.vhdx x.vhdx"
mv "$B/base.vhd" "$T/base.vhd"
mv "$B/x.vhdx" "$T/x.vhdx"

xattrs() { # FILE: "LIST|PARENT_ERR|CHAIN|GET0|SHORT"
	"$PY" - "$1" <<'PYEOF'
import ctypes, errno, os, sys
p = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def get(name, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    r = libc.getxattr(p.encode(), name.encode(), buf if size else None,
                      ctypes.c_size_t(size))
    return str(r) if r >= 0 else errno.errorcode[ctypes.get_errno()]
try:
    parent = os.getxattr(p, "user.vhd.parent").decode()
except OSError as e:
    parent = errno.errorcode[e.errno]
print("|".join([",".join(sorted(os.listxattr(p))), parent,
                os.getxattr(p, "user.vhd.chain").decode().replace("\n", ","),
                get("user.vhd.type", 0), get("user.vhd.type", 3)]))
PYEOF
}
ALL=user.vhd.allocated_blocks,user.vhd.block_size,user.vhd.chain
for f in kid.vhd xk.vhdx; do
	assert_eq "$ALL,user.vhd.type,user.vhd.uuid|ENODATA|$B/$f|12|ERANGE" \
		"$(xattrs "$M/$f")" "attributes of $f without its parent"
	getfattr --absolute-names -d "$M/$f" >"$T/out" 2>"$T/err" || fail "getfattr -d $f"
	[ ! -s "$T/err" ] || fail "getfattr -d $f: $(cat "$T/err")"
	grep -q '^user.vhd.type="differencing"' "$T/out" ||
		fail "getfattr -d $f: $(cat "$T/out")"
done
grep -q "user.vhd.parent of $B/kid.vhd: .*base.vhd" "$(vhdfs_log "$M")" ||
	fail "the log does not say why: $(tail -n 3 "$(vhdfs_log "$M")")"

mv "$T/base.vhd" "$B/base.vhd"
mv "$T/x.vhdx" "$B/x.vhdx"
assert_eq "$ALL,user.vhd.parent,user.vhd.type,user.vhd.uuid|$B/base.vhd|$B/kid.vhd,$B/base.vhd|12|ERANGE" \
	"$(xattrs "$M/kid.vhd")" "attributes of kid.vhd with its parent back"
assert_eq "$ALL,user.vhd.parent,user.vhd.type,user.vhd.uuid|$B/x.vhdx|$B/xk.vhdx,$B/x.vhdx|12|ERANGE" \
	"$(xattrs "$M/xk.vhdx")" "attributes of xk.vhdx with its parent back"
vhdfs_umount "$M"
exit 0
