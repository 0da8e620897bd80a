#!/bin/bash
# rumpimg against the host's e2fsprogs: a tree copied into an image made by
# mke2fs reads back with debugfs byte for byte, keeps modes, owners, times,
# xattrs, symbolic and hard links and holes, and e2fsck -fn calls the image
# clean; copied out again it equals the original; copied from one image
# into another it stays equal; the other commands do
# what they say, and errors are one line with coreutils' exit status.
# Usage: rumpimg_test.sh PATH_TO_RUMPIMG
set -u
R=$1
command -v mke2fs >/dev/null && command -v debugfs >/dev/null && command -v e2fsck >/dev/null || {
  echo "e2fsprogs missing: skipped"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fails=$((fails + 1)); fi
}
fsck_clean() { e2fsck -fn "$1" >/dev/null 2>&1; }

mkdir -p "$T/tree/dir/sub" "$T/tree/many"
printf 'hello\n' > "$T/tree/small"
head -c 300000 /dev/urandom > "$T/tree/dir/random"
truncate -s 5M "$T/tree/sparse"; printf 'end' >> "$T/tree/sparse"
ln -s small "$T/tree/link"
ln "$T/tree/small" "$T/tree/dir/hard"
for i in $(seq 1 200); do echo "$i" > "$T/tree/many/f$i"; done
chmod 0751 "$T/tree/dir"; chmod 0600 "$T/tree/dir/random"
touch -h -d '2001-02-03 04:05:06.123456789' "$T/tree/small" "$T/tree/link"
setfattr -n user.colour -v blue "$T/tree/small" 2>/dev/null && have_xattr=1 || have_xattr=0
[ "$(id -u)" = 0 ] && chown 123:456 "$T/tree/dir/sub"

for type in ext2 ext3 ext4; do
  img="$T/$type.img"
  mke2fs -q -F -t $type "$img" 64M >/dev/null 2>&1
  check "$type: cp -a into the image" "$R" cp -a "$T/tree" "$img:/srv"
  check "$type: e2fsck -fn clean" fsck_clean "$img"
  debugfs -R "rdump /srv $T/dump_$type" "$img" >/dev/null 2>&1; mkdir -p "$T/dump_$type"
  debugfs -R "rdump /srv $T/dump_$type" "$img" >/dev/null 2>&1
  check "$type: debugfs reads the same bytes" cmp -s "$T/tree/dir/random" "$T/dump_$type/srv/dir/random"
  check "$type: the sparse file keeps its hole" bash -c "debugfs -R 'stat /srv/sparse' '$img' 2>/dev/null | grep -qE 'Blockcount: [0-9]{1,2}\$'"
  check "$type: hard links stay linked" bash -c "[ \"\$(debugfs -R 'stat /srv/small' '$img' 2>/dev/null | grep -o 'Links: [0-9]*')\" = 'Links: 2' ]"
  check "$type: modes kept" bash -c "debugfs -R 'stat /srv/dir' '$img' 2>/dev/null | grep -q 'Mode:  0751'"
  check "$type: times kept" bash -c "debugfs -R 'stat /srv/small' '$img' 2>/dev/null | grep -q 'mtime: .*Feb  3 04:05:06 2001'"
  check "$type: symlink kept" bash -c "debugfs -R 'stat /srv/link' '$img' 2>/dev/null | grep -q 'Fast link dest: \"small\"'"
  if [ $have_xattr = 1 ]; then
    check "$type: xattrs kept" bash -c "debugfs -R 'ea_get /srv/small user.colour' '$img' 2>/dev/null | grep -q blue"
  fi
  check "$type: cat" bash -c "[ \"\$('$R' cat '$img:/srv/small')\" = hello ]"
  check "$type: ls" bash -c "'$R' ls '$img:/srv' | grep -qx many"
  check "$type: cp -a out of the image" "$R" cp -a "$img:/srv" "$T/out_$type"
  check "$type: the tree comes back equal" diff -r "$T/tree" "$T/out_$type"
  check "$type: times come back" bash -c "[ \"\$(stat -c %y '$T/out_$type/small')\" = \"\$(stat -c %y '$T/tree/small')\" ]"
  check "$type: mkdir -p, mv, ln -s, ln, chmod, chown, rm -r" bash -c "
    '$R' mkdir -p '$img:/a/b/c' && '$R' mv '$img:/a/b' '$img:/srv' && '$R' ln -s tgt '$img:/srv/sl' &&
    '$R' ln '$img:/srv/small' '$img:/srv/small3' && '$R' chmod 640 '$img:/srv/small3' &&
    '$R' chown 7:8 '$img:/srv/small3' && '$R' rm -r '$img:/a'"
  check "$type: their effects" bash -c "
    debugfs -R 'stat /srv/small' '$img' 2>/dev/null | grep -q 'Links: 3' &&
    debugfs -R 'stat /srv/small' '$img' 2>/dev/null | grep -q 'Mode:  0640' &&
    debugfs -R 'stat /srv/small' '$img' 2>/dev/null | grep -q 'User:     7   Group:     8' &&
    debugfs -R 'ls /srv/b' '$img' 2>/dev/null | grep -q ' c ' &&
    ! debugfs -R 'stat /a' '$img' 2>&1 | grep -q Inode:"
  check "$type: e2fsck -fn clean after the commands" fsck_clean "$img"
  check "$type: df" bash -c "'$R' df '$img' | tail -1 | grep -q '$img'"
  "$R" ls "$img:/nothing" 2>"$T/err"; st=$?
  check "$type: ls of a missing path: status 2 and one line" bash -c "[ $st = 2 ] && [ \$(wc -l < '$T/err') = 1 ]"
  "$R" rm "$img:/nothing" 2>/dev/null; st=$?
  check "$type: rm of a missing path: status 1" [ $st = 1 ]
done
# From one image into another (each in its own kernel): the tree as it
# was, both images e2fsck-clean.
check "cp -a from an ext4 image into an ext2 image" "$R" cp -a "$T/ext4.img:/srv" "$T/ext2.img:/copied"
check "the copy between images is e2fsck-clean" fsck_clean "$T/ext2.img"
check "the source image is untouched and clean" fsck_clean "$T/ext4.img"
"$R" cp -a "$T/ext4.img:/srv" "$T/from4" 2>/dev/null
"$R" cp -a "$T/ext2.img:/copied" "$T/from2" 2>/dev/null
check "the copy between images reads back equal" diff -r --no-dereference "$T/from4" "$T/from2"
check "cp between images keeps hard links" bash -c "debugfs -R 'stat /copied/small' '$T/ext2.img' 2>/dev/null | grep -q 'Links: 3'"
check "a third image is refused" bash -c "! '$R' cp '$T/ext3.img:/srv/small' '$T/ext4.img:/srv/small' '$T/ext2.img:/' 2>/dev/null"
check "--type mismatch is refused" bash -c "! '$R' --type ext2 ls '$T/ext4.img:/' 2>/dev/null"
check "--help" bash -c "'$R' --help | grep -q SYNOPSIS"
check "not an image" bash -c "! '$R' ls '$T/tree/small:/' 2>/dev/null"
[ $fails = 0 ] || { echo "$fails failures"; exit 1; }
