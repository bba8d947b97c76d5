# shellcheck shell=sh
# The hash record's writing half (src/plan/hashes/: the one owner of its format), defined in
# the apply script after src/apply/apply.sh ($STATE and $W set) and called at the end of a run
# that got through every step (`hashes::write_steps`). Builtins but `mkdir`, one `find` and
# one `sha256sum`.
# hashes_settle DIR...: make the next record's time (the mtime of $W/hash.stamp) later
# than the last change in each DIR (where this run renamed files: a file's ctime is its
# folder's mtime then), so the record can vouch for those files. The clock's tick is 1-10 ms
# (less with fine-grained timestamps): wait with builtins (no process: a run's process count
# stays fixed), truncating the stamp until it moved, at most 5000 times (~25 ms); a record
# that gives up stays correct, it vouches for fewer files.
# shellcheck disable=SC2317 # called at the end of the generated steps, when files were written
hashes_settle() {
  : > "$W/hash.stamp" || return 0
  i=0
  for d in "$@"; do
    # shellcheck disable=SC3013 # dash, bash, busybox: -nt (nanoseconds); a shell without it does not wait
    while [ ! "$W/hash.stamp" -nt "$d" ] && [ "$i" -lt 5000 ]; do
      : > "$W/hash.stamp"
      i=$((i + 1))
    done
  done
}
# record_hashes FILE...: the last thing a run that got through every step does: the hash
# record (listed by list.sh, judged by mod.rs, here in src/plan/hashes/), a folder
# $STATE/hashes made anew with mode 0700 (its mtime then is the record's time T0, taken
# before anything is read) of empty files whose names hold the facts (a name costs the probe one `readdir`;
# content would cost dash's `read` a syscall per byte): `DEV_INODE_SIZE_CTIME_SHA256` for
# each FILE that is a regular file on a filesystem with nanosecond timestamps (`N_DEV_INODE`
# for one elsewhere: always hashed, and no reason to write the record again) that no one but
# root can write (owned by root, no group/other write bit: see mod.rs; the
# client names only files in folders others cannot write), then `T_T0`,
# last: a record cut short has none and vouches for nothing, and any change to the folder
# after it (an entry added, removed or renamed, its mode) moves the folder's ctime away from
# `T_T0`'s, which the client checks. `sha256sum` lines are paired with `find`'s in order,
# each checked by its path (an escaped line, for a path with `\`, is skipped).
record_hashes() {
  if [ -e "$STATE/hashes" ] || [ -L "$STATE/hashes" ]; then rm -rf -- "$STATE/hashes" || return 0; fi
  mkdir -m 0700 -- "$STATE/hashes" || return 0
  find "$STATE/hashes" "$@" -maxdepth 0 '(' -type d -printf 'T\t%T@\n' ')' -o \
    '(' -type f -uid 0 ! -perm /022 '(' -fstype ext4 -o -fstype ext3 -o -fstype ext2 -o -fstype xfs -o -fstype btrfs \
    -o -fstype tmpfs -o -fstype f2fs -o -fstype zfs -o -fstype overlay ')' \
    -printf 'F\t%D_%i_%s_%C@\t%p\n' -exec sha256sum -- '{}' + ')' -o \
    '(' -type f -uid 0 ! -perm /022 -printf 'N\t%D_%i\n' ')' > "$W/hash.raw" 2> /dev/null
  t=''
  q=''
  nl='
'
  while IFS= read -r l; do
    case $l in
      "T	"*) [ -n "$t" ] || t=${l#T	} ;;
      "F	"*) q=$q${l#F	}$nl ;;
      "N	"*) : > "$STATE/hashes/N_${l#N	}" ;;
      *)
        [ -n "$q" ] || break
        f=${q%%"$nl"*}
        q=${q#*"$nl"}
        case $l in \\*) continue ;; esac
        [ "${l#*  }" = "${f#*	}" ] || break
        h=${l%%  *}
        case $h in *[!0-9a-f]*) break ;; esac
        : > "$STATE/hashes/${f%%	*}_$h"
        ;;
    esac
  done < "$W/hash.raw"
  [ -z "$t" ] || : > "$STATE/hashes/T_$t"
}
