#!/usr/bin/env bash
# merge and convert as jobs through .control: a throttled merge is polled
# to completion with PercentComplete taking intermediate values; while it
# runs the child refuses write opens, rm, a new child and a second merge
# with EBUSY, and other images keep being served; a job refuses to start
# on an image open for writing (EBUSY); afterwards the base
# holds the child's view (also as qemu reads it) and the child is gone.
# A cancelled merge ends in JobState 8 with the child's view unchanged,
# and a rerun completes it. Refusals: another child of the base (EPERM),
# not differencing (EINVAL), missing (ENOENT). convert of a 3-level chain
# to dynamic and fixed equals its flat view; a failing convert ends in
# JobState 10 with ErrorCode and ErrorDescription; a merge interrupted
# between removals is named by `vhd check` and finished by a rerun.
. "$(dirname "$0")/../lib/mount.sh"
require_root
require_cmd qemu-img qemu-io fusermount3
require_bins

MiB=$((1024 * 1024))
B=$T/backing
M=$T/mnt
mkdir -p "$B"
make_base "$B/base.vhd" 32M 0x5a 8M 0
make_base "$B/other.vhd" 8M 0x33 8M 0

last_result() { cat "$M/.control" | tail -n 1; }
# fill IMAGE: random data at a few places, through the mount.
fill() {
	head -c $((6 * MiB)) /dev/urandom |
		dd of="$M/$1" bs=1M seek=1 conv=notrunc,fsync status=none
	head -c 5000 /dev/urandom |
		dd of="$M/$1" bs=1 seek=$((20 * MiB + 77)) conv=notrunc,fsync \
			status=none
	head -c $((2 * MiB)) /dev/urandom |
		dd of="$M/$1" bs=1M seek=30 conv=notrunc,fsync status=none
}

# 16 chunks of 2 MiB, 150 ms each: the job runs for seconds.
VHDFS_JOB_THROTTLE_MS=150 vhdfs_mount "$B" "$M"

ctl "$M" "mid.vhd base.vhd"
fill mid.vhd
ctl "$M" "child.vhd mid.vhd"
fill child.vhd
cp "$M/child.vhd" "$T/child.flat"
cp "$M/other.vhd" "$T/other.flat"
# A hard link is the same image: a directory holding it cannot move
# while a job changes the image.
mkdir "$B/sub"
ln "$B/child.vhd" "$B/sub/alias.vhd.link"

# Refused: not differencing, missing, another child of a changed level.
expect_errno EINVAL ctl "$M" "merge base.vhd"
expect_errno ENOENT ctl "$M" "merge nothing.vhd"
ctl "$M" "sib.vhd base.vhd"
expect_errno EPERM ctl "$M" "merge child.vhd base.vhd"
grep -q 'ReturnValue=32775 .*sib.vhd depends on base.vhd' "$M/.control" ||
	fail "no 32775 naming sib.vhd: $(last_result)"
rm "$M/sib.vhd"

# A job refuses to start on an image open for writing.
exec 3<>"$M/child.vhd"
expect_errno EBUSY ctl "$M" "merge child.vhd base.vhd"
grep -q 'ReturnValue=32774 .*child.vhd is open for writing' "$M/.control" ||
	fail "no 32774 naming child.vhd: $(last_result)"
exec 3>&-

# Cancelled merge: JobState 8, the child's view unchanged.
ctl "$M" "merge child.vhd base.vhd"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "merge did not start a job: $(last_result)"
ctl "$M" "cancel $id"
job_wait "$M" "$id"
cat "$M/.jobs/$id" >&2
assert_eq 8 "$(job_field "$M/.jobs/$id" JobState)" "cancelled merge JobState"
assert_cmp "$T/child.flat" "$M/child.vhd" "child after a cancelled merge"
[ -e "$B/mid.vhd" ] || fail "cancelled merge removed mid.vhd"

# The merge, polled to completion.
ctl "$M" "merge child.vhd base.vhd"
res=$(last_result)
id=$(job_of "$res")
[ -n "$id" ] || fail "merge did not start a job: $res"
assert_eq "Command=\"merge child.vhd base.vhd\"" \
	"${res#* Job=.jobs/"$id" }" "job result line"
seen=""
busy_checked=0
for ((i = 0; i < 1200; i++)); do
	st=$(job_field "$M/.jobs/$id" JobState)
	pc=$(job_field "$M/.jobs/$id" PercentComplete)
	[ "$st" = 4 ] || break
	seen="$seen $pc"
	if [ "$busy_checked" = 0 ] && [ "$pc" -gt 0 ]; then
		assert_eq EBUSY "$(py_errno open_rw "$M/child.vhd")" \
			"write open of the merging child"
		assert_eq EBUSY "$(py_errno unlink "$M/child.vhd")" \
			"rm of the merging child"
		expect_errno EBUSY ctl "$M" "new.vhd child.vhd"
		expect_errno EBUSY ctl "$M" "merge child.vhd"
		expect_errno EBUSY ctl "$M" "convert child.vhd x.vhd dynamic"
		assert_eq EBUSY "$(py_errno rename "$M/sub" "$M/sub2")" \
			"mv of a directory holding a merging level"
		# Other images are served meanwhile.
		assert_cmp "$T/other.flat" "$M/other.vhd" "other.vhd during a job"
		assert_eq OK "$(py_errno open_rw "$M/other.vhd")" \
			"write open of another image during a job"
		busy_checked=1
	fi
	sleep 0.1
done
cat "$M/.jobs/$id" >&2
log "PercentComplete seen:$seen"
assert_eq 1 "$busy_checked" "EBUSY checks ran while the job ran"
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "merge JobState"
assert_eq 100 "$(job_field "$M/.jobs/$id" PercentComplete)" "PercentComplete"
mid_values=$(tr ' ' '\n' <<<"$seen" | awk '$1 > 0 && $1 < 100' | sort -u |
	wc -l)
[ "$mid_values" -ge 2 ] ||
	fail "PercentComplete took $mid_values intermediate values:$seen"
[ ! -e "$B/child.vhd" ] && [ ! -e "$B/mid.vhd" ] ||
	fail "merged levels left behind"
rm -r "$B/sub"
[ ! -e "$M/child.vhd" ] || fail "mount still shows child.vhd"
assert_cmp "$T/child.flat" "$M/base.vhd" "base after merge (mount)"
qemu_flat "$B/base.vhd" "$T/q.raw"
assert_cmp "$T/child.flat" "$T/q.raw" "base after merge (qemu)"
"$VHD" check "$B/base.vhd" >&2 || fail "vhd check base.vhd"
# The base is a leaf now: writable.
assert_eq OK "$(py_errno open_rw "$M/base.vhd")" "write open of base"

# convert of a 3-level chain.
ctl "$M" "c1.vhd base.vhd"
fill c1.vhd
ctl "$M" "c2.vhd c1.vhd"
fill c2.vhd
cp "$M/c2.vhd" "$T/c2.flat"
for t in dynamic fixed; do
	ctl "$M" "convert c2.vhd conv-$t.vhd $t"
	id=$(job_of "$(last_result)")
	[ -n "$id" ] || fail "convert did not start a job: $(last_result)"
	job_wait "$M" "$id"
	assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "convert $t JobState"
	assert_cmp "$T/c2.flat" "$M/conv-$t.vhd" "convert to $t (mount)"
	qemu_flat "$B/conv-$t.vhd" "$T/q.raw"
	assert_cmp "$T/c2.flat" "$T/q.raw" "convert to $t (qemu)"
done
ctl "$M" "convert c2.vhd conv-512.vhd dynamic block=512K"
id=$(job_of "$(last_result)")
job_wait "$M" "$id"
assert_eq 524288 \
	"$(getfattr --only-values -n user.vhd.block_size "$M/conv-512.vhd" \
		2>/dev/null || "$VHD" info --json "$B/conv-512.vhd" |
		sed -n 's/.*"block_size": *\([0-9]*\).*/\1/p')" "block=512K"
expect_errno EEXIST ctl "$M" "convert c2.vhd conv-fixed.vhd fixed"
expect_errno EINVAL ctl "$M" "convert c2.vhd z.vhd sparse"
# A job that fails: JobState 10, ErrorCode and a description naming the
# file and the defect.
head -c 3000000 /dev/urandom >"$B/junk.vhd"
ctl "$M" "convert junk.vhd j2.vhd dynamic"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "convert of junk did not start a job: $(last_result)"
job_wait "$M" "$id"
cat "$M/.jobs/$id" >&2
assert_eq 10 "$(job_field "$M/.jobs/$id" JobState)" "failed convert JobState"
assert_eq 32773 "$(job_field "$M/.jobs/$id" ErrorCode)" "failed convert ErrorCode"
grep -q '^ErrorDescription=.*junk.vhd.*footer' "$M/.jobs/$id" ||
	fail "ErrorDescription does not name file and defect"
[ ! -e "$B/j2.vhd" ] || fail "failed convert left j2.vhd"
rm "$B/junk.vhd"
# A cancelled convert leaves nothing.
before=$(ls -A "$B" | sort)
ctl "$M" "convert c2.vhd never.vhd fixed"
id=$(job_of "$(last_result)")
ctl "$M" "cancel $id"
job_wait "$M" "$id"
assert_eq 8 "$(job_field "$M/.jobs/$id" JobState)" "cancelled convert JobState"
assert_eq "$before" "$(ls -A "$B" | sort)" "files after a cancelled convert"

# An interrupted merge that removed the child but not the level below it
# (state rebuilt by hand: the merge done, mid.vhd back, the journal as the
# library writes it): `vhd check` names the leftover, and `merge CHILD`
# through the control file finishes the removal although CHILD is gone.
ctl "$M" "create mb.vhd 32M"
ctl "$M" "m1.vhd mb.vhd"
fill m1.vhd
ctl "$M" "m2.vhd m1.vhd"
fill m2.vhd
cp "$M/m2.vhd" "$T/m2.flat"
cp "$B/m1.vhd" "$T/m1.copy"
hexid() { "$VHD" info "$1" | awk '/^UUID:/ { gsub("-", "", $2); print $2 }'; }
m1_id=$(hexid "$B/m1.vhd")
base_id=$(hexid "$B/mb.vhd")
ctl "$M" "merge m2.vhd mb.vhd"
job_wait "$M" "$(job_of "$(last_result)")"
[ ! -e "$B/m1.vhd" ] || fail "m1.vhd not merged"
cp "$T/m1.copy" "$B/m1.vhd"
printf 'vhd-merge 1\nancestor %s %s\nremove %s %s\nend\n' \
	"$base_id" "$B/mb.vhd" "$m1_id" "$B/m1.vhd" >"$B/.m2.vhd.merging"
rc=0
"$VHD" check "$B/m1.vhd" >"$T/check.out" 2>&1 || rc=$?
cat "$T/check.out" >&2
assert_eq 1 "$rc" "vhd check exit status on a leftover level"
grep -q "interrupted merge of m2.vhd" "$T/check.out" ||
	fail "vhd check does not name the interrupted merge"
ctl "$M" "merge m2.vhd"
id=$(job_of "$(last_result)")
[ -n "$id" ] || fail "merge of a journalled child: $(last_result)"
job_wait "$M" "$id"
assert_eq 7 "$(job_field "$M/.jobs/$id" JobState)" "finishing merge JobState"
[ ! -e "$B/m1.vhd" ] && [ ! -e "$B/.m2.vhd.merging" ] ||
	fail "leftover level or journal not removed"
assert_cmp "$T/m2.flat" "$M/mb.vhd" "base after the finished merge"
expect_errno ENOENT ctl "$M" "merge m2.vhd"

vhdfs_umount "$M"
exit 0
