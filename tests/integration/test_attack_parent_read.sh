#!/usr/bin/env bash
# asan: yes
# A child placed in BACKING_DIR may name any file as its parent: reading
# it through an allow_other mount read that parent's data with the
# daemon's rights. A user who cannot read a parent (its mode, or a
# directory on its path) cannot open a child of it (EACCES, logged);
# with a readable parent the same child opens; root reads both. Nor do
# user.vhd.parent and user.vhd.chain tell such a user where it is.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io setpriv getfattr

B=$T/backing
M=$T/mnt
S=$T/private
mkdir -p "$B" "$S"
chmod 755 "$T"
chmod 777 "$B"
chmod 700 "$S"
make_base "$S/secret.vhd" 1M 0x53 4096
chmod 600 "$S/secret.vhd"
cp "$S/secret.vhd" "$T/public.vhd"
chmod 644 "$T/public.vhd"
vhdfs_mount "$B" "$M" -o allow_other

as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# The user's own child of the private image (same unique id as the copy
# it was made from), and one of the public copy.
craft() { # CHILD PARENT-IN-LOCATOR
	as_user env PYTHONPATH="$REPO/tests/interop" C="$1" P="$2" \
		BASE="$T/public.vhd" "$PY" -c '
import os
from vhdcraft import *
e = os.environ
make_diff(e["C"], e["BASE"], uname="x.vhd",
          locators=[(W2KU, e["P"].replace("/", "\\"))])'
}
craft "$B/evil.vhd" "$S/secret.vhd"
craft "$B/fine.vhd" "$T/public.vhd"

expect_errno EACCES as_user cat "$M/evil.vhd"
grep -q "refusing open of /evil.vhd by uid 65534: parent $S/secret.vhd" \
	"$(vhdfs_log "$M")" || fail "no log line for the refused open"
qemu-img convert -O raw "$T/public.vhd" "$T/public.flat"
chmod 644 "$T/public.flat"
as_user cmp "$M/fine.vhd" "$T/public.flat" ||
	fail "a child of a readable parent does not read as it"
for a in parent chain; do
	expect_errno EACCES as_user getfattr -n "user.vhd.$a" "$M/evil.vhd"
done
assert_eq "$T/public.vhd" "$(as_user getfattr --absolute-names --only-values -n user.vhd.parent \
	"$M/fine.vhd")" "user.vhd.parent of a readable parent"
# A private directory on the way is enough to refuse.
chmod 644 "$S/secret.vhd"
expect_errno EACCES as_user cat "$M/evil.vhd"
chmod 600 "$S/secret.vhd"
cmp "$M/evil.vhd" "$T/public.flat" ||
	fail "root does not read the child as its parent"
vhdfs_umount "$M"
exit 0
