#!/usr/bin/env bash
# asan: yes
# A child hidden deep in BACKING_DIR still protects its parent: the scan
# for children stopped 64 directories down, so with the child 70 levels
# deep the parent opened for writing and `rm` deleted it (the child lost
# its parent). Write opens must fail EPERM, rm and mv EBUSY, a merge that
# removes the parent EPERM, however deep the child. A bind mount looping
# BACKING_DIR into itself ends the scan rather than hanging it.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_bins "$VHD"

B=$T/backing
M=$T/mnt
mkdir -p "$B"
"$VHD" create "$B/base.vhd" 4M >/dev/null
"$VHD" create "$B/gold.vhd" 4M >/dev/null
vhdfs_mount "$B" "$M"

deep=$(printf 'd/%.0s' $(seq 70))
mkdir -p "$M/$deep"
ctl "$M" "${deep}c.vhd base.vhd"
ctl "$M" "mid.vhd gold.vhd"
ctl "$M" "top.vhd mid.vhd"
ctl "$M" "${deep}c2.vhd mid.vhd"
sha=$(sha256sum <"$B/base.vhd")
msha=$(sha256sum <"$B/mid.vhd")

assert_eq EPERM "$(py_errno open_rw "$M/base.vhd")" "write open of the parent"
assert_eq EBUSY "$(py_errno unlink "$M/base.vhd")" "rm of the parent"
assert_eq EBUSY "$(py_errno rename "$M/base.vhd" "$M/moved.vhd")" \
	"mv of the parent"
# gold <- mid <- top: merging top changes mid, on which c2.vhd depends.
expect_errno EPERM ctl "$M" "merge top.vhd"
assert_eq "$sha" "$(sha256sum <"$B/base.vhd")" "parent file"
assert_eq "$msha" "$(sha256sum <"$B/mid.vhd")" "merge target"

# BACKING_DIR bound into itself: the scan must not run around the loop.
mkdir "$B/loop"
mount --bind "$B" "$B/loop"
cleanup_push "! is_mounted '$B/loop' || umount '$B/loop'"
assert_eq EBUSY "$(bounded "$M" py_errno unlink "$M/base.vhd")" \
	"rm of the parent with a looping bind mount"
umount "$B/loop"

# Once the deep children are gone, the parents are leaves again.
rm "$M/${deep}c.vhd" "$M/${deep}c2.vhd" "$M/top.vhd"
assert_eq OK "$(py_errno unlink "$M/mid.vhd")" "rm of a former parent"
assert_eq OK "$(py_errno open_rw "$M/base.vhd")" "write open of a leaf"
vhdfs_umount "$M"
exit 0
