# shellcheck shell=sh
# The apply script's fixed prelude (after src/shell/mark.sh), sourced by the host session
# (src/apply/host.sh: $NONCE, $STATE and $W are set; the session's traps stay). Steps run in
# this shell with their output in "$W/step.out" (no `$( )` subshell: every process counts on
# a host); the first failure stops the run. Files are staged as `.microctl.$NONCE.ID` beside
# their destination (files in a staging folder `.microctl.$NONCE/` there, under their own
# names); whatever is still staged on exit is removed, in one `rm`.
set -u
umask 022
# Staged paths, one per line (managed paths never hold a newline).
STAGED=""
cleanup() {
  IFS='
'
  set -- "$W"
  for t in $STAGED; do
    if [ -e "$t" ] || [ -L "$t" ]; then set -- "$@" "$t"; fi
  done
  rm -rf -- "$@"
  : > "$STATE/lock.owner"
}
trap cleanup EXIT
# fail ID RC: report step ID failed with RC, and its output.
fail() {
  mark fail "$1" "$2"
  mark_out < "$W/step.out"
  exit 1
}
# stage DEST ID: $t is the staged path of DEST (`.microctl.$NONCE.ID` in DEST's folder, which
# is created if missing), removed on exit unless renamed over DEST.
stage() {
  d=${1%/*}
  [ -n "$d" ] || d=/
  [ -d "$d" ] || mkdir -p -- "$d" || return 1
  t=$d/.microctl.$NONCE.$2
  STAGED="$STAGED$t
"
}
# staged DIR...: record the staging folders (`DIR/.microctl.$NONCE`) that `install -D`
# makes; removed on exit, with whatever they still hold (no process until then).
staged() {
  for d in "$@"; do STAGED="$STAGED$d/.microctl.$NONCE
"; done
}
# private STAGE...: make the root-only (0700) staging folders of files bound for folders a user
# other than root can write (each beside such a folder, in its parent, which only root can
# write: see src/plan/trust.rs), recorded first (removed on exit); one `mkdir`.
private() {
  for d in "$@"; do STAGED="$STAGED$d
"; done
  mkdir -m 0700 -- "$@"
}
# plain PATH: PATH is a regular file or folder, not a symlink (meta is fixed on it, never
# on what a symlink swapped in since the probe points at).
plain() {
  if [ -L "$1" ] || { [ ! -f "$1" ] && [ ! -d "$1" ]; }; then
    echo "$1 is no longer a plain file or folder (a symlink?): not touching it"
    return 1
  fi
}
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2034 # used by the generated package steps
APT="apt-get -q -y -o Acquire::Retries=3 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
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
# record (listed by src/plan/probe.sh, judged by src/plan/hashes.rs), a folder $STATE/hashes
# made anew with mode 0700 (its mtime then is the record's time T0, taken before anything is
# read) of empty files whose names hold the facts (a name costs the probe one `readdir`;
# content would cost dash's `read` a syscall per byte): `DEV_INODE_SIZE_CTIME_SHA256` for
# each FILE that is a regular file on a filesystem with nanosecond timestamps (`N_DEV_INODE`
# for one elsewhere: always hashed, and no reason to write the record again) that no one but
# root can write (owned by root, no group/other write bit: see src/plan/hashes.rs; the
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
