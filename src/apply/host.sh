# shellcheck shell=sh
# Converge's part of the host session (after src/remote/session.sh, run with
# STATE_CHECK=client, and the probe section, whose `find` printed the state folder's record):
# end the probe; read the client's frames. `hash` + paths + an empty line: the client needs
# the hashes of files the probe did not hash (the hash record could not vouch for them):
# print them, end with `probe-end`, read the next frame. Then one last frame: none (stdin
# ended: the client refused the state folder or went away) exits having written nothing;
# `0\n` (nothing to change), `record` + paths + an empty line (nothing to change, but the
# hash record is out of date) and a payload (`LEN\n` + a tar of `stage.$NONCE/`: apply.sh and
# the changed files) mean the client found the folder ours with mode 0700: remove what a
# killed run left staged; for `record`, write the hash record of those paths; for a payload,
# record this run as the lock holder (`hold`), unpack it inside the state folder (the payload
# never touches /tmp) and source apply.sh, which ends with the record. The EXIT trap empties
# the lock owner line.

# hashes_settle DIR...: make the next record's time (the mtime of $STATE/hash.stamp) later
# than the last change in each DIR (where this run renamed files: a file's ctime is its
# folder's mtime then), so the record can vouch for those files. The clock's tick is 1-10 ms
# (less with fine-grained timestamps): wait with builtins (no process: a run's process count
# stays fixed), truncating the stamp until it moved, at most 5000 times (~25 ms); a record
# that gives up stays correct, it vouches for fewer files.
# shellcheck disable=SC2317 # called by apply.sh, which this script sources
hashes_settle() {
  : > "$STATE/hash.stamp" || return 0
  i=0
  for d in "$@"; do
    # shellcheck disable=SC3013 # dash, bash, busybox: -nt (nanoseconds); a shell without it does not wait
    while [ ! "$STATE/hash.stamp" -nt "$d" ] && [ "$i" -lt 5000 ]; do
      : > "$STATE/hash.stamp"
      i=$((i + 1))
    done
  done
}

# record_hashes FILE...: the hash record (listed by src/plan/probe.sh, judged by
# src/plan/hashes.rs): a folder $STATE/hashes (made anew, mode 0700; its mtime then is the
# record's time T0, taken before anything is read) of empty files whose names hold the facts
# (a name costs the probe one `readdir`; content would cost dash's `read` a syscall per
# byte): `DEV_INODE_SIZE_CTIME_SHA256` for each FILE that is a regular file on a filesystem
# with nanosecond timestamps, then `T_T0`, last: a record cut short has none and vouches for
# nothing, and any change to the folder after it (an entry added, removed or renamed, its
# mode) moves the folder's ctime away from `T_T0`'s, which the client checks. `sha256sum`
# lines are paired with `find`'s in order, each checked by its path (an escaped line, for a
# path with `\`, is skipped).
record_hashes() {
  if [ -e "$STATE/hashes" ] || [ -L "$STATE/hashes" ]; then rm -rf -- "$STATE/hashes" || return 0; fi
  mkdir -m 0700 -- "$STATE/hashes" || return 0
  find "$STATE/hashes" "$@" -maxdepth 0 '(' -type d -printf 'T\t%T@\n' ')' -o \
    '(' -type f '(' -fstype ext4 -o -fstype ext3 -o -fstype ext2 -o -fstype xfs -o -fstype btrfs \
    -o -fstype tmpfs -o -fstype f2fs -o -fstype zfs -o -fstype overlay ')' \
    -printf 'F\t%D_%i_%s_%C@\t%p\n' -exec sha256sum -- '{}' + ')' > "$STATE/hash.raw" 2> /dev/null
  t=''
  q=''
  nl='
'
  while IFS= read -r l; do
    case $l in
      "T	"*) [ -n "$t" ] || t=${l#T	} ;;
      "F	"*) q=$q${l#F	}$nl ;;
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
  done < "$STATE/hash.raw"
  [ -z "$t" ] || : > "$STATE/hashes/T_$t"
}

mark probe-end
IFS= read -r n || exit 0
while [ "$n" = hash ]; do
  set --
  while IFS= read -r p && [ -n "$p" ]; do set -- "$@" "$p"; done
  [ "$#" -eq 0 ] || find "$@" -maxdepth 0 -type f -exec sha256sum -- '{}' + 2> /dev/null
  mark probe-end
  IFS= read -r n || exit 0
done
for old in "$STATE"/stage.*; do
  [ -e "$old" ] && rm -rf -- "$STATE"/stage.*
  break
done
case "$n" in
  '' | 0) exit 0 ;;
  record)
    set --
    while IFS= read -r p && [ -n "$p" ]; do set -- "$@" "$p"; done
    record_hashes "$@"
    exit 0
    ;;
esac
hold
W=$STATE/stage.$NONCE
trap 'rm -rf -- "$W"; : > "$STATE/lock.owner"' EXIT
# The client closes stdin after the payload: tar reads it to the end, no `head` needed.
tar -x --no-same-owner -C "$STATE" -f - || { mark error "cannot unpack the payload"; exit 70; }
# shellcheck source=/dev/null
. "$W/apply.sh"
